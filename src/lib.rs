//! Per-page data keyed by physical address, in a sparse table shaped exactly
//! like the hardware page table.
//!
//! Hypervisors, VMMs, kernels and emulators keep state per physical (or
//! guest-physical) page: permission counters, memory attributes, write
//! tracking, dirty logs, shadow metadata. [`MemTable`] keeps it in a radix
//! table whose levels are the hardware's levels, so that
//!
//! - a lookup is a handful of shifts and masks by compile-time constants and
//!   one load per level, and ends early at a large page;
//! - a 2 MiB or 1 GiB region is one entry, not 512 or 262,144;
//! - neighbouring pages share tables (and cache lines), and iteration is in
//!   address order for free;
//! - only the parts of the address space in use cost memory.
//!
//! ```
//! use mem_table::{Level, MemTable};
//!
//! let mut rights: MemTable<&str> = MemTable::new(); // x86-64, 4 levels
//! rights.insert(0x1000, "r-x").unwrap();
//! rights.insert_at(0x20_0000, Level::new(1), "rw-").unwrap(); // one 2 MiB entry
//!
//! assert_eq!(rights.get(0x1234), Some(&"r-x"));
//! assert_eq!(rights.get(0x3f_f000), Some(&"rw-"));
//!
//! // A 4 KiB change inside the 2 MiB page must say so: split first.
//! assert!(rights.insert(0x20_1000, "r--").is_err());
//! rights.split(0x20_0000, Level::new(1)).unwrap();
//! rights.insert(0x20_1000, "r--").unwrap();
//!
//! // Change tracking: what to tell the hypervisor since last time, as
//! // regions (a split that keeps every value is no change).
//! rights.track_values();
//! let changed: Vec<_> = rights.take_changes().map(|c| (c.start, c.value.copied())).collect();
//! assert_eq!(changed, [(0x1000, Some("r-x")), (0x20_0000, Some("rw-")), (0x20_1000, Some("r--")), (0x20_2000, Some("rw-"))]);
//!
//! // Both ways, in address order.
//! assert_eq!(rights.last_key_value().map(|(p, _)| p.addr()), Some(0x3f_f000));
//! ```
//!
//! # Glossary
//!
//! | term | meaning |
//! |---|---|
//! | address | a byte address, `u64`; the key space is `0 .. 2^ADDRESS_BITS` |
//! | page | an aligned power-of-two region; [`Page`] gives its address, level and size |
//! | level | a depth of the table, numbered from the bottom: level 0 holds base pages (4 KiB on x86), level 1 holds 2 MiB pages, ... ([`Level`]) |
//! | geometry | the type that says how addresses are cut into levels ([`geometry`]) |
//! | node, table | one table of `2^bits` slots at one level; the root is the top table |
//! | slot | one element of a table: the place of one page of that level |
//! | entry | a value stored for a page: a base entry at level 0, a large entry above |
//! | large page | an entry above level 0, covering a whole slot's region |
//! | backend | where the tables live ([`backend`]) |
//! | changed | a slot marked by a mutation since the last committed report ([`MemTable::take_changes`], [`Changes::commit`]) |
//!
//! # How a slot is represented
//!
//! | table | slot holds | representation | cost with `V = u64` |
//! |---|---|---|---|
//! | bottom (level 0), direct | nothing, or a base entry | a presence bit + the value in place (`MaybeUninit<V>`) | 8 bytes + 1 bit |
//! | bottom, packed (4 to 256 entries) | nothing, or a base entry | a presence bit; the values of occupied slots packed in slot order, found by rank (a `u16` per 64 slots + one popcount) | 8 bytes per entry + 152 bytes a table, in classes of 4, 8, ..., 256 |
//! | upper, may hold entries (x86 levels 1, 2) | nothing, a child table, or a large entry | one 8-byte word: null, the child's address, or the tag `1` with the value at the same index of the table's value array | 8 + 8 bytes |
//! | upper, tables only (x86 level 3) | nothing, or a child table | one 8-byte word: null or the child's address | 8 bytes |
//!
//! A child table is linked by its address on every backend, so a lookup is
//! one load per level and no bounds check (links are valid by
//! construction). Every table also keeps an occupancy bitmap, one change
//! bit per slot and a count of its used slots, so empty tables are found
//! and freed at once. Tables are allocated where they live and initialised
//! there: no table is ever built on the stack or moved through it, so a
//! table of 4 KiB values, or with 16-bit levels, runs on a 64 KiB thread
//! stack.
//!
//! A bottom table takes the form its occupancy calls for (on `Heap` and
//! `Arena`): made for one entry it is *packed*, room for 4 values; it moves
//! to a larger class as it fills (a copy into a new table, value bytes
//! moved, no value code run) and to the *direct* form above 256 entries (or
//! above 64, where they crowd together: a dense run filling up); as
//! removes empty it, it moves back, once it is at most half as full as the
//! next smaller form holds (so an insert-remove pair at a boundary never
//! moves it back and forth). `remove` checks after each entry; the bulk
//! removes (`retain`, `remove_range`, `drain_range`, `extract_if`,
//! `pop_first`, `pop_last`) check each bottom table as they leave it. The
//! link to a packed table carries a tag bit, so a lookup in a direct table
//! reads nothing it did not read before.
//!
//! ```text
//!   lookup of 0x0000_4020_3123 on x86-64 (4 levels)
//!
//!   root (L3)         L2 table          L1 table          bottom table (L0)
//!   +-----------+     +-----------+     +-----------+     +----------------+
//!   | [0] ------+---->| [1] ------+---->| [1] ------+---->| present bit 3  |
//!   |           |     |           |     | (or tag 1:|     | value[3]       |
//!   +-----------+     +-----------+     |  2 MiB    |     +----------------+
//!   index = addr>>39  addr>>30 & 511    |  entry)   |     addr>>12 & 511
//!                                       +-----------+
//! ```
//!
//! # Large pages
//!
//! The table never splits, overwrites or discards a large entry on its own.
//! A base-page insert inside a large entry fails with
//! [`ErrorKind::ConflictLarger`]; a large insert over smaller entries fails
//! with [`ErrorKind::ConflictSmaller`]. [`MemTable::split`] and
//! [`MemTable::merge`] change the shape explicitly, through consumer-defined
//! [`ops::PageOps`]:
//!
//! ```text
//!   split(0x20_0000, Level 1)
//!
//!   level 1 table                     level 1 table           new level 0 table
//!   +-----+-------------+-----+       +-----+---------+-----+   +----+----+-----+----+
//!   | ... | Large(v)    | ... |  ==>  | ... | Table --+-----+-->| v0 | v1 | ... |v511|
//!   +-----+-------------+-----+       +-----+---------+-----+   +----+----+-----+----+
//!                                           vi = ops.split(2 MiB page, &v, sub-page i)
//!
//!   merge(0x20_0000, Level 1)         (every slot of the child full, none a table,
//!                                      ops.merge agrees: CloneOps needs all equal)
//!   level 1 table           level 0 table                 level 1 table
//!   +-----+---------+-----+   +----+----+-----+----+      +-----+----------+-----+
//!   | ... | Table --+-----+-->| v  | v  | ... | v  | ==>  | ... | Large(v) | ... |
//!   +-----+---------+-----+   +----+----+-----+----+      +-----+----------+-----+
//!                                                           (child table freed)
//! ```
//!
//! [`MemTable::insert_range`] covers a range with the largest aligned pages
//! that fit, and [`MemTable::remove_range`] removes one, splitting large
//! entries that straddle its ends; [`MemTable::compact`] merges everything
//! mergeable, bottom up.
//!
//! # Semantics
//!
//! | operation | takes | on a large entry | errors (table unchanged, value handed back) |
//! |---|---|---|---|
//! | `get`, `get_key_value`, `contains` | any byte address | returns the covering entry | none (`None`) |
//! | `insert(addr, v)` | base-aligned address | `ConflictLarger` | `Misaligned`, `OutOfReach`, `ConflictLarger`, `OutOfNodes` |
//! | `insert_at(addr, level, v)` | address aligned to the level | replaces one of the same level; `ConflictLarger` under a larger | also `NoEntriesAtLevel`, `ConflictSmaller` |
//! | `remove(addr)` | base-aligned address | `ConflictLarger`: never removes a large entry | `Misaligned`, `OutOfReach`, `ConflictLarger` |
//! | `remove_at(addr, level)` | address aligned to the level | removes one of the same level; `ConflictLarger` under a larger | also `NoEntriesAtLevel`, `ConflictSmaller` |
//! | `remove_covering(addr)` | any byte address | removes the whole covering entry, returns its page | none (`None`) |
//! | `split(addr, level)` | aligned to the level | splits it | `NothingToSplit`, `ConflictLarger`, `NoEntriesAtLevel`, `OutOfNodes` |
//! | `merge(addr, level)` | aligned to the level | - | `NotMergeable`, `ConflictLarger`, `NoEntriesAtLevel` |
//! | `insert_range`, `remove_range` | base-aligned range | replaced inside; split at the edges | `EmptyRange`, `Misaligned`, `OutOfReach`, `OutOfNodes` |
//! | `iter`, `range` | - | yielded once, with its [`Page`] | none |
//!
//! Every operation that may need tables first works out how many, reserves
//! them, and only then changes the table: running out of nodes
//! ([`ErrorKind::OutOfNodes`]) never leaves a half-built path. Merge, remove,
//! `retain`, `compact` and `clear` only free tables and never fail for lack
//! of them.
//!
//! # Cost
//!
//! | operation | time | allocation |
//! |---|---|---|
//! | `get`, `get_mut`, `contains` | O(levels) | none |
//! | `insert`, `insert_at`, `remove`, `remove_at`, `remove_covering` | O(levels), and in a packed bottom table O(its entries) moved | inserts: at most one table per level (a packed table that is full moves to a larger one); a remove may move a packed table to a smaller one (if that allocation fails, it stays as it is) |
//! | `split`, `merge` | O(fan-out) | one table (split) |
//! | `insert_range`, `remove_range` | O(levels x tables touched + entries written) | tables touched |
//! | `get_many` | O(levels) per address, the misses of a batch overlapped | none |
//! | `iter`, `range`, both ways, `into_iter` | O(1) amortised per entry and per table (one cursor, never from the root) | none |
//! | `take_changes` | O(changes x levels) | none |
//! | `clear`, drop | O(tables) (and the values' drops) | none |
//! | `clone` | O(tables + entries) | the tables in use |
//!
//! # Change tracking
//!
//! The RFC this crate grew from set a `changed` flag and never read it.
//! Here every mutation marks its slot and the path to it, and
//! [`MemTable::take_changes`] walks only marked paths, reporting each changed
//! page with its current entry (or `None` where an entry or a whole table was
//! removed), then clears the marks: the changed permissions a guest sends to
//! its hypervisor, or a VMM's dirty log.
//!
//! # Choosing a backend
//!
//! | backend | tables | use it for |
//! |---|---|---|
//! | [`backend::Heap`] (default) | one allocation each | general use |
//! | [`backend::Arena`] | carved out of chunks of up to 2 MiB that never move, returned as they empty | large tables: locality, cheap teardown |
//! | [`backend::Pool`] | a fixed number per level, allocated up front | code that must not allocate, or must bound its memory |
//!
//! All three run the same code and give identical results (apart from a
//! pool running out); a link is an address on each, so lookups cost the
//! same. `Heap` and `Arena` keep sparse bottom tables packed, and level-1
//! tables of at most 16 children in a links form of 64 to 176 bytes (a
//! store per packed size); a `Pool` keeps every table direct, since its
//! promise is a fixed number of tables per level, sized up front. `Heap`
//! returns a table's memory the moment it empties; `Arena`
//! packs neighbouring tables into shared pages and releases a chunk when its
//! tables are all freed; the pool never grows and reports
//! [`ErrorKind::OutOfNodes`] instead. Measured bytes per entry are in the
//! README's performance section.
//!
//! # `no_std`
//!
//! The crate is `#![no_std]` and needs only `alloc`. The `std` feature (on by
//! default) adds nothing today: errors implement [`core::error::Error`],
//! which is `std::error::Error`.
//!
//! # Safety
//!
//! `unsafe` lives in the private raw layer (tables behind raw pointers, values
//! in `MaybeUninit` slots guarded by presence bitmaps), in the backends
//! (memory for tables), and in the modules of the public types built on the
//! raw layer: the table, entries, iterators and change reports turn its
//! value pointers into references (the iterators and change reports also
//! declare `Send` and `Sync`), and the statistics walk its tables. Every
//! unsafe block says why it is sound (`clippy::undocumented_unsafe_blocks`
//! is denied), every unsafe function has a `# Safety` section, every type
//! with invariants an `# Invariants` section; links are pointers with
//! provenance (no integer-to-pointer casts), and the test suite runs under
//! Miri with strict provenance.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(rust_2018_idioms)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod addr;
pub mod backend;
mod changes;
mod cursor;
mod drain;
mod entry;
mod error;
pub mod geometries;
pub mod geometry;
mod iter;
mod large;
pub mod ops;
mod page;
pub mod pageset;
mod raw;
mod snapshot;
#[cfg(all(feature = "sync", target_pointer_width = "64"))]
pub mod sync;
mod table;
mod view;

pub use addr::Address;
pub use changes::{Change, Changes};
pub use cursor::{Cursor, CursorMut};
pub use drain::{Drain, ExtractIf};
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use error::{Error, ErrorKind};
pub use geometry::{Geometry, X86_4Level, X86_5Level};
pub use iter::{IntoIter, IntoKeys, IntoValues, Iter, IterMut, Keys, RangeMut, Values, ValuesMut};
pub use page::{Level, Page};
pub use pageset::PageSet;
pub use snapshot::{RestoreError, RestoreErrorKind};
pub use table::MemTable;
pub use view::{LevelStats, Occupancy, OccupancyCell, OccupancyOptions, OccupancyRow, Stats};

/// The type-level numbers used to describe [`geometry::Custom`] levels.
pub use typenum;

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
