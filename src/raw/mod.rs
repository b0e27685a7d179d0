//! The private raw layer: tables in memory, the walks over them, and the
//! stores they live in.
//!
//! | module | holds |
//! |---|---|
//! | [`layout`] | where each field of a table sits, per level, as constants |
//! | [`bitmap`] | one bit per slot, through raw pointers |
//! | [`node`] | the level-independent core: one table behind a pointer ([`Tab`]), and how a slot or value cell holds what it holds (the slot-representation table) |
//! | this module | [`RawTable`]: the root, the stores, lookups, insert, remove, clear, clone, checks |
//! | [`cursor`] | the one walk engine: ordered traversal both ways, change maps, and the table walk under `compact` |
//! | [`ranges`] | split, merge, the range walker (plan and apply) and compact |
//! | [`marks`] | change reports and `retain` |
//! | [`forms`], [`sparse`] | the packed and sparse forms of bottom tables |
//! | [`links`] | the links form of level-1 tables: a few child links in one to three lines |
//!
//! Everything that is not generic over the level lives in [`node`] and
//! [`bitmap`]; per-level facts are the constants of [`layout::Info`], which
//! the compiler folds into every walk (a lookup is a straight run of shifts,
//! masks and one load per level).

pub mod bitmap;
pub mod cursor;
pub mod forms;
pub mod layout;
pub mod links;
pub mod marks;
pub mod node;
pub mod ranges;
pub mod sparse;
pub mod track;

use alloc::format;
use alloc::string::String;
use arrayvec::ArrayVec;
use core::alloc::Layout;
use core::marker::PhantomData;
use core::ptr;

use crate::backend::{Backend, Store};
use crate::geometry::{Geometry, MAX_LEVELS, Shape};
use crate::page::Page;
use cursor::{Cursor, Left};
use layout::{Info, Lv, MAX_CLASSES};
use node::{PACKED_LINK, SPARSE_LINK, Slot, Tab};

/// Everything the table needs from a geometry's chain of levels.
pub trait Tree: Shape {}
impl<T: Shape> Tree for T {}

/// Tables needed per level.
pub type Need = [usize; MAX_LEVELS];

/// What an insert at `(addr, level)` would meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Nothing there: the insert adds an entry (and the tables in its `Need`).
    Vacant,
    /// An entry at exactly that place: the insert replaces it.
    Occupied,
    /// A larger entry covers the place.
    Larger(Page),
    /// Smaller entries lie below the place.
    Smaller,
}

/// One level's store and the tables reserved in it.
pub struct LevelStore<S> {
    pub store: S,
    /// Tables reserved by `reserve_*` calls and not yet drawn.
    pub credit: usize,
}

/// The table proper: the root, the stores and the entry count.
///
/// # Invariants
/// - `root` is a live table of the top level from `stores[TOP]`, and every
///   table reachable from it satisfies the invariants of [`node`];
/// - every table a store has handed out and not taken back is reachable
///   from `root` exactly once (between operations);
/// - `len` is the number of entries reachable;
/// - `stores[l].store.available() >= stores[l].credit`, and every store
///   of `packs` has as many available as `stores[0].credit`: a bottom
///   table reserved may be needed in any form.
pub struct RawTable<V, G: Geometry, B: Backend> {
    pub(crate) root: Tab,
    pub(crate) stores: alloc::boxed::Box<ArrayVec<LevelStore<B::Store>, MAX_LEVELS>>,
    /// The stores of packed bottom tables, one per class (none where the
    /// backend or the layout has no packed forms).
    pub(crate) packs: alloc::boxed::Box<ArrayVec<B::Store, MAX_CLASSES>>,
    /// The stores of level-1 tables in the links form, one per class (none
    /// where the backend or the geometry has none; see [`links`]).
    pub(crate) links: alloc::boxed::Box<ArrayVec<B::Store, { layout::LINKS_CLASSES }>>,
    pub(crate) len: usize,
    pub(crate) backend: B,
    /// Value-aware change tracking, when switched on.
    pub(crate) track: Option<alloc::boxed::Box<track::Track<V>>>,
    /// The table owns its values.
    _owns: PhantomData<V>,
    _g: PhantomData<fn() -> G>,
}

// SAFETY: the table owns its tables and values exclusively, like a `Box`.
unsafe impl<V: Send, G: Geometry, B: Backend> Send for RawTable<V, G, B> {}
// SAFETY: `&RawTable` hands out only `&V`.
unsafe impl<V: Sync, G: Geometry, B: Backend> Sync for RawTable<V, G, B> {}

/// The bottom table a lookup reached, as the word that links it (or the
/// root's address): [`PACKED_LINK`] set when the table is packed.
#[derive(Clone, Copy)]
struct Bottom(*mut u8);

impl Bottom {
    /// The table, and whether it is packed.
    #[inline(always)]
    fn get<V, G: Geometry, B: Backend>(self) -> (Tab, bool) {
        let packed = RawTable::<V, G, B>::PACK && self.0.addr() & PACKED_LINK != 0;
        let p = if packed { self.0.map_addr(|a| a & !(PACKED_LINK | SPARSE_LINK)) } else { self.0 };
        // SAFETY: a table's address, never null.
        (Tab(unsafe { ptr::NonNull::new_unchecked(p) }), packed)
    }

    /// Whether the link says sparse (only if it says packed).
    #[inline(always)]
    fn sparse(self) -> bool {
        self.0.addr() & SPARSE_LINK != 0
    }
}

/// A walk's path: the table and slot taken at each level.
pub type Path = ArrayVec<(Tab, usize), MAX_LEVELS>;

/// The layout of level `l`'s tables, as an allocator layout.
fn alloc_layout(lv: &Lv) -> Layout {
    Layout::from_size_align(lv.size, lv.align).expect("mem-table: table layout")
}

impl<V, G: Geometry, B: Backend> RawTable<V, G, B> {
    /// The top level.
    pub const TOP: usize = G::LEVELS - 1;

