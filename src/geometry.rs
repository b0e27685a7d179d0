//! Page-table geometries as types.
//!
//! A geometry says how an address is cut into table indices: the base page
//! shift, the width in bits of every level from the bottom up, and which levels
//! may hold large-page entries. It is a type, not a value, so every depth of a
//! [`MemTable`](crate::MemTable) is its own node type whose shift and mask are
//! compile-time constants.
//!
//! ```
//! use mem_table::geometry::{Custom, Geometry, Large, X86_4Level};
//! use mem_table::typenum::{U9, U12};
//!
//! // The x86-64 4-level table, spelled out: the bottom level first.
//! type Same = Custom<U12, (U9, Large<U9>, Large<U9>, U9)>;
//! assert_eq!(Same::ADDRESS_BITS, X86_4Level::ADDRESS_BITS);
//! assert_eq!(X86_4Level::ADDRESS_BITS, 48);
//! assert_eq!(X86_4Level::page_size(mem_table::Level::new(1)), Some(2 << 20));
//! ```
//!
//! A level is written as a [typenum] width (`U9`) when its
//! slots only point at tables, or as [`Large<U9>`](Large) when its slots may
//! also hold large-page entries. The bottom level always holds base pages, so
//! it is always a plain width. Between one and [`MAX_LEVELS`] levels, each
//! between 1 and [`MAX_LEVEL_BITS`] bits wide, and at most 64 address bits in
//! all: anything else fails to compile.
//!
//! ```compile_fail
//! use mem_table::{MemTable, geometry::Custom, typenum::{U60, U9}};
//! // 60 + 9 + 9 address bits do not fit in a u64.
//! let t: MemTable<u8, Custom<U60, (U9, U9)>> = MemTable::new();
//! ```

use core::convert::Infallible;
use core::marker::PhantomData;
use core::ops::{Add, Div, Shl};

use generic_array::ArrayLength;
use typenum::operator_aliases::{Quot, Shleft, Sum};
use typenum::{Bit, U1, U63, U64, UInt, Unsigned};

use crate::Level;
use crate::raw::Tree;

/// The deepest table a geometry may describe.
pub const MAX_LEVELS: usize = 8;

/// The widest level a geometry may describe: 2^16 slots per table.
pub const MAX_LEVEL_BITS: u32 = 16;

mod sealed {
    pub trait Sealed {}
}

/// The width of one level, in bits: a non-zero typenum unsigned such as `U9`.
///
/// Implemented for every non-zero typenum unsigned; the associated types are
/// the fan-out (`2^bits` slots) and the number of 64-bit words in a bitmap of
/// one bit per slot, computed at the type level.
pub trait Width: sealed::Sealed + Unsigned + 'static {
    #[doc(hidden)]
    type Fanout: ArrayLength;
    #[doc(hidden)]
    type Words: ArrayLength;
}

impl<U: Unsigned, B: Bit> sealed::Sealed for UInt<U, B> {}

// Fanout = 1 << W and Words = ceil(Fanout / 64), spelled in typenum. The
// bounds only restate that the arithmetic is defined; every concrete width
// satisfies them.
impl<U: Unsigned + 'static, B: Bit + 'static> Width for UInt<U, B>
where
    U1: Shl<UInt<U, B>>,
    Shleft<U1, UInt<U, B>>: ArrayLength + Add<U63>,
    Sum<Shleft<U1, UInt<U, B>>, U63>: Div<U64>,
    Quot<Sum<Shleft<U1, UInt<U, B>>, U63>, U64>: ArrayLength,
{
    type Fanout = Shleft<U1, UInt<U, B>>;
    type Words = Quot<Sum<Shleft<U1, UInt<U, B>>, U63>, U64>;
}

/// A level whose slots may hold large-page entries as well as tables.
///
/// Used inside a [`Custom`] level list: `Large<U9>` is a 9-bit level whose
/// entries may be large pages (x86's 2 MiB and 1 GiB levels, ARM's blocks).
/// Uninhabited: it is only ever a type.
pub struct Large<W: Width>(Infallible, PhantomData<W>);

/// One entry of a [`Custom`] level list: a [`Width`] or a [`Large`] width.
pub trait LevelSpec: sealed::Sealed + 'static {
    #[doc(hidden)]
    type Width: Width;
    #[doc(hidden)]
    const LARGE: bool;
}

impl<W: Width> LevelSpec for W {
    type Width = W;
    const LARGE: bool = false;
}

impl<W: Width> sealed::Sealed for Large<W> {}
impl<W: Width> LevelSpec for Large<W> {
    type Width = W;
    const LARGE: bool = true;
}

/// The bottom level of a chain: base pages of `2^PS` bytes, `W` bits wide.
#[doc(hidden)]
pub struct Bottom<W, PS>(Infallible, PhantomData<(W, PS)>);

/// A level above `D`, described by `S`.
#[doc(hidden)]
pub struct Upper<S, D>(Infallible, PhantomData<(S, D)>);

