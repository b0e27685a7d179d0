//! Where everything sits inside a table: one [`Lv`] per level, computed at
//! compile time from the geometry and the value type.
//!
//! ```text
//!  upper table (level > 0)                        bottom table (level 0)
//!  +----------------------------+ 0               +----------------------+ 0
//!  | slots: fan-out x 8-byte    |                 | len: u32, cap: u16   |
//!  |        tagged words        |                 +----------------------+ off_map
//!  +----------------------------+ off_map         | present: 1 bit/slot  |
//!  | used: 1 bit/slot           |                 +----------------------+ off_dirty
//!  +----------------------------+ off_dirty       | dirty: 1 bit/slot    |
//!  | dirty: 1 bit/slot          |                 +----------------------+ off_vals
//!  +----------------------------+ off_len         | values: fan-out x V  |
//!  | len: u32                   |                 |  (MaybeUninit, or    |
//!  +----------------------------+ off_vals        |  Option<V> cells     |
//!  | large values: fan-out x V  |  (only at levels|  with a niche)       |
//!  |  (MaybeUninit)             |   that hold     +----------------------+ size
//!  +----------------------------+ size entries, values aside)
//! ```
//!
//! At a level with the links form (level 1 below the top, see
//! [`links`](super::links)), the upper table starts with the bottom
//! table's count and `u16` capacity (zero: direct) instead, its slots at
//! [`off_slots`](Lv::off_slots)` = 8`, then the maps: so a walk tells the
//! forms apart from the table alone. The links classes are
//! [`links_bytes`](Lv::links_bytes) long.
//!
//! A bottom table may also be packed (see [`forms`](super::forms)): the same
//! header, its capacity in the `cap` field (zero in the direct form), then
//! a `u16` rank per map word (`off_ranks`) and its values in slot order
//! (`off_pvals`), in size classes of [`MIN_PACK`]` << k` values. The
//! smallest classes are sparse: after the count and capacity, no maps but
//! sorted slot indices ([`SPARSE_IDX`]) and the values
//! ([`sparse_vals`]).
//!
//! Large values of at most 7 bytes live inline, inside their slot words
//! (`inline`: no value array; `off_vals` is the value's offset in slot 0's
//! word, `stride` one word):
//!
//! ```text
//!  one slot word, little-endian      byte 0     1 .. 7
//!  empty                             0x00       0 ...
//!  a link (8-byte aligned address)   xxxx_x000  address bytes
//!  a large entry, value aside        0x01       0 ...
//!  a large entry, value inline       0x01       the value, at the first offset
//!                                               past byte 0 its alignment allows
//! ```
//!
//! The header (everything before the values or ranks) is zeroed when a
//! table is created; a zeroed header is an empty table. The values are never touched
//! until written, except the cells of a bottom table whose `V` has a niche,
//! which are all written `None` when it is created.
//!
//! | value type | bottom presence read from | large values | upper table, x86 level 1 |
//! |---|---|---|---|
//! | no niche, more than 7 bytes (`u64`) | `present` (another cache line) | aside | 8,328 B |
//! | niche, more than 7 bytes (`NonZeroU64`, `Box`) | the cell itself | aside | 8,328 B |
//! | no niche, at most 7 bytes (`u32`, `(u8, u16)`) | `present` | inline | 4,232 B |
//! | niche, at most 7 bytes (`NonZeroU32`, field-less enums) | the cell itself | inline | 4,232 B |

use crate::geometry::{Geometry, MAX_LEVELS, Shape};
use core::marker::PhantomData;

