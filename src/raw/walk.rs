//! Walks over many entries: ordered seeks for iteration, mutable iteration,
//! change reports, `retain`, and the structural check used by the tests.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::iter::Enumerate;
use core::slice;

use super::bitmap;
use super::bottom::{BottomNode, ValuesMut};
use super::chain::{Chain, PruneOnDrop, UpperStores, slot_page};
use super::inner::Slot;
use crate::backend::{Backend, Store};
use crate::geometry::{Bottom, LevelSpec, MAX_LEVELS, Shape, Upper, Width};
use crate::page::Page;

/// What an ordered seek found first.
pub enum Found<'a, V, L> {
    /// A large entry.
    Entry(Page, &'a V),
    /// A bottom table with an entry in slots `from..=to`; `base` is the
    /// table's first address.
    Leaf { node: &'a L, base: u64, from: usize, to: usize },
}

/// The bottom node type, seen by the iterators.
pub trait LeafNode<V> {
    /// The presence bitmap.
    fn words(&self) -> &[u64];
    /// The value in an occupied slot.
    ///
    /// # Safety
    /// Bit `i` of [`words`](Self::words) must be set.
    unsafe fn value(&self, i: usize) -> &V;
}

impl<V, W: Width> LeafNode<V> for BottomNode<V, W> {
    #[inline(always)]
    fn words(&self) -> &[u64] {
        self.present()
    }
    #[inline(always)]
    unsafe fn value(&self, i: usize) -> &V {
        // SAFETY: the caller promises bit `i` of the presence bitmap is set.
        unsafe { self.get_unchecked(i) }
    }
}

/// Walks the occupied slots `from..=to` of one bottom node, a bitmap word at
/// a time: the inner loop of iteration.
pub struct LeafCursor<'a, L> {
    node: &'a L,
    /// First address of the node.
    base: u64,
    /// Index of the word in `bits`.
    word: usize,
    /// Occupied slots of `word` not yet yielded.
    bits: u64,
    /// Index of the last word in range, and the mask of its slots in range.
    last_word: usize,
    last_mask: u64,
}

impl<'a, L> LeafCursor<'a, L> {
    pub fn new<V>(node: &'a L, base: u64, from: usize, to: usize) -> Self
    where
        L: LeafNode<V>,
    {
        let last_word = to / 64;
        let last_mask = u64::MAX >> (63 - to % 64);
        let word = from / 64;
        let mut bits = node.words()[word] & (u64::MAX << (from % 64));
        if word == last_word {
            bits &= last_mask;
        }
        LeafCursor { node, base, word, bits, last_word, last_mask }
    }

    /// The next occupied slot, its address (with entry shift `shift`) and
    /// value.
    #[inline(always)]
    pub fn next<V>(&mut self, shift: u32) -> Option<(u64, &'a V)>
    where
        L: LeafNode<V>,
    {
        while self.bits == 0 {
            if self.word >= self.last_word {
                return None;
            }
            self.word += 1;
            self.bits = self.node.words()[self.word];
            if self.word == self.last_word {
                self.bits &= self.last_mask;
            }
        }
        let i = self.word * 64 + self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        // SAFETY: `bits` only ever holds bits read from the node's presence
        // bitmap, and the node is borrowed shared for 'a, so it cannot have
        // changed since: bit `i` is set.
        Some((self.base + ((i as u64) << shift), unsafe { self.node.value(i) }))
    }
}

impl<'a, L> LeafCursor<'a, L> {
    /// Calls `f` on every remaining occupied slot; full words run without
    /// bit tricks.
    #[inline]
    pub fn fold<V: 'a, Acc>(
        mut self,
        shift: u32,
        mut acc: Acc,
        mut f: impl FnMut(Acc, u64, &'a V) -> Acc,
    ) -> Acc
    where
        L: LeafNode<V>,
    {
        loop {
            let first = self.word * 64;
            if self.bits == u64::MAX {
                for i in first..first + 64 {
                    // SAFETY: every bit of this word is set in the presence
                    // bitmap (which cannot change while borrowed for 'a).
                    acc = f(acc, self.base + ((i as u64) << shift), unsafe { self.node.value(i) });
                }
            } else {
                while self.bits != 0 {
                    let i = first + self.bits.trailing_zeros() as usize;
                    self.bits &= self.bits - 1;
                    // SAFETY: as in `next`: bit `i` is set in the presence bitmap.
                    acc = f(acc, self.base + ((i as u64) << shift), unsafe { self.node.value(i) });
                }
            }
            if self.word >= self.last_word {
                return acc;
            }
            self.word += 1;
            self.bits = self.node.words()[self.word];
            if self.word == self.last_word {
                self.bits &= self.last_mask;
            }
        }
    }
}

impl<L> Clone for LeafCursor<'_, L> {
    fn clone(&self) -> Self {
        LeafCursor { ..*self }
    }
}

/// Slots of a node of `fanout` slots based at `base` with entry shift
/// `shift` that overlap `from..=last`, or `None`.
#[inline(always)]
fn slot_span(base: u64, shift: u32, fanout: usize, from: u64, last: u64) -> Option<(usize, usize)> {
    if last < base {
        return None;
    }
    let start = if from <= base { 0 } else { ((from - base) >> shift) as usize };
    if start >= fanout {
        return None;
    }
    let end = (((last - base) >> shift) as usize).min(fanout - 1);
    Some((start, end))
}

/// Ordered and bulk walks over one level of the chain.
pub trait Walk: Chain {
    /// The bottom node type.
    type Leaf<V>: LeafNode<V>;
    /// The state of a mutable iteration at this level and below.
    type MutState<'a, V: 'a, B: Backend + 'a>;

