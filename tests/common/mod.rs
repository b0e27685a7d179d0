//! Helpers shared by the integration tests: a snapshot of everything a
//! failed operation must leave alone, the backends the tests run on, and a
//! few tiny geometries for edge cases.
//!
//! Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::fmt::Debug;

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::{Custom, Large};
use mem_table::typenum::{U3, U12};
use mem_table::{Geometry, LevelStats, Page, Stats};

pub use mem_table::MemTable;

/// Three 3-bit levels over 4 KiB pages: base pages, 32 KiB large pages at
/// level 1, and a root that holds only tables. Reach: 2 MiB.
pub type Tiny = Custom<U12, (U3, Large<U3>, U3)>;

/// Four 3-bit levels: large pages at levels 1 (32 KiB) and 2 (256 KiB).
/// Reach: 16 MiB.
pub type Tiny4 = Custom<U12, (U3, Large<U3>, Large<U3>, U3)>;

/// Four 3-bit levels where level 2 (256 KiB) holds large pages but level 1
/// does not: a level-2 entry cannot be split.
pub type NoSplitBelow = Custom<U12, (U3, U3, Large<U3>, U3)>;

/// Tables per level of the pool used when a test is not about running out.
pub const ROOMY_POOL: usize = 16;

/// A backend the tests can build, with more room than any test needs.
pub trait TestBackend: Backend + Debug {
    /// The backend value.
    fn roomy() -> Self;
}

impl TestBackend for Heap {
    fn roomy() -> Self {
        Heap
    }
}

impl TestBackend for Arena {
    fn roomy() -> Self {
        Arena
    }
}

impl TestBackend for Pool {
    fn roomy() -> Self {
        Pool::new(ROOMY_POOL)
    }
}

/// Runs a test that is generic over the backend on every backend, as in
/// `every_backend(misaligned_on::<Heap>, misaligned_on::<Arena>, misaligned_on::<Pool>)`.
///
/// Under Miri, some thousand times slower, only on the heap: the backends
/// are safe code, so the other two would add minutes but no unsafe code.
pub fn every_backend(heap: fn(), arena: fn(), pool: fn()) {
    heap();
    if !cfg!(miri) {
        arena();
        pool();
    }
}

/// The cases of a table-driven test: all of them, or under Miri only the
/// first (each case there costs seconds).
pub fn cases<T>(all: &[T]) -> &[T] {
    if cfg!(miri) { &all[..1] } else { all }
}

/// An empty table on a roomy backend `B`.
pub fn table<V, G: Geometry, B: TestBackend>() -> MemTable<V, G, B> {
    MemTable::with_backend(B::roomy())
}

/// Everything an operation that fails must leave as it was.
#[derive(Debug, PartialEq)]
pub struct Snapshot<K> {
    pub len: usize,
    /// Every entry, in iteration order.
    pub entries: Vec<(Page, K)>,
    /// Node counts, bytes and free nodes per level, bottom first.
    pub levels: Vec<LevelStats>,
    /// Whether anything is marked changed.
    pub has_changes: bool,
    /// What `take_changes` would report now, read from a clone so that the
    /// table's own marks stay. (Empty under Miri, where a clone of an x86
    /// table takes seconds.)
    pub changes: Vec<(u64, u64, Option<K>)>,
}

/// A snapshot of `t`, its values cloned. Also checks the table's invariants.
pub fn snapshot<V: Clone, G: Geometry, B: Backend>(t: &MemTable<V, G, B>) -> Snapshot<V> {
    snapshot_by(t, V::clone)
}

/// A snapshot of `t` with every value seen through `key`. Also checks the
/// table's invariants.
pub fn snapshot_by<V: Clone, K, G: Geometry, B: Backend>(
    t: &MemTable<V, G, B>,
    key: impl Fn(&V) -> K,
) -> Snapshot<K> {
    if let Err(e) = t.check_invariants() {
        panic!("table invariants broken: {e}");
    }
    let entries: Vec<_> = t.iter().map(|(p, v)| (p, key(v))).collect();
    assert_eq!(entries.len(), t.len(), "len disagrees with iteration");
    let changes = if cfg!(miri) {
        Vec::new()
    } else {
        let mut copy = t.clone();
        copy.take_changes().map(|c| (c.start, c.last, c.value.map(&key))).collect()
    };
    Snapshot {
        len: t.len(),
        entries,
        levels: t.stats().levels().to_vec(),
        has_changes: t.has_changes(),
        changes,
    }
}

/// The pages of `t` as `(address, level)`, in order.
pub fn pages<V, G: Geometry, B: Backend>(t: &MemTable<V, G, B>) -> Vec<(u64, usize)> {
    t.keys().map(|p| (p.addr(), p.level().index())).collect()
}

/// Whether the table keeps no table but the root, and a bounded backend has
/// every node back.
pub fn holds_no_tables(stats: &Stats) -> bool {
    let below_root = &stats.levels()[..stats.levels().len() - 1];
    below_root.iter().all(|l| l.nodes == 0 && l.capacity.is_none_or(|c| l.available == c))
}
