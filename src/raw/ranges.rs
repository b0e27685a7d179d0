//! Large-page work: split, merge, range set, range remove and compact.
//!
//! Each operation that can create tables has a `plan_*` twin that only
//! counts the tables it would create, so the table can reserve them first and
//! fail without changing anything.

use super::bitmap;
use super::chain::{Chain, Need, PruneOnDrop, add_child, page_of, slot_page};
use super::inner::InnerNode;
use super::inner::Slot;
use super::walk::Walk;
use crate::backend::{Backend, Store};
use crate::geometry::{Bottom, LevelSpec, Shape, Upper, Width};
use crate::ops::{Children, PageOps};
use crate::page::Page;

// The range operations and `compact` add the change in the number of entries
// to `delta` as they go, before dropping anything, so that the table's count
// stays right even if a clone, an op or a drop panics half-way.

/// Why a split or merge cannot happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No large entry (split) or no full table (merge) at that place.
    Nothing,
    /// A larger entry covers the place.
    Larger(Page),
    /// The level below cannot hold entries, so the entry cannot be split.
    NoEntriesBelow(u8),
    /// The consumer's merge declined.
    Declined,
}

/// What a plan knows about a slot it descends into.
#[derive(Clone, Copy)]
pub enum View<'a, N> {
    /// A real table.
    Node(&'a N),
    /// A table that will be created empty.
    Empty,
    /// A table that will be created by splitting a large entry (every slot
    /// a large entry).
    Split,
}

/// The first and last address of slot `i` of a node of level `L` at `base`.
#[inline]
fn slot_bounds<L: Shape>(base: u64, i: usize) -> (u64, u64) {
    let a = base + ((i as u64) << L::SHIFT);
    (a, a + ((1u64 << L::SHIFT) - 1))
}

/// The slots of a node of level `L` at `base` overlapping `lo..=last`.
fn span<L: Shape>(base: u64, lo: u64, last: u64) -> core::ops::RangeInclusive<usize> {
    let top = base + (((L::FANOUT as u64 - 1) << L::SHIFT) + ((1u64 << L::SHIFT) - 1));
    if last < base || lo > top {
        #[allow(clippy::reversed_empty_ranges)]
        return 1..=0;
    }
    let start = if lo <= base { 0 } else { ((lo - base) >> L::SHIFT) as usize };
    let end = (((last.min(top)) - base) >> L::SHIFT) as usize;
    start..=end
}

pub trait Ranges: Walk {
    /// A node of this level, based at `base`, holding the split of `value`
    /// (the entry `page` one level up) in every slot, every slot marked.
    fn split_node<V, O: PageOps<V>>(page: Page, value: &V, base: u64, ops: &mut O) -> Self::Node<V>;
    /// The merge of a node full of entries, as the entry `page` one level up.
    fn merge_node<V, O: PageOps<V>>(n: &Self::Node<V>, page: Page, ops: &mut O) -> Result<V, Refusal>;

    fn probe_split<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        addr: u64,
        level: u8,
    ) -> Result<(), Refusal>;
    /// Splits the large entry at `(addr, level)`, after a successful probe
    /// and a reservation of one table at `level - 1`.
    fn split<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        ops: &mut O,
        delta: &mut isize,
    );
    /// Merges the table under `(addr, level)` into one entry.
    fn merge<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        ops: &mut O,
        delta: &mut isize,
    ) -> Result<(), Refusal>;

    fn plan_set<V, B: Backend>(
        n: View<'_, Self::Node<V>>,
        s: &Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        need: &mut Need,
    ) -> Result<(), Refusal>;
    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    fn set_range<V: Clone, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        v: &V,
        ops: &mut O,
        delta: &mut isize,
    );
    fn plan_remove<V, B: Backend>(
        n: View<'_, Self::Node<V>>,
        s: &Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        need: &mut Need,
    ) -> Result<(), Refusal>;
    fn remove_range<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        ops: &mut O,
        delta: &mut isize,
    );
    /// Merges, bottom up, every table the ops agree to merge. Returns the
    /// number of merges.
    fn compact<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        ops: &mut O,
        delta: &mut isize,
    ) -> usize;
}

