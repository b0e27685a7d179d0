//! Change tracking: what changed since the last committed report.
//!
//! Every mutation marks its slot and the slots on the path to it; a report
//! visits only marked paths, so it costs O(changes x levels), not O(table).
//! A report is a list of disjoint regions, each with the value covering it
//! now (or none); neighbouring empty regions are joined, and with
//! [`MemTable::track_values`] a region is reported only where a page's value
//! differs from the last committed report (what it held is kept at the
//! slot's first mark, see `raw::track`), and neighbours of equal value are
//! joined.
//!
//! | step | what it does to the marks |
//! |---|---|
//! | a mutation | marks the slot (and the path) |
//! | [`MemTable::changes`] | reads them; dropped, leaves them all |
//! | [`Changes::commit`] | clears them all, and the values kept |
//! | [`MemTable::take_changes`] | reads them; dropped, commits |

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;
use core::ops::RangeInclusive;
use core::ptr::NonNull;

use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::raw::RawTable;
use crate::raw::cursor::Cursor;
use crate::raw::track::Track;
use crate::table::MemTable;

/// One changed region and what covers it now: every page of
/// `start..=last` holds `value` (or nothing).
///
/// A region is an entry's page, or several neighbouring pages joined: empty
/// ones always, ones with equal values where values are compared
/// ([`MemTable::track_values`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Change<'a, V> {
    /// The first address of the region.
    pub start: u64,
    /// The last address of the region (inclusive: a region may end at the
    /// top of a 64-bit address space).
    pub last: u64,
    /// The value covering every page of the region now, or `None` if the
    /// region is now empty.
    pub value: Option<&'a V>,
}

impl<V> Change<'_, V> {
    /// The region's addresses.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x3000, 1).unwrap();
    /// let c = t.take_changes().next().unwrap();
    /// assert_eq!(c.range(), 0x3000..=0x3fff);
    /// ```
    pub fn range(&self) -> RangeInclusive<u64> {
        self.start..=self.last
    }
}

impl<V> Clone for Change<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Change<'_, V> {}

/// What happens to the marks when a [`Changes`] is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Clear them (from [`MemTable::take_changes`]).
    Commit,
    /// Leave them (from [`MemTable::changes`]) unless
    /// [`commit`](Changes::commit) is called.
    Abandon,
}

/// The changes since the last committed report, in ascending address order,
/// as disjoint regions: from [`MemTable::take_changes`] (committed when
/// dropped) or [`MemTable::changes`] (committed only by
/// [`commit`](Self::commit)). A walk over the marked paths that leaves the
/// marks as they are; the commit clears them in a second walk. Allocates
/// nothing.
pub struct Changes<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    walk: Cursor,
    /// The table: read for its root and value tracking; its marks are the
    /// walk's to clear.
    raw: NonNull<RawTable<V, G, B>>,
    /// The region being joined with its neighbours, not yet yielded.
    pending: Option<Change<'a, V>>,
    end: End,
    _table: PhantomData<&'a mut MemTable<V, G, B>>,
}

impl<'a, V, G: Geometry, B: Backend> Changes<'a, V, G, B> {
    fn new(table: &'a mut MemTable<V, G, B>, end: End) -> Self {
        let walk = Cursor::marks::<G>(table.raw.root);
        Changes { walk, raw: NonNull::from(&mut table.raw), pending: None, end, _table: PhantomData }
    }

    /// The tracking, if values are compared.
    fn track(&self) -> Option<&Track<V>> {
        // SAFETY: the table is borrowed mutably for 'a; the tracking is only
        // read here, and written only by `clear`, which consumes the walk.
        unsafe { self.raw.as_ref().track.as_deref() }
    }

    /// The next marked slot whose value may differ from what the last
    /// committed report said: `(start, last, value)`.
    fn pull(&mut self) -> Option<(u64, u64, Option<*mut V>)> {
        loop {
            // SAFETY: the table is borrowed mutably for 'a; the walk writes
            // only change marks, which no yielded reference covers, and
            // values are only read.
            let (page, v) = unsafe { self.walk.next_mark::<V, G, false>() }?;
            if let Some(tr) = self.track() {
                let (a, l) = (page.addr(), page.level().index() as u8);
                let same = match v {
                    // SAFETY: `v` points to an initialized value of the table.
                    Some(v) => tr.unchanged(a, l, Some(unsafe { &*v })),
                    None => tr.was_empty::<G>(a, l),
                };
                if same {
                    continue;
                }
            }
            return Some((page.addr(), page.last(), v));
        }
    }

