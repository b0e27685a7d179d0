//! The catalogue of real hardware page-table geometries, ready to use.
//!
//! Each type here is a [`Custom`] geometry spelled after one architecture's
//! page table, with the manual and section it comes from. The same facts are
//! kept as data in `geometries/catalogue.txt` at the top of the repository,
//! and a test checks every type against its entry there.
//!
//! ```
//! use mem_table::{MemTable, geometries::RiscvSv39};
//!
//! let mut t: MemTable<&str, RiscvSv39> = MemTable::new();
//! t.insert_at(0x8000_0000, RiscvSv39::L1G, "a gigapage").unwrap();
//! assert_eq!(t.get_key_value(0xbfff_ffff).unwrap().0.size(), 1 << 30);
//! ```
//!
//! # Shipped geometries
//!
//! Levels are numbered from the bottom: level 0 holds base pages. "Widths"
//! lists the index bits of every level, bottom first; a level in **bold**
//! may hold large entries.
//!
//! | type | architecture | widths | address bits | entry sizes | named levels | source |
//! |---|---|---|---|---|---|---|
//! | [`X86_4Level`] | x86-64, 4-level paging | 9, **9**, **9**, 9 | 48 | 4 KiB, 2 MiB, 1 GiB | `L4K`, `L2M`, `L1G` | Intel SDM Vol. 3A §4.5 |
//! | [`X86_5Level`] | x86-64, 5-level paging | 9, **9**, **9**, 9, 9 | 57 | 4 KiB, 2 MiB, 1 GiB | `L4K`, `L2M`, `L1G` | Intel SDM Vol. 3A §4.5 |
//! | [`X86_32Bit`] | x86, 32-bit paging | 10, **10** | 32 | 4 KiB, 4 MiB | `L4K`, `L4M` | Intel SDM Vol. 3A §4.3 |
//! | [`X86Pae`] | x86, PAE paging | 9, **9**, 2 | 32 | 4 KiB, 2 MiB | `L4K`, `L2M` | Intel SDM Vol. 3A §4.4 |
//! | [`Aarch64_4K`] | AArch64, 4 KiB granule, 48-bit | 9, **9**, **9**, 9 | 48 | 4 KiB, 2 MiB, 1 GiB | `L4K`, `L2M`, `L1G` | Arm ARM D8 |
//! | [`Aarch64_16K`] | AArch64, 16 KiB granule, 48-bit | 11, **11**, 11, 1 | 48 | 16 KiB, 32 MiB | `L16K`, `L32M` | Arm ARM D8 |
//! | [`Aarch64_64K`] | AArch64, 64 KiB granule, 48-bit | 13, **13**, 6 | 48 | 64 KiB, 512 MiB | `L64K`, `L512M` | Arm ARM D8 |
//! | [`RiscvSv39`] | RISC-V Sv39 | 9, **9**, **9** | 39 | 4 KiB, 2 MiB, 1 GiB | `L4K`, `L2M`, `L1G` | RISC-V Privileged, Sv39 |
//! | [`RiscvSv48`] | RISC-V Sv48 | 9, **9**, **9**, **9** | 48 | 4 KiB, 2 MiB, 1 GiB, 512 GiB | `L4K`, `L2M`, `L1G`, `L512G` | RISC-V Privileged, Sv48 |
//! | [`RiscvSv57`] | RISC-V Sv57 | 9, **9**, **9**, **9**, **9** | 57 | 4 KiB, 2 MiB, 1 GiB, 512 GiB, 256 TiB | `L4K`, `L2M`, `L1G`, `L512G`, `L256T` | RISC-V Privileged, Sv57 |
//!
//! A level holds large entries here when the architecture allows a leaf
//! there at all, even if only with a CPU feature or control bit (x86 1 GiB
//! pages, 32-bit 4 MiB pages); each type's documentation says which.
//!
//! # Named levels
//!
//! Every type names the levels that may hold entries after the size of
//! their entries: `L4K`, `L2M`, `L1G` and so on (the table's last column).
//! They are [`Level`] constants, for [`insert_at`](crate::MemTable::insert_at),
//! [`split`](crate::MemTable::split), [`merge`](crate::MemTable::merge) and
//! everything else that takes a level. A type has a name only for a size it
//! has at a level that may hold entries: `X86_4Level::L512G` and
//! `X86_32Bit::L1G` do not exist, and do not compile. The names do not
//! travel with the geometry, though: `X86_4Level::L2M` is level 1 on any
//! table. See [the design](crate::geometry#named-levels).
//!
//! ```
//! use mem_table::{Geometry, MemTable, geometries::Aarch64_64K};
//!
//! let mut t: MemTable<u8, Aarch64_64K> = MemTable::new();
//! t.insert_at(0x2000_0000, Aarch64_64K::L512M, 1).unwrap(); // one 512 MiB block
//! assert_eq!(Aarch64_64K::page_size(Aarch64_64K::L512M), Some(512 << 20));
//! assert_eq!(Aarch64_64K::level_for_size(64 << 10), Some(Aarch64_64K::L64K));
//! ```
//!
//! # Variants not shipped
//!
//! The AArch64 types describe 48-bit input addresses without FEAT_LPA2 (4 KiB
//! and 16 KiB granules) or FEAT_LPA / FEAT_LVA (64 KiB granule). The 52-bit
//! variants add a level or widen the top one and allow larger blocks; build
//! them with [`Custom`], for example the 64 KiB granule with FEAT_LVA and
//! FEAT_LPA (a 10-bit lookup level 1 that holds 4 TiB blocks):
//!
//! ```
//! use mem_table::geometry::{Custom, Geometry, Large};
//! use mem_table::typenum::{U10, U13, U16};
//!
//! type Aarch64_64K52 = Custom<U16, (U13, Large<U13>, Large<U10>)>;
//! assert_eq!(Aarch64_64K52::ADDRESS_BITS, 52);
//! assert_eq!(Aarch64_64K52::page_size(mem_table::Level::new(2)), Some(4 << 40));
//! ```
//!
//! Contiguous-entry hints (Arm's Contiguous bit, RISC-V Svnapot) group
//! entries of one level; they are not levels, and are not modelled.

