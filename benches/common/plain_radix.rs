//! A plain radix table, written only as a contender: four levels of 512
//! slots above 4 KiB pages, fixed at compile time, each table in its own
//! `Box`, `u64` values with `u64::MAX` meaning absent. No large pages, no
//! change tracking, no reservations, no backends, no presence bitmap: what
//! the x86-64 shape costs without `mem-table`'s features. Tables count
//! their used slots so that emptied ones are freed, as `mem-table`'s are.

use std::ops::Range;

/// The value that marks an empty bottom slot.
pub const ABSENT: u64 = u64::MAX;
/// Slots per table.
const FAN: usize = 512;
/// Address bits covered: 12 + 4 x 9.
const ADDRESS_BITS: u32 = 48;

/// The slot of `addr` in a table whose slots each cover `2^shift` bytes.
#[inline(always)]
fn slot(addr: u64, shift: u32) -> usize {
    ((addr >> shift) as usize) & (FAN - 1)
}

/// The bounds `[start, end)` of the aligned `2^bits`-byte region holding `addr`.
fn region(addr: u64, bits: u32) -> (u64, u64) {
    let start = addr & !((1 << bits) - 1);
    (start, start + (1 << bits))
}

/// One level of the table.
trait Level: Clone {
    /// Bytes covered by one slot, as a shift.
    const SHIFT: u32;
    fn empty() -> Box<Self>;
    fn used(&self) -> usize;
    fn get(&self, addr: u64) -> Option<u64>;
    fn insert(&mut self, addr: u64, v: u64) -> Option<u64>;
    fn remove(&mut self, addr: u64) -> Option<u64>;
    /// The bottom table holding `addr`, or the bounds of the empty region
    /// around it.
    fn seek(&self, addr: u64) -> Result<&Leaf, (u64, u64)>;
    /// Takes the bottom table holding `addr` out of the tree below `kid`
    /// (a slot of the level above), or gives the bounds of the empty region.
    fn take_leaf(kid: &mut Option<Box<Self>>, addr: u64) -> Result<Box<Leaf>, (u64, u64)>;
}

/// A bottom table: the values themselves.
#[derive(Clone)]
struct Leaf {
    vals: [u64; FAN],
    used: usize,
}

impl Level for Leaf {
    const SHIFT: u32 = 12;
    fn empty() -> Box<Self> {
        Box::new(Leaf { vals: [ABSENT; FAN], used: 0 })
    }
    fn used(&self) -> usize {
        self.used
    }
    #[inline(always)]
    fn get(&self, addr: u64) -> Option<u64> {
        let v = self.vals[slot(addr, Self::SHIFT)];
        (v != ABSENT).then_some(v)
    }
    fn insert(&mut self, addr: u64, v: u64) -> Option<u64> {
        let old = std::mem::replace(&mut self.vals[slot(addr, Self::SHIFT)], v);
        self.used += (old == ABSENT) as usize;
        (old != ABSENT).then_some(old)
    }
    fn remove(&mut self, addr: u64) -> Option<u64> {
        let old = std::mem::replace(&mut self.vals[slot(addr, Self::SHIFT)], ABSENT);
        self.used -= (old != ABSENT) as usize;
        (old != ABSENT).then_some(old)
    }
    fn seek(&self, _: u64) -> Result<&Leaf, (u64, u64)> {
        Ok(self)
    }
    fn take_leaf(kid: &mut Option<Box<Self>>, addr: u64) -> Result<Box<Leaf>, (u64, u64)> {
        kid.take().ok_or_else(|| region(addr, Self::SHIFT + 9))
    }
}

/// An upper table: a child table or nothing in each slot.
#[derive(Clone)]
struct Node<C> {
    kids: [Option<Box<C>>; FAN],
    used: usize,
}

impl<C: Level> Level for Node<C> {
    const SHIFT: u32 = C::SHIFT + 9;
    fn empty() -> Box<Self> {
        Box::new(Node { kids: [const { None }; FAN], used: 0 })
    }
    fn used(&self) -> usize {
        self.used
    }
    #[inline(always)]
    fn get(&self, addr: u64) -> Option<u64> {
        self.kids[slot(addr, Self::SHIFT)].as_deref()?.get(addr)
    }
    fn insert(&mut self, addr: u64, v: u64) -> Option<u64> {
        let kid = &mut self.kids[slot(addr, Self::SHIFT)];
        self.used += kid.is_none() as usize;
        kid.get_or_insert_with(C::empty).insert(addr, v)
    }
    fn remove(&mut self, addr: u64) -> Option<u64> {
        let kid = &mut self.kids[slot(addr, Self::SHIFT)];
        let v = kid.as_mut()?.remove(addr)?;
        if kid.as_ref().is_some_and(|c| c.used() == 0) {
            *kid = None;
            self.used -= 1;
        }
        Some(v)
    }
    #[inline]
    fn seek(&self, addr: u64) -> Result<&Leaf, (u64, u64)> {
        match self.kids[slot(addr, Self::SHIFT)].as_deref() {
            Some(c) => c.seek(addr),
            None => Err(region(addr, Self::SHIFT)),
        }
    }
    fn take_leaf(kid: &mut Option<Box<Self>>, addr: u64) -> Result<Box<Leaf>, (u64, u64)> {
        match kid {
            Some(node) => C::take_leaf(&mut node.kids[slot(addr, Self::SHIFT)], addr),
            None => Err(region(addr, Self::SHIFT + 9)),
        }
    }
}

