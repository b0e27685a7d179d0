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
//! assert_eq!(X86_4Level::page_size(X86_4Level::L2M), Some(2 << 20));
//! ```
//!
//! # The rules
//!
//! A level is written as a [typenum] width (`U9`) when its slots only point
//! at tables, or as [`Large<U9>`](Large) when its slots may also hold
//! large-page entries. A [`Custom`] geometry is valid when
//!
//! - it has 1 to [`MAX_LEVELS`] levels, given as a tuple from the bottom up
//!   (one level is `(U9,)`);
//! - every level is 1 to [`MAX_LEVEL_BITS`] bits wide;
//! - the bottom level is a plain width: it always holds base pages, and
//!   `Large<_>` is for the levels above it;
//! - the page shift is at most 63, and the page shift plus the widths of all
//!   levels is at most 64 address bits.
//!
//! Each rule is a trait bound of the [`Geometry`] implementation, so an
//! invalid geometry fails `cargo check`, with an error that states the rule
//! it broke, wherever it is used as a geometry: as the type of a
//! [`MemTable`](crate::MemTable), or for a constant or method of
//! [`Geometry`]. An invalid geometry has no [`Geometry`] constant or method
//! at all. (Named as `Custom<…>::ADDRESS_BITS` rather than
//! `<Custom<…> as Geometry>::ADDRESS_BITS`, rustc reports only that the
//! geometry is not a `ValidGeometry`; the other spellings name the rule.)
//!
//! ```compile_fail,E0277
//! use mem_table::{MemTable, geometry::Custom, typenum::{U60, U9}};
//! // 60 + 9 + 9 address bits do not fit in a u64:
//! // error: page shift plus the level widths must be at most 64 address bits
//! let t: MemTable<u8, Custom<U60, (U9, U9)>> = MemTable::new();
//! ```
//!
//! ```compile_fail,E0277
//! use mem_table::geometry::{Custom, Geometry, Large};
//! use mem_table::typenum::{U9, U12};
//! // error: the bottom level cannot hold large entries (`Large<_>` is for upper levels)
//! let _ = <Custom<U12, (Large<U9>, U9)> as Geometry>::ADDRESS_BITS;
//! ```
//!
//! # Named levels
//!
//! A [`Level`] is a number, 0 at the bottom. Each shipped geometry also
//! names the levels that may hold entries by the size of those entries:
//! [`X86_4Level::L4K`], [`X86_4Level::L2M`] and [`X86_4Level::L1G`], and in
//! the [catalogue](crate::geometries#named-levels) `X86_32Bit::L4M`,
//! `Aarch64_64K::L512M`, `RiscvSv48::L512G` and so on. They are constants of
//! type [`Level`], so they go wherever a `Level` does:
//!
//! ```
//! use mem_table::{MemTable, geometry::X86_4Level};
//!
//! let mut t: MemTable<&str, X86_4Level> = MemTable::new();
//! t.insert_at(0x20_0000, X86_4Level::L2M, "one 2 MiB page").unwrap();
//! assert_eq!(t.get_key_value(0x3f_ffff).unwrap().0.level(), X86_4Level::L2M);
//! ```
//!
//! A name exists only on the geometries that have a level of that size
//! which may hold entries, so a wrong one is a compile error:
//!
//! ```compile_fail,E0599
//! use mem_table::geometries::X86_32Bit;
//! let _ = X86_32Bit::L1G; // 32-bit paging has no 1 GiB pages
//! ```
//!
//! The names are plain constants rather than x86_64-crate-style marker
//! types (`Size2MiB`) because every table method takes a [`Level`]. Being
//! plain values, they do not carry their geometry: `X86_4Level::L2M` is
//! level 1 on any table. Several aliases may be one type ([`X86_4Level`]
//! and [`Aarch64_4K`](crate::geometries::Aarch64_4K) are), and then share
//! their names; the names are by size, so they agree. A [`Custom`] geometry
//! spelled like a shipped one gets its names too. For any geometry,
//! [`Level::BASE`], [`Geometry::TOP`] and [`Geometry::level_for_size`] give
//! levels generically.

