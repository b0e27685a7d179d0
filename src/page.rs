//! [`Level`] and [`Page`]: where an entry sits in the table.

use core::fmt;

/// A level of the table: 0 is the base-page level, each level above covers
/// `2^bits` entries of the one below.
///
/// On [`X86_4Level`](crate::geometry::X86_4Level), level 0 holds 4 KiB pages,
/// level 1 holds 2 MiB pages and level 2 holds 1 GiB pages. Every shipped
/// geometry names its levels that hold entries after their size
/// ([`X86_4Level::L2M`](crate::geometry::X86_4Level::L2M),
/// [`X86_32Bit::L4M`](crate::geometries::X86_32Bit::L4M), ...; see
/// [named levels](crate::geometry#named-levels)); the names are `Level`
/// constants.
///
/// ```
/// use mem_table::{Level, X86_4Level};
/// assert_eq!(Level::BASE.index(), 0);
/// assert_eq!(Level::new(2).below(), Some(Level::new(1)));
/// assert_eq!(Level::BASE.below(), None);
/// assert_eq!(X86_4Level::L2M, Level::new(1));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Level(u8);

impl Level {
    /// The base-page level.
    pub const BASE: Level = Level(0);

    /// The level numbered `n` from the bottom.
    pub const fn new(n: u8) -> Level {
        Level(n)
    }

    /// The level's number, 0 at the bottom.
    pub const fn index(self) -> usize {
        self.0 as usize
    }

    /// The level one down, or `None` at the base level.
    pub const fn below(self) -> Option<Level> {
        match self.0 {
            0 => None,
            n => Some(Level(n - 1)),
        }
    }

    /// The level one up (which may be past the top of a given geometry;
    /// [`Level::new(255)`](Level::new) is its own level above, as no
    /// geometry reaches it).
    ///
    /// ```
    /// use mem_table::Level;
    /// assert_eq!(Level::BASE.above(), Level::new(1));
    /// assert_eq!(Level::new(255).above(), Level::new(255));
    /// ```
    pub const fn above(self) -> Level {
        Level(self.0.saturating_add(1))
    }
}

impl fmt::Debug for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "L{}", self.0)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "level {}", self.0)
    }
}

/// An entry's place: its base address, its level and the log2 of its size.
///
/// This is the key the table hands back from lookups and iteration.
///
/// ```
/// use mem_table::{Level, MemTable};
/// let mut t: MemTable<&str> = MemTable::new();
/// t.insert_at(0x20_0000, Level::new(1), "2 MiB").unwrap();
/// let (page, _) = t.get_key_value(0x20_1234).unwrap();
/// assert_eq!(page.addr(), 0x20_0000);
/// assert_eq!(page.level(), Level::new(1));
/// assert_eq!(page.size(), 2 << 20);
/// assert_eq!(page.last(), 0x3f_ffff);
/// assert!(page.contains(0x3f_ffff) && !page.contains(0x40_0000));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Page {
    addr: u64,
    level: Level,
    shift: u8,
}

impl Page {
    pub(crate) const fn new(addr: u64, level: u8, shift: u32) -> Page {
        Page { addr, level: Level(level), shift: shift as u8 }
    }

    /// The first address of the page.
    pub const fn addr(self) -> u64 {
        self.addr
    }

    /// The page's level.
    pub const fn level(self) -> Level {
        self.level
    }

    /// log2 of the page's size in bytes.
    pub const fn shift(self) -> u32 {
        self.shift as u32
    }

    /// The page's size in bytes. (An entry is always smaller than the
    /// address space, so this never overflows.)
    pub const fn size(self) -> u64 {
        1 << self.shift
    }

    /// The last address of the page (inclusive, so it never overflows, even
    /// for the last page of a 64-bit space).
    pub const fn last(self) -> u64 {
        self.addr + (self.size() - 1)
    }

    /// Whether `addr` lies inside the page.
    pub const fn contains(self, addr: u64) -> bool {
        addr >= self.addr && addr <= self.last()
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}@{:?}", self.addr, self.level)
    }
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..={:#x} ({})", self.addr, self.last(), self.level)
    }
}
