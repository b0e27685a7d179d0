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
//! // Change tracking: what to tell the hypervisor since last time.
//! let changed = rights.take_changes().count();
//! assert_eq!(changed, 1 + 512);
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
//! | changed | a slot marked by a mutation since the last [`MemTable::take_changes`] |
//!
//! # How a slot is represented
//!
//! | table | slot holds | representation | cost with `V = u64` |
//! |---|---|---|---|
//! | bottom (level 0) | nothing, or a base entry | a presence bit + `MaybeUninit<V>` | 8 bytes + 1 bit |
//! | upper, may hold entries (x86 levels 1, 2) | nothing, a child table, or a large entry | `enum { Empty, Table(u32), Large(V) }` | 16 bytes |
//! | upper, tables only (x86 level 3) | nothing, or a child table | the same enum; `Large` never occurs | 16 bytes |
//!
//! A child table is named by a `u32` id in the store of its level, not by a
//! pointer; every table also keeps one change bit per slot and a count of its
//! used slots, so empty tables are found and freed at once.
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
//! | `remove(addr)` | base-aligned address | removes the whole covering entry | `Misaligned`, `OutOfReach` |
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
//! | `insert`, `insert_at`, `remove` | O(levels) | at most one table per level |
//! | `split`, `merge` | O(fan-out) | one table (split) |
//! | `insert_range`, `remove_range` | O(levels x tables touched + entries written) | tables touched |
//! | `iter`, `range` | O(levels) per table or large entry, O(1) per base entry | none |
//! | `take_changes` | O(changes x levels) | the list of changes |
//! | `clear`, drop | O(tables) (and the values' drops) | none |
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
//! | backend | nodes | use it for |
//! |---|---|---|
//! | [`backend::Heap`] (default) | one allocation each | general use |
//! | [`backend::Arena`] | packed in 2 MiB+ slabs | large tables: locality, cheap teardown |
//! | [`backend::Pool`] | a fixed number per level, allocated up front | code that must not allocate, or must bound its memory |
//!
//! All three give identical results (apart from a pool running out). Bytes
//! per entry with `u64` values at 2^20 entries, measured with a counting
//! allocator by `cargo run --release --example compare`:
//!
//! | backend | dense | clustered in 64 GiB | clustered over 48 bits | random 12.5% |
//! |---|---|---|---|---|
//! | `Heap` | 8.34 | 8.82 | 28.5 | 66.6 |
//! | `Arena` | 8.32 | 8.80 | 28.6 | 66.5 |
//! | `Pool` (sized per level) | 8.32 | 8.80 | 28.4 | 66.5 |
//! | `HashMap<u64, u64>`, for scale | 34.0 | 34.0 | 34.0 | 34.0 |
//!
//! `Heap` returns a table's memory the moment it empties but pays one more
//! pointer per level on lookups; `Arena` and `Pool` index one block per
//! level (the fastest lookups), the arena growing it and keeping freed
//! tables for reuse, the pool never growing and reporting
//! [`ErrorKind::OutOfNodes`] instead.
//!
//! # `no_std`
//!
//! The crate is `#![no_std]` and needs only `alloc`. The `std` feature (on by
//! default) adds nothing today: errors implement [`core::error::Error`],
//! which is `std::error::Error`.
//!
//! # Safety
//!
//! One module uses `unsafe`: bottom tables keep values in
//! `MaybeUninit<V>` slots guarded by a presence bitmap, so a `u64` costs
//! 8 bytes, not the 16 of an `Option<u64>`. Every block says why it is sound
//! (`clippy::undocumented_unsafe_blocks` is denied), and the test suite runs
//! under Miri with strict provenance.
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(rust_2018_idioms)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backend;
mod changes;
mod entry;
mod error;
pub mod geometries;
pub mod geometry;
mod iter;
mod large;
pub mod ops;
mod page;
mod raw;
mod table;

pub use changes::{Change, Changes};
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use error::{Error, ErrorKind};
pub use geometry::{Geometry, X86_4Level, X86_5Level};
pub use iter::{IntoIter, Iter, IterMut, Keys, RangeMut, Values, ValuesMut};
pub use page::{Level, Page};
pub use table::{LevelStats, MemTable, Stats};

/// The type-level numbers used to describe [`geometry::Custom`] levels.
pub use typenum;

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
