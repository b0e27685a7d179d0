//! Change tracking: what changed since the last report.
//!
//! Every mutation marks its slot and the slots on the path to it; a report
//! visits only marked slots, so it costs O(changes x levels), not O(table).

use alloc::vec::Vec;

use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;
use crate::raw::chain::Chain;
use crate::raw::walk::Walk;
use crate::table::{MemTable, Top};

/// One changed region and what it holds now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a, V> {
    /// The region that changed: an entry's page, or the page of a slot that
    /// was emptied (a removed entry, or a freed table's whole region).
    pub page: Page,
    /// The entry now at `page`, or `None` if the region is now empty.
    pub value: Option<&'a V>,
}

/// The changes since the previous report, in ascending address order: from
/// [`MemTable::take_changes`].
pub struct Changes<'a, V, G: Geometry, B: Backend> {
    table: &'a MemTable<V, G, B>,
    pages: alloc::vec::IntoIter<Page>,
}

impl<'a, V, G: Geometry, B: Backend> Iterator for Changes<'a, V, G, B> {
    type Item = Change<'a, V>;

    fn next(&mut self) -> Option<Change<'a, V>> {
        let page = self.pages.next()?;
        let value = match self.table.get_key_value(page.addr()) {
            Some((p, v)) if p == page => Some(v),
            _ => None,
        };
        Some(Change { page, value })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pages.size_hint()
    }
}

impl<V, G: Geometry, B: Backend> ExactSizeIterator for Changes<'_, V, G, B> {}

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
    /// the list of changed pages.
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
        let mut pages = Vec::new();
        Top::<G>::take_changes(&mut self.root, &mut self.stores, 0, &mut pages);
        Changes { table: self, pages: pages.into_iter() }
    }

    /// Whether anything changed since the previous
    /// [`take_changes`](Self::take_changes). O(root fan-out).
    pub fn has_changes(&self) -> bool {
        Top::<G>::has_marks(&self.root)
    }
}
