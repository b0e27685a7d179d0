//! [`MemTable`]: the shared table and its readers; [`Writer`]: the
//! mutating half; [`Iter`]: ordered traversal.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::{Bound, RangeBounds};
use core::ptr::NonNull;
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::atom::{Store, Value};
use super::node::{EMPTY, Header, Kind, Link, Node};
use super::prim::{Mutex, MutexGuard, own_load, own_load_ptr};
use super::reclaim::{Epoch, Reclaim, Reclamation, Retired, Stats};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS, ValidGeometry, X86_4Level};
use crate::ops::{Children, CloneOps, PageOps, SplitByClone};
use crate::page::{Level, Page};
use crate::raw::layout::{Info, Lv};
use crate::raw::page_at;

mod ranges;
mod reserve;
pub(super) mod track;

use reserve::WriterState;

/// A table of per-page values that many threads read without locks while
/// one writer at a time changes it. See [the module docs](super).
///
/// # Invariants
/// - `root` is a live node of the top level's kind, never unlinked or
///   freed before the table is dropped;
/// - every node reachable from `root` is live and of its level's kind; a
///   link never points to a node that has been retired; every non-root
///   table reachable has at least one occupied slot; inline values appear
///   only for values of at most 63 bits and boxed ones only for 64-bit
///   values, and only at levels that hold entries; values published by
///   pointer (`Arc`s) appear only in tables of `Arc` values, each slot
///   holding its own strong reference (the table's);
/// - between writer operations every node's `len` counts its occupied
///   slots and `len` counts the entries;
/// - only the holder of `lock` (or of `&mut self`) stores to any slot or
///   retires any node, or touches `ws`.
pub struct MemTable<V: Value, G: Geometry = X86_4Level, R: Reclaim = Epoch> {
    root: Node,
    len: AtomicUsize,
    lock: Mutex<()>,
    /// The writer's own state (spare tables, change marks): see `reserve`.
    ws: core::cell::UnsafeCell<WriterState>,
    reclaim: R,
    stats: Arc<Stats>,
    _marker: PhantomData<fn() -> (V, G)>,
}

// SAFETY: the table owns its nodes and its references to values;
// everything readers and the writer share in them is atomic, writers are
// serialised by `lock`, nodes and references are dropped only after the
// reclaimer says no reader can visit them, and the values are plain bits or
// `Arc`s of `Send + Sync` types (`Value: Send + Sync`).
unsafe impl<V: Value, G: Geometry, R: Reclaim> Send for MemTable<V, G, R> {}
// SAFETY: as above: `&self` gives only atomic reads and the locked writer.
unsafe impl<V: Value, G: Geometry, R: Reclaim> Sync for MemTable<V, G, R> {}

impl<V: Value, G: Geometry, R: Reclaim> Default for MemTable<V, G, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: Value, G: Geometry, R: Reclaim> core::fmt::Debug for MemTable<V, G, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("sync::MemTable").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// A value as a slot stores it: an [`Atom`](super::Atom)'s bits, or the
/// pointer of a value published by pointer (untagged), standing for the
/// table's reference to it.
///
/// # Invariants
/// A `Ptr` is the pointer `Value::into_ptr` gave for a reference a slot
/// holds (or held until it was retired): it is valid while the holder's
/// guard, or the writer's borrow, lasts. A `Raw` owns nothing: dropping one
/// drops no reference.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Raw {
    Bits(u64),
    Ptr(NonNull<Header>),
}

/// The level of the top table.
const fn top<G: Geometry>() -> usize {
    G::LEVELS - 1
}

impl<V: Value, G: Geometry, R: Reclaim> MemTable<V, G, R> {
    const TOP: usize = top::<G>();
    /// Values published by pointer (`Arc`s).
    const PTR: bool = matches!(V::STORE, Store::Ptr);