/// The description of one level's tables.
#[derive(Clone, Copy, Debug)]
pub struct Lv {
    /// log2 of the size of one slot's region (an entry's page).
    pub shift: u32,
    /// Index bits: the table has `2^bits` slots.
    pub bits: u32,
    /// Slots per table.
    pub fanout: usize,
    /// 64-bit words in a bitmap of one bit per slot.
    pub words: usize,
    /// Whether slots may hold entries (always at level 0).
    pub large: bool,
    /// Offset of the occupancy bitmap (`used` above, `present` at the bottom).
    pub off_map: usize,
    /// Offset of the change bitmap.
    pub off_dirty: usize,
    /// Offset of the `u32` count of occupied slots.
    pub off_len: usize,
    /// Offset of value 0: of the value array, or (inline large values) of
    /// the value inside slot 0's word; `size` at levels without entries.
    pub off_vals: usize,
    /// Bytes from one value to the next: the value's size in a value array,
    /// the slot word's size when large values are inline.
    pub stride: usize,
    /// Large values live inside their slot words (see [`inline_offset`]).
    pub inline: bool,
    /// Bytes zeroed to make an empty table (of the direct form, at the
    /// bottom).
    pub header: usize,
    /// The level has packed forms: the bottom level's (see
    /// [`classes`](Self::classes)), or level 1's links form
    /// ([`links_bytes`](Self::links_bytes)), whose classes are all sparse.
    pub packs: bool,
    /// Packed forms of bottom tables: class `k` holds up to
    /// [`pack_cap(k)`](Self::pack_cap) values. Zero: bottom tables are
    /// always direct.
    pub classes: usize,
    /// The first `sparse` packed classes are sparse (see
    /// [`forms`](super::forms)): sorted slot indices instead of maps.
    pub sparse: usize,
    /// Bottom tables: offset of the `u16` capacity (zero: the direct form).
    pub off_cap: usize,
    /// Bottom tables, packed: offset of the `u16` rank of each map word
    /// (the occupied slots before it).
    pub off_ranks: usize,
    /// Bottom tables, packed: offset of value 0 (of the first occupied
    /// slot).
    pub off_pvals: usize,
    /// Offset of upper slot 0's word: 8 at a level with a links form (its
    /// count and capacity come first, as in a bottom table), else 0.
    pub off_slots: usize,
    /// Bytes of one table.
    pub size: usize,
    /// Alignment of one table.
    pub align: usize,
}

impl Lv {
    const NONE: Lv = Lv {
        shift: 0,
        bits: 0,
        fanout: 0,
        words: 0,
        large: false,
        off_map: 0,
        off_dirty: 0,
        off_len: 0,
        off_vals: 0,
        stride: 0,
        inline: false,
        header: 0,
        packs: false,
        classes: 0,
        sparse: 0,
        off_cap: 0,
        off_ranks: 0,
        off_pvals: 0,
        off_slots: 0,
        size: 0,
        align: 1,
    };

    /// The index mask of a slot number.
    #[inline(always)]
    pub const fn mask(&self) -> u64 {
        (1u64 << self.bits) - 1
    }

    /// The slot of `addr` in a table of this level.
    #[inline(always)]
    pub const fn index(&self, addr: u64) -> usize {
        ((addr >> self.shift) & self.mask()) as usize
    }

    /// The most values a packed bottom table of class `k` holds.
    #[inline(always)]
    pub const fn pack_cap(&self, k: usize) -> usize {
        MIN_PACK << k
    }

    /// Bytes of a packed bottom table of class `k`.
    #[inline(always)]
    pub const fn pack_size(&self, k: usize) -> usize {
        let cap = self.pack_cap(k);
        let vals = if k < self.sparse { sparse_vals(cap, self.align) } else { self.off_pvals };
        align_up(vals + cap * self.stride, self.align)
    }

    /// Bytes of a level-1 table of links class `k`.
    #[inline(always)]
    pub const fn links_bytes(&self, k: usize) -> usize {
        let cap = self.pack_cap(k);
        align_up(sparse_vals(cap, self.align) + cap * WORD, self.align)
    }

    /// Whether this level has the links form.
    #[inline(always)]
    pub const fn has_links(&self) -> bool {
        self.off_slots != 0
    }

    /// The largest capacity of a sparse class (zero: none).
    #[inline(always)]
    pub const fn sparse_cap(&self) -> usize {
        if self.sparse == 0 { 0 } else { MIN_PACK << (self.sparse - 1) }
    }

    /// The class of a packed bottom table of capacity `cap`.
    #[inline(always)]
    pub const fn class_of(&self, cap: usize) -> usize {
        (cap / MIN_PACK).trailing_zeros() as usize
    }

