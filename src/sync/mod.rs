//! A concurrent table: lookups that never wait, one writer at a time.
//!
//! [`MemTable`] here is the same sparse radix table as [`crate::MemTable`],
//! on the same [geometries](crate::geometry), for values a reader can read
//! without tearing ([`Value`]): values that fit in one atomic word
//! ([`Atom`]: `u8` to `u64`, `bool`, or a user type such as per-page
//! rights), stored inline, and values of any size as `Arc<T>`, published
//! by pointer and read as `&T` under the reader's guard. Any number of
//! threads read it through `&self` without locks; a [`Writer`] (the
//! table's writer lock, taken by [`MemTable::writer`]) inserts, removes,
//! splits and merges meanwhile.
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
//! one load per level, no retry, no lock, no write to shared memory. An
//! [`Atom`] is copied out; an `Arc<T>` value is borrowed (`&T`) for as
//! long as the guard, with no reference count touched
//! ([`get_cloned`](MemTable::get_cloned) and the `*_pinned` forms clone
//! the `Arc` instead: one atomic increment).
//!
//! ```
//! use std::sync::Arc;
//! use mem_table::sync::MemTable;
//!
//! /// A value larger than a word.
//! #[derive(Debug, PartialEq)]
//! struct Region { host: u64, len: u64, name: &'static str }
//!
//! let t: MemTable<Arc<Region>> = MemTable::new();
//! let ram = Arc::new(Region { host: 0x7f00_0000_0000, len: 1 << 30, name: "ram" });
//! t.writer().insert_at(0x4000_0000, mem_table::Level::new(2), ram.clone()).unwrap();
//! let g = t.pin();
//! let r: &Region = t.get(0x4123_4567, &g).unwrap();
//! // The writer replaces it; the reader's `&Region` stays valid until `g` goes.
//! let old = t.writer().insert_at(0x4000_0000, mem_table::Level::new(2), Arc::new(Region { name: "rom", ..*ram }));
//! assert!(Arc::ptr_eq(&old.unwrap().unwrap(), &ram));
//! t.collect();
//! assert_eq!(r.name, "ram");
//! drop(g);
//! assert_eq!(t.get_pinned(0x4000_0000).unwrap().name, "rom");
//! ```
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
//! | table | [`Atom`]s of at most 63 bits | 64-bit [`Atom`]s | `Arc<T>` |
//! |---|---|---|---|
//! | bottom | one `AtomicU64` per slot: `0` empty, `v << 1 \| 1` | a presence bitmap of `AtomicU64` words, and an `AtomicU64` per slot | one `AtomicPtr` per slot: null empty, else the pointer `Arc::into_raw` gave |
//! | upper | one `AtomicPtr` per slot: null, a child table's address, or `v << 1 \| 1` inline (an address without provenance, never dereferenced) | null, a child, or the address `\| 2` of a boxed value: a one-word node, immutable once published | null, a child, or the value's pointer `\| 1` |
//!
//! Links and value pointers are pointers with provenance (strict-provenance
//! clean). Each slot holding an `Arc` value holds one strong reference of
//! its own (the table's): a split into 512 sub-pages that share one value
//! ([`SplitByClone`](crate::ops::SplitByClone)) is 512 reference count
//! increments, no copy of `T`. A value published by pointer is immutable
//! while published (readers hold `&T`; interior mutability in `T` is the
//! user's own synchronisation). The pointer's bit 0 tags it in upper slots:
//! an `Arc`'s value follows its two counters, so it is always even
//! (checked on insert, since std does not promise it).
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
//! - **Value published by pointer** (`Arc<T>`, any slot): the value was
//!   written when the `Arc` was made, by whichever thread made it (and
//!   handed to the writer, which orders it before the writer's stores);
//!   the writer stores its pointer with `Release` (a new entry, a
//!   replacement, a split's slots built aside and published with their
//!   table); a reader loads it with `Acquire` and borrows the value: it
//!   sees the value whole. **Replace and remove** store the new pointer or
//!   null (`Release`), then retire the table's old reference, exactly like
//!   an unlinked node: it is dropped (`Arc`'s decrement, and the free if it
//!   was the last) only after every reader pinned at the store has
//!   unpinned, so a `&T` a reader holds stays valid for its guard. The
//!   caller of `insert`/`remove` gets a clone of the old reference, its
//!   own. A merge retires the merged table together with its references
//!   (one item). The decrement's own ordering is `Arc`'s (Release, then
//!   Acquire before the free).
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
//! - **Range operations** ([`insert_range`](Writer::insert_range),
//!   [`remove_range`](Writer::remove_range), [`clear`](Writer::clear)):
//!   planned first (every error found before any store), then each slot
//!   the range touches changes with one store, top down in address order:
//!   - a slot wholly inside: one store of the new value's word (`Release`
//!     above the bottom) or of null; what it held, a box, an `Arc` reference or a whole
//!     subtree, is unlinked by that store and *then* retired, node by node,
//!     each after the writer's last read of it (children first);
//!   - a slot at an edge with nothing, or a large entry, there: the new
//!     table is built aside (a split's values from the consumer's ops, and
//!     the range's own work inside it already done, recursively), then
//!     linked with one `Release` store that replaces the empty slot or the
//!     entry (whose box or `Arc` reference is then retired). A reader acquiring the link sees
//!     the whole table as built;
//!   - a slot at an edge linking a table: the same rules one level down;
//!     a table the removal leaves empty is unlinked and retired after.
//!
//!   So a reader sees each slot before or after its store, never a
//!   half-built table or a freed one; but **a range operation is not atomic
//!   as a whole**: a reader overlapping it may see some slots changed and
//!   others not yet (so an iteration may see part of the range done). A
//!   panic in the consumer's ops leaves the slots before it changed and
//!   the one being built unchanged (its aside table is freed).
//! - **Retain**: each entry `f` drops or changes is removed or replaced
//!   with the single-entry protocols above, one at a time.
//! - **Compact**: each merge is the merge protocol, bottom up.
//! - **Reservations** add no protocol: a spare table is a fresh node no
//!   reader has seen, published as any new table is.
//! - **Reclamation**: a node (or a value reference) is retired only after
//!   the store that unlinks it, and freed only after every reader that was
//!   pinned at that moment has unpinned ([`Epoch`]: crossbeam-epoch's grace period; the `SeqCst`
//!   fence in its pin orders the reader's pin before its link loads). A
//!   reader pinned later loads the new link and cannot reach the node.
//!
//! # Reclamation and memory waiting for readers
//!
//! Freed tables, boxes and replaced `Arc` values are reclaimed through
//! [`crossbeam-epoch`]
//! (see [`Epoch`] for why). A guard held for a long time keeps every node
//! retired after it was taken: the memory waiting is bounded only by how
//! much the writer retires meanwhile. [`MemTable::reclamation`] reports it
//! (items and bytes retired and not yet freed, an `Arc` reference counted
//! with its allocation's size; the table counts its own retirements and
//! frees, since crossbeam does not say); [`Guard::repin`] is a reader's
//! quiescent point.
//!
//! # Writers
//!
//! [`Writer`] has the mutating API of [`crate::MemTable`], with the
//! semantics and errors of its methods of the same names (a model-based
//! test checks they agree, operation by operation):
//!
//! - entries: [`insert`](Writer::insert), [`insert_at`](Writer::insert_at)
//!   (large pages), [`remove`](Writer::remove),
//!   [`remove_covering`](Writer::remove_covering);
//! - large pages: [`split`](Writer::split) / [`split_with`](Writer::split_with),
//!   [`merge`](Writer::merge) / [`merge_with`](Writer::merge_with),
//!   [`compact`](Writer::compact) / [`compact_with`](Writer::compact_with);
//! - ranges: [`insert_range`](Writer::insert_range) /
//!   [`insert_range_with`](Writer::insert_range_with),
//!   [`remove_range`](Writer::remove_range) /
//!   [`remove_range_with`](Writer::remove_range_with),
//!   [`clear`](Writer::clear), [`retain`](Writer::retain);
//! - reservations: [`reserve_insert`](Writer::reserve_insert),
//!   [`reserve_split`](Writer::reserve_split),
//!   [`reserve_tables`](Writer::reserve_tables),
//!   [`unreserve`](Writer::unreserve), [`reserved`](Writer::reserved):
//!   spare tables per level, kept in the table between writers and drawn
//!   by whichever operations make tables next, so that a reserved
//!   operation makes no allocation (tested with a counting allocator).
//!   Tables come from the global allocator, which aborts on failure: there
//!   is no `OutOfNodes`. Not covered: the box of a large 64-bit value, and
//!   the marks of change tracking;
//! - change tracking: [`track_changes`](Writer::track_changes) (asked for,
//!   unlike `crate::MemTable`'s, because its marks are a writer-side map),
//!   [`has_changes`](Writer::has_changes), [`changes`](Writer::changes) and
//!   [`take_changes`](Writer::take_changes): [`Change`] regions with their
//!   current values, which, applied in order to a copy, reproduce the
//!   table; exact, not minimal.
//!
//! A `retain` closure gets an owned value by `&mut` (a copy of an
//! [`Atom`], a clone of an `Arc`); what it leaves there is stored back if
//! it differs (other bits, or another `Arc`). Range operations never run
//! the consumer's value code between a store and the counts it changes
//! (what they clear is retired as stored); `remove` makes the value it
//! returns after the table is consistent again.
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
//!   the node is a data race loom reports (negative controls with a
//!   reclaimer that frees at once must fail). `Arc` values are poisoned the
//!   same way through a loom cell the table keeps per value pointer (made
//!   when a slot takes a reference, written when the table drops its last);
//!   a model whose values hold a loom cell written before they are
//!   inserted checks the publication's ordering of their content;
//! - a bounded stress test (`tests/sync_stress.rs`), `Arc` values included
//!   (every read checks the content whole), also run under
//!   ThreadSanitizer;
//! - the writer's own tests (`tests/sync_writer.rs`): reserved operations
//!   make no allocation (a counting global allocator), and a panic in the
//!   consumer's ops or a `retain` closure leaves the table consistent;
//! - a model-based test against [`crate::MemTable`] (`tests/sync.rs`):
//!   every operation's result and error, the contents and the invariants
//!   after each, and a copy rebuilt from the change reports alone; also
//!   run under Miri: with strict provenance on the runs that use the
//!   reader-count reclaimer (crossbeam-epoch's tagged pointers are
//!   integer-to-pointer casts), and with permissive provenance, Tree
//!   Borrows and leaks ignored on the crossbeam runs (crossbeam-epoch fails
//!   Stacked Borrows inside its own list, and its global collector never
//!   runs the garbage left at exit); and an ownership test that counts
//!   every `Arc` value's drops (exactly once each, none while a reader that
//!   saw it is pinned, its `&T` read after the writer's replace and
//!   `collect`: a use after free Miri reports).
//!
//! [`crossbeam-epoch`]: crossbeam_epoch

mod atom;
mod bitmap;
mod node;
mod prim;
mod reclaim;
mod table;

#[doc(hidden)]
pub use atom::Store;
pub use atom::{Atom, Value};
#[cfg(loom)]
pub use reclaim::Immediate;
pub use reclaim::{Counted, CountedGuard, Epoch, Guard, Reclaim, Reclamation, Retired};
pub use table::track::{Change, Changes};
pub use table::{Iter, MemTable, Writer};

pub use bitmap::PageBitmap;
#[cfg(feature = "vm-memory")]
pub use bitmap::PageBitmapSlice;
