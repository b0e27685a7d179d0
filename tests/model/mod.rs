//! A reference model of [`MemTable`] and an interpreter that runs a list of
//! operations against both, checking the table after every one.
//!
//! Shared by `tests/model_quickcheck.rs`, `tests/regressions.rs` and the fuzz
//! targets under `fuzz/` (which include this file by path).
//!
//! - [`Model`] keeps the entries in a `BTreeMap` from first address to
//!   `(level, value)`, a large page as one entry, and works out the outcome
//!   of every operation on its own, from the documented semantics: each
//!   error with its kind, address and level; large-page conflicts; split,
//!   merge, range set and range remove (which split straddling entries);
//!   compact; and the tables the table must hold, so that a bounded
//!   [`Pool`](mem_table::backend::Pool) running out of nodes is predicted
//!   exactly.
//! - [`Op`] is one operation (derived `Arbitrary`) with symbolic arguments
//!   ([`Addr`], [`Lvl`], [`RangeArg`], ..., weighted by hand) biased toward
//!   the places where things go wrong: address 0, the last page, level
//!   boundaries and one page either side, misaligned addresses, addresses
//!   past the reach, existing entries and the tables above them.
//!   [`Op::resolve`] turns it into an [`Act`] with concrete arguments for the
//!   geometry (and, for addresses that name an entry, the model's state).
//!   Ops that would grow the table past [`BUDGET`] entries are skipped.
//! - [`run`] performs each op on the table and on the model and compares
//!   results and errors, then the whole table (`len`, `iter`, a lookup and a
//!   range near the op's address, node counts, `check_invariants`). On an
//!   error it checks the table is exactly as before, change marks included.
//!   Change reports are applied to a "shadow" map that must equal the table
//!   after every `take_changes`.
#![allow(dead_code)] // every includer uses a different part

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Bound;

use arbitrary::{Arbitrary, Unstructured};
use mem_table::backend::Backend;
use mem_table::geometry::{Custom, Geometry, Large};
use mem_table::ops::{Children, FnOps};
use mem_table::typenum::{U2, U3, U4, U12, U40};
use mem_table::{Entry, Error, ErrorKind, Level, MemTable, Page, Stats};

/// Three 3-bit levels over 4 KiB pages, large entries at level 1: 21 address
/// bits, 512 base pages in all.
pub type Tiny = Custom<U12, (U3, Large<U3>, U3)>;

/// A level that holds no entries between two that do, and a root that holds
/// entries: splitting a level-2 entry is refused.
pub type Gappy = Custom<U12, (U2, U2, Large<U2>, Large<U2>)>;

/// Every address of the `u64` is in reach (1 TiB base pages, six 4-bit
/// levels); large entries at levels 1 and 3.
pub type Wide = Custom<U40, (U4, Large<U4>, U4, Large<U4>, U4, U4)>;

/// The most entries a run lets the model hold: operations that would make
/// more (large splits and range sets on x86) are skipped.
pub const BUDGET: usize = if cfg!(miri) { 256 } else { 4096 };

// ---------------------------------------------------------------------------
// Geometry, as the model sees it.

/// The shape of a geometry as plain numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geo {
    /// log2 of the entry size at each level, bottom first.
    pub shifts: Vec<u32>,
    /// Whether each level may hold entries.
    pub holds: Vec<bool>,
    /// Address bits: addresses at or above `2^bits` are out of reach.
    pub bits: u32,
}

impl Geo {
    /// The shape of `G`.
    pub fn of<G: Geometry>() -> Geo {
        let levels = 0..G::LEVELS as u8;
        Geo {
            shifts: levels.clone().map(|l| G::page_shift(Level::new(l)).expect("level in range")).collect(),
            holds: levels.map(|l| G::holds_entries(Level::new(l))).collect(),
            bits: G::ADDRESS_BITS,
        }
    }

    pub fn levels(&self) -> usize {
        self.shifts.len()
    }

    /// The root level.
    pub fn top(&self) -> u8 {
        self.levels() as u8 - 1
    }

    pub fn shift(&self, level: u8) -> u32 {
        self.shifts[level as usize]
    }

    /// Bytes in an entry of `level`.
    pub fn size(&self, level: u8) -> u64 {
        1 << self.shift(level)
    }

    /// Bytes in a base page.
    pub fn page(&self) -> u64 {
        self.size(0)
    }

    /// Whether `level` (any number) may hold entries.
    pub fn holds(&self, level: u8) -> bool {
        self.holds.get(level as usize).copied().unwrap_or(false)
    }

    pub fn in_reach(&self, addr: u64) -> bool {
        self.bits >= 64 || addr >> self.bits == 0
    }

    /// The last address in reach.
    pub fn last_addr(&self) -> u64 {
        if self.bits >= 64 { u64::MAX } else { (1 << self.bits) - 1 }
    }

    /// The last address of the entry of `level` at `start`.
    pub fn end(&self, start: u64, level: u8) -> u64 {
        start + (self.size(level) - 1)
    }

    /// The first address of the page of `level` that holds `addr`.
    pub fn align_down(&self, addr: u64, level: u8) -> u64 {
        addr & !(self.size(level) - 1)
    }

    /// Entries of `level` in one entry of the level above (or in the whole
    /// space, at the top).
    pub fn fanout(&self, level: u8) -> u64 {
        let up = if level == self.top() { self.bits } else { self.shift(level + 1) };
        1 << (up - self.shift(level))
    }

    /// Pages of `level` in reach.
    pub fn pages(&self, level: u8) -> u64 {
        1 << (self.bits - self.shift(level))
    }

    /// `lo..=last` cut into the largest aligned pages at levels that hold
    /// entries, or `None` if that is more than `limit` pages.
    pub fn pieces(&self, lo: u64, last: u64, limit: usize) -> Option<Vec<(u64, u8)>> {
        let mut out = Vec::new();
        let mut at = lo;
        loop {
            let level = (0..=self.top())
                .rev()
                .find(|&l| self.holds(l) && at % self.size(l) == 0 && self.end(at, l) <= last)
                .expect("a base page always fits");
            if out.len() == limit {
                return None;
            }
            out.push((at, level));
            let end = self.end(at, level);
            if end == last {
                return Some(out);
            }
            at = end + 1;
        }
    }
}

// ---------------------------------------------------------------------------
// The model.

/// Entries by first address: `(level, value)`.
pub type Entries = BTreeMap<u64, (u8, u32)>;

/// An entry: first address, level, value.
pub type Item = (u64, u8, u32);

/// An expected refusal: what the table's `Error` must say.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub kind: ErrorKind,
    pub addr: u64,
    pub level: u8,
}

impl Refused {
    pub fn new(kind: ErrorKind, addr: u64, level: u8) -> Refused {
        Refused { kind, addr, level }
    }

    /// What `e` says.
    pub fn of<T>(e: &Error<T>) -> Refused {
        Refused::new(e.kind(), e.addr(), e.level().index() as u8)
    }
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {:#x} L{}", self.kind, self.addr, self.level)
    }
}

/// How a large entry's value becomes its sub-pages' values.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitHow {
    /// Each sub-page gets a clone (`split`, `SplitByClone`).
    Clone,
    /// Sub-page `i` gets `value + i` (through `FnOps`).
    Numbered,
}

