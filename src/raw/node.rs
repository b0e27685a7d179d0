//! The level-independent core: one table in memory, reached through a raw
//! pointer and described by its level's [`Lv`].
//!
//! # How a slot is represented
//!
//! | table | slot | representation |
//! |---|---|---|
//! | upper (level > 0) | empty | the null word |
//! | upper | a child table | the child's address (8-byte aligned, so never 1) |
//! | upper, level holds entries | a large entry, value aside | the word `1`; the value sits at the same index of the table's value array |
//! | upper, level holds entries | a large entry, value inline | tag byte `1`, the value in the word's other bytes (values of up to 7 bytes: [`inline_offset`](super::layout::inline_offset)); no value array |
//! | bottom | empty / a base entry | the slot's bit in `present`, the value at its index of the value array |
//! | bottom, `V` has a niche | empty / a base entry | as above, and the value array holds `Option<V>`: `None` in every empty slot, so a lookup reads presence from the value's own cache line |
//! | bottom, packed (see [`forms`](super::forms)) | empty / a base entry | the slot's bit in `present`; the value at the slot's rank (the occupied slots before it) among the packed values, `Option` cells or not |
//! | level 1, linking a packed bottom table | a child table | the child's address with [`PACKED_LINK`] set (and [`SPARSE_LINK`], sparse) |
//! | bottom, sparse (see [`sparse`](super::sparse)) | empty / a base entry | the slot's index among the sorted indices, present in the present mask; the value at its rank among the present ones |
//! | level 1, links form (see [`links`](super::links)) | empty / a child table | as a sparse bottom table, the child's link word (with its own tags) for the value; no large entry |
//! | level 2, linking a links table | a child table | the child's address with [`PACKED_LINK`] and [`SPARSE_LINK`] set |
//!
//! A slot's tag byte ([`TAG_BYTE`], the word's low-order byte) is
//! initialized in every slot, so [`Tab::slot`] reads it first: bit 0 set
//! means a large entry. Only a slot whose tag says otherwise is read as a
//! whole word (a null or a link), because an inline value's padding bytes
//! may be uninitialized.
//!
//! Whether `V` has a niche is `size_of::<Option<V>>() == size_of::<V>()`
//! ([`niche`]): then `None` is a bit pattern no `V` has, `Some(v)` is `v`'s
//! bytes at offset 0, and writing a `V` into an empty cell makes it `Some`.
//!
//! # Invariants
//! For every table reachable from a [`RawTable`](super::RawTable):
//! - it was allocated by its level's store with its level's layout, and its
//!   header was zeroed before first use;
//! - bit `i` of the occupancy map is set exactly when slot `i` is not empty
//!   (upper) or value `i` is initialized (bottom), and `len` counts them;
//! - with a niche, every value cell of a direct bottom table is
//!   initialized, to `None` exactly when its bit is clear;
//! - a packed bottom table's capacity is a class's, at least its count; its
//!   first `len` packed values are initialized, in slot order, and each
//!   rank word counts the bits before its word; the level-1 word that links
//!   a bottom table has [`PACKED_LINK`] set exactly when the table is
//!   packed, and [`SPARSE_LINK`] exactly when it is sparse; the level-2
//!   word that links a level-1 table has both exactly when it is in the
//!   links form (no other link has them);
//! - an upper slot is large (tag bit set) only at a level that holds
//!   entries, and then value `i` is initialized; a child link points to a
//!   live table of the level below that no other slot links to;
//! - no linked child table is empty once an operation has returned;
//! - no bit past the fan-out is set.
//!
//! Links are valid by construction: the walks below never bounds-check a
//! slot index, because every index is `(addr >> shift) & mask` or comes from
//! a bitmap of `fanout` bits.

use core::ptr::{self, NonNull};

use core::mem::MaybeUninit;

use super::bitmap;
use super::layout::{Lv, TAG_BYTE};

