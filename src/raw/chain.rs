//! The level chain: one node type per depth, operations recursing down the
//! type-level list of levels.
//!
//! [`Chain`] is implemented for the bottom level ([`Bottom`]) and for a level
//! above another ([`Upper`]). Each implementation handles its own node and
//! hands the rest to the level below, so after inlining a lookup is a
//! straight run of shifts and masks by constants. Nothing here checks
//! alignment, reach or levels: the table does that before calling in.
//!
//! Terms: "this node" is a table at level `Self::LEVEL`; its slots hold
//! entries of that level; `base` is the first address it covers; `stores`
//! holds every node below it, by level.

use super::bitmap;
use super::bottom::BottomNode;
use super::inner::{InnerNode, Slot};
use crate::backend::{Backend, Store};
use crate::geometry::{Bottom, LevelSpec, MAX_LEVELS, Shape, Upper, Width};
use crate::page::Page;

/// Nodes needed per level (indexed by the level of the node to create).
pub type Need = [usize; MAX_LEVELS];

/// Per-level figures of one store.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStats {
    pub nodes: usize,
    pub bytes: usize,
    pub available: usize,
    pub capacity: Option<usize>,
}

/// What an insert at `(addr, level)` would meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing there: the insert adds an entry (and the nodes in `Need`).
    Vacant,
    /// An entry at exactly that place: the insert replaces it.
    Occupied,
    /// A larger entry covers the place.
    Larger(Page),
    /// Smaller entries lie below the place.
    Smaller,
}

/// The stores of the nodes below an upper node.
pub struct UpperStores<C, R> {
    /// The nodes one level down.
    pub children: C,
    /// Everything further down.
    pub below: R,
}

/// Index of `addr` in a node of level `L`.
#[inline(always)]
pub fn index<L: Shape>(addr: u64) -> usize {
    ((addr >> L::SHIFT) & L::MASK) as usize
}

/// The page of slot `i` of a node of level `L` based at `base`.
#[inline(always)]
pub fn slot_page<L: Shape>(base: u64, i: usize) -> Page {
    Page::new(base + ((i as u64) << L::SHIFT), L::LEVEL, L::SHIFT)
}

/// The page of level `L` that contains `addr`.
#[inline(always)]
pub fn page_of<L: Shape>(addr: u64) -> Page {
    Page::new(addr & !((1u64 << L::SHIFT) - 1), L::LEVEL, L::SHIFT)
}

/// One level of the chain and everything below it.
pub trait Chain: Shape {
    /// A table at this level.
    type Node<V>: Default;
    /// The stores of every node below this level.
    type Stores<V, B: Backend>;

    fn new_stores<V, B: Backend>(b: &B) -> Self::Stores<V, B>;
    fn clone_node<V: Clone>(n: &Self::Node<V>) -> Self::Node<V>;
    fn clone_stores<V: Clone, B: Backend>(s: &Self::Stores<V, B>) -> Self::Stores<V, B>;
    fn clear_stores<V, B: Backend>(s: &mut Self::Stores<V, B>);
    /// Entries and tables held by the node's slots.
    fn node_len<V>(n: &Self::Node<V>) -> usize;
    /// Marks every slot of the node changed.
    fn mark_all<V>(n: &mut Self::Node<V>);
    /// Whether any slot of the node is marked changed.
    fn has_marks<V>(n: &Self::Node<V>) -> bool;
    /// Marks every slot of `n` that is used or marked in `like`.
    fn mark_used<V>(n: &mut Self::Node<V>, like: &Self::Node<V>);
    /// Per-level store figures, at `out[level of node]`.
    fn stats<V, B: Backend>(s: &Self::Stores<V, B>, out: &mut [StoreStats; MAX_LEVELS]);
    /// Makes room in the stores for `need`, all or nothing; on failure, the
    /// level that ran out.
    fn reserve<V, B: Backend>(s: &mut Self::Stores<V, B>, need: &Need) -> Result<(), u8>;

