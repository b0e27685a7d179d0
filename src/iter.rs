//! Iteration in address order, both ways: [`Iter`] (also ranges),
//! [`IterMut`] (also mutable ranges), [`IntoIter`], and the key and value
//! views. All run on the raw layer's one [`Cursor`]: a front and a back
//! cursor that close in on each other.

use core::fmt;
use core::iter::FusedIterator;
use core::ops::{Bound, RangeBounds};

use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::Page;
use core::marker::PhantomData;

use core::ptr::NonNull;

use crate::raw::RawTable;
use crate::raw::cursor::{Cursor, RunVals};
use crate::raw::track::Track;
use crate::table::MemTable;

/// The inclusive address bounds of `range`, clipped to the reach of `G`;
/// `None` when nothing in reach overlaps it.
pub(crate) fn bounds<G: Geometry>(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let top = if G::ADDRESS_BITS >= 64 { u64::MAX } else { (1u64 << G::ADDRESS_BITS) - 1 };
    let lo = match range.start_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let last = match range.end_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.checked_sub(1)?,
        Bound::Unbounded => u64::MAX,
    }
    .min(top);
    (lo <= last).then_some((lo, last))
}

/// Two cursors closing in on each other over `lo..=last`.
///
/// # Invariants
/// Every entry overlapping `lo..=last` and not yet yielded is ahead of both
/// cursors; after an entry is yielded, the bounds exclude it.
#[derive(Clone)]
struct Ends {
    front: Cursor,
    back: Cursor,
    lo: u64,
    last: u64,
    done: bool,
    /// [`Iter`]'s runs through sparse tables, one per end: kept here, beside
    /// the cursors, not in [`Run`], so that the runs a loop keeps in
    /// registers stay the size a map word's needs.
    sfront: SparseRun,
    sback: SparseRun,
}

/// One end's run through the rest of a sparse bottom table, for [`Iter`]'s
/// sparse steps: `bits` has a bit per *position* among the table's sorted
/// slot indices `idx` not yet yielded (the back's reversed, bit `k` for
/// position `63 - k`), `base` is the table's base address, and `vals` the
/// value of the next position to be yielded, moving on (back, for the back)
/// by one value per step, as in a packed table. While `bits` is non-zero,
/// the end's cursor waits at the table's far word with no bits, and the
/// end's [`Run`] has none either.
#[derive(Clone, Copy)]
struct SparseRun {
    bits: u64,
    idx: *const u16,
    base: u64,
    vals: *mut u8,
}

impl SparseRun {
    const NONE: SparseRun =
        SparseRun { bits: 0, idx: core::ptr::null(), base: 0, vals: core::ptr::null_mut() };
}

impl Ends {
    fn new<V, G: Geometry, B: Backend>(raw: &RawTable<V, G, B>, bounds: Option<(u64, u64)>) -> Ends {
        let (lo, last, done) = match bounds {
            Some((lo, last)) => (lo, last, false),
            None => (0, 0, true),
        };
        Ends {
            front: Cursor::new::<V, G>(raw.root, lo, false),
            back: Cursor::new::<V, G>(raw.root, last, true),
            lo,
            last,
            done,
            sfront: SparseRun::NONE,
            sback: SparseRun::NONE,
        }
    }

    /// The next entry from the front.
    ///
    /// # Safety
    /// The cursors were made for this table, which has not changed since
    /// except by taking yielded values.
    #[inline(always)]
    unsafe fn next<V, G: Geometry>(&mut self, mark: bool) -> Option<(Page, *mut V)> {
        if self.done {
            return None;
        }
        // The common step, with the page size a constant.
        // SAFETY: forwarded.
        if let Some((addr, v)) = unsafe { self.front.next_base::<V, G>(self.last, mark) } {
            let shift = G::PAGE_SHIFT;
            let end = addr + ((1u64 << shift) - 1);
            if end >= self.last {
                self.done = true;
            } else {
                self.lo = end + 1;
            }
            return Some((Page::new(addr, 0, shift), v));
        }
        // SAFETY: forwarded.
        unsafe { self.next_slow::<V, G>(mark) }
    }

    /// [`next`](Self::next), from any position.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(never)]
    unsafe fn next_slow<V, G: Geometry>(&mut self, mark: bool) -> Option<(Page, *mut V)> {
        // SAFETY: forwarded.
        let (p, v) = unsafe { self.front.next::<V, G>(self.lo, self.last, mark) }.or_else(|| {
            self.done = true;
            None
        })?;
        match p.last().checked_add(1) {
            Some(n) if n <= self.last => self.lo = n,
            _ => self.done = true,
        }
        Some((p, v))
    }

    /// The next entry from the back.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(always)]
    unsafe fn next_back<V, G: Geometry>(&mut self, mark: bool) -> Option<(Page, *mut V)> {
        if self.done {
            return None;
        }
        // SAFETY: forwarded.
        if let Some((addr, v)) = unsafe { self.back.next_back_base::<V, G>(self.lo, mark) } {
            if addr <= self.lo {
                self.done = true;
            } else {
                self.last = addr - 1;
            }
            return Some((Page::new(addr, 0, G::PAGE_SHIFT), v));
        }
        // SAFETY: forwarded.
        unsafe { self.next_back_slow::<V, G>(mark) }
    }

