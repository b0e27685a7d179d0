//! The one walk engine: a cursor that keeps the path from the root to the
//! table it is in, and moves to the next (or previous) entry from there,
//! never from the root.
//!
//! ```text
//!   level 3  [ . . T . . . ]   tab[3] = root,  pos[3] = next slot to look at
//!                  |
//!   level 2  [ . T . L . . ]   tab[2],         pos[2]
//!                |
//!   level 1  [ T . . . . . ]   tab[1],         pos[1]
//!              |
//!   level 0  [ v v . v . v ]   tab[0]: the bottom table, scanned a bitmap
//!                               word at a time (`word`, `bits`)
//! ```
//!
//! Going forward, `pos[l]` is the first slot of `tab[l]` not yet looked at;
//! going backward, it is one past the last. A step scans the occupancy map
//! of the current table from there; an entry (a base value, or a large
//! entry above) is the answer, a child table is entered, and the end of a
//! table goes back up one level. Each table on the way is entered once, so
//! a whole walk costs O(tables + entries).
//!
//! The cursor yields pointers; the iterators wrapped around it decide what
//! may be borrowed and for how long. It is the engine under `iter`,
//! `range`, `iter_mut`, `range_mut`, `into_iter`, `keys`, `values` and their
//! reverses, `first_key_value`, `last_key_value`, `retain`, `pop_first`,
//! `pop_last`, (walking the change maps instead of the occupancy maps)
//! `take_changes`, and (walking tables instead of entries) `compact`.
//!
//! The table walk ([`Cursor::tables`], [`Cursor::next_left`]) is the same
//! cursor stopped one level higher: it scans the occupancy maps of upper
//! tables only, enters child tables of level >= 1, reports a bottom table
//! as left as soon as it finds it (never reading its entries), skips large
//! entries, and reports each table as the walk leaves it ([`Left`]), so
//! children come before their parent and addresses ascend. It costs
//! O(upper slots), not O(entries). The caller may replace or free the
//! table just left, through its slot in the parent; the tables still on
//! the path it must leave alone.

use crate::geometry::{Geometry, MAX_LEVELS};
use crate::page::Page;

use super::RawTable;
use super::bitmap;
use super::layout::{Info, Lv};
use super::node::{Slot, Tab};
use crate::backend::Backend;

/// A position in a table, moving one way.
///
/// # Invariants
/// - `tab[level..=TOP]` is the path from the root to the current table
///   (`tab[l]` a live table of level `l` based at `base[l]`), as long as the
///   table is not changed except through the cursor's own yields (for a
///   table walk, in the slots of the tables it has left);
/// - `bits` is zero unless `level == 0` and the cursor is not done; then it
///   holds the occupied slots of word `word` not yet yielded.
#[derive(Clone, Debug)]
pub struct Cursor {
    tab: [Tab; MAX_LEVELS],
    base: [u64; MAX_LEVELS],
    pos: [usize; MAX_LEVELS],
    level: usize,
    /// The bottom table's word being scanned, and its bits not yet yielded.
    word: usize,
    bits: u64,
    /// The address of slot 0 of word `word`, and a pointer to its value
    /// (null in a packed table): the common step adds the bit's offset to
    /// these.
    wbase: u64,
    wvals: *mut u8,
    /// The bottom table the cursor is in is sparse (read with its form when
    /// it entered the table, as `wvals`).
    sparse: bool,
    done: bool,
    /// The slots on the path above the current table are marked (by a
    /// marking walk's yield since it entered the table).
    path_marked: bool,
    /// The last entry a marking walk yielded was not marked before: its
    /// first mark since the last report.
    pub fresh: bool,
}

/// Where the values of a run of bits handed out by
/// [`Cursor::take_run`] are.
#[derive(Clone, Copy, Debug)]
pub enum RunVals {
    /// A direct table: the value of the word's slot 0; slot `b`'s is `b`
    /// values on.
    Slots(*mut u8),
    /// A packed table: the value of the run's first bit; the next bit's is
    /// the next value (the previous one, backward).
    Packed(*mut u8),
    /// A sparse table: the run's bits are *positions* among the table's
    /// sorted slot indices `idx`, for every present slot to the table's
    /// end (to its start, backward), not just the word's; `vals` is the
    /// value of the first position to be yielded, the next position's the
    /// next value (the previous one, backward), and the run's address is
    /// the table's base.
    Sparse { idx: *const u16, vals: *mut u8 },
}

impl Cursor {
    /// A cursor at the first entry overlapping `lo..` (forward) or the last
    /// overlapping `..=hi` (backward, `rev`), in the table rooted at `root`.
    pub fn new<V, G: Geometry>(root: Tab, at: u64, rev: bool) -> Cursor {
        let top = G::LEVELS - 1;
        let mut c = Cursor {
            tab: [root; MAX_LEVELS],
            base: [0; MAX_LEVELS],
            pos: [0; MAX_LEVELS],
            level: top,
            word: 0,
            bits: 0,
            wbase: 0,
            wvals: core::ptr::null_mut(),
            sparse: false,
            done: false,
            path_marked: false,
            fresh: false,
        };
        let i = Info::<V, G>::lv(top).index(at);
        c.enter::<V, G>(top, root, 0, if rev { i + 1 } else { i }, rev);
        c
    }

