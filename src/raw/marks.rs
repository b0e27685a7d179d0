//! Change marks and the walks that prune: the [`Down`] guard, `retain`.
//!
//! Every mutation marks its slot and the slots on the path to it, so a
//! report (the [`Cursor`](super::cursor::Cursor) over the change maps)
//! visits only marked paths: O(changes x levels), not O(table). A child
//! table with marks always has its parent slot marked.

use core::ptr;

use super::node::{Slot, Tab};
use super::{RawTable, page_at};
use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;

/// Goes down into child `c` of slot `i` of `t` (level `l`) for a walk that
/// may empty it; when dropped (also on unwind), marks the slot if the child
/// has marks and frees the child if it is empty.
pub struct Down<'a, V, G: Geometry, B: Backend> {
    pub raw: &'a mut RawTable<V, G, B>,
    t: Tab,
    l: usize,
    i: usize,
    c: Tab,
}

impl<'a, V, G: Geometry, B: Backend> Down<'a, V, G, B> {
    pub fn new(raw: &'a mut RawTable<V, G, B>, t: Tab, l: usize, i: usize, c: Tab) -> Self {
        Down { raw, t, l, i, c }
    }
}

impl<V, G: Geometry, B: Backend> Drop for Down<'_, V, G, B> {
    fn drop(&mut self) {
        let (lv, clv) = (RawTable::<V, G, B>::lv(self.l), RawTable::<V, G, B>::lv(self.l - 1));
        // SAFETY: `t` links the live table `c` in slot `i`.
        unsafe {
            if self.c.has_marks(clv) {
                self.t.mark(lv, self.i);
            }
            if self.c.len(clv) == 0 {
                self.t.set_word(lv, self.i, ptr::null_mut());
                self.raw.free_table(self.l - 1, self.c);
            }
        }
    }
}

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// Whether anything is marked. O(root fan-out).
    pub fn has_changes(&self) -> bool {
        // SAFETY: the root is live.
        unsafe { self.root.has_marks(Self::lv(Self::TOP)) }
    }

    /// Keeps the entries of table `t` (level `l`, based at `base`) for which
    /// `f` is true, marking every entry it visits; frees tables left empty.
    pub fn retain_in<F: FnMut(Page, &mut V) -> bool>(&mut self, t: Tab, l: usize, base: u64, f: &mut F) {
        let lv = Self::lv(l);
        let mut from = 0;
        // SAFETY: `t` is a live table of level `l`; values are borrowed only
        // for the call to `f`, and each is taken out of its slot before it
        // is dropped.
        unsafe {
            while let Some(i) = t.next_occupied(lv, from, lv.fanout - 1) {
                from = i + 1;
                let a = base + ((i as u64) << lv.shift);
                t.mark(lv, i);
                let slot = if l == 0 { Slot::Large } else { t.slot(i) };
                match slot {
                    Slot::Table(c) => {
                        let down = Down::new(self, t, l, i, c);
                        down.raw.retain_in(c, l - 1, a, f);
                    }
                    _ => {
                        if !f(page_at(a, l as u8, lv.shift), &mut *t.val::<V>(lv, i)) {
                            let v = if l == 0 {
                                t.take::<V>(lv, i).expect("occupied")
                            } else {
                                t.take_large::<V>(lv, i)
                            };
                            self.len -= 1;
                            drop(v);
                        }
                    }
                }
            }
        }
    }
}