    /// The first entry or bottom table, in address order, that overlaps
    /// `from..=last`, in the node based at `base`.
    fn seek<'a, V, B: Backend>(
        n: &'a Self::Node<V>,
        s: &'a Self::Stores<V, B>,
        base: u64,
        from: u64,
        last: u64,
    ) -> Option<Found<'a, V, Self::Leaf<V>>>;

    fn mut_state<'a, V: 'a, B: Backend + 'a>(s: &'a mut Self::Stores<V, B>) -> Self::MutState<'a, V, B>;
    /// Starts the mutable iteration of `n`, based at `base`.
    fn enter<'a, V: 'a, B: Backend + 'a>(
        st: &mut Self::MutState<'a, V, B>,
        n: &'a mut Self::Node<V>,
        base: u64,
    );
    /// The next entry of the node entered, marking it changed.
    fn next_mut<'a, V: 'a, B: Backend + 'a>(st: &mut Self::MutState<'a, V, B>) -> Option<(Page, &'a mut V)>;

    /// Appends the pages of every marked slot (descending into marked
    /// tables) and clears the marks.
    fn take_changes<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        out: &mut Vec<Page>,
    );

    /// Keeps the entries for which `f` is true, marking every entry it
    /// visits (`f` may change it); frees tables left empty. Subtracts the
    /// entries removed from `delta`, each before it is dropped.
    fn retain<V, B: Backend, F: FnMut(Page, &mut V) -> bool>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        f: &mut F,
        delta: &mut isize,
    );

    /// Checks the node's invariants; counts nodes per level in `nodes`;
    /// returns the number of entries below.
    fn check<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        nodes: &mut [usize; MAX_LEVELS],
    ) -> Result<usize, String>;
}