    /// A cursor over the change marks of the table rooted at `root`, from
    /// the start: see [`next_mark`](Self::next_mark).
    pub fn marks<G: Geometry>(root: Tab) -> Cursor {
        Cursor {
            tab: [root; MAX_LEVELS],
            base: [0; MAX_LEVELS],
            pos: [0; MAX_LEVELS],
            level: G::LEVELS - 1,
            word: 0,
            bits: 0,
            wbase: 0,
            wvals: core::ptr::null_mut(),
            sparse: false,
            done: false,
            path_marked: false,
            fresh: false,
        }
    }

    /// The next marked slot, ascending: the changed region and a pointer to
    /// the entry now there, if any. With `CLEAR`, clears each mark as it
    /// passes; without, leaves them (a report that may be abandoned). A
    /// marked slot that links a table is entered, not reported; `bits`
    /// stays zero (the walk reads the change maps, not the occupancy maps).
    ///
    /// # Safety
    /// The cursor was made by [`marks`](Self::marks) for this table, which has
    /// not changed since except through the walk.
    pub unsafe fn next_mark<V, G: Geometry, const CLEAR: bool>(&mut self) -> Option<(Page, Option<*mut V>)> {
        const REV: bool = false;
        let top = G::LEVELS - 1;
        // A table slot's mark is cleared when the walk leaves the table, so
        // that a walk stopped half-way (a report leaked, not dropped) leaves
        // the path to the marks it did not reach.
        let hook = &mut Unmark::<V, G, CLEAR>(core::marker::PhantomData);
        while !self.done {
            let l = self.level;
            let lv = Info::<V, G>::lv(l);
            let t = self.tab[l];
            // SAFETY: `t` is a live table of level `l` (invariant).
            unsafe {
                let Some(i) = t.next_marked(lv, self.pos[l], lv.fanout - 1) else {
                    self.up(top, REV, hook);
                    continue;
                };
                self.pos[l] = i + 1;
                let a = self.base[l] + ((i as u64) << lv.shift);
                let page = Page::new(a, l as u8, lv.shift);
                if l == 0 {
                    if CLEAR {
                        t.unmark(lv, i);
                    }
                    return Some((page, t.occupied(lv, i).then(|| t.val::<V>(lv, i))));
                }
                match t.slot(lv, i) {
                    Slot::Empty => {
                        if CLEAR {
                            t.unmark(lv, i);
                        }
                        return Some((page, None));
                    }
                    Slot::Large => {
                        if CLEAR {
                            t.unmark(lv, i);
                        }
                        return Some((page, Some(t.val::<V>(lv, i))));
                    }
                    Slot::Table(c) => {
                        self.tab[l - 1] = c;
                        self.base[l - 1] = a;
                        self.pos[l - 1] = 0;
                        self.level = l - 1;
                    }
                }
            }
        }
        None
    }

    /// A cursor for a post-order walk over the tables (not the entries) of
    /// the table rooted at `root`, from the start: see
    /// [`next_left`](Self::next_left).
    pub fn tables<G: Geometry>(root: Tab) -> Cursor {
        let mut c = Cursor::marks::<G>(root);
        // A root that is a bottom table has no table below it.
        c.done = G::LEVELS == 1;
        c
    }

    /// The next table the walk leaves, children before parents, in
    /// ascending address order; `None` at the end (the root is not
    /// reported). Scans the occupancy maps of upper tables only: a child of
    /// level >= 1 is entered, a bottom child is left at once (its entries
    /// are never looked at), large entries are skipped. A whole walk costs
    /// O(upper slots), not O(entries).
    ///
    /// A table is reported once everything below it has been reported, so a
    /// caller that changes the tables it is given sees its own changes when
    /// their parent comes up.
    ///
    /// # Safety
    /// The cursor was made by [`tables`](Self::tables) for this table
    /// (`V`, `G`). Between calls, the caller may change or replace the
    /// table just left (its slot in `parent` too: free the child, make the
    /// slot an entry), since the cursor no longer points into it; it must
    /// not change the tables still on the path (the parent and above) in
    /// any other slot, nor link new tables anywhere.
    pub unsafe fn next_left<V, G: Geometry>(&mut self) -> Option<Left> {
        const REV: bool = false;
        let top = G::LEVELS - 1;
        let mut report = Report(None);
        while !self.done {
            let l = self.level;
            let lv = Info::<V, G>::lv(l);
            let t = self.tab[l];
            // SAFETY: `t` is a live upper table of level `l` on the path
            // (invariant: the walk never enters a bottom table, and the
            // caller changed the path only in slots already passed).
            let Some(i) = (unsafe { t.next_occupied(lv, self.pos[l], lv.fanout - 1) }) else {
                // The end of `t`: report it (none at the root).
                self.up(top, REV, &mut report);
                return report.0;
            };
            self.pos[l] = i + 1;
            // SAFETY: slot `i` of the live upper table `t` is occupied.
            if let Slot::Table(c) = unsafe { t.slot(lv, i) } {
                let a = self.base[l] + ((i as u64) << lv.shift);
                if l == 1 {
                    // A bottom table: left as soon as it is found.
                    return Some(Left { parent: t, i, child: c, l: 0, base: a });
                }
                self.enter::<V, G>(l - 1, c, a, 0, REV);
            }
        }
        None
    }

