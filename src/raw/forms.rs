//! Bottom-table forms: a bottom table is *direct* (a value cell per slot)
//! or *packed* (only the values of occupied slots, in slot order), chosen by
//! how many entries it holds and changed as it grows and shrinks. The
//! smallest packed classes are *sparse*: sorted slot indices instead of the
//! slot maps (see [`sparse`](super::sparse)).
//!
//! # Glossary
//! - **direct**: the value of slot `i` sits at index `i` of a `fan-out`-long
//!   value array; the form every bottom table had before packed forms.
//! - **packed, class `k`**: room for `4 << k` values (up to half the
//!   fan-out, and only while smaller than the direct form), stored in slot order;
//!   the value of an occupied slot sits at its **rank**, the number of
//!   occupied slots before it (HAMT/CHAMP's popcount indexing, FreeBSD
//!   pctrie's popmap).
//! - **rank word**: a `u16` per map word, the occupied slots before that
//!   word, so that a rank is one load and one popcount.
//! - **sparse class**: a packed class of at most 16 values whose table
//!   keeps, instead of the two 64-byte maps and the ranks, up to `cap`
//!   sorted `u16` slot indices and two `u32` masks (present, marked); a
//!   removed slot keeps its index, marked, until a report takes the mark.
//!
//! # Layouts (x86, 512 slots, `u64` values)
//!
//! ```text
//!  direct                                 packed, class k
//!  +-----------------------+ 0            +-----------------------+ 0
//!  | present: 512 bits     |              | present: 512 bits     |
//!  | dirty:   512 bits     | 64           | dirty:   512 bits     | 64
//!  | len u32 | cap u16 = 0 | 128          | len u32 | cap = 4<<k  | 128
//!  +-----------------------+ 136          | ranks: 8 x u16        | 136
//!  | value cells: 512 x V  |              +-----------------------+ 152
//!  |  (slot i at i)        |              | values: (4<<k) x V,   |
//!  +-----------------------+ 4,232        |  slot order, len used |
//!                                         +-----------------------+ 152 + 8 (4<<k)
//! ```
//!
//! The header up to `cap` is the same in both forms, so the occupancy and
//! change maps, the count, the cursor's walks and change reports read a
//! bottom table the same way whatever its form; only where a value sits
//! differs ([`Tab::val`]).
//!
//! | form | bytes, x86 `u64` | holds | get | insert of a new slot | remove | iteration step |
//! |---|---|---|---|---|---|---|
//! | sparse 0..=2 | 64, 96, 176 | 4, 8, 16 indices | the link's two tag bits, a branch-free count of the indices below the slot (four per word), one popcount of a mask | moves at most 15 indices and values up one | moves the values down one; the index stays while marked | the rest of the table in one run over the indices, for `Iter` (the next index and the next value) and `fold`; the cursor's own steps jump to the next word that holds an entry |
//! | packed 3..=6 | 408, 664, 1,176, 2,200 | 32 to 256 | the link's tag bit, a rank word and one popcount | moves the values after it up one (at most 255; growth stops at 128, then goes direct) and bumps the rank words after its word | moves the values after it down one | a bit scan; the values are read in order (one rank per map word) |
//! | direct | 4,232 | 0 to 512 | one load (two without a niche) | one write | one write | a bit scan; the value at the bit's offset |
//!
//! A move between forms copies the maps and count, and the values in one
//! pass (one block copy between two packed forms): O(entries) bytes, no
//! rank per entry. A move from or to a sparse form (at most 16 entries one
//! way) goes through the accessors: the marks first, then the values.
//!
//! # Thresholds
//! A bottom table made for a single insert starts packed, class 0. An insert
//! into a full packed table moves it to the next class, up to the class of
//! a quarter of the fan-out (128 values on x86), and from there to the
//! direct form: the class of half the fan-out (256) is reached by shrinking
//! only, since an insert into a packed table moves the values after its
//! slot, and those moves, in memory a random fill leaves cold, made dense
//! random inserts on `Heap` about twice as slow as into direct tables
//! while growth went through it (1.6 x now; measured in the compare
//! report's dense section against the code before packed forms). Or an
//! insert moves a full table straight to the direct
//! form, once it holds an eighth of the fan-out (64 entries on x86) in no
//! more than four thirds as many slots, from its first occupied slot to its
//! last: a dense run filling up (ascending inserts, a region mapped page
//! by page), which would otherwise move through every larger class. A remove that leaves
//! `n` entries moves the table to the smallest form that holds `2n`, once
//! `n` is at most half the next smaller form's capacity: the hysteresis
//! that keeps an insert-remove pair at a boundary from moving it back and
//! forth. The walks that remove many entries (`retain`, range removes,
//! drains, `extract_if`, pops) apply the same rule to each bottom table
//! when they are done with it ([`RawTable::settle_child`]), in one move
//! however many entries went. A sparse form needs an index for every entry
//! and every marked slot, so a move to one waits until the table's marks
//! fit ([`Tab::known`]): removes mark their slots, so a table that lost
//! most of its entries keeps a form with maps until a report is committed.
//! The commit itself moves nothing, since the regions the report yielded
//! borrow values for as long as the table is borrowed; the table moves at
//! its next remove, or when [`shrink_to_fit`](RawTable::shrink_to_fit)
//! applies the rule to every bottom table. A table made where every
//! slot must be marked (the region of a removed table, not yet reported)
//! takes the smallest form with maps instead of a sparse one. Tables made full by a split, or filled by a
//! range insert, are direct (a range insert into a packed table first moves
//! it to a form that holds the whole range).
//!
//! # Why a representation, not a backend
//! Every backend stores tables; the form is what a table is. So the forms
//! are in the raw layer, for every backend whose stores can hold tables of
//! several sizes: `Heap` and `Arena` (a store per packed class beside the
//! level's store). `Pool` keeps direct tables only: its promise is a fixed
//! number of tables per level, sized when the table is built, and packed
//! forms would make how many tables of which size a workload needs
//! unpredictable.
//!
//! # Allocation
//! Moves to a larger form draw from memory that the operation's plan
//! prepared (a vacant insert into a full packed table needs one bottom
//! table), so running out leaves the table as it was. A reservation of
//! `n` bottom tables makes `n` available in every bottom store, since a
//! reserved insert may need any form. A move to a smaller form is an
//! optimisation: it allocates beyond the reservations, and if that fails
//! the table stays as it is.
//!
//! Upper tables are always direct, and chains of single-child upper tables
//! are not compressed yet.

