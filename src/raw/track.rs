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
use alloc::vec::Vec;

use super::layout::{Info, Lv};
use super::node::Tab;
use crate::geometry::Geometry;

/// The comparisons and the values kept: see the module docs.
pub struct Track<V> {
    /// `V`'s `PartialEq::eq`.
    pub eq: fn(&V, &V) -> bool,
    /// `V`'s `Clone::clone`.
    pub clone: fn(&V) -> V,
    /// What each slot marked since the last committed report held then:
    /// its value, or `None` for empty.
    pub before: BTreeMap<(u64, u8), Option<V>>,
    /// The change marks of each table that removals emptied and freed since
    /// the last committed report, keyed by `(base address, level)`: an
    /// unmarked slot of such a table was empty at that report. Only the
    /// first table freed at a place counts (a later one there was made in
    /// the batch, every slot marked).
    pub freed: BTreeMap<(u64, u8), Vec<u64>>,
}

impl<V> Track<V> {
    /// Tracking for a `V` that can be compared and cloned.
    pub fn new() -> Self
    where
        V: PartialEq + Clone,
    {
        Track { eq: V::eq, clone: V::clone, before: BTreeMap::new(), freed: BTreeMap::new() }
    }

    /// A copy of this tracking, its kept values cloned.
    pub fn copy(&self) -> Self {
        let before = self.before.iter().map(|(&k, v)| (k, v.as_ref().map(self.clone))).collect();
        Track { eq: self.eq, clone: self.clone, before, freed: self.freed.clone() }
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
        if unsafe { t.marked(lv, i) } {
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

    /// Keeps the marks of table `t` (layout `lv`, the table of `level` based
    /// at `base`), which removals left empty and which is about to be freed.
    ///
    /// # Safety
    /// `t` is a live table of layout `lv`.
    pub unsafe fn freed_table(&mut self, t: Tab, lv: &Lv, base: u64, level: u8) {
        self.freed.entry((base, level)).or_insert_with(|| {
            (0..lv.words)
                .map(|w| {
                    // SAFETY: caller; the change map has `lv.words` words.
                    unsafe { t.mark_word(lv, w) }
                })
                .collect()
        });
    }

    /// Whether the place `(addr, level)` was empty at the last committed
    /// report, as far as what is kept can tell (`false` when it cannot):
    /// kept as empty itself, or inside a place kept as empty, or an
    /// unmarked slot of a table freed since, at its level or above.
    pub fn was_empty<G: Geometry>(&self, addr: u64, level: u8) -> bool {
        for k in level as usize..G::LEVELS {
            let lv = Info::<V, G>::lv(k);
            let a = addr & !((1u64 << lv.shift) - 1);
            match self.before.get(&(a, k as u8)) {
                Some(None) => return true,
                Some(Some(_)) => return false,
                None => {}
            }
            let span = lv.shift + lv.bits;
            let base = if span >= 64 { 0 } else { addr & !((1u64 << span) - 1) };
            if let Some(marks) = self.freed.get(&(base, k as u8)) {
                let i = lv.index(addr);
                return marks[i / 64] & (1 << (i % 64)) == 0;
            }
        }
        false
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