    /// Tells `hook` of every table on the path below the root, bottom up,
    /// as if the walk left them all now (the cursor stays where it is): for
    /// a walk that stops or unwinds half-way, as
    /// [`prune_path`](Self::prune_path), but without stopping at the first
    /// table that is not empty.
    pub fn leave_path<G: Geometry, H: Leave>(&self, hook: &mut H, rev: bool) {
        for l in self.level..G::LEVELS - 1 {
            let i = if rev { self.pos[l + 1] } else { self.pos[l + 1] - 1 };
            hook.leave(self.tab[l + 1], i, self.tab[l], l, self.base[l]);
        }
    }

    /// Makes `t` (level `l`, based at `base`) the current table, with `pos`
    /// as its starting position.
    #[inline]
    fn enter<V, G: Geometry>(&mut self, l: usize, t: Tab, base: u64, pos: usize, rev: bool) {
        self.tab[l] = t;
        self.base[l] = base;
        self.level = l;
        self.path_marked = false;
        if l > 0 {
            self.pos[l] = pos;
            return;
        }
        let lv = Info::<V, G>::lv(0);
        // SAFETY: `t` is a live bottom table and `pos` (or `pos - 1`
        // backward) is one of its slots.
        unsafe {
            if rev {
                let last = pos - 1;
                self.set_word::<V, G>(last / 64);
                self.bits = t.occ_word(lv, self.word) & (u64::MAX >> (63 - last % 64));
            } else {
                self.set_word::<V, G>(pos / 64);
                self.bits = t.occ_word(lv, self.word) & (u64::MAX << (pos % 64));
            }
        }
    }

    /// Hands out the bottom-table word being scanned, leaving the cursor's
    /// bits zero: for an iterator that steps through the word itself, from
    /// the low bit for a forward cursor, from the high bit for a backward
    /// one (`rev`), and gives the bits back with
    /// [`put_bits`](Self::put_bits). Bits zero (the cursor is not in a
    /// bottom table, or is done) hand out nothing to step through.
    ///
    /// Gives the bits not yet yielded, the word's first address, and where
    /// the values are: in a direct table ([`RunVals::Slots`]) the word's
    /// first value, the value of slot `b` being `b` values on; in a packed
    /// one ([`RunVals::Packed`]) the value of the first bit to be yielded
    /// (the lowest forward, the highest backward), the others following it
    /// (preceding it, backward) one value per occupied slot, as long as the
    /// table does not change.
    #[inline]
    pub fn take_run<V, G: Geometry>(&mut self, rev: bool) -> (u64, u64, RunVals) {
        // At level 0 and not done, the cursor is in a bottom table, whose
        // form `sparse` and `wvals` say.
        if self.level == 0 && !self.done && self.sparse {
            return self.take_sparse_run::<V, G>(rev);
        }
        if self.bits == 0 {
            return (0, 0, RunVals::Slots(core::ptr::null_mut()));
        }
        let bits = core::mem::take(&mut self.bits);
        let vals = if self.wvals.is_null() {
            let b = if rev { 63 - bits.leading_zeros() } else { bits.trailing_zeros() } as usize;
            // SAFETY: the cursor is in a live bottom table (bits not zero),
            // packed (`wvals` null), and bit `b` of its word is occupied.
            RunVals::Packed(unsafe { self.word_val::<V, G>(b) }.cast::<u8>())
        } else {
            RunVals::Slots(self.wvals)
        };
        (bits, self.wbase, vals)
    }

