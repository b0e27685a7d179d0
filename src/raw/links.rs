//! The links form of level-1 tables: in a sparse address space, most
//! level-1 tables link one or two bottom tables, and the direct form spends
//! a whole table (8,328 bytes for `u64` values on x86) on them.
//!
//! # Glossary
//! - **links table**: a level-1 table in the links form: the header,
//!   indices and masks of a sparse bottom table (see [`sparse`](super::sparse)),
//!   with child links for values; classes of 4, 8 and 16 indices
//!   ([`LINKS_CLASSES`]); no large entry.
//! - **widen**: move a links table to a larger class, or to the direct
//!   form, when a slot it cannot take arrives (a link past its capacity, a
//!   large entry).
//! - **narrow**: move a level-1 table that removals left with few children
//!   to a smaller links class.
//!
//! # Forms of a level-1 table
//!
//! | form | layout | holds | bytes (x86, `u64`) |
//! |---|---|---|---|
//! | direct | count and capacity (zero), slot words, maps, large values | links and large entries, any number | 8,328 |
//! | links, class 0 / 1 / 2 | count and capacity (4, 8, 16), indices in use, two `u32` masks, sorted `u16` indices, link words | up to 4 / 8 / 16 links, no large entry | 64 / 96 / 176 |
//!
//! ```text
//!  level 2 slot: link | PACKED | SPARSE          level 1, links form (cap 4)
//!  +---------------------------------+           +-----------------------------+ 0
//!  | address of the table    | 1 | 1 | ------->  | len u32 | cap u16 | nk u16  |
//!  +---------------------------------+           | present u32 | marked u32    | 8
//!                                                | 8 index rooms (u16, sorted) | 16
//!                                                | 4 link words (bottom tables,| 32
//!                                                |   tags and all)             |
//!                                                +-----------------------------+ 64
//! ```
//!
//! The direct form starts with the same count and capacity (zero), so
//! [`Tab::sparse`] tells the forms apart from the table alone; its slot
//! words follow at offset 8 ([`Lv::off_slots`](super::layout::Lv::off_slots)).
//!
//! A level-2 slot that links a links table carries [`PACKED_LINK`] and
//! [`SPARSE_LINK`], as a level-1 slot does for a sparse bottom table, so
//! that a lookup takes the links form's path without reading the table's
//! header; every other walk asks the table ([`Tab::sparse`]), whose
//! capacity sits at the same offset in both forms.
//!
//! # Thresholds
//! - A level-1 table made for an insert below it starts in the smallest
//!   links class, unless its slot was marked (every slot of the new table
//!   is then marked, which only the direct form can say) or the insert
//!   is a large entry at level 1. Range inserts, splits and clones make
//!   direct tables, but for a clone of a links table.
//! - It widens when a link would need an index past its capacity (to the
//!   next class that holds it; past 16, to the direct form), or a large
//!   entry comes (direct): [`probe`](RawTable::probe) and the range plan
//!   count the table, so running out of memory leaves the table as it
//!   was. A marked removed slot keeps its index until a report takes the
//!   mark, and counts. `merge` makes the merged value first and allocates
//!   only when the merge happens; `compact` skips a merge if there is no
//!   memory.
//! - A table narrows after a removal below it when its children are at
//!   most half the capacity of the next smaller form (8 for the direct
//!   form, 4 for class 2, 2 for class 1), it holds no large entry, and its
//!   linked and marked slots fit the new class: so one insert and one
//!   remove at a boundary do not move it back and forth. The narrow
//!   allocates beyond every reservation, and keeps the form if that fails.
//!
//! # Costs
//! A lookup through a links table compares the indices a word at a time
//! (8 or 16 of them, as in a sparse bottom table) and reads the link
//! beside them, in the first line or the next two; the direct form's walk
//! pays one test of the level-2 word for it. Widening and narrowing move
//! at most 16 links and their marks. Other walks read a links table
//! through the same accessors as a direct one ([`Tab::slot`],
//! [`Tab::set_word`], [`Tab::occ_word`], the mark accessors), which ask the
//! table its form.
//!
//! [`PACKED_LINK`]: super::node::PACKED_LINK
//! [`SPARSE_LINK`]: super::node::SPARSE_LINK