impl SplitHow {
    fn value(self, v: u32, i: u64) -> u32 {
        match self {
            SplitHow::Clone => v,
            SplitHow::Numbered => v.wrapping_add(i as u32),
        }
    }
}

/// How a full table of entries becomes one entry.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeHow {
    /// When every child is equal (`merge`, `CloneOps`).
    Equal,
    /// Always, into `fold(0, |a, v| a * 31 + v)` of the children in address
    /// order (through `FnOps`): checks the order and that every child is seen.
    Fold,
}

impl MergeHow {
    fn value(self, children: &[u32]) -> Option<u32> {
        match self {
            MergeHow::Equal => children.iter().all(|&v| v == children[0]).then_some(children[0]),
            MergeHow::Fold => Some(fold(children.iter())),
        }
    }
}

fn fold<'a>(children: impl Iterator<Item = &'a u32>) -> u32 {
    children.fold(0u32, |a, &v| a.wrapping_mul(31).wrapping_add(v))
}

/// Which entries a `retain` keeps.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    All,
    Nothing,
    EvenValues,
    BasePagesOnly,
    LargePagesOnly,
    LowerHalf,
}

impl Keep {
    pub fn keeps(self, geo: &Geo, addr: u64, level: u8, value: u32) -> bool {
        match self {
            Keep::All => true,
            Keep::Nothing => false,
            Keep::EvenValues => value % 2 == 0,
            Keep::BasePagesOnly => level == 0,
            Keep::LargePagesOnly => level > 0,
            Keep::LowerHalf => addr <= geo.last_addr() / 2,
        }
    }
}

/// What an `Entry` op does with the entry it gets.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryAction {
    /// Occupied: add one through `get_mut`. Vacant: `try_insert`.
    Bump,
    /// Occupied: `insert` (replace). Vacant: `try_insert`.
    Replace,
    /// Occupied: `remove`. Vacant: leave it.
    Remove,
}

/// What an `Entry` op saw and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryOutcome {
    Bumped(u32),
    Replaced(u32),
    Removed(u32),
    Inserted(u32),
    LeftVacant,
}

/// The reference model: the entries, the backend's bound, and what change
/// reports said so far.
#[derive(Clone, Debug)]
pub struct Model {
    pub geo: Geo,
    /// The entries the table must hold.
    pub entries: Entries,
    /// Tables the backend can hold at each level below the root (`None`
    /// where it is unbounded).
    pub capacity: Vec<Option<usize>>,
    /// The table as the change reports describe it: updated only from
    /// `take_changes` (clear each reported region, then set its value).
    pub reported: Entries,
}

/// The entry of `entries` that covers `addr`.
fn covering(geo: &Geo, entries: &Entries, addr: u64) -> Option<Item> {
    let (&start, &(level, value)) = entries.range(..=addr).next_back()?;
    (addr <= geo.end(start, level)).then_some((start, level, value))
}

/// The entries of `entries` that overlap `lo..=last`, in order.
fn overlapping(geo: &Geo, entries: &Entries, lo: u64, last: u64) -> Vec<Item> {
    let mut out: Vec<Item> = covering(geo, entries, lo).filter(|e| e.0 < lo).into_iter().collect();
    out.extend(entries.range(lo..=last).map(|(&a, &(l, v))| (a, l, v)));
    out
}

/// Replaces the entry of `level` at `start` by its sub-pages one level down.
fn split_entry(geo: &Geo, entries: &mut Entries, start: u64, level: u8, how: SplitHow) {
    let (l, v) = entries.remove(&start).expect("an entry to split");
    assert_eq!(l, level, "model: split of the wrong entry");
    let below = level - 1;
    for i in 0..geo.fanout(below) {
        entries.insert(start + i * geo.size(below), (below, how.value(v, i)));
    }
}

/// Clears `lo..=last` of `entries`, splitting (by clone) any entry that
/// straddles an end: a pure function of addresses, whatever the levels.
fn punch(geo: &Geo, entries: &mut Entries, lo: u64, last: u64) {
    for edge in [lo, last] {
        while let Some((start, level, _)) = covering(geo, entries, edge) {
            if start >= lo && geo.end(start, level) <= last {
                break;
            }
            split_entry(geo, entries, start, level, SplitHow::Clone);
        }
    }
    let inside: Vec<u64> = entries.range(lo..=last).map(|(&a, _)| a).collect();
    for a in inside {
        entries.remove(&a);
    }
}