use typenum::{U1, U2, U6, U9, U10, U11, U12, U13, U14, U16};

use crate::Level;
use crate::geometry::{Custom, Geometry, Large};

/// x86-64 4-level paging: 4 KiB pages, 2 MiB pages (PDE with PS = 1) and
/// 1 GiB pages (PDPTE with PS = 1); 48-bit linear addresses.
///
/// Levels bottom-up: PT, PD, PDPT, PML4. 1 GiB pages need
/// `CPUID.80000001H:EDX.Page1GB`; a PML4E never maps a page. Intel EPT and
/// AMD nested paging with 4 levels have the same shape. The default geometry
/// of [`MemTable`](crate::MemTable), and the same type as [`Aarch64_4K`].
///
/// Source: Intel 64 and IA-32 Architectures Software Developer's Manual,
/// Vol. 3A, §4.5 "4-Level Paging and 5-Level Paging".
///
/// ```
/// use mem_table::{MemTable, geometries::X86_4Level};
///
/// let mut t: MemTable<u8, X86_4Level> = MemTable::new();
/// t.insert_at(0x4000_0000, X86_4Level::L1G, 1).unwrap(); // one 1 GiB page
/// t.insert_at(0x20_0000, X86_4Level::L2M, 2).unwrap(); // one 2 MiB page
/// let (page, _) = t.get_key_value(0x7fff_ffff).unwrap();
/// assert_eq!((page.addr(), page.size()), (0x4000_0000, 1 << 30));
/// assert_eq!(t.get_key_value(0x3f_ffff).unwrap().0.size(), 2 << 20);
/// ```
#[doc(inline)]
pub use crate::geometry::X86_4Level;

/// x86-64 5-level paging (CR4.LA57 = 1): 4 KiB, 2 MiB and 1 GiB pages, as
/// [`X86_4Level`] with a PML5 table on top; 57-bit linear addresses.
///
/// Levels bottom-up: PT, PD, PDPT, PML4, PML5. Neither a PML5E nor a PML4E
/// maps a page.
///
/// Source: Intel 64 and IA-32 Architectures Software Developer's Manual,
/// Vol. 3A, §4.5 "4-Level Paging and 5-Level Paging".
///
/// ```
/// use mem_table::{ErrorKind, Level, MemTable, geometries::X86_5Level};
///
/// let mut t: MemTable<u8, X86_5Level> = MemTable::new();
/// let high = 1 << 56; // beyond the reach of 4-level paging
/// t.insert_at(high, X86_5Level::L1G, 1).unwrap(); // one 1 GiB page
/// assert_eq!(t.get_key_value(high + 0x3fff_ffff).unwrap().0.size(), 1 << 30);
/// let err = t.insert_at(0, Level::new(3), 2).unwrap_err(); // a PML4E maps no page
/// assert_eq!(err.kind(), ErrorKind::NoEntriesAtLevel);
/// ```
#[doc(inline)]
pub use crate::geometry::X86_5Level;