use core::ptr;

use super::RawTable;
use super::layout::{Info, Lv};
use super::node::Tab;
use crate::backend::{Backend, Store};
use crate::geometry::Geometry;
use alloc::format;
use alloc::string::String;

/// The form after a full table of form `f` (`None`: direct) takes one more
/// entry: the next class, or direct after the largest class that growth
/// enters, the largest holding at most a quarter of the fan-out. A larger
/// class (half the fan-out, on x86 256 values) is reached by shrinking
/// only: an insert into a packed table moves the values after its slot,
/// and those moves, in memory a random fill leaves cold, made dense random
/// inserts twice as slow as into direct tables when growth went through
/// it.
fn next_form(lv: &Lv, f: Option<usize>) -> Option<usize> {
    match f {
        Some(k) if k + 1 < lv.classes && lv.pack_cap(k + 1) <= lv.fanout / 4 => Some(k + 1),
        _ => None,
    }
}

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// The form the full bottom table `c` moves to for one more entry: the
    /// next class ([`next_form`]), or straight to direct once it holds an
    /// eighth of the fan-out packed into no more than four thirds as many
    /// slots (a dense run filling up, such as ascending inserts, which
    /// would otherwise move through every larger class).
    ///
    /// # Safety
    /// `c` is a live, full, packed bottom table.
    pub unsafe fn grown(c: Tab) -> Option<usize> {
        let lv = Self::lv(0);
        // SAFETY: caller; a full table has an occupied slot.
        unsafe {
            let n = c.len(lv);
            if n >= lv.fanout / 8 {
                let first = c.next_occupied(lv, 0, lv.fanout - 1).unwrap_or(0);
                let last = c.prev_occupied(lv, 0, lv.fanout - 1).unwrap_or(0);
                if 3 * (last - first + 1) <= 4 * n {
                    return None;
                }
            }
            next_form(lv, Self::form(c))
        }
    }

    /// Whether bottom tables take packed forms in this table.
    pub const PACK: bool = B::PACKS && Info::<V, G>::LV[0].classes > 0;

    /// The form of bottom table `t`: its packed class, or `None` (direct).
    ///
    /// # Safety
    /// `t` is a live bottom table.
    #[inline]
    pub unsafe fn form(t: Tab) -> Option<usize> {
        let lv = Self::lv(0);
        // SAFETY: caller.
        let cap = unsafe { t.cap(lv) };
        (cap != 0).then(|| lv.class_of(cap))
    }

    /// A new empty packed bottom table of class `k`, from memory made
    /// available by a plan, as [`new_table`](Self::new_table).
    pub fn new_packed(&mut self, k: usize) -> Tab {
        let s = &mut self.stores[0];
        s.credit = s.credit.saturating_sub(1);
        let t = Tab(self.packs[k].alloc().expect("mem-table: table created without a plan"));
        // SAFETY: fresh memory of class `k`'s layout.
        unsafe { t.init_packed(Self::lv(0), k) };
        t
    }

    /// Moves the bottom table `c`, linked from slot `pi` of the level-1
    /// table `parent`, into a new table of form `to` (drawn from memory a
    /// plan made available), and returns it. The move runs no value code.
    pub fn reform(&mut self, parent: Tab, pi: usize, c: Tab, to: Option<usize>) -> Tab {
        let d = match to {
            Some(k) => self.new_packed(k),
            None => self.new_table(0),
        };
        self.move_into(parent, pi, c, d);
        d
    }

    /// Moves the values, marks and count of bottom table `c` (linked from
    /// slot `pi` of `parent`) into the empty bottom table `d`, which must
    /// have room for them, links `d` instead and frees `c`.
    ///
    /// A bulk move: the maps are copied word by word, and the values in one
    /// pass in slot order (one copy of the whole run between two packed
    /// forms), so that a table growing through every class costs a few
    /// bytes copied per entry, not a rank and a shift per entry.
    fn move_into(&mut self, parent: Tab, pi: usize, c: Tab, d: Tab) {
        let lv = Self::lv(0);
        // SAFETY: `c` and `d` are live bottom tables, `d` empty with room
        // for `c`'s entries (so every rank written is below its capacity);
        // each value is moved by a byte copy to the place its slot and rank
        // give in `d`'s form, and `c` is freed without its values being
        // dropped.
        unsafe {
            let n = c.len(lv);
            debug_assert!(d.len(lv) == 0 && (d.cap(lv) == 0 || d.cap(lv) >= n));
            if c.sparse(lv) || d.sparse(lv) {
                // At most a sparse capacity of entries one way: through the
                // accessors, the marks first (a sparse `d` gives each its
                // index), then the values in slot order.
                let mut i = 0;
                while let Some(j) = c.next_marked(lv, i, lv.fanout - 1) {
                    i = j + 1;
                    d.mark(lv, j);
                }
                let mut i = 0;
                while let Some(j) = c.next_occupied(lv, i, lv.fanout - 1) {
                    i = j + 1;
                    ptr::copy_nonoverlapping(c.val::<V>(lv, j), d.open::<V>(lv, j), 1);
                    d.occupy(lv, j);
                }
                parent.set_word(Self::lv(1), pi, d.link(lv));
                self.free_table(0, c);
                return;
            }
            ptr::copy_nonoverlapping(c.map(lv), d.map(lv), lv.words);
            ptr::copy_nonoverlapping(c.dirty(lv), d.dirty(lv), lv.words);
            *d.len_ptr(lv) = n as u32;
            let (from_packed, to_packed) = (c.packed(lv), d.packed(lv));
            let packed_vals = |t: Tab| t.ptr().add(lv.off_pvals).cast::<V>();
            if from_packed && to_packed {
                ptr::copy_nonoverlapping(c.ptr().add(lv.off_ranks), d.ptr().add(lv.off_ranks), lv.words * 2);
                ptr::copy_nonoverlapping(packed_vals(c), packed_vals(d), n);
            } else {
                let mut r = 0;
                for w in 0..lv.words {
                    let mut bits = *c.map(lv).add(w);
                    while bits != 0 {
                        let j = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        let (src, dst) = match (from_packed, to_packed) {
                            (true, _) => (packed_vals(c).add(r), d.val::<V>(lv, j)),
                            (false, true) => (c.val::<V>(lv, j), packed_vals(d).add(r)),
                            (false, false) => (c.val::<V>(lv, j), d.val::<V>(lv, j)),
                        };
                        ptr::copy_nonoverlapping(src, dst, 1);
                        r += 1;
                    }
                }
                if to_packed {
                    let ranks = d.ptr().add(lv.off_ranks).cast::<u16>();
                    let mut below = 0;
                    for w in 0..lv.words {
                        *ranks.add(w) = below;
                        below += (*d.map(lv).add(w)).count_ones() as u16;
                    }
                }
            }
            parent.set_word(Self::lv(1), pi, d.link(lv));
        }
        self.free_table(0, c);
    }

    /// After a remove left bottom table `c` (linked from slot `pi` of
    /// `parent`) with entries: moves it to a smaller form if it is at most
    /// half as full as the next smaller form holds (see the module docs).
    /// Allocates beyond every reservation; if that fails, keeps the form.
    /// With `sparse_only`, moves the table only to a sparse form: the moves
    /// that marks held back, without undoing a dense run's early move to
    /// the direct form.
    pub fn shrink_bottom(&mut self, parent: Tab, pi: usize, c: Tab, sparse_only: bool) {
        if !Self::PACK {
            return;
        }
        let lv = Self::lv(0);
        // SAFETY: `c` is a live bottom table.
        let (n, f) = unsafe { (c.len(lv), Self::form(c)) };
        let smaller = match f {
            Some(0) => return,
            Some(k) => lv.pack_cap(k - 1),
            None => lv.pack_cap(lv.classes - 1),
        };
        if n == 0 || n > smaller / 2 {
            return;
        }
        let Some(mut k) = lv.form_for(2 * n) else { return };
        if k < lv.sparse {
            // A sparse form needs an index for every entry and every mark.
            // SAFETY: `c` is a live bottom table.
            let known = unsafe { c.known(lv) };
            while k < lv.sparse && lv.pack_cap(k) < known {
                k += 1;
            }
            if f.is_some_and(|f| k >= f) || k >= lv.classes {
                return;
            }
        }
        if sparse_only && k >= lv.sparse {
            return;
        }
        let Some(d) = Self::alloc_beyond(&mut self.packs[k], self.stores[0].credit) else { return };
        // SAFETY: fresh memory of class `k`'s layout.
        unsafe { d.init_packed(lv, k) };
        self.move_into(parent, pi, c, d);
    }

    /// The form a range insert over bottom slots `start..=end` of table `c`
    /// moves it to first, if its form cannot take them all (`None`: keep
    /// it; `Some(None)`: direct).
    pub fn range_form(c: Tab, start: usize, end: usize) -> Option<Option<usize>> {
        let lv = Self::lv(0);
        // SAFETY: `c` is a live bottom table (caller).
        unsafe {
            let cap = c.cap(lv);
            let want = c.used(lv) + (end - start + 1);
            (cap != 0 && want > cap).then(|| lv.form_for(want))
        }
    }

    /// The form of a bottom table made for a range insert over `slots`
    /// slots: the smallest that holds them.
    pub fn fresh_form(slots: usize) -> Option<usize> {
        if Self::PACK { Self::lv(0).form_for(slots) } else { None }
    }

    /// Checks the form of bottom table `t`: a capacity of a class, at
    /// least its count, and right rank words.
    pub fn check_form(t: Tab) -> Result<(), String> {
        let lv = Self::lv(0);
        // SAFETY: `t` is a live bottom table (caller).
        unsafe {
            let cap = t.cap(lv);
            if cap == 0 {
                return Ok(());
            }
            let k = lv.class_of(cap);
            if !Self::PACK || k >= lv.classes || lv.pack_cap(k) != cap {
                return Err(format!("bottom table: capacity {cap} is no packed class"));
            }
            if t.len(lv) > cap {
                return Err(format!("bottom table: {} entries, capacity {cap}", t.len(lv)));
            }
            if t.sparse(lv) {
                return t.sparse_check(lv);
            }
            let ranks = t.ptr().add(lv.off_ranks).cast::<u16>();
            let mut below = 0;
            for w in 0..lv.words {
                if *ranks.add(w) as usize != below {
                    return Err(format!("bottom table: rank word {w} is {}, not {below}", *ranks.add(w)));
                }
                below += (*t.map(lv).add(w)).count_ones() as usize;
            }
            Ok(())
        }
    }

    /// The stores of packed bottom tables, one per class: for the stats.
    pub fn pack_stores(&self) -> impl Iterator<Item = &B::Store> {
        self.packs.iter()
    }
}
