//! The level-independent core: one table in memory, reached through a raw
//! pointer and described by its level's [`Lv`].
//!
//! # How a slot is represented
//!
//! | table | slot | representation |
//! |---|---|---|
//! | upper (level > 0) | empty | the null word |
//! | upper | a child table | the child's address (8-byte aligned, so never 1) |
//! | upper, level holds entries | a large entry | the word `1`; the value sits at the same index of the table's value array |
//! | bottom | empty / a base entry | the slot's bit in `present`, the value at its index of the value array |
//!
//! # Invariants
//! For every table reachable from a [`RawTable`](super::RawTable):
//! - it was allocated by its level's store with its level's layout, and its
//!   header was zeroed before first use;
//! - bit `i` of the occupancy map is set exactly when slot `i` is not empty
//!   (upper) or value `i` is initialized (bottom), and `len` counts them;
//! - an upper slot holds [`LARGE`] only at a level that holds entries, and
//!   then value `i` is initialized; a child link points to a live table of
//!   the level below that no other slot links to;
//! - no linked child table is empty once an operation has returned;
//! - no bit past the fan-out is set.
//!
//! Links are valid by construction: the walks below never bounds-check a
//! slot index, because every index is `(addr >> shift) & mask` or comes from
//! a bitmap of `fanout` bits.

use core::ptr::{self, NonNull};

use super::bitmap;
use super::layout::Lv;

/// The word of an upper slot that holds a large entry.
pub const LARGE: *mut u8 = ptr::without_provenance_mut(1);

/// What an upper slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// Nothing.
    Empty,
    /// A large entry (its value in the table's value array).
    Large,
    /// A child table.
    Table(Tab),
}

impl Slot {
    /// Decodes a slot word.
    #[inline(always)]
    pub fn of(w: *mut u8) -> Slot {
        match NonNull::new(w) {
            None => Slot::Empty,
            Some(_) if w == LARGE => Slot::Large,
            Some(p) => Slot::Table(Tab(p)),
        }
    }
}

/// A pointer to one table. Copy, like a raw pointer: the [`RawTable`]
/// that owns the table decides who may use it.
///
/// [`RawTable`]: super::RawTable
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tab(pub NonNull<u8>);

// Every accessor below has the same contract, stated once:
//
// # Safety
// `self` points to a live table of the level `lv` describes, and `i` (where
// given) is below `lv.fanout`. Reads need the table not to be mutably
// borrowed elsewhere; writes need no other reference to the bytes written.
impl Tab {
    /// The table's address.
    #[inline(always)]
    pub fn ptr(self) -> *mut u8 {
        self.0.as_ptr()
    }

    /// Makes the memory at `self` an empty table of `lv`.
    ///
    /// # Safety
    /// `self` points to `lv.size` writable bytes aligned to `lv.align`.
    #[inline]
    pub unsafe fn init(self, lv: &Lv) {
        // SAFETY: the header lies inside the table (caller).
        unsafe { ptr::write_bytes(self.ptr(), 0, lv.header) }
    }

    /// The word of upper slot `i`.
    ///
    /// # Safety
    /// See above; `lv.level > 0`.
    #[inline(always)]
    pub unsafe fn word(self, i: usize) -> *mut u8 {
        // SAFETY: slot `i` is inside the table (contract).
        unsafe { *self.ptr().cast::<*mut u8>().add(i) }
    }

    /// What upper slot `i` holds.
    ///
    /// # Safety
    /// See above; `lv.level > 0`.
    #[inline(always)]
    pub unsafe fn slot(self, i: usize) -> Slot {
        // SAFETY: contract.
        Slot::of(unsafe { self.word(i) })
    }

    /// Writes the word of upper slot `i`, keeping the occupancy map and
    /// count right. Does not touch values or change marks.
    ///
    /// # Safety
    /// See above; `lv.level > 0`; the caller keeps the value array in step.
    #[inline]
    pub unsafe fn set_word(self, lv: &Lv, i: usize, w: *mut u8) {
        // SAFETY: contract: slot `i`, the map and the count are inside the table.
        unsafe {
            let p = self.ptr().cast::<*mut u8>().add(i);
            let was = !(*p).is_null();
            *p = w;
            match (was, !w.is_null()) {
                (false, true) => {
                    bitmap::set(self.map(lv), i);
                    *self.len_ptr(lv) += 1;
                }
                (true, false) => {
                    bitmap::clear(self.map(lv), i);
                    *self.len_ptr(lv) -= 1;
                }
                _ => {}
            }
        }
    }

    /// The occupancy map (`used` above, `present` at the bottom).
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn map(self, lv: &Lv) -> *mut u64 {
        // SAFETY: the map is inside the table.
        unsafe { self.ptr().add(lv.off_map).cast() }
    }