    /// [`next_back`](Self::next_back), from any position.
    ///
    /// # Safety
    /// As for [`next`](Self::next).
    #[inline(never)]
    unsafe fn next_back_slow<V, G: Geometry>(&mut self, mark: bool) -> Option<(Page, *mut V)> {
        // SAFETY: forwarded.
        let (p, v) = unsafe { self.back.next_back::<V, G>(self.lo, self.last, mark) }.or_else(|| {
            self.done = true;
            None
        })?;
        match p.addr().checked_sub(1) {
            Some(n) if n >= self.lo => self.last = n,
            _ => self.done = true,
        }
        Some((p, v))
    }

    /// Folds the rest from the front.
    ///
    /// # Safety
    /// As for [`next`](Self::next); no entry is taken.
    #[inline]
    unsafe fn fold<V, G: Geometry, Acc>(mut self, acc: Acc, f: impl FnMut(Acc, Page, *mut V) -> Acc) -> Acc {
        if self.done {
            return acc;
        }
        // SAFETY: forwarded.
        unsafe { self.front.fold::<V, G, Acc>(self.lo, self.last, acc, f) }
    }
}

/// The entries overlapping an address range, in ascending order (or
/// descending, from the back), as `(Page, &V)`: from [`MemTable::iter`] and
/// [`MemTable::range`].
///
/// Each step inside a bottom table is a bitmap scan; moving to the next
/// table goes up and down the cursor's path, never from the root.
///
/// # Invariants
/// - While `front.bits` (or, in a packed table, `front.pbits`) is
///   non-zero, the front cursor's own word bits are zero and `front` holds
///   them: the bits of its current bottom-table word
///   not yet yielded, the word's first address and first value; the same
///   for `back` and the back cursor. While `ends.sfront.bits` is non-zero
///   (a sparse table), it holds the table's present positions not yet
///   yielded, and the front cursor waits at the table's last word with no
///   bits (`ends.sback` and the back cursor, at its first word).
/// - `front.end`, when `front.pending`, is the last address of the entry
///   the front's fast path yielded last, not yet folded into `ends.lo`;
///   `back.end`, when `back.pending`, is the address of the entry the
///   back's fast path yielded last, not yet folded into `ends.last`.
/// - At most one end is pending: a fast path runs only while the other end
///   is not, so the bound it checks against (the other end's) is exact.
///   This is what makes the ends meet exactly once, also when both hold a
///   copy of the same word.
pub struct Iter<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    ends: Ends,
    /// The front's and the back's runs, kept apart from `ends` (which only
    /// the slow paths take by reference): a fast step, either way, reads
    /// and writes these and reads the bounds, never the cursors.
    front: Run,
    back: Run,
    /// Entries left, when the whole table is walked.
    remaining: Option<usize>,
    len: usize,
    _table: PhantomData<&'a MemTable<V, G, B>>,
}

/// One end's current bitmap word, for [`Iter`]'s fast paths: the bits not
/// yet yielded, the word's first address and first value, and the bound
/// the last fast yield moves (see [`Iter`]'s invariants).
///
/// The back's bits are the word reversed (bit `k` stands for slot `63 - k`
/// of the word), so that both ends step by clearing the lowest bit: the
/// next step's bits do not wait for this step's bit scan, which a loop
/// would otherwise carry from step to step. The back's `wbase` and `wvals`
/// are those of slot 63 of the word, so that a step subtracts its bit's
/// offset from them.
///
/// In a packed bottom table the bits are in `pbits` (and `bits` is zero,
/// so that a direct table's step tests nothing more), and `wvals` is the
/// value of the next bit to be yielded: each step moves it on by one value
/// (back by one, for the back), since the values of occupied slots follow
/// each other in slot order. At most one of `bits` and `pbits` is non-zero.
///
/// In a sparse bottom table the run is the rest of the table, in
/// [`SparseRun`] (and `bits` and `pbits` are zero).
#[derive(Clone, Copy)]
struct Run {
    bits: u64,
    pbits: u64,
    wbase: u64,
    wvals: *mut u8,
    end: u64,
    pending: bool,
}

impl Run {
    const NONE: Run =
        Run { bits: 0, pbits: 0, wbase: 0, wvals: core::ptr::null_mut(), end: 0, pending: false };

