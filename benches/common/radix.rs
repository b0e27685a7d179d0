//! A radix table whose geometry is data, not types: each level's shift and
//! mask are read from memory on every step, as in the Linux RFC this crate
//! grew from. Written here only to measure what `mem-table`'s type-level
//! geometry buys; same semantics as the table for what the benchmarks use
//! (entries at any level, covering lookups, tables freed when they empty).

use std::ops::Range;

/// One level, top first: a slot index is `(addr >> shift) & mask`.
#[derive(Clone, Copy, Debug)]
pub struct LevelDesc {
    pub shift: u32,
    pub mask: u64,
}

/// One slot at any level: nothing, a child table (with its count of used
/// slots, kept here so that a lookup follows one pointer per level), or an
/// entry covering the slot's region.
#[derive(Clone, Debug)]
enum Slot {
    Empty,
    Table { used: u32, slots: Box<[Slot]> },
    Entry(u64),
}

/// The runtime-geometry radix table, `u64` values.
#[derive(Clone, Debug)]
pub struct RuntimeRadix {
    /// Levels, root first.
    levels: Box<[LevelDesc]>,
    /// Address bits covered.
    address_bits: u32,
    root: Box<[Slot]>,
}

/// `n` empty slots.
fn table(n: u64) -> Box<[Slot]> {
    (0..n).map(|_| Slot::Empty).collect()
}

impl RuntimeRadix {
    /// A table of `levels` (root first), reaching `address_bits`.
    pub fn new(levels: &[LevelDesc], address_bits: u32) -> Self {
        RuntimeRadix { levels: levels.into(), address_bits, root: table(levels[0].mask + 1) }
    }

    /// The x86-64 4-level geometry: four levels of 512 slots above 4 KiB.
    pub fn x86_64() -> Self {
        let levels: Vec<LevelDesc> = [39, 30, 21, 12].map(|shift| LevelDesc { shift, mask: 511 }).into();
        Self::new(&levels, 48)
    }

    /// The value of the entry covering `addr`.
    #[inline]
    pub fn get(&self, addr: u64) -> Option<u64> {
        if addr >> self.address_bits != 0 {
            return None;
        }
        let mut slots: &[Slot] = &self.root;
        for l in self.levels.iter() {
            match &slots[((addr >> l.shift) & l.mask) as usize] {
                Slot::Table { slots: child, .. } => slots = child,
                Slot::Entry(v) => return Some(*v),
                Slot::Empty => return None,
            }
        }
        None
    }

    /// Inserts an entry of `level` (0 = bottom) at `addr`; returns the value
    /// replaced. Panics on a conflict with a larger or smaller entry.
    pub fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        let depth = self.levels.len() - 1 - level as usize;
        insert_in(&mut self.root, &self.levels, depth, addr, v).0
    }

    /// Removes the entry covering `addr`, freeing tables left empty.
    pub fn remove(&mut self, addr: u64) -> Option<u64> {
        remove_in(&mut self.root, &self.levels, addr).0
    }

    /// Calls `f(addr, value)` for every entry overlapping `range`, in
    /// ascending order.
    pub fn for_each_in(&self, range: Range<u64>, f: &mut impl FnMut(u64, u64)) {
        each_in(&self.root, &self.levels, 0, &range, f);
    }
}

/// Inserts below `slots` (a table of `levels[0]`), stopping `depth` levels
/// down. Returns the replaced value and whether a slot of this table went
/// from empty to used.
fn insert_in(
    slots: &mut [Slot],
    levels: &[LevelDesc],
    depth: usize,
    addr: u64,
    v: u64,
) -> (Option<u64>, bool) {
    let l = levels[0];
    let slot = &mut slots[((addr >> l.shift) & l.mask) as usize];
    if depth == 0 {
        return match std::mem::replace(slot, Slot::Entry(v)) {
            Slot::Empty => (None, true),
            Slot::Entry(old) => (Some(old), false),
            Slot::Table { .. } => panic!("insert over smaller entries"),
        };
    }
    let created = matches!(slot, Slot::Empty);
    if created {
        *slot = Slot::Table { used: 0, slots: table(levels[1].mask + 1) };
    }
    match slot {
        Slot::Table { used, slots } => {
            let (old, filled) = insert_in(slots, &levels[1..], depth - 1, addr, v);
            *used += filled as u32;
            (old, created)
        }
        _ => panic!("insert under a larger entry"),
    }
}

/// Removes the entry covering `addr` below `slots`. Returns its value and
/// whether a slot of this table went from used to empty.
fn remove_in(slots: &mut [Slot], levels: &[LevelDesc], addr: u64) -> (Option<u64>, bool) {
    let l = levels[0];
    let slot = &mut slots[((addr >> l.shift) & l.mask) as usize];
    match slot {
        Slot::Empty => (None, false),
        Slot::Entry(v) => {
            let v = *v;
            *slot = Slot::Empty;
            (Some(v), true)
        }
        Slot::Table { used, slots: child } => {
            let (v, emptied) = remove_in(child, &levels[1..], addr);
            *used -= emptied as u32;
            if *used == 0 {
                *slot = Slot::Empty;
                return (v, true);
            }
            (v, false)
        }
    }
}

/// Visits the entries of `slots` (a table of `levels[0]` based at `base`)
/// that overlap `range`.
fn each_in(
    slots: &[Slot],
    levels: &[LevelDesc],
    base: u64,
    range: &Range<u64>,
    f: &mut impl FnMut(u64, u64),
) {
    let l = levels[0];
    let size = 1u64 << l.shift;
    // The slots whose region overlaps the range.
    let first = range.start.saturating_sub(base) >> l.shift;
    let end = (range.end.saturating_sub(base).div_ceil(size)).min(l.mask + 1);
    for i in first..end {
        let addr = base + (i << l.shift);
        match &slots[i as usize] {
            Slot::Empty => {}
            Slot::Entry(v) => f(addr, *v),
            Slot::Table { slots: child, .. } => each_in(child, &levels[1..], addr, range, f),
        }
    }
}