    /// The layout of level `l`.
    #[inline(always)]
    pub fn lv(l: usize) -> &'static Lv {
        Info::<V, G>::lv(l)
    }

    /// An empty table whose tables are stored by `backend`.
    pub fn new(backend: B) -> Self {
        #[allow(clippy::let_unit_value)] // evaluates the geometry's compile-time check
        let () = G::VALID;
        let mut stores = alloc::boxed::Box::new(ArrayVec::new());
        for l in 0..G::LEVELS {
            let layout = alloc_layout(Self::lv(l));
            stores.push(LevelStore { store: backend.new_store(l as u8, l == Self::TOP, layout), credit: 0 });
        }
        let top = Self::lv(Self::TOP);
        let Some(p) = stores[Self::TOP].store.alloc() else {
            alloc::alloc::handle_alloc_error(alloc_layout(top))
        };
        let root = Tab(p);
        // SAFETY: fresh memory of the top level's layout.
        unsafe { Self::init_table(root, Self::TOP) };
        let mut packs = alloc::boxed::Box::new(ArrayVec::new());
        if Self::PACK {
            let lv = Self::lv(0);
            for k in 0..lv.classes {
                let layout =
                    Layout::from_size_align(lv.pack_size(k), lv.align).expect("mem-table: table layout");
                packs.push(backend.new_store(0, false, layout));
            }
        }
        let mut links = alloc::boxed::Box::new(ArrayVec::new());
        if Self::LINKS {
            let l1 = Self::lv(1);
            for k in 0..layout::LINKS_CLASSES {
                let layout =
                    Layout::from_size_align(l1.links_bytes(k), l1.align).expect("mem-table: table layout");
                links.push(backend.new_store(1, false, layout));
            }
        }
        RawTable {
            root,
            stores,
            packs,
            links,
            len: 0,
            backend,
            track: None,
            _owns: PhantomData,
            _g: PhantomData,
        }
    }

    // ---- table memory ----------------------------------------------------

    /// Makes `need` tables available, all or nothing in effect (memory made
    /// available for a level that did not fail stays, like a `Vec`'s
    /// capacity). On failure, the level that ran out.
    pub fn prepare(&mut self, need: &Need) -> Result<(), u8> {
        for l in (0..Self::TOP).rev() {
            if need[l] > 0 {
                let s = &mut self.stores[l];
                let n = need[l].max(s.credit);
                s.store.ensure(n).map_err(|_| l as u8)?;
                if l == 0 {
                    for p in self.packs.iter_mut() {
                        p.ensure(n).map_err(|_| 0u8)?;
                    }
                }
                if l == 1 {
                    for p in self.links.iter_mut() {
                        p.ensure(n).map_err(|_| 1u8)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reserves `need` tables on top of those already reserved, all or
    /// nothing. On failure, the level that ran out.
    pub fn reserve(&mut self, need: &Need) -> Result<(), u8> {
        for l in (0..Self::TOP).rev() {
            if need[l] > 0 {
                let s = &mut self.stores[l];
                let total = s.credit.checked_add(need[l]).ok_or(l as u8)?;
                s.store.ensure(total).map_err(|_| l as u8)?;
                if l == 0 {
                    for p in self.packs.iter_mut() {
                        p.ensure(total).map_err(|_| 0u8)?;
                    }
                }
                if l == 1 {
                    for p in self.links.iter_mut() {
                        p.ensure(total).map_err(|_| 1u8)?;
                    }
                }
            }
        }
        for (s, n) in self.stores.iter_mut().zip(need) {
            s.credit += n;
        }
        Ok(())
    }

    /// A new empty table at level `l`, from memory made available by
    /// [`prepare`](Self::prepare) or [`reserve`](Self::reserve).
    ///
    /// # Panics
    /// If none was made available (a bug in the caller's plan).
    pub fn new_table(&mut self, l: usize) -> Tab {
        let s = &mut self.stores[l];
        s.credit = s.credit.saturating_sub(1);
        let t = Tab(s.store.alloc().expect("mem-table: table created without a plan"));
        // SAFETY: fresh memory of level `l`'s layout.
        unsafe { Self::init_table(t, l) };
        t
    }

    /// Makes the memory at `t` an empty table of level `l`: a zeroed header,
    /// and (bottom, `V` with a niche) every cell `None`.
    ///
    /// # Safety
    /// `t` points to memory of level `l`'s layout holding no value that
    /// needs dropping.
    unsafe fn init_table(t: Tab, l: usize) {
        let lv = Self::lv(l);
        // SAFETY: caller.
        unsafe {
            t.init(lv);
            if l == 0 {
                t.init_cells::<V>(lv);
            }
        }
    }

    /// Gives back the memory of table `t` of level `l`, which holds nothing
    /// that needs dropping any more and is linked from nowhere.
    pub fn free_table(&mut self, l: usize, t: Tab) {
        let s = &mut self.stores[l];
        if l == 0 {
            // SAFETY: `t` is a live bottom table.
            if let Some(k) = unsafe { Self::form(t) } {
                // SAFETY: a packed table of class `k` came from its store.
                unsafe { self.packs[k].free(t.0, s.credit) };
                return;
            }
        }
        // SAFETY: `t` is a live table of level `l`.
        if unsafe { Self::is_links(t, l) } {
            // SAFETY: a links table came from its store.
            unsafe { self.links[Self::lv(1).class_of(t.cap(Self::lv(1)))].free(t.0, s.credit) };
            return;
        }
        // SAFETY: `t` came from this store (type invariant) and is unlinked.
        unsafe { s.store.free(t.0, s.credit) };
    }

    /// Frees table `t` of level `l` (based at `base`), which removals left
    /// empty and which is already unlinked: when tracking values, first
    /// keeps its change marks, which say which of its slots were empty at
    /// the last committed report (see [`track`]).
    pub fn free_emptied(&mut self, l: usize, t: Tab, base: u64) {
        if let Some(tr) = &mut self.track {
            // SAFETY: `t` is a live table of level `l`.
            unsafe { tr.freed_table(t, Self::lv(l), base, l as u8) };
        }
        self.free_table(l, t);
    }

    /// Moves every bottom table that lost most of its entries, and that
    /// marks kept from a sparse form, to one
    /// ([`shrink_bottom`](Self::shrink_bottom): the moves a commit cannot
    /// make), then releases memory no table uses, keeping reserved tables.
    /// O(upper slots + bottom tables moved).
    pub fn shrink_to_fit(&mut self) {
        if Self::PACK {
            let mut walk = Cursor::tables::<G>(self.root);
            // SAFETY: the cursor was made for this table, which the loop
            // changes only by replacing the bottom table just left.
            while let Some(Left { parent, i, child, l, .. }) = unsafe { walk.next_left::<V, G>() } {
                if l == 0 {
                    self.shrink_bottom(parent, i, child, true);
                }
            }
        }
        for s in self.stores.iter_mut() {
            s.store.shrink_to_fit(s.credit);
        }
        let credit = self.stores[0].credit;
        for p in self.packs.iter_mut() {
            p.shrink_to_fit(credit);
        }
        let credit = self.stores[1].credit;
        for p in self.links.iter_mut() {
            p.shrink_to_fit(credit);
        }
    }

    /// Drops every reservation.
    pub fn unreserve(&mut self) {
        for s in self.stores.iter_mut() {
            s.credit = 0;
        }
    }

    // ---- lookups -----------------------------------------------------------

    /// The entry covering `addr` (which is in reach): its page and a pointer
    /// to its value.
    #[inline(always)]
    pub fn find(&self, addr: u64) -> Option<(Page, *mut V)> {
        let b = match self.descend(addr) {
            Ok(b) => b,
            Err(found) => return found,
        };
        let lv = Self::lv(0);
        let i = lv.index(addr);
        let (t, packed) = b.get::<V, G, B>();
        // SAFETY: `t` is a live bottom table; `i` is masked to its fan-out;
        // its link said whether it is packed, and sparse.
        unsafe {
            if packed {
                return Self::find_packed(t, addr, b.sparse());
            }
            t.direct_holds::<V>(lv, i).then(|| (page_at(addr, 0, lv.shift), t.direct_val::<V>(lv, i)))
        }
    }

    /// [`find`](Self::find) in the packed bottom table `t`: out of line, so
    /// that the direct form's path is not made longer by this one's.
    ///
    /// # Safety
    /// `t` is a live, packed bottom table covering `addr`, sparse exactly
    /// when `sparse`.
    #[inline(never)]
    unsafe fn find_packed(t: Tab, addr: u64, sparse: bool) -> Option<(Page, *mut V)> {
        let lv = Self::lv(0);
        let i = lv.index(addr);
        // SAFETY: caller; `i` is masked to the fan-out.
        unsafe {
            if sparse {
                return t.sparse_get::<V>(lv, i).map(|v| (page_at(addr, 0, lv.shift), v));
            }
            // The rank and the first values share a line that the map word
            // does not: ask for it now, so that the two misses overlap
            // instead of the value's waiting on the map's.
            prefetch(t.ptr().wrapping_add(lv.off_ranks));
            t.occupied(lv, i).then(|| (page_at(addr, 0, lv.shift), t.packed_val::<V>(lv, i)))
        }
    }

    /// The entry covering `addr`, with the path to it.
    fn find_path(&self, addr: u64, path: &mut Path) -> Option<(Page, *mut V)> {
        let mut t = self.root;
        for l in (0..=Self::TOP).rev() {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            path.push((t, i));
            if l == 0 {
                // SAFETY: live bottom table, masked index.
                return unsafe { t.occupied(lv, i).then(|| (page_at(addr, 0, lv.shift), t.val::<V>(lv, i))) };
            }
            // SAFETY: live upper table, masked index.
            match unsafe { t.slot(lv, i) } {
                Slot::Empty => return None,
                // SAFETY: LARGE slots have their value initialized.
                Slot::Large => return Some((page_at(addr, l as u8, lv.shift), unsafe { t.val::<V>(lv, i) })),
                Slot::Table(c) => t = c,
            }
        }
        unreachable!("the walk ends at the bottom")
    }

    /// The value of the entry at the end of `path`, a path that
    /// [`probe`](Self::probe) found `Occupied`.
    pub fn path_value(path: &Path) -> *mut V {
        let &(t, i) = path.last().expect("a probed path");
        let lv = Self::lv(Self::TOP + 1 - path.len());
        // SAFETY: the probe found an entry in slot `i` of the live table `t`,
        // whose level has a value array.
        unsafe { t.val::<V>(lv, i) }
    }

    /// Marks every slot of `path` changed.
    ///
    /// Upper tables above level 1 are never sparse, so their marks are set
    /// in the change map directly; only a bottom or level-1 table's goes
    /// through the form-aware [`Tab::mark`], with its level's layout known
    /// at compile time (a hot path: every insert and `get_mut` takes it).
    #[inline]
    pub fn mark_path(path: &Path) {
        // Over the levels, not the path: a loop of a constant count, which
        // the compiler unrolls, each level's layout folded to constants.
        for l in (0..=Self::TOP).rev() {
            let k = Self::TOP - l;
            let Some(&(t, i)) = path.get(k) else { return };
            // SAFETY: the path was just walked; level of entry `k` is TOP - k,
            // and only a bottom or level-1 table may be sparse.
            unsafe {
                if l == 0 || (l == 1 && Self::LINKS) {
                    t.mark(Self::lv(l), i);
                } else {
                    bitmap::set(t.dirty(Self::lv(l)), i);
                }
            }
        }
    }

    /// Marks the slots of `path` above its last (the slots that lead to the
    /// last entry's table), as [`mark_path`](Self::mark_path) does;
    /// `links`: the path's level-1 table is a links table.
    #[inline]
    fn mark_above(path: &Path, links: bool) {
        for l in (1..=Self::TOP).rev() {
            let k = Self::TOP - l;
            if k + 1 >= path.len() {
                return;
            }
            let (t, i) = path[k];
            // SAFETY: the path was just walked; entry `k` is a slot of a
            // live upper table of level `l`, sparse only at level 1 (a
            // links table, where the slot has its index: it links a table).
            unsafe {
                if l == 1 && links {
                    t.mark(Self::lv(1), i);
                } else {
                    bitmap::set(t.dirty(Self::lv(l)), i);
                }
            }
        }
    }

    /// The entry covering `addr`, mutably: marks it and its path changed.
    pub fn find_mut(&mut self, addr: u64) -> Option<(Page, *mut V)> {
        let mut path = Path::new();
        let found = self.find_path(addr, &mut path)?;
        self.touch_path(&path, found.0, found.1);
        Self::mark_path(&path);
        Some(found)
    }

    /// Before the entry `page` (value `v`) at the end of `path` is marked:
    /// keeps its value if tracking values (see [`track`]).
    #[inline]
    pub fn touch_path(&mut self, path: &Path, page: Page, v: *const V) {
        if let Some(tr) = &mut self.track {
            let &(t, i) = path.last().expect("a walked path");
            // SAFETY: the path was just walked and ends at the entry `page`,
            // whose value `v` is.
            unsafe {
                tr.touch(t, Self::lv(page.level().index()), i, page.addr(), page.level().index() as u8, v)
            };
        }
    }

    /// Walks the upper levels for `addr` (in reach): the bottom table that
    /// covers it (`Ok`), or the answer found above (`Err`: a large entry, or
    /// nothing).
    #[inline(always)]
    fn descend(&self, addr: u64) -> Result<Bottom, Option<(Page, *mut V)>> {
        let mut t = self.root;
        let mut w = t.ptr();
        let mut l = Self::TOP;
        while l > 0 {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            if lv.inline {
                // SAFETY: `t` is a live direct table of level `l` (type
                // invariant; not a links table, see above), `i` is masked
                // to its fan-out.
                match unsafe { t.direct_slot(lv, i) } {
                    Slot::Empty => return Err(None),
                    Slot::Large => {
                        // SAFETY: a large slot has its value initialized (invariant).
                        let v = unsafe { t.val::<V>(lv, i) };
                        return Err(Some((page_at(addr, l as u8, lv.shift), v)));
                    }
                    Slot::Table(c) => {
                        // SAFETY: slot `i` links a table: a whole word.
                        w = unsafe { t.word(lv, i) };
                        t = c;
                    }
                }
                if Self::LINKS && l == 2 && w.addr() & SPARSE_LINK != 0 {
                    break;
                }
                l -= 1;
                continue;
            }
            // SAFETY: `t` is a live direct table of level `l` (type
            // invariant; see above), `i` is masked to its fan-out; no value
            // is inline at this level.
            w = unsafe { t.word(lv, i) };
            if w.addr() <= 1 {
                if w.is_null() {
                    return Err(None);
                }
                // SAFETY: a LARGE slot has its value initialized (invariant).
                return Err(Some((page_at(addr, l as u8, lv.shift), unsafe { t.val::<V>(lv, i) })));
            }
            if Self::LINKS && l == 2 && w.addr() & SPARSE_LINK != 0 {
                break;
            }
            // SAFETY: a slot word other than null and LARGE links a live
            // child table (invariant); only a level-1 word (the last) or a
            // level-2 word that links a links table (which leaves the loop)
            // carries `PACKED_LINK` and `SPARSE_LINK`, which `Bottom` takes
            // off.
            t = Tab(unsafe { ptr::NonNull::new_unchecked(w) });
            l -= 1;
        }
        if Self::LINKS && l == 2 {
            // The loop left at a level-2 word that links a links table.
            let c = w.map_addr(|a| a & !(PACKED_LINK | SPARSE_LINK));
            // SAFETY: a tagged level-2 word links a live links table.
            let b = Self::descend_links(Tab(unsafe { ptr::NonNull::new_unchecked(c) }), addr);
            return if b.is_null() { Err(None) } else { Ok(Bottom(b)) };
        }
        Ok(Bottom(w))
    }

    /// The end of [`descend`](Self::descend) in the links table `t`: the
    /// link of `addr`'s slot, or null. Out of line, so that the direct
    /// form's walk pays one test for it; a word, so that the walk's result
    /// stays in registers.
    #[inline(never)]
    fn descend_links(t: Tab, addr: u64) -> *mut u8 {
        let lv = Self::lv(1);
        // SAFETY: `t` is a live links table (its link said so), the index
        // masked to its fan-out; it holds links only, and a present slot's
        // cell holds its link.
        unsafe {
            match t.sparse_get::<*mut u8>(lv, lv.index(addr)) {
                Some(p) => *p,
                None => ptr::null_mut(),
            }
        }
    }

    /// Looks up several addresses at once: first every walk down to its
    /// bottom table (the upper tables are few and mostly cached), prefetching
    /// the bottom table's presence word and value; then every bottom lookup,
    /// whose cache misses now overlap instead of queueing. Addresses out of
    /// reach find nothing. The results are value pointers (null: none).
    #[inline]
    pub fn find_many<const N: usize>(&self, addrs: &[u64; N]) -> [*mut V; N] {
        let lv = Self::lv(0);
        let mut out = [ptr::null_mut(); N];
        let mut leaf = [ptr::null_mut::<u8>(); N];
        let mut packs = [false; N];
        for k in 0..N {
            let a = addrs[k];
            if !G::in_reach(a) {
                continue;
            }
            match self.descend(a) {
                Ok(b) => {
                    let (t, packed) = b.get::<V, G, B>();
                    let i = lv.index(a);
                    if (packed && !b.sparse()) || !node::niche::<V>() {
                        prefetch(t.ptr().wrapping_add(lv.off_map + i / 64 * 8));
                    }
                    // A packed table's rank words and first values share a
                    // line; a direct one's value is at its slot; a sparse
                    // one's indices and first values are in its first line.
                    let at = match (packed, b.sparse()) {
                        (true, true) => 0,
                        (true, false) => lv.off_ranks,
                        _ => lv.off_vals + i * size_of::<V>(),
                    };
                    prefetch(t.ptr().wrapping_add(at));
                    leaf[k] = t.ptr();
                    packs[k] = packed;
                }
                Err(Some((_, v))) => out[k] = v,
                Err(None) => {}
            }
        }
        for k in 0..N {
            if let Some(p) = ptr::NonNull::new(leaf[k]) {
                let t = Tab(p);
                let i = lv.index(addrs[k]);
                // SAFETY: as in `find`.
                unsafe {
                    if packs[k] {
                        if t.sparse(lv) {
                            out[k] = t.sparse_get::<V>(lv, i).unwrap_or(ptr::null_mut());
                        } else if t.occupied(lv, i) {
                            out[k] = t.packed_val::<V>(lv, i);
                        }
                    } else if t.direct_holds::<V>(lv, i) {
                        out[k] = t.direct_val::<V>(lv, i);
                    }
                }
            }
        }
        out
    }

    /// What an insert at `(addr, level)` meets; adds the tables it would
    /// create to `need`, and the tables and slots walked to `path` (for
    /// `Occupied`, the last is the entry's).
    pub fn probe(&self, addr: u64, level: usize, need: &mut Need, path: &mut Path) -> Probe {
        let mut t = self.root;
        for l in (level..=Self::TOP).rev() {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            path.push((t, i));
            if l == 0 {
                // SAFETY: live bottom table, masked index.
                if unsafe { t.occupied(lv, i) } {
                    return Probe::Occupied;
                }
                // A packed table at capacity moves to a larger form.
                // SAFETY: as above.
                need[0] += !unsafe { t.has_room(lv) } as usize;
                return Probe::Vacant;
            }
            // SAFETY: live upper table, masked index.
            let slot = unsafe { t.slot(lv, i) };
            if l == 1 && slot == Slot::Empty {
                // A links table that cannot take the link or the large
                // entry moves to the direct form.
                // SAFETY: `t` is a live level-1 table.
                need[1] += unsafe { Self::widen_need(t, i, level == 1) };
            }
            match (slot, l == level) {
                (Slot::Empty, true) => return Probe::Vacant,
                (Slot::Large, true) => return Probe::Occupied,
                (Slot::Table(_), true) => return Probe::Smaller,
                (Slot::Large, false) => return Probe::Larger(page_at(addr, l as u8, lv.shift)),
                (Slot::Empty, false) => {
                    for n in &mut need[level..l] {
                        *n += 1;
                    }
                    return Probe::Vacant;
                }
                (Slot::Table(c), false) => t = c,
            }
        }
        unreachable!("the probe ends at the level")
    }

    /// Inserts the value at `src` at `(addr, level)` if every table on the
    /// way exists and nothing conflicts (`Some(whether a value was replaced
    /// and moved to old)`); otherwise leaves it (`None`). One walk.
    ///
    /// # Safety
    /// `src` points to an initialized value, which is moved out (the caller
    /// must forget it) when the result is `Some`; `old` is writable.
    #[inline]
    pub unsafe fn insert_existing(
        &mut self,
        addr: u64,
        level: usize,
        src: *const V,
        old: *mut V,
    ) -> Option<bool> {
        let mut path = Path::new();
        let mut t = self.root;
        let mut l = Self::TOP;
        // Whether the level-1 table on the path is a links table.
        let mut links = false;
        let had = loop {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            path.push((t, i));
            if l == 0 {
                // The bottom level's layout, known at compile time.
                let lv = Self::lv(0);
                // SAFETY: live bottom table, masked index; `src` (caller).
                unsafe {
                    // A direct table always has room: skip the checks
                    // (`put_from` would dispatch the same way, after them;
                    // this saves about 18 instructions per insert).
                    if !t.packed(lv) {
                        self.keep_replaced(t, 0, i, addr);
                        bitmap::set(t.dirty(lv), i);
                        break t.put_direct_from(lv, i, src, old);
                    }
                    if !t.has_room(lv) && !t.occupied(lv, i) {
                        return None;
                    }
                    self.keep_replaced(t, 0, i, addr);
                    // A sparse table's mark needs the slot's index: after.
                    let had = t.put_from(lv, i, src, old);
                    t.mark(lv, i);
                    break had;
                }
            }
            // SAFETY: live upper table, masked index; a level-1 table is a
            // links table exactly when its level-2 word said so.
            let slot = unsafe { if l == 1 && links { t.links_slot(lv, i) } else { t.direct_slot(lv, i) } };
            match (slot, l == level) {
                (Slot::Table(c), false) => {
                    if Self::LINKS && l == 2 {
                        // SAFETY: slot `i` of the direct level-2 table
                        // links a table: a whole word.
                        links = unsafe { t.word(lv, i) }.addr() & SPARSE_LINK != 0;
                    }
                    t = c;
                }
                // A links table takes no large entry: the planned path
                // widens it.
                (Slot::Empty, true) if l == 1 && links => return None,
                // SAFETY: the level holds entries (the caller checked the
                // place); `src` (caller).
                (Slot::Empty | Slot::Large, true) => unsafe {
                    self.keep_replaced(t, l, i, addr);
                    bitmap::set(t.dirty(lv), i);
                    break t.put_large_from(lv, i, src, old);
                },
                _ => return None,
            }
            l -= 1;
        };
        // The entry's own slot is marked above, where its form is known.
        Self::mark_above(&path, links);
        self.len += !had as usize;
        Some(had)
    }

    /// Inserts the value at `src` at `(addr, level)` after a
    /// [`probe`](Self::probe) said `Vacant` or `Occupied` and its need was
    /// prepared: creates the missing tables and marks the path.
    ///
    /// # Safety
    /// `src` points to an initialized value, which is moved out; `old` is
    /// writable and receives the value replaced (the result says whether).
    pub unsafe fn insert_planned(&mut self, addr: u64, level: usize, src: *const V, old: *mut V) -> bool {
        let mut t = self.root;
        // The slot that links `t`, once below the root.
        let mut up = None;
        for l in (level + 1..=Self::TOP).rev() {
            let lv = Self::lv(l);
            let i = lv.index(addr);
            // SAFETY: live upper table, masked index.
            let slot = unsafe { t.slot(lv, i) };
            if let (1, Some((p, pi)), Slot::Empty) = (l, up, slot) {
                t = self.widen_for(p, pi, t, i, false);
            }
            let mut c = match slot {
                Slot::Table(c) => c,
                // A bottom table made for one entry starts packed; a
                // level-1 table made for a link starts in the links form.
                Slot::Empty => {
                    let form = if l == 2 && level == 1 { None } else { Self::PACK.then_some(0) };
                    self.add_child(t, l, i, addr, form)
                }
                Slot::Large => unreachable!("insert under a larger entry"),
            };
            if l == 1 && level == 0 {
                // SAFETY: `c` is the live bottom table linked from slot `i`.
                unsafe {
                    let clv = Self::lv(0);
                    if !c.has_room(clv) && !c.occupied(clv, clv.index(addr)) {
                        c = self.reform(t, i, c, Self::grown(c));
                    }
                }
            }
            // SAFETY: as above.
            unsafe { t.mark(lv, i) };
            up = Some((t, i));
            t = c;
        }
        let lv = Self::lv(level);
        let i = lv.index(addr);
        if let (1, Some((p, pi))) = (level, up) {
            t = self.widen_for(p, pi, t, i, true);
        }
        // SAFETY: `t` is a live table of `level`, `i` masked; `src` (caller).
        let had = unsafe {
            self.keep_replaced(t, level, i, addr);
            t.mark(lv, i);
            if level == 0 { t.put_from(lv, i, src, old) } else { t.put_large_from(lv, i, src, old) }
        };
        self.len += !had as usize;
        had
    }

    /// Before slot `i` of `t` (level `l`, covering `addr`) is written and
    /// marked: keeps what it holds (its value, or nothing) when tracking
    /// values and this is the slot's first mark of the batch. If the clone
    /// unwinds, nothing has changed.
    ///
    /// # Safety
    /// `t` is a live table of level `l` that holds entries, `i` one of its
    /// slots.
    #[inline]
    unsafe fn keep_replaced(&mut self, t: Tab, l: usize, i: usize, addr: u64) {
        if let Some(tr) = &mut self.track {
            let lv = Self::lv(l);
            // SAFETY: caller.
            let occupied = unsafe { if l == 0 { t.occupied(lv, i) } else { t.slot(lv, i) == Slot::Large } };
            let a = addr & !((1u64 << lv.shift) - 1);
            // SAFETY: `t.val` of an occupied slot is initialized.
            let v = if occupied { unsafe { t.val::<V>(lv, i) } } else { ptr::null_mut() };
            // SAFETY: caller.
            unsafe { tr.touch(t, lv, i, a, l as u8, v) };
        }
    }

    /// Puts a new, empty table in the empty slot `i` of `t` (level `l`) and
    /// returns it. If the slot was marked changed since the last report (an
    /// entry or a table was removed there), every slot of the new table is
    /// marked too, so that the next report covers the whole region.
    /// A new bottom table has the form `form` (`None`: direct; ignored
    /// without packed forms); a new level-1 table (`l == 2`) has the links
    /// form if `form` is `Some` (and the slot is not marked).
    pub fn add_child(&mut self, t: Tab, l: usize, i: usize, addr: u64, form: Option<usize>) -> Tab {
        let lv = Self::lv(l);
        if let Some(tr) = &mut self.track {
            // SAFETY: `t` is a live table of level `l`, slot `i` empty.
            unsafe { tr.touch(t, lv, i, addr & !((1u64 << lv.shift) - 1), l as u8, ptr::null()) };
        }
        // SAFETY: `t` is a live table of level `l`.
        let marked = unsafe { t.marked(lv, i) };
        let c = match form {
            // Every slot of a sparse table cannot be marked: the smallest
            // form with maps instead.
            Some(k) if marked && k < Self::lv(0).sparse => match Self::lv(0).sparse {
                s if s < Self::lv(0).classes && l == 1 && Self::PACK => self.new_packed(s),
                _ => self.new_table(l - 1),
            },
            Some(k) if l == 1 && Self::PACK => self.new_packed(k),
            Some(_) if l == 2 && Self::LINKS && !marked => self.new_links(0),
            _ => self.new_table(l - 1),
        };
        // SAFETY: `t` is a live table of level `l`, `c` a fresh one below.
        unsafe {
            if marked {
                c.mark_all(Self::lv(l - 1));
            }
            t.set_word(lv, i, c.link(Self::lv(l - 1)));
        }
        c
    }

    /// Removes the entry covering `addr` (in reach), freeing the tables it
    /// leaves empty; marks the path.
    pub fn remove_covering(&mut self, addr: u64) -> Option<(Page, V)> {
        let mut path = Path::new();
        let (page, v) = self.find_path(addr, &mut path)?;
        self.touch_path(&path, page, v);
        Self::mark_path(&path);
        let depth = path.len();
        let (t, i) = path[depth - 1];
        let l = Self::TOP + 1 - depth;
        let lv = Self::lv(l);
        // SAFETY: the walk found an entry in slot `i` of `t`.
        let v = unsafe { if l == 0 { t.take(lv, i).expect("found") } else { t.take_large(lv, i) } };
        self.len -= 1;
        // SAFETY: `t` is live.
        let left = l == 0 && depth >= 2 && unsafe { t.len(lv) } > 0;
        // Free the tables left empty, bottom up; `kept`: the lowest level
        // whose table on the path is left.
        let mut kept = l;
        for (l, k) in (l..).zip((0..depth - 1).rev()) {
            let (child, _) = path[k + 1];
            // SAFETY: `child` is a live table of level `l`.
            if unsafe { child.len(Self::lv(l)) } != 0 {
                break;
            }
            kept = l + 1;
            let (parent, pi) = path[k];
            // SAFETY: `parent` links `child` in slot `pi`.
            unsafe { parent.set_word(Self::lv(l + 1), pi, ptr::null_mut()) };
            let clv = Self::lv(l);
            self.free_emptied(l, child, addr & !((1u64 << (clv.shift + clv.bits)) - 1));
        }
        if left {
            // Nothing was freed: `t` still has entries.
            let (parent, pi) = path[depth - 2];
            self.shrink_bottom(parent, pi, t, false);
        }
        if Self::LINKS && kept == 1 {
            // The level-1 table lost an entry or a child and is left.
            let (parent, pi) = path[Self::TOP - 2];
            self.narrow(parent, pi, path[Self::TOP - 1].0);
        }
        Some((page, v))
    }

    // ---- bulk --------------------------------------------------------------

    /// Entries in the subtree of table `t` (level `l`).
    pub fn count(t: Tab, l: usize) -> usize {
        let lv = Self::lv(l);
        // SAFETY: `t` is a live table of level `l` (caller).
        unsafe {
            if l == 0 {
                return t.len(lv);
            }
            let mut n = 0;
            let mut i = 0;
            while let Some(j) = t.next_occupied(lv, i, lv.fanout - 1) {
                n += match t.slot(lv, j) {
                    Slot::Table(c) => Self::count(c, l - 1),
                    _ => 1,
                };
                i = j + 1;
            }
            n
        }
    }

    /// Drops every value in table `t` (level `l`) and below and frees every
    /// table below it, leaving `t` empty (its change marks kept). Each slot
    /// is emptied before its value is dropped or its child freed, so that if
    /// a drop panics, the rest is still dropped (as a slice's elements are)
    /// and nothing twice.
    pub fn empty(&mut self, t: Tab, l: usize) {
        /// Finishes the job if a drop unwinds.
        struct Rest<'a, V, G: Geometry, B: Backend>(&'a mut RawTable<V, G, B>, Tab, usize);
        impl<V, G: Geometry, B: Backend> Drop for Rest<'_, V, G, B> {
            fn drop(&mut self) {
                self.0.empty(self.1, self.2);
            }
        }
        let lv = Self::lv(l);
        if l == 0 && !core::mem::needs_drop::<V>() {
            // SAFETY: live bottom table; its values need no drop.
            unsafe { t.forget_values::<V>(lv) };
            return;
        }
        let rest = Rest(self, t, l);
        let mut from = 0;
        // SAFETY: `t` is a live table of level `l`; each slot is emptied
        // before its content is dropped.
        unsafe {
            while let Some(i) = t.next_occupied(lv, from, lv.fanout - 1) {
                from = i + 1;
                if l == 0 {
                    drop(t.take::<V>(lv, i));
                } else {
                    match t.slot(lv, i) {
                        Slot::Large => drop(t.take_large::<V>(lv, i)),
                        Slot::Table(c) => {
                            t.set_word(lv, i, ptr::null_mut());
                            rest.0.free_tree(c, l - 1);
                        }
                        Slot::Empty => unreachable!("occupied"),
                    }
                }
            }
        }
        core::mem::forget(rest);
    }

    /// Drops everything in the unlinked table `c` (level `l`) and below, and
    /// frees it, even if a drop unwinds.
    pub fn free_tree(&mut self, c: Tab, l: usize) {
        /// Frees the table after emptying it, also on unwind.
        struct Free<'a, V, G: Geometry, B: Backend>(&'a mut RawTable<V, G, B>, Tab, usize);
        impl<V, G: Geometry, B: Backend> Drop for Free<'_, V, G, B> {
            fn drop(&mut self) {
                self.0.free_table(self.2, self.1);
            }
        }
        let f = Free(self, c, l);
        f.0.empty(c, l);
        drop(f);
    }

    /// Frees every table below the root and empties the root without
    /// touching a value: for a table whose values were all moved out or
    /// dropped already (an exhausted `IntoIter`).
    pub fn release(&mut self) {
        let root = self.root;
        self.release_below(root, Self::TOP);
        // SAFETY: the root is live and its values are gone.
        unsafe { Self::init_table(root, Self::TOP) };
        self.len = 0;
    }

    fn release_below(&mut self, t: Tab, l: usize) {
        if l == 0 {
            return;
        }
        let lv = Self::lv(l);
        let mut from = 0;
        // SAFETY: `t` is a live table of level `l`.
        while let Some(i) = unsafe { t.next_occupied(lv, from, lv.fanout - 1) } {
            from = i + 1;
            // SAFETY: as above.
            if let Slot::Table(c) = unsafe { t.slot(lv, i) } {
                self.release_below(c, l - 1);
                self.free_table(l - 1, c);
            }
        }
    }

    /// Removes every entry, marking every slot of the root that held one.
    /// If a drop panics, the table is already empty; the remaining values
    /// are still dropped.
    pub fn clear(&mut self) {
        let top = Self::lv(Self::TOP);
        // SAFETY: the root is live; marks are set before anything is dropped.
        unsafe {
            let (map, dirty) = (self.root.map(top), self.root.dirty(top));
            for k in 0..top.words {
                *dirty.add(k) |= *map.add(k);
            }
        }
        self.len = 0;
        let root = self.root;
        self.empty(root, Self::TOP);
    }

    // ---- clone -------------------------------------------------------------

    /// A copy, values cloned, change marks kept, on a new backend of the same
    /// configuration. If a clone panics, the partial copy is dropped cleanly.
    pub fn clone_table(&self) -> Self
    where
        V: Clone,
    {
        let mut out = RawTable::new(self.backend.clone());
        let root = out.root;
        out.copy_from(self.root, root, Self::TOP);
        out.len = self.len;
        out.track = self.track.as_ref().map(|t| alloc::boxed::Box::new(t.copy()));
        out
    }

    /// Copies table `src` (of another table) into the empty `dst`, level `l`.
    fn copy_from(&mut self, src: Tab, dst: Tab, l: usize)
    where
        V: Clone,
    {
        let lv = Self::lv(l);
        // SAFETY: `src` is a live table of level `l` of the source, `dst` a
        // live empty one of this table; each value is cloned before its slot
        // is marked occupied, so a panicking clone leaves `dst` consistent.
        unsafe {
            if l == 0 || src.sparse(lv) {
                // A sparse copy gives each marked slot its index as the
                // slot is marked (in slot order, within the same capacity).
                let mut i = 0;
                while let Some(j) = src.next_marked(lv, i, lv.fanout - 1) {
                    i = j + 1;
                    dst.mark(lv, j);
                }
            } else {
                ptr::copy_nonoverlapping(src.dirty(lv), dst.dirty(lv), lv.words);
            }
            let mut i = 0;
            while let Some(j) = src.next_occupied(lv, i, lv.fanout - 1) {
                i = j + 1;
                if l == 0 {
                    // In slot order: a packed copy's values are appended.
                    clone_to(src.val::<V>(lv, j), dst.open::<V>(lv, j));
                    dst.occupy(lv, j);
                    continue;
                }
                match src.slot(lv, j) {
                    Slot::Large => {
                        let mut stage = node::Stage::uninit();
                        let p = dst.stage::<V>(lv, j, &mut stage);
                        clone_to(src.val::<V>(lv, j), p);
                        dst.commit_large(lv, j, p);
                    }
                    Slot::Table(c) => {
                        let d = self.new_like(c, l - 1);
                        dst.set_word(lv, j, d.link(Self::lv(l - 1)));
                        self.copy_from(c, d, l - 1);
                    }
                    Slot::Empty => unreachable!("occupied"),
                }
            }
        }
    }

    /// A new empty table of level `l` in the form of `c` (a table of the
    /// source of a clone), allocating it (aborting if that fails, as a
    /// clone does). Out of line: the recursive copy keeps a small frame.
    #[inline(never)]
    fn new_like(&mut self, c: Tab, l: usize) -> Tab {
        self.prepare(&need_one(l))
            .unwrap_or_else(|_| alloc::alloc::handle_alloc_error(alloc_layout(Self::lv(l))));
        // SAFETY: `c` is a live table of level `l`; its form is read only
        // at the levels that have forms.
        unsafe {
            match l {
                0 => match Self::form(c) {
                    Some(k) => self.new_packed(k),
                    None => self.new_table(0),
                },
                1 if Self::is_links(c, 1) => self.new_links(Self::lv(1).class_of(c.cap(Self::lv(1)))),
                _ => self.new_table(l),
            }
        }
    }

    // ---- checks --------------------------------------------------------------

    /// Checks every structural invariant (for tests and fuzzing).
    pub fn check(&self) -> Result<(), String> {
        let mut tables = [0usize; MAX_LEVELS];
        let entries = Self::check_table(self.root, Self::TOP, &mut tables)?;
        if entries != self.len {
            return Err(format!("len {} but {} entries reachable", self.len, entries));
        }
        for (l, s) in self.stores.iter().enumerate() {
            let live = s.store.live()
                + match l {
                    0 => self.packs.iter().map(|p| p.live()).sum(),
                    1 => self.links.iter().map(|p| p.live()).sum(),
                    _ => 0,
                };
            if live != tables[l] {
                return Err(format!("level {l}: stores hold {live} tables, {} reachable", tables[l]));
            }
            if l == 0 && self.packs.iter().any(|p| p.available() < s.credit) {
                return Err(format!("level 0: {} reserved but a packed store has fewer", s.credit));
            }
            if l == 1 && self.links.iter().any(|p| p.available() < s.credit) {
                return Err(format!("level 1: {} reserved but a links store has fewer", s.credit));
            }
            if s.store.available() < s.credit {
                return Err(format!(
                    "level {l}: {} reserved but {} available",
                    s.credit,
                    s.store.available()
                ));
            }
        }
        Ok(())
    }

    fn check_table(t: Tab, l: usize, tables: &mut [usize; MAX_LEVELS]) -> Result<usize, String> {
        tables[l] += 1;
        let lv = Self::lv(l);
        // SAFETY: `t` is a live table of level `l`.
        unsafe {
            let links = t.sparse(lv) && l > 0;
            if l == 0 && t.sparse(lv) {
                Self::check_form(t)?;
                return Ok(t.len(lv));
            }
            if links {
                let k = lv.class_of(t.cap(lv));
                if !Self::LINKS || l != 1 || k >= layout::LINKS_CLASSES || lv.pack_cap(k) != t.cap(lv) {
                    return Err(format!("level {l} table: a links form of capacity {}", t.cap(lv)));
                }
                t.sparse_check(lv)?;
            } else {
                if l > 0 && t.cap(lv) != 0 {
                    return Err(format!("level {l} table: direct, but capacity {}", t.cap(lv)));
                }
                let bits = bitmap::count(t.map(lv), lv.words);
                if bits != t.len(lv) {
                    return Err(format!("level {l} table: len {} but {} bits set", t.len(lv), bits));
                }
                let past =
                    |m: *const u64| lv.fanout % 64 != 0 && *m.add(lv.words - 1) >> (lv.fanout % 64) != 0;
                if past(t.map(lv)) || past(t.dirty(lv)) {
                    return Err(format!("level {l} table: bits set past the fan-out"));
                }
            }
            if l == 0 {
                Self::check_form(t)?;
                return Ok(t.len(lv));
            }
            let mut entries = 0;
            for i in 0..lv.fanout {
                let slot = t.slot(lv, i);
                if t.occupied(lv, i) == (slot == Slot::Empty) {
                    return Err(format!("level {l} table: occupancy bit {i} wrong"));
                }
                match slot {
                    Slot::Empty => {}
                    Slot::Large if !lv.large || links => {
                        return Err(format!("large entry at level {l}, in a table that holds none"));
                    }
                    Slot::Large => entries += 1,
                    Slot::Table(c) => {
                        let word = t.link_word(lv, i).addr();
                        let (tagged, sparse) = (word & PACKED_LINK != 0, word & SPARSE_LINK != 0);
                        let clv = Self::lv(l - 1);
                        let formed = l == 1 || (l == 2 && Self::LINKS);
                        if tagged != (formed && c.packed(clv)) || sparse != (formed && c.sparse(clv)) {
                            return Err(format!(
                                "level {l} table: slot {i}'s link says packed {tagged}, sparse {sparse}, wrongly"
                            ));
                        }
                        if c.len(clv) == 0 {
                            return Err(format!("empty table kept at level {}", l - 1));
                        }
                        entries += Self::check_table(c, l - 1, tables)?;
                    }
                }
            }
            Ok(entries)
        }
    }
}

