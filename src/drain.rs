//! Taking entries out: [`MemTable::extract_if`], [`MemTable::drain_range`],
//! [`MemTable::split_off`] and [`MemTable::get_disjoint_mut`].
//!
//! The lazy removers ([`ExtractIf`], [`Drain`]) run on one raw cursor that
//! takes the entries it yields. A table the walk empties is freed at once,
//! and the walk starts again from the root past it (O(levels), once per
//! table freed), so that the table is whole after every step: an iterator
//! dropped early, or leaked, leaves a valid table.

use core::fmt;
use core::iter::FusedIterator;
use core::mem::{ManuallyDrop, MaybeUninit};
use core::ops::RangeBounds;

use crate::addr::Address;
use crate::backend::{Backend, Heap};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS, X86_4Level};
use crate::iter::bounds;
use crate::ops::{PageOps, SplitByClone};
use crate::page::{Level, Page};
use crate::raw::RawTable;
use crate::raw::cursor::{Cursor as RawCursor, Prune};
use crate::raw::ranges::View;
use crate::raw::track::Track;
use crate::table::MemTable;

/// A forward walk over `lo..=last` that marks every entry it yields and may
/// take it out.
///
/// # Invariants
/// `cur` is a raw cursor of the table the walk was made for, which has
/// changed since only by the walk's own takes (and the tables it freed
/// before making `cur` again); `lo` is at or below the next entry's start.
struct TakeWalk {
    cur: RawCursor,
    lo: u64,
    last: u64,
    done: bool,
}

impl TakeWalk {
    fn new<V, G: Geometry, B: Backend>(raw: &RawTable<V, G, B>, b: Option<(u64, u64)>) -> TakeWalk {
        let (lo, last, done) = match b {
            Some((lo, last)) => (lo, last, false),
            None => (0, 0, true),
        };
        TakeWalk { cur: RawCursor::new::<V, G>(raw.root, lo, false), lo, last, done }
    }

    /// The next entry overlapping the range, marked changed (its value kept
    /// first, if values are tracked and this is its first mark).
    fn next<V, G: Geometry, B: Backend>(&mut self, raw: &mut RawTable<V, G, B>) -> Option<(Page, *mut V)> {
        if self.done {
            return None;
        }
        // SAFETY: the cursor was made for this table, changed since only by
        // taking the values it yielded (invariant); the tables the walk
        // leaves are settled (moved to a smaller form, if they lost most of
        // their entries), and it never comes back to them.
        let found = unsafe {
            match self.cur.next_base::<V, G>(self.last, true) {
                Some((a, v)) => Some((Page::new(a, 0, G::PAGE_SHIFT), v)),
                None => self.cur.next_slow::<V, G, _>(self.lo, self.last, true, &mut Prune(raw)),
            }
        };
        let Some((p, v)) = found else {
            self.finish(raw);
            return None;
        };
        if let (Some(tr), true) = (&mut raw.track, self.cur.fresh) {
            // SAFETY: `v` is the initialized value just yielded.
            tr.keep(p.addr(), p.level().index() as u8, Some(unsafe { &*v }));
        }
        Some((p, v))
    }

    /// Ends the walk where it is, settling the bottom table it stopped in
    /// (see [`RawTable::settle_child`]).
    fn finish<V, G: Geometry, B: Backend>(&mut self, raw: &mut RawTable<V, G, B>) {
        if !self.done {
            self.done = true;
            self.cur.prune_path(raw, false);
        }
    }

    /// Takes out the entry `p` the walk just yielded. If that empties its
    /// table, frees it (and the tables above it left empty) and walks again
    /// from the root, past `p`.
    fn take<V, G: Geometry, B: Backend>(&mut self, raw: &mut RawTable<V, G, B>, p: Page) -> V {
        let l = p.level().index();
        let lv = RawTable::<V, G, B>::lv(l);
        let t = self.cur.table_at(l);
        let i = lv.index(p.addr());
        raw.len -= 1;
        // SAFETY: the cursor just yielded this entry from slot `i` of the
        // live table `t`; the slot is emptied as the value is moved out.
        let (v, empty) = unsafe {
            t.mark(lv, i);
            let v = if l == 0 { t.take::<V>(lv, i).expect("yielded") } else { t.take_large::<V>(lv, i) };
            (v, t.len(lv) == 0)
        };
        if empty && l < RawTable::<V, G, B>::TOP {
            self.cur.prune_path(raw, false);
            match p.last().checked_add(1) {
                Some(n) if n <= self.last => {
                    self.lo = n;
                    self.cur = RawCursor::new::<V, G>(raw.root, n, false);
                }
                _ => self.done = true,
            }
        }
        v
    }
}