    /// Takes over the word of the end's cursor (its bits not yet yielded),
    /// leaving the cursor's bits zero; `rev` for the back. In a sparse
    /// table, the end's [`SparseRun`] takes the rest of the table instead.
    #[inline]
    fn take<V, G: Geometry>(&mut self, ends: &mut Ends, rev: bool) {
        let cursor = if rev { &mut ends.back } else { &mut ends.front };
        let (bits, wbase, vals) = cursor.take_run::<V, G>(rev);
        let (wvals, packed) = match vals {
            RunVals::Slots(p) => (p, false),
            RunVals::Packed(p) => (p, true),
            RunVals::Sparse { idx, vals } => {
                (self.bits, self.pbits) = (0, 0);
                return Self::take_sparse(ends, SparseRun { bits, idx, base: wbase, vals }, rev);
            }
        };
        let bits = if rev { bits.reverse_bits() } else { bits };
        (self.bits, self.pbits) = if packed { (0, bits) } else { (bits, 0) };
        if rev {
            // Slot 63 of the word: past the table's end if its table is
            // smaller than a word (or past the top of the address space),
            // so computed wrapping; a step goes back from it to a slot of
            // the table before using either.
            self.wbase = wbase.wrapping_add(63u64 << G::PAGE_SHIFT);
            self.wvals = if packed { wvals } else { wvals.wrapping_add(63 * size_of::<V>()) };
        } else {
            self.wbase = wbase;
            self.wvals = wvals;
        }
    }

    /// Makes `run` (bits as the cursor gave them) the end's sparse run.
    #[inline(never)]
    fn take_sparse(ends: &mut Ends, mut run: SparseRun, rev: bool) {
        if rev {
            run.bits = run.bits.reverse_bits();
            ends.sback = run;
        } else {
            ends.sfront = run;
        }
    }

    /// Gives the bits not yet yielded back to the end's cursor, which
    /// handed them out (and the end's sparse run's); `rev` for the back.
    #[inline]
    fn put_back<V, G: Geometry>(&mut self, ends: &mut Ends, rev: bool) {
        let (cursor, sparse) =
            if rev { (&mut ends.back, &mut ends.sback) } else { (&mut ends.front, &mut ends.sfront) };
        let bits = self.bits | self.pbits;
        if bits != 0 {
            cursor.put_bits(if rev { bits.reverse_bits() } else { bits });
            (self.bits, self.pbits) = (0, 0);
        }
        if sparse.bits != 0 {
            let t = sparse.bits.trailing_zeros() as usize;
            let p = if rev { 63 - t } else { t };
            // SAFETY: the run is a sparse run `cursor` handed out, of a
            // table borrowed shared since, and position `p` is one of its
            // present positions not yet yielded.
            unsafe { cursor.put_slot::<V, G>(*sparse.idx.add(p) as usize, rev) };
            sparse.bits = 0;
        }
    }

    /// As the front run: folds the last fast yield into `ends.lo`.
    #[inline]
    fn settle_front(&mut self, ends: &mut Ends) {
        if self.pending {
            self.pending = false;
            if self.end >= ends.last {
                ends.done = true;
            } else {
                ends.lo = self.end + 1;
            }
        }
    }

    /// As the back run: folds the last fast yield into `ends.last`.
    #[inline]
    fn settle_back(&mut self, ends: &mut Ends) {
        if self.pending {
            self.pending = false;
            if self.end <= ends.lo {
                ends.done = true;
            } else {
                ends.last = self.end - 1;
            }
        }
    }
}

impl<'a, V, G: Geometry, B: Backend> Iter<'a, V, G, B> {
    pub(crate) fn new(table: &'a MemTable<V, G, B>, bounds: Option<(u64, u64)>, whole: bool) -> Self {
        Iter {
            ends: Ends::new(&table.raw, bounds),
            front: Run::NONE,
            back: Run::NONE,
            remaining: whole.then_some(table.raw.len),
            len: table.raw.len,
            _table: PhantomData,
        }
    }

    /// Hands the fast paths' state back to the cursors and folds their last
    /// yields into the bounds, so that `ends` is whole again.
    #[inline]
    fn sync(&mut self) {
        self.front.settle_front(&mut self.ends);
        self.back.settle_back(&mut self.ends);
        self.front.put_back::<V, G>(&mut self.ends, false);
        self.back.put_back::<V, G>(&mut self.ends, true);
    }

    /// [`next`](Iterator::next) past the fast path: a new word, table or
    /// level, the end, or a back end that is pending. Takes the runs by
    /// value and returns the new ones, so that the iterator's runs never
    /// have their address taken (and a loop keeps them in registers).
    #[inline(never)]
    fn next_slow(ends: &mut Ends, mut front: Run, mut back: Run) -> (Option<(Page, *mut V)>, Run, Run) {
        front.settle_front(ends);
        // The back keeps its bits: the bounds keep the ends apart.
        back.settle_back(ends);
        front.put_back::<V, G>(ends, false);
        // SAFETY: as in `next`.
        let found = unsafe { ends.next::<V, G>(false) };
        if found.is_some() {
            front.take::<V, G>(ends, false);
        }
        (found, front, back)
    }

    /// [`next_back`](DoubleEndedIterator::next_back) past the fast path, as
    /// [`next_slow`](Self::next_slow).
    #[inline(never)]
    fn next_back_slow(ends: &mut Ends, mut front: Run, mut back: Run) -> (Option<(Page, *mut V)>, Run, Run) {
        // The front keeps its bits: the bounds keep the ends apart.
        front.settle_front(ends);
        back.settle_back(ends);
        back.put_back::<V, G>(ends, true);
        // SAFETY: as in `next`.
        let found = unsafe { ends.next_back::<V, G>(false) };
        if found.is_some() {
            back.take::<V, G>(ends, true);
        }
        (found, front, back)
    }