    /// The layout constants of level `l` (shift, bits, fan-out: the value
    /// type does not matter for those).
    #[inline(always)]
    fn lv(l: usize) -> &'static Lv {
        Info::<u64, G>::lv(l)
    }

    /// The kind of a table at level `l`.
    #[inline(always)]
    fn kind(l: usize) -> Kind {
        let lv = Self::lv(l);
        match (l, V::STORE) {
            (0, Store::Packed) => Kind::Cells(lv.fanout),
            (0, Store::Wide) => Kind::Cells(lv.words + lv.fanout),
            _ => Kind::Links(lv.fanout),
        }
    }

    /// Decodes an upper slot's word.
    #[inline(always)]
    fn link_of(w: *mut Header) -> Link {
        if Self::PTR { Link::of_shared(w) } else { Link::of(w) }
    }

    /// An empty table.
    pub fn new() -> Self {
        let () = <G as ValidGeometry>::VALID;
        let () = V::VALID;
        MemTable {
            root: Node::new(Self::kind(Self::TOP)),
            len: AtomicUsize::new(0),
            lock: Mutex::new(()),
            ws: Default::default(),
            reclaim: R::default(),
            stats: Arc::new(Stats::default()),
            _marker: PhantomData,
        }
    }

    /// The number of entries, as of the last completed write (a count the
    /// writer keeps; a reader may see it lag its own lookups).
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// Whether [`len`](Self::len) is zero.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Enters a read section: nodes reachable while the guard lives are not
    /// freed. Hold one guard across a batch of lookups.
    #[inline]
    pub fn pin(&self) -> R::Guard<'_> {
        self.reclaim.pin()
    }

    /// The writer handle: locks out other writers (never readers) until it
    /// is dropped. A writer that panicked left the table consistent (every
    /// operation builds aside and publishes with one store), so a poisoned
    /// lock is taken over.
    pub fn writer(&self) -> Writer<'_, V, G, R> {
        let lock = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Writer { t: self, _lock: lock }
    }

    /// The writer handle, if no other writer holds it.
    pub fn try_writer(&self) -> Option<Writer<'_, V, G, R>> {
        use super::prim::MutexGuard as _G;
        let lock: _G<'_, ()> = match self.lock.try_lock() {
            Ok(l) => l,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Writer { t: self, _lock: lock })
    }

    /// What is waiting to be reclaimed: nodes unlinked and not yet freed
    /// because a reader may still see them.
    pub fn reclamation(&self) -> Reclamation {
        self.stats.snapshot()
    }

    /// Helps reclamation along from this thread (with [`Epoch`]: flushes
    /// this thread's deferred frees to the global queue and tries to
    /// advance the epoch). Frees happen later, on whichever thread pins.
    pub fn collect(&self) {
        self.reclaim.collect();
    }

    #[inline(always)]
    fn check_guard(&self, guard: &R::Guard<'_>) {
        assert!(self.reclaim.owns(guard), "a guard of another table's reclaimer");
    }

    // ---- readers -------------------------------------------------------

    /// The value of the entry covering `addr` (any byte address, of any
    /// level), read under `guard`: a copy of an [`Atom`](super::Atom), or
    /// a `&T` borrowed for as long as the guard for an `Arc<T>`.
    ///
    /// Wait-free: one Acquire load per level and one or two loads at the
    /// bottom. Sees, for the page, either the state before or the state
    /// after each write it overlaps.
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u32> = MemTable::new();
    /// t.writer().insert_at(0x20_0000, Level::new(1), 7).unwrap();
    /// let g = t.pin();
    /// assert_eq!(t.get(0x3f_ffff, &g), Some(7));
    /// assert_eq!(t.get(0x40_0000, &g), None);
    /// ```
    #[inline]
    pub fn get<'g>(&'g self, addr: u64, guard: &'g R::Guard<'_>) -> Option<V::Read<'g>> {
        self.get_key_value(addr, guard).map(|(_, v)| v)
    }

    /// The entry covering `addr`, with its page, read under `guard`.
    #[inline]
    pub fn get_key_value<'g>(&'g self, addr: u64, guard: &'g R::Guard<'_>) -> Option<(Page, V::Read<'g>)> {
        self.check_guard(guard);
        // SAFETY: `guard` is pinned on this table's reclaimer, and borrowed
        // for `'g`: a value reference read now is dropped after it ends.
        unsafe { self.find(addr).map(|(p, r)| (p, Self::read(r))) }
    }

    /// The value covering `addr`, owned: a copy of an
    /// [`Atom`](super::Atom), or a clone of the `Arc` (one reference count
    /// increment: a write to shared memory, unlike [`get`](Self::get)).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<Arc<String>> = MemTable::new();
    /// t.writer().insert(0x1000, Arc::new("a".to_string())).unwrap();
    /// let v: Arc<String> = t.get_cloned(0x1000, &t.pin()).unwrap();
    /// t.writer().remove(0x1000).unwrap();
    /// assert_eq!(*v, "a"); // ours, whatever the table does
    /// ```
    #[inline]
    pub fn get_cloned(&self, addr: u64, guard: &R::Guard<'_>) -> Option<V> {
        self.check_guard(guard);
        // SAFETY: as in `get_key_value`, for the duration of the clone.
        unsafe { self.find(addr).map(|(_, r)| Self::owned(r)) }
    }

    /// Whether an entry covers `addr`, read under `guard`.
    #[inline]
    pub fn contains(&self, addr: u64, guard: &R::Guard<'_>) -> bool {
        self.check_guard(guard);
        // SAFETY: as in `get_key_value`.
        unsafe { self.find(addr) }.is_some()
    }

    /// The values covering each of `addrs`, under one guard: the batched
    /// lookup. Each lookup is independent (not one snapshot).
    #[inline]
    pub fn get_many<'g, const N: usize>(
        &'g self,
        addrs: &[u64; N],
        guard: &'g R::Guard<'_>,
    ) -> [Option<V::Read<'g>>; N] {
        self.check_guard(guard);
        // SAFETY: as in `get_key_value`.
        core::array::from_fn(|k| unsafe { self.find(addrs[k]).map(|(_, r)| Self::read(r)) })
    }

    /// [`get_cloned`](Self::get_cloned) in its own read section (pins and
    /// unpins: about 10 ns more than under a guard held across a batch).
    #[inline]
    pub fn get_pinned(&self, addr: u64) -> Option<V> {
        let g = self.pin();
        self.get_cloned(addr, &g)
    }

    /// [`get_key_value`](Self::get_key_value) in its own read section, the
    /// value owned (as [`get_cloned`](Self::get_cloned)).
    #[inline]
    pub fn get_key_value_pinned(&self, addr: u64) -> Option<(Page, V)> {
        let g = self.pin();
        self.check_guard(&g);
        // SAFETY: pinned for the duration of the clone.
        unsafe { self.find(addr).map(|(p, r)| (p, Self::owned(r))) }
    }

    /// [`contains`](Self::contains) in its own read section.
    #[inline]
    pub fn contains_pinned(&self, addr: u64) -> bool {
        let g = self.pin();
        self.contains(addr, &g)
    }

    /// Every entry, in ascending address order, under `guard`.
    pub fn iter<'g>(&'g self, guard: &'g R::Guard<'_>) -> Iter<'g, V, G, R> {
        self.range(.., guard)
    }

    /// Every entry that overlaps `range`, in ascending order (a large entry
    /// that starts before the range but reaches into it is included), under
    /// `guard`.
    ///
    /// Not a snapshot of the table: each page is seen before or after each
    /// write, and each table's link is loaded once, so the entries of one
    /// table come from one version of it (a split or merge is seen whole).
    ///
    /// ```
    /// use mem_table::{Level, sync::MemTable};
    /// let t: MemTable<u8> = MemTable::new();
    /// let mut w = t.writer();
    /// w.insert(0x1000, 1).unwrap();
    /// w.insert_at(0x20_0000, Level::new(1), 2).unwrap();
    /// drop(w);
    /// let g = t.pin();
    /// let v: Vec<_> = t.range(0x1000..=0x20_0000, &g).map(|(p, v)| (p.addr(), v)).collect();
    /// assert_eq!(v, [(0x1000, 1), (0x20_0000, 2)]);
    /// ```
    pub fn range<'g, Q: RangeBounds<u64>>(&'g self, range: Q, guard: &'g R::Guard<'_>) -> Iter<'g, V, G, R> {
        self.check_guard(guard);
        let max = if G::ADDRESS_BITS >= 64 { u64::MAX } else { (1u64 << G::ADDRESS_BITS) - 1 };
        let lo = match range.start_bound() {
            Bound::Included(&a) => Some(a),
            Bound::Excluded(&a) => a.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let hi = match range.end_bound() {
            Bound::Included(&a) => Some(a.min(max)),
            Bound::Excluded(&a) => a.checked_sub(1).map(|a| a.min(max)),
            Bound::Unbounded => Some(max),
        };
        let (lo, hi, done) = match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => (lo, hi, false),
            _ => (0, 0, true),
        };
        let top = Self::lv(Self::TOP);
        let frame = Frame { node: self.root, base: 0, idx: 0 };
        let mut frames = [frame; MAX_LEVELS];
        frames[Self::TOP].idx = top.index(lo);
        Iter { frames, level: Self::TOP, lo, hi, done, _marker: PhantomData }
    }

    /// The stored form of a large entry's slot word, or `None` for a link
    /// or nothing.
    ///
    /// # Safety
    /// The word was loaded from a live table under a guard (or by the
    /// writer): a boxed value it points to is live.
    #[inline(always)]
    unsafe fn large_raw(link: Link) -> Option<Raw> {
        match link {
            Link::Inline(b) => Some(Raw::Bits(b)),
            // SAFETY: (caller) a live boxed value: one cell, written before
            // the Release store that published the word the caller acquired.
            Link::Boxed(n) => unsafe {
                n.visit();
                Some(Raw::Bits(n.cell(0).load(Relaxed)))
            },
            Link::Shared(p) => {
                #[cfg(loom)]
                super::node::loom_values::visit(p.as_ptr());
                Some(Raw::Ptr(p))
            }
            Link::Empty | Link::Table(_) => None,
        }
    }

    /// The value of a large entry's slot word, owned (a copy, or a clone
    /// of the table's `Arc`: the writer's view), or `None` for a link or
    /// nothing.
    ///
    /// # Safety
    /// As [`large_raw`](Self::large_raw).
    #[inline(always)]
    unsafe fn large_value(link: Link) -> Option<V> {
        // SAFETY: (caller).
        unsafe { Self::large_raw(link).map(|r| Self::owned(r)) }
    }

    /// A reader's view of a stored value.
    ///
    /// # Safety
    /// `r` was read from a live slot, and (for a pointer) the reference it
    /// stands for is not dropped before `'g` ends: the caller is pinned for
    /// `'g`, or is the writer and `'g` ends before its next write.
    #[inline(always)]
    unsafe fn read<'g>(r: Raw) -> V::Read<'g> {
        match r {
            Raw::Bits(b) => V::read_bits(b),
            // SAFETY: (caller) a pointer the table published, alive for `'g`.
            Raw::Ptr(p) => unsafe { V::read_ptr(p.as_ptr().cast()) },
        }
    }

    /// An owned copy of a stored value (a clone, for an `Arc`).
    ///
    /// # Safety
    /// As [`read`](Self::read), for the duration of the call.
    #[inline(always)]
    unsafe fn owned(r: Raw) -> V {
        match r {
            Raw::Bits(b) => V::from_bits(b),
            // SAFETY: (caller) the table's reference is alive meanwhile.
            Raw::Ptr(p) => unsafe { V::clone_ptr(p.as_ptr().cast()) },
        }
    }

    /// The entry in slot `i` of the bottom table `t`.
    ///
    /// # Safety
    /// `t` is a live bottom table, `i` below its fan-out.
    #[inline(always)]
    unsafe fn bottom(t: Node, i: usize) -> Option<Raw> {
        // SAFETY: (caller) live bottom table, `i` in range; the bitmap words
        // come first, then the values.
        unsafe {
            t.visit();
            match V::STORE {
                Store::Wide => {
                    // Acquire: the bit was set (Release) after the value was
                    // stored, so the value read next is that one or a later one.
                    let w = t.cell(i / 64).load(Acquire);
                    if w & (1 << (i % 64)) == 0 {
                        return None;
                    }
                    Some(Raw::Bits(t.cell(Self::lv(0).words + i).load(Relaxed)))
                }
                Store::Packed => {
                    // The word is the whole entry: presence and value together.
                    let c = t.cell(i).load(Relaxed);
                    (c & 1 != 0).then_some(Raw::Bits(c >> 1))
                }
                Store::Ptr => {
                    // Acquire: the value was made before the Release store
                    // that published its pointer.
                    let p = NonNull::new(t.link(i).load(Acquire))?;
                    #[cfg(loom)]
                    super::node::loom_values::visit(p.as_ptr());
                    Some(Raw::Ptr(p))
                }
            }
        }
    }

    /// The entry covering `addr`.
    ///
    /// # Safety
    /// The caller is in a read section of this table's reclaimer, or is the
    /// writer.
    #[inline(always)]
    unsafe fn find(&self, addr: u64) -> Option<(Page, Raw)> {
        if !G::in_reach(addr) {
            return None;
        }
        let mut t = self.root;
        let mut l = Self::TOP;
        while l > 0 {
            let lv = Self::lv(l);
            // SAFETY: `t` is live: the root, or a node linked when we loaded
            // its link, which the reclaimer keeps until our section ends;
            // the index is masked to the fan-out.
            let w = unsafe {
                t.visit();
                t.link(lv.index(addr)).load(Acquire)
            };
            match Self::link_of(w) {
                Link::Empty => return None,
                Link::Table(c) => t = c,
                large => {
                    // SAFETY: loaded from a live table in our section.
                    return unsafe { Self::large_raw(large) }.map(|v| (page_at(addr, l as u8, lv.shift), v));
                }
            }
            l -= 1;
        }
        let lv = Self::lv(0);
        // SAFETY: `t` is a live bottom table (as above), index masked.
        unsafe { Self::bottom(t, lv.index(addr)) }.map(|v| (page_at(addr, 0, lv.shift), v))
    }

    // ---- writer internals ----------------------------------------------

    /// Retires `node` (of `kind`), which the writer has just unlinked.
    ///
    /// # Safety
    /// Writer only; `node` is unlinked and referenced by no live link.
    unsafe fn retire(&self, node: Node, kind: Kind) {
        // SAFETY: (caller) unlinked, owned from now on by the `Retired`.
        unsafe { self.reclaim.retire(Retired::new(node, kind, &self.stats)) }
    }

    /// Retires the box of a large value just replaced or unlinked.
    ///
    /// # Safety
    /// As [`retire`](Self::retire), for the word `w`.
    unsafe fn retire_word(&self, w: *mut Header) {
        match Self::link_of(w) {
            // SAFETY: (caller).
            Link::Boxed(n) => unsafe { self.retire(n, Kind::Cells(1)) },
            // SAFETY: (caller): the slot held the table's reference.
            Link::Shared(p) => unsafe { self.retire_value(p) },
            Link::Empty | Link::Table(_) | Link::Inline(_) => {}
        }
    }

    /// Retires the table's reference `p` to a value published by pointer,
    /// which the writer has just replaced or cleared in its slot: dropped
    /// after the grace period.
    ///
    /// # Safety
    /// Writer only; no slot holds this reference any more.
    unsafe fn retire_value(&self, p: NonNull<Header>) {
        // SAFETY: (caller) unlinked, owned from now on by the `Retired`.
        unsafe { self.reclaim.retire(Retired::value(p, V::drop_ptr, V::HEAP_BYTES, &self.stats)) }
    }

    /// What the writer gives back for a value it took out of a slot: a
    /// copy, or (for a pointer) a clone of the table's reference, which is
    /// retired (readers may still hold it).
    ///
    /// # Safety
    /// Writer only; `r` was just replaced or cleared in its slot (by
    /// [`put_bottom`](Self::put_bottom) or [`take_bottom`](Self::take_bottom)).
    #[inline(always)]
    unsafe fn retire_taken(&self, r: Raw) -> V {
        match r {
            Raw::Bits(b) => V::from_bits(b),
            // SAFETY: (caller) the table's reference, alive until retired,
            // and in no slot any more.
            Raw::Ptr(p) => unsafe {
                let v = V::clone_ptr(p.as_ptr().cast());
                self.retire_value(p);
                v
            },
        }
    }

    /// Retires what a slot held, just replaced or cleared in it (as
    /// [`retire_taken`](Self::retire_taken), without making a value).
    ///
    /// # Safety
    /// As [`retire_taken`](Self::retire_taken).
    #[inline(always)]
    unsafe fn retire_raw(&self, r: Raw) {
        if let Raw::Ptr(p) = r {
            // SAFETY: (caller) the table's reference, in no slot any more.
            unsafe { self.retire_value(p) }
        }
    }

    /// A new slot word for a large value: inline, a new box, or the value's
    /// pointer, tagged (the table's reference, from now on).
    fn large_word(v: V) -> *mut Header {
        match V::STORE {
            Store::Wide => {
                let n = Node::new(Kind::Cells(1));
                // SAFETY: a fresh node of one cell. Relaxed: the box is
                // published by the Release store of its word.
                unsafe { n.cell(0).store(v.to_bits(), Relaxed) };
                Link::boxed(n)
            }
            Store::Packed => Link::inline(v.to_bits()),
            Store::Ptr => Link::shared(Self::value_ptr(v)),
        }
    }

    /// Gives `v`'s reference to the table: its pointer (published by the
    /// caller's Release store).
    #[inline]
    fn value_ptr(v: V) -> *mut Header {
        let p = v.into_ptr().cast::<Header>();
        #[cfg(loom)]
        super::node::loom_values::published(p);
        p
    }

    /// Writes `v` into slot `i` of the bottom table `t`, returning the
    /// value it replaces, as stored: for a pointer, the table's reference,
    /// which the caller retires ([`retire_taken`](Self::retire_taken)).
    /// Counts the slot in `t`'s `len`.
    ///
    /// # Safety
    /// Writer only; `t` a live bottom table, `i` below its fan-out.
    unsafe fn put_bottom(t: Node, i: usize, v: V) -> Option<Raw> {
        // SAFETY: (caller).
        unsafe {
            match V::STORE {
                Store::Wide => {
                    let bits = v.to_bits();
                    let word = t.cell(i / 64);
                    let m = 1u64 << (i % 64);
                    let w = own_load(word);
                    let cell = t.cell(Self::lv(0).words + i);
                    if w & m != 0 {
                        let old = own_load(cell);
                        // One store: readers see the old or the new value.
                        cell.store(bits, Relaxed);
                        Some(Raw::Bits(old))
                    } else {
                        // The value first, then the bit with Release: a reader
                        // that sees the bit (Acquire) sees this value.
                        cell.store(bits, Relaxed);
                        word.store(w | m, Release);
                        t.len().fetch_add(1, Relaxed);
                        None
                    }
                }
                Store::Packed => {
                    let bits = v.to_bits();
                    let cell = t.cell(i);
                    let old = own_load(cell);
                    // One store of the whole entry.
                    cell.store((bits << 1) | 1, Relaxed);
                    if old & 1 != 0 {
                        Some(Raw::Bits(old >> 1))
                    } else {
                        t.len().fetch_add(1, Relaxed);
                        None
                    }
                }
                Store::Ptr => {
                    let slot = t.link(i);
                    let old = own_load_ptr(slot);
                    // Release: publishes the value (made before) with its
                    // pointer; readers load it with Acquire.
                    slot.store(Self::value_ptr(v), Release);
                    let old = NonNull::new(old);
                    if old.is_none() {
                        t.len().fetch_add(1, Relaxed);
                    }
                    old.map(Raw::Ptr)
                }
            }
        }
    }

    /// Removes the entry in slot `i` of the bottom table `t`, returning it
    /// as stored (see [`put_bottom`](Self::put_bottom)).
    ///
    /// # Safety
    /// As [`put_bottom`](Self::put_bottom).
    unsafe fn take_bottom(t: Node, i: usize) -> Option<Raw> {
        // SAFETY: (caller).
        unsafe {
            let old = match V::STORE {
                Store::Wide => {
                    let word = t.cell(i / 64);
                    let m = 1u64 << (i % 64);
                    let w = own_load(word);
                    if w & m == 0 {
                        return None;
                    }
                    // The bit is cleared; the value stays until overwritten.
                    word.store(w & !m, Release);
                    Raw::Bits(own_load(t.cell(Self::lv(0).words + i)))
                }
                Store::Packed => {
                    let cell = t.cell(i);
                    let old = own_load(cell);
                    if old & 1 == 0 {
                        return None;
                    }
                    cell.store(0, Relaxed);
                    Raw::Bits(old >> 1)
                }
                Store::Ptr => {
                    let slot = t.link(i);
                    let old = NonNull::new(own_load_ptr(slot))?;
                    slot.store(EMPTY, Release);
                    Raw::Ptr(old)
                }
            };
            t.len().fetch_sub(1, Relaxed);
            Some(old)
        }
    }

    /// Drops the table's reference `p` now (the table is being dropped, or
    /// the value was never published).
    ///
    /// # Safety
    /// `p` is the table's reference, in no reachable slot, dropped once.
    unsafe fn drop_value(p: NonNull<Header>) {
        #[cfg(loom)]
        super::node::loom_values::released(p.as_ptr());
        // SAFETY: (caller).
        unsafe { V::drop_ptr(p.as_ptr().cast()) }
    }

    /// Frees the tree under `n` (level `l`), its boxes, and drops its
    /// references to values published by pointer, now.
    ///
    /// # Safety
    /// No reader can reach or visit it: it was never published, or the
    /// table is being dropped.
    unsafe fn free_tree(n: Node, l: usize) {
        if l > 0 {
            for i in 0..Self::lv(l).fanout {
                // SAFETY: (caller) live upper table, `i` in range.
                match Self::link_of(own_load_ptr(unsafe { n.link(i) })) {
                    // SAFETY: (caller) owned, unreachable.
                    Link::Table(c) => unsafe { Self::free_tree(c, l - 1) },
                    // SAFETY: as above.
                    Link::Boxed(b) => unsafe { b.free(Kind::Cells(1)) },
                    // SAFETY: as above: the slot's reference, dropped once.
                    Link::Shared(p) => unsafe { Self::drop_value(p) },
                    Link::Empty | Link::Inline(_) => {}
                }
            }
        } else if Self::PTR {
            for i in 0..Self::lv(0).fanout {
                // SAFETY: (caller) live bottom table of links, `i` in range.
                let w = own_load_ptr(unsafe { n.link(i) });
                if let Some(p) = NonNull::new(w) {
                    // SAFETY: the slot's reference, dropped once.
                    unsafe { Self::drop_value(p) }
                }
            }
        }
        // SAFETY: (caller).
        unsafe { n.free(Self::kind(l)) }
    }

    /// Counts the entries under `n` (level `l`), checking its invariants.
    fn check_tree(n: Node, l: usize, root: bool) -> Result<usize, String> {
        let lv = Self::lv(l);
        // SAFETY: the writer's tree: every node live.
        let len = unsafe { n.len() }.load(Relaxed);
        if !root && len == 0 {
            return Err(format!("an empty table kept at level {l}"));
        }
        if l == 0 {
            // SAFETY: as above, `i` in range.
            let present = (0..lv.fanout).filter(|&i| unsafe { Self::bottom(n, i) }.is_some()).count();
            if present != len {
                return Err(format!("bottom table counts {len}, holds {present}"));
            }
            return Ok(present);
        }
        let (mut used, mut entries) = (0, 0);
        for i in 0..lv.fanout {
            // SAFETY: as above.
            let link = Self::link_of(own_load_ptr(unsafe { n.link(i) }));
            match link {
                Link::Empty => continue,
                Link::Table(c) => entries += Self::check_tree(c, l - 1, false)?,
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                    if !lv.large {
                        return Err(format!("a large entry at level {l}, which holds none"));
                    }
                    let want = match V::STORE {
                        Store::Packed => matches!(link, Link::Inline(_)),
                        Store::Wide => matches!(link, Link::Boxed(_)),
                        Store::Ptr => matches!(link, Link::Shared(_)),
                    };
                    if !want {
                        return Err(format!("a large entry of the wrong representation at level {l}"));
                    }
                    entries += 1;
                }
            }
            used += 1;
        }
        if used != len {
            return Err(format!("table at level {l} counts {len}, uses {used}"));
        }
        Ok(entries)
    }
}