/// The entries of a range that a predicate picks, removed as the iterator
/// goes: from [`MemTable::extract_if`].
///
/// Each step visits entries until the predicate says `true`, then removes
/// that entry (whole, whatever its level) and yields it. Dropping the
/// iterator (or leaking it) stops there: the entries not visited yet stay.
pub struct ExtractIf<'a, V, F, G: Geometry = X86_4Level, B: Backend = Heap> {
    table: &'a mut MemTable<V, G, B>,
    walk: TakeWalk,
    pred: F,
}

impl<V, F: FnMut(Page, &mut V) -> bool, G: Geometry, B: Backend> Iterator for ExtractIf<'_, V, F, G, B> {
    type Item = (Page, V);

    fn next(&mut self) -> Option<(Page, V)> {
        loop {
            let (p, v) = self.walk.next(&mut self.table.raw)?;
            // SAFETY: `v` is an initialized value of the table, borrowed
            // only for the call.
            if (self.pred)(p, unsafe { &mut *v }) {
                return Some((p, self.walk.take(&mut self.table.raw, p)));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.table.len()))
    }
}

impl<V, F: FnMut(Page, &mut V) -> bool, G: Geometry, B: Backend> FusedIterator for ExtractIf<'_, V, F, G, B> {}

impl<V, F, G: Geometry, B: Backend> Drop for ExtractIf<'_, V, F, G, B> {
    /// Leaves the entries not visited as they are, and settles the bottom
    /// table the walk stopped in (a smaller form, if it lost most of its
    /// entries).
    fn drop(&mut self) {
        self.walk.finish(&mut self.table.raw);
    }
}

impl<V, F, G: Geometry, B: Backend> fmt::Debug for ExtractIf<'_, V, F, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtractIf")
            .field("next", &format_args!("{:#x}", self.walk.lo))
            .field("last", &format_args!("{:#x}", self.walk.last))
            .finish_non_exhaustive()
    }
}

/// The entries of a range, removed as the iterator goes: from
/// [`MemTable::drain_range`].
///
/// Yields every entry of the range in ascending order, by value. Dropping
/// the iterator removes and drops the entries not yet yielded (as
/// `Vec::drain` does); if it is leaked instead (`mem::forget`), they stay
/// in the table, which is valid either way.
pub struct Drain<'a, V, G: Geometry = X86_4Level, B: Backend = Heap> {
    table: &'a mut MemTable<V, G, B>,
    walk: TakeWalk,
}

impl<V, G: Geometry, B: Backend> Iterator for Drain<'_, V, G, B> {
    type Item = (Page, V);

    fn next(&mut self) -> Option<(Page, V)> {
        let (p, _) = self.walk.next(&mut self.table.raw)?;
        Some((p, self.walk.take(&mut self.table.raw, p)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.table.len()))
    }
}

impl<V, G: Geometry, B: Backend> FusedIterator for Drain<'_, V, G, B> {}

impl<V, G: Geometry, B: Backend> Drop for Drain<'_, V, G, B> {
    fn drop(&mut self) {
        /// Drops what is left, also if a drop unwinds (a second panic
        /// aborts, as for a slice).
        struct Rest<'r, 'a, V, G: Geometry, B: Backend>(&'r mut Drain<'a, V, G, B>);
        impl<V, G: Geometry, B: Backend> Drop for Rest<'_, '_, V, G, B> {
            fn drop(&mut self) {
                self.0.by_ref().for_each(drop);
            }
        }
        let rest = Rest(self);
        rest.0.by_ref().for_each(drop);
        core::mem::forget(rest);
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for Drain<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Drain")
            .field("next", &format_args!("{:#x}", self.walk.lo))
            .field("last", &format_args!("{:#x}", self.walk.last))
            .finish_non_exhaustive()
    }
}