/// Constants of one level of a chain and of everything below it.
///
/// "This node" below means a table at this level: its slots hold entries of
/// this level, its children are tables of the level below.
#[doc(hidden)]
pub trait Shape: 'static {
    /// The level number: 0 at the bottom.
    const LEVEL: u8;
    /// Shift of this node's index in an address: the log2 of its entries' size.
    const SHIFT: u32;
    /// Bits of index this node consumes.
    const BITS: u32;
    /// Whether this node's slots may hold entries (always at the bottom).
    const LARGE: bool;
    /// Levels from this one down, this one included.
    const DEPTH: usize;
    /// Entry shift of every level, indexed by level; zero past `DEPTH`.
    const SHIFTS: [u32; MAX_LEVELS];
    /// Index bits of every level, indexed by level; zero past `DEPTH`.
    const WIDTHS: [u32; MAX_LEVELS];
    /// Bit `l` set when level `l` may hold entries.
    const LARGE_MASK: u32;
    /// Whether every level is within the limits (see [`Geometry::VALID`]).
    const WIDTHS_OK: bool;
    /// Slots in this node.
    const FANOUT: usize = 1 << Self::BITS;
    /// Index mask (after shifting) of this node.
    const MASK: u64 = (1 << Self::BITS) - 1;
}

impl<W: Width, PS: Unsigned + 'static> Shape for Bottom<W, PS> {
    const LEVEL: u8 = 0;
    const SHIFT: u32 = PS::U32;
    const BITS: u32 = W::U32;
    const LARGE: bool = true;
    const DEPTH: usize = 1;
    const SHIFTS: [u32; MAX_LEVELS] = {
        let mut s = [0; MAX_LEVELS];
        s[0] = PS::U32;
        s
    };
    const WIDTHS: [u32; MAX_LEVELS] = {
        let mut s = [0; MAX_LEVELS];
        s[0] = W::U32;
        s
    };
    const LARGE_MASK: u32 = 1;
    const WIDTHS_OK: bool = W::U32 >= 1 && W::U32 <= MAX_LEVEL_BITS && PS::U32 < 64;
}

impl<S: LevelSpec, D: Shape> Shape for Upper<S, D> {
    const LEVEL: u8 = D::LEVEL + 1;
    const SHIFT: u32 = D::SHIFT + D::BITS;
    const BITS: u32 = <S::Width as Unsigned>::U32;
    const LARGE: bool = S::LARGE;
    const DEPTH: usize = D::DEPTH + 1;
    const SHIFTS: [u32; MAX_LEVELS] = {
        let mut s = D::SHIFTS;
        if Self::DEPTH <= MAX_LEVELS {
            s[Self::LEVEL as usize] = Self::SHIFT;
        }
        s
    };
    const WIDTHS: [u32; MAX_LEVELS] = {
        let mut s = D::WIDTHS;
        if Self::DEPTH <= MAX_LEVELS {
            s[Self::LEVEL as usize] = Self::BITS;
        }
        s
    };
    const LARGE_MASK: u32 = D::LARGE_MASK | ((S::LARGE as u32) << Self::LEVEL);
    const WIDTHS_OK: bool = D::WIDTHS_OK && Self::BITS >= 1 && Self::BITS <= MAX_LEVEL_BITS;
}

/// A bottom-up list of levels for [`Custom`]: a tuple of one to eight
/// [`LevelSpec`]s, the first a plain [`Width`].
#[allow(private_bounds)] // `Tree` is sealed: nameable inside the crate only.
pub trait Levels<PS>: sealed::Sealed + 'static {
    #[doc(hidden)]
    type Top: Tree;
}

/// Implements [`Levels`] for one tuple arity: `(L0, L1, ..., Ln)` maps to
/// `Upper<Ln, ... Upper<L1, Bottom<L0, PS>>>`.
macro_rules! impl_levels {
    ($top:ty; $($l:ident),+) => {
        impl<L0: Width, $($l: LevelSpec),+> sealed::Sealed for (L0, $($l),+) {}
        impl<PS: Unsigned + 'static, L0: Width, $($l: LevelSpec),+> Levels<PS> for (L0, $($l),+) {
            type Top = $top;
        }
    };
}

impl<L0: Width> sealed::Sealed for (L0,) {}
impl<PS: Unsigned + 'static, L0: Width> Levels<PS> for (L0,) {
    type Top = Bottom<L0, PS>;
}
impl_levels!(Upper<L1, Bottom<L0, PS>>; L1);
impl_levels!(Upper<L2, Upper<L1, Bottom<L0, PS>>>; L1, L2);
impl_levels!(Upper<L3, Upper<L2, Upper<L1, Bottom<L0, PS>>>>; L1, L2, L3);
impl_levels!(Upper<L4, Upper<L3, Upper<L2, Upper<L1, Bottom<L0, PS>>>>>; L1, L2, L3, L4);
impl_levels!(
    Upper<L5, Upper<L4, Upper<L3, Upper<L2, Upper<L1, Bottom<L0, PS>>>>>>;
    L1, L2, L3, L4, L5
);
impl_levels!(
    Upper<L6, Upper<L5, Upper<L4, Upper<L3, Upper<L2, Upper<L1, Bottom<L0, PS>>>>>>>;
    L1, L2, L3, L4, L5, L6
);
impl_levels!(
    Upper<L7, Upper<L6, Upper<L5, Upper<L4, Upper<L3, Upper<L2, Upper<L1, Bottom<L0, PS>>>>>>>>;
    L1, L2, L3, L4, L5, L6, L7
);

