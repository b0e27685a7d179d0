//! Large-page work: split, merge, the range walker and compact.
//!
//! The range operations (`insert_range`, `remove_range`) plan, then apply,
//! through one description of what happens to each slot a range touches:
//! [`step`]. The plan counts the tables the work will create (descending
//! through tables that do not exist yet as *views*), so that the table can
//! make them available first and fail without changing anything; the apply
//! walk then does exactly what the plan counted.
//!
//! | slot state | insert_range, slot inside the range | insert_range, slot at an edge | remove_range, inside | remove_range, at an edge |
//! |---|---|---|---|---|
//! | empty | replace (a large entry) | create a table, descend | skip | skip |
//! | large entry | replace | split, descend | clear | split, descend |
//! | table | replace (the subtree is freed) | descend | clear (the subtree is freed) | descend |
//!
//! "Inside" needs a level that holds entries for `insert_range`; at a level
//! that does not, every slot is treated as an edge. Every step that goes
//! down goes through a [`Down`] guard, so that a table emptied or created
//! and left empty is freed, and the parent slot marked, even if a clone, an
//! op or a drop unwinds half-way.

use core::marker::PhantomData;
use core::mem::MaybeUninit;
use core::ptr;

use super::cursor::{Cursor, Leave, Left, Prune};
use super::marks::Down;
use super::node::{Slot, Stage, Tab};
use super::{Need, RawTable, page_at};
use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::ops::{Children, PageOps};
use crate::page::Page;

/// Writes `make()` to `p`. Out of line, so that the value is a temporary of
/// this frame only.
///
/// # Safety
/// `p` is writable for one `V`.
#[inline(never)]
unsafe fn make_into<V, F: FnMut() -> V>(p: *mut V, make: &mut F) {
    // SAFETY: caller.
    unsafe { p.write(make()) }
}

/// Puts a value moved aside back in its place if dropped (on unwind).
struct Restore<'a, V>(*mut V, &'a MaybeUninit<V>);

impl<V> Drop for Restore<'_, V> {
    fn drop(&mut self) {
        // SAFETY: the value at `self.1` was moved there from `self.0`, which
        // nothing has written since.
        unsafe { ptr::copy_nonoverlapping(self.1.as_ptr(), self.0, 1) }
    }
}

/// Why a split, merge or range operation cannot happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No large entry (split) or no full table (merge) at that place.
    Nothing,
    /// A larger entry covers the place.
    Larger(Page),
    /// The level below cannot hold entries, so an entry there cannot be split.
    NoEntriesBelow(u8),
    /// The consumer's merge declined.
    Declined,
    /// The level that ran out of memory for a table the operation needs
    /// (a merge into a level-1 table in the links form widens it).
    NoMemory(u8),
}

/// What a range walk does with one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing.
    Skip,
    /// Put one entry of the slot's level there, freeing what was there.
    Replace,
    /// Empty the slot, freeing what was there.
    Clear,
    /// Go down into the child table.
    Descend,
    /// Create an empty child table, then go down.
    Create,
    /// Split the large entry into a child table, then go down.
    Split,
}

/// What a slot holds, for [`step`] (a table that a plan has not created is
/// `Empty` or `Large` by what it would be made from).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Empty,
    Large,
    Table,
}

/// The one description of the range cases (see the module table).
/// `set`: inserting (else removing); `inside`: the slot lies wholly in the
/// range; `holds`: the slot's level holds entries; `below_holds`: so does
/// the level below.
pub fn step(
    set: bool,
    inside: bool,
    holds: bool,
    below_holds: bool,
    l: usize,
    state: State,
) -> Result<Step, Refusal> {
    let split = || if below_holds { Ok(Step::Split) } else { Err(Refusal::NoEntriesBelow(l as u8 - 1)) };
    match (set, state) {
        (true, _) if inside && holds => Ok(Step::Replace),
        (true, State::Empty) => Ok(Step::Create),
        (true, State::Table) => Ok(Step::Descend),
        (true, State::Large) => split(),
        (false, State::Empty) => Ok(Step::Skip),
        (false, _) if inside => Ok(Step::Clear),
        (false, State::Table) => Ok(Step::Descend),
        (false, State::Large) => split(),
    }
}