impl<V: Value, G: Geometry, R: Reclaim> Drop for MemTable<V, G, R> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader or writer is left; nodes retired
        // earlier belong to the reclaimer, not to the tree.
        unsafe { Self::free_tree(self.root, Self::TOP) }
    }
}

/// The writer: holds the table's writer lock, and has the mutating API.
/// Readers go on reading while it writes.
///
/// Every operation checks everything first, builds new tables aside, and
/// then publishes with one Release store (range operations: one per slot
/// they change, see [the module docs](super)); an error leaves the table
/// unchanged. Errors are those of [`crate::MemTable`]'s methods of the same
/// names (there is no `OutOfNodes`: tables come from the global allocator).
pub struct Writer<'t, V: Value, G: Geometry = X86_4Level, R: Reclaim = Epoch> {
    t: &'t MemTable<V, G, R>,
    _lock: MutexGuard<'t, ()>,
}

impl<V: Value, G: Geometry, R: Reclaim> core::fmt::Debug for Writer<'_, V, G, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("sync::Writer").field("len", &self.len()).finish_non_exhaustive()
    }
}

/// Checks that `addr` may carry an entry at `level`: the check of
/// `crate::MemTable`, the same rules and errors.
fn check_place<G: Geometry>(addr: u64, level: Level) -> Result<(), Error> {
    crate::table::MemTable::<(), G>::check_place(addr, level)
}

