//! [`MemTable`]: the map, its lookups and base operations.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;

use crate::backend::{Backend, Heap};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS, Shape, X86_4Level};
use crate::page::{Level, Page};
use crate::raw::chain::{Chain, Need, Probe, StoreStats, all_stats};
use crate::raw::walk::Walk;

/// The chain of levels of geometry `G`.
pub(crate) type Top<G> = <G as Geometry>::Top;
/// The root table of a `MemTable<V, G, _>`.
pub(crate) type Root<V, G> = <Top<G> as Chain>::Node<V>;
/// The stores below the root of a `MemTable<V, G, B>`.
pub(crate) type Stores<V, G, B> = <Top<G> as Chain>::Stores<V, B>;

/// A sparse map from page addresses to `V`, shaped like a hardware page
/// table: one table per level, `2^bits` slots per table, an entry at any
/// level that may hold one.
///
/// - `V`: the per-page value.
/// - `G`: the [geometry](crate::geometry), [`X86_4Level`] by default.
/// - `B`: the [backend](crate::backend) that stores the nodes, [`Heap`] by
///   default.
///
/// ```
/// use mem_table::{Level, MemTable};
///
/// let mut t: MemTable<&str> = MemTable::new();
/// t.insert(0x1000, "a 4 KiB page").unwrap();
/// t.insert_at(0x4000_0000, Level::new(2), "a 1 GiB page").unwrap();
///
/// assert_eq!(t.get(0x1fff), Some(&"a 4 KiB page"));
/// assert_eq!(t.get(0x5432_1000), Some(&"a 1 GiB page"));
/// assert_eq!(t.get(0x2000), None);
/// assert_eq!(t.len(), 2); // a large entry counts once
///
/// let pages: Vec<_> = t.keys().map(|p| (p.addr(), p.level().index())).collect();
/// assert_eq!(pages, [(0x1000, 0), (0x4000_0000, 2)]);
/// ```
pub struct MemTable<V, G: Geometry = X86_4Level, B: Backend = Heap> {
    /// The top table; never freed while the table lives.
    pub(crate) root: Box<Root<V, G>>,
    /// Every table below the root, by level.
    pub(crate) stores: Stores<V, G, B>,
    /// Entries held; a large entry counts once.
    pub(crate) len: usize,
    /// The backend configuration the stores were made from.
    pub(crate) backend: B,
}

/// Applies a change in the number of entries when dropped, so that `len`
/// stays right even if the operation that counts it unwinds half-way.
pub(crate) struct LenGuard<'a> {
    len: &'a mut usize,
    pub(crate) delta: isize,
}

impl<'a> LenGuard<'a> {
    pub(crate) fn new(len: &'a mut usize) -> Self {
        LenGuard { len, delta: 0 }
    }
}

impl Drop for LenGuard<'_> {
    fn drop(&mut self) {
        *self.len = self.len.checked_add_signed(self.delta).expect("mem-table: entry count");
    }
}

/// Figures for one level of a table, from [`MemTable::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Tables (nodes) at this level in use.
    pub nodes: usize,
    /// Bytes the level's store holds from the allocator (tables in use,
    /// free and reserved ones, and the store's index).
    pub bytes: usize,
    /// Tables that can be created without allocating.
    pub available: usize,
    /// The most tables the level can hold, for a bounded backend.
    pub capacity: Option<usize>,
}

/// Node and memory figures of a table, per level; from [`MemTable::stats`].
///
/// ```
/// use mem_table::MemTable;
/// let mut t: MemTable<u64> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// let s = t.stats();
/// assert_eq!(s.nodes(), 4); // one table per level on the path
/// assert_eq!(s.level(0).nodes, 1);
/// assert!(s.bytes() > 4096);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    levels: arrayvec::ArrayVec<LevelStats, MAX_LEVELS>,
}

impl Stats {
    /// The figures of level `l` (0 is the bottom).
    ///
    /// # Panics
    /// If `l` is past the top level.
    pub fn level(&self, l: usize) -> LevelStats {
        self.levels[l]
    }

    /// Every level's figures, bottom first.
    pub fn levels(&self) -> &[LevelStats] {
        &self.levels
    }

    /// Tables in use, root included.
    pub fn nodes(&self) -> usize {
        self.levels.iter().map(|l| l.nodes).sum()
    }