/// 32-bit x86 paging: 4 KiB pages and 4 MiB pages (PDE with PS = 1);
/// 32-bit linear addresses, two 10-bit levels.
///
/// Levels bottom-up: PT, PD. 4 MiB pages need CR4.PSE = 1; without it the
/// page directory holds page tables only. PSE-36 widens the physical address
/// of a 4 MiB page, not the linear address, so the shape is the same.
///
/// Source: Intel 64 and IA-32 Architectures Software Developer's Manual,
/// Vol. 3A, §4.3 "32-Bit Paging".
///
/// ```
/// use mem_table::{ErrorKind, MemTable, geometries::X86_32Bit};
///
/// let mut t: MemTable<u8, X86_32Bit> = MemTable::new();
/// t.insert_at(0xc000_0000, X86_32Bit::L4M, 1).unwrap(); // one 4 MiB page
/// let (page, _) = t.get_key_value(0xc03f_ffff).unwrap();
/// assert_eq!((page.addr(), page.size()), (0xc000_0000, 4 << 20));
/// assert_eq!(t.get(0xc040_0000), None);
/// assert_eq!(t.insert(1 << 32, 2).unwrap_err().kind(), ErrorKind::OutOfReach);
/// ```
pub type X86_32Bit = Custom<U12, (U10, Large<U10>)>;

/// The named levels of [`X86_32Bit`].
impl X86_32Bit {
    /// Level 0: 4 KiB pages (PTEs).
    pub const L4K: Level = Level::BASE;
    /// Level 1: 4 MiB pages (PDEs with PS = 1).
    pub const L4M: Level = Level::new(1);
}

/// x86 PAE paging: 4 KiB pages and 2 MiB pages (PDE with PS = 1); 32-bit
/// linear addresses through a 4-entry page-directory-pointer table.
///
/// Levels bottom-up: PT (9 bits), PD (9 bits), PDPT (2 bits). The four
/// PDPTEs only point at page directories: there are no 1 GiB pages.
///
/// Source: Intel 64 and IA-32 Architectures Software Developer's Manual,
/// Vol. 3A, §4.4 "PAE Paging".
///
/// ```
/// use mem_table::{ErrorKind, Level, MemTable, geometries::X86Pae};
///
/// let mut t: MemTable<u8, X86Pae> = MemTable::new();
/// t.insert_at(0xffe0_0000, X86Pae::L2M, 1).unwrap(); // the last 2 MiB page
/// let (page, _) = t.get_key_value(0xffff_ffff).unwrap();
/// assert_eq!((page.addr(), page.size()), (0xffe0_0000, 2 << 20));
/// let err = t.insert_at(0x4000_0000, Level::new(2), 2).unwrap_err(); // no 1 GiB pages
/// assert_eq!(err.kind(), ErrorKind::NoEntriesAtLevel);
/// ```
pub type X86Pae = Custom<U12, (U9, Large<U9>, U2)>;

/// The named levels of [`X86Pae`].
impl X86Pae {
    /// Level 0: 4 KiB pages (PTEs).
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB pages (PDEs with PS = 1).
    pub const L2M: Level = Level::new(1);
}