/// Replaces the large entry in slot `i` of `n` (the entry `page`) by a new
/// table holding its split, and returns the table's id. The table is built
/// aside first: if `ops` panics, nothing has changed.
fn split_slot<D: Ranges, V, B: Backend, W: Width, O: PageOps<V>>(
    n: &mut InnerNode<V, W>,
    children: &mut B::Store<D::Node<V>>,
    i: usize,
    page: Page,
    ops: &mut O,
    delta: &mut isize,
) -> u32 {
    let Slot::Large(v) = &n.slots[i] else { unreachable!("split of a slot without a large entry") };
    let child = D::split_node(page, v, page.addr(), ops);
    let id = children.insert(child);
    let old = n.set(i, Slot::Table(id));
    *delta += D::FANOUT as isize - 1;
    drop(old);
    id
}

/// Plans at the root.
pub fn plan_set_root<T: Ranges, V, B: Backend>(
    n: &T::Node<V>,
    s: &T::Stores<V, B>,
    lo: u64,
    last: u64,
    need: &mut Need,
) -> Result<(), Refusal> {
    T::plan_set(View::Node(n), s, 0, lo, last, need)
}

/// Plans at the root.
pub fn plan_remove_root<T: Ranges, V, B: Backend>(
    n: &T::Node<V>,
    s: &T::Stores<V, B>,
    lo: u64,
    last: u64,
    need: &mut Need,
) -> Result<(), Refusal> {
    T::plan_remove(View::Node(n), s, 0, lo, last, need)
}

impl<W: Width, PS: typenum::Unsigned + 'static> Ranges for Bottom<W, PS> {
    fn split_node<V, O: PageOps<V>>(page: Page, value: &V, base: u64, ops: &mut O) -> Self::Node<V> {
        let mut node = Self::Node::default();
        for i in 0..Self::FANOUT {
            node.insert(i, ops.split(page, value, slot_page::<Self>(base, i)));
        }
        Self::mark_all(&mut node);
        node
    }

    fn merge_node<V, O: PageOps<V>>(n: &Self::Node<V>, page: Page, ops: &mut O) -> Result<V, Refusal> {
        if n.len() != Self::FANOUT {
            return Err(Refusal::Nothing);
        }
        let mut values = (0..Self::FANOUT).map(|i| n.get(i).expect("full node"));
        ops.merge(page, Children::new(&mut values, Self::FANOUT)).ok_or(Refusal::Declined)
    }

    fn probe_split<V, B: Backend>(_: &Self::Node<V>, _: &(), _: u64, _: u8) -> Result<(), Refusal> {
        Err(Refusal::Nothing)
    }
    fn split<V, B: Backend, O: PageOps<V>>(
        _: &mut Self::Node<V>,
        _: &mut (),
        _: u64,
        _: u8,
        _: &mut O,
        _: &mut isize,
    ) {
        unreachable!("split below the bottom")
    }
    fn merge<V, B: Backend, O: PageOps<V>>(
        _: &mut Self::Node<V>,
        _: &mut (),
        _: u64,
        _: u8,
        _: &mut O,
        _: &mut isize,
    ) -> Result<(), Refusal> {
        Err(Refusal::Nothing)
    }

    fn plan_set<V, B: Backend>(
        _: View<'_, Self::Node<V>>,
        _: &(),
        _: u64,
        _: u64,
        _: u64,
        _: &mut Need,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    fn set_range<V: Clone, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        _: &mut (),
        base: u64,
        lo: u64,
        last: u64,
        v: &V,
        _: &mut O,
        delta: &mut isize,
    ) {
        for i in span::<Self>(base, lo, last) {
            let new = v.clone();
            bitmap::set(&mut n.dirty, i);
            match n.insert(i, new) {
                Some(old) => drop(old),
                None => *delta += 1,
            }
        }
    }

    fn plan_remove<V, B: Backend>(
        _: View<'_, Self::Node<V>>,
        _: &(),
        _: u64,
        _: u64,
        _: u64,
        _: &mut Need,
    ) -> Result<(), Refusal> {
        Ok(())
    }

    fn remove_range<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        _: &mut (),
        base: u64,
        lo: u64,
        last: u64,
        _: &mut O,
        delta: &mut isize,
    ) {
        for i in span::<Self>(base, lo, last) {
            if let Some(v) = n.take(i) {
                bitmap::set(&mut n.dirty, i);
                *delta -= 1;
                drop(v);
            }
        }
    }

    fn compact<V, B: Backend, O: PageOps<V>>(
        _: &mut Self::Node<V>,
        _: &mut (),
        _: u64,
        _: &mut O,
        _: &mut isize,
    ) -> usize {
        0
    }
}