/// A plan's view of a table.
#[derive(Clone, Copy)]
pub enum View {
    /// A real table.
    Real(Tab),
    /// A table that will be created empty.
    Empty,
    /// A table that will be made by a split: every slot a large entry.
    Split,
}

/// The slots of a table (level `lv`, based at `base`) overlapping
/// `lo..=last`, which the table overlaps.
fn span(lv: &super::layout::Lv, base: u64, lo: u64, last: u64) -> (usize, usize) {
    let start = if lo <= base { 0 } else { ((lo - base) >> lv.shift) as usize };
    let end = (((last - base) >> lv.shift) as usize).min(lv.fanout - 1);
    (start, end)
}

/// Closes the room [`Tab::open`] made in a bottom table if the value meant
/// for it is not written (its maker unwinds).
struct Close<V>(Tab, &'static super::layout::Lv, usize, PhantomData<V>);

impl<V> Drop for Close<V> {
    fn drop(&mut self) {
        // SAFETY: `open` for slot `self.2` was the last change to the live
        // bottom table `self.0`.
        unsafe { self.0.close::<V>(self.1, self.2) }
    }
}

/// A [`compact`](RawTable::compact) walk: if it unwinds (an op or a drop
/// panics), marks the slot of every table on the cursor's path whose table
/// has marks, bottom up, so that the change report reaches what the walk
/// changed (and frees a table left empty, which compact never leaves).
struct Compact<'a, V, G: Geometry, B: Backend> {
    raw: &'a mut RawTable<V, G, B>,
    cur: Cursor,
}

