//! The sparse form of a bottom table: for the few entries of a table in a
//! sparse address space, sorted slot indices instead of the two slot maps.
//!
//! # Glossary
//! - **index**: a slot number (`u16`) the table knows of; the indices are
//!   kept sorted, at most the capacity of them.
//! - **position**: where an index sits among the indices; bit `p` of each
//!   mask speaks of position `p`.
//! - **present mask**: the positions whose slot holds an entry.
//! - **marked mask**: the positions whose slot is marked changed. A slot
//!   can be marked and empty (its entry was removed since the last report):
//!   it keeps its index until the report clears its mark.
//!
//! # Layout (x86, `u64` values)
//!
//! ```text
//!  +--------------------------------------------+ 0
//!  | len: u32 | cap: u16 | indices in use: u16  |  (len and cap as in every form)
//!  | present mask: u32   | marked mask: u32     | 8
//!  +--------------------------------------------+ 16
//!  | indices: max(cap, 8) x u16, sorted         |
//!  +--------------------------------------------+ 16 + 2 max(cap, 8), aligned
//!  | values: cap x V, in slot order (len used)  |
//!  +--------------------------------------------+ 64, 96, 176 bytes for cap 4, 8, 16
//! ```
//!
//! The value of a present slot sits at its **rank**: the present positions
//! before its position (one popcount of the present mask), so the values
//! of present slots follow each other in slot order, as in the packed
//! form, and iteration steps through them the same way.
//!
//! # Invariants
//! - the indices in use are strictly ascending and below the fan-out; at
//!   most `cap` of them; the rest of the index rooms (at least 8) are
//!   [`SPARSE_NONE`];
//! - every position in use is present or marked (or both); no mask bit is
//!   set at a position not in use;
//! - `len` is the number of present positions, and the first `len` values
//!   are initialized.
//!
//! Between [`open`](Tab::open) and the [`occupy`](Tab::occupy) or
//! [`close`](Tab::close) that follows it, the position of the slot being
//! filled may be neither present nor marked.
//!
//! # Costs
//! A lookup scans at most `cap` (16) indices of one or two cache lines and
//! counts bits of one mask; an insert or remove moves at most `cap`
//! indices and values. A map word, read by the walks, is built from the
//! indices that fall in it; the walks that go through every entry do not
//! build words: `Iter` takes the rest of a sparse table as one run of
//! positions ([`sparse_run`](Tab::sparse_run)), `fold` makes one pass over
//! the indices ([`sparse_fold`](Tab::sparse_fold)), and the cursor moves
//! to the next word that holds an entry ([`sparse_next_word`](Tab::sparse_next_word)),
//! not through the empty ones.

use core::ptr;

use super::layout::{
    Lv, MAX_SPARSE, SPARSE_IDX, SPARSE_MARKED, SPARSE_NK, SPARSE_NONE, SPARSE_PRESENT, sparse_lanes,
    sparse_vals,
};
use super::node::Tab;

/// The bits of a mask below position `p`.
#[inline(always)]
fn below(p: usize) -> u32 {
    (1u32 << p) - 1
}

// Every function below has the contract of `Tab`'s accessors (see
// `node.rs`), and also: the table is a sparse bottom table of `lv`.
impl Tab {
    /// Whether this bottom table has the sparse form.
    ///
    /// # Safety
    /// `self` is a live table of `lv`.
    #[inline(always)]
    pub unsafe fn sparse(self, lv: &Lv) -> bool {
        // SAFETY: caller. One compare: a capacity in `1..=sparse_cap`.
        lv.sparse > 0 && unsafe { self.cap(lv) }.wrapping_sub(1) < lv.sparse_cap()
    }

    #[inline(always)]
    fn nk_ptr(self) -> *mut u16 {
        self.ptr().wrapping_add(SPARSE_NK).cast()
    }

    #[inline(always)]
    fn present_mask(self) -> *mut u32 {
        self.ptr().wrapping_add(SPARSE_PRESENT).cast()
    }

    #[inline(always)]
    fn marked_mask(self) -> *mut u32 {
        self.ptr().wrapping_add(SPARSE_MARKED).cast()
    }

    #[inline(always)]
    fn indices(self) -> *mut u16 {
        self.ptr().wrapping_add(SPARSE_IDX).cast()
    }