    /// [`take_run`](Self::take_run) in a sparse table: the rest of the
    /// table, from the first slot not yet yielded (its bits, or the word
    /// after them), since every present slot on that side of it is ahead of
    /// the cursor.
    #[inline]
    fn take_sparse_run<V, G: Geometry>(&mut self, rev: bool) -> (u64, u64, RunVals) {
        let lv = Info::<V, G>::lv(0);
        let bits = core::mem::take(&mut self.bits);
        let from = match (bits != 0, rev) {
            (true, false) => self.word * 64 + bits.trailing_zeros() as usize,
            (true, true) => self.word * 64 + 63 - bits.leading_zeros() as usize,
            (false, false) => (self.word + 1) * 64,
            (false, true) if self.word == 0 => return (0, 0, RunVals::Slots(core::ptr::null_mut())),
            (false, true) => self.word * 64 - 1,
        };
        // SAFETY: the cursor is in the live sparse bottom table `tab[0]`;
        // `from` is at most the fan-out.
        let (pos, idx, vals) = unsafe { self.tab[0].sparse_run::<V>(lv, from, rev) };
        // The run holds the rest of the table: the cursor waits at its far
        // word, from where its next step leaves the table, until `put_slot`
        // gives it what the run did not yield.
        self.word = if rev { 0 } else { lv.words - 1 };
        (pos, self.base[0], RunVals::Sparse { idx, vals: vals.cast::<u8>() })
    }

    /// Gives back the bits [`take_run`](Self::take_run) handed out, less
    /// those yielded since (the lowest ones going forward, the highest
    /// going backward); the cursor goes on from there (it marks nothing
    /// for the bits yielded outside it).
    #[inline]
    pub fn put_bits(&mut self, bits: u64) {
        debug_assert!(self.bits == 0 && self.level == 0 && !self.done);
        self.bits = bits;
    }

    /// Gives back a sparse run of [`take_run`](Self::take_run) that stopped
    /// before its end: the cursor goes on from slot `i`, the run's first
    /// position not yielded (its last, backward), as if it had yielded
    /// every entry before it (after it, backward).
    ///
    /// # Safety
    /// The cursor handed out a sparse run of the live bottom table it is
    /// in, unchanged since, and `i` is a present slot of that run.
    #[inline]
    pub unsafe fn put_slot<V, G: Geometry>(&mut self, i: usize, rev: bool) {
        debug_assert!(self.bits == 0 && self.level == 0 && !self.done);
        let lv = Info::<V, G>::lv(0);
        self.set_word::<V, G>(i / 64);
        let keep = if rev { u64::MAX >> (63 - i % 64) } else { u64::MAX << (i % 64) };
        // SAFETY: caller; the word is one of the table's.
        self.bits = unsafe { self.tab[0].occ_word(lv, self.word) } & keep;
    }

    /// Makes word `w` of the current bottom table the one scanned (its bits
    /// are the caller's to load).
    #[inline(always)]
    fn set_word<V, G: Geometry>(&mut self, w: usize) {
        let lv = Info::<V, G>::lv(0);
        self.word = w;
        self.wbase = self.base[0] + (((w * 64) as u64) << lv.shift);
        // A packed table's values are found by rank, not by offset: a null
        // `wvals` marks the form for `word_val` and `take_run`.
        // SAFETY: `tab[0]` is the live bottom table the cursor is in.
        self.sparse = unsafe { self.tab[0].sparse(lv) };
        // SAFETY: as above.
        self.wvals = if unsafe { self.tab[0].packed(lv) } {
            core::ptr::null_mut()
        } else {
            self.tab[0].ptr().wrapping_add(lv.off_vals + w * 64 * size_of::<V>())
        };
    }

    /// The value of bit `b` of the bottom word being scanned: at `wvals`
    /// plus `b` in a direct table, found by its rank in a packed one (read
    /// now, from the live table: a walk that takes entries moves the packed
    /// values after them).
    ///
    /// # Safety
    /// The cursor is in a live bottom table (`bits` was not zero), and bit
    /// `b` of its word `word` is an occupied slot.
    #[inline(always)]
    unsafe fn word_val<V, G: Geometry>(&self, b: usize) -> *mut V {
        // SAFETY: contract; `wvals` is null exactly in a packed table.
        unsafe {
            if self.wvals.is_null() {
                self.tab[0].packed_val::<V>(Info::<V, G>::lv(0), self.word * 64 + b)
            } else {
                self.wvals.add(b * size_of::<V>()).cast::<V>()
            }
        }
    }

    /// Marks slot `i` of the current table, which a marking walk yields,
    /// and (once per table) the slots on the path above it. Only the path to
    /// an entry yielded is marked: entering a table whose entries are out of
    /// range marks nothing.
    ///
    /// # Safety
    /// The path is live (invariant); `i` is a slot of the current table.
    #[inline(always)]
    unsafe fn mark_yield<V, G: Geometry>(&mut self, i: usize, rev: bool) {
        let l = self.level;
        let lv = Info::<V, G>::lv(l);
        // SAFETY: caller.
        unsafe {
            self.fresh = !self.tab[l].marked(lv, i);
            self.tab[l].mark(lv, i);
        }
        if !self.path_marked {
            self.path_marked = true;
            for k in l + 1..G::LEVELS {
                let slot = if rev { self.pos[k] } else { self.pos[k] - 1 };
                // SAFETY: `tab[k]` is live and came down through `slot`.
                unsafe { self.tab[k].mark(Info::<V, G>::lv(k), slot) };
            }
        }
    }