    /// The form for a bottom table of `n` values: the smallest packed
    /// class that holds them, or (`None`) the direct form.
    #[inline]
    pub const fn form_for(&self, n: usize) -> Option<usize> {
        let mut k = 0;
        while k < self.classes {
            if self.pack_cap(k) >= n {
                return Some(k);
            }
            k += 1;
        }
        None
    }

    /// The bytes one table spans in the address space, minus one.
    #[inline(always)]
    pub const fn span_last(&self) -> u64 {
        // The top table of a 64-bit space spans all of it.
        let bits = self.shift + self.bits;
        if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
    }
}

const fn align_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

/// The smallest packed bottom table's capacity.
pub const MIN_PACK: usize = 4;

/// The largest capacity of a sparse class: its masks are `u32`s, and its
/// slot search a scan of at most this many indices.
pub const MAX_SPARSE: usize = 16;

/// Sparse bottom tables: offsets of the header's fields (after the count
/// and capacity every form has): the `u16` number of indices, the `u32`
/// masks of present and marked indices, then the `u16` slot indices.
pub const SPARSE_NK: usize = 6;
/// See [`SPARSE_NK`].
pub const SPARSE_PRESENT: usize = 8;
/// See [`SPARSE_NK`].
pub const SPARSE_MARKED: usize = 12;
/// See [`SPARSE_NK`].
pub const SPARSE_IDX: usize = 16;

/// The index of a sparse table that is not in use: above every slot (a
/// level has sparse forms only up to [`MAX_SPARSE_FANOUT`] slots).
pub const SPARSE_NONE: u16 = 0x7fff;

/// The largest fan-out with sparse forms: slot indices stay below
/// [`SPARSE_NONE`] and below the top bit of a `u16`, which the index
/// search uses.
pub const MAX_SPARSE_FANOUT: usize = 1 << 14;

/// The indices a sparse table of capacity `cap` has room for: at least 8,
/// so that the two smallest classes are searched alike (two words of four
/// indices, with no branch on the class).
#[inline(always)]
pub const fn sparse_lanes(cap: usize) -> usize {
    if cap < 8 { 8 } else { cap }
}

/// Offset of the values of a sparse bottom table of capacity `cap`, in a
/// table aligned to `align`.
#[inline(always)]
pub const fn sparse_vals(cap: usize, align: usize) -> usize {
    align_up(SPARSE_IDX + 2 * sparse_lanes(cap), align)
}

/// The most packed classes a level has: capacities up to half the largest
/// fan-out, `2^MAX_LEVEL_BITS`.
pub const MAX_CLASSES: usize = 14;

/// Bytes of an upper slot word.
pub const WORD: usize = size_of::<*mut u8>();

/// The byte of a slot word that holds its tag bit (bit 0 of the word read
/// as an address): the low-order byte.
pub const TAG_BYTE: usize = if cfg!(target_endian = "little") { 0 } else { WORD - 1 };

/// Where a large value of `vsize` bytes aligned to `valign` sits inside its
/// slot word, beside the tag byte; `None` if it does not fit there.
pub const fn inline_offset(vsize: usize, valign: usize) -> Option<usize> {
    if valign > WORD {
        return None;
    }
    // Little-endian: the tag is byte 0; the value starts at the first
    // offset past it that suits its alignment.
    #[cfg(target_endian = "little")]
    let (off, room) = (align_up(1, valign), WORD);
    // Big-endian: the tag is the last byte; the value starts at 0.
    #[cfg(not(target_endian = "little"))]
    let (off, room) = (0, TAG_BYTE);
    if off + vsize <= room || vsize == 0 { Some(off) } else { None }
}

/// The classes of the links form of a level-1 table (see
/// [`links`](super::links)): 4, 8 and 16 child links.
pub const LINKS_CLASSES: usize = 3;

