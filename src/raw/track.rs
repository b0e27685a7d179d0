//! Value-aware change tracking: the values entries had at the last
//! committed report, kept for the entries reached mutably since.
//!
//! A mark says only that a slot *may* have changed. Where the table can
//! compare values (`V: PartialEq + Clone`, switched on by
//! [`MemTable::track_values`](crate::MemTable::track_values)), the first
//! time a batch marks a slot, what the slot held is kept here: a clone of
//! its value, or that it was empty. A slot not marked since the last
//! committed report holds what it held then, so what is kept is what the
//! last report said. The report leaves out each slot that holds what was
//! kept (an equal value, or nothing again), and joins neighbouring regions
//! with equal values.
//!
//! | event | kept, keyed by `(address, level)` |
//! |---|---|
//! | first mark of an entry's slot in a batch (mutable access, replace, remove) | `Some(clone of its value)` |
//! | first mark of an empty slot in a batch (an insert, a new table) | `None`: it was empty |
//! | later marks of that slot in the batch | nothing more |
//! | a report committed | everything dropped |
//! | a report abandoned | everything kept (the marks stay too) |
//!
//! Cost: one clone and one `BTreeMap` insert per entry per batch, at its
//! first mutable access; memory O(entries reached mutably since the last
//! committed report).

use alloc::collections::BTreeMap;

use super::bitmap;
use super::layout::Lv;
use super::node::Tab;

/// The comparisons and the values kept: see the module docs.
pub struct Track<V> {
    /// `V`'s `PartialEq::eq`.
    pub eq: fn(&V, &V) -> bool,
    /// `V`'s `Clone::clone`.
    pub clone: fn(&V) -> V,
    /// What each slot marked since the last committed report held then:
    /// its value, or `None` for empty.
    pub before: BTreeMap<(u64, u8), Option<V>>,
}

impl<V> Track<V> {
    /// Tracking for a `V` that can be compared and cloned.
    pub fn new() -> Self
    where
        V: PartialEq + Clone,
    {
        Track { eq: V::eq, clone: V::clone, before: BTreeMap::new() }
    }

    /// A copy of this tracking, its kept values cloned.
    pub fn copy(&self) -> Self {
        let before = self.before.iter().map(|(&k, v)| (k, v.as_ref().map(self.clone))).collect();
        Track { eq: self.eq, clone: self.clone, before }
    }

    /// Keeps what slot `i` of `t` (the place `(addr, level)`) holds, the
    /// value at `v` or nothing (null), unless the slot is already marked:
    /// called just before the slot is marked.
    ///
    /// # Safety
    /// `t` is a live table of layout `lv`, `i` one of its slots, and `v` is
    /// null or points to the initialized value of the entry in that slot.
    #[inline]
    pub unsafe fn touch(&mut self, t: Tab, lv: &Lv, i: usize, addr: u64, level: u8, v: *const V) {
        // SAFETY: caller.
        if unsafe { bitmap::get(t.dirty(lv), i) } {
            return;
        }
        // SAFETY: caller.
        self.keep(addr, level, unsafe { v.as_ref() });
    }

    /// Keeps `v` (cloned), what the place `(addr, level)` holds at its first
    /// mark of the batch.
    pub fn keep(&mut self, addr: u64, level: u8, v: Option<&V>) {
        self.before.entry((addr, level)).or_insert_with(|| v.map(self.clone));
    }

    /// Whether the place `(addr, level)` holds what it held at the last
    /// committed report: an equal value, or nothing again.
    pub fn unchanged(&self, addr: u64, level: u8, v: Option<&V>) -> bool {
        match (self.before.get(&(addr, level)), v) {
            (Some(Some(b)), Some(v)) => (self.eq)(b, v),
            (Some(None), None) => true,
            _ => false,
        }
    }
}