    /// The table on the cursor's path at level `l`: after a yield of an
    /// entry of level `l`, the table that holds it.
    pub fn table_at(&self, l: usize) -> Tab {
        self.tab[l]
    }

    /// Leaves the current table for its parent (telling `hook`); false at
    /// the root.
    #[inline]
    fn up<H: Leave>(&mut self, top: usize, rev: bool, hook: &mut H) -> bool {
        self.bits = 0;
        if self.level == top {
            self.done = true;
            return false;
        }
        let l = self.level;
        // The slot the cursor came down through: one before the forward
        // position, at the backward one.
        let i = if rev { self.pos[l + 1] } else { self.pos[l + 1] - 1 };
        hook.leave(self.tab[l + 1], i, self.tab[l], l, self.base[l]);
        self.level += 1;
        true
    }

    /// Frees the empty tables on the cursor's path, bottom up, as a pruning
    /// walk that stops (or unwinds) half-way must: the tables it emptied and
    /// has not left yet.
    pub fn prune_path<V, G: Geometry, B: Backend>(&self, raw: &mut RawTable<V, G, B>, rev: bool) {
        let top = G::LEVELS - 1;
        let mut prune = Prune(raw);
        for l in self.level..top {
            // SAFETY: `tab[l]` is a live table of level `l` on the path.
            let kept = unsafe { self.tab[l].len(Info::<V, G>::lv(l)) } != 0;
            // A bottom table that keeps entries is settled too (it may move
            // to a smaller form); the tables above it then keep a child.
            if kept && l != 0 {
                break;
            }
            let i = if rev { self.pos[l + 1] } else { self.pos[l + 1] - 1 };
            prune.leave(self.tab[l + 1], i, self.tab[l], l, self.base[l]);
            if kept {
                break;
            }
        }
    }

    /// The next entry, ascending, that starts at or before `last`; a child
    /// table entered is reached from `lo` on. With `mark`, marks every slot
    /// it passes through (for mutable walks).
    ///
    /// # Safety
    /// The cursor was made for this table (`V`, `G`) and the table has not
    /// changed since except by taking the values the cursor yielded.
    #[inline(always)]
    pub unsafe fn next<V, G: Geometry>(&mut self, lo: u64, last: u64, mark: bool) -> Option<(Page, *mut V)> {
        // SAFETY: forwarded.
        if let Some((addr, v)) = unsafe { self.next_base::<V, G>(last, mark) } {
            return Some((Page::new(addr, 0, Info::<V, G>::lv(0).shift), v));
        }
        // SAFETY: forwarded.
        unsafe { self.next_slow::<V, G, Stay>(lo, last, mark, &mut Stay) }
    }

    /// The common step of [`next`](Self::next): the next base entry in the
    /// same bitmap word, as its address and value; `None` when the step
    /// needs more than that.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(always)]
    pub unsafe fn next_base<V, G: Geometry>(&mut self, last: u64, mark: bool) -> Option<(u64, *mut V)> {
        // `bits` is zero unless the cursor is in a bottom table (invariant).
        if self.bits == 0 {
            return None;
        }
        let lv = Info::<V, G>::lv(0);
        let b = self.bits.trailing_zeros() as usize;
        let addr = self.wbase + ((b as u64) << lv.shift);
        if addr > last {
            return None;
        }
        self.bits &= self.bits - 1;
        // SAFETY: bit `b` of word `word` of the live bottom table's map was
        // set when the word was read, and only the cursor's own yields
        // changed it since; `wvals` points to the word's first value.
        unsafe {
            if mark {
                self.mark_yield::<V, G>(self.word * 64 + b, false);
            }
            Some((addr, self.word_val::<V, G>(b)))
        }
    }

