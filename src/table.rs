//! [`MemTable`]: the map, its lookups and base operations.

use alloc::string::String;
use core::mem::{ManuallyDrop, MaybeUninit};

use crate::addr::Address;
use crate::backend::{Backend, Heap};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS, X86_4Level};
use crate::page::{Level, Page};
use crate::raw::{Need, Path, Probe, RawTable};

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
    /// The root, the stores and the entry count. A few words: every table,
    /// the root included, lives in its level's store, so moving a
    /// `MemTable` moves no table.
    pub(crate) raw: RawTable<V, G, B>,
}

/// Attaches the value at `v`, which was not moved, to the error.
#[inline(never)]
pub(crate) fn hand_back<V>(e: Error, v: &ManuallyDrop<V>) -> Error<V> {
    // SAFETY: the value was not moved out (the insert failed), and the
    // caller forgets its copy.
    e.with_value(unsafe { core::ptr::read(&**v) })
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
        MemTable { raw: RawTable::new(backend) }
    }

    /// The backend configuration.
    pub fn backend(&self) -> &B {
        &self.raw.backend
    }

    /// Entries in the table; a large entry counts once.
    pub fn len(&self) -> usize {
        self.raw.len
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.raw.len == 0
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
    pub fn get(&self, addr: impl Address) -> Option<&V> {
        let addr = addr.to_u64();
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
    pub fn get_key_value(&self, addr: impl Address) -> Option<(Page, &V)> {
        let addr = addr.to_u64();
        if !G::in_reach(addr) {
            return None;
        }
        // SAFETY: the pointer is to an initialized value of this table,
        // borrowed for as long as `self` is.
        self.raw.find(addr).map(|(p, v)| (p, unsafe { &*v }))
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
        // SAFETY: each non-null pointer is to an initialized value of this
        // table, borrowed for as long as `self` is.
        self.raw.find_many(addrs).map(|v| unsafe { v.as_ref() })
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
    pub fn get_mut(&mut self, addr: impl Address) -> Option<&mut V> {
        let addr = addr.to_u64();
        if !G::in_reach(addr) {
            return None;
        }
        // SAFETY: the pointer is to an initialized value of this table,
        // borrowed mutably for as long as `self` is.
        self.raw.find_mut(addr).map(|(_, v)| unsafe { &mut *v })
    }

    /// Whether an entry of any level covers `addr`.
    #[doc(alias = "contains_key")]
    pub fn contains(&self, addr: impl Address) -> bool {
        let addr = addr.to_u64();
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
        self.raw.prepare(need).map_err(|l| Error::new(ErrorKind::OutOfNodes, addr, Level::new(l), ()))
    }

    /// Reserves `need` on top of earlier reservations.
    pub(crate) fn add_reservation(&mut self, need: &Need, addr: u64) -> Result<(), Error> {
        self.raw.reserve(need).map_err(|l| Error::new(ErrorKind::OutOfNodes, addr, Level::new(l), ()))
    }

    /// Probes an insert at `(addr, level)`: its conflicts and its node need.
    pub(crate) fn plan_insert(&self, addr: u64, level: Level) -> Result<(Probe, Need), Error> {
        self.plan_insert_path(addr, level, &mut Path::new())
    }

    /// As [`plan_insert`](Self::plan_insert), keeping the path walked.
    pub(crate) fn plan_insert_path(
        &self,
        addr: u64,
        level: Level,
        path: &mut Path,
    ) -> Result<(Probe, Need), Error> {
        Self::check_place(addr, level)?;
        let mut need = [0; MAX_LEVELS];
        let probe = self.raw.probe(addr, level.index(), &mut need, path);
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
    pub fn insert(&mut self, addr: impl Address, v: V) -> Result<Option<V>, Error<V>> {
        let addr = addr.to_u64();
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
    pub fn insert_at(&mut self, addr: impl Address, level: Level, v: V) -> Result<Option<V>, Error<V>> {
        let addr = addr.to_u64();
        // The value stays here until it is copied into its slot, so that a
        // large value is not moved through every frame on the way.
        let mut v = ManuallyDrop::new(v);
        let mut old = MaybeUninit::<V>::uninit();
        // If the insert unwinds (a clone kept for change reports panics,
        // before anything moved), the value is dropped here.
        let guard = DropOnUnwind(&mut v);
        let src: *const V = &**guard.0;
        let r = self.insert_from(addr, level, src, old.as_mut_ptr());
        core::mem::forget(guard);
        match r {
            // SAFETY: `true`: the replaced value was moved to `old`.
            Ok(true) => Ok(Some(unsafe { old.assume_init() })),
            Ok(false) => Ok(None),
            Err(e) => Err(hand_back(e, &v)),
        }
    }

    /// Inserts the value at `src` as [`insert_at`](Self::insert_at) does.
    /// On `Ok` the value was moved out of `src` (the caller must forget it)
    /// and the result says whether a replaced value was moved to `old`; on
    /// `Err` neither was touched.
    pub(crate) fn insert_from(
        &mut self,
        addr: u64,
        level: Level,
        src: *const V,
        old: *mut V,
    ) -> Result<bool, Error> {
        Self::check_place(addr, level)?;
        // Fast path: the tables on the way exist and nothing conflicts.
        // SAFETY: `src` is the caller's initialized value, `old` writable.
        if let Some(had) = unsafe { self.raw.insert_existing(addr, level.index(), src, old) } {
            return Ok(had);
        }
        let (probe, need) = self.plan_insert(addr, level)?;
        self.reserve_need(&need, addr)?;
        // SAFETY: as above.
        let had = unsafe { self.raw.insert_planned(addr, level.index(), src, old) };
        debug_assert_eq!(had, probe == Probe::Occupied);
        Ok(had)
    }

    /// Reserves the tables an insert at `(addr, level)` needs, so that the
    /// insert itself cannot run out of them: call before entering a context
    /// that must not allocate. (On a [`Pool`](crate::backend::Pool) it
    /// checks that the tables are free; the pool never allocates.)
    ///
    /// Reservations add up: reserving for two inserts reserves for both, and
    /// fails with [`OutOfNodes`](ErrorKind::OutOfNodes) if the sum does not
    /// fit. A reservation is a count of tables per level, drawn by whichever
    /// operations create tables next (as `Vec::reserve` is drawn by whichever
    /// pushes come next); the tables are kept, not given back by
    /// [`shrink_to_fit`](Self::shrink_to_fit), until drawn or until
    /// [`unreserve`](Self::unreserve). An insert whose path already exists
    /// draws nothing.
    ///
    /// # Errors
    /// As [`insert_at`](Self::insert_at) would, without a value.
    ///
    /// ```
    /// use mem_table::{Level, MemTable, backend::Pool, geometry::X86_4Level};
    /// // Room for one path below the root.
    /// let mut t: MemTable<u8, X86_4Level, Pool> = MemTable::with_backend(Pool::new(1));
    /// t.reserve_insert(0x1000, Level::BASE).unwrap();
    /// // A second path does not fit beside the first reservation:
    /// assert!(t.reserve_insert(1 << 40, Level::BASE).is_err());
    /// // ... no allocation from here, and this cannot run out:
    /// t.insert(0x1000, 1).unwrap();
    /// ```
    #[doc(alias = "try_reserve")]
    pub fn reserve_insert(&mut self, addr: impl Address, level: Level) -> Result<(), Error> {
        let addr = addr.to_u64();
        let (_, need) = self.plan_insert(addr, level)?;
        self.add_reservation(&need, addr)
    }

    /// Drops every reservation (the tables stay available until
    /// [`shrink_to_fit`](Self::shrink_to_fit)).
    pub fn unreserve(&mut self) {
        self.raw.unreserve();
    }

    /// Gives back to the allocator the memory no table uses (an
    /// [`Arena`](crate::backend::Arena)'s empty chunks, tables kept ahead
    /// for a reservation that was dropped), keeping reserved tables.
    /// A [`Pool`](crate::backend::Pool) keeps its block.
    ///
    /// First, on `Heap` and `Arena`, it moves each bottom table that lost
    /// most of its entries to the sparse form a remove would have chosen
    /// had the removed slots' marks not been standing (a committed report
    /// clears marks but moves no table). Each move allocates the smaller
    /// table first; if that fails, the table keeps its form. Costs
    /// O(upper-table slots) plus a copy of each table moved.
    ///
    /// ```
    /// use mem_table::{MemTable, backend::Arena, geometry::X86_4Level};
    /// let mut t: MemTable<u64, X86_4Level, Arena> = MemTable::new();
    /// for i in 0..100_000u64 {
    ///     t.insert(i << 12, i).unwrap();
    /// }
    /// let full = t.stats().bytes();
    /// t.clear();
    /// t.shrink_to_fit();
    /// assert!(t.stats().bytes() < full / 100);
    /// ```
    pub fn shrink_to_fit(&mut self) {
        self.raw.shrink_to_fit();
    }

    /// Reserves `additional` tables at `level` (level 0 is the bottom; the
    /// root level needs none).
    ///
    /// # Errors
    /// [`OutOfNodes`](ErrorKind::OutOfNodes), or
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) at or past the top.
    #[doc(alias = "try_reserve")]
    pub fn reserve_tables(&mut self, level: Level, additional: usize) -> Result<(), Error> {
        if level.index() + 1 >= G::LEVELS {
            return Err(Error::new(ErrorKind::NoEntriesAtLevel, 0, level, ()));
        }
        let mut need = [0; MAX_LEVELS];
        need[level.index()] = additional;
        self.add_reservation(&need, 0)
    }

    /// Removes the base-page entry at `addr` and returns its value, like
    /// `BTreeMap::remove`. A large entry covering `addr` is not touched:
    /// removing it is [`remove_at`](Self::remove_at) (by its level) or
    /// [`remove_covering`](Self::remove_covering); removing part of it is
    /// [`remove_range`](Self::remove_range), which splits it. Tables left
    /// empty are freed. O(levels). A bottom table left at most a quarter
    /// as full as its form holds moves to a smaller packed form (see the
    /// [crate docs](crate#how-a-slot-is-represented)), which allocates; if
    /// the allocator refuses, the table keeps its form and the remove still
    /// succeeds. A [`Pool`](crate::backend::Pool) never allocates here.
    ///
    /// # Errors
    /// The table unchanged: [`Misaligned`](ErrorKind::Misaligned) if `addr`
    /// is not aligned to a base page, [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) (naming the large page)
    /// if a large entry covers `addr`.
    ///
    /// ```
    /// use mem_table::{ErrorKind, MemTable, X86_4Level};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// assert_eq!(t.remove(0x1000).unwrap(), Some(1));
    /// assert_eq!(t.remove(0x1000).unwrap(), None);
    ///
    /// t.insert_at(0x20_0000, X86_4Level::L2M, 9).unwrap();
    /// let err = t.remove(0x23_4000).unwrap_err();
    /// assert_eq!((err.kind(), err.addr()), (ErrorKind::ConflictLarger, 0x20_0000));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn remove(&mut self, addr: impl Address) -> Result<Option<V>, Error> {
        let addr = addr.to_u64();
        self.remove_at(addr, Level::BASE)
    }

    /// Removes the entry of `level` at `addr` (a large page above level 0)
    /// and returns its value. O(levels).
    ///
    /// # Errors
    /// The table unchanged: [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`Misaligned`](ErrorKind::Misaligned) if `addr` is not aligned to the
    /// level's page size, [`ConflictLarger`](ErrorKind::ConflictLarger) if an
    /// even larger entry covers it, [`ConflictSmaller`](ErrorKind::ConflictSmaller)
    /// if smaller entries lie inside it (remove them with
    /// [`remove_range`](Self::remove_range)).
    ///
    /// ```
    /// use mem_table::{ErrorKind, MemTable, X86_4Level};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, X86_4Level::L2M, 9).unwrap();
    /// assert_eq!(t.remove_at(0x20_0000, X86_4Level::L2M).unwrap(), Some(9));
    /// t.insert(0x40_1000, 1).unwrap();
    /// let err = t.remove_at(0x40_0000, X86_4Level::L2M).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ConflictSmaller);
    /// ```
    pub fn remove_at(&mut self, addr: impl Address, level: Level) -> Result<Option<V>, Error> {
        let addr = addr.to_u64();
        Self::check_place(addr, level)?;
        match self.raw.find(addr) {
            Some((p, _)) if p.level() == level => Ok(self.raw.remove_covering(addr).map(|(_, v)| v)),
            Some((p, _)) if p.level() > level => {
                Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ()))
            }
            Some(_) => Err(Error::new(ErrorKind::ConflictSmaller, addr, level, ())),
            None if level == Level::BASE => Ok(None),
            None => match self.plan_insert(addr, level) {
                Err(e) if e.kind() == ErrorKind::ConflictSmaller => Err(e),
                _ => Ok(None),
            },
        }
    }

    /// Removes the entry covering `addr`, whatever its level (a whole large
    /// page, if one covers it), and returns its page and value: the removal
    /// counterpart of [`get_key_value`](Self::get_key_value), taking any
    /// byte address. `None` if nothing covers `addr` (or it is out of
    /// reach). Tables left empty are freed. O(levels).
    ///
    /// ```
    /// use mem_table::{MemTable, X86_4Level};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, X86_4Level::L2M, 9).unwrap();
    /// let (page, v) = t.remove_covering(0x23_4567).unwrap();
    /// assert_eq!((page.addr(), page.level(), v), (0x20_0000, X86_4Level::L2M, 9));
    /// assert!(t.is_empty());
    /// assert_eq!(t.remove_covering(0x20_0000), None);
    /// ```
    pub fn remove_covering(&mut self, addr: impl Address) -> Option<(Page, V)> {
        let addr = addr.to_u64();
        if !G::in_reach(addr) {
            return None;
        }
        self.raw.remove_covering(addr)
    }

    /// Removes every entry. Tables are freed (an [`Arena`](crate::backend::Arena)
    /// keeps one empty chunk per level for reuse; a
    /// [`Pool`](crate::backend::Pool) gets every table back). Every root
    /// region that held an entry is reported by the next
    /// [`take_changes`](Self::take_changes).
    ///
    /// If a value's drop panics, the table is already empty (and usable);
    /// the remaining values are still dropped.
    pub fn clear(&mut self) {
        self.raw.clear();
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
        self.raw.retain(&mut f);
    }

    /// Checks every structural invariant: entry and slot counts, no empty
    /// table kept, large entries only at levels that hold them, store counts
    /// matching the tables reachable from the root, reservations covered.
    /// For tests and fuzzing.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.raw.check()
    }
}