impl Model {
    /// The model of an empty `table` (which must be fresh: no change marks).
    pub fn new<G: Geometry, B: Backend>(table: &MemTable<u32, G, B>) -> Model {
        assert!(table.is_empty(), "model: start from an empty table");
        let geo = Geo::of::<G>();
        let stats = table.stats();
        let capacity = (0..geo.top() as usize).map(|l| stats.level(l).capacity).collect();
        Model { geo, entries: Entries::new(), capacity, reported: Entries::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn items(&self) -> Vec<Item> {
        self.entries.iter().map(|(&a, &(l, v))| (a, l, v)).collect()
    }

    /// The entry covering `addr`.
    pub fn get(&self, addr: u64) -> Option<Item> {
        if !self.geo.in_reach(addr) {
            return None;
        }
        covering(&self.geo, &self.entries, addr)
    }

    /// The entries overlapping `range`, as `MemTable::range` yields them.
    pub fn range(&self, (start, end): (Bound<u64>, Bound<u64>)) -> Vec<Item> {
        let lo = match start {
            Bound::Included(a) => Some(a),
            Bound::Excluded(a) => a.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let last = match end {
            Bound::Included(a) => Some(a),
            Bound::Excluded(a) => a.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        match (lo, last.map(|l| l.min(self.geo.last_addr()))) {
            (Some(lo), Some(last)) if lo <= last => overlapping(&self.geo, &self.entries, lo, last),
            _ => Vec::new(),
        }
    }

    /// Tables the table holds at each level below the root, as sorted lists
    /// of region numbers: a table of level `l` exists exactly where an entry
    /// of level `l` or below lies in its region (empty tables are freed).
    pub fn tables_of(&self, entries: &Entries) -> Vec<Vec<u64>> {
        let mut tables = vec![Vec::new(); self.geo.top() as usize];
        for (&start, &(level, _)) in entries {
            for l in level..self.geo.top() {
                // Entries come in address order, so each list comes sorted.
                let region = start >> self.geo.shift(l + 1);
                let list = &mut tables[l as usize];
                if list.last() != Some(&region) {
                    list.push(region);
                }
            }
        }
        tables
    }

    /// Table counts per level below the root.
    pub fn tables(&self) -> Vec<usize> {
        self.tables_of(&self.entries).iter().map(Vec::len).collect()
    }

    /// Checks that going from the current entries to `next` needs no more
    /// new tables than a bounded backend has free (reserved top level first,
    /// so the highest level that runs out is reported, at `at`).
    fn nodes_for(&self, next: &Entries, at: u64) -> Result<(), Refused> {
        if self.capacity.iter().all(Option::is_none) {
            return Ok(());
        }
        let (before, after) = (self.tables_of(&self.entries), self.tables_of(next));
        for l in (0..self.geo.top()).rev() {
            let Some(cap) = self.capacity[l as usize] else { continue };
            let (before, after) = (&before[l as usize], &after[l as usize]);
            let created = after.iter().filter(|r| before.binary_search(r).is_err()).count();
            if created > cap.saturating_sub(before.len()) {
                return Err(Refused::new(ErrorKind::OutOfNodes, at, l));
            }
        }
        Ok(())
    }

    /// Moves to `next` if the backend has the tables for it.
    fn commit(&mut self, next: Entries, at: u64) -> Result<(), Refused> {
        self.nodes_for(&next, at)?;
        self.entries = next;
        Ok(())
    }

    /// Whether `addr` may carry an entry at `level`.
    pub fn check_place(&self, addr: u64, level: u8) -> Result<(), Refused> {
        let fail = |kind| Err(Refused::new(kind, addr, level));
        if !self.geo.holds(level) {
            return fail(ErrorKind::NoEntriesAtLevel);
        }
        if !self.geo.in_reach(addr) {
            return fail(ErrorKind::OutOfReach);
        }
        if addr % self.geo.size(level) != 0 {
            return fail(ErrorKind::Misaligned);
        }
        Ok(())
    }

    /// What an insert of `level` at `addr` meets: `Ok(true)` if it replaces
    /// an entry, `Ok(false)` if the place is free.
    pub fn probe_insert(&self, addr: u64, level: u8) -> Result<bool, Refused> {
        self.check_place(addr, level)?;
        match covering(&self.geo, &self.entries, addr) {
            Some((start, l, _)) if l > level => Err(Refused::new(ErrorKind::ConflictLarger, start, l)),
            Some((_, l, _)) if l == level => Ok(true),
            _ if overlapping(&self.geo, &self.entries, addr, self.geo.end(addr, level)).is_empty() => {
                Ok(false)
            }
            _ => Err(Refused::new(ErrorKind::ConflictSmaller, addr, level)),
        }
    }

    fn insert_next(&self, addr: u64, level: u8, v: u32) -> Result<(Entries, Option<u32>), Refused> {
        self.probe_insert(addr, level)?;
        let mut next = self.entries.clone();
        let old = next.insert(addr, (level, v)).map(|(_, old)| old);
        Ok((next, old))
    }

    pub fn insert_at(&mut self, addr: u64, level: u8, v: u32) -> Result<Option<u32>, Refused> {
        let (next, old) = self.insert_next(addr, level, v)?;
        self.commit(next, addr)?;
        Ok(old)
    }

    /// `reserve_insert`: as `insert_at` would fail, without inserting.
    pub fn reserve_insert(&self, addr: u64, level: u8) -> Result<(), Refused> {
        let (next, _) = self.insert_next(addr, level, 0)?;
        self.nodes_for(&next, addr)
    }

    pub fn remove(&mut self, addr: u64) -> Result<Option<Item>, Refused> {
        self.check_place(addr, 0)?;
        let found = covering(&self.geo, &self.entries, addr);
        if let Some((start, ..)) = found {
            self.entries.remove(&start);
        }
        Ok(found)
    }

    pub fn get_mut(&mut self, addr: u64, add: u32) -> Option<Item> {
        let found = self.get(addr)?;
        self.entries.get_mut(&found.0).expect("found").1 = found.2.wrapping_add(add);
        Some(found)
    }

    pub fn split(&mut self, addr: u64, level: u8, how: SplitHow) -> Result<(), Refused> {
        self.check_place(addr, level)?;
        let refuse = |kind, addr, level| Err(Refused::new(kind, addr, level));
        let Some(below) = level.checked_sub(1) else { return refuse(ErrorKind::NothingToSplit, addr, level) };
        match covering(&self.geo, &self.entries, addr) {
            Some((start, l, _)) if l > level => refuse(ErrorKind::ConflictLarger, start, l),
            Some((_, l, _)) if l == level && !self.geo.holds(below) => {
                refuse(ErrorKind::NoEntriesAtLevel, addr, below)
            }
            Some((_, l, _)) if l == level => {
                let mut next = self.entries.clone();
                split_entry(&self.geo, &mut next, addr, level, how);
                self.commit(next, addr)
            }
            _ => refuse(ErrorKind::NothingToSplit, addr, level),
        }
    }

    /// The value a merge into the entry of `level` at `addr` would make.
    fn merged(&self, addr: u64, level: u8, how: MergeHow) -> Option<u32> {
        let below = level.checked_sub(1)?;
        let children = overlapping(&self.geo, &self.entries, addr, self.geo.end(addr, level));
        let full = children.len() as u64 == self.geo.fanout(below) && children.iter().all(|c| c.1 == below);
        let values: Vec<u32> = children.iter().map(|c| c.2).collect();
        if full { how.value(&values) } else { None }
    }

    pub fn merge(&mut self, addr: u64, level: u8, how: MergeHow) -> Result<(), Refused> {
        self.check_place(addr, level)?;
        if level == 0 {
            return Err(Refused::new(ErrorKind::NotMergeable, addr, level));
        }
        if let Some((start, l, _)) = covering(&self.geo, &self.entries, addr) {
            if l > level {
                return Err(Refused::new(ErrorKind::ConflictLarger, start, l));
            }
        }
        let v = self.merged(addr, level, how).ok_or(Refused::new(ErrorKind::NotMergeable, addr, level))?;
        self.replace_by(addr, level, v);
        Ok(())
    }

    /// Replaces every entry inside the page of `level` at `addr` by one.
    fn replace_by(&mut self, addr: u64, level: u8, v: u32) {
        let inside: Vec<u64> =
            self.entries.range(addr..=self.geo.end(addr, level)).map(|(&a, _)| a).collect();
        for a in inside {
            self.entries.remove(&a);
        }
        self.entries.insert(addr, (level, v));
    }

    /// The inclusive bounds of a range for `insert_range`/`remove_range`.
    pub fn check_range(&self, (start, end): (Bound<u64>, Bound<u64>)) -> Result<(u64, u64), Refused> {
        let refuse = |kind, addr| Refused::new(kind, addr, 0);
        let lo = match start {
            Bound::Included(a) => a,
            Bound::Excluded(a) => a.checked_add(1).ok_or(refuse(ErrorKind::EmptyRange, a))?,
            Bound::Unbounded => 0,
        };
        let last = match end {
            Bound::Included(a) => a,
            Bound::Excluded(a) => a.checked_sub(1).ok_or(refuse(ErrorKind::EmptyRange, lo))?,
            Bound::Unbounded => self.geo.last_addr(),
        };
        if lo > last {
            return Err(refuse(ErrorKind::EmptyRange, lo));
        }
        if !self.geo.in_reach(last) {
            return Err(refuse(ErrorKind::OutOfReach, last));
        }
        if lo % self.geo.page() != 0 {
            return Err(refuse(ErrorKind::Misaligned, lo));
        }
        if last.wrapping_add(1) % self.geo.page() != 0 {
            return Err(refuse(ErrorKind::Misaligned, last.wrapping_add(1)));
        }
        Ok((lo, last))
    }

    /// Splits the entries that straddle an end of `lo..=last` until none
    /// does, lower end first; refuses a split into a level without entries.
    fn carve(&self, next: &mut Entries, lo: u64, last: u64, how: SplitHow) -> Result<(), Refused> {
        for edge in [lo, last] {
            while let Some((start, level, _)) = covering(&self.geo, next, edge) {
                if start >= lo && self.geo.end(start, level) <= last {
                    break;
                }
                let below = level.checked_sub(1).expect("a base page never straddles a base-aligned range");
                if !self.geo.holds(below) {
                    return Err(Refused::new(ErrorKind::NoEntriesAtLevel, lo, below));
                }
                split_entry(&self.geo, next, start, level, how);
            }
        }
        let inside: Vec<u64> = next.range(lo..=last).map(|(&a, _)| a).collect();
        for a in inside {
            next.remove(&a);
        }
        Ok(())
    }

    pub fn insert_range(
        &mut self,
        range: (Bound<u64>, Bound<u64>),
        v: u32,
        how: SplitHow,
    ) -> Result<(), Refused> {
        let (lo, last) = self.check_range(range)?;
        let mut next = self.entries.clone();
        self.carve(&mut next, lo, last, how)?;
        for (addr, level) in self.geo.pieces(lo, last, usize::MAX).expect("no limit") {
            next.insert(addr, (level, v));
        }
        self.commit(next, lo)
    }

    pub fn remove_range(&mut self, range: (Bound<u64>, Bound<u64>), how: SplitHow) -> Result<(), Refused> {
        let (lo, last) = self.check_range(range)?;
        let mut next = self.entries.clone();
        self.carve(&mut next, lo, last, how)?;
        self.commit(next, lo)
    }

    /// Merges bottom up every full table of equal entries, where the level
    /// above holds entries. Returns the number of merges.
    pub fn compact(&mut self) -> usize {
        let mut merges = 0;
        for level in 1..=self.geo.top() {
            if !self.geo.holds(level) {
                continue;
            }
            let parents: BTreeSet<u64> = self
                .entries
                .iter()
                .filter(|(_, e)| e.0 == level - 1)
                .map(|(&a, _)| self.geo.align_down(a, level))
                .collect();
            for addr in parents {
                if let Some(v) = self.merged(addr, level, MergeHow::Equal) {
                    self.replace_by(addr, level, v);
                    merges += 1;
                }
            }
        }
        merges
    }

    /// Keeps the entries `keep` keeps (adding one to them if `bump`).
    /// Returns every entry visited, as it was.
    pub fn retain(&mut self, keep: Keep, bump: bool) -> Vec<Item> {
        let visited = self.items();
        for &(a, l, v) in &visited {
            if !keep.keeps(&self.geo, a, l, v) {
                self.entries.remove(&a);
            } else if bump {
                self.entries.insert(a, (l, v.wrapping_add(1)));
            }
        }
        visited
    }

    /// Adds `add` to the first `limit` entries; returns them as they were.
    pub fn iter_mut(&mut self, limit: usize, add: u32) -> Vec<Item> {
        let visited: Vec<Item> = self.items().into_iter().take(limit).collect();
        for &(a, l, v) in &visited {
            self.entries.insert(a, (l, v.wrapping_add(add)));
        }
        visited
    }

    pub fn pop_first(&mut self) -> Option<Item> {
        self.entries.pop_first().map(|(a, (l, v))| (a, l, v))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The `Entry` op: `entry_at(addr, level)`, then `action`.
    pub fn entry(
        &mut self,
        addr: u64,
        level: u8,
        action: EntryAction,
        v: u32,
    ) -> Result<EntryOutcome, Refused> {
        let occupied = self.probe_insert(addr, level)?;
        if !occupied {
            if action == EntryAction::Remove {
                return Ok(EntryOutcome::LeftVacant);
            }
            self.insert_at(addr, level, v)?;
            return Ok(EntryOutcome::Inserted(v));
        }
        let old = self.entries[&addr].1;
        Ok(match action {
            EntryAction::Bump => {
                self.entries.insert(addr, (level, old.wrapping_add(1)));
                EntryOutcome::Bumped(old.wrapping_add(1))
            }
            EntryAction::Replace => {
                self.entries.insert(addr, (level, v));
                EntryOutcome::Replaced(old)
            }
            EntryAction::Remove => {
                self.entries.remove(&addr);
                EntryOutcome::Removed(old)
            }
        })
    }

    /// Applies one change report to the shadow: clears `page`'s region, then
    /// sets its value.
    pub fn apply_change(&mut self, addr: u64, level: u8, value: Option<u32>) {
        punch(&self.geo, &mut self.reported, addr, self.geo.end(addr, level));
        if let Some(v) = value {
            self.reported.insert(addr, (level, v));
        }
    }

    /// Whether `act` would make more entries than [`BUDGET`] (or is a range
    /// set too large to work out): the interpreter skips it.
    pub fn over_budget(&self, act: &Act) -> bool {
        let room = BUDGET.saturating_sub(self.len());
        match *act {
            Act::Split { level, .. } if self.geo.holds(level) && level > 0 => {
                self.geo.fanout(level - 1) as usize > room
            }
            Act::InsertRange { range, .. } => match self.check_range(range) {
                Ok((lo, last)) => self.geo.pieces(lo, last, room).is_none(),
                Err(_) => false,
            },
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Operations.

/// An address, symbolically: resolved by [`Addr::resolve`] against the
/// model (its geometry and, for [`Addr::Entry`], its entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// Base page `n % 16` from the bottom.
    Low(u8),
    /// Base page `n % 16` from the top of the reach (0: the last page).
    High(u8),
    /// Page `n % 4` of the op's level (base pages for an op without one),
    /// from the bottom or from the top of the reach.
    Page { n: u8, from_top: bool },
    /// The first address of page `n % 4` of level `level % levels`, counted
    /// from the bottom or from the top of the reach, nudged.
    Boundary { level: u8, n: u8, from_top: bool, nudge: Nudge },
    /// The first address of entry `n % count` among the model's entries of
    /// the op's level and the level below (or among all if there are none),
    /// rounded down to the op's level: an entry to split, or a table to
    /// merge. 0 if the model is empty.
    Entry(u8),
    /// `2^ADDRESS_BITS` plus `n % 4` base pages (`u64::MAX - n % 4` when
    /// every address is in reach).
    PastReach(u8),
    /// That address.
    Any(u64),
}

/// Mostly addresses in reach that other ops will meet again; now and then
/// one past the reach or anywhere at all.
impl<'a> Arbitrary<'a> for Addr {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Addr> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=3 => Addr::Low(u.arbitrary()?),
            4 | 5 => Addr::High(u.arbitrary()?),
            6..=9 => Addr::Page { n: u.arbitrary()?, from_top: u.arbitrary()? },
            10..=13 => Addr::Boundary {
                level: u.arbitrary()?,
                n: u.arbitrary()?,
                from_top: u.arbitrary()?,
                nudge: u.arbitrary()?,
            },
            14..=17 => Addr::Entry(u.arbitrary()?),
            18 => Addr::PastReach(u.arbitrary()?),
            _ => Addr::Any(u.arbitrary()?),
        })
    }
}

/// A small move away from a boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nudge {
    Exact,
    PageUp,
    PageDown,
    ByteUp,
    ByteDown,
}

/// Half the time exact, a page off more often than a byte off.
impl<'a> Arbitrary<'a> for Nudge {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Nudge> {
        Ok(match u.int_in_range(0..=9u8)? {
            0..=4 => Nudge::Exact,
            5 | 6 => Nudge::PageUp,
            7 => Nudge::PageDown,
            8 => Nudge::ByteUp,
            _ => Nudge::ByteDown,
        })
    }
}

impl Nudge {
    fn apply(self, geo: &Geo, addr: u64) -> u64 {
        match self {
            Nudge::Exact => addr,
            Nudge::PageUp => addr.wrapping_add(geo.page()),
            Nudge::PageDown => addr.wrapping_sub(geo.page()),
            Nudge::ByteUp => addr.wrapping_add(1),
            Nudge::ByteDown => addr.wrapping_sub(1),
        }
    }
}

impl Addr {
    /// The address, for an op acting at `level` (0 if it has none).
    pub fn resolve(self, m: &Model, level: u8) -> u64 {
        let geo = &m.geo;
        let level = level.min(geo.top());
        let last_page = geo.last_addr() - (geo.page() - 1);
        // Page `n % 4` of `level`, from the bottom or the top.
        let page = |level: u8, n: u8, from_top: bool| {
            let n = u64::from(n % 4).min(geo.pages(level) - 1);
            let index = if from_top { geo.pages(level) - 1 - n } else { n };
            index * geo.size(level)
        };
        match self {
            Addr::Low(n) => u64::from(n % 16) * geo.page(),
            Addr::High(n) => last_page - u64::from(n % 16) * geo.page(),
            Addr::Page { n, from_top } => page(level, n, from_top),
            Addr::Boundary { level, n, from_top, nudge } => {
                nudge.apply(geo, page(level % geo.levels() as u8, n, from_top))
            }
            Addr::Entry(n) => {
                let near = |e: &(&u64, &(u8, u32))| e.1.0 == level || e.1.0 + 1 == level;
                let mut starts: Vec<u64> = m.entries.iter().filter(near).map(|(&a, _)| a).collect();
                if starts.is_empty() {
                    starts = m.entries.keys().copied().collect();
                }
                starts.get(usize::from(n) % starts.len().max(1)).map_or(0, |&a| geo.align_down(a, level))
            }
            Addr::PastReach(n) if geo.bits >= 64 => u64::MAX - u64::from(n % 4),
            Addr::PastReach(n) => (1u64 << geo.bits) + u64::from(n % 4) * geo.page(),
            Addr::Any(a) => a,
        }
    }
}

/// A level, symbolically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvl {
    /// The `n % count`-th level that holds entries, from the bottom.
    Holding(u8),
    /// The `n % count`-th level above 0 that holds entries (0 if none does).
    Large(u8),
    /// The level of the entry covering the op's address (0 if none does).
    OfEntry,
    /// One above the level of the entry covering the op's address.
    AboveEntry,
    /// Level `n % (levels + 1)` (so possibly one past the top), or `n` itself
    /// from 250 up.
    At(u8),
}

/// Mostly a level that holds entries, or one that fits the entry the op
/// meets (to split or merge it).
impl<'a> Arbitrary<'a> for Lvl {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Lvl> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=5 => Lvl::Holding(u.arbitrary()?),
            6..=9 => Lvl::Large(u.arbitrary()?),
            10..=12 => Lvl::OfEntry,
            13..=15 => Lvl::AboveEntry,
            _ => Lvl::At(u.arbitrary()?),
        })
    }
}

