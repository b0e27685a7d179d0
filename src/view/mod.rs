//! Looking at a table: [`Stats`], a short `Debug`, and an [`Occupancy`]
//! picture of where in the address space the entries are.
//!
//! # Glossary
//!
//! | term | meaning |
//! |---|---|
//! | entries (of a level) | values stored at that level: base entries at level 0, large entries above |
//! | used slots | a level's slots that hold an entry or link a table of the level below |
//! | fill | used slots / all slots of a level's tables (how full its tables are) |
//! | row | one aligned region of the address space, one line of the picture (1 GiB on x86 by default) |
//! | cell | one aligned part of a row, one character of the picture (2 MiB on x86 by default) |
//! | occupancy of a cell | how many of its base pages lie inside an entry |
//!
//! # Cost
//!
//! | what | time | allocation |
//! |---|---|---|
//! | [`MemTable::stats`] | O(tables + occupied slots above level 0) | none |
//! | `{:?}` of a table | a `stats` walk + O(1) entries (first and last three) | none |
//! | `{:#?}` of a table | O(entries) | none |
//! | [`MemTable::occupancy`] | O(entries in the rows shown + rows not shown x levels); never O(address space) | the cells shown |
//! | [`Occupancy`]'s `Display`, [`Occupancy::to_svg`] | O(cells shown) | the output |

use core::fmt;

use crate::MemTable;
use crate::backend::Backend;
use crate::geometry::Geometry;

mod occupancy;
mod stats;

pub use occupancy::{Occupancy, OccupancyCell, OccupancyOptions, OccupancyRow};
pub use stats::{LevelStats, Stats};

/// Tables with at most this many entries print every entry under `{:?}`.
const DEBUG_FULL: usize = 16;
/// Entries printed at each end by the `{:?}` summary of a larger table.
const DEBUG_ENDS: usize = 3;

/// `{:?}` prints a small table (up to 16 entries) as a map, every entry, and
/// a larger one as a short summary: its length, per level the entries,
/// tables, fill and bytes, the total bytes, and its first and last three
/// entries. `{:#?}` prints every entry, one per line, whatever the size.
///
/// ```
/// use mem_table::{Level, MemTable};
/// let mut t: MemTable<u8> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// t.insert_at(0x20_0000, Level::new(1), 2).unwrap();
/// assert_eq!(format!("{t:?}"), "{0x1000@L0: 1, 0x200000@L1: 2}");
///
/// let big: MemTable<u32> = (0..1000u64).map(|i| (i << 12, i as u32)).collect();
/// let summary = format!("{big:?}");
/// assert!(summary.starts_with("MemTable { len: 1000, levels: [L0: 1000 entries, 2 tables, fill 97.6 %, "));
/// assert!(summary.ends_with(
///     "first: {0x0@L0: 0, 0x1000@L0: 1, 0x2000@L0: 2}, \
///      last: {0x3e5000@L0: 997, 0x3e6000@L0: 998, 0x3e7000@L0: 999} }"
/// ));
///
/// let full = format!("{big:#?}");
/// assert_eq!(full.lines().count(), 1000 + 2); // `{`, an entry per line, `}`
/// assert!(full.contains("    0x3e7000@L0: 999,\n"));
/// ```
impl<V: fmt::Debug, G: Geometry, B: Backend> fmt::Debug for MemTable<V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() || self.len() <= DEBUG_FULL {
            return f.debug_map().entries(self.iter()).finish();
        }
        let stats = self.stats();
        write!(f, "MemTable {{ len: {}, levels: [", self.len())?;
        for (l, s) in stats.levels().iter().enumerate() {
            if l > 0 {
                f.write_str("; ")?;
            }
            write!(f, "L{l}: ")?;
            if s.holds_entries {
                let entries = if s.entries == 1 { "entry" } else { "entries" };
                write!(f, "{} {entries}, ", s.entries)?;
            }
            let tables = if s.nodes == 1 { "table" } else { "tables" };
            write!(f, "{} {tables}, fill {}, {}", s.nodes, Percent(s.used, s.slots), Bytes(s.bytes))?;
        }
        write!(f, "], bytes: {}, first: ", Bytes(stats.bytes()))?;
        f.debug_map().entries(self.iter().take(DEBUG_ENDS)).finish()?;
        f.write_str(", last: ")?;
        let mut last: [Option<_>; DEBUG_ENDS] = [None; DEBUG_ENDS];
        for (slot, e) in last.iter_mut().rev().zip(self.iter().rev()) {
            *slot = Some(e);
        }
        f.debug_map().entries(last.into_iter().flatten()).finish()?;
        f.write_str(" }")
    }
}