    /// The front's fast step in a direct table's word (`PACKED` false: the
    /// run's `bits`) or a packed one's (`pbits`); `None` when the step
    /// needs the slow path.
    #[inline(always)]
    fn front_step<const PACKED: bool>(&mut self) -> Option<(Page, &'a V)> {
        let bits = if PACKED { self.front.pbits } else { self.front.bits };
        if bits == 0 || self.ends.done || self.back.pending {
            return None;
        }
        let shift = G::PAGE_SHIFT;
        let b = bits.trailing_zeros() as usize;
        let addr = self.front.wbase + ((b as u64) << shift);
        if addr > self.ends.last {
            return None;
        }
        let p = if PACKED {
            self.front.pbits &= bits - 1;
            let p = self.front.wvals;
            self.front.wvals = p.wrapping_add(size_of::<V>());
            p
        } else {
            self.front.bits &= bits - 1;
            self.front.wvals.wrapping_add(b * size_of::<V>())
        };
        self.front.end = addr + ((1u64 << shift) - 1);
        self.front.pending = true;
        self.count_one();
        // SAFETY: the table is borrowed shared for 'a, so it does not
        // change; bit `b` of the word was set, so the value it names (at
        // `wvals`, the word's first value, plus `b`; in a packed table, at
        // `wvals`, the next value) is initialized.
        Some((Page::new(addr, 0, shift), unsafe { &*p.cast::<V>() }))
    }

    /// The back's fast step, as [`front_step`](Self::front_step).
    #[inline(always)]
    fn back_step<const PACKED: bool>(&mut self) -> Option<(Page, &'a V)> {
        let bits = if PACKED { self.back.pbits } else { self.back.bits };
        if bits == 0 || self.ends.done || self.front.pending {
            return None;
        }
        let shift = G::PAGE_SHIFT;
        // The highest slot left, `63 - t`: the lowest bit of the reversed
        // bits.
        let t = bits.trailing_zeros() as usize;
        let addr = self.back.wbase.wrapping_sub((t as u64) << shift);
        if addr + ((1u64 << shift) - 1) < self.ends.lo {
            return None;
        }
        let p = if PACKED {
            self.back.pbits &= bits - 1;
            let p = self.back.wvals;
            self.back.wvals = p.wrapping_sub(size_of::<V>());
            p
        } else {
            self.back.bits &= bits - 1;
            self.back.wvals.wrapping_sub(t * size_of::<V>())
        };
        self.back.end = addr;
        self.back.pending = true;
        self.count_one();
        // SAFETY: as in `front_step`: the bit of slot `63 - t` of the
        // back's word was set, so the value it names (`wvals`, slot 63's
        // value, less `t` values: a pointer into the table again; in a
        // packed table, `wvals`, the previous value) is initialized, and
        // the table does not change while borrowed shared for 'a.
        Some((Page::new(addr, 0, shift), unsafe { &*p.cast::<V>() }))
    }

    /// The front's fast step in a sparse table's run: the next present
    /// position's slot, from the indices.
    #[inline(always)]
    fn front_sparse(&mut self) -> Option<(Page, &'a V)> {
        let run = &mut self.ends.sfront;
        let bits = run.bits;
        if bits == 0 || self.ends.done || self.back.pending {
            return None;
        }
        let shift = G::PAGE_SHIFT;
        let p = bits.trailing_zeros() as usize;
        // SAFETY: `idx` is the live table's index array and `p` one of its
        // positions in use (the run's bits are present positions).
        let i = unsafe { *run.idx.add(p) } as u64;
        let addr = run.base + (i << shift);
        if addr > self.ends.last {
            return None;
        }
        run.bits &= bits - 1;
        let v = run.vals;
        run.vals = v.wrapping_add(size_of::<V>());
        self.front.end = addr + ((1u64 << shift) - 1);
        self.front.pending = true;
        self.count_one();
        // SAFETY: the value of a present position, at its rank: `vals`
        // started at the run's first and moves on one per position yielded;
        // the table does not change while borrowed shared for 'a.
        Some((Page::new(addr, 0, shift), unsafe { &*v.cast::<V>() }))
    }

    /// The back's fast step in a sparse table's run, as
    /// [`front_sparse`](Self::front_sparse).
    #[inline(always)]
    fn back_sparse(&mut self) -> Option<(Page, &'a V)> {
        let run = &mut self.ends.sback;
        let bits = run.bits;
        if bits == 0 || self.ends.done || self.front.pending {
            return None;
        }
        let shift = G::PAGE_SHIFT;
        let p = 63 - bits.trailing_zeros() as usize;
        // SAFETY: as in `front_sparse`.
        let i = unsafe { *run.idx.add(p) } as u64;
        let addr = run.base + (i << shift);
        if addr + ((1u64 << shift) - 1) < self.ends.lo {
            return None;
        }
        run.bits &= bits - 1;
        let v = run.vals;
        run.vals = v.wrapping_sub(size_of::<V>());
        self.back.end = addr;
        self.back.pending = true;
        self.count_one();
        // SAFETY: as in `front_sparse`, the values stepped back through.
        Some((Page::new(addr, 0, shift), unsafe { &*v.cast::<V>() }))
    }