impl Lvl {
    /// The level, for an op at `addr` (resolved as for a base page).
    pub fn resolve(self, m: &Model, addr: u64) -> u8 {
        let geo = &m.geo;
        let nth =
            |n: u8, levels: Vec<u8>| levels.get(usize::from(n) % levels.len().max(1)).copied().unwrap_or(0);
        let entry_level = || m.get(addr).map_or(0, |e| e.1);
        match self {
            Lvl::Holding(n) => nth(n, (0..=geo.top()).filter(|&l| geo.holds(l)).collect()),
            Lvl::Large(n) => nth(n, (1..=geo.top()).filter(|&l| geo.holds(l)).collect()),
            Lvl::OfEntry => entry_level(),
            Lvl::AboveEntry => entry_level() + 1,
            Lvl::At(n) if n >= 250 => n,
            Lvl::At(n) => n % (geo.levels() as u8 + 1),
        }
    }
}

/// A value: `n % 4`, so that neighbours are often equal and merge.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Val(pub u8);

impl Val {
    pub fn get(self) -> u32 {
        u32::from(self.0 % 4)
    }
}

/// A length: `count % 4` pages of level `level % levels`, nudged.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Len {
    pub level: u8,
    pub count: u8,
    pub nudge: Nudge,
}

impl Len {
    pub fn resolve(self, geo: &Geo) -> u64 {
        let size = geo.size(self.level % geo.levels() as u8);
        self.nudge.apply(geo, u64::from(self.count % 4).wrapping_mul(size))
    }
}