    /// [`next`](Self::next), from any position.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(never)]
    pub unsafe fn next_slow<V, G: Geometry, H: Leave>(
        &mut self,
        lo: u64,
        last: u64,
        mark: bool,
        hook: &mut H,
    ) -> Option<(Page, *mut V)> {
        const REV: bool = false;
        let top = G::LEVELS - 1;
        while !self.done {
            let l = self.level;
            let lv = Info::<V, G>::lv(l);
            let t = self.tab[l];
            let base = self.base[l];
            if l == 0 {
                loop {
                    if self.bits != 0 {
                        let i = self.word * 64 + self.bits.trailing_zeros() as usize;
                        self.bits &= self.bits - 1;
                        let addr = base + ((i as u64) << lv.shift);
                        if addr > last {
                            break;
                        }
                        // SAFETY: bit `i` of the live table's map was set
                        // when the word was read, and nothing but the
                        // cursor's own yields changed it since (caller).
                        unsafe {
                            if mark {
                                self.mark_yield::<V, G>(i, false);
                            }
                            return Some((Page::new(addr, 0, lv.shift), t.val::<V>(lv, i)));
                        }
                    }
                    // SAFETY: `t` is the live bottom table, `word` one of its
                    // words, sparse as `self.sparse` says.
                    let Some(w) = (unsafe { next_word(t, lv, self.word, self.sparse, false) }) else {
                        break;
                    };
                    self.set_word::<V, G>(w);
                    // SAFETY: the word is inside the map (or built from the indices).
                    self.bits = unsafe { t.occ_word(lv, self.word) };
                }
                self.up(top, REV, hook);
                continue;
            }
            if last < base {
                self.up(top, REV, hook);
                continue;
            }
            let end = (((last - base) >> lv.shift) as usize).min(lv.fanout - 1);
            // SAFETY: `t` is live, `end` inside its fan-out.
            let Some(i) = (unsafe { t.next_occupied(lv, self.pos[l], end) }) else {
                self.up(top, REV, hook);
                continue;
            };
            self.pos[l] = i + 1;
            let a = base + ((i as u64) << lv.shift);
            // SAFETY: slot `i` is occupied.
            unsafe {
                match t.slot(lv, i) {
                    Slot::Large => {
                        if mark {
                            self.mark_yield::<V, G>(i, REV);
                        }
                        return Some((Page::new(a, l as u8, lv.shift), t.val::<V>(lv, i)));
                    }
                    Slot::Table(c) => {
                        let clv = Info::<V, G>::lv(l - 1);
                        let start = if lo > a { ((lo - a) >> clv.shift) as usize } else { 0 };
                        self.enter::<V, G>(l - 1, c, a, start, false);
                    }
                    Slot::Empty => unreachable!("occupied slot"),
                }
            }
        }
        None
    }

    /// The next entry, descending, that ends at or after `lo`; a child table
    /// entered is reached from `last` down. As [`next`](Self::next).
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(always)]
    pub unsafe fn next_back<V, G: Geometry>(
        &mut self,
        lo: u64,
        last: u64,
        mark: bool,
    ) -> Option<(Page, *mut V)> {
        // SAFETY: forwarded.
        if let Some((addr, v)) = unsafe { self.next_back_base::<V, G>(lo, mark) } {
            return Some((Page::new(addr, 0, Info::<V, G>::lv(0).shift), v));
        }
        // SAFETY: forwarded.
        unsafe { self.next_back_slow::<V, G>(lo, last, mark) }
    }

    /// The common step of [`next_back`](Self::next_back), as
    /// [`next_base`](Self::next_base).
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(always)]
    pub unsafe fn next_back_base<V, G: Geometry>(&mut self, lo: u64, mark: bool) -> Option<(u64, *mut V)> {
        if self.bits == 0 {
            return None;
        }
        let lv = Info::<V, G>::lv(0);
        let b = 63 - self.bits.leading_zeros() as usize;
        let addr = self.wbase + ((b as u64) << lv.shift);
        if addr + ((1u64 << lv.shift) - 1) < lo {
            return None;
        }
        self.bits &= !(1u64 << b);
        // SAFETY: as in `next_base`.
        unsafe {
            if mark {
                self.mark_yield::<V, G>(self.word * 64 + b, true);
            }
            Some((addr, self.word_val::<V, G>(b)))
        }
    }

    /// [`next_back`](Self::next_back), from any position.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(never)]
    unsafe fn next_back_slow<V, G: Geometry>(
        &mut self,
        lo: u64,
        last: u64,
        mark: bool,
    ) -> Option<(Page, *mut V)> {
        const REV: bool = true;
        let hook = &mut Stay;
        let top = G::LEVELS - 1;
        while !self.done {
            let l = self.level;
            let lv = Info::<V, G>::lv(l);
            let t = self.tab[l];
            let base = self.base[l];
            if l == 0 {
                loop {
                    if self.bits != 0 {
                        let b = 63 - self.bits.leading_zeros() as usize;
                        self.bits &= !(1u64 << b);
                        let i = self.word * 64 + b;
                        let addr = base + ((i as u64) << lv.shift);
                        if addr + ((1u64 << lv.shift) - 1) < lo {
                            break;
                        }
                        // SAFETY: as in `next`.
                        unsafe {
                            if mark {
                                self.mark_yield::<V, G>(i, true);
                            }
                            return Some((Page::new(addr, 0, lv.shift), t.val::<V>(lv, i)));
                        }
                    }
                    // SAFETY: as forward.
                    let Some(w) = (unsafe { next_word(t, lv, self.word, self.sparse, true) }) else {
                        break;
                    };
                    self.set_word::<V, G>(w);
                    // SAFETY: the word is inside the map (or built from the indices).
                    self.bits = unsafe { t.occ_word(lv, self.word) };
                }
                self.up(top, REV, hook);
                continue;
            }
            let start = if lo > base { ((lo - base) >> lv.shift) as usize } else { 0 };
            let to = self.pos[l];
            let found = if to == 0 || start >= to {
                None
            } else {
                // SAFETY: `t` is live; `to - 1` is inside its fan-out.
                unsafe { t.prev_occupied(lv, start, to - 1) }
            };
            let Some(i) = found else {
                self.up(top, REV, hook);
                continue;
            };
            self.pos[l] = i;
            let a = base + ((i as u64) << lv.shift);
            // SAFETY: slot `i` is occupied.
            unsafe {
                match t.slot(lv, i) {
                    Slot::Large => {
                        if mark {
                            self.mark_yield::<V, G>(i, REV);
                        }
                        return Some((Page::new(a, l as u8, lv.shift), t.val::<V>(lv, i)));
                    }
                    Slot::Table(c) => {
                        let clv = Info::<V, G>::lv(l - 1);
                        let end = if last - a >= clv.span_last() {
                            clv.fanout
                        } else {
                            ((last - a) >> clv.shift) as usize + 1
                        };
                        self.enter::<V, G>(l - 1, c, a, end, true);
                    }
                    Slot::Empty => unreachable!("occupied slot"),
                }
            }
        }
        None
    }

    /// Calls `f` on every entry left, ascending, up to `last` (no marks):
    /// the bottom tables a whole bitmap word at a time.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline]
    pub unsafe fn fold<V, G: Geometry, Acc>(
        &mut self,
        lo: u64,
        last: u64,
        mut acc: Acc,
        mut f: impl FnMut(Acc, Page, *mut V) -> Acc,
    ) -> Acc {
        loop {
            if !self.done && self.level == 0 {
                let lv = Info::<V, G>::lv(0);
                let t = self.tab[0];
                let base = self.base[0];
                // The last slot in range of this table.
                let end = if last - base >= lv.span_last() {
                    lv.fanout - 1
                } else {
                    ((last - base) >> lv.shift) as usize
                };
                let last_word = end / 64;
                if self.word <= last_word {
                    let (w, bits) = (self.word, self.bits);
                    // The form is read once per table, not per value: `f`
                    // may write memory, so the compiler could not hoist it.
                    // SAFETY: `t` is the live bottom table the walk is in;
                    // `val` and `direct_val` are asked for occupied slots.
                    acc = unsafe {
                        if self.sparse {
                            // The indices in order: no map word is built.
                            let from = if bits != 0 {
                                w * 64 + bits.trailing_zeros() as usize
                            } else {
                                (w + 1) * 64
                            };
                            if from > end {
                                acc
                            } else {
                                t.sparse_fold::<V, Acc>(lv, from, end, acc, |acc, i, v| {
                                    let a = base + ((i as u64) << lv.shift);
                                    f(acc, Page::new(a, 0, lv.shift), v)
                                })
                            }
                        } else if t.packed(lv) {
                            fold_words(t, lv, base, w, bits, end, acc, &mut f, |i| t.val::<V>(lv, i))
                        } else {
                            fold_words(t, lv, base, w, bits, end, acc, &mut f, |i| t.direct_val::<V>(lv, i))
                        }
                    };
                }
                self.word = lv.words;
                self.bits = 0;
            }
            // SAFETY: forwarded.
            match unsafe { self.next::<V, G>(lo, last, false) } {
                Some((p, v)) => acc = f(acc, p, v),
                None => return acc,
            }
        }
    }
}