    /// The entry covering `addr`.
    fn get<'a, V, B: Backend>(
        n: &'a Self::Node<V>,
        s: &'a Self::Stores<V, B>,
        addr: u64,
    ) -> Option<(Page, &'a V)>;

    /// The entry covering `addr`, mutably; marks it and its path changed.
    fn get_mut<'a, V, B: Backend>(
        n: &'a mut Self::Node<V>,
        s: &'a mut Self::Stores<V, B>,
        addr: u64,
    ) -> Option<(Page, &'a mut V)>;

    /// What an insert at `(addr, level)` meets; adds the nodes it would
    /// create to `need`.
    fn probe<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        addr: u64,
        level: u8,
        need: &mut Need,
    ) -> Probe;

    /// Inserts at `(addr, level)` after a [`Chain::probe`] said `Vacant` or
    /// `Occupied` and the stores were reserved. Creates missing tables; marks
    /// the path. Returns the replaced value.
    fn insert<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        v: V,
    ) -> Option<V>;

    /// The number of entries in `n` and below.
    fn count_entries<V, B: Backend>(n: &Self::Node<V>, s: &Self::Stores<V, B>) -> usize;

    /// Frees every table below `n` from the stores (the node's own values
    /// are dropped with it).
    fn free_children<V, B: Backend>(n: Self::Node<V>, s: &mut Self::Stores<V, B>);

    /// Inserts at `(addr, level)` if every table on the way already exists
    /// and nothing conflicts; otherwise hands `v` back untouched. The fast
    /// path of an insert: one walk, no planning.
    fn insert_existing<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        v: V,
    ) -> Result<Option<V>, V>;

    /// Removes the entry covering `addr`, freeing tables left empty; marks
    /// the path.
    fn remove<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        addr: u64,
    ) -> Option<(Page, V)>;
}

impl<W: Width, PS: typenum::Unsigned + 'static> Chain for Bottom<W, PS> {
    type Node<V> = BottomNode<V, W>;
    type Stores<V, B: Backend> = ();

    fn new_stores<V, B: Backend>(_: &B) {}
    fn clone_node<V: Clone>(n: &Self::Node<V>) -> Self::Node<V> {
        n.clone()
    }
    fn clone_stores<V: Clone, B: Backend>(_: &()) {}
    fn clear_stores<V, B: Backend>(_: &mut ()) {}
    fn node_len<V>(n: &Self::Node<V>) -> usize {
        n.len()
    }
    fn mark_all<V>(n: &mut Self::Node<V>) {
        bitmap::set_first(&mut n.dirty, Self::FANOUT);
    }
    fn has_marks<V>(n: &Self::Node<V>) -> bool {
        bitmap::any(&n.dirty)
    }
    fn mark_used<V>(n: &mut Self::Node<V>, like: &Self::Node<V>) {
        for (d, (p, l)) in n.dirty.iter_mut().zip(like.present().iter().zip(like.dirty.iter())) {
            *d |= p | l;
        }
    }
    fn stats<V, B: Backend>(_: &(), _: &mut [StoreStats; MAX_LEVELS]) {}
    fn reserve<V, B: Backend>(_: &mut (), _: &Need) -> Result<(), u8> {
        Ok(())
    }

    #[inline(always)]
    fn get<'a, V, B: Backend>(n: &'a Self::Node<V>, _: &'a (), addr: u64) -> Option<(Page, &'a V)> {
        let i = index::<Self>(addr);
        n.get(i).map(|v| (page_of::<Self>(addr), v))
    }

    #[inline(always)]
    fn get_mut<'a, V, B: Backend>(
        n: &'a mut Self::Node<V>,
        _: &'a mut (),
        addr: u64,
    ) -> Option<(Page, &'a mut V)> {
        let i = index::<Self>(addr);
        if n.get(i).is_some() {
            bitmap::set(&mut n.dirty, i);
        }
        n.get_mut(i).map(|v| (page_of::<Self>(addr), v))
    }

    fn probe<V, B: Backend>(n: &Self::Node<V>, _: &(), addr: u64, _: u8, _: &mut Need) -> Probe {
        match n.get(index::<Self>(addr)) {
            Some(_) => Probe::Occupied,
            None => Probe::Vacant,
        }
    }

    fn insert<V, B: Backend>(n: &mut Self::Node<V>, _: &mut (), addr: u64, _: u8, v: V) -> Option<V> {
        let i = index::<Self>(addr);
        bitmap::set(&mut n.dirty, i);
        n.insert(i, v)
    }

    #[inline]
    fn insert_existing<V, B: Backend>(
        n: &mut Self::Node<V>,
        _: &mut (),
        addr: u64,
        _: u8,
        v: V,
    ) -> Result<Option<V>, V> {
        let i = index::<Self>(addr);
        bitmap::set(&mut n.dirty, i);
        Ok(n.insert(i, v))
    }

    fn count_entries<V, B: Backend>(n: &Self::Node<V>, _: &()) -> usize {
        n.len()
    }

    fn free_children<V, B: Backend>(_: Self::Node<V>, _: &mut ()) {}

    fn remove<V, B: Backend>(n: &mut Self::Node<V>, _: &mut (), base: u64, addr: u64) -> Option<(Page, V)> {
        let i = index::<Self>(addr);
        let v = n.take(i)?;
        bitmap::set(&mut n.dirty, i);
        Some((slot_page::<Self>(base, i), v))
    }
}