/// AArch64 (VMSAv8-64), 4 KiB translation granule, 48-bit input addresses:
/// 4 KiB pages, 2 MiB blocks and 1 GiB blocks.
///
/// Levels bottom-up are Arm's lookup levels 3, 2, 1, 0; blocks at lookup
/// level 2 (2 MiB) and 1 (1 GiB). Without FEAT_LPA2 (`TCR_ELx.DS = 0`, as
/// here) lookup level 0 holds tables only; with it, 512 GiB blocks and a
/// 52-bit lookup level -1 appear, which this type does not describe. The
/// same type as [`X86_4Level`].
///
/// Source: Arm Architecture Reference Manual for A-profile architecture
/// (DDI 0487), chapter D8 "The AArch64 Virtual Memory System Architecture",
/// section "VMSAv8-64 translation using the 4KB granule".
///
/// ```
/// use mem_table::{MemTable, geometries::Aarch64_4K};
///
/// let mut t: MemTable<u8, Aarch64_4K> = MemTable::new();
/// t.insert_at(0x4000_0000, Aarch64_4K::L2M, 1).unwrap(); // one 2 MiB block
/// t.insert_at(0x8000_0000, Aarch64_4K::L1G, 2).unwrap(); // one 1 GiB block
/// assert_eq!(t.get_key_value(0x401f_ffff).unwrap().0.size(), 2 << 20);
/// assert_eq!(t.get_key_value(0xbfff_ffff).unwrap().0.size(), 1 << 30);
/// ```
pub type Aarch64_4K = Custom<U12, (U9, Large<U9>, Large<U9>, U9)>;

/// AArch64 (VMSAv8-64), 16 KiB translation granule, 48-bit input addresses:
/// 16 KiB pages and 32 MiB blocks.
///
/// Levels bottom-up are Arm's lookup levels 3, 2, 1 (11 bits each) and 0
/// (1 bit: two entries, indexed by bit 47). Blocks at lookup level 2
/// (32 MiB) only: 64 GiB blocks at lookup level 1 need FEAT_LPA2
/// (`TCR_ELx.DS = 1`, 52-bit addresses), which this type does not describe.
///
/// Source: Arm Architecture Reference Manual for A-profile architecture
/// (DDI 0487), chapter D8 "The AArch64 Virtual Memory System Architecture",
/// section "VMSAv8-64 translation using the 16KB granule".
///
/// ```
/// use mem_table::{ErrorKind, Level, MemTable, geometries::Aarch64_16K};
///
/// let mut t: MemTable<u8, Aarch64_16K> = MemTable::new();
/// t.insert(0x4000, 1).unwrap(); // one 16 KiB page
/// t.insert_at(0x200_0000, Aarch64_16K::L32M, 2).unwrap(); // one 32 MiB block
/// assert_eq!(t.get_key_value(0x7fff).unwrap().0.size(), 16 << 10);
/// assert_eq!(t.get_key_value(0x3ff_ffff).unwrap().0.size(), 32 << 20);
/// let err = t.insert_at(0x10_0000_0000, Level::new(2), 3).unwrap_err(); // no 64 GiB blocks
/// assert_eq!(err.kind(), ErrorKind::NoEntriesAtLevel);
/// ```
pub type Aarch64_16K = Custom<U14, (U11, Large<U11>, U11, U1)>;

/// The named levels of [`Aarch64_16K`].
impl Aarch64_16K {
    /// Level 0: 16 KiB pages (lookup level 3).
    pub const L16K: Level = Level::BASE;
    /// Level 1: 32 MiB blocks (lookup level 2).
    pub const L32M: Level = Level::new(1);
}

/// AArch64 (VMSAv8-64), 64 KiB translation granule, 48-bit input addresses:
/// 64 KiB pages and 512 MiB blocks.
///
/// Levels bottom-up are Arm's lookup levels 3 and 2 (13 bits each) and 1
/// (6 bits, 64 entries). Blocks at lookup level 2 (512 MiB) only: 4 TiB
/// blocks at lookup level 1 need FEAT_LPA, and a 10-bit lookup level 1
/// (52-bit addresses) needs FEAT_LVA; this type describes neither.
///
/// Source: Arm Architecture Reference Manual for A-profile architecture
/// (DDI 0487), chapter D8 "The AArch64 Virtual Memory System Architecture",
/// section "VMSAv8-64 translation using the 64KB granule".
///
/// ```
/// use mem_table::{MemTable, geometries::Aarch64_64K};
///
/// let mut t: MemTable<u8, Aarch64_64K> = MemTable::new();
/// t.insert_at(0x4000_0000, Aarch64_64K::L512M, 1).unwrap(); // one 512 MiB block
/// let (page, _) = t.get_key_value(0x5fff_ffff).unwrap();
/// assert_eq!((page.addr(), page.size()), (0x4000_0000, 512 << 20));
/// t.insert(0x6000_0000, 2).unwrap(); // one 64 KiB page
/// assert_eq!(t.get_key_value(0x6000_ffff).unwrap().0.size(), 64 << 10);
/// ```
pub type Aarch64_64K = Custom<U16, (U13, Large<U13>, U6)>;

