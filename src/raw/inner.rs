//! Tables above the bottom level: each slot is empty, a child table, or a
//! large-page entry.

use generic_array::GenericArray;

use super::bitmap;
use crate::geometry::Width;

/// One slot of an upper table.
#[derive(Clone, Debug, Default)]
pub enum Slot<V> {
    /// Nothing is mapped in the slot's region.
    #[default]
    Empty,
    /// The region is described by a child table, by its id in the store of
    /// the level below.
    Table(u32),
    /// The whole region is one large-page entry.
    Large(V),
}

/// A table above the bottom level.
///
/// # Invariants
/// - `len` is the number of slots that are not [`Slot::Empty`], and `used`
///   has exactly their bits set.
/// - A slot is [`Slot::Large`] only at a level that may hold entries.
/// - A [`Slot::Table`] child is never empty (empty tables are freed).
pub struct InnerNode<V, W: Width> {
    /// The slots.
    pub slots: GenericArray<Slot<V>, W::Fanout>,
    /// One bit per slot: the slot, or something below it, changed since the
    /// last change report.
    pub dirty: GenericArray<u64, W::Words>,
    /// One bit per slot that is not empty, so that walks skip empty slots a
    /// word at a time.
    used: GenericArray<u64, W::Words>,
    /// Number of slots that are not empty.
    pub len: u32,
}

impl<V, W: Width> Default for InnerNode<V, W> {
    fn default() -> Self {
        InnerNode {
            slots: GenericArray::default(),
            dirty: GenericArray::default(),
            used: GenericArray::default(),
            len: 0,
        }
    }
}

impl<V: Clone, W: Width> Clone for InnerNode<V, W> {
    fn clone(&self) -> Self {
        InnerNode {
            slots: self.slots.clone(),
            dirty: self.dirty.clone(),
            used: self.used.clone(),
            len: self.len,
        }
    }
}

impl<V, W: Width> InnerNode<V, W> {
    /// Slots in the node.
    pub const FANOUT: usize = 1 << W::USIZE;

    /// Replaces slot `i`, keeping `len` right, and marks it changed.
    pub fn set(&mut self, i: usize, new: Slot<V>) -> Slot<V> {
        let old = core::mem::replace(&mut self.slots[i], new);
        match (&old, &self.slots[i]) {
            (Slot::Empty, Slot::Empty) => {}
            (Slot::Empty, _) => {
                self.len += 1;
                bitmap::set(&mut self.used, i);
            }
            (_, Slot::Empty) => {
                self.len -= 1;
                bitmap::clear(&mut self.used, i);
            }
            _ => {}
        }
        bitmap::set(&mut self.dirty, i);
        old
    }

    /// The first slot at or after `from` that is not empty.
    #[inline]
    pub fn next_occupied(&self, from: usize) -> Option<usize> {
        bitmap::next_set(&self.used, from)
    }

    /// The occupancy bitmap.
    pub fn used(&self) -> &[u64] {
        &self.used
    }
}