    fn count_one(&mut self) {
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
    }
}

impl<V, G: Geometry, B: Backend> Clone for Iter<'_, V, G, B> {
    fn clone(&self) -> Self {
        // The runs are copied with the cursors they belong to, pending
        // yields and all: the clone goes on exactly where `self` is.
        Iter {
            ends: self.ends.clone(),
            front: self.front,
            back: self.back,
            remaining: self.remaining,
            len: self.len,
            _table: PhantomData,
        }
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for Iter<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ends = self.ends.clone();
        let (mut front, mut back) = (self.front, self.back);
        front.settle_front(&mut ends);
        back.settle_back(&mut ends);
        f.debug_struct("Iter").field("lo", &ends.lo).field("last", &ends.last).finish_non_exhaustive()
    }
}

impl<'a, V, G: Geometry, B: Backend> Iterator for Iter<'a, V, G, B> {
    type Item = (Page, &'a V);

    #[inline]
    fn next(&mut self) -> Option<(Page, &'a V)> {
        // The common step: the next entry of the current bitmap word, while
        // the back's bound is exact; a direct table's first, so that its
        // step tests nothing a packed table needs.
        if let Some(found) = self.front_step::<false>() {
            return Some(found);
        }
        if let Some(found) = self.front_step::<true>() {
            return Some(found);
        }
        if let Some(found) = self.front_sparse() {
            return Some(found);
        }
        let (found, front, back) = Self::next_slow(&mut self.ends, self.front, self.back);
        self.front = front;
        self.back = back;
        let (p, v) = found?;
        self.count_one();
        // SAFETY: as above: a value of the table, borrowed shared for 'a.
        Some((p, unsafe { &*v }))
    }

    /// Internal iteration: whole bitmap words of a bottom table at a time.
    fn fold<Acc, F>(mut self, init: Acc, mut f: F) -> Acc
    where
        F: FnMut(Acc, (Page, &'a V)) -> Acc,
    {
        self.sync();
        // SAFETY: as in `next`.
        unsafe { self.ends.fold::<V, G, Acc>(init, |acc, p, v| f(acc, (p, &*v))) }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(r) => (r, Some(r)),
            None => (0, Some(self.len)),
        }
    }
}

impl<'a, V, G: Geometry, B: Backend> DoubleEndedIterator for Iter<'a, V, G, B> {
    #[inline]
    fn next_back(&mut self) -> Option<(Page, &'a V)> {
        // The common step: the previous entry of the back's bitmap word,
        // while the front's bound is exact.
        if let Some(found) = self.back_step::<false>() {
            return Some(found);
        }
        if let Some(found) = self.back_step::<true>() {
            return Some(found);
        }
        if let Some(found) = self.back_sparse() {
            return Some(found);
        }
        let (found, front, back) = Self::next_back_slow(&mut self.ends, self.front, self.back);
        self.front = front;
        self.back = back;
        let (p, v) = found?;
        self.count_one();
        // SAFETY: as in `next`.
        Some((p, unsafe { &*v }))
    }
}

impl<V, G: Geometry, B: Backend> FusedIterator for Iter<'_, V, G, B> {}

/// Mutable references to the entries overlapping a range, in ascending
/// order (or descending, from the back): from [`MemTable::iter_mut`] and
/// [`MemTable::range_mut`]. Each entry yielded is marked changed. Allocates
/// nothing.
pub struct IterMut<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    ends: Ends,
    remaining: Option<usize>,
    len: usize,
    /// The table's value tracking, if on: each entry's value is kept at its
    /// first mark of the batch.
    track: Option<NonNull<Track<V>>>,
    _table: PhantomData<&'a mut MemTable<V, G, B>>,
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> IterMut<'a, V, G, B> {
    pub(crate) fn new(table: &'a mut MemTable<V, G, B>, bounds: Option<(u64, u64)>, whole: bool) -> Self {
        IterMut {
            ends: Ends::new(&table.raw, bounds),
            remaining: whole.then_some(table.raw.len),
            len: table.raw.len,
            track: table.raw.track.as_deref_mut().map(NonNull::from),
            _table: PhantomData,
        }
    }

    /// After a marking step that yielded `(p, v)`: keeps the value if values
    /// are tracked and this was the entry's first mark of the batch.
    #[inline]
    fn keep(&mut self, fresh: bool, p: Page, v: *mut V) {
        if let (Some(mut tr), true) = (self.track, fresh) {
            // SAFETY: the tracking lives in its own allocation, owned by the
            // table this iterator borrows mutably; `v` is the initialized
            // value just yielded, not yet handed out.
            unsafe { tr.as_mut().keep(p.addr(), p.level().index() as u8, Some(&*v)) };
        }
    }
}

impl<V, G: Geometry, B: Backend> fmt::Debug for IterMut<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IterMut")
            .field("lo", &self.ends.lo)
            .field("last", &self.ends.last)
            .finish_non_exhaustive()
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> Iterator for IterMut<'a, V, G, B> {
    type Item = (Page, &'a mut V);

    #[inline]
    fn next(&mut self) -> Option<(Page, &'a mut V)> {
        // SAFETY: the table is borrowed mutably for 'a; the cursors only
        // write change marks, never a value, and each value is yielded once
        // (the two ends never cross).
        let (p, v) = unsafe { self.ends.next::<V, G>(true) }?;
        self.keep(self.ends.front.fresh, p, v);
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        // SAFETY: as above.
        Some((p, unsafe { &mut *v }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(r) => (r, Some(r)),
            None => (0, Some(self.len)),
        }
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> DoubleEndedIterator for IterMut<'a, V, G, B> {
    #[inline]
    fn next_back(&mut self) -> Option<(Page, &'a mut V)> {
        // SAFETY: as in `next`.
        let (p, v) = unsafe { self.ends.next_back::<V, G>(true) }?;
        self.keep(self.ends.back.fresh, p, v);
        if let Some(r) = &mut self.remaining {
            *r -= 1;
        }
        // SAFETY: as in `next`.
        Some((p, unsafe { &mut *v }))
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> FusedIterator for IterMut<'a, V, G, B> {}
impl<'a, V: 'a, G: Geometry, B: Backend + 'a> ExactSizeIterator for IterMut<'a, V, G, B> {}

/// Mutable references to the entries overlapping a range, in ascending
/// order (or descending, from the back): from [`MemTable::range_mut`]. As
/// [`IterMut`], without a known length.
pub struct RangeMut<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap>(
    IterMut<'a, V, G, B>,
);

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> Iterator for RangeMut<'a, V, G, B> {
    type Item = (Page, &'a mut V);
    #[inline]
    fn next(&mut self) -> Option<(Page, &'a mut V)> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> DoubleEndedIterator for RangeMut<'a, V, G, B> {
    #[inline]
    fn next_back(&mut self) -> Option<(Page, &'a mut V)> {
        self.0.next_back()
    }
}

impl<'a, V: 'a, G: Geometry, B: Backend + 'a> FusedIterator for RangeMut<'a, V, G, B> {}

impl<V, G: Geometry, B: Backend> fmt::Debug for RangeMut<'_, V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The entries of a table, by value, in ascending order (or descending, from
/// the back): from [`MemTable::into_iter`]. Each step moves one value out
/// (O(1) amortised, no walk from the root, nothing written to the table);
/// dropping the iterator drops the entries not taken and frees the tables.
///
/// # Invariants
/// The values the cursors have yielded were moved out: only the entries
/// still between the two ends are owned by the table, so the table is never
/// dropped as it is, but released by `RawTable::release` once the
/// remaining values are dropped.
pub struct IntoIter<V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    table: MemTable<V, G, B>,
    ends: Ends,
}

impl<V, G: Geometry, B: Backend> Drop for IntoIter<V, G, B> {
    fn drop(&mut self) {
        /// Drops what is left and frees the tables, also if a drop unwinds.
        struct Rest<'a, V, G: Geometry, B: Backend>(&'a mut IntoIter<V, G, B>);
        impl<V, G: Geometry, B: Backend> Drop for Rest<'_, V, G, B> {
            fn drop(&mut self) {
                if core::mem::needs_drop::<V>() {
                    for entry in &mut *self.0 {
                        drop(entry);
                    }
                }
                self.0.table.raw.release();
            }
        }
        let rest = Rest(self);
        if core::mem::needs_drop::<V>() {
            // If a drop unwinds, `rest` drops the others (a second panic
            // aborts, as for a slice) and frees the tables.
            for entry in rest.0.by_ref() {
                drop(entry);
            }
        }
        drop(rest);
    }
}

impl<V: fmt::Debug, G: Geometry, B: Backend> fmt::Debug for IntoIter<V, G, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").field("remaining", &self.table.raw.len).finish_non_exhaustive()
    }
}

impl<V, G: Geometry, B: Backend> Iterator for IntoIter<V, G, B> {
    type Item = (Page, V);

    #[inline]
    fn next(&mut self) -> Option<(Page, V)> {
        // SAFETY: the cursors were made for this table, which has not
        // changed; each value is yielded, and so moved out, once.
        let (p, v) = unsafe { self.ends.next::<V, G>(false) }?;
        self.table.raw.len -= 1;
        // SAFETY: as above.
        Some((p, unsafe { v.read() }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.table.raw.len, Some(self.table.raw.len))
    }
}

impl<V, G: Geometry, B: Backend> DoubleEndedIterator for IntoIter<V, G, B> {
    #[inline]
    fn next_back(&mut self) -> Option<(Page, V)> {
        // SAFETY: as in `next`.
        let (p, v) = unsafe { self.ends.next_back::<V, G>(false) }?;
        self.table.raw.len -= 1;
        // SAFETY: as in `next`.
        Some((p, unsafe { v.read() }))
    }
}

impl<V, G: Geometry, B: Backend> ExactSizeIterator for IntoIter<V, G, B> {}
impl<V, G: Geometry, B: Backend> FusedIterator for IntoIter<V, G, B> {}

/// Declares a view of an iterator that maps each item.
macro_rules! view {
    ($(#[$m:meta])* $name:ident<$($lt:lifetime,)? V $(: $vb:lifetime)?> of $inner:ident => $item:ty, |$pat:pat_param| $out:expr) => {
        $(#[$m])*
        pub struct $name<$($lt,)? V $(: $vb)?, G: Geometry = crate::X86_4Level, B: Backend $(+ $vb)? = crate::backend::Heap>(
            $inner<$($lt,)? V, G, B>,
        );

        impl<$($lt,)? V $(: $vb)?, G: Geometry, B: Backend $(+ $vb)?> Iterator for $name<$($lt,)? V, G, B> {
            type Item = $item;
            #[inline]
            fn next(&mut self) -> Option<$item> {
                self.0.next().map(|$pat| $out)
            }
            fn size_hint(&self) -> (usize, Option<usize>) {
                self.0.size_hint()
            }
            fn fold<Acc, F: FnMut(Acc, $item) -> Acc>(self, init: Acc, mut f: F) -> Acc {
                self.0.fold(init, |acc, $pat| f(acc, $out))
            }
        }

        impl<$($lt,)? V $(: $vb)?, G: Geometry, B: Backend $(+ $vb)?> DoubleEndedIterator for $name<$($lt,)? V, G, B> {
            #[inline]
            fn next_back(&mut self) -> Option<$item> {
                self.0.next_back().map(|$pat| $out)
            }
        }

        impl<$($lt,)? V $(: $vb)?, G: Geometry, B: Backend $(+ $vb)?> FusedIterator for $name<$($lt,)? V, G, B> {}

        impl<$($lt,)? V $(: $vb)?, G: Geometry, B: Backend $(+ $vb)?> fmt::Debug for $name<$($lt,)? V, G, B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

view!(
    /// The pages of a table, in ascending order: from [`MemTable::keys`].
    Keys<'a, V> of Iter => Page, |(p, _)| p
);
view!(
    /// The values of a table, in ascending address order: from
    /// [`MemTable::values`].
    Values<'a, V> of Iter => &'a V, |(_, v)| v
);
view!(
    /// The values of a table, mutably, in ascending address order: from
    /// [`MemTable::values_mut`].
    ValuesMut<'a, V: 'a> of IterMut => &'a mut V, |(_, v)| v
);

view!(
    /// The pages of a table, in ascending order, consuming it: from
    /// [`MemTable::into_keys`].
    IntoKeys<V> of IntoIter => Page, |(p, _)| p
);
view!(
    /// The values of a table, by value, in ascending address order: from
    /// [`MemTable::into_values`].
    IntoValues<V> of IntoIter => V, |(_, v)| v
);

impl<V, G: Geometry, B: Backend> ExactSizeIterator for IntoKeys<V, G, B> {}
impl<V, G: Geometry, B: Backend> ExactSizeIterator for IntoValues<V, G, B> {}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Every page, in ascending order, consuming the table (the values are
    /// dropped as the iterator goes, the rest and the tables when it is
    /// dropped). A large entry is one page. O(1) amortised per entry, as
    /// [`into_iter`](IntoIterator::into_iter).
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// t.insert_at(0x20_0000, Level::new(1), 2).unwrap();
    /// let pages: Vec<_> = t.into_keys().map(|p| (p.addr(), p.level().index())).collect();
    /// assert_eq!(pages, [(0x1000, 0), (0x20_0000, 1)]);
    /// ```
    pub fn into_keys(self) -> IntoKeys<V, G, B> {
        IntoKeys(self.into_iter())
    }

    /// Every value, by value, in ascending address order, consuming the
    /// table; a large entry's value comes once. As
    /// [`into_keys`](Self::into_keys).
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let t: MemTable<String> = [(0x2000, "b".to_string()), (0x1000, "a".to_string())].into_iter().collect();
    /// assert_eq!(t.into_values().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn into_values(self) -> IntoValues<V, G, B> {
        IntoValues(self.into_iter())
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// Every entry, in ascending address order, as `(page, &value)`.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x3000, 3).unwrap();
    /// t.insert_at(0x40_0000, Level::new(1), 2).unwrap();
    /// t.insert(0x1000, 1).unwrap();
    /// let v: Vec<_> = t.iter().map(|(p, v)| (p.addr(), *v)).collect();
    /// assert_eq!(v, [(0x1000, 1), (0x3000, 3), (0x40_0000, 2)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, V, G, B> {
        Iter::new(self, bounds::<G>(&(..)), true)
    }

    /// Every entry that overlaps `range` (of byte addresses), in ascending
    /// order; a large entry that starts before the range but reaches into it
    /// is included.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert_at(0, Level::new(1), 0).unwrap();           // 0 .. 2 MiB
    /// t.insert(0x20_0000, 1).unwrap();
    /// t.insert(0x20_1000, 2).unwrap();
    /// let v: Vec<_> = t.range(0x1f_0000..0x20_1000).map(|(_, v)| *v).collect();
    /// assert_eq!(v, [0, 1]);
    /// ```
    pub fn range<R: RangeBounds<u64>>(&self, range: R) -> Iter<'_, V, G, B> {
        Iter::new(self, bounds::<G>(&range), false)
    }

    /// Every entry, mutably, in ascending order. Marks every entry changed.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = [(0x1000, 1), (0x2000, 2)].into_iter().collect();
    /// for (_, v) in t.iter_mut() {
    ///     *v *= 10;
    /// }
    /// assert_eq!(t[0x2000], 20);
    /// ```
    pub fn iter_mut(&mut self) -> IterMut<'_, V, G, B> {
        IterMut::new(self, bounds::<G>(&(..)), true)
    }

    /// Every entry that overlaps `range`, mutably, in ascending order (as
    /// [`range`](Self::range)). Marks every entry it yields changed.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = (0..4u64).map(|i| (i << 12, 0)).collect();
    /// for (_, v) in t.range_mut(0x1000..0x3000) {
    ///     *v = 1;
    /// }
    /// assert_eq!(t.values().copied().collect::<Vec<_>>(), [0, 1, 1, 0]);
    /// ```
    pub fn range_mut<R: RangeBounds<u64>>(&mut self, range: R) -> RangeMut<'_, V, G, B> {
        RangeMut(IterMut::new(self, bounds::<G>(&range), false))
    }

    /// Every page, in ascending order.
    pub fn keys(&self) -> Keys<'_, V, G, B> {
        Keys(self.iter())
    }

    /// Every value, in ascending address order.
    pub fn values(&self) -> Values<'_, V, G, B> {
        Values(self.iter())
    }

    /// Every value, mutably, in ascending address order. Marks every entry
    /// changed.
    pub fn values_mut(&mut self) -> ValuesMut<'_, V, G, B> {
        ValuesMut(self.iter_mut())
    }