/// Whether a level has the links form: level 1 below the top, with a
/// fan-out the sorted indices can name and a direct form many times larger.
pub const fn has_links(level: u8, top: bool, bits: u32) -> bool {
    level == 1 && !top && bits >= 4 && (1usize << bits) <= MAX_SPARSE_FANOUT
}

/// The layout of one level, for values of `vsize` bytes aligned to `valign`;
/// `top`: the level is the top one.
const fn level(level: u8, top: bool, shift: u32, bits: u32, large: bool, vsize: usize, valign: usize) -> Lv {
    let fanout = 1usize << bits;
    let words = fanout.div_ceil(64);
    let links = has_links(level, top, bits);
    // A bottom table's header starts with its count and `u16` capacity, so
    // that every form (the sparse one has no maps) reads them in one place;
    // so does a table of a level with a links form, its slots after them;
    // another upper table's count follows its slots and maps.
    let off_slots = if links { 8 } else { 0 };
    let (off_len, off_map) = match (level, links) {
        (0, _) => (0, 8),
        (_, true) => (0, off_slots + fanout * WORD),
        _ => (fanout * WORD + words * 16, fanout * WORD),
    };
    let off_dirty = off_map + words * 8;
    let off_cap = off_len + 4;
    let header = if level == 0 || links { off_dirty + words * 8 } else { off_len + 4 };
    let align = if valign > 8 { valign } else { 8 };
    let inline = match inline_offset(vsize, valign) {
        Some(off) if level > 0 && large => Some(off_slots + off),
        _ => None,
    };
    let (off_vals, stride, end) = match inline {
        Some(off) => (off, WORD, header),
        None if level == 0 || large => {
            let off = align_up(header, valign);
            (off, vsize, off + fanout * vsize)
        }
        None => (header, vsize, header),
    };
    let size = align_up(end, align);
    // Packed forms: ranks after the header, then the values in slot order.
    let off_ranks = header;
    let off_pvals = align_up(off_ranks + words * 2, valign);
    let mut classes = 0;
    let mut sparse = 0;
    if level == 0 {
        loop {
            let cap = MIN_PACK << classes;
            if classes >= MAX_CLASSES || cap > fanout / 2 {
                break;
            }
            let packed = align_up(off_pvals + cap * vsize, align);
            let small = align_up(sparse_vals(cap, align) + cap * vsize, align);
            let is_sparse =
                cap <= MAX_SPARSE && fanout <= MAX_SPARSE_FANOUT && sparse == classes && small <= packed;
            if (if is_sparse { small } else { packed }) >= size {
                break;
            }
            sparse += is_sparse as usize;
            classes += 1;
        }
    }
    // The links form: sparse classes of link words.
    if links {
        classes = LINKS_CLASSES;
        sparse = LINKS_CLASSES;
    }
    Lv {
        shift,
        bits,
        fanout,
        words,
        large,
        off_map,
        off_dirty,
        off_len,
        off_vals,
        stride,
        inline: inline.is_some(),
        header,
        packs: classes > 0,
        classes,
        sparse,
        off_cap,
        off_ranks,
        off_pvals,
        off_slots,
        size,
        align,
    }
}

/// The per-level layouts of a `MemTable<V, G, _>`.
pub struct Info<V, G>(PhantomData<fn() -> (V, G)>);

impl<V, G: Geometry> Info<V, G> {
    /// Every level's layout, bottom first; past the top, zero.
    pub const LV: [Lv; MAX_LEVELS] = {
        let mut out = [Lv::NONE; MAX_LEVELS];
        let mut l = 0;
        while l < G::LEVELS && l < MAX_LEVELS {
            out[l] = level(
                l as u8,
                l + 1 == G::LEVELS,
                G::Top::SHIFTS[l],
                G::Top::WIDTHS[l],
                G::ENTRY_LEVELS & (1 << l) != 0,
                size_of::<V>(),
                align_of::<V>(),
            );
            l += 1;
        }
        out
    };

    /// The layout of `level`.
    #[inline(always)]
    pub const fn lv(level: usize) -> &'static Lv {
        &Self::LV[level]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::X86_4Level;