/// The word of bottom table `t` a walk scans after word `w` (before it,
/// `rev`): the next one, or in a sparse table the next that holds an entry
/// (`None`: no more).
///
/// # Safety
/// `t` is a live bottom table of `lv`, sparse exactly when `sparse`, and
/// `w < lv.words`.
#[inline(always)]
unsafe fn next_word(t: Tab, lv: &Lv, w: usize, sparse: bool, rev: bool) -> Option<usize> {
    if sparse {
        // SAFETY: contract; the table is sparse.
        return unsafe { t.sparse_next_word(lv, w, rev) };
    }
    if rev { w.checked_sub(1) } else { Some(w + 1).filter(|&w| w < lv.words) }
}

/// [`Cursor::fold`]'s loop over bottom table `t` (based at `base`), from
/// map word `w` (its bits left to visit: `bits`) up to slot `end`: a whole
/// word of set bits in one run, others a bit at a time. `at` gives the
/// value of an occupied slot.
///
/// # Safety
/// `t` is a live bottom table; `bits` are occupied slots of word `w`;
/// `at` is valid for every occupied slot of `t`.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn fold_words<V, Acc>(
    t: Tab,
    lv: &Lv,
    base: u64,
    mut w: usize,
    mut bits: u64,
    end: usize,
    mut acc: Acc,
    f: &mut impl FnMut(Acc, Page, *mut V) -> Acc,
    at: impl Fn(usize) -> *mut V,
) -> Acc {
    let last_word = end / 64;
    loop {
        if w == last_word {
            bits &= u64::MAX >> (63 - end % 64);
        }
        let first = w * 64;
        if bits == u64::MAX {
            for i in first..first + 64 {
                let a = base + ((i as u64) << lv.shift);
                acc = f(acc, Page::new(a, 0, lv.shift), at(i));
            }
        } else {
            while bits != 0 {
                let i = first + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let a = base + ((i as u64) << lv.shift);
                acc = f(acc, Page::new(a, 0, lv.shift), at(i));
            }
        }
        if w == last_word {
            return acc;
        }
        w += 1;
        // SAFETY: the word is inside the map (or built from the indices).
        bits = unsafe { t.occ_word(lv, w) };
    }
}