impl<S: LevelSpec, D: Chain> Chain for Upper<S, D> {
    type Node<V> = InnerNode<V, S::Width>;
    type Stores<V, B: Backend> = UpperStores<B::Store<D::Node<V>>, D::Stores<V, B>>;

    fn new_stores<V, B: Backend>(b: &B) -> Self::Stores<V, B> {
        UpperStores { children: b.new_store(D::LEVEL), below: D::new_stores(b) }
    }
    fn clone_node<V: Clone>(n: &Self::Node<V>) -> Self::Node<V> {
        n.clone()
    }
    fn clone_stores<V: Clone, B: Backend>(s: &Self::Stores<V, B>) -> Self::Stores<V, B> {
        UpperStores { children: s.children.clone_with(D::clone_node), below: D::clone_stores(&s.below) }
    }
    fn clear_stores<V, B: Backend>(s: &mut Self::Stores<V, B>) {
        /// Clears the levels below even if dropping this level's unwinds.
        struct Below<'a, D: Chain, V, B: Backend>(&'a mut D::Stores<V, B>);
        impl<D: Chain, V, B: Backend> Drop for Below<'_, D, V, B> {
            fn drop(&mut self) {
                D::clear_stores(self.0);
            }
        }
        let below = Below::<D, V, B>(&mut s.below);
        s.children.clear();
        drop(below);
    }
    fn node_len<V>(n: &Self::Node<V>) -> usize {
        n.len as usize
    }
    fn mark_all<V>(n: &mut Self::Node<V>) {
        bitmap::set_first(&mut n.dirty, Self::FANOUT);
    }
    fn has_marks<V>(n: &Self::Node<V>) -> bool {
        bitmap::any(&n.dirty)
    }
    fn mark_used<V>(n: &mut Self::Node<V>, like: &Self::Node<V>) {
        for (i, slot) in like.slots.iter().enumerate() {
            if !matches!(slot, Slot::Empty) || bitmap::get(&like.dirty, i) {
                bitmap::set(&mut n.dirty, i);
            }
        }
    }
    fn stats<V, B: Backend>(s: &Self::Stores<V, B>, out: &mut [StoreStats; MAX_LEVELS]) {
        out[D::LEVEL as usize] = StoreStats {
            nodes: s.children.len(),
            bytes: s.children.bytes(),
            available: s.children.available(),
            capacity: s.children.capacity(),
        };
        D::stats(&s.below, out);
    }
    fn reserve<V, B: Backend>(s: &mut Self::Stores<V, B>, need: &Need) -> Result<(), u8> {
        let added = s.children.try_reserve(need[D::LEVEL as usize]).map_err(|_| D::LEVEL)?;
        D::reserve(&mut s.below, need).inspect_err(|_| s.children.unreserve(added))
    }

    #[inline(always)]
    fn get<'a, V, B: Backend>(
        n: &'a Self::Node<V>,
        s: &'a Self::Stores<V, B>,
        addr: u64,
    ) -> Option<(Page, &'a V)> {
        match &n.slots[index::<Self>(addr)] {
            Slot::Table(id) => D::get(s.children.get(*id), &s.below, addr),
            Slot::Large(v) => Some((page_of::<Self>(addr), v)),
            Slot::Empty => None,
        }
    }

    #[inline(always)]
    fn get_mut<'a, V, B: Backend>(
        n: &'a mut Self::Node<V>,
        s: &'a mut Self::Stores<V, B>,
        addr: u64,
    ) -> Option<(Page, &'a mut V)> {
        let i = index::<Self>(addr);
        let found = match &mut n.slots[i] {
            Slot::Table(id) => D::get_mut(s.children.get_mut(*id), &mut s.below, addr),
            Slot::Large(v) => Some((page_of::<Self>(addr), v)),
            Slot::Empty => None,
        };
        if found.is_some() {
            bitmap::set(&mut n.dirty, i);
        }
        found
    }

    fn probe<V, B: Backend>(
        n: &Self::Node<V>,
        s: &Self::Stores<V, B>,
        addr: u64,
        level: u8,
        need: &mut Need,
    ) -> Probe {
        let i = index::<Self>(addr);
        match (&n.slots[i], level == Self::LEVEL) {
            (Slot::Empty, true) => Probe::Vacant,
            (Slot::Large(_), true) => Probe::Occupied,
            (Slot::Table(_), true) => Probe::Smaller,
            (Slot::Large(_), false) => Probe::Larger(page_of::<Self>(addr)),
            (Slot::Table(id), false) => D::probe(s.children.get(*id), &s.below, addr, level, need),
            (Slot::Empty, false) => {
                for l in level..Self::LEVEL {
                    need[l as usize] += 1;
                }
                Probe::Vacant
            }
        }
    }

    fn insert<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        v: V,
    ) -> Option<V> {
        let i = index::<Self>(addr);
        if level == Self::LEVEL {
            return match n.set(i, Slot::Large(v)) {
                Slot::Large(old) => Some(old),
                _ => None,
            };
        }
        let id = match n.slots[i] {
            Slot::Table(id) => id,
            Slot::Empty => add_child::<D, V, B, S::Width>(n, &mut s.children, i),
            Slot::Large(_) => unreachable!("insert under a larger entry"),
        };
        bitmap::set(&mut n.dirty, i);
        D::insert(s.children.get_mut(id), &mut s.below, addr, level, v)
    }

    #[inline]
    fn insert_existing<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        addr: u64,
        level: u8,
        v: V,
    ) -> Result<Option<V>, V> {
        let i = index::<Self>(addr);
        match &mut n.slots[i] {
            Slot::Table(id) if level < Self::LEVEL => {
                let id = *id;
                let out = D::insert_existing(s.children.get_mut(id), &mut s.below, addr, level, v)?;
                bitmap::set(&mut n.dirty, i);
                Ok(out)
            }
            Slot::Large(old) if level == Self::LEVEL => {
                bitmap::set(&mut n.dirty, i);
                Ok(Some(core::mem::replace(old, v)))
            }
            Slot::Empty if level == Self::LEVEL => {
                n.set(i, Slot::Large(v));
                Ok(None)
            }
            _ => Err(v),
        }
    }

    fn count_entries<V, B: Backend>(n: &Self::Node<V>, s: &Self::Stores<V, B>) -> usize {
        n.slots
            .iter()
            .map(|slot| match *slot {
                Slot::Table(id) => D::count_entries(s.children.get(id), &s.below),
                Slot::Large(_) => 1,
                Slot::Empty => 0,
            })
            .sum()
    }

    fn free_children<V, B: Backend>(n: Self::Node<V>, s: &mut Self::Stores<V, B>) {
        for slot in n.slots.iter() {
            if let Slot::Table(id) = *slot {
                let child = s.children.remove(id);
                D::free_children(child, &mut s.below);
            }
        }
    }

    fn remove<V, B: Backend>(
        n: &mut Self::Node<V>,
        s: &mut Self::Stores<V, B>,
        base: u64,
        addr: u64,
    ) -> Option<(Page, V)> {
        let i = index::<Self>(addr);
        match &n.slots[i] {
            Slot::Empty => None,
            Slot::Large(_) => match n.set(i, Slot::Empty) {
                Slot::Large(v) => Some((slot_page::<Self>(base, i), v)),
                _ => unreachable!(),
            },
            &Slot::Table(id) => {
                let child = s.children.get_mut(id);
                let child_base = slot_page::<Self>(base, i).addr();
                let out = D::remove(child, &mut s.below, child_base, addr)?;
                bitmap::set(&mut n.dirty, i);
                if D::node_len(s.children.get(id)) == 0 {
                    drop(s.children.remove(id));
                    n.set(i, Slot::Empty);
                }
                Some(out)
            }
        }
    }
}

