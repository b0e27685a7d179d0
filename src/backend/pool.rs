//! [`Pool`]: a fixed number of nodes per level, allocated up front.

use core::alloc::Layout;

use super::chunks::Chunks;
use super::{Backend, sealed};
use crate::geometry::MAX_LEVELS;
use crate::page::Level;

/// A fixed node capacity per level, allocated when the table is built; no
/// allocation after that.
///
/// For code that must not allocate (an EPT-violation handler, an interrupt
/// path) or must bound its memory. Each level below the root can hold
/// `capacity` tables (or a capacity per level, [`Pool::with_capacities`]);
/// the root is always there. When an operation needs more nodes
/// than are free it fails with
/// [`ErrorKind::OutOfNodes`](crate::ErrorKind::OutOfNodes), hands the value
/// back and leaves the table exactly as it was. Removing entries returns their
/// nodes to the pool.
///
/// The pool's blocks come from the global allocator once, when the table is
/// built (one block per level, 2 MiB-aligned when 2 MiB or larger); after
/// that no operation allocates, iteration and change reports included,
/// except `clone` (which builds a new pool) and, once
/// [`MemTable::track_values`](crate::MemTable::track_values) is on,
/// what it keeps for comparison (clones of values, and the change marks of
/// tables that removals free, in ordered maps on the global allocator).
///
/// ```
/// use mem_table::{ErrorKind, MemTable, backend::Pool, geometry::X86_4Level};
/// // Room for one path below the root: one table per level.
/// let mut t: MemTable<u64, X86_4Level, Pool> = MemTable::with_backend(Pool::new(1));
/// t.insert(0x1000, 1).unwrap();
/// t.insert(0x2000, 2).unwrap(); // same bottom table
/// let err = t.insert(0x4000_0000_0000, 3).unwrap_err(); // needs a second path
/// assert_eq!(err.kind(), ErrorKind::OutOfNodes);
/// assert_eq!(err.into_value(), 3);
/// assert_eq!(t.len(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// Tables each level may hold, bottom first.
    capacities: [usize; MAX_LEVELS],
}

impl Pool {
    /// A pool with room for `capacity` tables at every level below the root.
    pub const fn new(capacity: usize) -> Pool {
        Pool { capacities: [capacity; MAX_LEVELS] }
    }

    /// A pool with room for `capacities[l]` tables at level `l`, bottom
    /// first (levels past the slice get none). A table that fills its bottom
    /// tables needs far fewer tables above: sizing each level saves the
    /// memory a uniform capacity would reserve there.
    ///
    /// ```
    /// use mem_table::{Level, MemTable, backend::Pool, geometry::X86_4Level};
    /// // 64 bottom tables (32 Ki pages) under one table at each level above.
    /// let pool = Pool::with_capacities(&[64, 1, 1]);
    /// let mut t: MemTable<u64, X86_4Level, Pool> = MemTable::with_backend(pool);
    /// for i in 0..64u64 {
    ///     t.insert(i << 21, i).unwrap(); // one page in each of 64 2 MiB regions
    /// }
    /// assert_eq!(t.insert(64 << 21, 0).unwrap_err().kind(), mem_table::ErrorKind::OutOfNodes);
    /// assert_eq!(pool.capacity(Level::new(1)), 1);
    /// ```
    pub fn with_capacities(capacities: &[usize]) -> Pool {
        let mut c = [0; MAX_LEVELS];
        for (slot, &cap) in c.iter_mut().zip(capacities) {
            *slot = cap;
        }
        Pool { capacities: c }
    }

    /// The capacity of `level`.
    pub fn capacity(&self, level: Level) -> usize {
        self.capacities.get(level.index()).copied().unwrap_or(0)
    }
}

impl sealed::Sealed for Pool {
    type Store = Chunks;
    const PACKS: bool = false;

    fn new_store(&self, level: u8, top: bool, layout: Layout) -> Chunks {
        let cap = if top { 1 } else { self.capacities[level as usize] };
        Chunks::fixed(layout, cap)
    }
}

impl Backend for Pool {
    const NAME: &'static str = "pool";
}