impl<W: Width, PS: typenum::Unsigned + 'static> Walk for Bottom<W, PS> {
    type Leaf<V> = BottomNode<V, W>;
    type MutState<'a, V: 'a, B: Backend + 'a> = Option<(u64, ValuesMut<'a, V>, &'a mut [u64])>;

    #[inline]
    fn seek<'a, V, B: Backend>(
        n: &'a Self::Node<V>,
        _: &'a (),
        base: u64,
        from: u64,
        last: u64,
    ) -> Option<Found<'a, V, Self::Leaf<V>>> {
        let (start, end) = slot_span(base, Self::SHIFT, Self::FANOUT, from, last)?;
        let i = n.next_occupied(start).filter(|&i| i <= end)?;
        Some(Found::Leaf { node: n, base, from: i, to: end })
    }

    fn mut_state<'a, V: 'a, B: Backend + 'a>(_: &'a mut ()) -> Self::MutState<'a, V, B> {
        None
    }

    fn enter<'a, V: 'a, B: Backend + 'a>(
        st: &mut Self::MutState<'a, V, B>,
        n: &'a mut Self::Node<V>,
        base: u64,
    ) {
        let (values, dirty) = n.split_mut();
        *st = Some((base, values, dirty));
    }

    #[inline]
    fn next_mut<'a, V: 'a, B: Backend + 'a>(st: &mut Self::MutState<'a, V, B>) -> Option<(Page, &'a mut V)> {
        let (base, values, dirty) = st.as_mut()?;
        match values.next() {
            Some((i, v)) => {
                bitmap::set(dirty, i);
                Some((slot_page::<Self>(*base, i), v))
            }
            None => {
                *st = None;
                None
            }
        }
    }

    fn take_changes<V, B: Backend>(n: &mut Self::Node<V>, _: &mut (), base: u64, out: &mut Vec<Page>) {
        let mut from = 0;
        while let Some(i) = bitmap::next_set(&n.dirty, from) {
            bitmap::clear(&mut n.dirty, i);
            out.push(slot_page::<Self>(base, i));
            from = i + 1;
        }
    }

    fn retain<V, B: Backend, F: FnMut(Page, &mut V) -> bool>(
        n: &mut Self::Node<V>,
        _: &mut (),
        base: u64,
        f: &mut F,
        delta: &mut isize,
    ) {
        let mut from = 0;
        while let Some(i) = n.next_occupied(from) {
            from = i + 1;
            bitmap::set(&mut n.dirty, i);
            if !f(slot_page::<Self>(base, i), n.get_mut(i).expect("occupied")) {
                let v = n.take(i);
                *delta -= 1;
                drop(v);
            }
        }
    }

    fn check<V, B: Backend>(
        n: &Self::Node<V>,
        _: &(),
        nodes: &mut [usize; MAX_LEVELS],
    ) -> Result<usize, String> {
        nodes[0] += 1;
        let bits: usize = n.present().iter().map(|w| w.count_ones() as usize).sum();
        if bits != n.len() {
            return Err(format!("bottom node: len {} but {} bits set", n.len(), bits));
        }
        if n.next_occupied(Self::FANOUT).is_some() || bitmap::next_set(&n.dirty, Self::FANOUT).is_some() {
            return Err("bottom node: bits set past the fan-out".into());
        }
        Ok(n.len())
    }
}

/// An upper node being walked mutably: its base, its slots, its change marks.
type UpperCursor<'a, V> = (u64, Enumerate<slice::IterMut<'a, Slot<V>>>, &'a mut [u64]);

/// The mutable-iteration state of an upper level.
pub struct UpperMut<'a, V, B: Backend, D: Walk> {
    /// The tables one level down, by id; each is taken when it is entered.
    children: Vec<Option<&'a mut D::Node<V>>>,
    /// The node being walked: its base, its slots, its change marks.
    cur: Option<UpperCursor<'a, V>>,
    /// The state of the level below.
    child: D::MutState<'a, V, B>,
}

impl<S: LevelSpec, D: Walk> Walk for Upper<S, D> {
    type Leaf<V> = D::Leaf<V>;
    type MutState<'a, V: 'a, B: Backend + 'a> = UpperMut<'a, V, B, D>;