/// The word of an upper slot that holds a large entry (its tag bit alone;
/// an inline value is written into the word's other bytes afterwards).
pub const LARGE: *mut u8 = ptr::without_provenance_mut(1);

/// The bit of a level-1 slot word that says the bottom table it links is
/// packed, so that a lookup knows the form without reading the table's
/// header (a table's address is 8-byte aligned: bits 0 to 2 are free).
pub const PACKED_LINK: usize = 2;

/// The bit of a level-1 slot word that says the packed bottom table it
/// links is sparse (set with [`PACKED_LINK`]), so that a lookup goes
/// straight to the index search.
pub const SPARSE_LINK: usize = 4;

/// Whether `V` has a niche, so that bottom tables hold `Option<V>` cells.
#[inline(always)]
pub const fn niche<V>() -> bool {
    size_of::<Option<V>>() == size_of::<V>()
}

/// Writes `None` into the `Option<V>` cell at `p`. Out of line in
/// unoptimised builds, so that the frames of the callers that skip it (`V`
/// without a niche) hold no `Option<V>` there, where a skipped branch keeps
/// its temporaries; inline when optimised.
///
/// # Safety
/// `p` is writable for one `Option<V>` and holds nothing to drop.
#[cfg_attr(debug_assertions, inline(never))]
#[cfg_attr(not(debug_assertions), inline(always))]
unsafe fn write_none<V>(p: *mut V) {
    // SAFETY: caller.
    unsafe { p.cast::<Option<V>>().write(None) }
}

