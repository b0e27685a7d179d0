//! The writer's range operations: `insert_range`, `remove_range`, `clear`,
//! `retain` and `compact`, with [`crate::MemTable`]'s semantics.
//!
//! A range operation is planned first, on the real tables and on *views*
//! of the tables it would make (the same case table as the single-threaded
//! table's, `crate::raw::ranges::step`), so that every error is found
//! before anything changes. Then each slot it touches changes with one
//! store, top down and in address order:
//!
//! - a value or an emptied slot is one store (`Release` above the bottom);
//!   what it replaced (a box, a whole subtree) is unlinked by that store
//!   and then retired, node by node, bottom up;
//! - a new table (under an empty slot, or the split of a large entry at an
//!   edge) is built aside *with the range's work inside it already done*,
//!   and linked with one `Release` store.
//!
//! So a reader sees each slot before or after, never a half-built table;
//! but the operation as a whole is not atomic: slots change one after
//! another.

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::RangeBounds;
use core::sync::atomic::Ordering::{Relaxed, Release};

use super::{MemTable, Writer};
use crate::error::{Error, ErrorKind};
use crate::geometry::Geometry;
use crate::ops::{CloneOps, PageOps, SplitByClone};
use crate::page::{Level, Page};
use crate::raw::layout::Lv;
use crate::raw::page_at;
use crate::raw::ranges::{Refusal, State, Step, step};
use crate::sync::atom::Value;
use crate::sync::node::{EMPTY, Link, Node};
use crate::sync::prim::own_load_ptr;
use crate::sync::reclaim::Reclaim;

/// A plan's view of a table: a real one, or one the operation would make.
#[derive(Clone, Copy)]
enum View {
    Real(Node),
    /// Made empty, under an empty slot.
    Empty,
    /// Made by a split: every slot a large entry.
    Split,
}

/// The slots of a table (level `lv`, based at `base`) overlapping
/// `lo..=last`, which the table overlaps.
fn span(lv: &Lv, base: u64, lo: u64, last: u64) -> (usize, usize) {
    let start = if lo <= base { 0 } else { ((lo - base) >> lv.shift) as usize };
    let end = (((last - base) >> lv.shift) as usize).min(lv.fanout - 1);
    (start, end)
}

/// Frees a table built aside (never published) if the work on it unwinds.
struct Aside<V: Value, G: Geometry, R: Reclaim>(Node, usize, PhantomData<MemTable<V, G, R>>);

impl<V: Value, G: Geometry, R: Reclaim> Drop for Aside<V, G, R> {
    fn drop(&mut self) {
        // SAFETY: never published, so no reader can reach it; what it
        // replaced inside itself was unlinked from it and retired.
        unsafe { MemTable::<V, G, R>::free_tree(self.0, self.1) }
    }
}

type T<V, G, R> = MemTable<V, G, R>;