/// The named levels of [`Aarch64_64K`].
impl Aarch64_64K {
    /// Level 0: 64 KiB pages (lookup level 3).
    pub const L64K: Level = Level::BASE;
    /// Level 1: 512 MiB blocks (lookup level 2).
    pub const L512M: Level = Level::new(1);
}

/// RISC-V Sv39: 4 KiB pages, 2 MiB megapages and 1 GiB gigapages; 39-bit
/// virtual addresses, three 9-bit levels.
///
/// Levels bottom-up index VPN\[0\], VPN\[1\], VPN\[2\]. A PTE at any level
/// may be a leaf, the root level included.
///
/// Source: The RISC-V Instruction Set Manual, Volume II: Privileged
/// Architecture, chapter "Supervisor-Level ISA", section "Sv39: Page-Based
/// 39-bit Virtual-Memory System".
///
/// ```
/// use mem_table::{ErrorKind, MemTable, geometries::RiscvSv39};
///
/// let mut t: MemTable<u8, RiscvSv39> = MemTable::new();
/// t.insert_at(0x8000_0000, RiscvSv39::L1G, 1).unwrap(); // one gigapage
/// t.insert_at(0x20_0000, RiscvSv39::L2M, 2).unwrap(); // one megapage
/// assert_eq!(t.get_key_value(0xbfff_ffff).unwrap().0.size(), 1 << 30);
/// assert_eq!(t.get_key_value(0x3f_ffff).unwrap().0.size(), 2 << 20);
/// assert_eq!(t.insert(1 << 39, 3).unwrap_err().kind(), ErrorKind::OutOfReach);
/// ```
pub type RiscvSv39 = Custom<U12, (U9, Large<U9>, Large<U9>)>;

/// The named levels of [`RiscvSv39`].
impl RiscvSv39 {
    /// Level 0: 4 KiB pages.
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB megapages.
    pub const L2M: Level = Level::new(1);
    /// Level 2: 1 GiB gigapages.
    pub const L1G: Level = Level::new(2);
}

/// RISC-V Sv48: 4 KiB pages, 2 MiB megapages, 1 GiB gigapages and 512 GiB
/// terapages; 48-bit virtual addresses, four 9-bit levels.
///
/// Levels bottom-up index VPN\[0\] to VPN\[3\]; a PTE at any level may be a
/// leaf.
///
/// Source: The RISC-V Instruction Set Manual, Volume II: Privileged
/// Architecture, chapter "Supervisor-Level ISA", section "Sv48: Page-Based
/// 48-bit Virtual-Memory System".
///
/// ```
/// use mem_table::{MemTable, geometries::RiscvSv48};
///
/// let mut t: MemTable<u8, RiscvSv48> = MemTable::new();
/// t.insert_at(0x80_0000_0000, RiscvSv48::L512G, 1).unwrap(); // one terapage
/// let (page, _) = t.get_key_value(0xff_ffff_ffff).unwrap();
/// assert_eq!((page.addr(), page.size()), (0x80_0000_0000, 512 << 30));
/// assert_eq!(t.get(0x100_0000_0000), None);
/// ```
pub type RiscvSv48 = Custom<U12, (U9, Large<U9>, Large<U9>, Large<U9>)>;

/// The named levels of [`RiscvSv48`].
impl RiscvSv48 {
    /// Level 0: 4 KiB pages.
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB megapages.
    pub const L2M: Level = Level::new(1);
    /// Level 2: 1 GiB gigapages.
    pub const L1G: Level = Level::new(2);
    /// Level 3: 512 GiB terapages.
    pub const L512G: Level = Level::new(3);
}