    /// Bytes held from the allocator, root included.
    pub fn bytes(&self) -> usize {
        self.levels.iter().map(|l| l.bytes).sum()
    }
}

impl<V, G: Geometry, B: Backend + Default> MemTable<V, G, B> {
    /// An empty table. Allocates the root table (for x86, about 8 KiB with
    /// `u64` values).
    pub fn new() -> Self {
        Self::with_backend(B::default())
    }
}

impl<V, G: Geometry, B: Backend + Default> Default for MemTable<V, G, B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// An empty table whose nodes are stored by `backend`.
    ///
    /// ```
    /// use mem_table::{MemTable, backend::Pool, geometry::X86_4Level};
    /// let t: MemTable<u8, X86_4Level, Pool> = MemTable::with_backend(Pool::new(16));
    /// assert_eq!(t.stats().level(0).capacity, Some(16));
    /// ```
    pub fn with_backend(backend: B) -> Self {
        #[allow(clippy::let_unit_value)] // evaluates the geometry's compile-time check
        let () = G::VALID;
        MemTable { root: Box::default(), stores: Top::<G>::new_stores(&backend), len: 0, backend }
    }

    /// The backend configuration.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Entries in the table; a large entry counts once.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The size in bytes of an entry at `level` of this table's geometry, or
    /// `None` past the top.
    pub fn page_size(level: Level) -> Option<u64> {
        G::page_size(level)
    }

    /// The value of the entry covering `addr` (any byte address), of any
    /// level.
    ///
    /// O(levels), no allocation. An address out of reach has no entry.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, Level::new(1), 1).unwrap();
    /// assert_eq!(t.get(0x3f_ffff), Some(&1));
    /// assert_eq!(t.get(1 << 60), None);
    /// ```
    #[inline]
    pub fn get(&self, addr: u64) -> Option<&V> {
        self.get_key_value(addr).map(|(_, v)| v)
    }

    /// The entry covering `addr`, with its page (base address, level, size):
    /// the lookup that says which entry answered.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x5000, 1).unwrap();
    /// let (page, v) = t.get_key_value(0x5abc).unwrap();
    /// assert_eq!((page.addr(), page.level(), *v), (0x5000, Level::BASE, 1));
    /// ```
    #[inline]
    pub fn get_key_value(&self, addr: u64) -> Option<(Page, &V)> {
        if !G::in_reach(addr) {
            return None;
        }
        Top::<G>::get(&self.root, &self.stores, addr)
    }

    /// The values covering each of `addrs`, looked up together: the batched
    /// form of [`get`](Self::get), for callers that have several addresses
    /// at hand (a vCPU's exit batch, a scatter-gather list).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// assert_eq!(t.get_many(&[0x1000, 0x2000]), [Some(&1), None]);
    /// ```
    #[inline]
    pub fn get_many<const N: usize>(&self, addrs: &[u64; N]) -> [Option<&V>; N] {
        core::array::from_fn(|k| self.get(addrs[k]))
    }

    /// The value of the entry covering `addr`, mutably. Marks the entry
    /// changed (see [`take_changes`](Self::take_changes)).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x5000, 1).unwrap();
    /// *t.get_mut(0x5000).unwrap() += 1;
    /// assert_eq!(t[0x5000], 2);
    /// ```
    #[inline]
    pub fn get_mut(&mut self, addr: u64) -> Option<&mut V> {
        if !G::in_reach(addr) {
            return None;
        }
        Top::<G>::get_mut(&mut self.root, &mut self.stores, addr).map(|(_, v)| v)
    }

    /// Whether an entry of any level covers `addr`.
    #[doc(alias = "contains_key")]
    pub fn contains(&self, addr: u64) -> bool {
        self.get(addr).is_some()
    }

    /// Checks that `addr` may carry an entry at `level`.
    pub(crate) fn check_place(addr: u64, level: Level) -> Result<(), Error> {
        let fail = |kind| Err(Error::new(kind, addr, level, ()));
        if !G::holds_entries(level) {
            return fail(ErrorKind::NoEntriesAtLevel);
        }
        if !G::in_reach(addr) {
            return fail(ErrorKind::OutOfReach);
        }
        let size = G::page_size(level).expect("level checked");
        if addr & (size - 1) != 0 {
            return fail(ErrorKind::Misaligned);
        }
        Ok(())
    }

    /// Makes room for `need`, all or nothing.
    pub(crate) fn reserve_need(&mut self, need: &Need, addr: u64) -> Result<(), Error> {
        Top::<G>::reserve(&mut self.stores, need)
            .map_err(|l| Error::new(ErrorKind::OutOfNodes, addr, Level::new(l), ()))
    }

    /// Probes an insert at `(addr, level)`: its conflicts and its node need.
    pub(crate) fn plan_insert(&self, addr: u64, level: Level) -> Result<(Probe, Need), Error> {
        Self::check_place(addr, level)?;
        let mut need = [0; MAX_LEVELS];
        let probe = Top::<G>::probe(&self.root, &self.stores, addr, level.index() as u8, &mut need);
        match probe {
            Probe::Larger(p) => Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ())),
            Probe::Smaller => Err(Error::new(ErrorKind::ConflictSmaller, addr, level, ())),
            Probe::Vacant | Probe::Occupied => Ok((probe, need)),
        }
    }

    /// Inserts `v` for the base page at `addr`, handing back the value it
    /// replaces.
    ///
    /// # Errors
    /// With the value handed back and the table unchanged:
    /// [`Misaligned`](ErrorKind::Misaligned) if `addr` is not page-aligned,
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) if a large entry covers
    /// `addr` (split it first), [`OutOfNodes`](ErrorKind::OutOfNodes).
    ///
    /// O(levels); creates at most one table per level.
    ///
    /// ```
    /// use mem_table::{ErrorKind, MemTable};
    /// let mut t: MemTable<char> = MemTable::new();
    /// assert_eq!(t.insert(0x1000, 'a').unwrap(), None);
    /// assert_eq!(t.insert(0x1000, 'b').unwrap(), Some('a'));
    /// assert_eq!(t.insert(0x1001, 'c').unwrap_err().kind(), ErrorKind::Misaligned);
    /// ```
    pub fn insert(&mut self, addr: u64, v: V) -> Result<Option<V>, Error<V>> {
        self.insert_at(addr, Level::BASE, v)
    }

    /// Inserts `v` as one entry of `level` at `addr` (a large page above
    /// level 0), handing back the value of an entry of the same level at the
    /// same address that it replaces.
    ///
    /// # Errors
    /// With the value handed back and the table unchanged:
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`Misaligned`](ErrorKind::Misaligned) if `addr` is not aligned to the
    /// level's page size, [`ConflictLarger`](ErrorKind::ConflictLarger) if an
    /// even larger entry covers it, [`ConflictSmaller`](ErrorKind::ConflictSmaller)
    /// if smaller entries lie inside it (remove or merge them first),
    /// [`OutOfNodes`](ErrorKind::OutOfNodes).
    ///
    /// ```
    /// use mem_table::{ErrorKind, Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x20_0000, 1).unwrap();
    /// let err = t.insert_at(0x20_0000, Level::new(1), 2).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConflictSmaller);
    /// t.remove(0x20_0000).unwrap();
    /// t.insert_at(0x20_0000, Level::new(1), 2).unwrap();
    /// assert_eq!(t.get(0x21_0000), Some(&2));
    /// ```
    pub fn insert_at(&mut self, addr: u64, level: Level, v: V) -> Result<Option<V>, Error<V>> {
        if let Err(e) = Self::check_place(addr, level) {
            return Err(e.with_value(v));
        }
        // Fast path: the tables on the way exist and nothing conflicts.
        let v =
            match Top::<G>::insert_existing(&mut self.root, &mut self.stores, addr, level.index() as u8, v) {
                Ok(old) => {
                    self.len += old.is_none() as usize;
                    return Ok(old);
                }
                Err(v) => v,
            };
        let (probe, need) = match self.plan_insert(addr, level) {
            Ok(plan) => plan,
            Err(e) => return Err(e.with_value(v)),
        };
        if let Err(e) = self.reserve_need(&need, addr) {
            return Err(e.with_value(v));
        }
        let old = Top::<G>::insert(&mut self.root, &mut self.stores, addr, level.index() as u8, v);
        debug_assert_eq!(old.is_some(), probe == Probe::Occupied);
        if old.is_none() {
            self.len += 1;
        }
        Ok(old)
    }

    /// Reserves what an insert at `(addr, level)` needs, so that the insert
    /// itself cannot run out of nodes: call before entering a context that
    /// must not allocate. (On a [`Pool`](crate::backend::Pool) it checks that
    /// the nodes are free; the pool never allocates.)
    ///
    /// # Errors
    /// As [`insert_at`](Self::insert_at) would, without a value.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.reserve_insert(0x1000, mem_table::Level::BASE).unwrap();
    /// // ... no allocation from here:
    /// t.insert(0x1000, 1).unwrap();
    /// ```
    pub fn reserve_insert(&mut self, addr: u64, level: Level) -> Result<(), Error> {
        let (_, need) = self.plan_insert(addr, level)?;
        self.reserve_need(&need, addr)
    }

    /// Reserves `additional` tables at `level` (level 0 is the bottom; the
    /// root level needs none).
    ///
    /// # Errors
    /// [`OutOfNodes`](ErrorKind::OutOfNodes), or
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) at or past the top.
    pub fn reserve_tables(&mut self, level: Level, additional: usize) -> Result<(), Error> {
        if level.index() + 1 >= G::LEVELS {
            return Err(Error::new(ErrorKind::NoEntriesAtLevel, 0, level, ()));
        }
        let mut need = [0; MAX_LEVELS];
        need[level.index()] = additional;
        self.reserve_need(&need, 0)
    }

    /// Removes the entry covering `addr`, of whatever level (a whole large
    /// page, if one covers it), and returns its page and value. Tables left
    /// empty are freed.
    ///
    /// To remove part of a large page, use
    /// [`remove_range`](Self::remove_range), which splits it.
    ///
    /// # Errors
    /// [`Misaligned`](ErrorKind::Misaligned) if `addr` is not aligned to a
    /// base page, [`OutOfReach`](ErrorKind::OutOfReach).
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, Level::new(1), 9).unwrap();
    /// let (page, v) = t.remove(0x23_4000).unwrap().unwrap();
    /// assert_eq!((page.addr(), page.level(), v), (0x20_0000, Level::new(1), 9));
    /// assert!(t.is_empty());
    /// assert_eq!(t.remove(0x20_0000).unwrap(), None);
    /// ```
    pub fn remove(&mut self, addr: u64) -> Result<Option<(Page, V)>, Error> {
        Self::check_place(addr, Level::BASE)?;
        let out = Top::<G>::remove(&mut self.root, &mut self.stores, 0, addr);
        if out.is_some() {
            self.len -= 1;
        }
        Ok(out)
    }

    /// Removes every entry. Tables are freed (an [`Arena`](crate::backend::Arena)
    /// frees whole slabs; a [`Pool`](crate::backend::Pool) gets every node
    /// back). Every region that held an entry is reported by the next
    /// [`take_changes`](Self::take_changes).
    ///
    /// If a value's drop panics, the table is already empty (and usable);
    /// the remaining values are still dropped.
    pub fn clear(&mut self) {
        let mut fresh = Root::<V, G>::default();
        Top::<G>::mark_used(&mut fresh, &self.root);
        let old = core::mem::replace(&mut *self.root, fresh);
        self.len = 0;
        // `old` is dropped last, also if clearing the stores unwinds.
        Top::<G>::clear_stores(&mut self.stores);
        drop(old);
    }

    /// Keeps only the entries for which `f(page, value)` is true. Tables left
    /// empty are freed. Every entry is marked changed (`f` may change it).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u32> = (0..8u64).map(|i| (i << 12, i as u32)).collect();
    /// t.retain(|_, v| *v % 2 == 0);
    /// assert_eq!(t.values().copied().collect::<Vec<_>>(), [0, 2, 4, 6]);
    /// ```
    pub fn retain<F: FnMut(Page, &mut V) -> bool>(&mut self, mut f: F) {
        let MemTable { root, stores, len, .. } = self;
        let mut count = LenGuard::new(len);
        Top::<G>::retain(root, stores, 0, &mut f, &mut count.delta);
    }

    /// Node and memory figures, per level.
    pub fn stats(&self) -> Stats {
        let per = all_stats::<Top<G>, V, B>(&self.stores);
        let mut levels: arrayvec::ArrayVec<LevelStats, MAX_LEVELS> = per[..G::LEVELS]
            .iter()
            .map(|s: &StoreStats| LevelStats {
                nodes: s.nodes,
                bytes: s.bytes,
                available: s.available,
                capacity: s.capacity,
            })
            .collect();
        let top = &mut levels[G::LEVELS - 1];
        top.nodes = 1;
        top.bytes = core::mem::size_of::<Root<V, G>>();
        top.capacity = Some(1);
        levels.truncate(G::LEVELS);
        Stats { levels }
    }

    /// Checks every structural invariant: entry and slot counts, no empty
    /// table kept, large entries only at levels that hold them, store counts
    /// matching the tables reachable from the root. For tests and fuzzing.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut nodes = [0; MAX_LEVELS];
        let entries = Top::<G>::check(&self.root, &self.stores, &mut nodes)?;
        if entries != self.len {
            return Err(alloc::format!("len {} but {} entries reachable", self.len, entries));
        }
        let per = all_stats::<Top<G>, V, B>(&self.stores);
        for l in 0..G::LEVELS - 1 {
            if per[l].nodes != nodes[l] {
                return Err(alloc::format!(
                    "level {l}: store holds {} tables, {} reachable",
                    per[l].nodes,
                    nodes[l]
                ));
            }
        }
        if nodes[G::LEVELS - 1] != 1 || Top::<G>::LEVEL as usize != G::LEVELS - 1 {
            return Err("root count".into());
        }
        Ok(())
    }
}