impl<V: Value, G: Geometry, R: Reclaim> Writer<'_, V, G, R> {
    /// Checks a range operation (`set`: insert) over `range`: its bounds,
    /// then every edge split it needs. Returns the inclusive bounds.
    fn plan<Q: RangeBounds<u64>>(&self, range: &Q, set: bool) -> Result<(u64, u64), Error> {
        let (lo, last) = crate::MemTable::<(), G>::check_range(range)?;
        self.plan_range(View::Real(self.t.root), T::<V, G, R>::TOP, 0, lo, last, set)
            .map_err(|r| crate::MemTable::<(), G>::refusal(r, lo, Level::BASE, ErrorKind::NothingToSplit))?;
        Ok((lo, last))
    }

    /// The plan's walk over the table seen as `view` (level `l`, based at
    /// `base`).
    fn plan_range(
        &self,
        view: View,
        l: usize,
        base: u64,
        lo: u64,
        last: u64,
        set: bool,
    ) -> Result<(), Refusal> {
        if l == 0 {
            return Ok(());
        }
        let lv = T::<V, G, R>::lv(l);
        let below = T::<V, G, R>::lv(l - 1).large;
        let (start, end) = span(lv, base, lo, last);
        for i in start..=end {
            let a = base + ((i as u64) << lv.shift);
            let inside = lo <= a && a + ((1u64 << lv.shift) - 1) <= last;
            let (state, child) = match view {
                // SAFETY: the writer's live upper table, `i` in its fan-out.
                View::Real(t) => match T::<V, G, R>::link_of(own_load_ptr(unsafe { t.link(i) })) {
                    Link::Empty => (State::Empty, View::Empty),
                    Link::Table(c) => (State::Table, View::Real(c)),
                    Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => (State::Large, View::Split),
                },
                View::Empty => (State::Empty, View::Empty),
                View::Split => (State::Large, View::Split),
            };
            match step(set, inside, lv.large, below, l, state)? {
                Step::Skip | Step::Replace | Step::Clear => {}
                Step::Descend | Step::Create | Step::Split => {
                    self.plan_range(child, l - 1, a, lo, last, set)?;
                }
            }
        }
        Ok(())
    }

    /// Applies a planned range operation (`v`: the value to insert, `None`
    /// to remove) over `lo..=last` in table `t` (level `l`, based at
    /// `base`). `live`: `t` is reachable by readers; then the entry count
    /// is kept up to date store by store and 0 is returned; else the
    /// change in the count is returned, for the caller to add when it
    /// publishes `t`.
    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    fn apply_range<O: PageOps<V>>(
        &mut self,
        t: Node,
        l: usize,
        base: u64,
        lo: u64,
        last: u64,
        v: Option<&V>,
        ops: &mut O,
        live: bool,
    ) -> isize {
        let lv = T::<V, G, R>::lv(l);
        let (start, end) = span(lv, base, lo, last);
        let mut pending = 0;
        for i in start..=end {
            let d = if l == 0 {
                // Both ends are on base-page boundaries: every bottom slot
                // of the span is inside.
                // SAFETY: the writer's bottom table, `i` in its fan-out.
                // What the slot held is retired, never made a value: no
                // user code runs between the store and the count.
                unsafe {
                    let (old, d) = match v {
                        Some(v) => {
                            let old = T::<V, G, R>::put_bottom(t, i, v.clone());
                            (old, if old.is_some() { 0 } else { 1 })
                        }
                        None => {
                            let old = T::<V, G, R>::take_bottom(t, i);
                            (old, if old.is_some() { -1 } else { 0 })
                        }
                    };
                    if let Some(r) = old {
                        self.t.retire_raw(r);
                    }
                    d
                }
            } else {
                let a = base + ((i as u64) << lv.shift);
                self.range_slot(t, l, i, a, lo, last, v, ops, live)
            };
            if live {
                self.add_len(d);
            } else {
                pending += d;
            }
        }
        pending
    }

    /// One upper slot of [`apply_range`](Self::apply_range): slot `i` of
    /// `t` (level `l`), whose page starts at `a`. Returns the change in
    /// the entry count (of entries under `t` not yet counted, when `live`).
    #[allow(clippy::too_many_arguments)]
    fn range_slot<O: PageOps<V>>(
        &mut self,
        t: Node,
        l: usize,
        i: usize,
        a: u64,
        lo: u64,
        last: u64,
        v: Option<&V>,
        ops: &mut O,
        live: bool,
    ) -> isize {
        let lv = T::<V, G, R>::lv(l);
        let clv = T::<V, G, R>::lv(l - 1);
        let inside = lo <= a && a + ((1u64 << lv.shift) - 1) <= last;
        // SAFETY: the writer's upper table, `i` in its fan-out.
        let slot = unsafe { t.link(i) };
        let w = own_load_ptr(slot);
        let link = T::<V, G, R>::link_of(w);
        let state = match link {
            Link::Empty => State::Empty,
            Link::Table(_) => State::Table,
            Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => State::Large,
        };
        match step(v.is_some(), inside, lv.large, clv.large, l, state).expect("planned") {
            Step::Skip => 0,
            Step::Replace => {
                // The word is made first: if the value's code unwinds,
                // nothing has changed.
                let word = T::<V, G, R>::large_word(v.expect("an insert").clone());
                slot.store(word, Release);
                // SAFETY: `t` is the writer's live table; what the slot held
                // (a box, or the subtree `c`) is unlinked by the store above
                // and reachable through no other link.
                unsafe {
                    match link {
                        Link::Empty => {
                            t.len().fetch_add(1, Relaxed);
                            1
                        }
                        Link::Table(c) => 1 - self.retire_tree(c, l - 1) as isize,
                        Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                            self.t.retire_word(w);
                            0
                        }
                    }
                }
            }
            Step::Clear => {
                slot.store(EMPTY, Release);
                // SAFETY: as for `Replace`.
                unsafe {
                    t.len().fetch_sub(1, Relaxed);
                    match link {
                        Link::Table(c) => -(self.retire_tree(c, l - 1) as isize),
                        _ => {
                            self.t.retire_word(w);
                            -1
                        }
                    }
                }
            }
            Step::Descend => {
                let Link::Table(c) = link else { unreachable!("descends into a table") };
                let d = self.apply_range(c, l - 1, a, lo, last, v, ops, live);
                // SAFETY: `c` and `t` are the writer's live tables; once the
                // store of null is done, no link to `c` is left.
                unsafe {
                    if c.len().load(Relaxed) == 0 {
                        // Emptied (a removal): unlinked, then retired.
                        slot.store(EMPTY, Release);
                        t.len().fetch_sub(1, Relaxed);
                        self.t.retire(c, T::<V, G, R>::kind(l - 1));
                    }
                }
                d
            }
            Step::Create | Step::Split => {
                let c = self.new_table(l - 1);
                let aside = Aside::<V, G, R>(c, l - 1, PhantomData);
                let mut d = 0;
                if state == State::Large {
                    // The split may give the sub-pages outside the range
                    // new values: the whole large page changes.
                    let page = page_at(a, l as u8, lv.shift);
                    self.mark_page(page);
                    // SAFETY: the writer's own live entry.
                    let big = unsafe { T::<V, G, R>::large_value(link) }.expect("a large entry");
                    Self::fill_split(c, l - 1, page, big, ops);
                    d += clv.fanout as isize - 1;
                }
                d += self.apply_range(c, l - 1, a, lo, last, v, ops, false);
                core::mem::forget(aside);
                // SAFETY: `c` is the writer's fresh table. Never empty: an
                // insert puts something in it, and an edge's split keeps
                // the part of the large page outside the range.
                debug_assert_ne!(unsafe { c.len() }.load(Relaxed), 0, "an empty table built aside");
                // One store publishes the table and all the work in it.
                slot.store(Link::table(c), Release);
                // SAFETY: `t` is the writer's live table; the replaced box,
                // if any, is unlinked by the store above.
                unsafe {
                    if state == State::Large {
                        self.t.retire_word(w);
                    } else {
                        t.len().fetch_add(1, Relaxed);
                    }
                }
                d
            }
        }
    }

    /// Fills the fresh table `c` (level `cl`) with the split of the large
    /// entry `page` of value `big`, as `split_with` does. Unpublished:
    /// plain (`Relaxed`) stores.
    fn fill_split<O: PageOps<V>>(c: Node, cl: usize, page: Page, big: V, ops: &mut O) {
        let clv = T::<V, G, R>::lv(cl);
        for j in 0..clv.fanout {
            let sub = Page::new(page.addr() + ((j as u64) << clv.shift), cl as u8, clv.shift);
            let sv = ops.split(page, &big, sub);
            // SAFETY: the fresh node of level `cl`, `j` in range.
            unsafe {
                if cl == 0 {
                    T::<V, G, R>::put_bottom(c, j, sv);
                } else {
                    c.link(j).store(T::<V, G, R>::large_word(sv), Relaxed);
                    c.len().fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Retires the tree under `n` (level `l`), just unlinked, and its
    /// boxes: each node after the last time it is read, children first.
    /// Returns the entries it held.
    ///
    /// # Safety
    /// Writer only; `n` was unlinked by a store before this call and no
    /// live link reaches it.
    unsafe fn retire_tree(&self, n: Node, l: usize) -> usize {
        let lv = T::<V, G, R>::lv(l);
        let mut entries = 0;
        // SAFETY: (caller) `n` is the writer's, still allocated (retired
        // only at the end), `i` in its fan-out; what it links is unlinked
        // with it.
        unsafe {
            if l == 0 {
                entries = n.len().load(Relaxed);
                if T::<V, G, R>::PTR {
                    // Each slot's reference to its value, retired with the
                    // table (after the same grace period).
                    for i in 0..lv.fanout {
                        if let Some(p) = core::ptr::NonNull::new(own_load_ptr(n.link(i))) {
                            self.t.retire_value(p);
                        }
                    }
                }
            } else {
                for i in 0..lv.fanout {
                    let w = own_load_ptr(n.link(i));
                    match T::<V, G, R>::link_of(w) {
                        Link::Empty => {}
                        Link::Table(c) => entries += self.retire_tree(c, l - 1),
                        Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                            entries += 1;
                            self.t.retire_word(w);
                        }
                    }
                }
            }
            self.t.retire(n, T::<V, G, R>::kind(l));
        }
        entries
    }

    /// Sets every base page in `range` to `v`, using the largest aligned
    /// pages that fit, as [`crate::MemTable::insert_range`]: entries inside
    /// are replaced, a large entry across an edge is split (by copying) so
    /// that only its part inside changes.
    ///
    /// Not atomic as a whole: slots change one store at a time, in address
    /// order. Each new table (under an empty slot, or an edge's split with
    /// the range's work in it) is built aside and linked with one store, so
    /// a reader sees each page before or after, never a half-built table.
    ///
    /// # Errors
    /// With `v` handed back and the table unchanged:
    /// [`EmptyRange`](ErrorKind::EmptyRange),
    /// [`Misaligned`](ErrorKind::Misaligned) if an end is not on a base-page
    /// boundary, [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if an edge entry
    /// cannot be split.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert_range(0x1f_f000..0x60_0000, 7).unwrap();
    /// let g = t.pin();
    /// let levels: Vec<_> = t.iter(&g).map(|(p, _)| p.level().index()).collect();
    /// assert_eq!(levels, [0, 1, 1]); // 4 KiB, then two 2 MiB pages
    /// ```
    pub fn insert_range<Q: RangeBounds<u64>>(&mut self, range: Q, v: V) -> Result<(), Error<V>> {
        self.insert_range_with(range, v, &mut SplitByClone)
    }

    /// As [`insert_range`](Self::insert_range), splitting edge entries with
    /// `ops`. If `ops` panics, the slots done so far stay done and the
    /// table is consistent (the edge being split is unchanged).
    pub fn insert_range_with<Q: RangeBounds<u64>, O: PageOps<V>>(
        &mut self,
        range: Q,
        v: V,
        ops: &mut O,
    ) -> Result<(), Error<V>> {
        let (lo, last) = match self.plan(&range, true) {
            Ok(b) => b,
            Err(e) => return Err(e.with_value(v)),
        };
        self.mark(lo, last);
        self.apply_range(self.t.root, T::<V, G, R>::TOP, 0, lo, last, Some(&v), ops, true);
        Ok(())
    }

    /// Removes every base page in `range`, as
    /// [`crate::MemTable::remove_range`]: entries inside are removed whole
    /// (a subtree with one store, then retired node by node), a large entry
    /// across an edge is split and only its part inside removed, tables
    /// left empty are unlinked and retired. Not atomic as a whole (see
    /// [`insert_range`](Self::insert_range)).
    ///
    /// # Errors
    /// The table unchanged: [`EmptyRange`](ErrorKind::EmptyRange),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if an edge entry
    /// cannot be split.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert_at(0, Level::new(1), 1).unwrap();
    /// w.remove_range(0x1000..0x20_0000).unwrap();
    /// assert_eq!((w.len(), w.get(0), w.get(0x1000)), (1, Some(1), None));
    /// ```
    pub fn remove_range<Q: RangeBounds<u64>>(&mut self, range: Q) -> Result<(), Error> {
        self.remove_range_with(range, &mut SplitByClone)
    }

    /// As [`remove_range`](Self::remove_range), splitting edge entries with
    /// `ops`; if `ops` panics, as in
    /// [`insert_range_with`](Self::insert_range_with).
    pub fn remove_range_with<Q: RangeBounds<u64>, O: PageOps<V>>(
        &mut self,
        range: Q,
        ops: &mut O,
    ) -> Result<(), Error> {
        let (lo, last) = self.plan(&range, false)?;
        self.mark(lo, last);
        self.apply_range(self.t.root, T::<V, G, R>::TOP, 0, lo, last, None, ops, true);
        Ok(())
    }

    /// Removes every entry, as [`crate::MemTable::clear`]: each slot of the
    /// top table is emptied with one store, and what it held retired. Not
    /// atomic as a whole: a reader may see some top regions cleared and
    /// others not yet.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert(0x1000, 1).unwrap();
    /// w.insert(1 << 40, 2).unwrap();
    /// w.clear();
    /// assert!(w.is_empty());
    /// ```
    pub fn clear(&mut self) {
        let last = Self::reach_last();
        self.mark(0, last);
        self.apply_range(self.t.root, T::<V, G, R>::TOP, 0, 0, last, None, &mut SplitByClone, true);
    }

    /// Keeps only the entries for which `f(page, value)` is true, as
    /// [`crate::MemTable::retain`]; a value `f` changes is stored back (one
    /// store). Entries are visited in address order, each removed or
    /// replaced as [`remove_covering`](Self::remove_covering) or
    /// [`insert_at`](Self::insert_at) would; the entries are listed first
    /// (this allocates). If `f` panics, the entries before stay done.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u32> = MemTable::new();
    /// let mut w = t.writer();
    /// for i in 0..8u64 {
    ///     w.insert(i << 12, i as u32).unwrap();
    /// }
    /// w.retain(|_, v| {
    ///     *v *= 10;
    ///     *v % 20 == 0
    /// });
    /// assert_eq!((w.len(), w.get(0x2000), w.get(0x3000)), (4, Some(20), None));
    /// ```
    pub fn retain<F: FnMut(Page, &mut V) -> bool>(&mut self, mut f: F) {
        let mut entries: Vec<(Page, V)> = Vec::new();
        {
            let g = self.t.pin();
            let mut it = self.t.iter(&g);
            while let Some((page, r)) = it.next_raw() {
                // SAFETY: read by the writer (under a guard, too): the
                // reference behind `r` is the table's, alive meanwhile.
                entries.push((page, unsafe { T::<V, G, R>::owned(r) }));
            }
        }
        for (page, v) in entries {
            let mut nv = v.clone();
            if !f(page, &mut nv) {
                self.remove_covering(page.addr());
            } else if !nv.same(&v) {
                let r = self.insert_at(page.addr(), page.level(), nv);
                debug_assert!(r.is_ok(), "replaces the entry of its own place");
            }
        }
    }

    /// Merges, bottom up, every full table of equal entries into one larger
    /// entry, wherever the level above holds entries, as
    /// [`crate::MemTable::compact`]. Returns the number of merges. Each
    /// merge is [`merge`](Self::merge)'s protocol (one store, then the table
    /// retired).
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// for i in 0..512u64 {
    ///     w.insert(i << 12, 7).unwrap();
    /// }
    /// assert_eq!(w.compact(), 1);
    /// assert_eq!(w.len(), 1);
    /// ```
    pub fn compact(&mut self) -> usize
    where
        V: PartialEq,
    {
        self.compact_with(&mut CloneOps)
    }

    /// As [`compact`](Self::compact), merging as `ops` decides. If `ops`
    /// panics, the merges before stay done and the table is consistent.
    pub fn compact_with<O: PageOps<V>>(&mut self, ops: &mut O) -> usize {
        self.compact_in(self.t.root, T::<V, G, R>::TOP, 0, ops)
    }

    /// [`compact_with`](Self::compact_with) under `t` (level `l`, based at
    /// `base`).
    fn compact_in<O: PageOps<V>>(&mut self, t: Node, l: usize, base: u64, ops: &mut O) -> usize {
        if l == 0 {
            return 0;
        }
        let lv = T::<V, G, R>::lv(l);
        let mut merges = 0;
        for i in 0..lv.fanout {
            // SAFETY: the writer's live upper table, `i` in its fan-out.
            let Link::Table(c) = T::<V, G, R>::link_of(own_load_ptr(unsafe { t.link(i) })) else { continue };
            let a = base + ((i as u64) << lv.shift);
            merges += self.compact_in(c, l - 1, a, ops);
            if lv.large && self.merge_with(a, Level::new(l as u8), ops).is_ok() {
                merges += 1;
            }
        }
        merges
    }
}