use core::convert::Infallible;
use core::marker::PhantomData;
use core::ops::{Add, BitAnd, BitOr};

use typenum::operator_aliases::{And, Gr, GrEq, Le, LeEq, Or, Sum};
use typenum::{B0, B1, Bit, IsGreater, IsGreaterOrEqual, IsLess, IsLessOrEqual, U0, U16, U64, Unsigned};

use crate::Level;
use crate::raw::Tree;

/// The deepest table a geometry may describe.
pub const MAX_LEVELS: usize = 8;

/// The widest level a geometry may describe: 2^16 slots per table.
pub const MAX_LEVEL_BITS: u32 = 16;

// ---------------------------------------------------------------------------
// The rules, one trait each
// ---------------------------------------------------------------------------

/// The rules a [`Custom`] geometry must follow, as traits implemented only
/// for typenum's `True` (`B1`): a rule's condition is computed with typenum
/// into a `B0` or a `B1`, and bound to implement the rule's trait. Breaking a
/// rule leaves a trait unimplemented, and the trait's message states the
/// rule. Everything here is crate-private: nameable in bounds, not from
/// outside.
mod rules {
    /// A level's width is 1 to 16 bits.
    #[diagnostic::on_unimplemented(
        message = "a level's width must be 1 to 16 bits",
        label = "this geometry has a level of 0 or more than 16 bits",
        note = "write every level as `U1` to `U16`, or `Large<U1>` to `Large<U16>`"
    )]
    pub(crate) trait LevelWidthIs1To16Bits {}
    impl LevelWidthIs1To16Bits for super::B1 {}

    /// The bottom level is a plain width.
    #[diagnostic::on_unimplemented(
        message = "the bottom level cannot hold large entries (`Large<_>` is for upper levels)",
        label = "this geometry's first (bottom) level is a `Large<_>`",
        note = "the bottom level always holds base pages: write it as a plain width, such as `U9`"
    )]
    pub(crate) trait BottomLevelIsNotLarge {}
    impl BottomLevelIsNotLarge for super::B0 {}

    /// The page shift is at most 63.
    #[diagnostic::on_unimplemented(
        message = "the page shift must be at most 63",
        label = "this geometry's pages are 2^64 bytes or more",
        note = "the first parameter of `Custom` is the log2 of the base page size: `U12` for 4 KiB"
    )]
    pub(crate) trait PageShiftIsAtMost63 {}
    impl PageShiftIsAtMost63 for super::B1 {}

    /// The address fits in 64 bits.
    #[diagnostic::on_unimplemented(
        message = "page shift plus the level widths must be at most 64 address bits",
        label = "this geometry's addresses are wider than 64 bits",
        note = "addresses are `u64`: narrow a level, drop one, or use a smaller page shift"
    )]
    pub(crate) trait AddressBitsAreAtMost64 {}
    impl AddressBitsAreAtMost64 for super::B1 {}
}

use rules::{AddressBitsAreAtMost64, BottomLevelIsNotLarge, LevelWidthIs1To16Bits, PageShiftIsAtMost63};

/// `B1` when `W` is a width of 1 to 16 bits.
type WidthOk<W> = And<Gr<W, U0>, LeEq<W, U16>>;

// ---------------------------------------------------------------------------
// Levels
// ---------------------------------------------------------------------------

/// A level whose slots may hold large-page entries as well as tables.
///
/// Used inside a [`Custom`] level list: `Large<U9>` is a 9-bit level whose
/// entries may be large pages (x86's 2 MiB and 1 GiB levels, ARM's blocks).
/// Never the bottom level, which always holds base pages. Uninhabited: it is
/// only ever a type.
pub struct Large<W>(Infallible, PhantomData<W>);