    #[inline]
    fn seek<'a, V, B: Backend>(
        n: &'a Self::Node<V>,
        s: &'a Self::Stores<V, B>,
        base: u64,
        from: u64,
        last: u64,
    ) -> Option<Found<'a, V, Self::Leaf<V>>> {
        let (mut i, end) = slot_span(base, Self::SHIFT, Self::FANOUT, from, last)?;
        while i <= end {
            i = n.next_occupied(i).filter(|&i| i <= end)?;
            match &n.slots[i] {
                Slot::Large(v) => return Some(Found::Entry(slot_page::<Self>(base, i), v)),
                Slot::Table(id) => {
                    let child_base = slot_page::<Self>(base, i).addr();
                    if let Some(found) = D::seek(s.children.get(*id), &s.below, child_base, from, last) {
                        return Some(found);
                    }
                }
                Slot::Empty => unreachable!("next_occupied returned an empty slot"),
            }
            i += 1;
        }
        None
    }

    fn mut_state<'a, V: 'a, B: Backend + 'a>(s: &'a mut Self::Stores<V, B>) -> Self::MutState<'a, V, B> {
        let UpperStores { children, below } = s;
        UpperMut { children: children.refs_mut(), cur: None, child: D::mut_state(below) }
    }

    fn enter<'a, V: 'a, B: Backend + 'a>(
        st: &mut Self::MutState<'a, V, B>,
        n: &'a mut Self::Node<V>,
        base: u64,
    ) {
        st.cur = Some((base, n.slots.iter_mut().enumerate(), &mut n.dirty[..]));
    }

    fn next_mut<'a, V: 'a, B: Backend + 'a>(st: &mut Self::MutState<'a, V, B>) -> Option<(Page, &'a mut V)> {
        loop {
            if let Some(found) = D::next_mut(&mut st.child) {
                return Some(found);
            }
            let (base, slots, dirty) = st.cur.as_mut()?;
            let Some((i, slot)) = slots.next() else {
                st.cur = None;
                return None;
            };
            match slot {
                Slot::Empty => {}
                Slot::Large(v) => {
                    bitmap::set(dirty, i);
                    return Some((slot_page::<Self>(*base, i), v));
                }
                Slot::Table(id) => {
                    bitmap::set(dirty, i);
                    let child = st.children[*id as usize].take().expect("each table is entered once");
                    D::enter(&mut st.child, child, slot_page::<Self>(*base, i).addr());
                }
            }
        }
    }

    fn take_changes<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        out: &mut Vec<Page>,
    ) {
        let mut from = 0;
        while let Some(i) = bitmap::next_set(&n.dirty, from) {
            bitmap::clear(&mut n.dirty, i);
            match n.slots[i] {
                Slot::Table(id) => {
                    let child_base = slot_page::<Self>(base, i).addr();
                    D::take_changes(s.children.get_mut(id), &mut s.below, child_base, out);
                }
                _ => out.push(slot_page::<Self>(base, i)),
            }
            from = i + 1;
        }
    }

    fn retain<V, B: Backend, F: FnMut(Page, &mut V) -> bool>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        f: &mut F,
        delta: &mut isize,
    ) {
        let mut from = 0;
        while let Some(i) = n.next_occupied(from) {
            from = i + 1;
            bitmap::set(&mut n.dirty, i);
            if let Slot::Table(id) = n.slots[i] {
                let child_base = slot_page::<Self>(base, i).addr();
                let prune = PruneOnDrop::<D, V, B, S::Width>::new(n, &mut s.children, i, id);
                D::retain(prune.children.get_mut(id), &mut s.below, child_base, f, delta);
                drop(prune);
                continue;
            }
            let Slot::Large(v) = &mut n.slots[i] else { unreachable!("next_occupied gave an empty slot") };
            if !f(slot_page::<Self>(base, i), v) {
                let old = n.set(i, Slot::Empty);
                *delta -= 1;
                drop(old);
            }
        }
    }

    fn check<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        nodes: &mut [usize; MAX_LEVELS],
    ) -> Result<usize, String> {
        nodes[Self::LEVEL as usize] += 1;
        let mut entries = 0;
        let mut occupied = 0;
        for slot in n.slots.iter() {
            match slot {
                Slot::Empty => {}
                Slot::Large(_) => {
                    if !Self::LARGE {
                        return Err(format!("large entry at level {}, which holds none", Self::LEVEL));
                    }
                    occupied += 1;
                    entries += 1;
                }
                Slot::Table(id) => {
                    occupied += 1;
                    let child = s.children.get(*id);
                    if D::node_len(child) == 0 {
                        return Err(format!("empty table kept at level {}", D::LEVEL));
                    }
                    entries += D::check(child, &s.below, nodes)?;
                }
            }
        }
        if occupied != n.len as usize {
            return Err(format!("level {} node: len {} but {} slots used", Self::LEVEL, n.len, occupied));
        }
        for (i, slot) in n.slots.iter().enumerate() {
            if bitmap::get(n.used(), i) == matches!(slot, Slot::Empty) {
                return Err(format!("level {} node: occupancy bit {i} wrong", Self::LEVEL));
            }
        }
        if bitmap::next_set(&n.dirty, Self::FANOUT).is_some() {
            return Err("upper node: change bits set past the fan-out".into());
        }
        Ok(entries)
    }
}