    /// Whether two neighbouring regions holding `a` and `b` are one region.
    fn same(&self, a: Option<&V>, b: Option<&V>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(a), Some(b)) => self.track().is_some_and(|tr| (tr.eq)(a, b)),
            _ => false,
        }
    }

    /// Clears every mark and the values kept for comparison: the report
    /// becomes the one the next is measured against.
    fn clear(&mut self) {
        // SAFETY: the table is borrowed mutably for 'a; a fresh walk over its
        // marks, which clears them. It clears bits only: the regions this
        // report yielded hold references to values for 'a, so no table may
        // move or be freed until the borrow ends (a table that could now
        // take a smaller form moves at its next remove, or at
        // `shrink_to_fit`).
        unsafe {
            let raw = self.raw.as_mut();
            let mut walk = Cursor::marks::<G>(raw.root);
            while walk.next_mark::<V, G, true>().is_some() {}
            if let Some(tr) = &mut raw.track {
                tr.before.clear();
                tr.freed.clear();
            }
        }
    }

    /// Commits the report: clears the marks and the values kept for
    /// comparison, whether or not every region was read, so that the next
    /// report holds only what changes from now on.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// let report = t.changes();
    /// // ... send it; on success:
    /// report.commit();
    /// assert!(!t.has_changes());
    /// ```
    pub fn commit(mut self) {
        self.clear();
        self.end = End::Abandon;
    }
}

impl<'a, V, G: Geometry, B: Backend> Iterator for Changes<'a, V, G, B> {
    type Item = Change<'a, V>;

    fn next(&mut self) -> Option<Change<'a, V>> {
        loop {
            let Some((start, last, v)) = self.pull() else { return self.pending.take() };
            // SAFETY: as in `pull`; the pointer is to an initialized value,
            // which the table's borrow keeps for 'a.
            let c = Change { start, last, value: v.map(|v| unsafe { &*v }) };
            match self.pending {
                None => self.pending = Some(c),
                Some(p) if p.last.checked_add(1) == Some(start) && self.same(p.value, c.value) => {
                    self.pending = Some(Change { last, ..p });
                }
                Some(_) => return self.pending.replace(c),
            }
        }
    }
}

impl<V, G: Geometry, B: Backend> FusedIterator for Changes<'_, V, G, B> {}

