//! [`Error`] and [`ErrorKind`]: why an operation was refused.

use core::fmt;

use crate::page::Level;

/// Why an operation was refused. Every refusal leaves the table exactly as
/// it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The address is not aligned to the page size of the level the
    /// operation acts on (or a range bound is not aligned to a base page).
    Misaligned,
    /// The address is at or above `2^ADDRESS_BITS` of the geometry.
    OutOfReach,
    /// The level cannot hold entries: it is past the top, or the geometry
    /// allows no large pages there (or, for a split, at the level below).
    NoEntriesAtLevel,
    /// A larger entry covers the place: the table never splits one
    /// implicitly. [`Error::level`] is the larger entry's level.
    ConflictLarger,
    /// Smaller entries lie inside the large page being inserted: the table
    /// never discards them implicitly.
    ConflictSmaller,
    /// [`split`](crate::MemTable::split): there is no large entry at that
    /// address and level.
    NothingToSplit,
    /// [`merge`](crate::MemTable::merge): there is no table under that entry,
    /// it is not full, it holds tables, or the merge operation declined.
    NotMergeable,
    /// The backend had no node to give (a full [`Pool`](crate::backend::Pool),
    /// or the allocator refused). [`Error::level`] is the level that ran out.
    OutOfNodes,
    /// A range is empty or reversed.
    EmptyRange,
}

impl ErrorKind {
    fn describe(self) -> &'static str {
        match self {
            ErrorKind::Misaligned => "address not aligned to the page size of the level",
            ErrorKind::OutOfReach => "address beyond the reach of the geometry",
            ErrorKind::NoEntriesAtLevel => "level cannot hold entries",
            ErrorKind::ConflictLarger => "a larger entry covers the address",
            ErrorKind::ConflictSmaller => "smaller entries lie inside the page",
            ErrorKind::NothingToSplit => "no large entry to split",
            ErrorKind::NotMergeable => "the table cannot be merged",
            ErrorKind::OutOfNodes => "out of table nodes",
            ErrorKind::EmptyRange => "empty range",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A refused operation: what went wrong, where, and the value handed back.
///
/// `T` is the value the operation was given (`()` for operations that take
/// none). The table is exactly as it was before the call.
///
/// ```
/// use mem_table::{ErrorKind, Level, MemTable};
/// let mut t: MemTable<&str> = MemTable::new();
/// t.insert_at(0x20_0000, Level::new(1), "big").unwrap();
/// let err = t.insert(0x20_1000, "small").unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ConflictLarger);
/// assert_eq!(err.addr(), 0x20_0000);
/// assert_eq!(err.level(), Level::new(1));
/// assert_eq!(err.to_string(), "a larger entry covers the address: 0x200000 at level 1");
/// assert_eq!(err.into_value(), "small");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error<T = ()> {
    kind: ErrorKind,
    addr: u64,
    level: Level,
    value: T,
}

impl<T> Error<T> {
    pub(crate) fn new(kind: ErrorKind, addr: u64, level: Level, value: T) -> Self {
        Error { kind, addr, level, value }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The address concerned: the one given, or for a conflict the first
    /// address of the conflicting entry or page.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The level concerned: the one given, or as [`ErrorKind`] says.
    pub fn level(&self) -> Level {
        self.level
    }

    /// The value handed back.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// Takes the value back.
    pub fn into_value(self) -> T {
        self.value
    }

    /// The same error without its value.
    pub fn without_value(self) -> Error {
        Error { kind: self.kind, addr: self.addr, level: self.level, value: () }
    }

    /// The same error with the value `value`.
    pub(crate) fn with_value<U>(self, value: U) -> Error<U> {
        Error { kind: self.kind, addr: self.addr, level: self.level, value }
    }
}

impl<T> fmt::Debug for Error<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("addr", &format_args!("{:#x}", self.addr))
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for Error<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {:#x} at {}", self.kind, self.addr, self.level)
    }
}

impl<T> core::error::Error for Error<T> {}
