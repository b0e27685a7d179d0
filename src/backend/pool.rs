//! [`Pool`]: a fixed number of nodes per level, allocated up front.

use alloc::vec::Vec;

use super::block::Block;
use super::{Backend, NoRoom, Store, sealed};

/// A fixed node capacity per level, allocated when the table is built; no
/// allocation after that.
///
/// For code that must not allocate (an EPT-violation handler, an interrupt
/// path) or must bound its memory. Each level below the root can hold
/// `capacity` tables and each large-page level `capacity` large entries' worth
/// of tables; the root is always there. When an operation needs more nodes
/// than are free it fails with
/// [`ErrorKind::OutOfNodes`](crate::ErrorKind::OutOfNodes), hands the value
/// back and leaves the table exactly as it was. Removing entries returns their
/// nodes to the pool.
///
/// The pool still needs `alloc` (its blocks come from the global allocator,
/// once, when the table is built; `iter_mut` also allocates a small index);
/// a table without any global allocator is not supported.
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
    capacity: usize,
}

impl Pool {
    /// A pool with room for `capacity` nodes at every level below the root.
    pub const fn new(capacity: usize) -> Pool {
        Pool { capacity }
    }

    /// The per-level capacity.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }
}

impl sealed::Sealed for Pool {}

impl Backend for Pool {
    type Store<T: Default> = PoolStore<T>;
    const NAME: &'static str = "pool";

    fn new_store<T: Default>(&self) -> PoolStore<T> {
        PoolStore(Block::new(Some(self.capacity)))
    }
}

/// The [`Pool`] store: a block that never grows past its capacity.
#[doc(hidden)]
pub struct PoolStore<T>(Block<T>);

impl<T: Default> Store<T> for PoolStore<T> {
    #[inline(always)]
    fn get(&self, id: u32) -> &T {
        self.0.get(id)
    }
    #[inline(always)]
    fn get_mut(&mut self, id: u32) -> &mut T {
        self.0.get_mut(id)
    }
    fn try_reserve(&mut self, n: usize) -> Result<usize, NoRoom> {
        self.0.try_reserve(n)
    }
    fn unreserve(&mut self, _added: usize) {}
    fn insert(&mut self, t: T) -> u32 {
        self.0.insert(t)
    }
    fn remove(&mut self, id: u32) -> T {
        self.0.remove(id)
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn available(&self) -> usize {
        self.0.available()
    }
    fn capacity(&self) -> Option<usize> {
        self.0.capacity()
    }
    fn bytes(&self) -> usize {
        self.0.bytes()
    }
    fn clear(&mut self) {
        self.0.clear();
    }
    fn refs_mut(&mut self) -> Vec<Option<&mut T>> {
        self.0.refs_mut()
    }
    fn clone_with(&self, f: impl FnMut(&T) -> T) -> Self {
        PoolStore(self.0.clone_with(f))
    }
}
