//! Change marks: the lazy walk behind change reports, and `retain`.
//!
//! Every mutation marks its slot and the slots on the path to it, so a
//! report visits only marked paths: O(changes x levels), not O(table).
//! A child table with marks always has its parent slot marked.

use core::ptr;

use super::bitmap;
use super::layout::Info;
use super::node::{Slot, Tab};
use super::{RawTable, page_at};
use crate::backend::Backend;
use crate::geometry::{Geometry, MAX_LEVELS};
use crate::page::Page;

/// A walk over the marked slots, clearing each mark as it passes.
///
/// # Invariants
/// As for [`Cursor`](super::cursor::Cursor): `tab[level..]` is the path to
/// the current table.
pub struct MarkWalk {
    tab: [Tab; MAX_LEVELS],
    base: [u64; MAX_LEVELS],
    pos: [usize; MAX_LEVELS],
    level: usize,
    done: bool,
}

impl MarkWalk {
    /// A walk from the first marked slot of the table rooted at `root`.
    pub fn new<G: Geometry>(root: Tab) -> MarkWalk {
        MarkWalk {
            tab: [root; MAX_LEVELS],
            base: [0; MAX_LEVELS],
            pos: [0; MAX_LEVELS],
            level: G::LEVELS - 1,
            done: false,
        }
    }

    /// The next changed region and a pointer to the entry now there, if any.
    ///
    /// # Safety
    /// The walk was made for this table, which has not changed since except
    /// through the walk.
    pub unsafe fn next<V, G: Geometry>(&mut self) -> Option<(Page, Option<*mut V>)> {
        let top = G::LEVELS - 1;
        while !self.done {
            let l = self.level;
            let lv = Info::<V, G>::lv(l);
            let t = self.tab[l];
            // SAFETY: `t` is a live table of level `l` (invariant).
            unsafe {
                let Some(i) = bitmap::next(t.dirty(lv), self.pos[l], lv.fanout - 1) else {
                    if l == top {
                        self.done = true;
                    } else {
                        self.level += 1;
                    }
                    continue;
                };
                self.pos[l] = i + 1;
                bitmap::clear(t.dirty(lv), i);
                let a = self.base[l] + ((i as u64) << lv.shift);
                let page = page_at(a, l as u8, lv.shift);
                if l == 0 {
                    return Some((page, t.occupied(lv, i).then(|| t.val::<V>(lv, i))));
                }
                match t.slot(i) {
                    Slot::Empty => return Some((page, None)),
                    Slot::Large => return Some((page, Some(t.val::<V>(lv, i)))),
                    Slot::Table(c) => {
                        self.tab[l - 1] = c;
                        self.base[l - 1] = a;
                        self.pos[l - 1] = 0;
                        self.level = l - 1;
                    }
                }
            }
        }
        None
    }
}

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