impl<V: Clone, G: Geometry, B: Backend> Clone for MemTable<V, G, B> {
    /// A copy with the values cloned and the change marks kept, on a new
    /// backend of the same configuration (a [`Pool`](crate::backend::Pool)
    /// of the same capacities). Allocates only the tables in use.
    fn clone(&self) -> Self {
        MemTable { raw: self.raw.clone_table() }
    }
}

impl<V: PartialEq, G: Geometry, B: Backend> PartialEq for MemTable<V, G, B> {
    /// Tables are equal when they hold the same entries (same pages, same
    /// values); backends, node layout and change marks do not count.
    fn eq(&self, other: &Self) -> bool {
        self.raw.len == other.raw.len && self.iter().eq(other.iter())
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

/// Drops a value not yet moved into the table if the insert unwinds.
struct DropOnUnwind<'a, V>(&'a mut ManuallyDrop<V>);

impl<V> Drop for DropOnUnwind<'_, V> {
    fn drop(&mut self) {
        // SAFETY: forgotten once the insert returns, so this runs only on
        // unwind, when the value has not been moved out.
        unsafe { ManuallyDrop::drop(self.0) }
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
        send_sync::<crate::Iter<'static, u64>>();
        send_sync::<crate::IterMut<'static, u64>>();
        send_sync::<crate::IntoIter<u64>>();
        send_sync::<crate::Changes<'static, u64>>();
        send_sync::<crate::Values<'static, u64>>();
    }
}