impl<S: LevelSpec, D: Ranges> Ranges for Upper<S, D> {
    fn split_node<V, O: PageOps<V>>(page: Page, value: &V, base: u64, ops: &mut O) -> Self::Node<V> {
        let mut node = Self::Node::default();
        for i in 0..Self::FANOUT {
            node.set(i, Slot::Large(ops.split(page, value, slot_page::<Self>(base, i))));
        }
        node
    }

    fn merge_node<V, O: PageOps<V>>(n: &Self::Node<V>, page: Page, ops: &mut O) -> Result<V, Refusal> {
        if !n.slots.iter().all(|s| matches!(s, Slot::Large(_))) {
            return Err(Refusal::Nothing);
        }
        let mut children = n.slots.iter().map(|s| match s {
            Slot::Large(v) => v,
            _ => unreachable!(),
        });
        ops.merge(page, Children::new(&mut children, Self::FANOUT)).ok_or(Refusal::Declined)
    }

    fn probe_split<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        addr: u64,
        level: u8,
    ) -> Result<(), Refusal> {
        let i = super::chain::index::<Self>(addr);
        match (&n.slots[i], level == Self::LEVEL) {
            (Slot::Large(_), true) if D::LARGE => Ok(()),
            (Slot::Large(_), true) => Err(Refusal::NoEntriesBelow(D::LEVEL)),
            (Slot::Large(_), false) => Err(Refusal::Larger(page_of::<Self>(addr))),
            (Slot::Table(id), false) => D::probe_split(s.children.get(*id), &s.below, addr, level),
            _ => Err(Refusal::Nothing),
        }
    }

    fn split<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        ops: &mut O,
        delta: &mut isize,
    ) {
        let i = super::chain::index::<Self>(addr);
        match &n.slots[i] {
            Slot::Large(_) if level == Self::LEVEL => {
                split_slot::<D, V, B, S::Width, O>(n, &mut s.children, i, page_of::<Self>(addr), ops, delta);
            }
            &Slot::Table(id) => {
                bitmap::set(&mut n.dirty, i);
                D::split(s.children.get_mut(id), &mut s.below, addr, level, ops, delta);
            }
            _ => unreachable!("split without a probe"),
        }
    }

    fn merge<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        ops: &mut O,
        delta: &mut isize,
    ) -> Result<(), Refusal> {
        let i = super::chain::index::<Self>(addr);
        match (&n.slots[i], level == Self::LEVEL) {
            (&Slot::Table(id), true) => {
                let v = D::merge_node(s.children.get(id), page_of::<Self>(addr), ops)?;
                let child = s.children.remove(id);
                n.set(i, Slot::Large(v));
                *delta -= D::FANOUT as isize - 1;
                drop(child);
                Ok(())
            }
            (&Slot::Table(id), false) => {
                D::merge(s.children.get_mut(id), &mut s.below, addr, level, ops, delta)?;
                bitmap::set(&mut n.dirty, i);
                Ok(())
            }
            (Slot::Large(_), false) => Err(Refusal::Larger(page_of::<Self>(addr))),
            _ => Err(Refusal::Nothing),
        }
    }

    fn plan_set<V, B: Backend>(
        n: View<'_, Self::Node<V>>,
        s: &Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        need: &mut Need,
    ) -> Result<(), Refusal> {
        for i in span::<Self>(base, lo, last) {
            let (a, b) = slot_bounds::<Self>(base, i);
            if lo <= a && b <= last && Self::LARGE {
                continue;
            }
            let below = match n {
                View::Node(node) => match &node.slots[i] {
                    Slot::Table(id) => View::Node(s.children.get(*id)),
                    Slot::Large(_) => View::Split,
                    Slot::Empty => View::Empty,
                },
                View::Split => View::Split,
                View::Empty => View::Empty,
            };
            if let View::Split = below {
                if !D::LARGE {
                    return Err(Refusal::NoEntriesBelow(D::LEVEL));
                }
            }
            if !matches!(below, View::Node(_)) {
                need[D::LEVEL as usize] += 1;
            }
            D::plan_set(below, &s.below, a, lo, last, need)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // the recursion needs every one at every level
    fn set_range<V: Clone, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        v: &V,
        ops: &mut O,
        delta: &mut isize,
    ) {
        for i in span::<Self>(base, lo, last) {
            let (a, b) = slot_bounds::<Self>(base, i);
            if lo <= a && b <= last && Self::LARGE {
                let new = v.clone();
                match n.set(i, Slot::Large(new)) {
                    Slot::Table(id) => {
                        *delta += 1 - D::count_entries(s.children.get(id), &s.below) as isize;
                        let child = s.children.remove(id);
                        D::free_children(child, &mut s.below);
                    }
                    Slot::Large(old) => drop(old),
                    Slot::Empty => *delta += 1,
                }
                continue;
            }
            let id = match &n.slots[i] {
                &Slot::Table(id) => id,
                Slot::Empty => add_child::<D, V, B, S::Width>(n, &mut s.children, i),
                Slot::Large(_) => split_slot::<D, V, B, S::Width, O>(
                    n,
                    &mut s.children,
                    i,
                    slot_page::<Self>(base, i),
                    ops,
                    delta,
                ),
            };
            bitmap::set(&mut n.dirty, i);
            D::set_range(s.children.get_mut(id), &mut s.below, a, lo, last, v, ops, delta);
        }
    }

    fn plan_remove<V, B: Backend>(
        n: View<'_, Self::Node<V>>,
        s: &Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        need: &mut Need,
    ) -> Result<(), Refusal> {
        for i in span::<Self>(base, lo, last) {
            let (a, b) = slot_bounds::<Self>(base, i);
            if lo <= a && b <= last {
                continue;
            }
            let below = match n {
                View::Node(node) => match &node.slots[i] {
                    Slot::Table(id) => View::Node(s.children.get(*id)),
                    Slot::Large(_) => View::Split,
                    Slot::Empty => continue,
                },
                View::Split => View::Split,
                View::Empty => continue,
            };
            if let View::Split = below {
                if !D::LARGE {
                    return Err(Refusal::NoEntriesBelow(D::LEVEL));
                }
                need[D::LEVEL as usize] += 1;
            }
            D::plan_remove(below, &s.below, a, lo, last, need)?;
        }
        Ok(())
    }

    fn remove_range<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        lo: u64,
        last: u64,
        ops: &mut O,
        delta: &mut isize,
    ) {
        for i in span::<Self>(base, lo, last) {
            if matches!(n.slots[i], Slot::Empty) {
                continue;
            }
            let (a, b) = slot_bounds::<Self>(base, i);
            if lo <= a && b <= last {
                match n.set(i, Slot::Empty) {
                    Slot::Table(id) => {
                        *delta -= D::count_entries(s.children.get(id), &s.below) as isize;
                        let child = s.children.remove(id);
                        D::free_children(child, &mut s.below);
                    }
                    Slot::Large(old) => {
                        *delta -= 1;
                        drop(old);
                    }
                    Slot::Empty => unreachable!(),
                }
                continue;
            }
            let id = match &n.slots[i] {
                &Slot::Table(id) => id,
                Slot::Large(_) => split_slot::<D, V, B, S::Width, O>(
                    n,
                    &mut s.children,
                    i,
                    slot_page::<Self>(base, i),
                    ops,
                    delta,
                ),
                Slot::Empty => unreachable!(),
            };
            let prune = PruneOnDrop::<D, V, B, S::Width>::new(n, &mut s.children, i, id);
            D::remove_range(prune.children.get_mut(id), &mut s.below, a, lo, last, ops, delta);
            // Mark the path only if something below changed: removing
            // nothing is not a change.
            let changed = D::has_marks(prune.children.get(id));
            drop(prune);
            if changed {
                bitmap::set(&mut n.dirty, i);
            }
        }
    }

    fn compact<V, B: Backend, O: PageOps<V>>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        ops: &mut O,
        delta: &mut isize,
    ) -> usize {
        let mut merges = 0;
        for i in 0..Self::FANOUT {
            let Slot::Table(id) = n.slots[i] else { continue };
            let child_base = slot_page::<Self>(base, i).addr();
            let m = D::compact(s.children.get_mut(id), &mut s.below, child_base, ops, delta);
            if m > 0 {
                bitmap::set(&mut n.dirty, i);
                merges += m;
            }
            if Self::LARGE {
                if let Ok(v) = D::merge_node(s.children.get(id), slot_page::<Self>(base, i), ops) {
                    let child = s.children.remove(id);
                    n.set(i, Slot::Large(v));
                    merges += 1;
                    *delta -= D::FANOUT as isize - 1;
                    drop(child);
                }
            }
        }
        merges
    }
}