/// One entry of a [`Custom`] level list, valid or not: a typenum width
/// (`U9`) or a [`Large`] one (`Large<U9>`). [`LevelSpec`] adds the rule.
#[diagnostic::on_unimplemented(
    message = "a level must be a width `U1` to `U16`, or `Large<U1>` to `Large<U16>`",
    label = "this geometry has a level that is neither a typenum width nor a `Large<_>` one"
)]
pub(crate) trait Spec: 'static {
    /// The width in bits.
    type Width: Unsigned;
    /// `B1` for a [`Large`] level.
    type IsLarge: Bit;
    /// Whether the level's slots may hold entries.
    const LARGE: bool = <Self::IsLarge as Bit>::BOOL;
}

impl<W: Unsigned + 'static> Spec for W {
    type Width = W;
    type IsLarge = B0;
}

impl<W: Unsigned + 'static> Spec for Large<W> {
    type Width = W;
    type IsLarge = B1;
}

/// A valid [`Spec`]: 1 to 16 bits wide.
pub(crate) trait LevelSpec: Spec {}

impl<S: Spec> LevelSpec for S
where
    S::Width: IsGreater<U0> + IsLessOrEqual<U16>,
    Gr<S::Width, U0>: BitAnd<LeEq<S::Width, U16>>,
    WidthOk<S::Width>: LevelWidthIs1To16Bits,
{
}

/// The bottom level of a chain: base pages of `2^PS` bytes, `W` bits wide.
pub(crate) struct Bottom<W, PS>(Infallible, PhantomData<(W, PS)>);

/// A level above `D`, described by `S`.
pub(crate) struct Upper<S, D>(Infallible, PhantomData<(S, D)>);

/// Constants of one level of a chain and of everything below it.
///
/// "This node" below means a table at this level: its slots hold entries of
/// this level, its children are tables of the level below.
pub(crate) trait Shape: 'static {
    /// The level number: 0 at the bottom.
    const LEVEL: u8;
    /// Shift of this node's index in an address: the log2 of its entries' size.
    const SHIFT: u32;
    /// Bits of index this node consumes.
    const BITS: u32;
    /// Levels from this one down, this one included.
    const DEPTH: usize;
    /// Entry shift of every level, indexed by level; zero past `DEPTH`.
    const SHIFTS: [u32; MAX_LEVELS];
    /// Index bits of every level, indexed by level; zero past `DEPTH`.
    const WIDTHS: [u32; MAX_LEVELS];
    /// Bit `l` set when level `l` may hold entries.
    const LARGE_MASK: u32;
    /// Whether every level is within the limits (restates the trait-level
    /// rules; see [`ValidGeometry::VALID`]).
    const WIDTHS_OK: bool;
}

impl<W: Spec, PS: Unsigned + 'static> Shape for Bottom<W, PS> {
    const LEVEL: u8 = 0;
    const SHIFT: u32 = PS::U32;
    const BITS: u32 = <W::Width as Unsigned>::U32;
    const DEPTH: usize = 1;
    const SHIFTS: [u32; MAX_LEVELS] = {
        let mut s = [0; MAX_LEVELS];
        s[0] = PS::U32;
        s
    };
    const WIDTHS: [u32; MAX_LEVELS] = {
        let mut s = [0; MAX_LEVELS];
        s[0] = Self::BITS;
        s
    };
    const LARGE_MASK: u32 = 1;
    const WIDTHS_OK: bool = Self::BITS >= 1 && Self::BITS <= MAX_LEVEL_BITS && PS::U32 < 64 && !W::LARGE;
}

