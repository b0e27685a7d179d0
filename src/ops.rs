//! Consumer-defined split and merge: how one large entry's value becomes the
//! values of its sub-pages, and back.
//!
//! The table never invents values. When a large entry must become smaller
//! ones ([`MemTable::split`](crate::MemTable::split), or a range operation
//! that cuts through it), it asks a [`PageOps`] for each sub-page's value;
//! when a full table of entries may become one large entry
//! ([`MemTable::merge`](crate::MemTable::merge),
//! [`MemTable::compact`](crate::MemTable::compact)), it asks whether and
//! into what. [`CloneOps`] is the default: split clones, merge happens when
//! every child is equal. [`FnOps`] wraps two closures.

use crate::page::Page;

/// How values are split and merged.
///
/// ```
/// use mem_table::{Level, MemTable, Page, ops::{Children, PageOps}};
///
/// /// A count of accesses, shared out evenly on split and summed on merge.
/// struct Counts;
/// impl PageOps<u64> for Counts {
///     fn split(&mut self, page: Page, value: &u64, sub: Page) -> u64 {
///         value / (page.size() / sub.size())
///     }
///     fn merge(&mut self, _page: Page, children: Children<'_, '_, u64>) -> Option<u64> {
///         Some(children.sum())
///     }
/// }
///
/// let mut t: MemTable<u64> = MemTable::new();
/// t.insert_at(0x20_0000, Level::new(1), 1024).unwrap();
/// t.split_with(0x20_0000, Level::new(1), &mut Counts).unwrap();
/// assert_eq!(t.get(0x20_1000), Some(&2));
/// t.merge_with(0x20_0000, Level::new(1), &mut Counts).unwrap();
/// assert_eq!(t.get(0x20_1000), Some(&1024));
/// ```
pub trait PageOps<V> {
    /// The value of sub-page `sub` of the large entry `page` whose value is
    /// `value`. Called once per sub-page, in address order. If it panics,
    /// the split does not happen and the values made so far are dropped.
    fn split(&mut self, page: Page, value: &V, sub: Page) -> V;

    /// The value of the large entry `page` made of `children` (every
    /// sub-page's value, in address order), or `None` to refuse the merge.
    /// If it panics, the merge does not happen.
    fn merge(&mut self, page: Page, children: Children<'_, '_, V>) -> Option<V>;

    /// Whether these ops keep every page's value: [`split`](Self::split)
    /// gives each sub-page a value equal to the large page's, and
    /// [`merge`](Self::merge) merges only children equal to the value it
    /// returns. Then a split or merge changes no page's value, and the
    /// change report ([`MemTable::take_changes`](crate::MemTable::take_changes))
    /// leaves it out. When `false` (the default), every page whose value
    /// the ops made is reported, except, where values are compared
    /// ([`MemTable::track_values`](crate::MemTable::track_values)), those
    /// equal to what was there.
    const KEEPS_VALUES: bool = false;
}

/// The values of a full table about to be merged, in address order: what
/// [`PageOps::merge`] is given. An ordinary iterator (`all`, `sum`, ...
/// work) that knows its length.
pub struct Children<'a, 'b, V> {
    inner: &'b mut dyn Iterator<Item = &'a V>,
    left: usize,
}

impl<'a, 'b, V> Children<'a, 'b, V> {
    pub(crate) fn new(inner: &'b mut dyn Iterator<Item = &'a V>, len: usize) -> Self {
        Children { inner, left: len }
    }
}

impl<'a, V> Iterator for Children<'a, '_, V> {
    type Item = &'a V;

    fn next(&mut self) -> Option<&'a V> {
        let v = self.inner.next()?;
        self.left -= 1;
        Some(v)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<V> ExactSizeIterator for Children<'_, '_, V> {}

/// Split by cloning; merge when every child is equal (to a clone of the first).
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneOps;

impl<V: Clone + PartialEq> PageOps<V> for CloneOps {
    const KEEPS_VALUES: bool = true;

    fn split(&mut self, _: Page, value: &V, _: Page) -> V {
        value.clone()
    }

    fn merge(&mut self, _: Page, mut children: Children<'_, '_, V>) -> Option<V> {
        let first = children.next()?;
        children.all(|c| c == first).then(|| first.clone())
    }
}

/// Split by cloning and never merge: the ops of a `V` that is `Clone` but not
/// `PartialEq`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SplitByClone;

impl<V: Clone> PageOps<V> for SplitByClone {
    const KEEPS_VALUES: bool = true;

    fn split(&mut self, _: Page, value: &V, _: Page) -> V {
        value.clone()
    }

    fn merge(&mut self, _: Page, _: Children<'_, '_, V>) -> Option<V> {
        None
    }
}

/// Split and merge by two closures.
///
/// ```
/// use mem_table::{Level, MemTable, ops::{Children, FnOps}};
/// let mut t: MemTable<u32> = MemTable::new();
/// t.insert_at(0, Level::new(1), 7).unwrap();
/// let mut ops = FnOps::new(
///     |_page, v: &u32, sub| v + (sub.addr() >> 12) as u32,
///     |_page, children: Children<'_, '_, u32>| children.min().copied(),
/// );
/// t.split_with(0, Level::new(1), &mut ops).unwrap();
/// assert_eq!(t.get(0x3000), Some(&10));
/// t.merge_with(0, Level::new(1), &mut ops).unwrap();
/// assert_eq!(t.get(0x3000), Some(&7));
/// ```
pub struct FnOps<S, M> {
    split: S,
    merge: M,
}

impl<S, M> FnOps<S, M> {
    /// Ops that call `split(page, value, sub)` and `merge(page, children)`.
    pub fn new<V>(split: S, merge: M) -> Self
    where
        S: FnMut(Page, &V, Page) -> V,
        M: FnMut(Page, Children<'_, '_, V>) -> Option<V>,
    {
        FnOps { split, merge }
    }
}

impl<V, S, M> PageOps<V> for FnOps<S, M>
where
    S: FnMut(Page, &V, Page) -> V,
    M: FnMut(Page, Children<'_, '_, V>) -> Option<V>,
{
    fn split(&mut self, page: Page, value: &V, sub: Page) -> V {
        (self.split)(page, value, sub)
    }

    fn merge(&mut self, page: Page, children: Children<'_, '_, V>) -> Option<V> {
        (self.merge)(page, children)
    }
}
