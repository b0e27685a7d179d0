//! Where everything sits inside a table: one [`Lv`] per level, computed at
//! compile time from the geometry and the value type.
//!
//! ```text
//!  upper table (level > 0)                        bottom table (level 0)
//!  +----------------------------+ 0               +----------------------+ 0
//!  | slots: fan-out x 8-byte    |                 | present: 1 bit/slot  |
//!  |        tagged words        |                 +----------------------+ off_dirty
//!  +----------------------------+ off_map         | dirty: 1 bit/slot    |
//!  | used: 1 bit/slot           |                 +----------------------+ off_len
//!  +----------------------------+ off_dirty       | len: u32             |
//!  | dirty: 1 bit/slot          |                 +----------------------+ off_vals
//!  +----------------------------+ off_len         | values: fan-out x V  |
//!  | len: u32                   |                 |  (MaybeUninit)       |
//!  +----------------------------+ off_vals        +----------------------+ size
//!  | large values: fan-out x V  |  (only at levels
//!  |  (MaybeUninit)             |   that hold entries)
//!  +----------------------------+ size
//! ```
//!
//! Everything before `off_len + 4` (the header) is zeroed when a table is
//! created; a zeroed header is an empty table. The values are never touched
//! until written.

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
    /// Offset of the value array (`size` at levels without entries).
    pub off_vals: usize,
    /// Bytes zeroed to make an empty table.
    pub header: usize,
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
        header: 0,
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

/// The layout of one level, for values of `vsize` bytes aligned to `valign`.
const fn level(level: u8, shift: u32, bits: u32, large: bool, vsize: usize, valign: usize) -> Lv {
    let fanout = 1usize << bits;
    let words = fanout.div_ceil(64);
    let slots = if level == 0 { 0 } else { fanout * 8 };
    let off_map = slots;
    let off_dirty = off_map + words * 8;
    let off_len = off_dirty + words * 8;
    let header = off_len + 4;
    let align = if valign > 8 { valign } else { 8 };
    let off_vals = align_up(header, valign);
    let end = if level == 0 || large { off_vals + fanout * vsize } else { header };
    let size = align_up(end, align);
    Lv { shift, bits, fanout, words, large, off_map, off_dirty, off_len, off_vals, header, size, align }
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
        // Bottom: 64 + 64 + 4 header bytes, values from 136.
        assert_eq!((lv[0].off_vals, lv[0].size), (136, 136 + 4096));
        // Level 1 holds 2 MiB entries: slots, bitmaps, len, then values.
        assert_eq!(lv[1].off_map, 4096);
        assert_eq!(lv[1].size, 4096 + 136 + 4096);
        // Level 3 holds tables only: no value array.
        assert_eq!(lv[3].size, 4096 + 136);
        assert_eq!(lv[3].span_last(), (1u64 << 48) - 1);
    }
}
