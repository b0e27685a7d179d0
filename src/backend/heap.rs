//! [`Heap`]: every node its own allocation.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem::size_of;

use super::slab::{Entry, Slab};
use super::{Backend, NoRoom, Store, sealed};

/// Every node is its own allocation from the global allocator. The default.
///
/// Simple and fast for tables up to a few hundred thousand pages; memory goes
/// back to the allocator as soon as a table is freed. Allocation failure is
/// reported as [`ErrorKind::OutOfNodes`](crate::ErrorKind::OutOfNodes) by
/// every fallible operation (nodes are allocated with `try_reserve`-style
/// calls before the table changes).
///
/// ```
/// use mem_table::{MemTable, backend::Heap, geometry::X86_4Level};
/// let t: MemTable<u64, X86_4Level, Heap> = MemTable::new();
/// assert!(t.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heap;

impl sealed::Sealed for Heap {}

impl Backend for Heap {
    type Store<T: Default> = HeapStore<T>;
    const NAME: &'static str = "heap";

    fn new_store<T: Default>(&self, _level: u8) -> HeapStore<T> {
        HeapStore { slab: Slab::with_capacity(0), spare: Vec::new() }
    }
}

/// A node in its own allocation. (A one-element array, because a `Box<T>`
/// cannot be allocated fallibly on stable Rust, but a `Vec` can and converts.)
type NodeBox<T> = Box<[T; 1]>;

/// The [`Heap`] store: ids index a slab of boxes.
#[doc(hidden)]
pub struct HeapStore<T> {
    slab: Slab<NodeBox<T>>,
    /// Boxes allocated ahead by `try_reserve`, holding default items.
    spare: Vec<NodeBox<T>>,
}

/// Allocates a box for a default `T`, or `None` if the allocator refuses.
fn try_box<T: Default>() -> Option<NodeBox<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(1).ok()?;
    v.push(T::default());
    v.into_boxed_slice().try_into().ok()
}

impl<T: Default> Store<T> for HeapStore<T> {
    #[inline(always)]
    fn get(&self, id: u32) -> &T {
        &self.slab.get(id)[0]
    }

    #[inline(always)]
    fn get_mut(&mut self, id: u32) -> &mut T {
        &mut self.slab.get_mut(id)[0]
    }

    fn try_reserve(&mut self, n: usize) -> Result<usize, NoRoom> {
        if n <= self.spare.len() {
            return Ok(0);
        }
        let ids_needed = n.saturating_sub(self.slab.vacant());
        self.slab.entries.try_reserve(ids_needed).map_err(|_| NoRoom)?;
        self.spare.try_reserve(n).map_err(|_| NoRoom)?;
        let before = self.spare.len();
        while self.spare.len() < n {
            match try_box() {
                Some(b) => self.spare.push(b),
                None => {
                    self.spare.truncate(before);
                    return Err(NoRoom);
                }
            }
        }
        Ok(self.spare.len() - before)
    }

    fn unreserve(&mut self, added: usize) {
        self.spare.truncate(self.spare.len() - added);
    }

    fn insert(&mut self, t: T) -> u32 {
        let b = match self.spare.pop() {
            Some(mut b) => {
                b[0] = t;
                b
            }
            None => Box::new([t]),
        };
        self.slab.insert(b)
    }

    fn remove(&mut self, id: u32) -> T {
        let [t] = *self.slab.remove(id);
        t
    }

    fn len(&self) -> usize {
        self.slab.len()
    }

    fn available(&self) -> usize {
        self.spare.len()
    }

    fn capacity(&self) -> Option<usize> {
        None
    }

    fn bytes(&self) -> usize {
        self.slab.entries.capacity() * size_of::<Entry<NodeBox<T>>>()
            + self.spare.capacity() * size_of::<NodeBox<T>>()
            + (self.slab.len() + self.spare.len()) * size_of::<T>()
    }

    fn clear(&mut self) {
        self.spare = Vec::new();
        self.slab.clear();
        self.slab.entries.shrink_to_fit();
    }

    fn refs_mut(&mut self) -> Vec<Option<&mut T>> {
        self.slab.refs_mut().map(|b| b.map(|b| &mut b[0])).collect()
    }

    fn clone_with(&self, mut f: impl FnMut(&T) -> T) -> Self {
        HeapStore { slab: self.slab.clone_with(0, |b| Box::new([f(&b[0])])), spare: Vec::new() }
    }
}
