//! Iteration in ascending address order: [`Iter`] (also ranges),
//! [`IterMut`], [`IntoIter`], and the key and value views.

use core::iter::FusedIterator;
use core::ops::{Bound, RangeBounds};

use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;
use crate::raw::walk::{Found, LeafCursor, Walk};
use crate::table::{MemTable, Top};

/// The bottom node type of a `MemTable<V, G, _>`.
type Leaf<V, G> = <Top<G> as Walk>::Leaf<V>;

/// The inclusive address bounds of `range`, clipped to the reach of `G`;
/// `None` when nothing in reach overlaps it.
pub(crate) fn bounds<G: Geometry>(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let top = if G::ADDRESS_BITS >= 64 { u64::MAX } else { (1u64 << G::ADDRESS_BITS) - 1 };
    let lo = match range.start_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let last = match range.end_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    }
    .min(top);
    (lo <= last).then_some((lo, last))
}

/// The entries overlapping an address range, in ascending order, as
/// `(Page, &V)`: from [`MemTable::iter`] and [`MemTable::range`].
///
/// Each step inside a bottom table is a bitmap scan; moving to the next
/// table or large entry is one walk from the root.
pub struct Iter<'a, V, G: Geometry, B: Backend> {
    table: &'a MemTable<V, G, B>,
    /// The bottom table being walked.
    leaf: Option<LeafCursor<'a, Leaf<V, G>>>,
    /// The next address to seek from, or `None` when the range is done.
    next: Option<u64>,
    /// The last address of the range.
    last: u64,
    /// Entries left, when the whole table is walked.
    remaining: Option<usize>,
}

impl<'a, V, G: Geometry, B: Backend> Iter<'a, V, G, B> {
    pub(crate) fn new(table: &'a MemTable<V, G, B>, bounds: Option<(u64, u64)>, whole: bool) -> Self {
        let (next, last) = match bounds {
            Some((lo, last)) => (Some(lo), last),
            None => (None, 0),
        };
        Iter { table, leaf: None, next, last, remaining: whole.then_some(table.len) }
    }
}

impl<'a, V, G: Geometry, B: Backend> Iter<'a, V, G, B> {
    /// Seeks from `self.next`: returns a large entry, or sets `self.leaf` to
    /// the next bottom table with an entry in range and returns `None` (as it
    /// does, with `self.leaf` unset, at the end).
    fn seek_next(&mut self) -> Option<(Page, &'a V)> {
        let from = self.next?;
        let t = self.table;
        match Top::<G>::seek(&*t.root, &t.stores, 0, from, self.last) {
            None => {
                self.next = None;
                None
            }
            Some(Found::Entry(page, v)) => {
                self.next = page.last().checked_add(1).filter(|&n| n <= self.last);
                Some((page, v))
            }
            Some(Found::Leaf { node, base, from, to }) => {
                // The last address of slot `to` (written so as not to overflow
                // at the top of a 64-bit space).
                let end = base + ((to as u64) << G::PAGE_SHIFT) + ((1u64 << G::PAGE_SHIFT) - 1);
                self.next = end.checked_add(1).filter(|&n| n <= self.last);
                self.leaf = Some(LeafCursor::new(node, base, from, to));
                None
            }
        }
    }
}

impl<V, G: Geometry, B: Backend> Clone for Iter<'_, V, G, B> {
    fn clone(&self) -> Self {
        Iter {
            table: self.table,
            leaf: self.leaf.clone(),
            next: self.next,
            last: self.last,
            remaining: self.remaining,
        }
    }
}