/// A range bound, symbolically.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundArg {
    Included(Addr),
    Excluded(Addr),
    Unbounded,
}

impl BoundArg {
    fn resolve(self, m: &Model) -> Bound<u64> {
        match self {
            BoundArg::Included(a) => Bound::Included(a.resolve(m, 0)),
            BoundArg::Excluded(a) => Bound::Excluded(a.resolve(m, 0)),
            BoundArg::Unbounded => Bound::Unbounded,
        }
    }
}

/// A range, symbolically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeArg {
    /// `start .. start + len`
    Span { start: Addr, len: Len },
    /// `start ..= start + len - 1`
    SpanInclusive { start: Addr, len: Len },
    /// `start ..`
    From(Addr),
    /// `.. end`
    To(Addr),
    /// `..`
    Full,
    /// Any bounds.
    Bounds(BoundArg, BoundArg),
}

/// Mostly short spans; the open-ended ranges, which reach far, less often.
impl<'a> Arbitrary<'a> for RangeArg {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<RangeArg> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=8 => RangeArg::Span { start: u.arbitrary()?, len: u.arbitrary()? },
            9..=12 => RangeArg::SpanInclusive { start: u.arbitrary()?, len: u.arbitrary()? },
            13 => RangeArg::From(u.arbitrary()?),
            14 => RangeArg::To(u.arbitrary()?),
            15 => RangeArg::Full,
            _ => RangeArg::Bounds(u.arbitrary()?, u.arbitrary()?),
        })
    }
}

/// A resolved range.
pub type Range = (Bound<u64>, Bound<u64>);

impl RangeArg {
    pub fn resolve(self, m: &Model) -> Range {
        let geo = &m.geo;
        match self {
            RangeArg::Span { start, len } => {
                let a = start.resolve(m, len.level % geo.levels() as u8);
                (Bound::Included(a), Bound::Excluded(a.wrapping_add(len.resolve(geo))))
            }
            RangeArg::SpanInclusive { start, len } => {
                let a = start.resolve(m, len.level % geo.levels() as u8);
                (Bound::Included(a), Bound::Included(a.wrapping_add(len.resolve(geo)).wrapping_sub(1)))
            }
            RangeArg::From(a) => (Bound::Included(a.resolve(m, 0)), Bound::Unbounded),
            RangeArg::To(a) => (Bound::Unbounded, Bound::Excluded(a.resolve(m, 0))),
            RangeArg::Full => (Bound::Unbounded, Bound::Unbounded),
            RangeArg::Bounds(s, e) => (s.resolve(m), e.resolve(m)),
        }
    }
}

