//! One contiguous block of nodes per level, with a free list of ids: the
//! storage of [`Arena`](super::Arena) (which grows it) and
//! [`Pool`](super::Pool) (which never does).
//!
//! A freed node is replaced by an empty default node and its id goes on the
//! free list, so every id below `nodes.len()` always names a valid node and
//! a lookup is one bounds-checked index, with no tag to test.

use alloc::vec::Vec;
use core::mem::{self, size_of};

use super::{NoRoom, Store};

/// Nodes of one level in one `Vec`.
///
/// # Invariants
/// - `free` holds distinct ids below `nodes.len()`; the nodes at those ids
///   are empty defaults and referenced by no slot.
/// - `free.capacity() >= nodes.len()`, so freeing never allocates.
/// - With `limit = Some(n)`: `nodes.len() <= n` and `nodes.capacity()` was
///   fixed at construction.
#[doc(hidden)]
pub struct Block<T> {
    nodes: Vec<T>,
    free: Vec<u32>,
    limit: Option<usize>,
}

impl<T: Default> Block<T> {
    /// A block that grows as needed (`limit = None`) or holds at most
    /// `limit` nodes, allocated now.
    pub(crate) fn new(limit: Option<usize>) -> Self {
        let cap = limit.unwrap_or(0);
        Block { nodes: Vec::with_capacity(cap), free: Vec::with_capacity(cap), limit }
    }
}

impl<T: Default> Store<T> for Block<T> {
    #[inline(always)]
    fn get(&self, id: u32) -> &T {
        &self.nodes[id as usize]
    }

    #[inline(always)]
    fn get_mut(&mut self, id: u32) -> &mut T {
        &mut self.nodes[id as usize]
    }

    fn len(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Inserts possible without allocating.
    fn available(&self) -> usize {
        let room = self.limit.unwrap_or(self.nodes.capacity()) - self.nodes.len();
        self.free.len() + room
    }

    fn capacity(&self) -> Option<usize> {
        self.limit
    }

    fn try_reserve(&mut self, n: usize) -> Result<usize, NoRoom> {
        if n <= self.available() {
            return Ok(0);
        }
        if self.limit.is_some() {
            return Err(NoRoom);
        }
        let more = n - self.free.len();
        self.nodes.try_reserve(more).map_err(|_| NoRoom)?;
        let cap = self.nodes.capacity();
        self.free.try_reserve_exact(cap - self.free.len()).map_err(|_| NoRoom)?;
        // Growing capacity is not undone on a later failure: it holds no node.
        Ok(0)
    }

    fn unreserve(&mut self, _added: usize) {}

    fn insert(&mut self, t: T) -> u32 {
        if let Some(id) = self.free.pop() {
            self.nodes[id as usize] = t;
            return id;
        }
        assert!(
            self.limit.is_none_or(|l| self.nodes.len() < l),
            "mem-table: pool insert without a reservation"
        );
        assert!(self.nodes.len() < u32::MAX as usize, "mem-table: more than 2^32 - 1 nodes");
        self.nodes.push(t);
        if self.free.capacity() < self.nodes.capacity() {
            self.free.reserve_exact(self.nodes.capacity() - self.free.len());
        }
        (self.nodes.len() - 1) as u32
    }

    fn remove(&mut self, id: u32) -> T {
        let t = mem::take(&mut self.nodes[id as usize]);
        debug_assert!(self.free.len() < self.free.capacity());
        self.free.push(id);
        t
    }

    fn bytes(&self) -> usize {
        self.nodes.capacity() * size_of::<T>() + self.free.capacity() * size_of::<u32>()
    }

    /// Empties the block. A growing block gives its memory back; a bounded
    /// one keeps it.
    fn clear(&mut self) {
        self.free.clear();
        if self.limit.is_some() {
            self.nodes.clear();
        } else {
            // Reset first: if a node's drop unwinds, the block is already empty.
            let nodes = mem::take(&mut self.nodes);
            self.free = Vec::new();
            drop(nodes);
        }
    }

    /// Every node, by id (free ones included: they are empty).
    fn refs_mut(&mut self) -> Vec<Option<&mut T>> {
        self.nodes.iter_mut().map(Some).collect()
    }

    fn clone_with(&self, f: impl FnMut(&T) -> T) -> Self {
        let cap = self.limit.unwrap_or(self.nodes.len());
        let mut nodes = Vec::with_capacity(cap);
        nodes.extend(self.nodes.iter().map(f));
        let mut free = Vec::with_capacity(cap.max(self.free.len()));
        free.extend_from_slice(&self.free);
        Block { nodes, free, limit: self.limit }
    }
}
