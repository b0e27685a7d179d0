//! Reservations: spare tables the writer keeps, per level, so that a
//! reserved operation makes no allocation; and the writer's state that
//! lives in the table between writers.
//!
//! The spare tables are fresh, empty nodes that no reader has ever seen:
//! a table the writer needs is drawn from its level's spares when there
//! are any, and made by the global allocator otherwise.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{MemTable, Writer, check_place};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS};
use crate::page::Level;
use crate::sync::atom::Value;
use crate::sync::node::{Kind, Link, Node};
use crate::sync::prim::own_load_ptr;
use crate::sync::reclaim::Reclaim;

/// What the writer keeps in the table between writer handles.
///
/// # Invariants
/// Every node in `spare[l]` is a fresh node of the kind stored with it (the
/// kind of a level `l` table), never linked, owned by this state alone.
/// Only the holder of the table's writer lock (or of `&mut` to the table)
/// touches it.
#[derive(Default)]
pub(crate) struct WriterState {
    /// Spare tables per level, drawn by whichever operations make tables.
    pub(super) spare: [Vec<(Node, Kind)>; MAX_LEVELS],
    /// The change marks: disjoint, non-adjacent inclusive address ranges
    /// (`start -> last`), or `None` while changes are not tracked.
    pub(super) marks: Option<BTreeMap<u64, u64>>,
}

impl WriterState {
    /// Frees every spare table.
    fn free_spares(&mut self) {
        for l in self.spare.iter_mut() {
            for (n, k) in l.drain(..) {
                // SAFETY: (invariant) fresh, never linked, ours alone.
                unsafe { n.free(k) };
            }
        }
    }
}

impl Drop for WriterState {
    fn drop(&mut self) {
        self.free_spares();
    }
}