/// One operation, with symbolic arguments.
///
/// Read-only lookups and the ops that wipe much of the table are grouped
/// under [`Op::Look`] and [`Op::Sweep`], so that a random list (each variant
/// equally likely) mostly builds and reshapes the table.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Insert {
        addr: Addr,
        value: Val,
    },
    InsertAt {
        addr: Addr,
        level: Lvl,
        value: Val,
    },
    Remove {
        addr: Addr,
    },
    GetMut {
        addr: Addr,
        add: Val,
    },
    Split {
        addr: Addr,
        level: Lvl,
        how: SplitHow,
    },
    Merge {
        addr: Addr,
        level: Lvl,
        how: MergeHow,
    },
    InsertRange {
        range: RangeArg,
        value: Val,
        how: SplitHow,
    },
    RemoveRange {
        range: RangeArg,
        how: SplitHow,
    },
    Compact,
    TakeChanges,
    Entry {
        addr: Addr,
        level: Lvl,
        action: EntryAction,
        value: Val,
    },
    /// `iter_mut`, the first `limit` entries (all if `None`).
    IterMut {
        limit: Option<u8>,
        add: Val,
    },
    /// `reserve_insert`, then (if it succeeded) `insert_at`, which must not
    /// run out of nodes.
    ReserveInsert {
        addr: Addr,
        level: Lvl,
        value: Val,
    },
    /// Carries on with a clone of the table (change marks included).
    CloneTable,
    Look(Look),
    Sweep(Sweep),
}

/// Lookups (the interpreter also looks around every op's address).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Look {
    Get { addr: Addr },
    GetKeyValue { addr: Addr },
    Range { range: RangeArg },
}

/// Ops that may empty much of the table.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Sweep {
    Retain { keep: Keep, bump: bool },
    Clear,
    PopFirst,
}

/// One operation with concrete arguments for one geometry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    Insert { addr: u64, value: u32 },
    InsertAt { addr: u64, level: u8, value: u32 },
    Remove { addr: u64 },
    Get { addr: u64 },
    GetKeyValue { addr: u64 },
    GetMut { addr: u64, add: u32 },
    Range { range: Range },
    Split { addr: u64, level: u8, how: SplitHow },
    Merge { addr: u64, level: u8, how: MergeHow },
    InsertRange { range: Range, value: u32, how: SplitHow },
    RemoveRange { range: Range, how: SplitHow },
    Compact,
    TakeChanges,
    Entry { addr: u64, level: u8, action: EntryAction, value: u32 },
    Retain { keep: Keep, bump: bool },
    Clear,
    IterMut { limit: Option<u8>, add: u32 },
    PopFirst,
    ReserveInsert { addr: u64, level: u8, value: u32 },
    CloneTable,
}

impl Op {
    /// The op with concrete arguments, for the table `m` describes now.
    pub fn resolve(&self, m: &Model) -> Act {
        let a = |addr: &Addr| addr.resolve(m, 0);
        // An address and a level: the level found from the address as for a
        // base page, then the address resolved for that level.
        let al = |addr: &Addr, level: &Lvl| {
            let level = level.resolve(m, addr.resolve(m, 0));
            (addr.resolve(m, level), level)
        };
        let r = |range: &RangeArg| range.resolve(m);
        match self {
            Op::Insert { addr, value } => Act::Insert { addr: a(addr), value: value.get() },
            Op::InsertAt { addr, level, value } => {
                let (addr, level) = al(addr, level);
                Act::InsertAt { addr, level, value: value.get() }
            }
            Op::Remove { addr } => Act::Remove { addr: a(addr) },
            Op::GetMut { addr, add } => Act::GetMut { addr: a(addr), add: add.get() },
            Op::Split { addr, level, how } => {
                let (addr, level) = al(addr, level);
                Act::Split { addr, level, how: *how }
            }
            Op::Merge { addr, level, how } => {
                let (addr, level) = al(addr, level);
                Act::Merge { addr, level, how: *how }
            }
            Op::InsertRange { range, value, how } => {
                Act::InsertRange { range: r(range), value: value.get(), how: *how }
            }
            Op::RemoveRange { range, how } => Act::RemoveRange { range: r(range), how: *how },
            Op::Compact => Act::Compact,
            Op::TakeChanges => Act::TakeChanges,
            Op::Entry { addr, level, action, value } => {
                let (addr, level) = al(addr, level);
                Act::Entry { addr, level, action: *action, value: value.get() }
            }
            Op::IterMut { limit, add } => Act::IterMut { limit: *limit, add: add.get() },
            Op::ReserveInsert { addr, level, value } => {
                let (addr, level) = al(addr, level);
                Act::ReserveInsert { addr, level, value: value.get() }
            }
            Op::CloneTable => Act::CloneTable,
            Op::Look(Look::Get { addr }) => Act::Get { addr: a(addr) },
            Op::Look(Look::GetKeyValue { addr }) => Act::GetKeyValue { addr: a(addr) },
            Op::Look(Look::Range { range }) => Act::Range { range: r(range) },
            Op::Sweep(Sweep::Retain { keep, bump }) => Act::Retain { keep: *keep, bump: *bump },
            Op::Sweep(Sweep::Clear) => Act::Clear,
            Op::Sweep(Sweep::PopFirst) => Act::PopFirst,
        }
    }
}