/// Puts a new, empty table in the empty slot `i` of `n` and returns its id.
///
/// If the slot was marked changed since the last report (an entry or a table
/// was removed there), every slot of the new table is marked too, so that
/// the next report covers the whole region and not only what is added now.
pub fn add_child<D: Chain, V, B: Backend, W: Width>(
    n: &mut InnerNode<V, W>,
    children: &mut B::Store<D::Node<V>>,
    i: usize,
) -> u32 {
    let mut child = D::Node::default();
    if bitmap::get(&n.dirty, i) {
        D::mark_all(&mut child);
    }
    let id = children.insert(child);
    n.set(i, Slot::Table(id));
    id
}

/// Frees the table `id` in slot `i` of `n` when dropped, if it is empty by
/// then. Walks that may unwind half-way (a value's drop or a caller's
/// closure panicking) go down through it, so that a table they emptied is
/// freed even then.
pub struct PruneOnDrop<'a, D: Chain, V, B: Backend, W: Width> {
    n: &'a mut InnerNode<V, W>,
    /// The store of the level below, holding the table.
    pub children: &'a mut B::Store<D::Node<V>>,
    i: usize,
    id: u32,
}

impl<'a, D: Chain, V, B: Backend, W: Width> PruneOnDrop<'a, D, V, B, W> {
    pub fn new(
        n: &'a mut InnerNode<V, W>,
        children: &'a mut B::Store<D::Node<V>>,
        i: usize,
        id: u32,
    ) -> Self {
        PruneOnDrop { n, children, i, id }
    }
}

impl<D: Chain, V, B: Backend, W: Width> Drop for PruneOnDrop<'_, D, V, B, W> {
    fn drop(&mut self) {
        if D::node_len(self.children.get(self.id)) == 0 {
            // An empty table holds no value: dropping it cannot panic.
            drop(self.children.remove(self.id));
            self.n.set(self.i, Slot::Empty);
        }
    }
}

/// Collects store figures for a whole chain, root excluded.
pub fn all_stats<T: Chain, V, B: Backend>(s: &T::Stores<V, B>) -> [StoreStats; MAX_LEVELS] {
    let mut out = [StoreStats::default(); MAX_LEVELS];
    T::stats(s, &mut out);
    out
}