impl<'a, V, G: Geometry, B: Backend> Iterator for Iter<'a, V, G, B> {
    type Item = (Page, &'a V);

    #[inline]
    fn next(&mut self) -> Option<(Page, &'a V)> {
        loop {
            if let Some(leaf) = &mut self.leaf {
                if let Some((addr, v)) = leaf.next(G::PAGE_SHIFT) {
                    if let Some(r) = &mut self.remaining {
                        *r -= 1;
                    }
                    return Some((Page::new(addr, 0, G::PAGE_SHIFT), v));
                }
                self.leaf = None;
            }
            if let Some(entry) = self.seek_next() {
                if let Some(r) = &mut self.remaining {
                    *r -= 1;
                }
                return Some(entry);
            }
            self.leaf.as_ref()?;
        }
    }

    /// Internal iteration: whole bitmap words of a bottom table at a time.
    fn fold<Acc, F>(mut self, init: Acc, mut f: F) -> Acc
    where
        F: FnMut(Acc, (Page, &'a V)) -> Acc,
    {
        let mut acc = init;
        let shift = G::PAGE_SHIFT;
        loop {
            if let Some(leaf) = self.leaf.take() {
                acc = leaf.fold(shift, acc, |acc, addr, v| f(acc, (Page::new(addr, 0, shift), v)));
            }
            match self.seek_next() {
                Some(entry) => acc = f(acc, entry),
                None if self.leaf.is_some() => {}
                None => return acc,
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(r) => (r, Some(r)),
            None => (0, Some(self.table.len)),
        }
    }
}

impl<V, G: Geometry, B: Backend> FusedIterator for Iter<'_, V, G, B> {}

/// Mutable references to every entry, in ascending order: from
/// [`MemTable::iter_mut`]. Each entry yielded is marked changed.
///
/// Creating it allocates an index of one pointer per table (not per entry).
pub struct IterMut<'a, V: 'a, G: Geometry, B: Backend + 'a> {
    state: <Top<G> as Walk>::MutState<'a, V, B>,
    remaining: usize,
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> IterMut<'a, V, G, B> {
    pub(crate) fn new(table: &'a mut MemTable<V, G, B>) -> Self {
        let remaining = table.len;
        let MemTable { root, stores, .. } = table;
        let mut state = Top::<G>::mut_state(stores);
        Top::<G>::enter(&mut state, &mut **root, 0);
        IterMut { state, remaining }
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> Iterator for IterMut<'a, V, G, B> {
    type Item = (Page, &'a mut V);

    fn next(&mut self) -> Option<(Page, &'a mut V)> {
        let item = Top::<G>::next_mut(&mut self.state)?;
        self.remaining -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> ExactSizeIterator for IterMut<'a, V, G, B> {}
impl<'a, V: 'a, G: Geometry, B: Backend + 'a> FusedIterator for IterMut<'a, V, G, B> {}

/// The entries of a table, by value, in ascending order: from
/// [`MemTable::into_iter`]. Dropping it drops the entries not taken.
pub struct IntoIter<V, G: Geometry, B: Backend> {
    table: MemTable<V, G, B>,
}

impl<V, G: Geometry, B: Backend> Iterator for IntoIter<V, G, B> {
    type Item = (Page, V);

    fn next(&mut self) -> Option<(Page, V)> {
        self.table.pop_first()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.table.len, Some(self.table.len))
    }
}

impl<V, G: Geometry, B: Backend> ExactSizeIterator for IntoIter<V, G, B> {}
impl<V, G: Geometry, B: Backend> FusedIterator for IntoIter<V, G, B> {}

/// The pages of a table, in ascending order: from [`MemTable::keys`].
pub struct Keys<'a, V, G: Geometry, B: Backend>(Iter<'a, V, G, B>);

impl<V, G: Geometry, B: Backend> Iterator for Keys<'_, V, G, B> {
    type Item = Page;
    fn next(&mut self) -> Option<Page> {
        self.0.next().map(|(p, _)| p)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The values of a table, in ascending address order: from
/// [`MemTable::values`].
pub struct Values<'a, V, G: Geometry, B: Backend>(Iter<'a, V, G, B>);

impl<'a, V, G: Geometry, B: Backend> Iterator for Values<'a, V, G, B> {
    type Item = &'a V;
    fn next(&mut self) -> Option<&'a V> {
        self.0.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The values of a table, mutably, in ascending address order: from
/// [`MemTable::values_mut`].
pub struct ValuesMut<'a, V, G: Geometry, B: Backend>(IterMut<'a, V, G, B>);

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> Iterator for ValuesMut<'a, V, G, B> {
    type Item = &'a mut V;
    fn next(&mut self) -> Option<&'a mut V> {
        self.0.next().map(|(_, v)| v)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Every entry, in ascending address order, as `(page, &value)`.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x3000, 3).unwrap();
    /// t.insert_at(0x40_0000, Level::new(1), 2).unwrap();
    /// t.insert(0x1000, 1).unwrap();
    /// let v: Vec<_> = t.iter().map(|(p, v)| (p.addr(), *v)).collect();
    /// assert_eq!(v, [(0x1000, 1), (0x3000, 3), (0x40_0000, 2)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, V, G, B> {
        Iter::new(self, bounds::<G>(&(..)), true)
    }

    /// Every entry that overlaps `range` (of byte addresses), in ascending
    /// order; a large entry that starts before the range but reaches into it
    /// is included.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0, Level::new(1), 0).unwrap();           // 0 .. 2 MiB
    /// t.insert(0x20_0000, 1).unwrap();
    /// t.insert(0x20_1000, 2).unwrap();
    /// let v: Vec<_> = t.range(0x1f_0000..0x20_1000).map(|(_, v)| *v).collect();
    /// assert_eq!(v, [0, 1]);
    /// ```
    pub fn range<R: RangeBounds<u64>>(&self, range: R) -> Iter<'_, V, G, B> {
        Iter::new(self, bounds::<G>(&range), false)
    }

    /// Every entry, mutably, in ascending order. Marks every entry changed.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = [(0x1000, 1), (0x2000, 2)].into_iter().collect();
    /// for (_, v) in t.iter_mut() {
    ///     *v *= 10;
    /// }
    /// assert_eq!(t[0x2000], 20);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, V, G, B> {
        IterMut::new(self)
    }

