//! [`Stats`]: tables, entries, fill and bytes per level.

use core::fmt;

use arrayvec::ArrayVec;

use super::{Bytes, Percent, SizeName};
use crate::MemTable;
use crate::backend::{Backend, Store};
use crate::geometry::{Geometry, MAX_LEVELS};
use crate::raw::RawTable;
use crate::raw::node::{Slot, Tab};

/// Figures for one level of a table, from [`MemTable::stats`].
///
/// ```
/// use mem_table::{Level, MemTable};
/// let mut t: MemTable<u64> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// t.insert_at(0x20_0000, Level::new(1), 2).unwrap();
/// let l1 = t.stats().level(1);
/// assert_eq!(l1.page_size, 2 << 20);
/// assert_eq!((l1.nodes, l1.entries), (1, 1)); // one table, one 2 MiB entry
/// assert_eq!(l1.used, 2); // the entry and the link to the level-0 table
/// assert_eq!(l1.slots, 512);
/// assert_eq!(l1.fill(), 2.0 / 512.0);
/// ```
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
    /// Entries stored at this level: base entries at level 0, large entries
    /// above.
    pub entries: usize,
    /// Occupied slots of this level's tables: its entries and the links to
    /// tables of the level below.
    pub used: usize,
    /// Slots in this level's tables: tables times slots per table.
    pub slots: usize,
    /// The size in bytes of one slot's region (the page of an entry at this
    /// level): 4 KiB at level 0 on x86, 2 MiB at level 1.
    pub page_size: u64,
    /// Whether this level may hold entries (always at level 0).
    pub holds_entries: bool,
}

impl LevelStats {
    /// The share of this level's slots in use, `used / slots`, from 0 to 1
    /// (0 when the level has no table).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let t: MemTable<u8> = (0..256u64).map(|i| (i << 12, 0)).collect();
    /// assert_eq!(t.stats().level(0).fill(), 0.5); // 256 of 512 slots
    /// ```
    pub fn fill(&self) -> f64 {
        ratio(self.used, self.slots)
    }
}

fn ratio(used: usize, slots: usize) -> f64 {
    if slots == 0 { 0.0 } else { used as f64 / slots as f64 }
}

/// Tables, entries, fill and memory of a table, per level; from
/// [`MemTable::stats`].
///
/// `Display` prints it as a small table, one line per level:
///
/// ```
/// use mem_table::{Level, MemTable};
/// let mut t: MemTable<u64> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// t.insert_at(0x4000_0000, Level::new(2), 2).unwrap();
/// let s = t.stats();
/// assert_eq!(s.nodes(), 4); // one table per level on the path
/// assert_eq!(s.level(0).nodes, 1);
/// assert_eq!((s.entries(), s.large_entries()), (2, 1));
/// assert!(s.bytes() > 4096);
/// let text = s.to_string();
/// assert!(text.starts_with("level  page     tables  entries"));
/// assert!(text.lines().nth(3).unwrap().starts_with("L2     1 GiB         1        1"));
/// assert_eq!(text.lines().count(), 6); // a header, four levels, a total
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stats {
    levels: ArrayVec<LevelStats, MAX_LEVELS>,
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

    /// Entries at every level (the table's [`len`](MemTable::len)).
    pub fn entries(&self) -> usize {
        self.levels.iter().map(|l| l.entries).sum()
    }

    /// Large entries: the entries above level 0.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_range(0..0x60_0000, 1).unwrap(); // three 2 MiB entries
    /// assert_eq!(t.stats().large_entries(), 3);
    /// ```
    pub fn large_entries(&self) -> usize {
        self.levels.iter().skip(1).map(|l| l.entries).sum()
    }

    /// The share of all slots of all tables in use, from 0 to 1.
    pub fn fill(&self) -> f64 {
        let used = self.levels.iter().map(|l| l.used).sum();
        let slots = self.levels.iter().map(|l| l.slots).sum();
        ratio(used, slots)
    }
}

