//! Public cursors: [`Cursor`] and [`CursorMut`], a position between two
//! entries that moves both ways, as `BTreeMap`'s cursors.
//!
//! A cursor sits in a *gap*: every entry that starts below the gap's
//! address is before it, every other entry after it. The gap is never
//! inside an entry (a large page is always wholly on one side), so
//! [`next`](Cursor::next) yields a whole entry and moves the gap past its
//! last byte, and [`prev`](Cursor::prev) yields the entry before and moves
//! the gap to its first byte.
//!
//! Under it runs the raw layer's walk engine: a cursor keeps the path from
//! the root for the direction it last moved in, so steps in one direction
//! cost O(1) amortised per entry and per table (as iteration does); turning
//! round, seeking, or a removal start a new walk from the root, O(levels).

use core::fmt;

use crate::addr::Address;
use crate::backend::{Backend, Heap};
use crate::geometry::{Geometry, X86_4Level};
use crate::iter::bounds;
use crate::page::Page;
use crate::raw::RawTable;
use crate::raw::cursor::Cursor as RawCursor;
use crate::table::MemTable;

/// The gap and the walks next to it.
///
/// # Invariants
/// - `pos` is `None` (after every entry) or an address in reach that no
///   entry covers except one that starts there;
/// - `fwd`, when set, is a raw cursor of the table whose next forward yield
///   is the first entry at or after `pos`; `back`, when set, one whose next
///   backward yield is the last entry before `pos`; both are dropped when
///   the table's shape changes.
#[derive(Clone)]
struct Gap {
    pos: Option<u64>,
    fwd: Option<RawCursor>,
    back: Option<RawCursor>,
}

/// An entry a step yielded: its page, its value, and whether a marking
/// step marked it for the first time since the last report.
type Found<V> = (Page, *mut V, bool);

impl Gap {
    /// The last address in reach of `G`.
    fn top<G: Geometry>() -> u64 {
        bounds::<G>(&(..)).map_or(0, |(_, last)| last)
    }

    fn front() -> Gap {
        Gap { pos: Some(0), fwd: None, back: None }
    }

    fn back() -> Gap {
        Gap { pos: None, fwd: None, back: None }
    }

    /// The gap before the entry covering `addr`, or before the first entry
    /// after it; after everything if `addr` is out of reach.
    fn at<V, G: Geometry, B: Backend>(raw: &RawTable<V, G, B>, addr: u64) -> Gap {
        let pos = G::in_reach(addr).then(|| raw.find(addr).map_or(addr, |(p, _)| p.addr()));
        Gap { pos, fwd: None, back: None }
    }

    /// The gap just past `p`.
    fn after<G: Geometry>(p: Page) -> Option<u64> {
        p.last().checked_add(1).filter(|&a| G::in_reach(a))
    }

    /// The forward walk from the gap, made if need be.
    fn fwd<V, G: Geometry, B: Backend>(&mut self, raw: &RawTable<V, G, B>, a: u64) -> &mut RawCursor {
        self.fwd.get_or_insert_with(|| RawCursor::new::<V, G>(raw.root, a, false))
    }

    /// The backward walk from the gap (`hi`: the last address before it).
    fn bwd<V, G: Geometry, B: Backend>(&mut self, raw: &RawTable<V, G, B>, hi: u64) -> &mut RawCursor {
        self.back.get_or_insert_with(|| RawCursor::new::<V, G>(raw.root, hi, true))
    }

    /// The last address before the gap, if any.
    fn hi<G: Geometry>(&self) -> Option<u64> {
        match self.pos {
            None => Some(Self::top::<G>()),
            Some(a) => a.checked_sub(1),
        }
    }