impl<V, G: Geometry, B: Backend> Drop for RawTable<V, G, B> {
    fn drop(&mut self) {
        /// Frees the root even if a drop unwinds.
        struct Root<'a, V, G: Geometry, B: Backend>(&'a mut RawTable<V, G, B>);
        impl<V, G: Geometry, B: Backend> Drop for Root<'_, V, G, B> {
            fn drop(&mut self) {
                let root = self.0.root;
                self.0.free_table(RawTable::<V, G, B>::TOP, root);
            }
        }
        let r = Root(self);
        let root = r.0.root;
        r.0.empty(root, Self::TOP);
    }
}

/// Writes a clone of `*src` to `dst`. Out of line, so that the recursive
/// walks that clone hold no value in their frames.
///
/// # Safety
/// `src` points to an initialized value, `dst` to writable memory for one.
#[inline(never)]
unsafe fn clone_to<V: Clone>(src: *const V, dst: *mut V) {
    // SAFETY: caller.
    unsafe { dst.write((*src).clone()) }
}

/// Asks the processor to bring the line at `p` into the cache; a hint that
/// never faults, whatever `p` is.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: `prefetcht0` is a hint; it neither faults nor reads memory
    // architecturally, and SSE is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// One table at level `l`.
pub fn need_one(l: usize) -> Need {
    let mut n = [0; MAX_LEVELS];
    n[l] = 1;
    n
}

/// The page of level `level` (entry shift `shift`) containing `addr`.
#[inline(always)]
pub fn page_at(addr: u64, level: u8, shift: u32) -> Page {
    Page::new(addr & !((1u64 << shift) - 1), level, shift)
}