impl<'t, V: Value, G: Geometry, R: Reclaim> Writer<'t, V, G, R> {
    /// The table written to.
    pub fn table(&self) -> &'t MemTable<V, G, R> {
        self.t
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.t.len.load(Relaxed)
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn add_len(&self, n: isize) {
        let len = self.t.len.load(Relaxed);
        self.t.len.store(len.wrapping_add_signed(n), Relaxed);
    }

    /// The value covering `addr`, as the writer sees it (no guard needed:
    /// only the writer frees tables and drops values, and the borrow ends
    /// before its next write).
    pub fn get(&self, addr: u64) -> Option<V::Read<'_>> {
        self.get_key_value(addr).map(|(_, v)| v)
    }

    /// The entry covering `addr`, with its page.
    pub fn get_key_value(&self, addr: u64) -> Option<(Page, V::Read<'_>)> {
        // SAFETY: we are the writer; the value is borrowed with `self`, so
        // no write (`&mut self`) drops it meanwhile.
        unsafe { self.t.find(addr).map(|(p, r)| (p, MemTable::<V, G, R>::read(r))) }
    }

    /// Inserts `v` for the base page at `addr`, returning the value it
    /// replaces. As [`crate::MemTable::insert`]. Replacing a value is one
    /// atomic store; a new entry in an existing table is one store (values
    /// of at most 63 bits) or two (64-bit values: the value, then its
    /// presence bit); a new path of tables is built aside and linked with
    /// one store. For `Arc` values, the pointer is published with one
    /// Release store, and the old value returned is a clone of the table's
    /// reference, which is dropped once no reader can still see it.
    ///
    /// ```
    /// use mem_table::sync::MemTable;
    /// let t: MemTable<u64> = MemTable::new();
    /// let mut w = t.writer();
    /// assert_eq!(w.insert(0x1000, 1).unwrap(), None);
    /// assert_eq!(w.insert(0x1000, 2).unwrap(), Some(1));
    /// ```
    pub fn insert(&mut self, addr: u64, v: V) -> Result<Option<V>, Error<V>> {
        self.insert_at(addr, Level::BASE, v)
    }

    /// Inserts `v` as one entry of `level` at `addr`, returning the value
    /// of an entry of that level at that place that it replaces. As
    /// [`crate::MemTable::insert_at`]. A large value is one store (inline),
    /// or a new box published by one store, the old box retired (64-bit
    /// values), or the `Arc`'s pointer published by one store, the old
    /// reference retired and a clone of it returned.
    pub fn insert_at(&mut self, addr: u64, level: Level, v: V) -> Result<Option<V>, Error<V>> {
        if let Err(e) = check_place::<G>(addr, level) {
            return Err(e.with_value(v));
        }
        let lt = level.index();
        let mut t = self.t.root;
        let mut l = MemTable::<V, G, R>::TOP;
        while l > lt {
            let lv = MemTable::<V, G, R>::lv(l);
            // SAFETY: the writer's live upper table, masked index.
            let slot = unsafe { t.link(lv.index(addr)) };
            match MemTable::<V, G, R>::link_of(own_load_ptr(slot)) {
                Link::Table(c) => t = c,
                Link::Empty => {
                    let sub = self.build_path(addr, l - 1, lt, v);
                    // Release: publishes the new tables and the entry in
                    // them, all written before.
                    slot.store(Link::table(sub), Release);
                    // SAFETY: live.
                    unsafe { t.len() }.fetch_add(1, Relaxed);
                    self.add_len(1);
                    self.mark_at(addr, level);
                    return Ok(None);
                }
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                    let p = page_at(addr, l as u8, lv.shift);
                    return Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), v));
                }
            }
            l -= 1;
        }
        if lt == 0 {
            let lv = MemTable::<V, G, R>::lv(0);
            // SAFETY: the writer's live bottom table, masked index.
            let old = unsafe { MemTable::<V, G, R>::put_bottom(t, lv.index(addr), v) };
            if old.is_none() {
                self.add_len(1);
            }
            self.mark_at(addr, level);
            // SAFETY: `old` was just replaced in its slot.
            return Ok(old.map(|r| unsafe { self.t.retire_taken(r) }));
        }
        let lv = MemTable::<V, G, R>::lv(lt);
        // SAFETY: the writer's live upper table, masked index.
        let slot = unsafe { t.link(lv.index(addr)) };
        let w = own_load_ptr(slot);
        let link = MemTable::<V, G, R>::link_of(w);
        match link {
            Link::Table(_) => Err(Error::new(ErrorKind::ConflictSmaller, addr, level, v)),
            Link::Empty => {
                slot.store(MemTable::<V, G, R>::large_word(v), Release);
                // SAFETY: live.
                unsafe { t.len() }.fetch_add(1, Relaxed);
                self.add_len(1);
                self.mark_at(addr, level);
                Ok(None)
            }
            Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                // SAFETY: the writer reads its own live entry (a clone of an
                // `Arc`: the table's reference is retired below).
                let old = unsafe { MemTable::<V, G, R>::large_value(link) };
                slot.store(MemTable::<V, G, R>::large_word(v), Release);
                // SAFETY: the old box is unlinked by the store above.
                unsafe { self.t.retire_word(w) };
                self.mark_at(addr, level);
                Ok(old)
            }
        }
    }

    /// A new chain of tables from level `top` down to level `lt`, holding
    /// only `v` at `addr`. Unpublished.
    fn build_path(&mut self, addr: u64, top: usize, lt: usize, v: V) -> Node {
        let n = self.new_table(lt);
        let lv = MemTable::<V, G, R>::lv(lt);
        // SAFETY: a fresh node of level `lt`, masked index. Relaxed stores
        // throughout: the caller publishes the chain with a Release store.
        unsafe {
            if lt == 0 {
                MemTable::<V, G, R>::put_bottom(n, lv.index(addr), v);
            } else {
                n.link(lv.index(addr)).store(MemTable::<V, G, R>::large_word(v), Relaxed);
                n.len().store(1, Relaxed);
            }
        }
        let mut n = n;
        for l in lt + 1..=top {
            let p = self.new_table(l);
            // SAFETY: as above.
            unsafe {
                p.link(MemTable::<V, G, R>::lv(l).index(addr)).store(Link::table(n), Relaxed);
                p.len().store(1, Relaxed);
            }
            n = p;
        }
        n
    }

    /// Removes the base-page entry at `addr` and returns its value, as
    /// [`crate::MemTable::remove`]: a large entry covering `addr` is refused
    /// with [`ConflictLarger`](ErrorKind::ConflictLarger), the table
    /// unchanged. Published as [`remove_covering`](Self::remove_covering).
    /// An `Arc` value is returned as a clone of the table's reference, which
    /// is retired (readers still holding `&T` keep reading it).
    pub fn remove(&mut self, addr: u64) -> Result<Option<V>, Error> {
        Ok(self.remove_at_base(addr, false)?.map(|(_, v)| v))
    }

    /// Removes the entry covering `addr` (any byte address), whatever its
    /// level, and returns it, as [`crate::MemTable::remove_covering`]. The
    /// entry is cleared with one store; each table it leaves empty is then
    /// unlinked with one store and retired (readers still in it see it
    /// empty).
    pub fn remove_covering(&mut self, addr: u64) -> Option<(Page, V)> {
        if !G::in_reach(addr) {
            return None;
        }
        self.remove_at_base(addr & !((1u64 << G::PAGE_SHIFT) - 1), true).ok().flatten()
    }

    /// Removes the entry covering the base page `addr`: of whatever level
    /// with `large`, else only a base entry (a large one covering `addr` is
    /// refused, nothing written). One walk, whose loads are the writer's own
    /// (see `own_load_ptr`).
    fn remove_at_base(&mut self, addr: u64, large: bool) -> Result<Option<(Page, V)>, Error> {
        check_place::<G>(addr, Level::BASE)?;
        let mut path = [(self.t.root, 0usize); MAX_LEVELS];
        let mut depth = 0;
        let mut t = self.t.root;
        let mut l = MemTable::<V, G, R>::TOP;
        let found = loop {
            let lv = MemTable::<V, G, R>::lv(l);
            let i = lv.index(addr);
            if l == 0 {
                // SAFETY: the writer's live bottom table, masked index.
                match unsafe { MemTable::<V, G, R>::take_bottom(t, i) } {
                    None => return Ok(None),
                    // Made a value at the end, after the count is right: a
                    // panicking `from_bits` leaves the table consistent.
                    Some(r) => break (page_at(addr, 0, lv.shift), Err(r)),
                }
            }
            // SAFETY: the writer's live upper table, masked index.
            let slot = unsafe { t.link(i) };
            let w = own_load_ptr(slot);
            let link = MemTable::<V, G, R>::link_of(w);
            match link {
                Link::Empty => return Ok(None),
                Link::Table(c) => {
                    path[depth] = (t, i);
                    depth += 1;
                    t = c;
                    l -= 1;
                }
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) if !large => {
                    return Err(Error::new(
                        ErrorKind::ConflictLarger,
                        addr & !((1u64 << lv.shift) - 1),
                        Level::new(l as u8),
                        (),
                    ));
                }
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                    // SAFETY: the writer's own live entry (a clone of an
                    // `Arc`: the table's reference is retired below).
                    let v = unsafe { MemTable::<V, G, R>::large_value(link) }.expect("a large entry");
                    slot.store(EMPTY, Release);
                    // SAFETY: live; the box is unlinked by the store.
                    unsafe {
                        t.len().fetch_sub(1, Relaxed);
                        self.t.retire_word(w);
                    }
                    break (page_at(addr, l as u8, lv.shift), Ok(v));
                }
            }
        };
        self.add_len(-1);
        // Unlink the tables left empty, bottom up (never the root).
        let (mut child, mut cl) = (t, l);
        // SAFETY: `child` is live (the writer's).
        while depth > 0 && unsafe { child.len() }.load(Relaxed) == 0 {
            depth -= 1;
            let (p, pi) = path[depth];
            // SAFETY: `p` links `child` in slot `pi`; once the store is
            // done, no link to `child` is left, so it may be retired.
            unsafe {
                p.link(pi).store(EMPTY, Release);
                p.len().fetch_sub(1, Relaxed);
                self.t.retire(child, MemTable::<V, G, R>::kind(cl));
            }
            child = p;
            cl += 1;
        }
        self.mark_page(found.0);
        let v = match found.1 {
            Ok(v) => v,
            // SAFETY: cleared from its slot by `take_bottom` above.
            Err(r) => unsafe { self.t.retire_taken(r) },
        };
        Ok(Some((found.0, v)))
    }

    /// Walks down to the table of `level` on the way to `addr`, for a split
    /// or merge: the table and the slot word there. A large entry above
    /// is `ConflictLarger`; nothing on the way is `nothing`.
    fn walk_to(
        &self,
        addr: u64,
        level: usize,
        nothing: ErrorKind,
    ) -> Result<(Node, usize, *mut Header), Error> {
        let mut t = self.t.root;
        let mut l = MemTable::<V, G, R>::TOP;
        loop {
            let lv = MemTable::<V, G, R>::lv(l);
            let i = lv.index(addr);
            // SAFETY: the writer's live upper table (level >= 1), masked.
            let w = own_load_ptr(unsafe { t.link(i) });
            if l == level {
                return Ok((t, i, w));
            }
            match MemTable::<V, G, R>::link_of(w) {
                Link::Table(c) => t = c,
                Link::Empty => return Err(Error::new(nothing, addr, Level::new(level as u8), ())),
                Link::Inline(_) | Link::Boxed(_) | Link::Shared(_) => {
                    let p = page_at(addr, l as u8, lv.shift);
                    return Err(Error::new(ErrorKind::ConflictLarger, p.addr(), p.level(), ()));
                }
            }
            l -= 1;
        }
    }

    /// Splits the large entry at `(addr, level)` into a full table of
    /// entries one level down, each a copy of it. As
    /// [`crate::MemTable::split`]. For `Arc` values every sub-page shares
    /// the one value (a reference count increment each, no copy of `T`).
    pub fn split(&mut self, addr: u64, level: Level) -> Result<(), Error> {
        self.split_with(addr, level, &mut SplitByClone)
    }

    /// Splits the large entry at `(addr, level)`, asking `ops` for every
    /// sub-page's value. The new table is built aside, every slot filled,
    /// and replaces the entry with one Release store: a reader sees the
    /// large entry or the whole table. If `ops` panics, nothing changed.
    pub fn split_with<O: PageOps<V>>(&mut self, addr: u64, level: Level, ops: &mut O) -> Result<(), Error> {
        check_place::<G>(addr, level)?;
        let Some(below) = level.below() else {
            return Err(Error::new(ErrorKind::NothingToSplit, addr, level, ()));
        };
        let lt = level.index();
        let (t, i, w) = self.walk_to(addr, lt, ErrorKind::NothingToSplit)?;
        let link = MemTable::<V, G, R>::link_of(w);
        // SAFETY: the writer's own live entry.
        let Some(v) = (unsafe { MemTable::<V, G, R>::large_value(link) }) else {
            return Err(Error::new(ErrorKind::NothingToSplit, addr, level, ()));
        };
        let cl = below.index();
        let clv = MemTable::<V, G, R>::lv(cl);
        if !clv.large {
            return Err(Error::new(ErrorKind::NoEntriesAtLevel, addr, below, ()));
        }
        let page = page_at(addr, lt as u8, MemTable::<V, G, R>::lv(lt).shift);

        /// Frees the half-built table if `ops` unwinds.
        struct Aside<V: Value, G: Geometry, R: Reclaim>(Node, usize, PhantomData<MemTable<V, G, R>>);
        impl<V: Value, G: Geometry, R: Reclaim> Drop for Aside<V, G, R> {
            fn drop(&mut self) {
                // SAFETY: never published.
                unsafe { MemTable::<V, G, R>::free_tree(self.0, self.1) }
            }
        }
        let n = self.new_table(cl);
        let aside = Aside::<V, G, R>(n, cl, PhantomData);
        for j in 0..clv.fanout {
            let sub = Page::new(page.addr() + ((j as u64) << clv.shift), cl as u8, clv.shift);
            let sv = ops.split(page, &v, sub);
            // SAFETY: the fresh node of level `cl`, `j` in range; Relaxed,
            // published by the Release store below.
            unsafe {
                if cl == 0 {
                    MemTable::<V, G, R>::put_bottom(n, j, sv);
                } else {
                    n.link(j).store(MemTable::<V, G, R>::large_word(sv), Relaxed);
                    n.len().fetch_add(1, Relaxed);
                }
            }
        }
        core::mem::forget(aside);
        // SAFETY: the writer's live table, `i` in range.
        unsafe { t.link(i) }.store(Link::table(n), Release);
        // SAFETY: the old box, if any, is unlinked by the store above.
        unsafe { self.t.retire_word(w) };
        self.add_len(clv.fanout as isize - 1);
        self.mark_page(page);
        Ok(())
    }

    /// Merges the full table under `(addr, level)` into one entry when all
    /// its entries are equal. As [`crate::MemTable::merge`].
    pub fn merge(&mut self, addr: u64, level: Level) -> Result<(), Error>
    where
        V: PartialEq,
    {
        self.merge_with(addr, level, &mut CloneOps)
    }

    /// Merges the full table under `(addr, level)` as `ops` decides. The
    /// large entry's word is made first and replaces the link with one
    /// Release store; then the table (and its boxes, or its references to
    /// `Arc` values, retired with it as one item) are retired: readers still
    /// in it see the values from before the merge.
    pub fn merge_with<O: PageOps<V>>(&mut self, addr: u64, level: Level, ops: &mut O) -> Result<(), Error> {
        check_place::<G>(addr, level)?;
        let not = || Error::new(ErrorKind::NotMergeable, addr, level, ());
        if level == Level::BASE {
            return Err(not());
        }
        let lt = level.index();
        let (t, i, w) = self.walk_to(addr, lt, ErrorKind::NotMergeable)?;
        let Link::Table(c) = MemTable::<V, G, R>::link_of(w) else { return Err(not()) };
        let cl = lt - 1;
        let clv = MemTable::<V, G, R>::lv(cl);
        // SAFETY: the writer's live child.
        if unsafe { c.len() }.load(Relaxed) != clv.fanout {
            return Err(not());
        }
        let mut values = Vec::with_capacity(clv.fanout);
        for j in 0..clv.fanout {
            // SAFETY: the writer's live child, `j` in range.
            let v = unsafe {
                if cl == 0 {
                    MemTable::<V, G, R>::bottom(c, j).map(|r| MemTable::<V, G, R>::owned(r))
                } else {
                    MemTable::<V, G, R>::large_value(MemTable::<V, G, R>::link_of(own_load_ptr(c.link(j))))
                }
            };
            match v {
                Some(v) => values.push(v),
                None => return Err(not()),
            }
        }
        let page = page_at(addr, lt as u8, MemTable::<V, G, R>::lv(lt).shift);
        let mut it = values.iter();
        let Some(m) = ops.merge(page, Children::new(&mut it, clv.fanout)) else { return Err(not()) };
        // SAFETY: the writer's live table, `i` in range.
        unsafe { t.link(i) }.store(MemTable::<V, G, R>::large_word(m), Release);
        // `c` is unlinked: retire its boxes, then itself; or itself with its
        // references to values published by pointer (one item).
        if MemTable::<V, G, R>::PTR {
            let ptrs = (0..clv.fanout)
                .filter_map(|j| {
                    // SAFETY: `c` is the writer's, `j` in range.
                    let w = own_load_ptr(unsafe { c.link(j) });
                    if cl == 0 {
                        NonNull::new(w)
                    } else if let Link::Shared(p) = MemTable::<V, G, R>::link_of(w) {
                        Some(p)
                    } else {
                        None
                    }
                })
                .collect();
            let kind = MemTable::<V, G, R>::kind(cl);
            // SAFETY: unlinked by the store above, with every reference in it.
            unsafe {
                let r = Retired::node_and_values(c, kind, ptrs, V::drop_ptr, V::HEAP_BYTES, &self.t.stats);
                self.t.reclaim.retire(r);
            }
            self.add_len(1 - clv.fanout as isize);
            self.mark_page(page);
            return Ok(());
        }
        if cl > 0 {
            for j in 0..clv.fanout {
                // SAFETY: `c` is still allocated (retired below, after);
                // its boxes are reachable only through it.
                unsafe { self.t.retire_word(own_load_ptr(c.link(j))) };
            }
        }
        // SAFETY: unlinked by the store above.
        unsafe { self.t.retire(c, MemTable::<V, G, R>::kind(cl)) };
        self.add_len(1 - clv.fanout as isize);
        self.mark_page(page);
        Ok(())
    }

    /// Checks every structural invariant (counts, no empty table kept,
    /// large entries only where the geometry allows, the entry count).
    /// For tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        let n = MemTable::<V, G, R>::check_tree(self.t.root, MemTable::<V, G, R>::TOP, true)?;
        if n != self.len() {
            return Err(format!("len {} but {n} entries", self.len()));
        }
        Ok(())
    }
}