/// RISC-V Sv57: 4 KiB pages, 2 MiB megapages, 1 GiB gigapages, 512 GiB
/// terapages and 256 TiB petapages; 57-bit virtual addresses, five 9-bit
/// levels.
///
/// Levels bottom-up index VPN\[0\] to VPN\[4\]; a PTE at any level may be a
/// leaf.
///
/// Source: The RISC-V Instruction Set Manual, Volume II: Privileged
/// Architecture, chapter "Supervisor-Level ISA", section "Sv57: Page-Based
/// 57-bit Virtual-Memory System".
///
/// ```
/// use mem_table::{MemTable, geometries::RiscvSv57};
///
/// let mut t: MemTable<u8, RiscvSv57> = MemTable::new();
/// t.insert_at(1 << 48, RiscvSv57::L256T, 1).unwrap(); // one petapage
/// let (page, _) = t.get_key_value((2 << 48) - 1).unwrap();
/// assert_eq!((page.addr(), page.size()), (1 << 48, 256 << 40));
/// assert_eq!(t.get(2 << 48), None);
/// ```
pub type RiscvSv57 = Custom<U12, (U9, Large<U9>, Large<U9>, Large<U9>, Large<U9>)>;

/// The named levels of [`RiscvSv57`].
impl RiscvSv57 {
    /// Level 0: 4 KiB pages.
    pub const L4K: Level = Level::BASE;
    /// Level 1: 2 MiB megapages.
    pub const L2M: Level = Level::new(1);
    /// Level 2: 1 GiB gigapages.
    pub const L1G: Level = Level::new(2);
    /// Level 3: 512 GiB terapages.
    pub const L512G: Level = Level::new(3);
    /// Level 4: 256 TiB petapages.
    pub const L256T: Level = Level::new(4);
}

/// Every shipped geometry is valid and reaches the address width of its
/// architecture, and every named level holds entries of its size, checked
/// when the crate compiles.
const _: () = {
    /// Forces the geometry's validity check and compares its reach.
    const fn check<G: Geometry>(address_bits: u32) {
        let () = G::VALID;
        assert!(G::ADDRESS_BITS == address_bits, "a shipped geometry has the wrong address width");
    }
    check::<X86_4Level>(48);
    check::<X86_5Level>(57);
    check::<X86_32Bit>(32);
    check::<X86Pae>(32);
    check::<Aarch64_4K>(48);
    check::<Aarch64_16K>(48);
    check::<Aarch64_64K>(48);
    check::<RiscvSv39>(39);
    check::<RiscvSv48>(48);
    check::<RiscvSv57>(57);

    use crate::geometry::Shape;

    /// A named level holds entries of `2^shift` bytes.
    const fn named<G: Geometry>(level: Level, shift: u32) {
        let l = level.index();
        assert!(l < G::LEVELS && G::ENTRY_LEVELS & (1 << l) != 0, "a named level holds no entries");
        assert!(G::Top::SHIFTS[l] == shift, "a named level has the wrong size");
    }
    named::<X86_4Level>(X86_4Level::L4K, 12);
    named::<X86_4Level>(X86_4Level::L2M, 21);
    named::<X86_4Level>(X86_4Level::L1G, 30);
    named::<X86_5Level>(X86_5Level::L4K, 12);
    named::<X86_5Level>(X86_5Level::L2M, 21);
    named::<X86_5Level>(X86_5Level::L1G, 30);
    named::<X86_32Bit>(X86_32Bit::L4K, 12);
    named::<X86_32Bit>(X86_32Bit::L4M, 22);
    named::<X86Pae>(X86Pae::L4K, 12);
    named::<X86Pae>(X86Pae::L2M, 21);
    named::<Aarch64_16K>(Aarch64_16K::L16K, 14);
    named::<Aarch64_16K>(Aarch64_16K::L32M, 25);
    named::<Aarch64_64K>(Aarch64_64K::L64K, 16);
    named::<Aarch64_64K>(Aarch64_64K::L512M, 29);
    named::<RiscvSv39>(RiscvSv39::L4K, 12);
    named::<RiscvSv39>(RiscvSv39::L2M, 21);
    named::<RiscvSv39>(RiscvSv39::L1G, 30);
    named::<RiscvSv48>(RiscvSv48::L4K, 12);
    named::<RiscvSv48>(RiscvSv48::L2M, 21);
    named::<RiscvSv48>(RiscvSv48::L1G, 30);
    named::<RiscvSv48>(RiscvSv48::L512G, 39);
    named::<RiscvSv57>(RiscvSv57::L4K, 12);
    named::<RiscvSv57>(RiscvSv57::L2M, 21);
    named::<RiscvSv57>(RiscvSv57::L1G, 30);
    named::<RiscvSv57>(RiscvSv57::L512G, 39);
    named::<RiscvSv57>(RiscvSv57::L256T, 48);
};