    /// The change map.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn dirty(self, lv: &Lv) -> *mut u64 {
        // SAFETY: the map is inside the table.
        unsafe { self.ptr().add(lv.off_dirty).cast() }
    }

    /// Marks slot `i` changed.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn mark(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe { bitmap::set(self.dirty(lv), i) }
    }

    /// Whether any slot is marked changed.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn has_marks(self, lv: &Lv) -> bool {
        // SAFETY: contract.
        unsafe { bitmap::any(self.dirty(lv), lv.words) }
    }

    /// Marks every slot changed.
    ///
    /// # Safety
    /// See above.
    pub unsafe fn mark_all(self, lv: &Lv) {
        // SAFETY: contract.
        unsafe { bitmap::set_first(self.dirty(lv), lv.words, lv.fanout) }
    }

    /// Whether slot `i` is occupied.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn occupied(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract.
        unsafe { bitmap::get(self.map(lv), i) }
    }

    /// The count of occupied slots.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn len_ptr(self, lv: &Lv) -> *mut u32 {
        // SAFETY: the count is inside the table.
        unsafe { self.ptr().add(lv.off_len).cast() }
    }

    /// The count of occupied slots.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn len(self, lv: &Lv) -> usize {
        // SAFETY: contract.
        unsafe { *self.len_ptr(lv) as usize }
    }

    /// The place of value `i` (initialized or not).
    ///
    /// # Safety
    /// See above; the level has a value array (`lv.level == 0 || lv.large`).
    #[inline(always)]
    pub unsafe fn val<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: value `i` is inside the table.
        unsafe { self.ptr().add(lv.off_vals).cast::<V>().add(i) }
    }

    /// The first occupied slot in `from..=to`.
    ///
    /// # Safety
    /// See above; `to < lv.fanout`.
    #[inline(always)]
    pub unsafe fn next_occupied(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe { bitmap::next(self.map(lv), from, to) }
    }

    /// The last occupied slot in `from..=to`.
    ///
    /// # Safety
    /// As for [`next_occupied`](Self::next_occupied).
    #[inline(always)]
    pub unsafe fn prev_occupied(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe { bitmap::prev(self.map(lv), from, to) }
    }

    // Bottom tables.

    /// Puts `v` in bottom slot `i`, handing back the value it replaces.
    ///
    /// # Safety
    /// See above; `lv.level == 0`.
    #[inline]
    pub unsafe fn put<V>(self, lv: &Lv, i: usize, v: V) -> Option<V> {
        // SAFETY: contract; the value is initialized exactly when the bit is set.
        unsafe {
            let p = self.val::<V>(lv, i);
            if self.occupied(lv, i) {
                Some(ptr::replace(p, v))
            } else {
                p.write(v);
                bitmap::set(self.map(lv), i);
                *self.len_ptr(lv) += 1;
                None
            }
        }
    }

    /// Moves the value at `src` into bottom slot `i` by a byte copy (so that
    /// a large value is not moved through the stack); the value it replaces
    /// is moved to `old`, and the result says whether there was one.
    ///
    /// # Safety
    /// See above; `lv.level == 0`; `src` points to an initialized value,
    /// which the caller must forget; `old` is writable.
    #[inline]
    pub unsafe fn put_from<V>(self, lv: &Lv, i: usize, src: *const V, old: *mut V) -> bool {
        // SAFETY: contract; the value is initialized exactly when the bit is set.
        unsafe {
            let p = self.val::<V>(lv, i);
            let had = self.occupied(lv, i);
            if had {
                ptr::copy_nonoverlapping(p, old, 1);
            } else {
                bitmap::set(self.map(lv), i);
                *self.len_ptr(lv) += 1;
            }
            ptr::copy_nonoverlapping(src, p, 1);
            had
        }
    }

    /// Moves the value at `src` into upper slot `i` as a large entry, as
    /// [`put_from`](Self::put_from) does.
    ///
    /// # Safety
    /// See above; the level holds entries; slot `i` is empty or holds a
    /// large entry; `src` points to an initialized value, which the caller
    /// must forget; `old` is writable.
    #[inline]
    pub unsafe fn put_large_from<V>(self, lv: &Lv, i: usize, src: *const V, old: *mut V) -> bool {
        // SAFETY: contract; the value is written before the slot says so.
        unsafe {
            let p = self.val::<V>(lv, i);
            let had = self.word(i) == LARGE;
            if had {
                ptr::copy_nonoverlapping(p, old, 1);
            }
            ptr::copy_nonoverlapping(src, p, 1);
            self.set_word(lv, i, LARGE);
            had
        }
    }

    /// Takes the value out of bottom slot `i`. The slot is empty before the
    /// value is handed back, so dropping it cannot see it twice.
    ///
    /// # Safety
    /// See above; `lv.level == 0`.
    #[inline]
    pub unsafe fn take<V>(self, lv: &Lv, i: usize) -> Option<V> {
        // SAFETY: contract; the bit is cleared before the value is read out.
        unsafe {
            if !self.occupied(lv, i) {
                return None;
            }
            bitmap::clear(self.map(lv), i);
            *self.len_ptr(lv) -= 1;
            Some(self.val::<V>(lv, i).read())
        }
    }

    // Large entries in upper tables.

    /// Puts the large entry `v` in the empty upper slot `i`.
    ///
    /// # Safety
    /// See above; the level holds entries and slot `i` is empty.
    #[inline]
    pub unsafe fn put_large<V>(self, lv: &Lv, i: usize, v: V) {
        // SAFETY: contract; the value is written before the slot says so.
        unsafe {
            debug_assert!(self.word(i).is_null());
            self.val::<V>(lv, i).write(v);
            self.set_word(lv, i, LARGE);
        }
    }

    /// Empties upper slot `i`, which holds a large entry, and hands the value
    /// back.
    ///
    /// # Safety
    /// See above; slot `i` holds [`LARGE`].
    #[inline]
    pub unsafe fn take_large<V>(self, lv: &Lv, i: usize) -> V {
        // SAFETY: contract; the slot is emptied before the value is read out.
        unsafe {
            debug_assert!(self.word(i) == LARGE);
            self.set_word(lv, i, ptr::null_mut());
            self.val::<V>(lv, i).read()
        }
    }
}