impl<S: Spec, D: Shape> Shape for Upper<S, D> {
    const LEVEL: u8 = D::LEVEL + 1;
    const SHIFT: u32 = D::SHIFT + D::BITS;
    const BITS: u32 = <S::Width as Unsigned>::U32;
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

/// The address bits of a chain, as a typenum: the page shift plus every
/// level's width.
pub(crate) trait Reach {
    /// Page shift plus the widths of this level and every level below.
    type Bits: Unsigned;
}

impl<W: Spec, PS: Unsigned + Add<W::Width>> Reach for Bottom<W, PS>
where
    Sum<PS, W::Width>: Unsigned,
{
    type Bits = Sum<PS, W::Width>;
}

impl<S: Spec, D: Reach> Reach for Upper<S, D>
where
    D::Bits: Add<S::Width>,
    Sum<D::Bits, S::Width>: Unsigned,
{
    type Bits = Sum<D::Bits, S::Width>;
}

/// A bottom-up list of levels for [`Custom`]: a tuple of one to eight
/// [`LevelSpec`]s, the first a plain width.
#[diagnostic::on_unimplemented(
    message = "a geometry has 1 to 8 levels",
    label = "the levels of this geometry are not a tuple of 1 to 8 levels",
    note = "list the levels as a tuple from the bottom up: `(U9,)` for one level, up to eight"
)]
pub(crate) trait OneToEightLevels<PS>: 'static {
    /// The chain: the top level, with every level below it inside.
    type Top: Tree + Reach;
}

/// Implements [`OneToEightLevels`] for one tuple arity: `(L0, L1, ..., Ln)` maps to
/// `Upper<Ln, ... Upper<L1, Bottom<L0, PS>>>`.
macro_rules! impl_levels {
    ($top:ty; $($l:ident),*) => {
        impl<PS, L0, $($l),*> OneToEightLevels<PS> for (L0, $($l),*)
        where
            PS: Unsigned + 'static,
            L0: LevelSpec,
            L0::IsLarge: BottomLevelIsNotLarge,
            $($l: LevelSpec,)*
            $top: Tree + Reach,
        {
            type Top = $top;
        }
    };
}

impl_levels!(Bottom<L0, PS>;);
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

// ---------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------

/// What the crate needs from a geometry and no user may name: the chain of
/// levels. Crate-private, so it also seals [`Geometry`].
pub(crate) trait ValidGeometry: 'static {
    /// The chain: the top level, with every level below it inside.
    type Top: Tree;

    /// A second, const-evaluated statement of the rules that the trait
    /// bounds of every implementation enforce. Evaluated whenever a table
    /// is created; it cannot fail for a geometry that compiled.
    const VALID: () = assert!(
        Self::Top::DEPTH >= 1
            && Self::Top::DEPTH <= MAX_LEVELS
            && Self::Top::WIDTHS_OK
            && Self::Top::SHIFT + Self::Top::BITS <= 64,
        "invalid mem-table geometry: 1 to 8 levels of 1 to 16 bits, at most 64 address bits"
    );
}

/// A page-table geometry: how addresses are cut into table indices.
///
/// Sealed: use one of the shipped geometries ([`X86_4Level`], [`X86_5Level`],
/// the [catalogue](crate::geometries#shipped-geometries)) or describe your own
/// with [`Custom`]. Only a geometry that follows [the rules](self#the-rules)
/// implements it.
#[allow(private_bounds)] // `ValidGeometry` is crate-private: it seals the trait.
pub trait Geometry: ValidGeometry {
    /// log2 of the base page size.
    const PAGE_SHIFT: u32 = Self::Top::SHIFTS[0];
    /// Number of levels.
    const LEVELS: usize = Self::Top::LEVEL as usize + 1;
    /// Address bits the table covers; addresses at or above `2^ADDRESS_BITS`
    /// are out of reach.
    const ADDRESS_BITS: u32 = Self::Top::SHIFT + Self::Top::BITS;
    /// Bit `l` set when level `l` may hold entries (bit 0 always is).
    const ENTRY_LEVELS: u32 = Self::Top::LARGE_MASK | 1;
    /// The top level: the root table's, `LEVELS - 1`.
    ///
    /// ```
    /// use mem_table::{Geometry, Level, X86_4Level};
    /// assert_eq!(X86_4Level::TOP, Level::new(3));
    /// ```
    const TOP: Level = Level::new(Self::Top::LEVEL);