impl<V: Value, G: Geometry, R: Reclaim> Writer<'_, V, G, R> {
    /// The writer's state, mutably.
    pub(super) fn ws(&mut self) -> &mut WriterState {
        // SAFETY: we hold the writer lock, so no other writer touches the
        // state, readers never do, and `&mut self` makes this the only
        // reference through this writer.
        unsafe { &mut *self.t.ws.get() }
    }

    /// The writer's state.
    pub(super) fn ws_ref(&self) -> &WriterState {
        // SAFETY: as in `ws`; a shared borrow of the writer allows no
        // mutable one meanwhile.
        unsafe { &*self.t.ws.get() }
    }

    /// A new empty table of level `l`: a spare one if there is one (no
    /// allocation), else one from the global allocator (which aborts on
    /// failure).
    pub(super) fn new_table(&mut self, l: usize) -> Node {
        match self.ws().spare[l].pop() {
            Some((n, k)) => {
                debug_assert_eq!(k, MemTable::<V, G, R>::kind(l));
                n
            }
            None => Node::new(MemTable::<V, G, R>::kind(l)),
        }
    }

    /// Adds `need[l]` spare tables at each level `l`.
    fn add_spares(&mut self, need: &[usize; MAX_LEVELS]) {
        for (l, &n) in need.iter().enumerate() {
            let kind = MemTable::<V, G, R>::kind(l);
            let spare = &mut self.ws().spare[l];
            spare.reserve(n);
            for _ in 0..n {
                spare.push((Node::new(kind), kind));
            }
        }
    }

    /// The spare tables kept at `level`: what reservations have put aside
    /// and no operation has drawn yet.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u32> = MemTable::new();
    /// let mut w = t.writer();
    /// w.reserve_insert(0x1000, Level::BASE).unwrap();
    /// assert_eq!((w.reserved(Level::BASE), w.reserved(Level::new(2))), (1, 1));
    /// w.insert(0x1000, 1).unwrap(); // draws them
    /// assert_eq!(w.reserved(Level::BASE), 0);
    /// ```
    pub fn reserved(&self, level: Level) -> usize {
        self.ws_ref().spare.get(level.index()).map_or(0, Vec::len)
    }

    /// The tables an insert at `(addr, level)` would make, per level, with
    /// the checks and errors of [`insert_at`](Self::insert_at).
    fn plan_insert(&self, addr: u64, level: Level) -> Result<[usize; MAX_LEVELS], Error> {
        check_place::<G>(addr, level)?;
        let mut need = [0; MAX_LEVELS];
        let lt = level.index();
        let mut t = self.t.root;
        let mut l = MemTable::<V, G, R>::TOP;
        while l > lt {
            let lv = MemTable::<V, G, R>::lv(l);
            // SAFETY: the writer's live upper table, masked index.
            match MemTable::<V, G, R>::link_of(own_load_ptr(unsafe { t.link(lv.index(addr)) })) {
                Link::Table(c) => t = c,
                Link::Empty => {
                    need[lt..l].iter_mut().for_each(|n| *n = 1);
                    return Ok(need);
                }
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                    let p = crate::raw::page_at(addr, l as u8, lv.shift);
                    return Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ()));
                }
            }
            l -= 1;
        }
        if lt > 0 {
            let lv = MemTable::<V, G, R>::lv(lt);
            // SAFETY: as above.
            let w = own_load_ptr(unsafe { t.link(lv.index(addr)) });
            if let Link::Table(_) = MemTable::<V, G, R>::link_of(w) {
                return Err(Error::new(ErrorKind::ConflictSmaller, addr, level, ()));
            }
        }
        Ok(need)
    }

    /// Reserves the tables an insert at `(addr, level)` needs, so that the
    /// insert itself makes no allocation, as
    /// [`crate::MemTable::reserve_insert`]: reservations add up, and are
    /// counts of spare tables per level drawn by whichever operations make
    /// tables next (an insert whose path exists draws nothing). The spare
    /// tables are made now, by the global allocator, which aborts if it
    /// fails (there is no `OutOfNodes`).
    ///
    /// What a reservation does not cover: a large value of a 64-bit type
    /// is a box made at the insert, and with change tracking on
    /// ([`track_changes`](Self::track_changes)) a mark may allocate.
    ///
    /// # Errors
    /// As [`insert_at`](Self::insert_at) would, the table unchanged:
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger),
    /// [`ConflictSmaller`](ErrorKind::ConflictSmaller).
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.reserve_insert(0x1000, Level::BASE).unwrap();
    /// w.reserve_insert(1 << 40, Level::BASE).unwrap(); // adds up
    /// // ... no allocation from here:
    /// w.insert(0x1000, 1).unwrap();
    /// w.insert(1 << 40, 2).unwrap();
    /// ```
    #[doc(alias = "try_reserve")]
    pub fn reserve_insert(&mut self, addr: u64, level: Level) -> Result<(), Error> {
        let need = self.plan_insert(addr, level)?;
        self.add_spares(&need);
        Ok(())
    }

    /// Reserves the table a [`split_with`](Self::split_with) of the entry
    /// at `(addr, level)` needs, as [`crate::MemTable::reserve_split`].
    ///
    /// # Errors
    /// As [`split`](Self::split) would, the table unchanged.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert_at(0x20_0000, Level::new(1), 1).unwrap();
    /// w.reserve_split(0x20_0000, Level::new(1)).unwrap();
    /// w.split(0x20_0000, Level::new(1)).unwrap(); // draws the spare table
    /// assert_eq!(w.reserved(Level::BASE), 0);
    /// ```
    pub fn reserve_split(&mut self, addr: u64, level: Level) -> Result<(), Error> {
        check_place::<G>(addr, level)?;
        let Some(below) = level.below() else {
            return Err(Error::new(ErrorKind::NothingToSplit, addr, level, ()));
        };
        let (_, _, w) = self.walk_to(addr, level.index(), ErrorKind::NothingToSplit)?;
        if !matches!(MemTable::<V, G, R>::link_of(w), Link::Inline(_) | Link::Boxed(_) | Link::Shared(_)) {
            return Err(Error::new(ErrorKind::NothingToSplit, addr, level, ()));
        }
        if !MemTable::<V, G, R>::lv(below.index()).large {
            return Err(Error::new(ErrorKind::NoEntriesAtLevel, addr, below, ()));
        }
        let mut need = [0; MAX_LEVELS];
        need[below.index()] = 1;
        self.add_spares(&need);
        Ok(())
    }

    /// Reserves `additional` tables at `level` (level 0 is the bottom; the
    /// root level needs none), as [`crate::MemTable::reserve_tables`].
    ///
    /// # Errors
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) at or past the top.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.reserve_tables(Level::BASE, 3).unwrap();
    /// assert_eq!(w.reserved(Level::BASE), 3);
    /// assert!(w.reserve_tables(Level::new(3), 1).is_err()); // the root's level
    /// ```
    #[doc(alias = "try_reserve")]
    pub fn reserve_tables(&mut self, level: Level, additional: usize) -> Result<(), Error> {
        if level.index() + 1 >= G::LEVELS {
            return Err(Error::new(ErrorKind::NoEntriesAtLevel, 0, level, ()));
        }
        let mut need = [0; MAX_LEVELS];
        need[level.index()] = additional;
        self.add_spares(&need);
        Ok(())
    }

    /// Drops every reservation and frees the spare tables now (they were
    /// never published: no grace period). Unlike
    /// [`crate::MemTable::unreserve`], nothing is kept for a later
    /// `shrink_to_fit`.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.reserve_tables(Level::BASE, 2).unwrap();
    /// w.unreserve();
    /// assert_eq!(w.reserved(Level::BASE), 0);
    /// ```
    pub fn unreserve(&mut self) {
        self.ws().free_spares();
    }
}
