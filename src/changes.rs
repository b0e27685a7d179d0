//! Change tracking: what changed since the last report.
//!
//! Every mutation marks its slot and the slots on the path to it; a report
//! visits only marked slots, so it costs O(changes x levels), not O(table).

use core::fmt;
use core::iter::FusedIterator;
use core::marker::PhantomData;

use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;
use crate::raw::cursor::Cursor;
use crate::table::MemTable;

/// One changed region and what it holds now.
#[derive(Debug, PartialEq, Eq)]
pub struct Change<'a, V> {
    /// The region that changed: an entry's page, or the page of a slot that
    /// was emptied (a removed entry, or a freed table's whole region).
    pub page: Page,
    /// The entry now at `page`, or `None` if the region is now empty.
    pub value: Option<&'a V>,
}

impl<V> Clone for Change<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for Change<'_, V> {}

/// The changes since the previous report, in ascending address order: from
/// [`MemTable::take_changes`]. A walk over the marked paths that clears
/// each mark as it passes; dropping it clears the rest. Allocates nothing.
pub struct Changes<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    walk: Cursor,
    _table: PhantomData<&'a mut MemTable<V, G, B>>,
}

impl<'a, V, G: Geometry, B: Backend> Iterator for Changes<'a, V, G, B> {
    type Item = Change<'a, V>;

    fn next(&mut self) -> Option<Change<'a, V>> {
        // SAFETY: the table is borrowed mutably for 'a; the walk writes only
        // change marks, which no yielded reference covers, and values are
        // only read.
        let (page, value) = unsafe { self.walk.next_mark::<V, G>() }?;
        // SAFETY: as above; the pointer is to an initialized value.
        Some(Change { page, value: value.map(|v| unsafe { &*v }) })
    }
}

impl<V, G: Geometry, B: Backend> FusedIterator for Changes<'_, V, G, B> {}

impl<V, G: Geometry, B: Backend> Drop for Changes<'_, V, G, B> {
    /// Clears the marks not yet walked.
    fn drop(&mut self) {
        // SAFETY: as in `next`.
        while unsafe { self.walk.next_mark::<V, G>() }.is_some() {}
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for Changes<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changes").finish_non_exhaustive()
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Hands back every region that changed since the previous call (or since
    /// the table was made) with its current entry, and clears the marks.
    ///
    /// A change is reported at the granularity it happened: an inserted,
    /// replaced or mutably borrowed entry as its page; a removed entry as its
    /// page with `None`; a table freed by a removal as its whole region with
    /// `None`. When a region is emptied and then filled again before the
    /// report, every slot of the new table is reported, so applying the
    /// report in order (clear each `None` region, set each value) always
    /// reproduces the table. Mutable access ([`get_mut`](Self::get_mut),
    /// [`iter_mut`](Self::iter_mut)) counts as a change.
    ///
    /// Costs O(changes x levels): only marked paths are visited. Allocates
    /// nothing: the report is a walk, and the marks are cleared as it goes
    /// (the rest when it is dropped).
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
    /// let c: Vec<_> = t.take_changes().map(|c| (c.page.addr(), c.value.copied())).collect();
    /// assert_eq!(c, [(0x1000, None), (0x2000, Some(3))]);
    /// assert_eq!(t.take_changes().count(), 0);
    /// ```
    pub fn take_changes(&mut self) -> Changes<'_, V, G, B> {
        Changes { walk: Cursor::marks::<G>(self.raw.root), _table: PhantomData }
    }

    /// Whether anything changed since the previous
    /// [`take_changes`](Self::take_changes). O(root fan-out).
    pub fn has_changes(&self) -> bool {
        self.raw.has_changes()
    }
}

// SAFETY: a `Changes` is a mutable borrow of the table that hands out `&V`:
// sending it sends the borrow (`V: Send`) and the references (`V: Sync`).
unsafe impl<V: Send + Sync, G: Geometry, B: Backend> Send for Changes<'_, V, G, B> {}
// SAFETY: `&Changes` allows nothing but `Debug`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for Changes<'_, V, G, B> {}