    /// Every page, in ascending order.
    pub fn keys(&self) -> Keys<'_, V, G, B> {
        Keys(self.iter())
    }

    /// Every value, in ascending address order.
    pub fn values(&self) -> Values<'_, V, G, B> {
        Values(self.iter())
    }

    /// Every value, mutably, in ascending address order. Marks every entry
    /// changed.
    pub fn values_mut(&mut self) -> ValuesMut<'_, V, G, B> {
        ValuesMut(self.iter_mut())
    }

    /// The entry with the lowest address.
    pub fn first_key_value(&self) -> Option<(Page, &V)> {
        self.iter().next()
    }

    /// Removes and returns the entry with the lowest address.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = [(0x2000, 2), (0x1000, 1)].into_iter().collect();
    /// assert_eq!(t.pop_first().map(|(p, v)| (p.addr(), v)), Some((0x1000, 1)));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn pop_first(&mut self) -> Option<(Page, V)> {
        let addr = self.first_key_value()?.0.addr();
        self.remove(addr).expect("an entry's address is valid")
    }
}

impl<'a, V, G: Geometry, B: Backend> IntoIterator for &'a MemTable<V, G, B> {
    type Item = (Page, &'a V);
    type IntoIter = Iter<'a, V, G, B>;
    fn into_iter(self) -> Iter<'a, V, G, B> {
        self.iter()
    }
}

impl<'a, V, G: Geometry, B: Backend> IntoIterator for &'a mut MemTable<V, G, B> {
    type Item = (Page, &'a mut V);
    type IntoIter = IterMut<'a, V, G, B>;
    fn into_iter(self) -> IterMut<'a, V, G, B> {
        self.iter_mut()
    }
}

impl<V, G: Geometry, B: Backend> IntoIterator for MemTable<V, G, B> {
    type Item = (Page, V);
    type IntoIter = IntoIter<V, G, B>;
    /// The entries by value, in ascending order. Each step removes the first
    /// entry (O(levels)); tables are freed as they empty.
    fn into_iter(self) -> IntoIter<V, G, B> {
        IntoIter { table: self }
    }
}