    /// The entry after the gap; moves the gap past it if `step`. With
    /// `mark`, marks it (a mutable access).
    ///
    /// # Safety
    /// `raw` is the table the gap was made for, changed since only through
    /// values (not its shape), or the walks were dropped.
    unsafe fn forward<V, G: Geometry, B: Backend>(
        &mut self,
        raw: &RawTable<V, G, B>,
        step: bool,
        mark: bool,
    ) -> Option<Found<V>> {
        let a = self.pos?;
        let top = Self::top::<G>();
        let found = if step {
            let c = self.fwd(raw, a);
            // SAFETY: the walk was made for this table (caller).
            unsafe { c.next::<V, G>(a, top, mark) }.map(|(p, v)| (p, v, c.fresh))
        } else {
            let mut c = self.fwd(raw, a).clone();
            // SAFETY: as above; a copy, so the gap's walk does not move.
            unsafe { c.next::<V, G>(a, top, mark) }.map(|(p, v)| (p, v, c.fresh))
        };
        if let (true, Some((p, ..))) = (step, found) {
            self.pos = Self::after::<G>(p);
            self.back = None;
        }
        found
    }

    /// The entry before the gap; as [`forward`](Self::forward).
    ///
    /// # Safety
    /// As for [`forward`](Self::forward).
    unsafe fn backward<V, G: Geometry, B: Backend>(
        &mut self,
        raw: &RawTable<V, G, B>,
        step: bool,
        mark: bool,
    ) -> Option<Found<V>> {
        let hi = self.hi::<G>()?;
        let found = if step {
            let c = self.bwd(raw, hi);
            // SAFETY: the walk was made for this table (caller).
            unsafe { c.next_back::<V, G>(0, hi, mark) }.map(|(p, v)| (p, v, c.fresh))
        } else {
            let mut c = self.bwd(raw, hi).clone();
            // SAFETY: as above, on a copy.
            unsafe { c.next_back::<V, G>(0, hi, mark) }.map(|(p, v)| (p, v, c.fresh))
        };
        if let (true, Some((p, ..))) = (step, found) {
            self.pos = Some(p.addr());
            self.fwd = None;
        }
        found
    }

    /// The entry after (or before) the gap, without moving or marking and
    /// without keeping a walk.
    fn peek<V, G: Geometry, B: Backend>(
        &self,
        raw: &RawTable<V, G, B>,
        after: bool,
    ) -> Option<(Page, *mut V)> {
        let mut copy = self.clone();
        // SAFETY: the gap's walks were made for this table, which has not
        // changed shape since (type invariant of the cursors).
        unsafe { if after { copy.forward(raw, false, false) } else { copy.backward(raw, false, false) } }
            .map(|(p, v, _)| (p, v))
    }
}

impl fmt::Debug for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(a) => write!(f, "{a:#x}"),
            None => f.write_str("end"),
        }
    }
}

/// A read-only cursor over a table's entries, both ways: from
/// [`MemTable::cursor_front`], [`MemTable::cursor_back`] and
/// [`MemTable::cursor_at`].
///
/// The cursor sits in a gap between two entries: every entry that starts
/// below the gap's [`position`](Self::position) is before it, every other
/// one after it. The gap is never inside an entry: a large entry is one
/// entry, wholly on one side, yielded whole with its [`Page`].
///
/// Cost: a step in the direction of the last step is O(1) amortised (one
/// walk, never from the root); the first step after turning round or a
/// [`seek`](Self::seek) walks down from the root, O(levels). A `peek_*`
/// costs a step on a copy of the walk (O(levels) if there is none yet).
///
/// ```
/// use mem_table::{Level, MemTable};
/// let mut t: MemTable<char> = MemTable::new();
/// t.insert(0x1000, 'a').unwrap();
/// t.insert_at(0x20_0000, Level::new(1), 'B').unwrap(); // 2 MiB
/// t.insert(0x40_0000, 'c').unwrap();
///
/// let mut c = t.cursor_at(0x23_4567); // inside the 2 MiB page: before it
/// assert_eq!(c.peek_next().map(|(p, v)| (p.addr(), *v)), Some((0x20_0000, 'B')));
/// assert_eq!(c.prev().map(|(_, v)| *v), Some('a'));
/// assert_eq!(c.next().map(|(_, v)| *v), Some('a'));
/// assert_eq!(c.next().map(|(_, v)| *v), Some('B'));
/// assert_eq!(c.position(), Some(0x40_0000));
/// assert_eq!(c.next().map(|(_, v)| *v), Some('c'));
/// assert_eq!(c.next(), None);
/// ```
pub struct Cursor<'a, V, G: Geometry = X86_4Level, B: Backend = Heap> {
    table: &'a MemTable<V, G, B>,
    gap: Gap,
}