impl<V, G: Geometry, B: Backend> Drop for Changes<'_, V, G, B> {
    /// From [`MemTable::take_changes`]: commits (clears every mark, read or
    /// not). From [`MemTable::changes`] without
    /// [`commit`](Changes::commit): leaves every mark, as if the report had
    /// never been made.
    fn drop(&mut self) {
        if self.end == End::Commit {
            self.clear();
        }
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for Changes<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes").field("commit_on_drop", &(self.end == End::Commit)).finish_non_exhaustive()
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// The regions that changed since the last committed report (or since
    /// the table was made), each with the value covering it now, and
    /// commits: the marks are cleared as the report is read, and the rest
    /// when it is dropped. [`changes`](Self::changes) is the same report,
    /// committed only when asked.
    ///
    /// # What a report says
    /// A list of disjoint regions in ascending order, each with the value
    /// that now covers every page of it, or `None`: applying the reports in
    /// order to a copy (clear each region, then set its value) reproduces
    /// which value covers each page. A report says nothing about the shape
    /// of the entries: a split or merge that keeps every page's value
    /// ([`PageOps::KEEPS_VALUES`](crate::ops::PageOps::KEEPS_VALUES), as the
    /// built-in ops do) is not reported, and one whose ops make new values
    /// reports the sub-pages they made.
    ///
    /// - Inserted, replaced and mutably borrowed entries are reported as
    ///   their pages; removed entries and freed tables as empty regions;
    ///   neighbouring empty regions are joined (a cleared 1 GiB region is one
    ///   region).
    /// - Without [`track_values`](Self::track_values), a mutable borrow
    ///   ([`get_mut`](Self::get_mut), [`iter_mut`](Self::iter_mut),
    ///   [`retain`](Self::retain), an occupied [`entry`](Self::entry)) and a
    ///   replacement by an equal value count as changes: the table cannot
    ///   compare values, so a report may name a page whose value is what it
    ///   was, and neighbouring entries are separate regions.
    /// - With it (`V: PartialEq + Clone`), a region is reported only if some
    ///   page of it holds a value other than at the last committed report
    ///   (compared with `==`), and neighbouring regions with equal values are
    ///   joined.
    /// - In both: a region emptied and filled again before the report (a
    ///   table freed, then made anew) is reported as its new entries and the
    ///   empty gaps between them, some of which may have been empty before
    ///   too.
    ///
    /// Costs O(marked slots x levels): only marked paths are visited.
    /// Allocates nothing, and moves or frees no table: the regions yielded
    /// borrow their values for as long as the table is borrowed, past the
    /// report's end. A bottom table that lost most of its entries, kept
    /// from the smallest (sparse) forms by the removed slots' marks, moves
    /// to one at its next remove, or at
    /// [`shrink_to_fit`](MemTable::shrink_to_fit).
    ///
    /// The values outlive the report:
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u64> = MemTable::new();
    /// for i in 0..40u64 {
    ///     t.insert(i << 12, i).unwrap();
    /// }
    /// t.take_changes().for_each(drop);
    /// for i in 4..40u64 {
    ///     t.remove(i << 12).unwrap();
    /// }
    /// t.insert(0, 100).unwrap();
    /// let report: Vec<_> = t.take_changes().collect(); // committed as it drops
    /// assert_eq!(report[0].value, Some(&100));
    /// assert_eq!((report[1].start, report[1].last, report[1].value), (0x4000, 0x27fff, None));
    /// ```
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// t.insert(0x2000, 2).unwrap();
    /// assert_eq!(t.take_changes().count(), 2);
    ///
    /// t.insert(0x2000, 3).unwrap();
    /// t.remove(0x1000).unwrap();
    /// let c: Vec<_> = t.take_changes().map(|c| (c.start, c.last, c.value.copied())).collect();
    /// assert_eq!(c, [(0x1000, 0x1fff, None), (0x2000, 0x2fff, Some(3))]);
    /// assert_eq!(t.take_changes().count(), 0);
    /// ```
    pub fn take_changes(&mut self) -> Changes<'_, V, G, B> {
        Changes::new(self, End::Commit)
    }

    /// The report [`take_changes`](Self::take_changes) would give, as a
    /// transaction: read it, then [`commit`](Changes::commit) it once it has
    /// been acted on; dropped without a commit, it leaves every mark, and
    /// the next report covers everything again (plus what changes in
    /// between). Reading costs as in `take_changes`; a commit walks the
    /// marks once more.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    ///
    /// // A send that fails half-way: the report is abandoned.
    /// let report = t.changes();
    /// drop(report);
    /// assert_eq!(t.changes().count(), 1);
    ///
    /// // A send that succeeds.
    /// let report = t.changes();
    /// let sent: Vec<_> = report.map(|c| c.start).collect();
    /// assert_eq!(sent, [0x1000]);
    /// t.changes().commit();
    /// assert_eq!(t.changes().count(), 0);
    /// ```
    pub fn changes(&mut self) -> Changes<'_, V, G, B> {
        Changes::new(self, End::Abandon)
    }

    /// Whether a report may hold anything: whether any slot is marked since
    /// the last committed report. With [`track_values`](Self::track_values),
    /// the report may still be empty (every change undone). O(root fan-out).
    pub fn has_changes(&self) -> bool {
        self.raw.has_changes()
    }

    /// Makes change reports compare values: from now on, a report leaves out
    /// every page whose value equals (`==`) its value at the last committed
    /// report, and joins neighbouring regions with equal values. A
    /// read-only pass through [`get_mut`](Self::get_mut),
    /// [`iter_mut`](Self::iter_mut), [`retain`](Self::retain) or
    /// [`entry`](Self::entry), an insert of an equal value, or a
    /// split or merge whose ops make equal values then reports nothing.
    ///
    /// Cost: the first mutable access to an entry after a committed report
    /// keeps a clone of its value (one `clone` and one ordered-map insert;
    /// memory O(entries reached mutably until the next commit)); a report
    /// compares each marked entry with its clone. Changes made before the
    /// call are compared from the next committed report on.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u32> = MemTable::new();
    /// t.track_values();
    /// for a in (0..16).map(|n| n << 12) {
    ///     t.insert(a, 7).unwrap();
    /// }
    /// // Sixteen neighbouring pages with one value: one region.
    /// assert_eq!(t.take_changes().count(), 1);
    ///
    /// // A pass that writes back what it read changes nothing.
    /// for (_, v) in t.iter_mut() {
    ///     *v = *v;
    /// }
    /// *t.get_mut(0x3000).unwrap() += 1;
    /// let c: Vec<_> = t.take_changes().map(|c| (c.start, c.value.copied())).collect();
    /// assert_eq!(c, [(0x3000, Some(8))]);
    /// ```
    pub fn track_values(&mut self)
    where
        V: PartialEq + Clone,
    {
        if self.raw.track.is_none() {
            self.raw.track = Some(alloc::boxed::Box::new(Track::new()));
        }
    }

    /// Whether reports compare values ([`track_values`](Self::track_values)).
    pub fn tracks_values(&self) -> bool {
        self.raw.track.is_some()
    }

    /// How many values [`track_values`](Self::track_values) keeps (clones of
    /// what entries held at the last committed report), until the next
    /// commit: the memory comparison costs. Zero without tracking. O(places
    /// kept).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u32> = MemTable::new();
    /// t.track_values();
    /// t.insert(0x1000, 1).unwrap();
    /// t.take_changes().for_each(drop);
    /// *t.get_mut(0x1000).unwrap() += 1;
    /// assert_eq!(t.kept_values(), 1); // the 1, to compare with
    /// t.take_changes().for_each(drop);
    /// assert_eq!(t.kept_values(), 0);
    /// ```
    pub fn kept_values(&self) -> usize {
        self.raw.track.as_ref().map_or(0, |tr| tr.before.values().filter(|v| v.is_some()).count())
    }
}

// SAFETY: a `Changes` is a mutable borrow of the table that hands out `&V`:
// sending it sends the borrow (`V: Send`) and the references (`V: Sync`).
unsafe impl<V: Send + Sync, G: Geometry, B: Backend> Send for Changes<'_, V, G, B> {}
// SAFETY: `&Changes` allows nothing but `Debug`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for Changes<'_, V, G, B> {}