    #[test]
    fn x86_u64_layouts() {
        let lv = Info::<u64, X86_4Level>::LV;
        // Bottom: count and capacity, then 64 + 64 map bytes, values from 136.
        assert_eq!((lv[0].off_len, lv[0].off_map, lv[0].off_vals, lv[0].size), (0, 8, 136, 136 + 4096));
        // Level 1 holds 2 MiB entries and has the links form: count and
        // capacity, slots, bitmaps, then values; a links table is one line.
        assert_eq!((lv[1].off_len, lv[1].off_cap, lv[1].off_slots, lv[1].off_map), (0, 4, 8, 4104));
        assert_eq!(lv[1].size, 8 + 4096 + 128 + 4096);
        let links: [usize; LINKS_CLASSES] = core::array::from_fn(|k| lv[1].links_bytes(k));
        assert_eq!((links, lv[1].sparse_cap(), lv[1].has_links()), ([64, 96, 176], 16, true));
        // The top level has none.
        assert_eq!((lv[3].off_slots, lv[3].has_links(), lv[3].packs), (0, false, false));
        // Level 3 holds tables only: no value array.
        assert_eq!(lv[3].size, 4096 + 136);
        assert_eq!(lv[3].span_last(), (1u64 << 48) - 1);
        assert!(!lv[1].inline && lv[1].stride == 8);
    }

    #[test]
    fn packed_bottom_forms() {
        let lv = Info::<u64, X86_4Level>::LV[0];
        // Seven classes, 4 to 256 values, after the header and 8 rank words.
        assert_eq!((lv.classes, lv.sparse, lv.off_cap, lv.off_ranks, lv.off_pvals), (7, 3, 4, 136, 152));
        let sizes: [usize; 7] = core::array::from_fn(|k| lv.pack_size(k));
        assert_eq!(sizes, [64, 96, 176, 408, 664, 1176, 2200]);
        assert_eq!(lv.sparse_cap(), 16);
        assert_eq!(
            (lv.form_for(1), lv.form_for(5), lv.form_for(256), lv.form_for(257)),
            (Some(0), Some(1), Some(6), None)
        );
        // The tiny test geometry's 8-slot bottom tables have one class.
        type Tiny = crate::geometry::Custom<
            typenum::U12,
            (typenum::U3, crate::geometry::Large<typenum::U3>, typenum::U3),
        >;
        let tiny = Info::<u64, Tiny>::LV[0];
        assert_eq!((tiny.fanout, tiny.classes, tiny.sparse, tiny.pack_size(0), tiny.size), (8, 1, 1, 64, 88));
        assert_eq!(lv.class_of(lv.pack_cap(3)), 3);
        // Upper levels have none; zero-sized values only the sparse ones.
        let unit = Info::<(), X86_4Level>::LV[0];
        assert!(!Info::<u64, X86_4Level>::LV[2].packs && (unit.classes, unit.sparse) == (3, 3));
        assert_eq!([unit.pack_size(0), unit.pack_size(2), unit.size], [32, 48, 136]);
    }

    #[test]
    fn small_large_values_are_inline() {
        let lv = Info::<u32, X86_4Level>::LV;
        // Level 1 holds entries, inline: no value array, values at byte 4
        // of each slot word (after the 8-byte header of the links form).
        assert!(lv[1].inline && lv[2].inline);
        assert_eq!((lv[1].off_vals, lv[1].stride, lv[1].size), (12, 8, 8 + 4096 + 128));
        assert_eq!((lv[2].off_vals, lv[2].stride, lv[2].size), (4, 8, 4096 + 136));
        // The bottom table keeps its array; level 3 holds no entries.
        assert!(!lv[0].inline && !lv[3].inline);
        assert_eq!((lv[0].off_vals, lv[0].stride), (136, 4));
        assert_eq!(inline_offset(1, 1), Some(1));
        assert_eq!(inline_offset(7, 1), Some(1));
        assert_eq!(inline_offset(4, 2), Some(2));
        assert_eq!(inline_offset(8, 8), None);
        assert_eq!(inline_offset(6, 4), None);
        assert_eq!(inline_offset(0, 8), Some(8));
    }
}