impl fmt::Display for Stats {
    /// One line per level, bottom first, and a total:
    ///
    /// ```text
    /// level  page     tables  entries    fill      bytes
    /// L0     4 KiB         1        1   0.1 %    4.0 KiB
    /// ...
    /// total                4        2           28.0 KiB  (1 large)
    /// ```
    ///
    /// `entries` is `-` at a level that holds none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "level  page     tables  entries    fill      bytes")?;
        for (l, s) in self.levels.iter().enumerate() {
            let label = alloc::format!("L{l}");
            let page = alloc::format!("{}", SizeName(s.page_size));
            write!(f, "{label:<6} {page:<8} {:>6}", s.nodes)?;
            if s.holds_entries {
                write!(f, " {:>8}", s.entries)?;
            } else {
                write!(f, " {:>8}", "-")?;
            }
            let fill = alloc::format!("{}", Percent(s.used, s.slots));
            let bytes = alloc::format!("{}", Bytes(s.bytes));
            writeln!(f, " {fill:>7} {bytes:>10}")?;
        }
        let bytes = alloc::format!("{}", Bytes(self.bytes()));
        write!(
            f,
            "total {:>16} {:>8} {:>7} {bytes:>10}  ({} large)",
            self.nodes(),
            self.entries(),
            "",
            self.large_entries()
        )
    }
}

/// What a walk of the tables counts at one level.
#[derive(Clone, Copy, Default)]
struct Walked {
    tables: usize,
    used: usize,
    entries: usize,
}

/// Adds table `t` of level `l` and every table below it to `acc`.
///
/// O(tables + occupied upper slots): a bottom table's entries are counted
/// from its stored count, never visited.
///
/// # Safety
/// `t` is a live table of level `l` of `RawTable<V, G, B>`, reachable from a
/// table the caller holds a shared borrow of (so no one mutates it).
unsafe fn walk<V, G: Geometry, B: Backend>(t: Tab, l: usize, acc: &mut [Walked; MAX_LEVELS]) {
    let lv = RawTable::<V, G, B>::lv(l);
    // SAFETY: `t` is a live table of level `l`, not mutated while the
    // caller's borrow lasts (caller).
    let used = unsafe { t.len(lv) };
    acc[l].tables += 1;
    acc[l].used += used;
    if l == 0 {
        acc[0].entries += used;
        return;
    }
    let mut i = 0;
    // SAFETY: as above; `fanout - 1` is the last slot.
    while let Some(j) = unsafe { t.next_occupied(lv, i, lv.fanout - 1) } {
        // SAFETY: as above; `j < fanout`, from the occupancy bitmap, and
        // `l > 0`, so the table has upper slots.
        match unsafe { t.slot(lv, j) } {
            // SAFETY: a child link of a live table of level `l` points to a
            // live table of level `l - 1` (the raw layer's invariants), under
            // the same borrow.
            Slot::Table(c) => unsafe { walk::<V, G, B>(c, l - 1, acc) },
            Slot::Large => acc[l].entries += 1,
            Slot::Empty => {}
        }
        i = j + 1;
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Tables, entries, fill and memory figures, per level.
    ///
    /// Walks the tables: O(tables + occupied slots above level 0), never
    /// the base entries one by one (a bottom table's count is stored), and
    /// no allocation. A table of 2^20 base pages on x86 is 2048 bottom
    /// tables and a handful above: a few microseconds.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u64> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// t.insert(0x2000, 2).unwrap();
    /// t.insert_at(0x20_0000, Level::new(1), 3).unwrap();
    /// let s = t.stats();
    /// assert_eq!([s.level(0).entries, s.level(1).entries], [2, 1]);
    /// assert_eq!(s.level(0).used, 2);
    /// assert_eq!(s.level(3).used, 1); // the root links one level-2 table
    /// assert_eq!(s.large_entries(), 1);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut walked = [Walked::default(); MAX_LEVELS];
        // SAFETY: the root is a live table of the top level, and `&self`
        // keeps every table reachable from it alive and unchanged.
        unsafe { walk::<V, G, B>(self.raw.root, G::LEVELS - 1, &mut walked) };
        let mut levels: ArrayVec<LevelStats, MAX_LEVELS> = self
            .raw
            .stores
            .iter()
            .enumerate()
            .map(|(l, s)| LevelStats {
                nodes: s.store.live(),
                bytes: s.store.bytes(),
                available: s.store.available(),
                capacity: s.store.capacity(),
                entries: walked[l].entries,
                used: walked[l].used,
                slots: walked[l].tables * RawTable::<V, G, B>::lv(l).fanout,
                page_size: 1 << RawTable::<V, G, B>::lv(l).shift,
                holds_entries: RawTable::<V, G, B>::lv(l).large,
            })
            .collect();
        // Packed bottom tables live in stores of their own: count them in.
        for p in self.raw.pack_stores() {
            levels[0].nodes += p.live();
            levels[0].bytes += p.bytes();
        }
        // So do level-1 tables in the links form.
        for p in self.raw.links.iter() {
            levels[1].nodes += p.live();
            levels[1].bytes += p.bytes();
        }
        levels[G::LEVELS - 1].capacity = Some(1);
        Stats { levels }
    }
}