impl<'a, V, G: Geometry, B: Backend> Cursor<'a, V, G, B> {
    /// The entry after the cursor; moves the cursor past it.
    #[allow(clippy::should_implement_trait)] // `std`'s cursor name; a cursor also goes back
    pub fn next(&mut self) -> Option<(Page, &'a V)> {
        // SAFETY: the table is borrowed shared for 'a: it does not change.
        let (p, v, _) = unsafe { self.gap.forward(&self.table.raw, true, false) }?;
        // SAFETY: an initialized value of the table, borrowed for 'a.
        Some((p, unsafe { &*v }))
    }

    /// The entry before the cursor; moves the cursor before it.
    pub fn prev(&mut self) -> Option<(Page, &'a V)> {
        // SAFETY: as in `next`.
        let (p, v, _) = unsafe { self.gap.backward(&self.table.raw, true, false) }?;
        // SAFETY: as in `next`.
        Some((p, unsafe { &*v }))
    }

    /// The entry after the cursor, which stays.
    pub fn peek_next(&self) -> Option<(Page, &'a V)> {
        // SAFETY: as in `next`.
        self.gap.peek(&self.table.raw, true).map(|(p, v)| (p, unsafe { &*v }))
    }

    /// The entry before the cursor, which stays.
    pub fn peek_prev(&self) -> Option<(Page, &'a V)> {
        // SAFETY: as in `next`.
        self.gap.peek(&self.table.raw, false).map(|(p, v)| (p, unsafe { &*v }))
    }

    /// Moves the cursor before the entry covering `addr` (any byte address;
    /// the whole large page if one covers it), or before the first entry
    /// after `addr` if none covers it; past everything if `addr` is out of
    /// reach. O(levels).
    pub fn seek(&mut self, addr: impl Address) {
        let addr = addr.to_u64();
        self.gap = Gap::at(&self.table.raw, addr);
    }

    /// Where the cursor is: the address every entry after it starts at or
    /// above (every entry before it starts below), or `None` past the end
    /// of the address space.
    pub fn position(&self) -> Option<u64> {
        self.gap.pos
    }
}

impl<V, G: Geometry, B: Backend> Clone for Cursor<'_, V, G, B> {
    fn clone(&self) -> Self {
        Cursor { table: self.table, gap: self.gap.clone() }
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for Cursor<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cursor").field("position", &self.gap).finish_non_exhaustive()
    }
}

/// A cursor that may change and remove entries: from
/// [`MemTable::cursor_front_mut`], [`MemTable::cursor_back_mut`] and
/// [`MemTable::cursor_at_mut`].
///
/// Moves as [`Cursor`] does. Every step and peek hands out the value
/// mutably and marks the entry changed (see
/// [`take_changes`](MemTable::take_changes)); to look without marking, use
/// [`as_cursor`](Self::as_cursor).
///
/// [`remove_next`](Self::remove_next) and [`remove_prev`](Self::remove_prev)
/// remove the entry next to the cursor, whatever its level (a large page
/// is removed whole), and free the tables it leaves empty; they cost
/// O(levels): the removal walks from the root, and the cursor's next step
/// walks down again.
///
/// ```
/// use mem_table::MemTable;
/// let mut t: MemTable<u32> = (0..8u64).map(|i| (i << 12, i as u32)).collect();
/// let mut c = t.cursor_at_mut(0x2000);
/// *c.next().unwrap().1 += 100;                                  // 0x2000
/// assert_eq!(c.remove_next().map(|(p, v)| (p.addr(), v)), Some((0x3000, 3)));
/// assert_eq!(c.remove_prev().map(|(p, v)| (p.addr(), v)), Some((0x2000, 102)));
/// assert_eq!(c.peek_next().map(|(p, _)| p.addr()), Some(0x4000));
/// assert_eq!(t.len(), 6);
/// ```
pub struct CursorMut<'a, V, G: Geometry = X86_4Level, B: Backend = Heap> {
    table: &'a mut MemTable<V, G, B>,
    gap: Gap,
}

