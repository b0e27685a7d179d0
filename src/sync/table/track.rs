//! Change tracking for the concurrent table: what the writer changed since
//! the last committed report.
//!
//! While tracking is on, every mutation marks the address range it may
//! have changed (an entry's page, a range operation's range and the large
//! pages it split, the whole reach for `clear`) in a writer-private ordered
//! map of disjoint ranges, kept in the table between writer handles. A
//! report walks the marked ranges and reads what covers them *now*. So a
//! report is exact (every page whose value changed lies in a marked range,
//! and is reported with its current value), not minimal: a page marked
//! whose value came back to what it was is reported too.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::RangeInclusive;

use super::Writer;
use crate::geometry::Geometry;
use crate::page::{Level, Page};
use crate::sync::atom::Value;
use crate::sync::reclaim::Reclaim;

/// One changed region and what covers it now: every page of
/// `start..=last` holds `value` (or nothing). The concurrent table's
/// [`crate::Change`], with the value copied out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<V> {
    /// The first address of the region.
    pub start: u64,
    /// The last address of the region (inclusive).
    pub last: u64,
    /// The value covering every page of the region now, or `None` if the
    /// region is now empty.
    pub value: Option<V>,
}

impl<V> Change<V> {
    /// The region's addresses.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.track_changes();
    /// w.insert(0x3000, 1).unwrap();
    /// let c: Vec<_> = w.take_changes().filter(|c| c.value.is_some()).collect();
    /// assert_eq!(c[0].range(), 0x3000..=0x3fff);
    /// ```
    pub fn range(&self) -> RangeInclusive<u64> {
        self.start..=self.last
    }
}

/// A change report, in ascending address order, as disjoint regions: from
/// [`Writer::take_changes`] (committed when dropped) or [`Writer::changes`]
/// (committed only by [`commit`](Self::commit)). Made when asked for (the
/// regions are collected then: it allocates).
pub struct Changes<'w, V> {
    items: alloc::vec::IntoIter<Change<V>>,
    /// The marks, cleared by a commit (`None` without tracking).
    marks: Option<&'w mut BTreeMap<u64, u64>>,
    commit_on_drop: bool,
}

impl<V> Changes<'_, V> {
    /// Commits the report: clears every mark, whether or not every region
    /// was read, so that the next report holds only what changes from now.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.track_changes();
    /// w.insert(0x1000, 1).unwrap();
    /// let report = w.changes();
    /// // ... send it; on success:
    /// report.commit();
    /// assert!(!w.has_changes());
    /// ```
    pub fn commit(mut self) {
        if let Some(m) = self.marks.as_mut() {
            m.clear();
        }
        self.commit_on_drop = false;
    }
}

impl<V> Iterator for Changes<'_, V> {
    type Item = Change<V>;

    fn next(&mut self) -> Option<Change<V>> {
        self.items.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl<V> ExactSizeIterator for Changes<'_, V> {}
impl<V> core::iter::FusedIterator for Changes<'_, V> {}

impl<V> Drop for Changes<'_, V> {
    /// From [`Writer::take_changes`]: commits. From [`Writer::changes`]
    /// without [`commit`](Changes::commit): leaves every mark.
    fn drop(&mut self) {
        if let (true, Some(m)) = (self.commit_on_drop, self.marks.as_mut()) {
            m.clear();
        }
    }
}

impl<V> core::fmt::Debug for Changes<'_, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("sync::Changes")
            .field("left", &self.items.len())
            .field("commit_on_drop", &self.commit_on_drop)
            .finish()
    }
}

/// Adds `start..=last` to `marks`, joining it with the ranges it overlaps
/// or touches.
fn add_mark(marks: &mut BTreeMap<u64, u64>, start: u64, last: u64) {
    let (mut lo, mut hi) = (start, last);
    if let Some((&a, &b)) = marks.range(..=lo).next_back() {
        if b.saturating_add(1) >= lo {
            lo = a;
            hi = hi.max(b);
            marks.remove(&a);
        }
    }
    while let Some((&a, &b)) = marks.range(lo..).next() {
        if a > hi.saturating_add(1) {
            break;
        }
        hi = hi.max(b);
        marks.remove(&a);
    }
    marks.insert(lo, hi);
}