/// One level of an [`Iter`]'s position.
#[derive(Clone, Copy)]
struct Frame {
    node: Node,
    /// Address of the node's slot 0.
    base: u64,
    /// The next slot to look at.
    idx: usize,
}

/// Entries in ascending address order, read under a guard: from
/// [`MemTable::iter`] and [`MemTable::range`].
///
/// # Invariants
/// `frames[level..=TOP]` are the nodes of the current path, each loaded
/// from its parent's link once, under the guard borrowed for `'g`.
pub struct Iter<'g, V: Value, G: Geometry = X86_4Level, R: Reclaim = Epoch> {
    frames: [Frame; MAX_LEVELS],
    level: usize,
    lo: u64,
    hi: u64,
    done: bool,
    _marker: PhantomData<(&'g MemTable<V, G, R>, &'g ())>,
}

impl<'g, V: Value, G: Geometry, R: Reclaim> Iterator for Iter<'g, V, G, R> {
    type Item = (Page, V::Read<'g>);

    #[inline]
    fn next(&mut self) -> Option<(Page, V::Read<'g>)> {
        // SAFETY: read under the guard borrowed for `'g` (invariant).
        self.next_raw().map(|(p, r)| (p, unsafe { MemTable::<V, G, R>::read(r) }))
    }
}

impl<V: Value, G: Geometry, R: Reclaim> Iter<'_, V, G, R> {
    /// The next entry, as stored: valid under the guard the iterator
    /// borrows.
    fn next_raw(&mut self) -> Option<(Page, Raw)> {
        let top = MemTable::<V, G, R>::TOP;
        while !self.done {
            let l = self.level;
            let lv = MemTable::<V, G, R>::lv(l);
            let f = self.frames[l];
            if f.idx >= lv.fanout {
                if l == top {
                    self.done = true;
                    break;
                }
                self.level += 1;
                self.frames[l + 1].idx += 1;
                continue;
            }
            let a = f.base + ((f.idx as u64) << lv.shift);
            if a > self.hi {
                self.done = true;
                break;
            }
            self.frames[l].idx += 1;
            if l == 0 {
                // SAFETY: `f.node` is live under the guard (invariant),
                // `f.idx` below the fan-out.
                if let Some(r) = unsafe { MemTable::<V, G, R>::bottom(f.node, f.idx) } {
                    return Some((Page::new(a, 0, lv.shift), r));
                }
                continue;
            }
            // SAFETY: as above.
            let link = MemTable::<V, G, R>::link_of(unsafe {
                f.node.visit();
                f.node.link(f.idx).load(Acquire)
            });
            match link {
                Link::Empty => {}
                Link::Table(c) => {
                    let clv = MemTable::<V, G, R>::lv(l - 1);
                    let idx = if a < self.lo { clv.index(self.lo) } else { 0 };
                    // The slot is passed when the child is done.
                    self.frames[l].idx = f.idx;
                    self.frames[l - 1] = Frame { node: c, base: a, idx };
                    self.level = l - 1;
                }
                large => {
                    // SAFETY: loaded from a live table under the guard.
                    return unsafe { MemTable::<V, G, R>::large_raw(large) }
                        .map(|r| (Page::new(a, l as u8, lv.shift), r));
                }
            }
        }
        None
    }
}