use super::layout::{Info, LINKS_CLASSES};
use super::node::{Slot, Tab};
use super::{Need, RawTable};
use crate::backend::{Backend, Store};
use crate::geometry::Geometry;

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// Whether level-1 tables take the links form in this table.
    pub const LINKS: bool = B::PACKS && Info::<V, G>::LV[1].has_links();

    /// Whether the live table `t` of level `l` is a links table.
    ///
    /// # Safety
    /// `t` is a live table of level `l`.
    #[inline(always)]
    pub unsafe fn is_links(t: Tab, l: usize) -> bool {
        // SAFETY: caller.
        Self::LINKS && l == 1 && unsafe { t.sparse(Self::lv(1)) }
    }

    /// A new empty links table of class `k`, from memory made available by
    /// a plan for a level-1 table, as [`new_table`](Self::new_table).
    pub fn new_links(&mut self, k: usize) -> Tab {
        let s = &mut self.stores[1];
        s.credit = s.credit.saturating_sub(1);
        let t = Tab(self.links[k].alloc().expect("mem-table: table created without a plan"));
        let lv = Self::lv(1);
        // SAFETY: fresh memory of class `k`'s size and alignment.
        unsafe { t.sparse_init(lv, lv.pack_cap(k)) };
        t
    }

    /// The form the level-1 table `t` moves to before it takes `more` new
    /// links (`large`: a large entry as well): `None` to stay, `Some(None)`
    /// for the direct form, `Some(Some(k))` for links class `k`.
    ///
    /// # Safety
    /// `t` is a live level-1 table.
    #[inline]
    pub unsafe fn links_target(t: Tab, more: usize, large: bool) -> Option<Option<usize>> {
        let lv = Self::lv(1);
        // SAFETY: caller.
        unsafe {
            if !Self::is_links(t, 1) {
                return None;
            }
            if large {
                return Some(None);
            }
            let want = t.used(lv) + more;
            if want <= t.cap(lv) {
                return None;
            }
            Some((0..LINKS_CLASSES).find(|&k| lv.pack_cap(k) >= want))
        }
    }

    /// The tables to add to a plan for putting something in slot `i` of
    /// the level-1 table `t`: one, if `t` is a links table that cannot take
    /// it (`large`: a large entry; else a link) and moves to a larger form.
    ///
    /// # Safety
    /// `t` is a live level-1 table.
    #[inline]
    pub unsafe fn widen_need(t: Tab, i: usize, large: bool) -> usize {
        // SAFETY: caller.
        unsafe {
            let more = !t.occupied(Self::lv(1), i) as usize;
            Self::links_target(t, more, large).is_some() as usize
        }
    }

    /// Moves the level-1 table `t`, linked from slot `pi` of `parent`, to
    /// the form `to` (`None`: direct; `Some(k)`: links class `k`), drawn
    /// from memory a plan made available, and returns it.
    pub fn relink(&mut self, parent: Tab, pi: usize, t: Tab, to: Option<usize>) -> Tab {
        let d = match to {
            Some(k) => self.new_links(k),
            None => self.new_table(1),
        };
        self.move_links(parent, pi, t, d);
        d
    }

    /// Makes the level-1 table `t`, linked from slot `pi` of `parent`,
    /// direct if it is a links table (from memory a plan made available),
    /// and returns the table now linked there.
    pub fn widen(&mut self, parent: Tab, pi: usize, t: Tab) -> Tab {
        // SAFETY: `t` is a live level-1 table (caller).
        if !unsafe { Self::is_links(t, 1) } {
            return t;
        }
        self.relink(parent, pi, t, None)
    }

    /// Moves the level-1 table `t` (linked from slot `pi` of `parent`) to a
    /// larger form if slot `i` cannot take what comes (`large`: a large
    /// entry; else a link), and returns the table now linked there.
    pub fn widen_for(&mut self, parent: Tab, pi: usize, t: Tab, i: usize, large: bool) -> Tab {
        // SAFETY: `t` is a live level-1 table (caller).
        if unsafe { Self::widen_need(t, i, large) } == 0 {
            return t;
        }
        // SAFETY: as above.
        let to =
            unsafe { Self::links_target(t, !t.occupied(Self::lv(1), i) as usize, large) }.expect("planned");
        self.relink(parent, pi, t, to)
    }

    /// Moves the marks and links of level-1 table `c` (linked from slot
    /// `pi` of `parent`) into the empty level-1 table `d`, which has room
    /// for them, links `d` instead and frees `c`. No value code runs.
    pub fn move_links(&mut self, parent: Tab, pi: usize, c: Tab, d: Tab) {
        let lv = Self::lv(1);
        // SAFETY: `c` and `d` are live level-1 tables, `d` empty with room
        // for `c`'s marks and links; `c` holds links only (or is direct and
        // holds no large entry, when `d` is a links table), which move by
        // their words.
        unsafe {
            let mut i = 0;
            while let Some(j) = c.next_marked(lv, i, lv.fanout - 1) {
                i = j + 1;
                d.mark(lv, j);
            }
            let mut i = 0;
            while let Some(j) = c.next_occupied(lv, i, lv.fanout - 1) {
                i = j + 1;
                d.set_word(lv, j, c.link_word(lv, j));
            }
            parent.set_word(Self::lv(2), pi, d.link(lv));
        }
        self.free_table(1, c);
    }

    /// After a removal below the level-1 table `c` (linked from slot `pi`
    /// of `parent`) left it with entries: moves `c` to a smaller form (a
    /// links class) at the threshold in the module docs. Allocates beyond every
    /// reservation; if that fails, keeps the form.
    pub fn narrow(&mut self, parent: Tab, pi: usize, c: Tab) {
        let lv = Self::lv(1);
        let most = lv.sparse_cap();
        // SAFETY: `c` is a live level-1 table.
        let k = unsafe {
            // At most half of the next smaller form's capacity.
            let smaller = match c.cap(lv) {
                0 => most,
                cap => cap / 2,
            };
            if !Self::LINKS || c.len(lv) == 0 || 2 * c.len(lv) > smaller {
                return;
            }
            let want = (2 * c.len(lv)).max(c.known(lv));
            let Some(k) = (0..LINKS_CLASSES).find(|&k| lv.pack_cap(k) >= want) else { return };
            if c.sparse(lv) && lv.pack_cap(k) >= c.cap(lv) {
                return;
            }
            let mut i = 0;
            while let Some(j) = c.next_occupied(lv, i, lv.fanout - 1) {
                i = j + 1;
                if c.slot(lv, j) == Slot::Large {
                    return;
                }
            }
            k
        };
        let Some(d) = Self::alloc_beyond(&mut self.links[k], self.stores[1].credit) else { return };
        // SAFETY: fresh memory of class `k`'s layout.
        unsafe { d.sparse_init(lv, lv.pack_cap(k)) };
        self.move_links(parent, pi, c, d);
    }

    /// A table from `store` beyond the `credit` reserved in it, for a move
    /// to a smaller form that may fail (the form is then kept).
    pub fn alloc_beyond(store: &mut B::Store, credit: usize) -> Option<Tab> {
        store.ensure(credit + 1).ok()?;
        Some(Tab(store.alloc().expect("ensured")))
    }

    /// Makes one level-1 table available for a widen outside an insert's
    /// plan (`merge`, `compact`); on failure, the level that ran out.
    pub fn prepare_widen(&mut self) -> Result<(), u8> {
        let mut need: Need = [0; crate::geometry::MAX_LEVELS];
        need[1] = 1;
        self.prepare(&need)
    }
}
