//! A concurrent table: lookups that never wait, one writer at a time.
//!
//! [`MemTable`] here is the same sparse radix table as [`crate::MemTable`],
//! on the same [geometries](crate::geometry), for values that fit in one
//! atomic word ([`Atom`]: `u8` to `u64`, `bool`, or a user type such as
//! per-page rights). Any number of threads read it through `&self`
//! without locks; a [`Writer`] (the table's writer lock, taken by
//! [`MemTable::writer`]) inserts, removes, splits and merges meanwhile.
//!
//! ```
//! use mem_table::{Level, sync::MemTable};
//!
//! let rights: MemTable<u8> = MemTable::new();
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let mut w = rights.writer();
//!         w.insert_at(0x20_0000, Level::new(1), 0b101).unwrap(); // a 2 MiB page
//!         w.split(0x20_0000, Level::new(1)).unwrap();            // 512 x 4 KiB, one store
//!         w.insert(0x20_1000, 0b001).unwrap();                   // one store
//!     });
//!     s.spawn(|| {
//!         let guard = rights.pin(); // one read section for a batch of lookups
//!         for addr in [0x20_0000, 0x20_1000, 0x3f_f000] {
//!             // Before the writer, during it, or after: never anything else.
//!             let v = rights.get(addr, &guard);
//!             assert!(matches!(v, None | Some(0b101) | Some(0b001)));
//!         }
//!     });
//! });
//! assert_eq!(rights.get_pinned(0x20_1000), Some(0b001));
//! ```
//!
//! Needs the `sync` feature (which needs `std`) and a 64-bit target.
//!
//! # Readers
//!
//! [`get`](MemTable::get), [`get_key_value`](MemTable::get_key_value),
//! [`contains`](MemTable::contains), [`get_many`](MemTable::get_many) (the
//! batched lookup), [`iter`](MemTable::iter) and [`range`](MemTable::range)
//! take a guard from [`MemTable::pin`]: hold one across a batch of lookups
//! (a vCPU exit's worth), since entering a read section costs about as much
//! as a lookup. The `*_pinned` forms pin per call. A lookup is wait-free:
//! one load per level, no retry, no lock, no write to shared memory. A
//! value is copied out, never borrowed.
//!
//! For every page, a reader sees either the state before or the state
//! after each write that it overlaps: never a half-built split, a half-done
//! merge, a freed table or a torn value. An iteration is not a snapshot of
//! the whole table (pages are read one after another), but each table's
//! link is loaded once, so the entries of one table, a split or a merge,
//! are seen whole. (One relaxation for 64-bit values: see below.)
//!
//! # Value representation
//!
//! | table | values of at most 63 bits | 64-bit values |
//! |---|---|---|
//! | bottom | one `AtomicU64` per slot: `0` empty, `v << 1 \| 1` | a presence bitmap of `AtomicU64` words, and an `AtomicU64` per slot |
//! | upper | one `AtomicPtr` per slot: null, a child table's address, or `v << 1 \| 1` inline (an address without provenance, never dereferenced) | null, a child, or the address `\| 2` of a boxed value: a one-word node, immutable once published |
//!
//! Links are pointers with provenance (strict-provenance clean). Larger
//! values than a word are not supported (no values published by pointer
//! for user types).
//!
//! # Protocols and their memory orderings
//!
//! Only one thread writes (the [`Writer`] holds the lock, whose release and
//! acquire order one writer's stores before the next's); readers only
//! load. Each protocol names the store that publishes and the load that
//! acquires it.
//!
//! - **Single-slot write** (replace a value, set a packed entry, remove a
//!   packed entry, replace an inline large value): one atomic store of the
//!   whole word. Atomicity is all a reader needs (the word is the entry), so
//!   bottom stores are `Relaxed`; upper stores are `Release` because the
//!   same load also acquires child tables.
//! - **Insert of a 64-bit value into a vacant slot**: the value is stored
//!   (`Relaxed`), then the presence word with the bit set (`Release`). A
//!   reader loads the presence word (`Acquire`) and then the value: seeing
//!   the bit, it sees that value or a later one. **Remove** clears the bit
//!   (`Release`) and leaves the value. *Relaxation*: a reader that overlaps
//!   a remove *and* a re-insert of the same page may read the re-inserted
//!   value before the re-insert's bit is set (it saw the old bit), so a
//!   later lookup on that thread may still find the page absent. Values of
//!   at most 63 bits have no such case (the entry is one word); a `u64`
//!   table that never removes and re-inserts a page under a reader has none
//!   either.
//! - **Insert into a new table**: the writer builds the whole path of new
//!   tables aside (plain `Relaxed` stores into memory no reader can see),
//!   then links its top into the existing table with one `Release` store.
//!   Readers load every link with `Acquire`, so a reader that sees the link
//!   sees every store made into the new tables before it.
//! - **Large value of a 64-bit type**: a new one-word box is written, then
//!   its tagged address is stored (`Release`) into the slot; a reader
//!   acquires the link and reads the box. A replaced box is retired.
//! - **Split**: the child table is built aside with every slot filled (the
//!   consumer's [`PageOps`](crate::ops::PageOps) give the values), then one
//!   `Release` store replaces the large entry's word with the link. A
//!   reader that loaded the old word has the old value (inline) or a box
//!   that is retired, not freed, until it leaves.
//! - **Merge**: the large entry's word (inline, or a new box) replaces the
//!   link with one `Release` store; then the child table (and its boxes) are
//!   retired. A reader that loaded the link before the store reads the
//!   child, unchanged, until its section ends.
//! - **Remove that empties a table**: the entry is cleared first; then each
//!   table left empty is unlinked (one `Release` store of null into its
//!   parent) and retired, bottom up. Readers still in it see it empty.
//! - **Reclamation**: a node is retired only after the store that unlinks
//!   it, and freed only after every reader that was pinned at that moment
//!   has unpinned ([`Epoch`]: crossbeam-epoch's grace period; the `SeqCst`
//!   fence in its pin orders the reader's pin before its link loads). A
//!   reader pinned later loads the new link and cannot reach the node.
//!
//! # Reclamation and memory waiting for readers
//!
//! Freed tables and boxes are reclaimed through [`crossbeam-epoch`]
//! (see [`Epoch`] for why). A guard held for a long time keeps every node
//! retired after it was taken: the memory waiting is bounded only by how
//! much the writer retires meanwhile. [`MemTable::reclamation`] reports it
//! (nodes and bytes retired and not yet freed; the table counts its own
//! retirements and frees, since crossbeam does not say); [`Guard::repin`]
//! is a reader's quiescent point.
//!
//! # Writers
//!
//! [`Writer`] has [`insert`](Writer::insert), [`insert_at`](Writer::insert_at)
//! (large pages), [`remove`](Writer::remove), [`split`](Writer::split) /
//! [`split_with`](Writer::split_with) and [`merge`](Writer::merge) /
//! [`merge_with`](Writer::merge_with), with the semantics and errors of
//! [`crate::MemTable`]'s methods of the same names (a model-based test
//! checks they agree). Not yet: range operations, reservations, change
//! tracking, `retain`, `clear`, `compact`.
//!
//! # The concurrent page bitmap
//!
//! [`PageBitmap`] is a dirty-page bitmap on the same tables: one bit per
//! base page, marked by many threads through `&self` (an atomic OR) and
//! harvested through `&self` (an atomic swap per word) as pages, runs or a
//! KVM-layout bitmap; with the `vm-memory` feature it is vm-memory's
//! `Bitmap`. Its docs state its protocols and orderings; its tables
//! are freed only with `&mut self`, so it needs no reclaimer.
//!
//! # Verification
//!
//! - loom models of each protocol (`tests/sync_loom.rs`, under
//!   `RUSTFLAGS="--cfg loom"`): loom cannot run crossbeam-epoch, so they
//!   use a loom-friendly reclaimer (a reader count with `SeqCst` fences) in
//!   which a freed node is *poisoned* through a loom cell that every reader
//!   visit reads: a free not ordered after a reader that could still visit
//!   the node is a data race loom reports (a negative control with a
//!   reclaimer that frees at once must fail);
//! - a bounded stress test (`tests/sync_stress.rs`), also run under
//!   ThreadSanitizer;
//! - a model-based test against [`crate::MemTable`] (`tests/sync.rs`), also
//!   run under Miri: with strict provenance on the runs that use the
//!   reader-count reclaimer (crossbeam-epoch's tagged pointers are
//!   integer-to-pointer casts), and with permissive provenance, Tree
//!   Borrows and leaks ignored on the crossbeam runs (crossbeam-epoch fails
//!   Stacked Borrows inside its own list, and its global collector never
//!   runs the garbage left at exit).
//!
//! [`crossbeam-epoch`]: crossbeam_epoch

mod atom;
mod bitmap;
mod node;
mod prim;
mod reclaim;
mod table;

pub use atom::Atom;
#[cfg(loom)]
pub use reclaim::Immediate;
pub use reclaim::{Counted, CountedGuard, Epoch, Guard, Reclaim, Reclamation, Retired};
pub use table::{Iter, MemTable, Writer};

pub use bitmap::PageBitmap;
#[cfg(feature = "vm-memory")]
pub use bitmap::PageBitmapSlice;