impl<'a, V, G: Geometry, B: Backend> CursorMut<'a, V, G, B> {
    /// Keeps the value of an entry a marking step just marked for the first
    /// time (if values are tracked), and lends it out.
    fn lend(&mut self, found: Option<Found<V>>) -> Option<(Page, &mut V)> {
        let (p, v, fresh) = found?;
        if let (Some(tr), true) = (&mut self.table.raw.track, fresh) {
            // SAFETY: `v` is the initialized value just yielded.
            tr.keep(p.addr(), p.level().index() as u8, Some(unsafe { &*v }));
        }
        // SAFETY: an initialized value of the table, which is borrowed
        // mutably; the reference is tied to the borrow of the cursor.
        Some((p, unsafe { &mut *v }))
    }

    /// The entry after the cursor, mutably (marked changed); moves the
    /// cursor past it.
    #[allow(clippy::should_implement_trait)] // as `Cursor::next`
    pub fn next(&mut self) -> Option<(Page, &mut V)> {
        // SAFETY: the table changes shape only through this cursor, which
        // drops its walks when it does.
        let found = unsafe { self.gap.forward(&self.table.raw, true, true) };
        self.lend(found)
    }

    /// The entry before the cursor, mutably (marked changed); moves the
    /// cursor before it.
    pub fn prev(&mut self) -> Option<(Page, &mut V)> {
        // SAFETY: as in `next`.
        let found = unsafe { self.gap.backward(&self.table.raw, true, true) };
        self.lend(found)
    }

    /// The entry after the cursor, mutably (marked changed); the cursor
    /// stays.
    pub fn peek_next(&mut self) -> Option<(Page, &mut V)> {
        // SAFETY: as in `next`.
        let found = unsafe { self.gap.forward(&self.table.raw, false, true) };
        self.lend(found)
    }

    /// The entry before the cursor, mutably (marked changed); the cursor
    /// stays.
    pub fn peek_prev(&mut self) -> Option<(Page, &mut V)> {
        // SAFETY: as in `next`.
        let found = unsafe { self.gap.backward(&self.table.raw, false, true) };
        self.lend(found)
    }

    /// Moves the cursor as [`Cursor::seek`] does.
    pub fn seek(&mut self, addr: impl Address) {
        let addr = addr.to_u64();
        self.gap = Gap::at(&self.table.raw, addr);
    }

    /// Where the cursor is, as [`Cursor::position`].
    pub fn position(&self) -> Option<u64> {
        self.gap.pos
    }

    /// A read-only cursor at the same place, for looking without marking.
    pub fn as_cursor(&self) -> Cursor<'_, V, G, B> {
        Cursor { table: self.table, gap: self.gap.clone() }
    }

    /// Removes the entry after the cursor, whatever its level (a large
    /// page whole), and returns it; the cursor stays, now before the entry
    /// that followed. Tables left empty are freed; the entry is marked
    /// changed. O(levels).
    pub fn remove_next(&mut self) -> Option<(Page, V)> {
        let (p, _) = self.gap.peek(&self.table.raw, true)?;
        self.remove(p)
    }

    /// Removes the entry before the cursor, whatever its level, and returns
    /// it; the cursor stays, now after the entry before that. As
    /// [`remove_next`](Self::remove_next).
    pub fn remove_prev(&mut self) -> Option<(Page, V)> {
        let (p, _) = self.gap.peek(&self.table.raw, false)?;
        self.remove(p)
    }

    /// Removes the entry `p`, which is next to the cursor.
    fn remove(&mut self, p: Page) -> Option<(Page, V)> {
        // The removal may free tables on the walks' paths.
        self.gap.fwd = None;
        self.gap.back = None;
        let removed = self.table.raw.remove_covering(p.addr());
        debug_assert_eq!(removed.as_ref().map(|r| r.0), Some(p));
        removed
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for CursorMut<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CursorMut").field("position", &self.gap).finish_non_exhaustive()
    }
}