impl<V: Value, G: Geometry, R: Reclaim> Writer<'_, V, G, R> {
    /// Marks `start..=last` changed, if changes are tracked.
    pub(super) fn mark(&mut self, start: u64, last: u64) {
        if let Some(m) = &mut self.ws().marks {
            add_mark(m, start, last);
        }
    }

    /// Marks `page` changed.
    pub(super) fn mark_page(&mut self, page: Page) {
        self.mark(page.addr(), page.last());
    }

    /// Marks the page of `level` at `addr` (aligned) changed.
    pub(super) fn mark_at(&mut self, addr: u64, level: Level) {
        let size = G::page_size(level).expect("a level of the geometry");
        self.mark(addr, addr + (size - 1));
    }

    /// The last address in reach.
    pub(super) fn reach_last() -> u64 {
        u64::MAX >> (64 - G::ADDRESS_BITS)
    }

    /// Starts tracking changes (a no-op if they are tracked already).
    ///
    /// Unlike [`crate::MemTable`], whose change marks live in its tables'
    /// bitmaps and are always kept, the concurrent table keeps its marks in
    /// a writer-side ordered map, which costs a map update (and may
    /// allocate) per mutation: so tracking is asked for. The first report
    /// after this covers the whole reach (every entry there is now, and
    /// the gaps as empty regions), so that applying the reports in order to
    /// an empty table reproduces this one.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u32> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert(0x1000, 1).unwrap();
    /// w.track_changes();
    /// let c: Vec<_> = w.take_changes().filter_map(|c| c.value.map(|v| (c.start, v))).collect();
    /// assert_eq!(c, [(0x1000, 1)]);
    /// w.insert(0x2000, 2).unwrap();
    /// let c: Vec<_> = w.take_changes().collect();
    /// assert_eq!((c.len(), c[0].start, c[0].value), (1, 0x2000, Some(2)));
    /// ```
    pub fn track_changes(&mut self) {
        if self.ws_ref().marks.is_none() {
            self.ws().marks = Some(BTreeMap::new());
            self.mark(0, Self::reach_last());
        }
    }

    /// Whether changes are tracked ([`track_changes`](Self::track_changes)).
    pub fn tracks_changes(&self) -> bool {
        self.ws_ref().marks.is_some()
    }

    /// Whether a report may hold anything: whether anything is marked
    /// since the last committed report.
    pub fn has_changes(&self) -> bool {
        self.ws_ref().marks.as_ref().is_some_and(|m| !m.is_empty())
    }

    /// The regions that changed since the last committed report (or since
    /// [`track_changes`](Self::track_changes)), each with the value that
    /// covers it now, and commits when dropped. As
    /// [`crate::MemTable::take_changes`]:
    ///
    /// # What a report says
    /// Disjoint regions in ascending order, each with the value that now
    /// covers every page of it, or `None`: applying the reports in order to
    /// a copy (clear each region, then set its value) reproduces which
    /// value covers each page. Nothing is said of the entries' shapes (a
    /// region may be part of a large entry). Exact, not minimal: a page
    /// written back to its old value is reported; neighbouring entries are
    /// separate regions. Empty without tracking.
    ///
    /// Costs O(marked ranges + entries in them); collects the report
    /// (allocates).
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.track_changes();
    /// w.take_changes().for_each(drop); // the empty table
    /// w.insert(0x1000, 1).unwrap();
    /// w.insert(0x2000, 2).unwrap();
    /// w.take_changes().for_each(drop);
    /// w.insert(0x2000, 3).unwrap();
    /// w.remove(0x1000).unwrap();
    /// let c: Vec<_> = w.take_changes().map(|c| (c.start, c.last, c.value)).collect();
    /// assert_eq!(c, [(0x1000, 0x1fff, None), (0x2000, 0x2fff, Some(3))]);
    /// assert_eq!(w.take_changes().count(), 0);
    /// ```
    pub fn take_changes(&mut self) -> Changes<'_, V> {
        self.report(true)
    }

    /// The report [`take_changes`](Self::take_changes) would give, as a
    /// transaction: [`commit`](Changes::commit) it once acted on; dropped
    /// without a commit, it leaves every mark.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.track_changes();
    /// w.take_changes().for_each(drop);
    /// w.insert(0x1000, 1).unwrap();
    /// drop(w.changes()); // a send that failed
    /// assert_eq!(w.changes().count(), 1);
    /// w.changes().commit();
    /// assert_eq!(w.changes().count(), 0);
    /// ```
    pub fn changes(&mut self) -> Changes<'_, V> {
        self.report(false)
    }

    fn report(&mut self, commit_on_drop: bool) -> Changes<'_, V> {
        let mut items = Vec::new();
        if let Some(m) = &self.ws_ref().marks {
            let guard = self.t.pin();
            for (&s, &e) in m {
                let mut at = Some(s);
                let mut it = self.t.range(s..=e, &guard);
                while let Some((p, r)) = it.next_raw() {
                    // SAFETY: read by the writer under a guard: the
                    // reference behind `r` is the table's, alive meanwhile.
                    let v = unsafe { super::MemTable::<V, G, R>::owned(r) };
                    let (ps, pe) = (p.addr().max(s), p.last().min(e));
                    let from = at.expect("entries after the end of the range");
                    if ps > from {
                        items.push(Change { start: from, last: ps - 1, value: None });
                    }
                    items.push(Change { start: ps, last: pe, value: Some(v) });
                    at = pe.checked_add(1).filter(|&a| a <= e);
                }
                if let Some(from) = at {
                    items.push(Change { start: from, last: e, value: None });
                }
            }
        }
        let marks = self.ws().marks.as_mut();
        Changes { items: items.into_iter(), marks, commit_on_drop }
    }
}
