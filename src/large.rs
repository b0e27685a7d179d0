//! Large pages: split, merge, range set, range remove and compact.

use core::ops::RangeBounds;

use crate::addr::Address;
use crate::backend::Backend;
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS};
use crate::ops::{CloneOps, PageOps, SplitByClone};
use crate::page::Level;
use crate::raw::RawTable;
use crate::raw::ranges::{Refusal, View};
use crate::table::MemTable;

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Maps a refusal from the raw layer to an error at `(addr, level)`.
    pub(crate) fn refusal(r: Refusal, addr: u64, level: Level, nothing: ErrorKind) -> Error {
        match r {
            Refusal::Nothing => Error::new(nothing, addr, level, ()),
            Refusal::Declined => Error::new(ErrorKind::NotMergeable, addr, level, ()),
            Refusal::Larger(p) => Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ()),
            Refusal::NoEntriesBelow(l) => Error::new(ErrorKind::NoEntriesAtLevel, addr, Level::new(l), ()),
            Refusal::NoMemory(l) => Error::new(ErrorKind::OutOfNodes, addr, Level::new(l), ()),
        }
    }

    /// Checks a range for the range operations: non-empty, within reach,
    /// both ends on base-page boundaries. Returns its inclusive bounds.
    pub(crate) fn check_range(range: &impl RangeBounds<u64>) -> Result<(u64, u64), Error> {
        use core::ops::Bound;
        let empty = |addr| Error::new(ErrorKind::EmptyRange, addr, Level::BASE, ());
        let lo = match range.start_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_add(1).ok_or(empty(a))?,
            Bound::Unbounded => 0,
        };
        let last = match range.end_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_sub(1).ok_or(empty(lo))?,
            Bound::Unbounded => u64::MAX >> (64 - G::ADDRESS_BITS),
        };
        if lo > last {
            return Err(empty(lo));
        }
        if !G::in_reach(last) {
            return Err(Error::new(ErrorKind::OutOfReach, last, Level::BASE, ()));
        }
        let mask = (1u64 << G::PAGE_SHIFT) - 1;
        if lo & mask != 0 {
            return Err(Error::new(ErrorKind::Misaligned, lo, Level::BASE, ()));
        }
        if last & mask != mask {
            return Err(Error::new(ErrorKind::Misaligned, last.wrapping_add(1), Level::BASE, ()));
        }
        Ok((lo, last))
    }

    /// Splits the large entry at `(addr, level)` into a full table of
    /// entries one level down, each a clone of it.
    ///
    /// # Errors
    /// The table unchanged: [`NothingToSplit`](ErrorKind::NothingToSplit)
    /// if there is no entry of `level` at `addr`;
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) if an even larger entry
    /// covers it; [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if
    /// `level` or the level below cannot hold entries;
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`OutOfNodes`](ErrorKind::OutOfNodes).
    ///
    /// ```text
    ///  level 1 slot               level 1 slot -> new level 0 table
    /// +-----------+              +-----------+    +---+---+-----+---+
    /// | 2 MiB: v  |   split  =>  |  table  --+--> | v | v | ... | v |  512 x 4 KiB
    /// +-----------+              +-----------+    +---+---+-----+---+
    /// ```
    ///
    /// O(fan-out); creates one table.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, Level::new(1), 5).unwrap();
    /// t.split(0x20_0000, Level::new(1)).unwrap();
    /// assert_eq!(t.len(), 512);
    /// t.insert(0x20_3000, 6).unwrap(); // now allowed: no large entry covers it
    /// ```
    pub fn split(&mut self, addr: impl Address, level: Level) -> Result<(), Error>
    where
        V: Clone,
    {
        let addr = addr.to_u64();
        self.split_with(addr, level, &mut SplitByClone)
    }

    /// Splits the large entry at `(addr, level)`, asking `ops` for every
    /// sub-page's value. As [`split`](Self::split); if `ops` panics, the
    /// table is unchanged.
    pub fn split_with<O: PageOps<V>>(
        &mut self,
        addr: impl Address,
        level: Level,
        ops: &mut O,
    ) -> Result<(), Error> {
        let addr = addr.to_u64();
        let need = self.plan_split(addr, level)?;
        self.reserve_need(&need, addr)?;
        self.raw.split_at(addr, level.index(), ops);
        Ok(())
    }

    /// Splits the large entry covering `addr`, and the entries that split
    /// makes, until the entry covering `addr` is no larger than `level`:
    /// one call to carve a `level` page out of a larger one. Returns the
    /// number of splits (0 if no entry covers `addr` or it is small enough).
    ///
    /// Every table the splits need is reserved first, so on error nothing
    /// has been split.
    ///
    /// # Errors
    /// The table unchanged: [`Misaligned`](ErrorKind::Misaligned) (to
    /// `level`), [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if `level` or a
    /// level in between cannot hold entries, [`OutOfNodes`](ErrorKind::OutOfNodes).
    ///
    /// ```
    /// use mem_table::{Level, MemTable, ops::SplitByClone};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x4000_0000, Level::new(2), 1).unwrap(); // 1 GiB
    /// assert_eq!(t.split_to(0x4020_3000, Level::BASE, &mut SplitByClone).unwrap(), 2);
    /// assert_eq!(t.get_key_value(0x4020_3000).unwrap().0.level(), Level::BASE);
    /// assert_eq!(t.get_key_value(0x4060_0000).unwrap().0.level(), Level::new(1));
    /// assert_eq!(t.len(), 511 + 512);
    /// ```
    pub fn split_to<O: PageOps<V>>(
        &mut self,
        addr: impl Address,
        level: Level,
        ops: &mut O,
    ) -> Result<usize, Error> {
        let addr = addr.to_u64();
        Self::check_place(addr, level)?;
        let Some((page, _)) = self.get_key_value(addr) else { return Ok(0) };
        if page.level() <= level {
            return Ok(0);
        }
        let mut need = [0; MAX_LEVELS];
        for (l, n) in need.iter_mut().enumerate().take(page.level().index()).skip(level.index()) {
            if !G::holds_entries(Level::new(l as u8)) {
                return Err(Error::new(ErrorKind::NoEntriesAtLevel, addr, Level::new(l as u8), ()));
            }
            *n = 1;
        }
        self.reserve_need(&need, addr)?;
        let mut splits = 0;
        let mut at = page.level();
        while at > level {
            let size = G::page_size(at).expect("level in range");
            self.split_with(addr & !(size - 1), at, ops).expect("checked and reserved");
            splits += 1;
            at = at.below().expect("above level");
        }
        Ok(splits)
    }

    /// Reserves the table a [`split_with`](Self::split_with) of the entry at
    /// `(addr, level)` needs, so that the split itself cannot run out of
    /// nodes: the kernel's `xas_split_alloc` before `xas_split`. Call it
    /// before entering a context that must not allocate.
    ///
    /// # Errors
    /// As [`split`](Self::split) would.
    ///
    /// ```
    /// use mem_table::{Level, MemTable, backend::Pool, geometry::X86_4Level};
    /// let mut t: MemTable<u8, X86_4Level, Pool> = MemTable::with_backend(Pool::new(2));
    /// t.insert_at(0x20_0000, Level::new(1), 1).unwrap();
    /// t.reserve_split(0x20_0000, Level::new(1)).unwrap();
    /// t.split(0x20_0000, Level::new(1)).unwrap(); // cannot fail for lack of nodes now
    /// ```
    pub fn reserve_split(&mut self, addr: impl Address, level: Level) -> Result<(), Error> {
        let addr = addr.to_u64();
        let need = self.plan_split(addr, level)?;
        self.add_reservation(&need, addr)
    }

    /// Checks a split of `(addr, level)` and counts the table it needs.
    fn plan_split(&self, addr: u64, level: Level) -> Result<[usize; MAX_LEVELS], Error> {
        Self::check_place(addr, level)?;
        let Some(below) = level.below() else {
            return Err(Error::new(ErrorKind::NothingToSplit, addr, level, ()));
        };
        self.raw
            .probe_split(addr, level.index())
            .map_err(|r| Self::refusal(r, addr, level, ErrorKind::NothingToSplit))?;
        let mut need = [0; MAX_LEVELS];
        need[below.index()] = 1;
        Ok(need)
    }

    /// Merges the full table of entries under `(addr, level)` into one
    /// entry of `level`, when every child is equal (the merged value is a
    /// clone of the first).
    ///
    /// # Errors
    /// The table unchanged: [`NotMergeable`](ErrorKind::NotMergeable) if
    /// there is no table there, a child is missing or differs, or a child is
    /// itself a table; [`ConflictLarger`](ErrorKind::ConflictLarger),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`OutOfNodes`](ErrorKind::OutOfNodes) if the level-1 table that is to
    /// hold a 2 MiB entry is in its compact form for a few children and no
    /// memory can be had for its full form.
    ///
    /// ```text
    ///  level 1 slot -> level 0 table           level 1 slot
    /// +-----------+    +---+---+-----+---+    +-----------+
    /// |  table  --+--> | v | v | ... | v | => | 2 MiB: v  |   (table freed)
    /// +-----------+    +---+---+-----+---+    +-----------+
    /// ```
    ///
    /// O(fan-out). Allocates only to give a level-1 table of a sparse
    /// region (at most 16 children, kept in a compact form) its full form,
    /// once the merge is agreed.
    ///
    /// ```
    /// use mem_table::{ErrorKind, Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_range(0x20_0000..0x40_0000, 1).unwrap(); // one 2 MiB entry
    /// t.split(0x20_0000, Level::new(1)).unwrap();
    /// t.insert(0x20_0000, 2).unwrap();
    /// assert_eq!(t.merge(0x20_0000, Level::new(1)).unwrap_err().kind(), ErrorKind::NotMergeable);
    /// t.insert(0x20_0000, 1).unwrap();
    /// t.merge(0x20_0000, Level::new(1)).unwrap();
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn merge(&mut self, addr: impl Address, level: Level) -> Result<(), Error>
    where
        V: Clone + PartialEq,
    {
        let addr = addr.to_u64();
        self.merge_with(addr, level, &mut CloneOps)
    }

    /// Merges the full table under `(addr, level)` as `ops` decides. As
    /// [`merge`](Self::merge); if `ops` declines or panics, the table is
    /// unchanged.
    pub fn merge_with<O: PageOps<V>>(
        &mut self,
        addr: impl Address,
        level: Level,
        ops: &mut O,
    ) -> Result<(), Error> {
        let addr = addr.to_u64();
        Self::check_place(addr, level)?;
        if level == Level::BASE {
            return Err(Error::new(ErrorKind::NotMergeable, addr, level, ()));
        }
        self.raw
            .merge_at(addr, level.index(), ops)
            .map_err(|r| Self::refusal(r, addr, level, ErrorKind::NotMergeable))
    }

    /// Sets every base page in `range` to `v`, using the largest aligned
    /// pages that fit (on x86: 1 GiB in the middle, 2 MiB and 4 KiB at the
    /// ragged edges). Entries inside the range are replaced; a large entry
    /// that straddles an edge is split (by cloning) so that only its part
    /// inside the range changes.
    ///
    /// # Errors
    /// With `v` handed back and the table unchanged:
    /// [`EmptyRange`](ErrorKind::EmptyRange),
    /// [`Misaligned`](ErrorKind::Misaligned) if an end is not on a base-page
    /// boundary, [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if an edge entry
    /// cannot be split, [`OutOfNodes`](ErrorKind::OutOfNodes).
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<char> = MemTable::new();
    /// // 4 KiB below 2 MiB, then 2 MiB pages up to 1 GiB, then one 1 GiB page.
    /// t.insert_range(0x1f_f000..0x8000_0000, 'x').unwrap();
    /// let levels: Vec<_> = t.keys().map(|p| p.level().index()).collect();
    /// assert_eq!(levels.iter().filter(|&&l| l == 0).count(), 1);
    /// assert_eq!(levels.iter().filter(|&&l| l == 1).count(), 511);
    /// assert_eq!(levels.iter().filter(|&&l| l == 2).count(), 1);
    /// ```
    pub fn insert_range<R: RangeBounds<u64>>(&mut self, range: R, v: V) -> Result<(), Error<V>>
    where
        V: Clone,
    {
        self.insert_range_with(range, v, &mut SplitByClone)
    }

    /// As [`insert_range`](Self::insert_range), splitting edge entries with
    /// `ops`.
    pub fn insert_range_with<R: RangeBounds<u64>, O: PageOps<V>>(
        &mut self,
        range: R,
        v: V,
        ops: &mut O,
    ) -> Result<(), Error<V>>
    where
        V: Clone,
    {
        let plan = Self::check_range(&range).and_then(|(lo, last)| {
            let mut need = [0; MAX_LEVELS];
            let root = View::Real(self.raw.root);
            self.raw
                .plan_range(root, RawTable::<V, G, B>::TOP, 0, lo, last, true, &mut need)
                .map_err(|r| Self::refusal(r, lo, Level::BASE, ErrorKind::NothingToSplit))?;
            self.reserve_need(&need, lo)?;
            Ok((lo, last))
        });
        let (lo, last) = match plan {
            Ok(b) => b,
            Err(e) => return Err(e.with_value(v)),
        };
        let root = self.raw.root;
        let mut make = || v.clone();
        self.raw.apply_range(root, RawTable::<V, G, B>::TOP, 0, lo, last, Some(&mut make), ops);
        Ok(())
    }

    /// Removes every base page in `range`. Entries inside are removed whole;
    /// a large entry that straddles an edge is split (by cloning) and only
    /// its part inside the range is removed. Tables left empty are freed.
    ///
    /// # Errors
    /// The table unchanged: [`EmptyRange`](ErrorKind::EmptyRange),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) if an edge entry
    /// cannot be split, [`OutOfNodes`](ErrorKind::OutOfNodes) (a split
    /// needs tables).
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0, Level::new(1), 1).unwrap();
    /// t.remove_range(0x1000..0x20_0000).unwrap();
    /// assert_eq!(t.len(), 1);
    /// assert_eq!(t.get(0), Some(&1));
    /// assert_eq!(t.get(0x1000), None);
    /// ```
    pub fn remove_range<R: RangeBounds<u64>>(&mut self, range: R) -> Result<(), Error>
    where
        V: Clone,
    {
        self.remove_range_with(range, &mut SplitByClone)
    }

    /// As [`remove_range`](Self::remove_range), splitting edge entries with
    /// `ops`.
    pub fn remove_range_with<R: RangeBounds<u64>, O: PageOps<V>>(
        &mut self,
        range: R,
        ops: &mut O,
    ) -> Result<(), Error> {
        let (lo, last) = Self::check_range(&range)?;
        let mut need = [0; MAX_LEVELS];
        self.raw
            .plan_range(View::Real(self.raw.root), RawTable::<V, G, B>::TOP, 0, lo, last, false, &mut need)
            .map_err(|r| Self::refusal(r, lo, Level::BASE, ErrorKind::NothingToSplit))?;
        self.reserve_need(&need, lo)?;
        let root = self.raw.root;
        self.raw.apply_range(root, RawTable::<V, G, B>::TOP, 0, lo, last, None::<&mut fn() -> V>, ops);
        Ok(())
    }

    /// Merges, bottom up, every full table of equal entries into one larger
    /// entry, wherever the level above holds entries. Returns the number of
    /// merges. Allocates only to give a level-1 table of a sparse region
    /// (kept in a compact form for at most 16 children) its full form when
    /// one of its children is full; if that memory cannot be had, that
    /// table's children are not merged.
    ///
    /// O(tables).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = MemTable::new();
    /// for i in 0..512u64 {
    ///     t.insert(i << 12, 7).unwrap();
    /// }
    /// assert_eq!(t.compact(), 1);
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn compact(&mut self) -> usize
    where
        V: Clone + PartialEq,
    {
        self.compact_with(&mut CloneOps)
    }

    /// As [`compact`](Self::compact), merging as `ops` decides.
    pub fn compact_with<O: PageOps<V>>(&mut self, ops: &mut O) -> usize {
        self.raw.compact(ops)
    }
}