    /// The number of indices in use.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn sparse_used(self) -> usize {
        // SAFETY: the header is inside the table.
        unsafe { *self.nk_ptr() as usize }
    }

    /// The number of indices below slot `i`. Branch-free but for the class:
    /// every index room is compared, four at a time in a word (those not
    /// in use are [`SPARSE_NONE`], below no slot), so that a lookup does
    /// not wait on a mispredicted loop exit. In each 16-bit lane,
    /// `(x | 0x8000) - i` keeps its top bit exactly when `x >= i` (both are
    /// below `0x8000`, so no lane borrows from the next).
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    unsafe fn count_below(self, lv: &Lv, i: usize) -> usize {
        const ONES: u64 = 0x0001_0001_0001_0001;
        const TOPS: u64 = 0x8000_8000_8000_8000;
        // SAFETY: the index rooms are inside the table, initialized, and
        // 8-byte aligned (at offset 16 of a table aligned to 8 or more).
        unsafe {
            let words = self.indices().cast::<u64>();
            let ii = i as u64 * ONES;
            let lane = |w: u64| (!((w | TOPS) - ii) & TOPS) >> 15;
            let mut acc = lane(*words) + lane(*words.add(1));
            // At most `MAX_SPARSE` (16) rooms: two words more, or none.
            const { assert!(MAX_SPARSE == 16) };
            if sparse_lanes(self.cap(lv)) > 8 {
                acc += lane(*words.add(2)) + lane(*words.add(3));
            }
            // The lanes' sum (at most 16) in the top lane.
            (acc.wrapping_mul(ONES) >> 48) as usize
        }
    }

    /// The position of slot `i`: the number of indices below `i`, and
    /// whether the index there is `i`.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    unsafe fn position(self, lv: &Lv, i: usize) -> (usize, bool) {
        // SAFETY: contract.
        unsafe {
            let p = self.count_below(lv, i);
            (p, p < self.sparse_used() && *self.indices().add(p) as usize == i)
        }
    }

    /// The value of the present slot `i`, or `None`: one position and one
    /// rank, for the lookups.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_get<V>(self, lv: &Lv, i: usize) -> Option<*mut V> {
        // SAFETY: contract; a present bit is at a position in use.
        unsafe {
            let p = self.count_below(lv, i);
            let pm = *self.present_mask();
            if pm >> p & 1 == 0 || *self.indices().add(p) as usize != i {
                return None;
            }
            // The rank: the position itself while every position in use is
            // present (no removed slot waits for its mark to be reported),
            // which saves the popcount.
            let below_p = pm & below(p);
            let r = if below_p == below(p) { p } else { below_p.count_ones() as usize };
            Some(self.sparse_vals::<V>(lv).add(r))
        }
    }

    /// The first value.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn sparse_vals<V>(self, lv: &Lv) -> *mut V {
        // SAFETY: the values are inside the table.
        unsafe { self.ptr().add(sparse_vals(self.cap(lv), lv.align)).cast() }
    }

    /// The value of slot `i`: at its rank; for an empty slot, where
    /// [`sparse_open`](Self::sparse_open) would put it.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_val<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract; the rank is at most `len`, below `cap` for a
        // present slot.
        unsafe {
            let (p, _) = self.position(lv, i);
            let r = (*self.present_mask() & below(p)).count_ones() as usize;
            self.sparse_vals::<V>(lv).add(r)
        }
    }

    /// Whether slot `i` holds an entry.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_occupied(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract.
        unsafe {
            let (p, found) = self.position(lv, i);
            found && *self.present_mask() >> p & 1 != 0
        }
    }

    /// Whether slot `i` is marked.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_marked(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract.
        unsafe {
            let (p, found) = self.position(lv, i);
            found && *self.marked_mask() >> p & 1 != 0
        }
    }

    /// Whether any slot is marked.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_has_marks(self) -> bool {
        // SAFETY: contract.
        unsafe { *self.marked_mask() != 0 }
    }

    /// Word `w` of the occupancy map (`marks`: of the change map), as the
    /// direct and packed forms store it.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_word(self, w: usize, marks: bool) -> u64 {
        // SAFETY: contract.
        unsafe {
            let mask = if marks { *self.marked_mask() } else { *self.present_mask() };
            let (n, idx) = (self.sparse_used(), self.indices());
            let mut word = 0;
            for p in 0..n {
                let i = *idx.add(p) as usize;
                if i / 64 == w && mask >> p & 1 != 0 {
                    word |= 1u64 << (i % 64);
                }
            }
            word
        }
    }

    /// The first slot in `from..=to` that is present (`marks`: marked).
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_next(self, lv: &Lv, from: usize, to: usize, marks: bool) -> Option<usize> {
        // SAFETY: contract.
        unsafe {
            let mask = if marks { *self.marked_mask() } else { *self.present_mask() };
            let (n, idx) = (self.sparse_used(), self.indices());
            let (mut p, _) = self.position(lv, from);
            while p < n {
                let i = *idx.add(p) as usize;
                if i > to {
                    return None;
                }
                if mask >> p & 1 != 0 {
                    return Some(i);
                }
                p += 1;
            }
            None
        }
    }

    /// The last present slot in `from..=to`.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_prev(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe {
            let mask = *self.present_mask();
            let idx = self.indices();
            let (mut p, found) = self.position(lv, to);
            if found {
                p += 1;
            }
            while p > 0 {
                p -= 1;
                let i = *idx.add(p) as usize;
                if i < from {
                    return None;
                }
                if mask >> p & 1 != 0 {
                    return Some(i);
                }
            }
            None
        }
    }

    /// The map word after `w` (before it, `rev`) that holds a present slot:
    /// where a walk's next word is, found from the indices instead of
    /// building every word between.
    ///
    /// # Safety
    /// See above; `w < lv.words`.
    #[inline]
    pub unsafe fn sparse_next_word(self, lv: &Lv, w: usize, rev: bool) -> Option<usize> {
        // SAFETY: contract; the bounds are slots of the table.
        unsafe {
            if rev {
                if w == 0 { None } else { self.sparse_prev(lv, 0, w * 64 - 1).map(|i| i / 64) }
            } else if w + 1 >= lv.words {
                None
            } else {
                self.sparse_next(lv, (w + 1) * 64, lv.fanout - 1, false).map(|i| i / 64)
            }
        }
    }

    /// The present positions from slot `i` on (`rev`: up to slot `i`), as
    /// a mask; the indices; and the value of the first of those positions
    /// (`rev`: the last; any value pointer when there are none): a walk's
    /// run over the rest of the table.
    ///
    /// # Safety
    /// See above; `i` is at most the fan-out.
    #[inline]
    pub unsafe fn sparse_run<V>(self, lv: &Lv, i: usize, rev: bool) -> (u64, *const u16, *mut V) {
        // SAFETY: contract; the ranks are at most `len`.
        unsafe {
            let (p, found) = self.position(lv, i);
            let pm = *self.present_mask();
            let (mask, rank) = if rev {
                let mask = pm & below(p + found as usize);
                (mask, (mask.count_ones() as usize).saturating_sub(1))
            } else {
                (pm & !below(p), (pm & below(p)).count_ones() as usize)
            };
            (mask as u64, self.indices(), self.sparse_vals::<V>(lv).add(rank))
        }
    }

    /// Folds `f` over each present slot in `from..=to` and its value,
    /// ascending: one pass over the indices, each value the one after the
    /// last (the walks' fold, without building map words).
    ///
    /// # Safety
    /// See above; `f` does not change the table.
    #[inline]
    pub unsafe fn sparse_fold<V, A>(
        self,
        lv: &Lv,
        from: usize,
        to: usize,
        mut acc: A,
        mut f: impl FnMut(A, usize, *mut V) -> A,
    ) -> A {
        // SAFETY: contract; a present position's rank is below `len`.
        unsafe {
            let (n, idx, pm) = (self.sparse_used(), self.indices(), *self.present_mask());
            let (mut p, _) = self.position(lv, from);
            let mut v = self.sparse_vals::<V>(lv).add((pm & below(p)).count_ones() as usize);
            while p < n {
                let i = *idx.add(p) as usize;
                if i > to {
                    break;
                }
                if pm >> p & 1 != 0 {
                    acc = f(acc, i, v);
                    v = v.add(1);
                }
                p += 1;
            }
            acc
        }
    }

    /// Puts index `i` at position `p`, neither present nor marked.
    ///
    /// # Safety
    /// See above; fewer than `cap` indices are in use, and `i` belongs at
    /// `p` (the first index not below it is above it).
    unsafe fn insert_index(self, lv: &Lv, p: usize, i: usize) {
        // SAFETY: contract: the indices after `p` move up one, inside `cap`.
        unsafe {
            let n = self.sparse_used();
            // Every caller made room (the insert's plan, or an index the
            // slot had); a miss must not write past the table.
            assert!(n < self.cap(lv), "mem-table: sparse table out of indices");
            let idx = self.indices();
            ptr::copy(idx.add(p), idx.add(p + 1), n - p);
            *idx.add(p) = i as u16;
            *self.nk_ptr() += 1;
            for m in [self.present_mask(), self.marked_mask()] {
                *m = (*m & below(p)) | ((*m & !below(p)) << 1);
            }
        }
    }

    /// Drops the index at position `p`, neither present nor marked.
    ///
    /// # Safety
    /// See above; `p` is in use.
    unsafe fn remove_index(self, p: usize) {
        // SAFETY: contract.
        unsafe {
            let n = self.sparse_used();
            let idx = self.indices();
            ptr::copy(idx.add(p + 1), idx.add(p), n - p - 1);
            *idx.add(n - 1) = SPARSE_NONE;
            *self.nk_ptr() -= 1;
            for m in [self.present_mask(), self.marked_mask()] {
                debug_assert!(*m >> p & 1 == 0);
                *m = (*m & below(p)) | ((*m >> 1) & !below(p));
            }
        }
    }

    /// Drops the index at position `p` if it is neither present nor marked.
    ///
    /// # Safety
    /// See above; `p` is in use.
    unsafe fn drop_if_unused(self, p: usize) {
        // SAFETY: contract.
        unsafe {
            if (*self.present_mask() | *self.marked_mask()) >> p & 1 == 0 {
                self.remove_index(p);
            }
        }
    }

    /// Makes the memory at `self` an empty sparse table of capacity `cap`.
    ///
    /// # Safety
    /// `self` points to a sparse class's bytes of `lv`, writable.
    pub unsafe fn sparse_init(self, lv: &Lv, cap: usize) {
        // SAFETY: the header and the indices are inside the table (caller).
        unsafe {
            ptr::write_bytes(self.ptr(), 0, SPARSE_IDX);
            *self.ptr().add(lv.off_cap).cast::<u16>() = cap as u16;
            for p in 0..sparse_lanes(cap) {
                *self.indices().add(p) = SPARSE_NONE;
            }
        }
    }

    /// Marks slot `i`, giving it an index if it has none.
    ///
    /// # Safety
    /// See above; slot `i` has an index, or fewer than `cap` are in use.
    #[inline]
    pub unsafe fn sparse_mark(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe {
            let (p, found) = self.position(lv, i);
            if !found {
                self.insert_index(lv, p, i);
            }
            *self.marked_mask() |= 1 << p;
        }
    }

    /// Clears slot `i`'s mark; an empty slot loses its index.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn sparse_unmark(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe {
            let (p, found) = self.position(lv, i);
            if found {
                *self.marked_mask() &= !(1 << p);
                self.drop_if_unused(p);
            }
        }
    }

    /// [`open`](Tab::open): gives the empty slot `i` an index if it has
    /// none, and moves the values from its rank on up one.
    ///
    /// # Safety
    /// See above; slot `i` is empty; it has an index, or fewer than `cap`
    /// are in use.
    #[inline]
    pub unsafe fn sparse_open<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract: `len < cap` (a present slot has an index, so
        // `len <= used`, and `used < cap` or `i`'s index is not present).
        unsafe {
            let (p, found) = self.position(lv, i);
            if !found {
                self.insert_index(lv, p, i);
            }
            let r = (*self.present_mask() & below(p)).count_ones() as usize;
            let v = self.sparse_vals::<V>(lv).add(r);
            let after = self.len(lv) - r;
            if after != 0 {
                ptr::copy(v, v.add(1), after);
            }
            v
        }
    }

    /// [`close`](Tab::close): undoes [`sparse_open`](Self::sparse_open).
    ///
    /// # Safety
    /// See above; `sparse_open(lv, i)` was the last change to the table.
    pub unsafe fn sparse_close<V>(self, lv: &Lv, i: usize) {
        // SAFETY: contract: the values after the gap are those `open` moved.
        unsafe {
            let (p, _) = self.position(lv, i);
            let r = (*self.present_mask() & below(p)).count_ones() as usize;
            let v = self.sparse_vals::<V>(lv).add(r);
            ptr::copy(v.add(1), v, self.len(lv) - r);
            self.drop_if_unused(p);
        }
    }

    /// [`occupy`](Tab::occupy): slot `i`, opened, is present.
    ///
    /// # Safety
    /// See above; slot `i` was opened and its value written.
    #[inline]
    pub unsafe fn sparse_occupy(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe {
            let (p, found) = self.position(lv, i);
            debug_assert!(found);
            *self.present_mask() |= 1 << p;
            *self.len_ptr(lv) += 1;
        }
    }

    /// Empties the present slot `i`, whose value was moved out: closes the
    /// gap among the values; the slot keeps its index if it is marked.
    ///
    /// # Safety
    /// See above; slot `i` is present and its value gone.
    #[inline]
    pub unsafe fn sparse_unoccupy<V>(self, lv: &Lv, i: usize) {
        // SAFETY: contract: the values after the gap are initialized.
        unsafe {
            let (p, _) = self.position(lv, i);
            let r = (*self.present_mask() & below(p)).count_ones() as usize;
            let v = self.sparse_vals::<V>(lv).add(r);
            ptr::copy(v.add(1), v, self.len(lv) - r - 1);
            *self.present_mask() &= !(1 << p);
            *self.len_ptr(lv) -= 1;
            self.drop_if_unused(p);
        }
    }

    /// Empties every slot without dropping a value; marked slots keep their
    /// indices.
    ///
    /// # Safety
    /// See above; no value needs dropping.
    pub unsafe fn sparse_forget(self, lv: &Lv) {
        // SAFETY: contract.
        unsafe {
            *self.present_mask() = 0;
            *self.len_ptr(lv) = 0;
            let mut p = self.sparse_used();
            while p > 0 {
                p -= 1;
                self.drop_if_unused(p);
            }
        }
    }

    /// The slots that hold an entry or a mark: the indices a sparse form
    /// would need for this table, whatever its form now.
    ///
    /// # Safety
    /// `self` is a live bottom table of `lv`.
    pub unsafe fn known(self, lv: &Lv) -> usize {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_used();
            }
            (0..lv.words).map(|w| (*self.map(lv).add(w) | *self.dirty(lv).add(w)).count_ones() as usize).sum()
        }
    }

    /// Checks the invariants above.
    ///
    /// # Safety
    /// See above.
    pub unsafe fn sparse_check(self, lv: &Lv) -> Result<(), alloc::string::String> {
        // SAFETY: contract.
        unsafe {
            let (n, cap, idx) = (self.sparse_used(), self.cap(lv), self.indices());
            let (pm, mm) = (*self.present_mask(), *self.marked_mask());
            let used = if n >= 32 { u32::MAX } else { below(n) };
            let sorted = (0..n)
                .all(|p| (p == 0 || *idx.add(p - 1) < *idx.add(p)) && (*idx.add(p) as usize) < lv.fanout);
            let err = if n > cap {
                "more indices than capacity"
            } else if (n..sparse_lanes(cap)).any(|p| *idx.add(p) != SPARSE_NONE) {
                "an index room not in use that is not SPARSE_NONE"
            } else if !sorted {
                "indices not ascending within the fan-out"
            } else if (pm | mm) & !used != 0 {
                "mask bits past the indices"
            } else if (pm | mm) != used {
                "an index neither present nor marked"
            } else if pm.count_ones() as usize != self.len(lv) {
                "count is not the present indices"
            } else {
                return Ok(());
            };
            Err(alloc::format!("sparse table: {err} ({n} indices, cap {cap}, masks {pm:#x} {mm:#x})"))
        }
    }

    // The links form of a level-1 table: the same header, indices and
    // masks, and link words for values.

    /// [`set_word`](Tab::set_word) in the links form: writes, adds or (a
    /// null word) empties the link of slot `i`; an emptied slot keeps its
    /// index while it is marked.
    ///
    /// # Safety
    /// See above, with link words for values; `w` is null or a link; a new
    /// link's slot has an index, or fewer than `cap` are in use.
    pub unsafe fn links_set(self, lv: &Lv, i: usize, w: *mut u8) {
        // SAFETY: contract; a present slot's link is at its rank.
        unsafe {
            match (self.sparse_get::<*mut u8>(lv, i), w.is_null()) {
                (Some(p), false) => *p = w,
                (Some(_), true) => self.sparse_unoccupy::<*mut u8>(lv, i),
                (None, false) => {
                    self.sparse_open::<*mut u8>(lv, i).write(w);
                    self.sparse_occupy(lv, i);
                }
                (None, true) => {}
            }
        }
    }
}