    /// The entry with the lowest address.
    pub fn first_key_value(&self) -> Option<(Page, &V)> {
        self.iter().next()
    }

    /// Removes and returns the entry with the lowest address.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = [(0x2000, 2), (0x1000, 1)].into_iter().collect();
    /// assert_eq!(t.pop_first().map(|(p, v)| (p.addr(), v)), Some((0x1000, 1)));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn pop_first(&mut self) -> Option<(Page, V)> {
        self.raw.pop_end(false)
    }

    /// The entry with the highest address.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = [(0x1000, 1), (0x9000, 9)].into_iter().collect();
    /// assert_eq!(t.last_key_value().map(|(p, v)| (p.addr(), *v)), Some((0x9000, 9)));
    /// ```
    pub fn last_key_value(&self) -> Option<(Page, &V)> {
        self.iter().next_back()
    }

    /// Removes and returns the entry with the highest address.
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let mut t: MemTable<u8> = [(0x2000, 2), (0x1000, 1)].into_iter().collect();
    /// assert_eq!(t.pop_last().map(|(p, v)| (p.addr(), v)), Some((0x2000, 2)));
    /// assert_eq!(t.len(), 1);
    /// ```
    pub fn pop_last(&mut self) -> Option<(Page, V)> {
        self.raw.pop_end(true)
    }
}

