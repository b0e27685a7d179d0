//! Change marks and the walks that remove: the [`Down`] guard of the
//! recursive walks, and the cursor walks behind `retain`, `pop_first` and
//! `pop_last`.
//!
//! Every mutation marks its slot and the slots on the path to it, so a
//! report (the [`Cursor`] over the change maps)
//! visits only marked paths: O(changes x levels), not O(table). A child
//! table with marks always has its parent slot marked.

use core::ptr;

use super::RawTable;
use super::cursor::{Cursor, Prune};
use super::node::Tab;
use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;

/// Goes down into child `c` of slot `i` of `t` (level `l`) for a walk that
/// may empty it; when dropped (also on unwind), settles the child
/// ([`RawTable::settle_child`]).
pub struct Down<'a, V, G: Geometry, B: Backend> {
    pub raw: &'a mut RawTable<V, G, B>,
    t: Tab,
    l: usize,
    i: usize,
    c: Tab,
    /// The address the child's region starts at.
    base: u64,
}

impl<'a, V, G: Geometry, B: Backend> Down<'a, V, G, B> {
    pub fn new(raw: &'a mut RawTable<V, G, B>, t: Tab, l: usize, i: usize, c: Tab, base: u64) -> Self {
        Down { raw, t, l, i, c, base }
    }
}

impl<V, G: Geometry, B: Backend> Drop for Down<'_, V, G, B> {
    fn drop(&mut self) {
        // SAFETY: `t` links the live table `c` in slot `i` (made so by
        // `new`), which the walk is done with.
        unsafe { self.raw.settle_child(self.t, self.i, self.c, self.l - 1, self.base) };
    }
}

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// What a walk that may have removed entries below slot `i` of `parent`
    /// does with the child `c` (level `l`, based at `base`) once it is done
    /// with it, also on unwind: marks the slot if the child has marks, frees
    /// the child if it is empty, and otherwise (a bottom table, or a level-1
    /// one) moves it to a smaller form if it lost most of its entries
    /// ([`shrink_bottom`](Self::shrink_bottom), [`narrow`](Self::narrow)).
    ///
    /// # Safety
    /// `parent` links the live table `c` in slot `i`, and no walk uses `c`
    /// afterwards (it may be freed or replaced).
    pub unsafe fn settle_child(&mut self, parent: Tab, i: usize, c: Tab, l: usize, base: u64) {
        let (lv, clv) = (Self::lv(l + 1), Self::lv(l));
        // SAFETY: `parent` links the live table `c` in slot `i` (caller).
        unsafe {
            if c.has_marks(clv) {
                parent.mark(lv, i);
            }
            if c.len(clv) == 0 {
                parent.set_word(lv, i, ptr::null_mut());
                self.free_emptied(l, c, base);
            } else if l == 0 {
                self.shrink_bottom(parent, i, c, false);
            } else if l == 1 {
                self.narrow(parent, i, c);
            }
        }
    }

    /// Whether anything is marked. O(root fan-out).
    pub fn has_changes(&self) -> bool {
        // SAFETY: the root is live.
        unsafe { self.root.has_marks(Self::lv(Self::TOP)) }
    }

    /// Keeps the entries for which `f` is true, marking every entry it
    /// visits (`f` may change it); frees the tables it empties. One cursor
    /// walk; if `f` or a drop unwinds, the tables emptied so far are freed
    /// on the way out.
    pub fn retain<F: FnMut(Page, &mut V) -> bool>(&mut self, f: &mut F) {
        let cur = Cursor::new::<V, G>(self.root, 0, false);
        let mut walk = Walk { raw: self, cur, rev: false };
        loop {
            let w = &mut walk;
            // SAFETY: the cursor was made for this table, which changes only
            // by the removal of the entries the cursor yielded (and the
            // pruning of tables it has left).
            let found = unsafe {
                match w.cur.next_base::<V, G>(u64::MAX, true) {
                    Some((a, v)) => Some((Page::new(a, 0, G::PAGE_SHIFT), v)),
                    None => w.cur.next_slow::<V, G, _>(0, u64::MAX, true, &mut Prune(&mut *w.raw)),
                }
            };
            let Some((page, v)) = found else { break };
            if let (Some(tr), true) = (&mut w.raw.track, w.cur.fresh) {
                // SAFETY: `v` is the initialized value just yielded.
                tr.keep(page.addr(), page.level().index() as u8, Some(unsafe { &*v }));
            }
            // SAFETY: `v` is an initialized value of this table, borrowed
            // only for the call.
            if !f(page, unsafe { &mut *v }) {
                let v = w.take(page);
                drop(v);
            }
        }
    }

    /// Removes and returns the first entry (`last`: the last one), marking
    /// it and its path, freeing the tables it empties.
    pub fn pop_end(&mut self, last: bool) -> Option<(Page, V)> {
        let mut cur = Cursor::new::<V, G>(self.root, if last { u64::MAX } else { 0 }, last);
        // SAFETY: a fresh cursor for this table.
        let (page, v) = unsafe {
            if last { cur.next_back::<V, G>(0, u64::MAX, true) } else { cur.next::<V, G>(0, u64::MAX, true) }
        }?;
        if let (Some(tr), true) = (&mut self.track, cur.fresh) {
            // SAFETY: `v` is the initialized value just yielded.
            tr.keep(page.addr(), page.level().index() as u8, Some(unsafe { &*v }));
        }
        let mut walk = Walk { raw: self, cur, rev: last };
        Some((page, walk.take(page)))
    }
}

/// A cursor walk that removes entries: frees the tables on its path that it
/// emptied when it ends, also on unwind.
struct Walk<'a, V, G: Geometry, B: Backend> {
    raw: &'a mut RawTable<V, G, B>,
    cur: Cursor,
    rev: bool,
}

impl<V, G: Geometry, B: Backend> Walk<'_, V, G, B> {
    /// Takes out the entry `page` that the cursor just yielded.
    fn take(&mut self, page: Page) -> V {
        let l = page.level().index();
        let lv = RawTable::<V, G, B>::lv(l);
        let t = self.cur.table_at(l);
        let i = lv.index(page.addr());
        self.raw.len -= 1;
        // SAFETY: the cursor just yielded this entry from slot `i` of `t`;
        // the slot is emptied as the value is moved out.
        unsafe {
            t.mark(lv, i);
            if l == 0 { t.take::<V>(lv, i).expect("yielded") } else { t.take_large::<V>(lv, i) }
        }
    }
}

impl<V, G: Geometry, B: Backend> Drop for Walk<'_, V, G, B> {
    fn drop(&mut self) {
        self.cur.prune_path(self.raw, self.rev);
    }
}