    /// The top level, as [`TOP`](Geometry::TOP).
    fn top_level() -> Level {
        Self::TOP
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

    /// The level whose entries are `size` bytes, or `None` if no level of
    /// the geometry may hold entries of that size.
    ///
    /// ```
    /// use mem_table::{Geometry, Level, X86_4Level};
    /// assert_eq!(X86_4Level::level_for_size(2 << 20), Some(X86_4Level::L2M));
    /// assert_eq!(X86_4Level::level_for_size(4096), Some(Level::BASE));
    /// assert_eq!(X86_4Level::level_for_size(512 << 30), None); // a PML4E maps no page
    /// assert_eq!(X86_4Level::level_for_size(8192), None);
    /// ```
    fn level_for_size(size: u64) -> Option<Level> {
        (0..Self::LEVELS as u8)
            .map(Level::new)
            .find(|&l| Self::holds_entries(l) && Self::page_size(l) == Some(size))
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
/// a [`Large`] width. It is a [`Geometry`] only when it follows
/// [the rules](self#the-rules). Uninhabited: only ever a type.
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

impl<PS, L> ValidGeometry for Custom<PS, L>
where
    PS: Unsigned + IsLess<U64> + IsGreaterOrEqual<U64> + 'static,
    Le<PS, U64>: PageShiftIsAtMost63,
    L: OneToEightLevels<PS>,
    <L::Top as Reach>::Bits: IsLessOrEqual<U64>,
    // At most 64 address bits, or a page shift already refused above (whose
    // address bits are too many as well: one error is enough).
    LeEq<<L::Top as Reach>::Bits, U64>: BitOr<GrEq<PS, U64>>,
    Or<LeEq<<L::Top as Reach>::Bits, U64>, GrEq<PS, U64>>: AddressBitsAreAtMost64,
{
    type Top = L::Top;
}

#[allow(private_bounds)] // `ValidGeometry` is crate-private: the rules live on it.
impl<PS: 'static, L: 'static> Geometry for Custom<PS, L> where Self: ValidGeometry {}

/// x86-64 4-level paging: 4 KiB pages, four 9-bit levels, 48-bit addresses,
/// large entries at 2 MiB (level 1) and 1 GiB (level 2). The default.
pub type X86_4Level =
    Custom<typenum::U12, (typenum::U9, Large<typenum::U9>, Large<typenum::U9>, typenum::U9)>;

/// x86-64 5-level paging: as [`X86_4Level`] with a fifth 9-bit level, 57-bit
/// addresses.
pub type X86_5Level =
    Custom<typenum::U12, (typenum::U9, Large<typenum::U9>, Large<typenum::U9>, typenum::U9, typenum::U9)>;

/// The named levels of [`X86_4Level`] (and of
/// [`Aarch64_4K`](crate::geometries::Aarch64_4K), the same type).
impl X86_4Level {
    /// Level 0: 4 KiB pages (x86 PTEs, Arm lookup level 3 pages).
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB pages (x86 PDEs with PS = 1, Arm lookup level 2 blocks).
    pub const L2M: Level = Level::new(1);
    /// Level 2: 1 GiB pages (x86 PDPTEs with PS = 1, Arm lookup level 1 blocks).
    pub const L1G: Level = Level::new(2);
}

/// The named levels of [`X86_5Level`].
impl X86_5Level {
    /// Level 0: 4 KiB pages (PTEs).
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB pages (PDEs with PS = 1).
    pub const L2M: Level = Level::new(1);
    /// Level 2: 1 GiB pages (PDPTEs with PS = 1).
    pub const L1G: Level = Level::new(2);
}