impl<'a, V, G: Geometry, B: Backend> IntoIterator for &'a MemTable<V, G, B> {
    type Item = (Page, &'a V);
    type IntoIter = Iter<'a, V, G, B>;
    fn into_iter(self) -> Iter<'a, V, G, B> {
        self.iter()
    }
}

impl<'a, V, G: Geometry, B: Backend> IntoIterator for &'a mut MemTable<V, G, B> {
    type Item = (Page, &'a mut V);
    type IntoIter = IterMut<'a, V, G, B>;
    fn into_iter(self) -> IterMut<'a, V, G, B> {
        self.iter_mut()
    }
}

impl<V, G: Geometry, B: Backend> IntoIterator for MemTable<V, G, B> {
    type Item = (Page, V);
    type IntoIter = IntoIter<V, G, B>;
    /// The entries by value, in ascending order (or descending, from the
    /// back). O(1) amortised per entry; the tables are freed when the
    /// iterator is dropped.
    fn into_iter(self) -> IntoIter<V, G, B> {
        let ends = Ends::new(&self.raw, bounds::<G>(&(..)));
        IntoIter { table: self, ends }
    }
}

// The iterators hold raw cursors into the table they borrow or own; they
// are as thread-safe as the borrow or ownership they stand for.

// SAFETY: an `Iter` is a shared borrow of the table: it hands out `&V`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Send for Iter<'_, V, G, B> {}
// SAFETY: as above; `&Iter` allows nothing but cloning it.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for Iter<'_, V, G, B> {}
// SAFETY: an `IterMut` is a mutable borrow of the table: it hands out `&mut V`.
unsafe impl<V: Send, G: Geometry, B: Backend> Send for IterMut<'_, V, G, B> {}
// SAFETY: `&IterMut` allows nothing (no method takes `&self` but `Debug`).
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for IterMut<'_, V, G, B> {}
// SAFETY: an `IntoIter` owns the table and hands out `V`.
unsafe impl<V: Send, G: Geometry, B: Backend> Send for IntoIter<V, G, B> {}
// SAFETY: `&IntoIter` allows nothing but `Debug`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for IntoIter<V, G, B> {}