/// A page-table geometry: how addresses are cut into table indices.
///
/// Sealed: use one of the shipped geometries ([`X86_4Level`], [`X86_5Level`],
/// the [catalogue](crate::geometries#shipped-geometries)) or describe your own
/// with [`Custom`].
#[allow(private_bounds)] // `Tree` is sealed: nameable inside the crate only.
pub trait Geometry: sealed::Sealed + 'static {
    #[doc(hidden)]
    type Top: Tree;

    /// log2 of the base page size.
    const PAGE_SHIFT: u32 = Self::Top::SHIFTS[0];
    /// Number of levels.
    const LEVELS: usize = Self::Top::DEPTH;
    /// Address bits the table covers; addresses at or above `2^ADDRESS_BITS`
    /// are out of reach.
    const ADDRESS_BITS: u32 = Self::Top::SHIFT + Self::Top::BITS;
    /// Bit `l` set when level `l` may hold entries (bit 0 always is).
    const ENTRY_LEVELS: u32 = Self::Top::LARGE_MASK;

    /// Compile-time proof that the geometry is valid: one to [`MAX_LEVELS`]
    /// levels, each 1 to [`MAX_LEVEL_BITS`] bits wide, at most 64 address bits.
    /// Evaluated (and a build error if false) whenever a table is created.
    const VALID: () = assert!(
        Self::Top::DEPTH >= 1
            && Self::Top::DEPTH <= MAX_LEVELS
            && Self::Top::WIDTHS_OK
            && Self::Top::SHIFT + Self::Top::BITS <= 64,
        "invalid mem-table geometry: 1 to 8 levels of 1 to 16 bits, at most 64 address bits"
    );

    /// The number of levels, as [`Level`]s: `Level::new(0)` to `top_level()`.
    fn top_level() -> Level {
        Level::new(Self::LEVELS as u8 - 1)
    }

    /// log2 of the size of an entry at `level`, or `None` past the top.
    fn page_shift(level: Level) -> Option<u32> {
        let l = level.index();
        (l < Self::LEVELS).then(|| Self::Top::SHIFTS[l])
    }

    /// The size in bytes of an entry at `level`, or `None` past the top or
    /// when it would be `2^64`.
    fn page_size(level: Level) -> Option<u64> {
        Self::page_shift(level).and_then(|s| 1u64.checked_shl(s))
    }

    /// Whether `level` may hold entries (base pages at level 0, large pages
    /// above).
    fn holds_entries(level: Level) -> bool {
        level.index() < Self::LEVELS && Self::ENTRY_LEVELS & (1 << level.index()) != 0
    }

    /// Whether `addr` is below the geometry's reach.
    #[inline(always)]
    fn in_reach(addr: u64) -> bool {
        Self::ADDRESS_BITS >= 64 || addr >> Self::ADDRESS_BITS == 0
    }
}

/// A geometry built from a page shift and a bottom-up list of levels.
///
/// `PS` is the log2 of the base page size as a typenum unsigned (`U12` for
/// 4 KiB); `L` is a tuple of levels from the bottom up, each a width (`U9`) or
/// a [`Large`] width. Uninhabited: only ever a type.
///
/// ```
/// use mem_table::{MemTable, geometry::{Custom, Large}, typenum::{U3, U12}};
/// // Three 3-bit levels over 4 KiB pages; the middle one holds large entries.
/// type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
/// let mut t: MemTable<u32, Tiny> = MemTable::new();
/// t.insert(0x1000, 7).unwrap();
/// assert_eq!(t.get(0x1fff), Some(&7));
/// ```
pub struct Custom<PS, L>(Infallible, PhantomData<(PS, L)>);

impl<PS: Unsigned + 'static, L: Levels<PS>> sealed::Sealed for Custom<PS, L> {}
impl<PS: Unsigned + 'static, L: Levels<PS>> Geometry for Custom<PS, L> {
    type Top = L::Top;
}

/// x86-64 4-level paging: 4 KiB pages, four 9-bit levels, 48-bit addresses,
/// large entries at 2 MiB (level 1) and 1 GiB (level 2). The default.
pub type X86_4Level =
    Custom<typenum::U12, (typenum::U9, Large<typenum::U9>, Large<typenum::U9>, typenum::U9)>;

/// x86-64 5-level paging: as [`X86_4Level`] with a fifth 9-bit level, 57-bit
/// addresses.
pub type X86_5Level =
    Custom<typenum::U12, (typenum::U9, Large<typenum::U9>, Large<typenum::U9>, typenum::U9, typenum::U9)>;