impl<V: Clone, G: Geometry, B: Backend> Clone for MemTable<V, G, B> {
    fn clone(&self) -> Self {
        MemTable {
            root: Box::new(Top::<G>::clone_node(&self.root)),
            stores: Top::<G>::clone_stores(&self.stores),
            len: self.len,
            backend: self.backend.clone(),
        }
    }
}

impl<V: fmt::Debug, G: Geometry, B: Backend> fmt::Debug for MemTable<V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V: PartialEq, G: Geometry, B: Backend> PartialEq for MemTable<V, G, B> {
    /// Tables are equal when they hold the same entries (same pages, same
    /// values); backends, node layout and change marks do not count.
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<V: Eq, G: Geometry, B: Backend> Eq for MemTable<V, G, B> {}

impl<V, G: Geometry, B: Backend> core::ops::Index<u64> for MemTable<V, G, B> {
    type Output = V;

    /// The value covering `addr`.
    ///
    /// # Panics
    /// If no entry covers `addr`.
    fn index(&self, addr: u64) -> &V {
        self.get(addr).expect("mem-table: no entry covers the address")
    }
}

/// Inserts base pages.
///
/// # Panics
/// If an insert fails (see [`MemTable::insert`]).
impl<V, G: Geometry, B: Backend> Extend<(u64, V)> for MemTable<V, G, B> {
    fn extend<I: IntoIterator<Item = (u64, V)>>(&mut self, iter: I) {
        for (addr, v) in iter {
            if let Err(e) = self.insert(addr, v) {
                panic!("mem-table: extend: {e}");
            }
        }
    }
}

/// Inserts entries at the pages' levels.
///
/// # Panics
/// If an insert fails (see [`MemTable::insert_at`]).
impl<V, G: Geometry, B: Backend> Extend<(Page, V)> for MemTable<V, G, B> {
    fn extend<I: IntoIterator<Item = (Page, V)>>(&mut self, iter: I) {
        for (page, v) in iter {
            if let Err(e) = self.insert_at(page.addr(), page.level(), v) {
                panic!("mem-table: extend: {e}");
            }
        }
    }
}

/// Builds a table of base pages.
///
/// # Panics
/// If an insert fails (see [`MemTable::insert`]).
impl<V, G: Geometry, B: Backend + Default> FromIterator<(u64, V)> for MemTable<V, G, B> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(iter: I) -> Self {
        let mut t = Self::new();
        t.extend(iter);
        t
    }
}

/// Builds a table of entries at the pages' levels.
///
/// # Panics
/// If an insert fails (see [`MemTable::insert_at`]).
impl<V, G: Geometry, B: Backend + Default> FromIterator<(Page, V)> for MemTable<V, G, B> {
    fn from_iter<I: IntoIterator<Item = (Page, V)>>(iter: I) -> Self {
        let mut t = Self::new();
        t.extend(iter);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Arena, Pool};

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn tables_are_send_and_sync_when_values_are() {
        send_sync::<MemTable<u64>>();
        send_sync::<MemTable<alloc::string::String, crate::X86_5Level, Arena>>();
        send_sync::<MemTable<u8, X86_4Level, Pool>>();
    }
}