/// Room on the stack for a large value made before its slot says so, when
/// the value lives inline (at most one word); see [`Tab::stage`].
pub type Stage = MaybeUninit<usize>;

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
    /// The slot a word that is null or a link (tag bits and all) makes.
    #[inline(always)]
    pub fn of_link(w: *mut u8) -> Slot {
        match NonNull::new(w.map_addr(|a| a & !(PACKED_LINK | SPARSE_LINK))) {
            None => Slot::Empty,
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

    /// The word a parent slot holds to link this table: its address, and
    /// (a packed bottom table) [`PACKED_LINK`].
    ///
    /// # Safety
    /// See above; `lv` is the level of this table.
    #[inline]
    pub unsafe fn link(self, lv: &Lv) -> *mut u8 {
        // SAFETY: contract.
        let tag = unsafe {
            match (self.packed(lv), self.sparse(lv)) {
                (true, true) => PACKED_LINK | SPARSE_LINK,
                (true, false) => PACKED_LINK,
                _ => 0,
            }
        };
        self.ptr().map_addr(|a| a | tag)
    }

    /// The value cell of slot `i` of a bottom table known to be direct.
    ///
    /// # Safety
    /// See above; `lv.level == 0` and the table is direct.
    #[inline(always)]
    pub unsafe fn direct_val<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract: a direct table has a cell per slot.
        unsafe { self.ptr().add(lv.off_vals + i * lv.stride).cast::<V>() }
    }

    /// Whether slot `i` of a bottom table known to be direct holds a value
    /// (read from the cell when `V` has a niche).
    ///
    /// # Safety
    /// As for [`direct_val`](Self::direct_val).
    #[inline(always)]
    pub unsafe fn direct_holds<V>(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract; a direct table's niche cells are initialized.
        unsafe {
            if niche::<V>() {
                (*self.direct_val::<V>(lv, i).cast::<Option<V>>()).is_some()
            } else {
                bitmap::get(self.map(lv), i)
            }
        }
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

    /// The place of upper slot `i`'s word in the direct form.
    #[inline(always)]
    fn word_ptr(self, lv: &Lv, i: usize) -> *mut *mut u8 {
        self.ptr().wrapping_add(lv.off_slots).cast::<*mut u8>().wrapping_add(i)
    }

    /// The word of upper slot `i`, read whole: the fast decode of a level
    /// whose large values are not inline (so every byte is initialized).
    ///
    /// # Safety
    /// See above; `lv.level > 0`; `!lv.inline`, or slot `i` is not large;
    /// the table is direct.
    #[inline(always)]
    pub unsafe fn word(self, lv: &Lv, i: usize) -> *mut u8 {
        // SAFETY: slot `i` is inside the table (contract), and its bytes
        // are initialized (no inline value in it).
        unsafe { *self.word_ptr(lv, i) }
    }

    /// The whole word of upper slot `i`, which links a table: from its
    /// place in the direct form, or its link cell in the links form.
    ///
    /// # Safety
    /// See above; `lv.level > 0`; slot `i` links a table.
    #[inline]
    pub unsafe fn link_word(self, lv: &Lv, i: usize) -> *mut u8 {
        // SAFETY: contract; a link is a whole word.
        unsafe {
            match self.sparse(lv) {
                true => *self.sparse_get::<*mut u8>(lv, i).expect("a linked slot"),
                false => self.word(lv, i),
            }
        }
    }

    /// What upper slot `i` holds: its tag byte first, then (not large) the
    /// whole word; in the links form, the link at the slot's index, if any.
    ///
    /// # Safety
    /// See above; `lv.level > 0`.
    #[inline(always)]
    pub unsafe fn slot(self, lv: &Lv, i: usize) -> Slot {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.links_slot(lv, i);
            }
            self.direct_slot(lv, i)
        }
    }

    /// [`slot`](Self::slot) in a links table: out of line, so that the
    /// walks that inline `slot` keep small frames (unoptimised builds on
    /// small stacks).
    ///
    /// # Safety
    /// See above; the table is a links table.
    #[inline(never)]
    pub unsafe fn links_slot(self, lv: &Lv, i: usize) -> Slot {
        // SAFETY: contract; a links table holds only links.
        unsafe {
            match self.sparse_get::<*mut u8>(lv, i) {
                Some(p) => Slot::of_link(*p),
                None => Slot::Empty,
            }
        }
    }

    /// [`slot`](Self::slot) in a table known to be direct.
    ///
    /// # Safety
    /// See above; `lv.level > 0`; the table is direct.
    #[inline(always)]
    pub unsafe fn direct_slot(self, lv: &Lv, i: usize) -> Slot {
        // SAFETY: slot `i` is inside the table (contract); its tag byte is
        // initialized in every slot, and a slot that is not large is a whole
        // word (null or a link) with every byte initialized.
        unsafe {
            if *self.word_ptr(lv, i).cast::<u8>().add(TAG_BYTE) & 1 != 0 {
                return Slot::Large;
            }
            Slot::of_link(*self.word_ptr(lv, i))
        }
    }

    /// Writes the word of upper slot `i`, keeping the occupancy map and
    /// count right. Does not touch values or change marks.
    ///
    /// # Safety
    /// See above; `lv.level > 0`; the caller keeps the value array in step.
    #[inline]
    pub unsafe fn set_word(self, lv: &Lv, i: usize, w: *mut u8) {
        // SAFETY: contract: slot `i`, the map and the count are inside the
        // table. The occupancy bit says whether the slot was empty (its word
        // may hold an inline value, not to be read whole).
        unsafe {
            if self.sparse(lv) {
                return self.links_set(lv, i, w);
            }
            let was = bitmap::get(self.map(lv), i);
            *self.word_ptr(lv, i) = w;
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

    /// The occupancy map (`used` above, `present` at the bottom). A sparse
    /// bottom table has none: read it through [`occ_word`](Self::occ_word)
    /// and the other accessors.
    ///
    /// # Safety
    /// See above; not a sparse table.
    #[inline(always)]
    pub unsafe fn map(self, lv: &Lv) -> *mut u64 {
        // SAFETY: the map is inside the table.
        unsafe { self.ptr().add(lv.off_map).cast() }
    }

    /// The change map; as [`map`](Self::map), none in a sparse table.
    ///
    /// # Safety
    /// See above; not a sparse table.
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
        unsafe {
            if self.sparse(lv) {
                return self.sparse_mark(lv, i);
            }
            bitmap::set(self.dirty(lv), i)
        }
    }

    /// Clears slot `i`'s change mark.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn unmark(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_unmark(lv, i);
            }
            bitmap::clear(self.dirty(lv), i)
        }
    }

    /// Whether slot `i` is marked changed.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn marked(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_marked(lv, i);
            }
            bitmap::get(self.dirty(lv), i)
        }
    }

    /// The first marked slot in `from..=to`.
    ///
    /// # Safety
    /// See above; `to < lv.fanout`.
    #[inline]
    pub unsafe fn next_marked(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_next(lv, from, to, true);
            }
            bitmap::next(self.dirty(lv), from, to)
        }
    }

    /// Word `w` of the occupancy map, in every form.
    ///
    /// # Safety
    /// See above; `w < lv.words`.
    #[inline(always)]
    pub unsafe fn occ_word(self, lv: &Lv, w: usize) -> u64 {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_word(w, false);
            }
            *self.map(lv).add(w)
        }
    }

    /// Word `w` of the change map, in every form.
    ///
    /// # Safety
    /// See above; `w < lv.words`.
    #[inline]
    pub unsafe fn mark_word(self, lv: &Lv, w: usize) -> u64 {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_word(w, true);
            }
            *self.dirty(lv).add(w)
        }
    }

    /// Whether any slot is marked changed.
    ///
    /// # Safety
    /// See above.
    #[inline]
    pub unsafe fn has_marks(self, lv: &Lv) -> bool {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_has_marks();
            }
            bitmap::any(self.dirty(lv), lv.words)
        }
    }

    /// Marks every slot changed.
    ///
    /// # Safety
    /// See above; not a sparse table (whose indices cannot name every
    /// slot).
    pub unsafe fn mark_all(self, lv: &Lv) {
        // SAFETY: contract.
        unsafe {
            debug_assert!(!self.sparse(lv), "mem-table: every slot marked in a sparse table");
            bitmap::set_first(self.dirty(lv), lv.words, lv.fanout)
        }
    }

    /// Whether slot `i` is occupied.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn occupied(self, lv: &Lv, i: usize) -> bool {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_occupied(lv, i);
            }
            bitmap::get(self.map(lv), i)
        }
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

    /// The place of value `i`: in the value array, inside slot `i`'s word
    /// (`lv.inline`), or (a packed bottom table) at the slot's rank among
    /// the occupied slots; for an empty slot of a packed table, where
    /// [`open`](Self::open) would make room for it.
    ///
    /// # Safety
    /// See above; the level holds values (`lv.level == 0 || lv.large`).
    #[inline(always)]
    pub unsafe fn val<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: value `i` is inside the table; a packed table's rank is
        // below its capacity for an occupied slot, at most it otherwise.
        unsafe {
            // Values are packed only at the bottom (a links table holds
            // no value): upper levels go straight to the value array.
            if !lv.has_links() && self.packed(lv) {
                return self.packed_val(lv, i);
            }
            self.ptr().add(lv.off_vals + i * lv.stride).cast::<V>()
        }
    }

    /// [`val`](Self::val) in a packed bottom table. Not forced inline: the
    /// rare path stays out of the frames of the walks that inline `val`
    /// (which matters for unoptimised builds on small stacks).
    ///
    /// # Safety
    /// See above; the table is packed.
    #[inline]
    pub unsafe fn packed_val<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract; the rank is at most the count, below capacity
        // for an occupied slot.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_val(lv, i);
            }
            self.ptr().add(lv.off_pvals + self.rank(lv, i) * lv.stride).cast::<V>()
        }
    }

    /// The capacity of a packed bottom table; zero for the direct form (and
    /// at every level without packed forms).
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn cap(self, lv: &Lv) -> usize {
        if !lv.packs {
            return 0;
        }
        // SAFETY: the capacity is inside a bottom table's header.
        unsafe { *self.ptr().add(lv.off_cap).cast::<u16>() as usize }
    }

    /// Whether this bottom table has a packed form.
    ///
    /// # Safety
    /// See above.
    #[inline(always)]
    pub unsafe fn packed(self, lv: &Lv) -> bool {
        // SAFETY: contract.
        unsafe { self.cap(lv) != 0 }
    }

    /// The occupied slots before slot `i` of a packed bottom table.
    ///
    /// # Safety
    /// See above; the table is packed.
    #[inline]
    unsafe fn rank(self, lv: &Lv, i: usize) -> usize {
        let (w, b) = (i / 64, i % 64);
        // SAFETY: word `w` and its rank are inside the table.
        unsafe {
            let below = *self.ptr().add(lv.off_ranks).cast::<u16>().add(w) as usize;
            below + (*self.map(lv).add(w) & ((1u64 << b) - 1)).count_ones() as usize
        }
    }

    /// Makes the memory at `self` an empty packed bottom table of class `k`.
    ///
    /// # Safety
    /// `self` points to `lv.pack_size(k)` writable bytes aligned to
    /// `lv.align`; `k < lv.classes`.
    #[inline]
    pub unsafe fn init_packed(self, lv: &Lv, k: usize) {
        // SAFETY: the header and ranks (sparse: indices) lie inside the
        // table (caller).
        unsafe {
            if k < lv.sparse {
                return self.sparse_init(lv, lv.pack_cap(k));
            }
            ptr::write_bytes(self.ptr(), 0, lv.off_pvals);
            *self.ptr().add(lv.off_cap).cast::<u16>() = lv.pack_cap(k) as u16;
        }
    }

    /// Whether an empty slot of this bottom table can be filled without
    /// changing its form: always in the direct form, below capacity packed,
    /// with an index to spare sparse.
    ///
    /// # Safety
    /// See above; `lv.level == 0`.
    #[inline(always)]
    pub unsafe fn has_room(self, lv: &Lv) -> bool {
        // SAFETY: contract.
        unsafe { self.cap(lv) == 0 || self.used(lv) < self.cap(lv) }
    }

    /// What a packed bottom table's capacity bounds: its count, or (sparse)
    /// its indices in use.
    ///
    /// # Safety
    /// See above; `lv.level == 0`.
    #[inline(always)]
    pub unsafe fn used(self, lv: &Lv) -> usize {
        // SAFETY: contract.
        unsafe { if self.sparse(lv) { self.sparse_used() } else { self.len(lv) } }
    }

    /// Sets the occupancy bit of the empty bottom slot `i` and counts it
    /// (and, packed, its rank in the words after it).
    ///
    /// # Safety
    /// See above; `lv.level == 0`; slot `i` is empty; packed, its value was
    /// just written where [`open`](Self::open) made room.
    #[inline(always)]
    pub unsafe fn occupy(self, lv: &Lv, i: usize) {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_occupy(lv, i);
            }
            bitmap::set(self.map(lv), i);
            *self.len_ptr(lv) += 1;
            if self.packed(lv) {
                self.add_rank(lv, i, 1);
            }
        }
    }

    /// Adds `d` (wrapping: `usize::MAX` takes one off) to the rank words
    /// after slot `i`'s word, in a packed bottom table.
    ///
    /// # Safety
    /// See above; the table is packed.
    #[inline]
    unsafe fn add_rank(self, lv: &Lv, i: usize, d: usize) {
        // SAFETY: the rank words are inside the table.
        unsafe {
            let ranks = self.ptr().add(lv.off_ranks).cast::<u16>();
            for w in i / 64 + 1..lv.words {
                *ranks.add(w) = (*ranks.add(w)).wrapping_add(d as u16);
            }
        }
    }

    /// Closes the gap that slot `i`'s value, moved out, leaves among the
    /// packed values, and takes it off the rank words after its word.
    ///
    /// # Safety
    /// See above; the table is packed and slot `i` still occupied.
    #[inline]
    unsafe fn close_gap<V>(self, lv: &Lv, i: usize) {
        // SAFETY: contract: the values after the gap are initialized.
        unsafe {
            let r = self.rank(lv, i);
            let p = self.ptr().add(lv.off_pvals).cast::<V>();
            ptr::copy(p.add(r + 1), p.add(r), self.len(lv) - r - 1);
            self.add_rank(lv, i, usize::MAX);
        }
    }

    /// Clears the occupancy bit of the occupied bottom slot `i`, whose value
    /// was moved out, and (packed) closes the gap it leaves.
    ///
    /// # Safety
    /// See above; `lv.level == 0`; slot `i` is occupied and its value gone.
    #[inline(always)]
    unsafe fn unoccupy<V>(self, lv: &Lv, i: usize) {
        // SAFETY: contract; packed, the values after the gap move down one.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_unoccupy::<V>(lv, i);
            }
            if self.packed(lv) {
                self.close_gap::<V>(lv, i);
            } else {
                self.vacate::<V>(lv, i);
            }
            bitmap::clear(self.map(lv), i);
            *self.len_ptr(lv) -= 1;
        }
    }

    /// The place for a new value in the empty bottom slot `i`: packed, the
    /// values from its rank on move up one to make room (undone by
    /// [`close`](Self::close) if the value is not written after all).
    ///
    /// # Safety
    /// See above; `lv.level == 0`; slot `i` is empty and
    /// [`has_room`](Self::has_room).
    #[inline(always)]
    pub unsafe fn open<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract: below capacity, so the last value moves to a
        // place inside the table.
        unsafe {
            if self.packed(lv) {
                return self.make_room(lv, i);
            }
            self.val::<V>(lv, i)
        }
    }

    /// [`open`](Self::open) in a packed bottom table.
    ///
    /// # Safety
    /// As for [`open`](Self::open); the table is packed.
    #[inline]
    unsafe fn make_room<V>(self, lv: &Lv, i: usize) -> *mut V {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_open(lv, i);
            }
            debug_assert!(self.len(lv) < self.cap(lv));
            let p = self.packed_val::<V>(lv, i);
            let end = self.ptr().add(lv.off_pvals).cast::<V>().add(self.len(lv));
            // An append (ascending inserts) moves nothing: no call.
            let after = end.offset_from(p) as usize;
            if after != 0 {
                ptr::copy(p, p.add(1), after);
            }
            p
        }
    }

    /// Undoes [`open`](Self::open) for slot `i`, whose value was not written.
    ///
    /// # Safety
    /// See above; `open(lv, i)` was the last change to the table.
    #[inline]
    pub unsafe fn close<V>(self, lv: &Lv, i: usize) {
        // SAFETY: contract: the values after the gap are those `open` moved.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_close::<V>(lv, i);
            }
            if self.packed(lv) {
                let p = self.val::<V>(lv, i);
                let end = self.ptr().add(lv.off_pvals).cast::<V>().add(self.len(lv));
                ptr::copy(p.add(1), p, end.offset_from(p) as usize);
            }
        }
    }

    /// Makes every value cell of the fresh bottom table `self` empty, when
    /// `V` has a niche (else there is nothing to do: cells are
    /// uninitialized until written).
    ///
    /// # Safety
    /// See above; `lv.level == 0`; no cell holds a value that needs dropping.
    #[inline]
    pub unsafe fn init_cells<V>(self, lv: &Lv) {
        if niche::<V>() {
            for i in 0..lv.fanout {
                // SAFETY: cell `i` is inside the table.
                unsafe { write_none::<V>(self.val::<V>(lv, i)) };
            }
        }
    }

    /// Marks bottom cell `i`, whose value was just moved out, empty.
    ///
    /// # Safety
    /// See above; `lv.level == 0`.
    #[inline(always)]
    unsafe fn vacate<V>(self, lv: &Lv, i: usize) {
        if niche::<V>() {
            // SAFETY: cell `i` is inside the table; its value is gone.
            unsafe { write_none::<V>(self.val::<V>(lv, i)) };
        }
    }

    /// The first occupied slot in `from..=to`.
    ///
    /// # Safety
    /// See above; `to < lv.fanout`.
    #[inline(always)]
    pub unsafe fn next_occupied(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_next(lv, from, to, false);
            }
            bitmap::next(self.map(lv), from, to)
        }
    }

    /// The last occupied slot in `from..=to`.
    ///
    /// # Safety
    /// As for [`next_occupied`](Self::next_occupied).
    #[inline(always)]
    pub unsafe fn prev_occupied(self, lv: &Lv, from: usize, to: usize) -> Option<usize> {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_prev(lv, from, to);
            }
            bitmap::prev(self.map(lv), from, to)
        }
    }

    // Bottom tables.

    /// Puts `v` in bottom slot `i`, handing back the value it replaces.
    ///
    /// # Safety
    /// See above; `lv.level == 0`; slot `i` is occupied or the table
    /// [`has_room`](Self::has_room).
    #[inline]
    pub unsafe fn put<V>(self, lv: &Lv, i: usize, v: V) -> Option<V> {
        // SAFETY: contract; the value is initialized exactly when the bit is set.
        unsafe {
            if self.occupied(lv, i) {
                Some(ptr::replace(self.val::<V>(lv, i), v))
            } else {
                self.open::<V>(lv, i).write(v);
                self.occupy(lv, i);
                None
            }
        }
    }

    /// Moves the value at `src` into bottom slot `i` by a byte copy (so that
    /// a large value is not moved through the stack); the value it replaces
    /// is moved to `old`, and the result says whether there was one.
    ///
    /// # Safety
    /// See above; `lv.level == 0`; slot `i` is occupied or the table
    /// [`has_room`](Self::has_room); `src` points to an initialized value,
    /// which the caller must forget; `old` is writable.
    #[inline]
    pub unsafe fn put_from<V>(self, lv: &Lv, i: usize, src: *const V, old: *mut V) -> bool {
        // SAFETY: contract; the value is initialized exactly when the bit is set.
        unsafe {
            if !self.packed(lv) {
                return self.put_direct_from(lv, i, src, old);
            }
            let had = self.occupied(lv, i);
            if had {
                let p = self.val::<V>(lv, i);
                ptr::copy_nonoverlapping(p, old, 1);
                ptr::copy_nonoverlapping(src, p, 1);
            } else {
                ptr::copy_nonoverlapping(src, self.open::<V>(lv, i), 1);
                self.occupy(lv, i);
            }
            had
        }
    }

    /// [`put_from`](Self::put_from) in a bottom table known to be direct:
    /// the form read once, not by each accessor (the hot insert path).
    ///
    /// # Safety
    /// As for [`put_from`](Self::put_from); the table is direct.
    #[inline(always)]
    pub unsafe fn put_direct_from<V>(self, lv: &Lv, i: usize, src: *const V, old: *mut V) -> bool {
        // SAFETY: contract; a direct table has a cell per slot, initialized
        // (as a value) exactly when the slot's bit is set.
        unsafe {
            let p = self.direct_val::<V>(lv, i);
            let had = bitmap::get(self.map(lv), i);
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
        // SAFETY: contract; an empty or large slot is occupied exactly when
        // large; `commit_large` writes the value and the tag.
        unsafe {
            let had = self.occupied(lv, i);
            if had {
                ptr::copy_nonoverlapping(self.val::<V>(lv, i), old, 1);
            }
            let mut stage = Stage::uninit();
            let p = self.stage::<V>(lv, i, &mut stage);
            ptr::copy_nonoverlapping(src, p, 1);
            self.commit_large(lv, i, p);
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
        // SAFETY: contract; the value is read out and the slot emptied with
        // no other code in between, before the value is handed back.
        unsafe {
            if !self.occupied(lv, i) {
                return None;
            }
            let v = self.val::<V>(lv, i).read();
            self.unoccupy::<V>(lv, i);
            Some(v)
        }
    }

    /// Empties every bottom slot without dropping a value: for a table whose
    /// values were dropped in place or moved out already.
    ///
    /// # Safety
    /// See above; `lv.level == 0`; no occupied value needs dropping.
    pub unsafe fn forget_values<V>(self, lv: &Lv) {
        // SAFETY: contract.
        unsafe {
            if self.sparse(lv) {
                return self.sparse_forget(lv);
            }
            if self.packed(lv) {
                ptr::write_bytes(self.ptr().add(lv.off_ranks), 0, lv.words * 2);
            } else if niche::<V>() {
                let mut from = 0;
                while let Some(i) = self.next_occupied(lv, from, lv.fanout - 1) {
                    from = i + 1;
                    self.vacate::<V>(lv, i);
                }
            }
            ptr::write_bytes(self.map(lv), 0, lv.words);
            *self.len_ptr(lv) = 0;
        }
    }

    // Large entries in upper tables.

    /// Puts the large entry `v` in the empty upper slot `i`.
    ///
    /// # Safety
    /// See above; the level holds entries and slot `i` is empty.
    #[inline]
    pub unsafe fn put_large<V>(self, lv: &Lv, i: usize, v: V) {
        // SAFETY: contract; `commit_large` writes the value and the tag.
        unsafe {
            debug_assert!(self.slot(lv, i) == Slot::Empty);
            let mut stage = Stage::uninit();
            let p = self.stage::<V>(lv, i, &mut stage);
            p.write(v);
            self.commit_large(lv, i, p);
        }
    }

    /// Empties upper slot `i`, which holds a large entry, and hands the value
    /// back.
    ///
    /// # Safety
    /// See above; slot `i` is large.
    #[inline]
    pub unsafe fn take_large<V>(self, lv: &Lv, i: usize) -> V {
        // SAFETY: contract; the value is read out before the slot is emptied
        // (an inline value lives in the word), and nothing runs in between.
        unsafe {
            debug_assert!(self.slot(lv, i) == Slot::Large);
            let v = self.val::<V>(lv, i).read();
            self.set_word(lv, i, ptr::null_mut());
            v
        }
    }

    /// Where to make a new large value for upper slot `i` before the slot
    /// says so: its place in the value array, or (inline) `stage`, since the
    /// slot's word still holds what it held. [`commit_large`] then makes
    /// the slot that entry.
    ///
    /// [`commit_large`]: Self::commit_large
    ///
    /// # Safety
    /// See above; the level holds entries.
    #[inline(always)]
    pub unsafe fn stage<V>(self, lv: &Lv, i: usize, stage: &mut Stage) -> *mut V {
        if lv.inline {
            debug_assert!(size_of::<V>() <= size_of::<Stage>() && align_of::<V>() <= align_of::<Stage>());
            stage.as_mut_ptr().cast()
        } else {
            // SAFETY: contract.
            unsafe { self.val::<V>(lv, i) }
        }
    }

    /// Makes upper slot `i` the large entry whose value was made at `p`, a
    /// place [`stage`](Self::stage) gave. The slot's old content (empty, a
    /// large entry whose value was moved out, or a link to a table the
    /// caller frees) is overwritten without being read.
    ///
    /// # Safety
    /// See above; the level holds entries; `p` came from `stage` for this
    /// slot and holds an initialized value, which the slot now owns.
    #[inline]
    pub unsafe fn commit_large<V>(self, lv: &Lv, i: usize, p: *mut V) {
        // SAFETY: contract; the tag word is written whole first, then the
        // value into the bytes beside its tag byte.
        unsafe {
            self.set_word(lv, i, LARGE);
            if lv.inline {
                ptr::copy_nonoverlapping(p, self.val::<V>(lv, i), 1);
            }
        }
    }
}