// SAFETY: a `Cursor` is a shared borrow of the table: it hands out `&V`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Send for Cursor<'_, V, G, B> {}
// SAFETY: as above; `&Cursor` allows only peeks (`&V`) and cloning.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for Cursor<'_, V, G, B> {}
// SAFETY: a `CursorMut` is a mutable borrow of the table: it hands out
// `&mut V` and `V`.
unsafe impl<V: Send, G: Geometry, B: Backend> Send for CursorMut<'_, V, G, B> {}
// SAFETY: `&CursorMut` allows `as_cursor` (`&V`) and `Debug`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for CursorMut<'_, V, G, B> {}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// A cursor before the first entry. O(1); the first step O(levels).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let t: MemTable<u8> = [(0x1000, 1), (0x2000, 2)].into_iter().collect();
    /// let mut c = t.cursor_front();
    /// assert_eq!(c.prev(), None);
    /// assert_eq!(c.next().map(|(_, v)| *v), Some(1));
    /// ```
    pub fn cursor_front(&self) -> Cursor<'_, V, G, B> {
        Cursor { table: self, gap: Gap::front() }
    }

    /// A cursor after the last entry. O(1); the first step O(levels).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let t: MemTable<u8> = [(0x1000, 1), (0x2000, 2)].into_iter().collect();
    /// let mut c = t.cursor_back();
    /// assert_eq!(c.next(), None);
    /// assert_eq!(c.prev().map(|(_, v)| *v), Some(2));
    /// ```
    pub fn cursor_back(&self) -> Cursor<'_, V, G, B> {
        Cursor { table: self, gap: Gap::back() }
    }

    /// A cursor before the entry covering `addr` (any byte address; at a
    /// large page, before the whole page), or before the first entry after
    /// `addr`; see [`Cursor::seek`]. O(levels).
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, Level::new(1), 1).unwrap();
    /// let c = t.cursor_at(0x30_0000);
    /// assert_eq!(c.position(), Some(0x20_0000));
    /// assert_eq!(c.peek_next().map(|(p, _)| p.level()), Some(Level::new(1)));
    /// ```
    pub fn cursor_at(&self, addr: impl Address) -> Cursor<'_, V, G, B> {
        let addr = addr.to_u64();
        Cursor { table: self, gap: Gap::at(&self.raw, addr) }
    }

    /// A mutable cursor before the first entry.
    pub fn cursor_front_mut(&mut self) -> CursorMut<'_, V, G, B> {
        CursorMut { table: self, gap: Gap::front() }
    }

    /// A mutable cursor after the last entry.
    pub fn cursor_back_mut(&mut self) -> CursorMut<'_, V, G, B> {
        CursorMut { table: self, gap: Gap::back() }
    }

    /// A mutable cursor placed as [`cursor_at`](Self::cursor_at) places
    /// one.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0x20_0000, Level::new(1), 1).unwrap();
    /// t.insert(0x40_0000, 2).unwrap();
    /// // A removal at the cursor removes the whole entry there, of any level.
    /// let mut c = t.cursor_at_mut(0x21_0000);
    /// let (page, v) = c.remove_next().unwrap();
    /// assert_eq!((page.addr(), page.level(), v), (0x20_0000, Level::new(1), 1));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn cursor_at_mut(&mut self, addr: impl Address) -> CursorMut<'_, V, G, B> {
        let addr = addr.to_u64();
        let gap = Gap::at(&self.raw, addr);
        CursorMut { table: self, gap }
    }
}