// SAFETY: an `ExtractIf` is a mutable borrow of the table and a predicate:
// it hands out `V` and lends `&mut V` to the predicate it owns.
unsafe impl<V: Send, F: Send, G: Geometry, B: Backend> Send for ExtractIf<'_, V, F, G, B> {}
// SAFETY: `&ExtractIf` allows only `Debug`, which reads no value.
unsafe impl<V: Sync, F: Sync, G: Geometry, B: Backend> Sync for ExtractIf<'_, V, F, G, B> {}
// SAFETY: a `Drain` is a mutable borrow of the table that hands out `V`.
unsafe impl<V: Send, G: Geometry, B: Backend> Send for Drain<'_, V, G, B> {}
// SAFETY: `&Drain` allows only `Debug`, which reads no value.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for Drain<'_, V, G, B> {}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Removes, lazily, the entries overlapping `range` (of byte addresses,
    /// as [`range`](Self::range) selects them) for which `pred(page, value)`
    /// is true, and yields them in ascending order. A large entry is
    /// visited, and removed, whole: never split, also where it reaches past
    /// the range (check `page` in `pred` to pass over those).
    ///
    /// `pred` may change the value it sees; every entry visited is marked
    /// changed (as [`retain`](Self::retain) marks). The iterator is lazy:
    /// only the entries up to the last one yielded are visited, and
    /// dropping it early leaves the rest as they are. Tables left empty are
    /// freed as the iterator goes.
    ///
    /// Cost: O(1) amortised per entry visited and per table (one walk, as
    /// [`iter`](Self::iter)), plus O(levels) per table freed.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u32> = (0..8u64).map(|i| (i << 12, i as u32)).collect();
    /// t.insert_at(0x20_0000, Level::new(1), 100).unwrap();
    /// let odd: Vec<_> = t.extract_if(.., |_, v| *v % 2 == 1).map(|(p, v)| (p.addr(), v)).collect();
    /// assert_eq!(odd, [(0x1000, 1), (0x3000, 3), (0x5000, 5), (0x7000, 7)]);
    /// // The 2 MiB entry overlaps the range, so it is offered whole:
    /// let big: Vec<_> = t.extract_if(0x30_0000..0x30_1000, |_, _| true).map(|(_, v)| v).collect();
    /// assert_eq!(big, [100]);
    /// assert_eq!(t.len(), 4);
    /// ```
    pub fn extract_if<R, F>(&mut self, range: R, pred: F) -> ExtractIf<'_, V, F, G, B>
    where
        R: RangeBounds<u64>,
        F: FnMut(Page, &mut V) -> bool,
    {
        let walk = TakeWalk::new(&self.raw, bounds::<G>(&range));
        ExtractIf { table: self, walk, pred }
    }

    /// Removes every base page in `range`, as
    /// [`remove_range`](Self::remove_range) does, and hands the removed
    /// entries back: a large entry that straddles an end of the range is
    /// split first (by cloning), then the entries inside are yielded, by
    /// value, in ascending order. For a VMM that unmaps a region and needs
    /// what was mapped there.
    ///
    /// The splits happen, and the errors are found, before the call
    /// returns; the entries are taken out as the [`Drain`] goes, and those
    /// not taken when it is dropped are dropped with it. Tables left empty
    /// are freed.
    ///
    /// # Errors
    /// The table unchanged, as [`remove_range`](Self::remove_range):
    /// [`EmptyRange`](ErrorKind::EmptyRange),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if an edge entry
    /// cannot be split, [`OutOfNodes`](ErrorKind::OutOfNodes) (a split
    /// needs tables).
    ///
    /// Cost: the splits at the two edges (O(fan-out) each), then O(1)
    /// amortised per entry and per table, plus O(levels) per table freed.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0, Level::new(1), 7).unwrap(); // 0 .. 2 MiB
    /// t.insert(0x20_0000, 8).unwrap();
    /// let got: Vec<_> = t.drain_range(0x1f_e000..0x20_1000).unwrap().map(|(p, v)| (p.addr(), v)).collect();
    /// assert_eq!(got, [(0x1f_e000, 7), (0x1f_f000, 7), (0x20_0000, 8)]);
    /// assert_eq!(t.len(), 510); // what is left of the 2 MiB page, in 4 KiB pages
    /// ```
    pub fn drain_range<R: RangeBounds<u64>>(&mut self, range: R) -> Result<Drain<'_, V, G, B>, Error>
    where
        V: Clone,
    {
        self.drain_range_with(range, &mut SplitByClone)
    }

    /// As [`drain_range`](Self::drain_range), splitting the edge entries
    /// with `ops`. If `ops` panics, the edge splits done so far stay (each
    /// is whole) and nothing is removed.
    pub fn drain_range_with<R: RangeBounds<u64>, O: PageOps<V>>(
        &mut self,
        range: R,
        ops: &mut O,
    ) -> Result<Drain<'_, V, G, B>, Error> {
        let (lo, last) = Self::check_range(&range)?;
        let mut need = [0; MAX_LEVELS];
        self.raw
            .plan_range(View::Real(self.raw.root), RawTable::<V, G, B>::TOP, 0, lo, last, false, &mut need)
            .map_err(|r| Self::refusal(r, lo, Level::BASE, ErrorKind::NothingToSplit))?;
        self.reserve_need(&need, lo)?;
        // Split what straddles an edge, largest first, until nothing does.
        for edge in [lo, last] {
            while let Some((p, _)) = self.get_key_value(edge) {
                if p.addr() >= lo && p.last() <= last {
                    break;
                }
                self.split_with(p.addr(), p.level(), ops).expect("planned and reserved");
            }
        }
        let walk = TakeWalk::new(&self.raw, Some((lo, last)));
        Ok(Drain { table: self, walk })
    }

    /// Moves every entry at or after `addr` into a new table and returns
    /// it; this table keeps the entries below `addr`. `addr` must not fall
    /// inside a large entry: such an entry is refused, not split (split it
    /// first, with [`split_to`](Self::split_to)).
    ///
    /// The new table has a backend of the same configuration (as
    /// [`clone`](Clone::clone) makes one), compares values in its change
    /// reports if this one does, and reports every entry it holds as
    /// changed (as if inserted); here the moved entries are reported
    /// removed. Every table the new one needs is allocated before anything
    /// moves.
    ///
    /// # Errors
    /// The table unchanged: [`Misaligned`](ErrorKind::Misaligned) if
    /// `addr` is not on a base-page boundary,
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) if a large entry covers
    /// `addr` without starting there (the error names it),
    /// [`OutOfNodes`](ErrorKind::OutOfNodes) if the new table's backend
    /// cannot allocate the tables the moved entries need (the level that
    /// ran out; a [`Pool`](crate::backend::Pool) of the same capacities
    /// always has room: the moved entries need no more tables than they
    /// use here).
    ///
    /// Cost: O(levels) per entry moved (each is inserted anew: tables
    /// belong to their table's backend and are never handed over), plus a
    /// walk over them first.
    ///
    /// ```
    /// use mem_table::{ErrorKind, Level, MemTable};
    /// let mut low: MemTable<u8> = (0..4u64).map(|i| (i << 12, i as u8)).collect();
    /// low.insert_at(0x20_0000, Level::new(1), 9).unwrap();
    /// assert_eq!(low.split_off(0x20_1000).unwrap_err().kind(), ErrorKind::ConflictLarger);
    /// let high = low.split_off(0x2000).unwrap();
    /// assert_eq!(low.keys().map(|p| p.addr()).collect::<Vec<_>>(), [0, 0x1000]);
    /// assert_eq!(high.keys().map(|p| p.addr()).collect::<Vec<_>>(), [0x2000, 0x3000, 0x20_0000]);
    /// ```
    pub fn split_off(&mut self, addr: impl Address) -> Result<MemTable<V, G, B>, Error> {
        let addr = addr.to_u64();
        Self::check_place(addr, Level::BASE)?;
        if let Some((p, _)) = self.get_key_value(addr) {
            if p.addr() < addr {
                return Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ()));
            }
        }
        let top = RawTable::<V, G, B>::TOP;
        let b = bounds::<G>(&(addr..));
        // The tables the moved entries need: one per region of each level
        // that holds one of them or a smaller one.
        let mut need = [0; MAX_LEVELS];
        let mut region = [None; MAX_LEVELS];
        for (p, _) in self.range(addr..) {
            for l in p.level().index()..top {
                let r = p.addr() >> RawTable::<V, G, B>::lv(l + 1).shift;
                if region[l] != Some(r) {
                    region[l] = Some(r);
                    need[l] += 1;
                }
            }
        }
        let mut high = MemTable::with_backend(self.raw.backend.clone());
        high.raw.prepare(&need).map_err(|l| Error::new(ErrorKind::OutOfNodes, addr, Level::new(l), ()))?;
        if let Some((eq, clone)) = self.raw.track.as_ref().map(|tr| (tr.eq, tr.clone)) {
            let (before, freed) = (alloc::collections::BTreeMap::new(), alloc::collections::BTreeMap::new());
            high.raw.track = Some(alloc::boxed::Box::new(Track { eq, clone, before, freed }));
            // Mark and keep first, so that a clone that panics leaves every
            // entry in place.
            let mut walk = TakeWalk::new(&self.raw, b);
            while walk.next(&mut self.raw).is_some() {}
        }
        let mut walk = TakeWalk::new(&self.raw, b);
        while let Some((p, _)) = walk.next(&mut self.raw) {
            let v = ManuallyDrop::new(walk.take(&mut self.raw, p));
            let mut old = MaybeUninit::<V>::uninit();
            // SAFETY: `v` is an initialized value, moved into the new table
            // (and not dropped here: `ManuallyDrop`); the place is vacant in
            // the new table (entries do not overlap), its tables prepared.
            let had = unsafe { high.raw.insert_planned(p.addr(), p.level().index(), &*v, old.as_mut_ptr()) };
            debug_assert!(!had);
        }
        Ok(high)
    }

    /// The values of the entries covering each of `addrs`, mutably, at
    /// once; `None` if an address has no entry (or is out of reach), or if
    /// two addresses hit the same entry (two addresses in one large page
    /// do). Marks each entry changed, only on success.
    ///
    /// Cost: O(levels) per address twice (a lookup, then a marking one),
    /// plus O(N²) comparisons.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u32> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// t.insert_at(0x20_0000, Level::new(1), 2).unwrap();
    /// let [a, b] = t.get_disjoint_mut([0x1000, 0x20_5000]).unwrap();
    /// std::mem::swap(a, b);
    /// assert_eq!(t[0x1000], 2);
    /// // One 2 MiB entry covers both: not disjoint.
    /// assert!(t.get_disjoint_mut([0x20_0000, 0x3f_f000]).is_none());
    /// ```
    pub fn get_disjoint_mut<const N: usize>(&mut self, addrs: [u64; N]) -> Option<[&mut V; N]> {
        let mut found = [core::ptr::null_mut::<V>(); N];
        let mut pages = [None; N];
        for (k, &a) in addrs.iter().enumerate() {
            if !G::in_reach(a) {
                return None;
            }
            // Pages, not pointers, tell entries apart (a zero-sized value
            // has one address for a whole table).
            let (p, v) = self.raw.find(a)?;
            if pages[..k].contains(&Some(p)) {
                return None;
            }
            pages[k] = Some(p);
            found[k] = v;
        }
        for &a in &addrs {
            self.raw.find_mut(a);
        }
        // SAFETY: each pointer is to an initialized value of this table, a
        // different one each, borrowed mutably for as long as `self` is.
        Some(found.map(|v| unsafe { &mut *v }))
    }
}

/// Hashes the entries in address order: the count, then each entry's
/// address, level and value. Consistent with `PartialEq`: equal tables hold
/// the same entries (backends, layout and change marks do not count).
impl<V: core::hash::Hash, G: Geometry, B: Backend> core::hash::Hash for MemTable<V, G, B> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len());
        for (p, v) in self {
            p.addr().hash(state);
            p.level().hash(state);
            v.hash(state);
        }
    }
}