/// What a walk does with each table it leaves.
pub trait Leave {
    /// The walk leaves table `child` (level `l`, based at `base`), linked
    /// from slot `i` of `parent` (level `l + 1`).
    fn leave(&mut self, parent: Tab, i: usize, child: Tab, l: usize, base: u64);
}

/// A table a [`next_left`](Cursor::next_left) walk left: `child` (level
/// `l`, based at `base`), linked from slot `i` of `parent` (level `l + 1`).
#[derive(Clone, Copy, Debug)]
pub struct Left {
    pub parent: Tab,
    pub i: usize,
    pub child: Tab,
    pub l: usize,
    pub base: u64,
}

/// Keeps the table left, for [`next_left`](Cursor::next_left) to return.
struct Report(Option<Left>);

impl Leave for Report {
    #[inline(always)]
    fn leave(&mut self, parent: Tab, i: usize, child: Tab, l: usize, base: u64) {
        self.0 = Some(Left { parent, i, child, l, base });
    }
}

/// Leaves tables as they are: the read-only walks.
pub struct Stay;

impl Leave for Stay {
    #[inline(always)]
    fn leave(&mut self, _: Tab, _: usize, _: Tab, _: usize, _: u64) {}
}

/// Settles each table left ([`RawTable::settle_child`]): marks its parent
/// slot if it has marks, frees it if empty, moves a bottom table that lost
/// most of its entries to a smaller form. The walks that remove entries.
pub struct Prune<'a, V, G: Geometry, B: Backend>(pub &'a mut RawTable<V, G, B>);

impl<V, G: Geometry, B: Backend> Leave for Prune<'_, V, G, B> {
    fn leave(&mut self, parent: Tab, i: usize, child: Tab, l: usize, base: u64) {
        // SAFETY: a walk calls `leave` for a table it has left, linked from
        // slot `i` of `parent` (the cursor's path), and never uses it again.
        unsafe { self.0.settle_child(parent, i, child, l, base) };
    }
}

/// Clears the mark of the parent slot of each table a change walk leaves
/// (if `CLEAR`).
struct Unmark<V, G, const CLEAR: bool>(core::marker::PhantomData<fn() -> (V, G)>);

impl<V, G: Geometry, const CLEAR: bool> Leave for Unmark<V, G, CLEAR> {
    fn leave(&mut self, parent: Tab, i: usize, _: Tab, l: usize, _: u64) {
        if !CLEAR {
            return;
        }
        // SAFETY: `parent` is a live table of level `l + 1` on the path, `i`
        // its slot the walk came down through (which links the child, so
        // in a links table it keeps its index).
        unsafe {
            let lv = Info::<V, G>::lv(l + 1);
            if lv.packs {
                parent.unmark(lv, i);
            } else {
                bitmap::clear(parent.dirty(lv), i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::X86_4Level;
    use crate::{Level, MemTable};

    /// The table walk reports every table below the root once, each after
    /// the tables below it, in ascending address order, and skips large
    /// entries; each report names the slot that links the table.
    #[test]
    fn table_walk_is_post_order_ascending() {
        const MIB2: u64 = 0x20_0000;
        const GIB1: u64 = 0x4000_0000;
        let mut t: MemTable<u64> = MemTable::new();
        for a in [0x1000, MIB2 + 0x3000, GIB1, 1 << 39] {
            t.insert(a, a).unwrap();
        }
        t.insert_at(2 * MIB2, Level::new(1), 0).unwrap();
        t.insert_at(2 * GIB1, Level::new(2), 0).unwrap();
        let mut cur = Cursor::tables::<X86_4Level>(t.raw.root);
        let mut left = alloc::vec::Vec::new();
        // SAFETY: a fresh table walk over `t`, which does not change.
        while let Some(x) = unsafe { cur.next_left::<u64, X86_4Level>() } {
            let lv = Info::<u64, X86_4Level>::lv(x.l + 1);
            // SAFETY: `parent` is a live upper table of `t`.
            assert_eq!(unsafe { x.parent.slot(lv, x.i) }, Slot::Table(x.child));
            assert_eq!(lv.index(x.base), x.i);
            left.push((x.l, x.base));
        }
        assert_eq!(
            left,
            [
                (0, 0),
                (0, MIB2),
                (1, 0),
                (0, GIB1),
                (1, GIB1),
                (2, 0),
                (0, 1 << 39),
                (1, 1 << 39),
                (2, 1 << 39)
            ]
        );
        // SAFETY: the walk is over.
        assert!(unsafe { cur.next_left::<u64, X86_4Level>() }.is_none());
    }
}