/// The plain radix table: a root of 512 slots, three levels below it.
#[derive(Clone)]
pub struct PlainRadix {
    root: Box<Node<Top>>,
}

impl Default for PlainRadix {
    fn default() -> Self {
        PlainRadix { root: Level::empty() }
    }
}

impl PlainRadix {
    /// The value at the 4 KiB page holding `addr`.
    #[inline]
    pub fn get(&self, addr: u64) -> Option<u64> {
        if addr >> ADDRESS_BITS != 0 {
            return None;
        }
        self.root.get(addr)
    }

    /// Inserts `v` at the page holding `addr` (below 2^48; `v` not
    /// [`ABSENT`]); returns the value replaced.
    pub fn insert(&mut self, addr: u64, v: u64) -> Option<u64> {
        assert!(addr >> ADDRESS_BITS == 0 && v != ABSENT, "out of reach, or the absent marker");
        self.root.insert(addr, v)
    }

    /// Removes the entry at the page holding `addr`, freeing emptied tables.
    pub fn remove(&mut self, addr: u64) -> Option<u64> {
        if addr >> ADDRESS_BITS != 0 {
            return None;
        }
        self.root.remove(addr)
    }

    /// Every entry, ascending (and, with `.rev()`, descending).
    pub fn iter(&self) -> Iter<'_> {
        self.range(0..1 << ADDRESS_BITS)
    }

    /// The entries overlapping `range`, ascending.
    pub fn range(&self, range: Range<u64>) -> Iter<'_> {
        let top = 1 << ADDRESS_BITS;
        let front = range.start.min(top) & !(PAGE - 1);
        let back = range.end.min(top).next_multiple_of(PAGE);
        Iter { root: &self.root, front, back, front_leaf: None, back_leaf: None }
    }

    /// Every entry, ascending, by value, freeing bottom tables as it goes.
    pub fn into_entries(self) -> IntoIter {
        IntoIter { root: self.root, front: 0, leaf: None }
    }
}

/// Bytes per page.
const PAGE: u64 = 1 << Leaf::SHIFT;
/// The table below the root.
type Top = Node<Node<Leaf>>;
/// Address bits covered by one bottom table (2 MiB).
const LEAF_BITS: u32 = Leaf::SHIFT + 9;

/// A bottom table being walked, with the 2 MiB region it covers (address
/// `>> LEAF_BITS`).
type Cursor<L> = Option<(L, u64)>;

/// The entries of a range, as `(address, value)`, from both ends: a scan
/// of one bottom table, then a walk from the root to the next (empty
/// regions skipped whole).
pub struct Iter<'a> {
    root: &'a Node<Top>,
    /// The next address to look at from the front; the end of what is left.
    front: u64,
    back: u64,
    front_leaf: Cursor<&'a Leaf>,
    back_leaf: Cursor<&'a Leaf>,
}

impl Iterator for Iter<'_> {
    type Item = (u64, u64);

    #[inline]
    fn next(&mut self) -> Option<(u64, u64)> {
        while self.front < self.back {
            let a = self.front;
            match self.front_leaf {
                Some((leaf, r)) if a >> LEAF_BITS == r => {
                    self.front = a + PAGE;
                    let v = leaf.vals[slot(a, Leaf::SHIFT)];
                    if v != ABSENT {
                        return Some((a, v));
                    }
                }
                _ => match self.root.seek(a) {
                    Ok(leaf) => self.front_leaf = Some((leaf, a >> LEAF_BITS)),
                    Err((_, end)) => self.front = end,
                },
            }
        }
        None
    }
}

impl DoubleEndedIterator for Iter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<(u64, u64)> {
        while self.front < self.back {
            let a = self.back - PAGE;
            match self.back_leaf {
                Some((leaf, r)) if a >> LEAF_BITS == r => {
                    self.back = a;
                    let v = leaf.vals[slot(a, Leaf::SHIFT)];
                    if v != ABSENT {
                        return Some((a, v));
                    }
                }
                _ => match self.root.seek(a) {
                    Ok(leaf) => self.back_leaf = Some((leaf, a >> LEAF_BITS)),
                    Err((start, _)) => self.back = start,
                },
            }
        }
        None
    }
}

/// Every entry by value, ascending: each bottom table is taken out of the
/// tree, scanned and freed; the upper tables go when the iterator does.
pub struct IntoIter {
    root: Box<Node<Top>>,
    front: u64,
    leaf: Cursor<Box<Leaf>>,
}

impl Iterator for IntoIter {
    type Item = (u64, u64);

    #[inline]
    fn next(&mut self) -> Option<(u64, u64)> {
        while self.front < 1 << ADDRESS_BITS {
            let a = self.front;
            match &self.leaf {
                Some((leaf, r)) if a >> LEAF_BITS == *r => {
                    self.front = a + PAGE;
                    let v = leaf.vals[slot(a, Leaf::SHIFT)];
                    if v != ABSENT {
                        return Some((a, v));
                    }
                }
                _ => match Top::take_leaf(&mut self.root.kids[slot(a, Node::<Top>::SHIFT)], a) {
                    Ok(leaf) => self.leaf = Some((leaf, a >> LEAF_BITS)),
                    Err((_, end)) => self.front = end,
                },
            }
        }
        None
    }
}