/// A power-of-two size in the largest binary unit that divides it:
/// `2 << 20` is "2 MiB".
pub(crate) struct SizeName(pub u64);

impl fmt::Display for SizeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let unit = if self.0 == 0 { 0 } else { (self.0.trailing_zeros() / 10).min(6) };
        write!(f, "{} {}", self.0 >> (10 * unit), UNITS[unit as usize])
    }
}

/// A byte count, to a tenth of the largest binary unit it reaches:
/// "812 B", "4.0 KiB", "1.5 MiB".
pub(crate) struct Bytes(pub usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let n = self.0 as u128;
        if n < 1024 {
            return write!(f, "{n} B");
        }
        let mut unit = 1;
        while unit < 6 && n >> (10 * (unit + 1)) > 0 {
            unit += 1;
        }
        let tenths = (n * 10) >> (10 * unit);
        write!(f, "{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// `used / slots` as a percentage to a tenth, rounded down (so "100.0 %"
/// means full): "38.2 %".
pub(crate) struct Percent(pub usize, pub usize);

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let permille = if self.1 == 0 { 0 } else { self.0 as u128 * 1000 / self.1 as u128 };
        write!(f, "{}.{} %", permille / 10, permille % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// The table walk behind `stats` on a small table with every kind of
    /// slot (also run under Miri, which checks the walk's raw reads).
    #[test]
    fn walk_on_a_tiny_table() {
        use crate::Level;
        use crate::geometry::{Custom, Large};
        use typenum::{U3, U12};
        type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
        let mut t: MemTable<alloc::string::String, Tiny> = MemTable::new();
        for i in 0..20u64 {
            t.insert(i << 12, alloc::format!("{i}")).unwrap();
        }
        t.insert_at(0x10_0000, Level::new(1), "large".into()).unwrap();
        let s = t.stats();
        assert_eq!([s.level(0).entries, s.level(1).entries, s.level(2).entries], [20, 1, 0]);
        assert_eq!([s.level(0).nodes, s.level(1).nodes, s.level(2).nodes], [3, 2, 1]);
        assert_eq!([s.level(0).used, s.level(1).used, s.level(2).used], [20, 4, 2]);
        let summary = alloc::format!("{t:?}");
        assert!(
            summary.starts_with("MemTable { len: 21, levels: [L0: 20 entries, 3 tables, fill 83.3 %, "),
            "{summary}"
        );
        let picture = t.occupancy().to_string();
        // Rows of 256 KiB (level 2), cells of 32 KiB (level 1): 20 pages fill
        // two cells and half a third; the large entry is at 1 MiB, row 4.
        let rows: alloc::vec::Vec<&str> = picture.lines().skip(1).take(3).collect();
        assert_eq!(rows, ["0x00_0000 |██▒     |", "...", "0x10_0000 |L       |"], "{picture}");
    }

    #[test]
    fn units() {
        assert_eq!(SizeName(4096).to_string(), "4 KiB");
        assert_eq!(SizeName(1 << 39).to_string(), "512 GiB");
        assert_eq!(SizeName(1 << 63).to_string(), "8 EiB");
        assert_eq!(Bytes(1023).to_string(), "1023 B");
        assert_eq!(Bytes(1536).to_string(), "1.5 KiB");
        assert_eq!(Bytes(8 << 20).to_string(), "8.0 MiB");
        assert_eq!(Percent(1, 3).to_string(), "33.3 %");
        assert_eq!(Percent(511, 512).to_string(), "99.8 %");
        assert_eq!(Percent(0, 0).to_string(), "0.0 %");
    }
}