impl Act {
    /// The address the act is about, to look around after it.
    fn addr(&self) -> Option<u64> {
        match *self {
            Act::Insert { addr, .. }
            | Act::InsertAt { addr, .. }
            | Act::Remove { addr }
            | Act::Get { addr }
            | Act::GetKeyValue { addr }
            | Act::GetMut { addr, .. }
            | Act::Split { addr, .. }
            | Act::Merge { addr, .. }
            | Act::Entry { addr, .. }
            | Act::ReserveInsert { addr, .. } => Some(addr),
            Act::Range { range } | Act::InsertRange { range, .. } | Act::RemoveRange { range, .. } => {
                match range.0 {
                    Bound::Included(a) | Bound::Excluded(a) => Some(a),
                    Bound::Unbounded => Some(0),
                }
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// The interpreter.

/// Where a check failed, for the panic message.
struct At<'a> {
    index: usize,
    op: &'a Op,
    act: &'a Act,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op #{} {:?}\n  resolved: {:x?}\n ", self.index, self.op, self.act)
    }
}

/// Everything an error must leave as it was: the entries, the counts, the
/// node figures and the change marks (read from a clone's report).
#[derive(Debug, PartialEq)]
struct Snapshot {
    entries: Vec<(Page, u32)>,
    len: usize,
    stats: Stats,
    pending: bool,
    marks: Vec<(Page, Option<u32>)>,
}

impl Snapshot {
    /// A snapshot of `t` if the model expects the op about to run to be
    /// refused (taking one costs a clone of the table).
    fn if_refused<T, G: Geometry, B: Backend>(
        t: &MemTable<u32, G, B>,
        want: &Result<T, Refused>,
    ) -> Option<Snapshot> {
        want.is_err().then(|| Snapshot::take(t))
    }

    fn take<G: Geometry, B: Backend>(t: &MemTable<u32, G, B>) -> Snapshot {
        let mut copy = t.clone();
        let marks = copy.take_changes().map(|c| (c.page, c.value.copied())).collect();
        Snapshot {
            entries: t.iter().map(|(p, v)| (p, *v)).collect(),
            len: t.len(),
            stats: t.stats(),
            pending: t.has_changes(),
            marks,
        }
    }
}

/// Checks a fallible operation's result against the model's; on an error,
/// that the table is as it was (`before`, taken when the model expected the
/// error) and `given` came back. Returns whether the operation failed.
fn expect<T, U, G, B>(
    at: &At<'_>,
    t: &MemTable<u32, G, B>,
    before: Option<Snapshot>,
    got: Result<T, Error<U>>,
    want: Result<T, Refused>,
    given: U,
) -> bool
where
    T: PartialEq + fmt::Debug,
    U: PartialEq + fmt::Debug,
    G: Geometry,
    B: Backend,
{
    match (got, want) {
        (Ok(got), Ok(want)) => {
            assert_eq!(got, want, "{at} result differs (left: table, right: model)");
            false
        }
        (Err(e), Err(want)) => {
            assert_eq!(Refused::of(&e), want, "{at} error differs (left: table, right: model)");
            assert_eq!(e.into_value(), given, "{at} error handed back another value");
            let before = before.expect("a snapshot before an expected error");
            let after = Snapshot::take(t);
            assert!(
                before == after,
                "{at} the error changed the table:\nbefore {before:x?}\nafter  {after:x?}"
            );
            true
        }
        (got, want) => panic!("{at} table gave {got:x?}, model expects {want:x?}"),
    }
}

/// `(address, level, value)` of a table entry, checking its page is
/// well-formed for the geometry.
fn item(at: &At<'_>, geo: &Geo, page: Page, v: u32) -> Item {
    let level = page.level().index() as u8;
    assert!(level <= geo.top(), "{at} page {page:?} above the top level");
    assert_eq!(page.shift(), geo.shift(level), "{at} page {page:?} has the wrong size");
    assert_eq!(page.addr() % page.size(), 0, "{at} page {page:?} is misaligned");
    assert_eq!(page.last(), geo.end(page.addr(), level), "{at} page {page:?} ends wrong");
    (page.addr(), level, v)
}

/// A readable account of where two entry lists first differ.
fn diff(got: &[Item], want: &[Item]) -> String {
    diff_named(("table", got), ("model", want))
}

fn diff_named((name, got): (&str, &[Item]), (want_name, want): (&str, &[Item])) -> String {
    let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
    let show = |items: &[Item]| {
        let from = first.saturating_sub(2);
        items[from.min(items.len())..(first + 4).min(items.len())]
            .iter()
            .map(|(a, l, v)| format!("{a:#x}@L{l}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{name} has {} entries, {want_name} {}; first difference at index {first}\n  {name}: .. {}\n  {want_name}: .. {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    )
}

/// Compares the whole table with the model.
fn check_table<G: Geometry, B: Backend>(at: &At<'_>, t: &MemTable<u32, G, B>, m: &Model) {
    if let Err(e) = t.check_invariants() {
        panic!("{at} invariant broken: {e}");
    }
    assert_eq!(t.len(), m.len(), "{at} len (left: table, right: model)");
    assert_eq!(t.is_empty(), m.is_empty(), "{at} is_empty");
    assert_eq!(t.iter().size_hint(), (m.len(), Some(m.len())), "{at} iter size_hint");
    let got: Vec<Item> = t.iter().map(|(p, &v)| item(at, &m.geo, p, v)).collect();
    let want = m.items();
    if got != want {
        panic!("{at} entries differ: {}", diff(&got, &want));
    }
    let stats = t.stats();
    let tables = m.tables();
    for (l, &n) in tables.iter().enumerate() {
        let s = stats.level(l);
        assert_eq!(s.nodes, n, "{at} tables at level {l} (left: table, right: model)");
        assert_eq!(s.capacity, m.capacity[l], "{at} capacity at level {l}");
        if let Some(cap) = m.capacity[l] {
            assert_eq!(s.available, cap - n, "{at} available at level {l}");
        }
    }
    assert_eq!(stats.level(m.geo.top() as usize).nodes, 1, "{at} the root");
}

/// Looks up `addr` and the range around it, on the table and the model.
fn check_near<G: Geometry, B: Backend>(at: &At<'_>, t: &MemTable<u32, G, B>, m: &Model, addr: u64) {
    let got = t.get_key_value(addr).map(|(p, &v)| item(at, &m.geo, p, v));
    assert_eq!(got, m.get(addr), "{at} get_key_value({addr:#x}) (left: table, right: model)");
    let reach = m.geo.size(1.min(m.geo.top()));
    let range = (Bound::Included(addr.saturating_sub(reach)), Bound::Included(addr.saturating_add(reach)));
    let got: Vec<Item> = t.range(range).map(|(p, &v)| item(at, &m.geo, p, v)).collect();
    assert_eq!(got, m.range(range), "{at} range {range:x?} (left: table, right: model)");
}

/// Split and merge through `FnOps`, as [`SplitHow::Numbered`] and
/// [`MergeHow::Fold`] say.
fn numbered(page: Page, v: &u32, sub: Page) -> u32 {
    v.wrapping_add(((sub.addr() - page.addr()) >> sub.shift()) as u32)
}

fn folded(page: Page, children: Children<'_, '_, u32>) -> Option<u32> {
    let len = children.len();
    let values: Vec<u32> = children.copied().collect();
    assert_eq!(values.len(), len, "merge of {page:?}: Children::len() differs from the children given");
    Some(fold(values.iter()))
}

fn never(_: Page, _: Children<'_, '_, u32>) -> Option<u32> {
    None
}

/// Performs `act` on the table and the model and checks what it returned.
fn step<G: Geometry, B: Backend>(at: &At<'_>, t: &mut MemTable<u32, G, B>, m: &mut Model) {
    let lvl = Level::new;
    match *at.act {
        Act::Insert { addr, value } => {
            let want = m.insert_at(addr, 0, value);
            let before = Snapshot::if_refused(t, &want);
            let got = t.insert(addr, value);
            expect(at, t, before, got, want, value);
        }
        Act::InsertAt { addr, level, value } => {
            let want = m.insert_at(addr, level, value);
            let before = Snapshot::if_refused(t, &want);
            let got = t.insert_at(addr, lvl(level), value);
            expect(at, t, before, got, want, value);
        }
        Act::Remove { addr } => {
            let want = m.remove(addr);
            let before = Snapshot::if_refused(t, &want);
            let got = t.remove(addr).map(|r| r.map(|(p, v)| item(at, &m.geo, p, v)));
            expect(at, t, before, got, want, ());
        }
        Act::Get { addr } => {
            assert_eq!(t.get(addr).copied(), m.get(addr).map(|e| e.2), "{at} get");
            assert_eq!(t.contains(addr), m.get(addr).is_some(), "{at} contains");
        }
        Act::GetKeyValue { addr } => check_near(at, t, m, addr),
        Act::GetMut { addr, add } => {
            let got = t.get_mut(addr).map(|v| {
                let old = *v;
                *v = old.wrapping_add(add);
                old
            });
            assert_eq!(got, m.get_mut(addr, add).map(|e| e.2), "{at} get_mut");
        }
        Act::Range { range } => {
            let got: Vec<Item> = t.range(range).map(|(p, &v)| item(at, &m.geo, p, v)).collect();
            let want = m.range(range);
            if got != want {
                panic!("{at} range differs: {}", diff(&got, &want));
            }
        }
        Act::Split { addr, level, how } => {
            let want = m.split(addr, level, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.split(addr, lvl(level)),
                SplitHow::Numbered => t.split_with(addr, lvl(level), &mut FnOps::new(numbered, never)),
            };
            expect(at, t, before, got, want, ());
        }
        Act::Merge { addr, level, how } => {
            let want = m.merge(addr, level, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                MergeHow::Equal => t.merge(addr, lvl(level)),
                MergeHow::Fold => t.merge_with(addr, lvl(level), &mut FnOps::new(numbered, folded)),
            };
            expect(at, t, before, got, want, ());
        }
        Act::InsertRange { range, value, how } => {
            let want = m.insert_range(range, value, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.insert_range(range, value),
                SplitHow::Numbered => t.insert_range_with(range, value, &mut FnOps::new(numbered, never)),
            };
            expect(at, t, before, got, want, value);
        }
        Act::RemoveRange { range, how } => {
            let want = m.remove_range(range, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.remove_range(range),
                SplitHow::Numbered => t.remove_range_with(range, &mut FnOps::new(numbered, never)),
            };
            expect(at, t, before, got, want, ());
        }
        Act::Compact => assert_eq!(t.compact(), m.compact(), "{at} merges (left: table, right: model)"),
        Act::TakeChanges => take_changes(at, t, m),
        Act::Entry { addr, level, action, value } => {
            let want = m.entry(addr, level, action, value);
            let before = Snapshot::if_refused(t, &want);
            let page = |p: Page| (p.addr(), p.level().index() as u8);
            let got = match t.entry_at(addr, lvl(level)) {
                Err(e) => Err(e),
                Ok(Entry::Occupied(mut o)) => {
                    assert_eq!(page(o.page()), (addr, level), "{at} occupied entry's page");
                    Ok(match action {
                        EntryAction::Bump => {
                            *o.get_mut() = o.get().wrapping_add(1);
                            EntryOutcome::Bumped(*o.get())
                        }
                        EntryAction::Replace => EntryOutcome::Replaced(o.insert(value)),
                        EntryAction::Remove => EntryOutcome::Removed(o.remove()),
                    })
                }
                Ok(Entry::Vacant(v)) => {
                    assert_eq!(page(v.page()), (addr, level), "{at} vacant entry's page");
                    match action {
                        EntryAction::Remove => Ok(EntryOutcome::LeftVacant),
                        _ => match v.try_insert(value) {
                            Ok(v) => Ok(EntryOutcome::Inserted(*v)),
                            Err(e) => {
                                assert_eq!(*e.value(), value, "{at} try_insert handed back another value");
                                Err(e.without_value())
                            }
                        },
                    }
                }
            };
            expect(at, t, before, got, want, ());
        }
        Act::Retain { keep, bump } => {
            let mut seen = Vec::new();
            t.retain(|p, v| {
                seen.push(item(at, &m.geo, p, *v));
                let kept = keep.keeps(&m.geo, p.addr(), p.level().index() as u8, *v);
                if kept && bump {
                    *v = v.wrapping_add(1);
                }
                kept
            });
            assert_eq!(seen, m.retain(keep, bump), "{at} entries retain visited");
        }
        Act::Clear => {
            t.clear();
            m.clear();
        }
        Act::IterMut { limit, add } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let iter = t.iter_mut();
            assert_eq!(iter.len(), m.len(), "{at} iter_mut len");
            let mut seen = Vec::new();
            for (p, v) in iter.take(limit) {
                seen.push(item(at, &m.geo, p, *v));
                *v = v.wrapping_add(add);
            }
            assert_eq!(seen, m.iter_mut(limit, add), "{at} entries iter_mut yielded");
        }
        Act::CloneTable => {
            let copy = t.clone();
            assert!(copy == *t, "{at} the clone differs");
            *t = copy;
        }
        Act::PopFirst => {
            let got = t.pop_first().map(|(p, v)| item(at, &m.geo, p, v));
            assert_eq!(got, m.pop_first(), "{at} pop_first");
        }
        Act::ReserveInsert { addr, level, value } => {
            let want = m.reserve_insert(addr, level);
            let before = Snapshot::if_refused(t, &want);
            let got = t.reserve_insert(addr, lvl(level));
            if !expect(at, t, before, got, want, ()) {
                let want = m.insert_at(addr, level, value);
                assert!(want.is_ok(), "{at} model: a reserved insert failed: {want:?}");
                let got = t.insert_at(addr, lvl(level), value);
                expect(at, t, None, got, want, value);
            }
        }
    }
}

/// Takes the change report, checks its form, applies it to the shadow and
/// checks the shadow now equals the table.
fn take_changes<G: Geometry, B: Backend>(at: &At<'_>, t: &mut MemTable<u32, G, B>, m: &mut Model) {
    let pending = t.has_changes();
    let changes: Vec<(Page, Option<u32>)> = t.take_changes().map(|c| (c.page, c.value.copied())).collect();
    assert_eq!(pending, !changes.is_empty(), "{at} has_changes() disagrees with the report {changes:x?}");
    assert!(!t.has_changes(), "{at} marks left after take_changes");
    for w in changes.windows(2) {
        assert!(w[0].0.last() < w[1].0.addr(), "{at} changes out of order or overlapping: {w:x?}");
    }
    for &(page, value) in &changes {
        let level = page.level().index() as u8;
        assert!(level <= m.geo.top(), "{at} change page {page:?} above the top");
        assert_eq!(page.shift(), m.geo.shift(level), "{at} change page {page:?} has the wrong size");
        assert_eq!(page.addr() % page.size(), 0, "{at} change page {page:?} is misaligned");
        m.apply_change(page.addr(), level, value);
    }
    if m.reported != m.entries {
        let reported: Vec<Item> = m.reported.iter().map(|(&a, &(l, v))| (a, l, v)).collect();
        panic!(
            "{at} the change reports do not reproduce the table: {}\n  this report: {changes:x?}",
            diff_named(("reports", &reported), ("table", &m.items()))
        );
    }
    assert_eq!(t.take_changes().count(), 0, "{at} a second report is not empty");
}

/// Runs `ops` on `table` and `model` (which must describe it), checking the
/// table against the model after every op. Panics with the op's index, the op
/// and what differs.
pub fn run<G: Geometry, B: Backend>(table: &mut MemTable<u32, G, B>, model: &mut Model, ops: &[Op]) {
    for (index, op) in ops.iter().enumerate() {
        let act = op.resolve(model);
        if model.over_budget(&act) {
            continue;
        }
        let at = At { index, op, act: &act };
        step(&at, table, model);
        check_table(&at, table, model);
        if let Some(addr) = act.addr() {
            check_near(&at, table, model, addr);
        }
    }
}

/// Runs `ops` on a fresh table with `backend`, then checks the final table
/// once more by cloning it, draining it by value and clearing it.
pub fn check_ops<G: Geometry, B: Backend>(backend: B, ops: &[Op]) {
    let mut table: MemTable<u32, G, B> = MemTable::with_backend(backend);
    let mut model = Model::new(&table);
    run(&mut table, &mut model, ops);

    let copy = table.clone();
    assert!(copy == table, "a clone differs from its table");
    copy.check_invariants().expect("a clone's invariants");
    let drained: Vec<Item> = copy.into_iter().map(|(p, v)| (p.addr(), p.level().index() as u8, v)).collect();
    assert_eq!(drained, model.items(), "into_iter (left: table, right: model)");

    table.clear();
    table.check_invariants().expect("invariants after clear");
    assert!(table.is_empty() && table.iter().next().is_none(), "clear left entries");
    assert_eq!(table.stats().nodes(), 1, "clear left tables");
}
