//! Node-storage backends: where a table's nodes live.
//!
//! A [`MemTable`](crate::MemTable) keeps the nodes of each level in a store of
//! that level, and links a parent slot to a child table by the child's `u32`
//! id in that store. The backend, a type parameter, decides how a store gets
//! its memory:
//!
//! | backend | node memory | grows | fallible without panicking |
//! |---|---|---|---|
//! | [`Heap`] (default) | one global-allocator allocation per node | yes | yes (allocation failure is an error) |
//! | [`Arena`] | one contiguous block per level | yes, doubling | yes |
//! | [`Pool`] | one block per level, allocated when the table is built | never | yes (running out is an error) |
//!
//! All three run the same table code and give identical results; they differ
//! only in speed, memory and when they can run out. None of them contains
//! `unsafe` code.

mod arena;
mod block;
mod heap;
mod pool;
mod slab;

pub use arena::Arena;
#[doc(hidden)]
pub use block::Block;
pub use heap::Heap;
pub use pool::Pool;

use alloc::vec::Vec;

mod sealed {
    pub trait Sealed {}
}

/// How a table stores its nodes. Sealed: choose [`Heap`], [`Arena`] or [`Pool`].
pub trait Backend: sealed::Sealed + Clone + 'static {
    /// The store of one level's nodes (or large entries).
    #[doc(hidden)]
    type Store<T: Default>: Store<T>;

    /// A short name, for reports.
    const NAME: &'static str;

    /// A new, empty store for the tables of `level`, configured by this
    /// backend value.
    #[doc(hidden)]
    fn new_store<T: Default>(&self, level: u8) -> Self::Store<T>;
}

/// A store could not make room: the pool is full or the allocator refused.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoRoom;

/// A store of `T`s addressed by `u32` ids. Not part of the public API.
///
/// The contract that makes fallible operations all-or-nothing: after
/// `try_reserve(n)` succeeds, the next `n` calls to `insert` neither allocate
/// nor fail.
#[doc(hidden)]
pub trait Store<T>: Sized {
    /// The item with id `id`.
    ///
    /// # Panics
    /// If `id` is not occupied (a bug in the table).
    fn get(&self, id: u32) -> &T;
    /// The item with id `id`, mutably.
    fn get_mut(&mut self, id: u32) -> &mut T;
    /// Makes room so that `n` more inserts need no allocation. Returns a
    /// token of what it set aside, for [`Store::unreserve`].
    fn try_reserve(&mut self, n: usize) -> Result<usize, NoRoom>;
    /// Gives back what a `try_reserve` that returned `added` set aside.
    fn unreserve(&mut self, added: usize);
    /// Stores `t`, returning its id.
    fn insert(&mut self, t: T) -> u32;
    /// Removes and returns the item with id `id`, freeing its memory where
    /// the backend frees memory.
    fn remove(&mut self, id: u32) -> T;
    /// Items stored.
    fn len(&self) -> usize;
    /// Whether no item is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Items that can be stored without allocating.
    fn available(&self) -> usize;
    /// The most items the store can ever hold, if it is bounded.
    fn capacity(&self) -> Option<usize>;
    /// Bytes the store holds from the allocator.
    fn bytes(&self) -> usize;
    /// Removes every item.
    fn clear(&mut self);
    /// Mutable references to every item, indexed by id.
    fn refs_mut(&mut self) -> Vec<Option<&mut T>>;
    /// A copy of the store, items cloned by `f`, ids and capacity kept.
    fn clone_with(&self, f: impl FnMut(&T) -> T) -> Self;
}