impl<V, G: Geometry, B: Backend> Drop for Compact<'_, V, G, B> {
    fn drop(&mut self) {
        // At the end of the walk the path is the root alone: nothing to do.
        self.cur.leave_path::<G, _>(&mut Prune(&mut *self.raw), false);
    }
}

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// Puts a new value from `make` in slot `i` of `t` (level `l`, holding
    /// `slot`), freeing what was there. Out of line, so that the range
    /// walk's recursive frames hold no value.
    #[inline(never)]
    fn replace_slot<F: FnMut() -> V>(
        &mut self,
        t: Tab,
        l: usize,
        i: usize,
        a: u64,
        slot: Slot,
        make: &mut F,
    ) {
        let lv = Self::lv(l);
        let mut stage = Stage::uninit();
        // SAFETY: `t` is a live table of level `l`, `i` in its fan-out,
        // holding `slot`. The new value is made first, in its place: if
        // `make` unwinds, nothing has changed and nothing is marked. The
        // slot is marked and the count set before anything is dropped.
        unsafe {
            let occupied = if l == 0 { t.occupied(lv, i) } else { slot == Slot::Large };
            // An occupied slot's value is remade in its place; a new large
            // value is made aside first when it will live in the slot's word.
            // (A new bottom value's place is made by `open` below.)
            let p = if occupied {
                t.val::<V>(lv, i)
            } else if l == 0 {
                ptr::null_mut()
            } else {
                t.stage::<V>(lv, i, &mut stage)
            };
            if occupied {
                // The old value steps aside while the new one is made, and
                // comes back if that unwinds.
                let mut old = MaybeUninit::<V>::uninit();
                ptr::copy_nonoverlapping(p, old.as_mut_ptr(), 1);
                if let Some(tr) = &mut self.track {
                    tr.touch(t, lv, i, a, l as u8, p);
                }
                let back = Restore(p, &old);
                make_into(p, make);
                core::mem::forget(back);
                t.mark(lv, i);
                old.assume_init_drop();
                return;
            }
            if l == 0 {
                // A packed table makes room first, and closes it again if
                // `make` unwinds.
                let p = t.open::<V>(lv, i);
                let close = Close::<V>(t, lv, i, PhantomData);
                make_into(p, make);
                core::mem::forget(close);
                t.mark(lv, i);
                t.occupy(lv, i);
                self.len += 1;
                return;
            }
            make_into(p, make);
            t.mark(lv, i);
            t.commit_large(lv, i, p);
            match slot {
                Slot::Table(c) => {
                    self.len = self.len + 1 - Self::count(c, l - 1);
                    self.free_tree(c, l - 1);
                }
                _ => self.len += 1,
            }
        }
    }

    /// Empties slot `i` of `t` (level `l`, holding `slot`), freeing what was
    /// there. Out of line, as [`replace_slot`](Self::replace_slot).
    #[inline(never)]
    fn clear_slot(&mut self, t: Tab, l: usize, i: usize, a: u64, slot: Slot) {
        let lv = Self::lv(l);
        // SAFETY: as in `replace_slot`.
        unsafe {
            if let (Some(tr), Slot::Large) = (&mut self.track, slot) {
                tr.touch(t, lv, i, a, l as u8, t.val::<V>(lv, i));
            }
            t.mark(lv, i);
            match slot {
                _ if l == 0 => {
                    let v = t.take::<V>(lv, i);
                    self.len -= 1;
                    drop(v);
                }
                Slot::Large => {
                    let v = t.take_large::<V>(lv, i);
                    self.len -= 1;
                    drop(v);
                }
                Slot::Table(c) => {
                    t.set_word(lv, i, ptr::null_mut());
                    self.len -= Self::count(c, l - 1);
                    self.free_tree(c, l - 1);
                }
                Slot::Empty => unreachable!("cleared an empty slot"),
            }
        }
    }

    /// Checks that the large entry at `(addr, level)` can be split.
    pub fn probe_split(&self, addr: u64, level: usize) -> Result<(), Refusal> {
        let mut t = self.root;
        for l in (level..=Self::TOP).rev() {
            let lv = Self::lv(l);
            // SAFETY: live upper table (level >= 1), masked index.
            match (unsafe { t.slot(lv, lv.index(addr)) }, l == level) {
                (Slot::Large, true) if Self::lv(l - 1).large => return Ok(()),
                (Slot::Large, true) => return Err(Refusal::NoEntriesBelow(l as u8 - 1)),
                (Slot::Large, false) => return Err(Refusal::Larger(page_at(addr, l as u8, lv.shift))),
                (Slot::Table(c), false) => t = c,
                _ => return Err(Refusal::Nothing),
            }
        }
        Err(Refusal::Nothing)
    }

    /// Splits the large entry at `(addr, level)` after a successful
    /// [`probe_split`](Self::probe_split) and a prepared table at
    /// `level - 1`.
    pub fn split_at<O: PageOps<V>>(&mut self, addr: u64, level: usize, ops: &mut O) {
        let mut path = super::Path::new();
        let mut t = self.root;
        for l in (level + 1..=Self::TOP).rev() {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            path.push((t, i));
            // SAFETY: the probe walked this path.
            match unsafe { t.slot(lv, i) } {
                Slot::Table(c) => t = c,
                _ => unreachable!("split without a probe"),
            }
        }
        let lv = Self::lv(level);
        let i = lv.index(addr);
        // The split marks the slot if it changed any page's value (or the
        // entry had changed since the last report), and then the path,
        // before the old value is dropped. If `ops` unwinds, nothing changed
        // and nothing is marked.
        self.split_slot(t, level, i, page_at(addr, level as u8, lv.shift), ops, &path);
    }

    /// Replaces the large entry in slot `i` of `t` (level `l`, the entry
    /// `page`) by a new table holding its split, and returns the table. The
    /// table is built aside first: if `ops` panics, nothing has changed.
    /// If the slot is marked, so is every slot of `path` (the slots above;
    /// empty when the caller marks them itself).
    #[allow(clippy::too_many_arguments)]
    pub fn split_slot<O: PageOps<V>>(
        &mut self,
        t: Tab,
        l: usize,
        i: usize,
        page: Page,
        ops: &mut O,
        path: &super::Path,
    ) -> Tab {
        /// Frees the half-built table if `ops` unwinds.
        struct Aside<'a, V, G: Geometry, B: Backend>(&'a mut RawTable<V, G, B>, Tab, usize);
        impl<V, G: Geometry, B: Backend> Drop for Aside<'_, V, G, B> {
            fn drop(&mut self) {
                self.0.free_tree(self.1, self.2);
            }
        }
        let (lv, clv) = (Self::lv(l), Self::lv(l - 1));
        // SAFETY: `t` is live, `i` in its fan-out.
        let was_marked = unsafe { t.marked(lv, i) };
        let eq = self.track.as_ref().map(|tr| tr.eq);
        let c = self.new_table(l - 1);
        let aside = Aside(self, c, l - 1);
        // SAFETY: slot `i` holds a large entry, so value `i` is initialized;
        // `c` is a fresh table of level `l - 1`, which holds entries (the
        // probe checked), filled one value at a time.
        unsafe {
            debug_assert!(t.slot(lv, i) == Slot::Large);
            let v = &*t.val::<V>(lv, i);
            for j in 0..clv.fanout {
                let sub = page_at(page.addr() + ((j as u64) << clv.shift), l as u8 - 1, clv.shift);
                let sv = ops.split(page, v, sub);
                // A sub-page whose value is the large page's did not change.
                if !was_marked && !O::KEEPS_VALUES && !eq.is_some_and(|eq| eq(&sv, v)) {
                    c.mark(clv, j);
                }
                if l == 1 {
                    c.put(clv, j, sv);
                } else {
                    c.put_large(clv, j, sv);
                }
            }
            core::mem::forget(aside);
            if was_marked {
                c.mark_all(clv);
            }
            let old = t.val::<V>(lv, i).read();
            t.set_word(lv, i, c.ptr());
            if c.has_marks(clv) {
                t.mark(lv, i);
                Self::mark_path(path);
            }
            self.len += clv.fanout - 1;
            drop(old);
        }
        c
    }

    /// Writes the merge of the full table `c` (level `l`), as the entry
    /// `page` one level up, to `dst` (the value place of the slot that links
    /// `c`, unused while it does), and returns whether the merge changes
    /// what any page holds: `ops` may make a new value, or a child changed
    /// since the last report. Out of line, and the value goes straight to
    /// its place, so that the recursive walks hold no value in their frames.
    ///
    /// # Safety
    /// `dst` is writable for one value and holds none.
    #[inline(never)]
    unsafe fn merge_into<O: PageOps<V>>(
        &self,
        c: Tab,
        l: usize,
        page: Page,
        ops: &mut O,
        dst: *mut V,
    ) -> Result<bool, Refusal> {
        /// Drops the merged value again if a comparison unwinds.
        struct Undo<V>(*mut V);
        impl<V> Drop for Undo<V> {
            fn drop(&mut self) {
                // SAFETY: written just before the guard was made.
                unsafe { ptr::drop_in_place(self.0) }
            }
        }
        let lv = Self::lv(l);
        // SAFETY: `c` is a live table of level `l`; a full bottom table has
        // every value, a full upper one is checked to hold only large
        // entries; `dst` (caller).
        unsafe {
            if c.len(lv) != lv.fanout || (l > 0 && (0..lv.fanout).any(|j| c.slot(lv, j) != Slot::Large)) {
                return Err(Refusal::Nothing);
            }
            let mut values = (0..lv.fanout).map(|j| &*c.val::<V>(lv, j));
            match ops.merge(page, Children::new(&mut values, lv.fanout)) {
                Some(v) => dst.write(v),
                None => return Err(Refusal::Declined),
            }
            let Some(tr) = &self.track else {
                return Ok(!O::KEEPS_VALUES || c.has_marks(lv));
            };
            let undo = Undo(dst);
            let v = &*dst;
            // Compared: a child that changed value since the last report,
            // or whose value is not the merged one, is a change.
            let changed = (0..lv.fanout).any(|j| {
                let cv = &*c.val::<V>(lv, j);
                let a = page.addr() + ((j as u64) << lv.shift);
                (!O::KEEPS_VALUES && !(tr.eq)(cv, v))
                    || (c.marked(lv, j) && !tr.unchanged(a, l as u8, Some(cv)))
            });
            core::mem::forget(undo);
            Ok(changed)
        }
    }

    /// Replaces the child table `c` in slot `i` of `t` (level `l`) by the
    /// large entry whose value [`merge_into`](Self::merge_into) wrote at `p`
    /// (a place [`Tab::stage`] gave), then frees `c` (its values dropped
    /// last, once the table is consistent).
    fn merge_slot(&mut self, t: Tab, l: usize, i: usize, c: Tab, changed: bool, p: *mut V) {
        let lv = Self::lv(l);
        // SAFETY: slot `i` links `c`; the value was written at `p` before
        // the slot says large.
        unsafe {
            t.commit_large(lv, i, p);
            if changed {
                t.mark(lv, i);
            } else {
                // The slot's mark said only that the table below had marks,
                // none of which changed a value.
                t.unmark(lv, i);
            }
        }
        self.len -= Self::lv(l - 1).fanout - 1;
        self.free_tree(c, l - 1);
    }

    /// Merges the table under `(addr, level)` into one entry.
    pub fn merge_at<O: PageOps<V>>(&mut self, addr: u64, level: usize, ops: &mut O) -> Result<(), Refusal> {
        let mut t = self.root;
        let mut path = super::Path::new();
        for l in (level..=Self::TOP).rev() {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            path.push((t, i));
            // SAFETY: live upper table, masked index.
            match (unsafe { t.slot(lv, i) }, l == level) {
                (Slot::Table(c), true) => {
                    // SAFETY: `t` is a live table of level `l`.
                    if l == 1 && unsafe { Self::is_links(t, 1) } {
                        let (p, pi) = path[path.len() - 2];
                        return self.merge_into_links(&mut path, p, pi, t, i, c, addr, ops);
                    }
                    let mut stage = Stage::uninit();
                    // SAFETY: the level holds entries; the staged place of a
                    // slot that links a table holds no value.
                    let changed = unsafe {
                        let dst = t.stage::<V>(lv, i, &mut stage);
                        self.merge_into(c, l - 1, page_at(addr, l as u8, lv.shift), ops, dst)
                            .map(|ch| (ch, dst))
                    };
                    let (changed, dst) = changed?;
                    if changed {
                        Self::mark_path(&path);
                    }
                    self.merge_slot(t, l, i, c, changed, dst);
                    return Ok(());
                }
                (Slot::Table(c), false) => t = c,
                (Slot::Large, false) => return Err(Refusal::Larger(page_at(addr, l as u8, lv.shift))),
                _ => return Err(Refusal::Nothing),
            }
        }
        Err(Refusal::Nothing)
    }

    /// [`merge_at`](Self::merge_at) where the table `t` to hold the entry
    /// is a links table (linked from slot `pi` of `p`; `path` ends at slot
    /// `i` of `t`, which links the bottom table `c`): the merged value is
    /// made in a heap cell of its own first, so that nothing changes (and
    /// no table is allocated) if the merge is refused or unwinds; then `t`
    /// widens and takes the entry.
    #[allow(clippy::too_many_arguments)] // the walk's state at the merge
    fn merge_into_links<O: PageOps<V>>(
        &mut self,
        path: &mut super::Path,
        p: Tab,
        pi: usize,
        t: Tab,
        i: usize,
        c: Tab,
        addr: u64,
        ops: &mut O,
    ) -> Result<(), Refusal> {
        /// A heap cell for one value, given back when dropped (the value
        /// in it is not dropped).
        struct Cell<V>(*mut V);
        impl<V> Drop for Cell<V> {
            fn drop(&mut self) {
                let layout = core::alloc::Layout::new::<V>();
                if layout.size() != 0 {
                    // SAFETY: allocated below with this layout.
                    unsafe { alloc::alloc::dealloc(self.0.cast(), layout) };
                }
            }
        }
        let lv = Self::lv(1);
        // SAFETY: `c` is a live bottom table.
        if unsafe { c.len(Self::lv(0)) } != Self::lv(0).fanout {
            return Err(Refusal::Nothing);
        }
        let layout = core::alloc::Layout::new::<V>();
        let cell = if layout.size() == 0 {
            Cell(ptr::NonNull::<V>::dangling().as_ptr())
        } else {
            // SAFETY: a layout of non-zero size.
            let q = unsafe { alloc::alloc::alloc(layout) }.cast::<V>();
            if q.is_null() {
                return Err(Refusal::NoMemory(1));
            }
            Cell(q)
        };
        // SAFETY: the cell is writable for one value and holds none.
        let changed = unsafe { self.merge_into(c, 0, page_at(addr, 1, lv.shift), ops, cell.0) }?;
        if let Err(l) = self.prepare_widen() {
            // SAFETY: the merged value is in the cell, and dropped once.
            unsafe { ptr::drop_in_place(cell.0) };
            return Err(Refusal::NoMemory(l));
        }
        let d = self.new_table(1);
        self.move_links(p, pi, t, d);
        let k = path.len() - 1;
        path[k] = (d, i);
        if changed {
            Self::mark_path(path);
        }
        let mut stage = Stage::uninit();
        // SAFETY: `d` is a live direct level-1 table whose slot `i` links
        // `c`; its staged place holds no value; the value moves out of the
        // cell by a byte copy (the cell is then only given back).
        unsafe {
            let dst = d.stage::<V>(lv, i, &mut stage);
            ptr::copy_nonoverlapping(cell.0, dst, 1);
            drop(cell);
            self.merge_slot(d, 1, i, c, changed, dst);
        }
        Ok(())
    }

    /// Merges, bottom up, every table that `ops` agrees to merge, wherever
    /// the level above holds entries. Returns the number of merges.
    ///
    /// One [`Cursor::tables`] walk: each table is offered for merging as the
    /// walk leaves it, after everything below it, so a table whose children
    /// all merged can merge in the same pass. O(upper slots): the entries
    /// of bottom tables are read only by the merges.
    pub fn compact<O: PageOps<V>>(&mut self, ops: &mut O) -> usize {
        let cur = Cursor::tables::<G>(self.root);
        let mut walk = Compact { raw: self, cur };
        let mut merges = 0;
        // SAFETY: the cursor was made for this table, which the loop changes
        // only in the slot of the table just left (marking it, freeing the
        // table if empty, merging it into an entry).
        while let Some(Left { parent: t, i, child: c, l, base: a }) = unsafe { walk.cur.next_left::<V, G>() }
        {
            // Marks the slot if the child has marks, before anything can
            // unwind, and frees the child if it is empty (compact never
            // empties one, so the slot is read again rather than trusted).
            Prune(&mut *walk.raw).leave(t, i, c, l, a);
            let lv = Self::lv(l + 1);
            // SAFETY: `t` is live (on the cursor's path), `i` in its fan-out.
            let Slot::Table(c) = (unsafe { t.slot(lv, i) }) else { continue };
            // The bottom tables of a links table merge when the links table
            // itself is left (it is then off the cursor's path and may
            // widen); a links table is never full, so it merges no further.
            // SAFETY: `c` and `t` are live tables of levels `l`, `l + 1`.
            if unsafe { Self::is_links(c, l) } {
                merges += walk.raw.compact_links(t, i, c, a, ops);
                continue;
            }
            // SAFETY: as above.
            if unsafe { Self::is_links(t, l + 1) } {
                continue;
            }
            if lv.large {
                let mut stage = Stage::uninit();
                // SAFETY: as in `merge_at`.
                let (merged, dst) = unsafe {
                    let dst = t.stage::<V>(lv, i, &mut stage);
                    (walk.raw.merge_into(c, l, page_at(a, l as u8 + 1, lv.shift), ops, dst), dst)
                };
                if let Ok(changed) = merged {
                    walk.raw.merge_slot(t, l + 1, i, c, changed, dst);
                    merges += 1;
                }
            }
        }
        merges
    }

    /// Merges the bottom tables of the links table `c` (linked from slot
    /// `pi` of the level-2 table `p`, based at `base`) that `ops` agrees to
    /// merge, for [`compact`](Self::compact): widens `c` first if a child is
    /// full, and skips the merges if there is no memory for that. Narrows
    /// the table again if nothing merged. Returns the number of merges.
    fn compact_links<O: PageOps<V>>(&mut self, p: Tab, pi: usize, c: Tab, base: u64, ops: &mut O) -> usize {
        let (lv, blv) = (Self::lv(1), Self::lv(0));
        let full = |t: Tab| {
            let mut from = 0;
            // SAFETY: `t` is a live level-1 table; its children live
            // bottom tables.
            unsafe {
                while let Some(j) = t.next_occupied(lv, from, lv.fanout - 1) {
                    from = j + 1;
                    if let Slot::Table(b) = t.slot(lv, j) {
                        if b.len(blv) == blv.fanout {
                            return Some(j);
                        }
                    }
                }
            }
            None
        };
        if !lv.large || full(c).is_none() || self.prepare_widen().is_err() {
            return 0;
        }
        let t = self.widen(p, pi, c);
        let mut merges = 0;
        let mut from = 0;
        // SAFETY: `t` is a live direct level-1 table; each merge changes
        // only the slot it merges.
        unsafe {
            while let Some(j) = t.next_occupied(lv, from, lv.fanout - 1) {
                from = j + 1;
                let Slot::Table(b) = t.slot(lv, j) else { continue };
                let mut stage = Stage::uninit();
                let dst = t.stage::<V>(lv, j, &mut stage);
                let a = base + ((j as u64) << lv.shift);
                if let Ok(changed) = self.merge_into(b, 0, page_at(a, 1, lv.shift), ops, dst) {
                    self.merge_slot(t, 1, j, b, changed, dst);
                    merges += 1;
                }
            }
        }
        if merges == 0 {
            self.narrow(p, pi, t);
        }
        merges
    }

    /// The form a range insert over `lo..=last` moves the level-1 table
    /// `c` (based at `base`) to first (see
    /// [`links_target`](Self::links_target)): a links table moves to the
    /// direct form if the range puts a large entry in it, and to a larger
    /// class (or the direct form) if it may link more tables than it has
    /// indices for.
    fn range_widens(c: Tab, base: u64, lo: u64, last: u64) -> Option<Option<usize>> {
        let lv = Self::lv(1);
        let (start, end) = span(lv, base, lo, last);
        let inside = |i: usize| {
            let a = base + ((i as u64) << lv.shift);
            lo <= a && a + ((1u64 << lv.shift) - 1) <= last
        };
        // SAFETY: `c` is a live level-1 table (caller).
        unsafe { Self::links_target(c, end - start + 1, lv.large && (start..=end).any(inside)) }
    }

    /// Plans a range operation (`set`: insert, else remove) over
    /// `lo..=last` in the table seen as `view` (level `l`, based at `base`):
    /// adds the tables it will create to `need`.
    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    pub fn plan_range(
        &self,
        view: View,
        l: usize,
        base: u64,
        lo: u64,
        last: u64,
        set: bool,
        need: &mut Need,
    ) -> Result<(), Refusal> {
        let lv = Self::lv(l);
        if l == 0 {
            return Ok(());
        }
        let below = Self::lv(l - 1).large;
        let (start, end) = span(lv, base, lo, last);
        for i in start..=end {
            let a = base + ((i as u64) << lv.shift);
            let inside = lo <= a && a + ((1u64 << lv.shift) - 1) <= last;
            let (state, child) = match view {
                // SAFETY: a real table of level `l`, `i` in its fan-out.
                View::Real(t) => match unsafe { t.slot(lv, i) } {
                    Slot::Empty => (State::Empty, View::Empty),
                    Slot::Large => (State::Large, View::Split),
                    Slot::Table(c) => (State::Table, View::Real(c)),
                },
                View::Empty => (State::Empty, View::Empty),
                View::Split => (State::Large, View::Split),
            };
            match step(set, inside, lv.large, below, l, state)? {
                Step::Skip | Step::Replace | Step::Clear => {}
                Step::Descend => {
                    // A packed bottom table that cannot take the range moves
                    // to a larger form first.
                    if let (true, 1, View::Real(c)) = (set, l, child) {
                        let (s, e) = span(Self::lv(0), a, lo, last);
                        need[0] += Self::range_form(c, s, e).is_some() as usize;
                    }
                    // So does a links table (see `range_widens`).
                    if let (true, 2, View::Real(c)) = (set, l, child) {
                        need[1] += Self::range_widens(c, a, lo, last).is_some() as usize;
                    }
                    self.plan_range(child, l - 1, a, lo, last, set, need)?
                }
                Step::Create | Step::Split => {
                    need[l - 1] += 1;
                    self.plan_range(child, l - 1, a, lo, last, set, need)?;
                }
            }
        }
        Ok(())
    }

    /// Applies a planned range operation: `value` makes each value to
    /// insert (`None`: remove) over `lo..=last` in table `t` (level `l`,
    /// based at `base`).
    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    pub fn apply_range<O: PageOps<V>, F: FnMut() -> V>(
        &mut self,
        t: Tab,
        l: usize,
        base: u64,
        lo: u64,
        last: u64,
        mut value: Option<&mut F>,
        ops: &mut O,
    ) {
        let lv = Self::lv(l);
        let below = l > 0 && Self::lv(l - 1).large;
        let (start, end) = span(lv, base, lo, last);
        for i in start..=end {
            let a = base + ((i as u64) << lv.shift);
            let inside = lo <= a && a + ((1u64 << lv.shift) - 1) <= last;
            // SAFETY: `t` is a live table of level `l`, `i` in its fan-out.
            let slot = unsafe {
                if l == 0 { if t.occupied(lv, i) { Slot::Large } else { Slot::Empty } } else { t.slot(lv, i) }
            };
            let state = match slot {
                Slot::Empty => State::Empty,
                Slot::Large => State::Large,
                Slot::Table(_) => State::Table,
            };
            let step = step(value.is_some(), inside, lv.large, below, l, state).expect("planned");
            match step {
                Step::Skip => {}
                Step::Replace => self.replace_slot(t, l, i, a, slot, value.as_mut().expect("insert")),
                Step::Clear => self.clear_slot(t, l, i, a, slot),
                Step::Descend | Step::Create | Step::Split => {
                    let c = match slot {
                        Slot::Table(c) if l == 1 && value.is_some() => {
                            let (s, e) = span(Self::lv(0), a, lo, last);
                            match Self::range_form(c, s, e) {
                                Some(to) => self.reform(t, i, c, to),
                                None => c,
                            }
                        }
                        Slot::Table(c) if l == 2 && value.is_some() => {
                            match Self::range_widens(c, a, lo, last) {
                                Some(to) => self.relink(t, i, c, to),
                                None => c,
                            }
                        }
                        Slot::Table(c) => c,
                        Slot::Empty if l == 1 => {
                            let (s, e) = span(Self::lv(0), a, lo, last);
                            self.add_child(t, l, i, a, Self::fresh_form(e - s + 1))
                        }
                        Slot::Empty => self.add_child(t, l, i, a, None),
                        Slot::Large => {
                            self.split_slot(t, l, i, page_at(a, l as u8, lv.shift), ops, &super::Path::new())
                        }
                    };
                    // The guard marks the slot if the work below marked
                    // anything (also if it unwinds), and frees the child if
                    // it is left empty.
                    let down = Down::new(self, t, l, i, c, a);
                    down.raw.apply_range(c, l - 1, a, lo, last, value.as_deref_mut(), ops);
                }
            }
        }
    }
}
