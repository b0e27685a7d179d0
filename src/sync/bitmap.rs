//! [`PageBitmap`]: a concurrent dirty-page bitmap, one bit per base page,
//! in a sparse radix table of the geometry's shape. Its docs state the
//! representation, the protocols and their orderings.

#[cfg(feature = "vm-memory")]
mod vm;

use alloc::vec::Vec;
use core::marker::PhantomData;
use core::ops::{Bound, Range, RangeBounds};
use core::sync::atomic::AtomicUsize;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::node::{EMPTY, Header, Kind, Link, Node};
use super::prim::{AtomicPtr, own_load_ptr};
use crate::error::{Error, ErrorKind};
use crate::geometry::{Geometry, MAX_LEVELS, ValidGeometry, X86_4Level};
use crate::page::Level;
use crate::raw::layout::{Info, Lv};

#[cfg(feature = "vm-memory")]
pub use vm::PageBitmapSlice;

/// How a walk reads each bottom word.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// `Acquire` loads; nothing changes.
    Peek,
    /// Takes the bits: swap (or `fetch_and` for part of a word).
    Take,
    /// The unsound harvest of the loom negative control: a load, then a
    /// store of the word without the bits.
    #[cfg(loom)]
    LoadStore,
}

/// A concurrent dirty-page bitmap: one bit per base page, in a sparse
/// radix table of the geometry's shape.
///
/// Any number of threads mark pages through `&self` (an atomic OR into a
/// bit word); any thread harvests through `&self` (an atomic swap of each
/// word with zero), in address order, as pages, runs or a KVM-layout
/// bitmap. Marking never waits for the harvester or for another marker:
/// there is no lock (only the first mark under a missing table calls the
/// global allocator, for the table).
///
/// ```
/// use mem_table::sync::PageBitmap;
///
/// let dirty: PageBitmap = PageBitmap::new();
/// std::thread::scope(|s| {
///     for t in 0..2u64 {
///         let dirty = &dirty;
///         s.spawn(move || {
///             dirty.mark(0x1000 * (1 + t)).unwrap();                   // one page
///             dirty.mark_range(0x40_0fff + t..0x40_1001 + t).unwrap(); // every page it touches
///         });
///     }
/// });
/// assert_eq!(dirty.count(), 4);
/// assert_eq!(dirty.take_runs(), [0x1000..0x3000, 0x40_0000..0x40_2000]);
/// assert_eq!(dirty.count(), 0); // harvested: the bits are clear, the tables stay
///
/// dirty.mark(0x3f_f000).unwrap();
/// let mut log = [0u64; 2]; // KVM_GET_DIRTY_LOG's layout: bit i = page base + i * 4 KiB
/// assert_eq!(dirty.take_bitmap(0x3c_0000, &mut log).unwrap(), 1);
/// assert_eq!(log, [1 << 63, 0]);
/// ```
///
/// # Representation
///
/// The tables of [`MemTable`](super::MemTable) for the geometry `G`: upper
/// tables are `fan-out` `AtomicPtr` links (null, or a child table); a
/// bottom table is `fan-out / 64` `AtomicU64` words, bit `i` for its page
/// `i` (with [`X86_4Level`]: 512 pages, 8 words, 64 bytes plus an 8-byte
/// header, per 2 MiB). The root table always exists; a table below it
/// exists once a page under it has been marked.
///
/// Tables are never freed while the bitmap is shared: a harvest clears bits
/// and leaves the tables, which the next round of marks reuses (a VMM's
/// dirty set comes back to the same regions). [`clear`](PageBitmap::clear)
/// (with `&mut self`) and drop free them. So there is no reclamation to
/// prove, and no reclaimer parameter: every link, once published, stays
/// valid for as long as anyone can reach the bitmap through `&self`.
///
/// # Protocols and their memory orderings
///
/// - **Table creation** (a marker finds a null link): the marker allocates
///   a zeroed table (nothing in it needs more: an empty table is all zero)
///   and publishes it with one `compare_exchange(null, table)`, `Release`
///   on success, so that the table's initialisation happens before any
///   access by a thread that acquires the link. On failure (another marker
///   published first) the exchange is `Acquire`, so the loser acquires the
///   winner's table, uses it, and frees its own, which nobody else ever
///   saw. Every walk loads links with `Acquire`. A link never changes again
///   while the bitmap is shared.
/// - **Mark**: `fetch_or(bit, Release)` on the page's word, always (never
///   "skip if the bit is already set"). The `Release` makes what the marker
///   did before marking (the guest's write to the page) visible to a
///   harvester whose swap reads this mark. The read-modify-write matters:
///   all RMWs of a word are in one modification order, so each mark is
///   either before a harvest's swap (the swap returns it and acquires it)
///   or after it (the bit stays set for the next harvest). A marker that
///   only *loaded* the bit and skipped would have nothing for the
///   harvester to acquire: the harvester could clear the bit, copy the page
///   without the marker's write, and never hear of it again (the loom
///   models include that negative control).
/// - **Harvest**: per word, a `Relaxed` load that skips zero words, then
///   `swap(0, AcqRel)` (`fetch_and(!mask, AcqRel)` for the partial words at
///   the ends of a range). The skip loses nothing: a mark the load did not
///   see is still set in the word (only a harvest clears bits), and a
///   later harvest takes it (one that the mark happens before always
///   does: see next); a mark
///   that *happens before* the harvest (the marker joined, or signalled
///   the harvester) is always seen by the load (coherence), so it is taken
///   by this harvest (or by a concurrent one that took the bit first).
///   The `Acquire` half pairs with the marks' `Release` (above); the
///   `Release` half publishes the harvester's earlier writes to a thread
///   that later reads the word with `Acquire` (for instance
///   [`is_marked`](PageBitmap::is_marked)). A load followed by a store of
///   zero instead of the swap would lose a mark that lands between them
///   (a loom negative control fails on it). Harvests may run on several
///   threads at once: each set bit goes to exactly one of them.
/// - **Peek** ([`is_marked`](PageBitmap::is_marked),
///   [`count`](PageBitmap::count), [`pages`](PageBitmap::pages)): `Acquire`
///   loads; not a snapshot across words.
///
/// # Addresses beyond the tracked range
///
/// [`new`](PageBitmap::new) tracks the geometry's whole reach;
/// [`with_limit`](PageBitmap::with_limit) tracks `[0, limit)` (vm-memory's
/// `with_len`). [`mark`](PageBitmap::mark) and
/// [`mark_range`](PageBitmap::mark_range) refuse an address beyond it with
/// [`ErrorKind::OutOfReach`] (the whole range is refused, nothing marked);
/// [`mark_len`](PageBitmap::mark_len) and vm-memory's infallible
/// `Bitmap::mark_dirty` mark the pages inside and ignore the rest, as
/// vm-memory's `AtomicBitmap` does. Harvests and peeks of pages beyond it
/// find nothing, and [`take_bitmap`](PageBitmap::take_bitmap) writes them
/// as clear (it refuses only a span past the geometry's reach).
/// Allocation failure aborts (`handle_alloc_error`).
///
/// # vm-memory
///
/// With the `vm-memory` feature, `PageBitmap` implements vm-memory's
/// `Bitmap` and `NewBitmap`, and [`PageBitmapSlice`] is its `BitmapSlice`
/// (the bitmap and an offset), so `GuestMemoryMmap<PageBitmap>` tracks
/// guest writes in it. As with vm-memory's `AtomicBitmap`, each region
/// then has its own bitmap, keyed by the offset in the region (add the
/// region's start to a harvested address for the guest physical address),
/// at the geometry's page size (4 KiB with [`X86_4Level`], where
/// `AtomicBitmap::with_len` takes the host's).
///
/// # Complexity
///
/// A mark is one `Acquire` load per upper level and one RMW, plus one
/// allocation and compare-exchange per table the first time a page under
/// it is marked. [`mark_range`](PageBitmap::mark_range) walks once per
/// bottom table and does one RMW per word. A harvest or peek of a range is
/// O(tables and words of the range that exist): missing tables are
/// skipped whole. Memory is one bottom table per 2 MiB region ever marked
/// (72 bytes with [`X86_4Level`]) and one upper table (4 KiB + 8) per
/// 1 GiB and per 512 GiB region: [`bytes`](PageBitmap::bytes).
///
/// # Invariants
/// - `root` is a live table of `Self::kind(TOP)` that lives as long as
///   the bitmap;
/// - a non-null link in a table of level `l > 0` reachable from `root`
///   points to a live table of `kind(l - 1)`, published by a successful
///   `Release` compare-exchange of a null link; while the bitmap is shared
///   (any `&self`) a link is never changed once non-null and no table is
///   freed: tables are freed only with `&mut self` ([`clear`](Self::clear))
///   or on drop;
/// - links hold only null or untagged table pointers; bits of a bottom
///   word past the table's fan-out (geometries with fewer than 64 pages per
///   bottom table) and pages past `last` are never set;
/// - `tables[l]` counts the live tables of level `l`, root included.
pub struct PageBitmap<G: Geometry = X86_4Level> {
    root: Node,
    /// The last page number tracked, or `None` when nothing is.
    last: Option<u64>,
    tables: [AtomicUsize; MAX_LEVELS],
    /// The loom negative control: publish new tables with `Relaxed`.
    #[cfg(loom)]
    relaxed_publish: bool,
    _marker: PhantomData<fn() -> G>,
}

// SAFETY: the bitmap owns its tables; everything threads share in them is
// atomic, and tables are only freed with `&mut self` or on drop.
unsafe impl<G: Geometry> Send for PageBitmap<G> {}
// SAFETY: as above: `&self` gives only atomic loads, RMWs, and
// compare-exchanges of null links with fresh tables.
unsafe impl<G: Geometry> Sync for PageBitmap<G> {}

impl<G: Geometry> Default for PageBitmap<G> {
    fn default() -> Self {
        Self::new()
    }
}

impl<G: Geometry> core::fmt::Debug for PageBitmap<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageBitmap")
            .field("last_addr", &self.last_addr())
            .field("tables", &self.tables())
            .finish_non_exhaustive()
    }
}

/// The bits `lo..=hi` of a word.
#[inline(always)]
fn bits(lo: u64, hi: u64) -> u64 {
    debug_assert!(lo <= hi && hi < 64);
    (u64::MAX >> (63 - hi)) & (u64::MAX << lo)
}

impl<G: Geometry> PageBitmap<G> {
    const TOP: usize = G::LEVELS - 1;
    const PS: u32 = G::PAGE_SHIFT;

    #[inline(always)]
    fn lv(l: usize) -> &'static Lv {
        Info::<u64, G>::lv(l)
    }

    /// The kind of a table at level `l`.
    #[inline(always)]
    fn kind(l: usize) -> Kind {
        let lv = Self::lv(l);
        if l == 0 { Kind::Cells(lv.words) } else { Kind::Links(lv.fanout) }
    }

    /// log2 of the pages one slot of a level-`l` table spans.
    #[inline(always)]
    fn slot_shift(l: usize) -> u32 {
        Self::lv(l).shift - Self::PS
    }

    /// The last page number of the geometry's reach.
    const fn reach_last() -> u64 {
        let bits = G::ADDRESS_BITS - G::PAGE_SHIFT;
        if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 }
    }

    /// An empty bitmap over the geometry's whole reach (`2^ADDRESS_BITS`
    /// bytes). Allocates the root table only.
    pub fn new() -> Self {
        let () = <G as ValidGeometry>::VALID;
        let tables = core::array::from_fn(|l| AtomicUsize::new((l == Self::TOP) as usize));
        PageBitmap {
            root: Node::new(Self::kind(Self::TOP)),
            last: Some(Self::reach_last()),
            tables,
            #[cfg(loom)]
            relaxed_publish: false,
            _marker: PhantomData,
        }
    }

    /// An empty bitmap over the bytes `[0, limit)` (clipped to the
    /// geometry's reach): the pages they touch. Marks beyond are refused or
    /// ignored (see [`PageBitmap`'s docs](PageBitmap#addresses-beyond-the-tracked-range)).
    ///
    /// ```
    /// use mem_table::{ErrorKind, sync::PageBitmap};
    /// let b: PageBitmap = PageBitmap::with_limit(0x1800); // pages 0 and 1
    /// assert_eq!(b.last_addr(), Some(0x1fff));
    /// assert_eq!(b.mark(0x2000).unwrap_err().kind(), ErrorKind::OutOfReach);
    /// assert_eq!(b.mark_len(0x1000, 0x4000), 1); // page 1; the rest ignored
    /// ```
    pub fn with_limit(limit: u64) -> Self {
        let mut b = Self::new();
        b.last = limit.checked_sub(1).map(|a| (a >> Self::PS).min(Self::reach_last()));
        b
    }

    /// The last byte address tracked, or `None` if none is.
    pub fn last_addr(&self) -> Option<u64> {
        self.last.map(|p| (p << Self::PS) | ((1u64 << Self::PS) - 1))
    }

    /// Tables allocated, the root included (they are kept until
    /// [`clear`](Self::clear) or drop).
    pub fn tables(&self) -> usize {
        self.tables.iter().map(|t| t.load(Relaxed)).sum()
    }

    /// Bytes of the tables allocated (their layouts; not the allocator's
    /// overhead, nor the `PageBitmap` itself).
    pub fn bytes(&self) -> usize {
        (0..G::LEVELS).map(|l| self.tables[l].load(Relaxed) * Self::kind(l).layout().size()).sum()
    }

    // ---- marking -------------------------------------------------------

    /// The bottom table of page `p`, creating the missing tables on its
    /// path if `create`.
    #[inline(always)]
    fn bottom(&self, p: u64, create: bool) -> Option<Node> {
        let addr = p << Self::PS;
        let mut t = self.root;
        for l in (1..=Self::TOP).rev() {
            // SAFETY: `t` is live (the root, or linked; nothing is freed
            // under `&self`), of `kind(l)`; the index is masked to the
            // fan-out. (The visit is loom's check that the table's creation
            // happens before this access.)
            let slot = unsafe {
                t.visit();
                t.link(Self::lv(l).index(addr))
            };
            // Acquire: pairs with the Release of the exchange that
            // published the child, so its initialisation is visible.
            t = match Link::of(slot.load(Acquire)) {
                Link::Table(c) => c,
                Link::Empty if create => self.publish(slot, l - 1),
                Link::Empty => return None,
                _ => unreachable!("a bitmap link holds tables only"),
            };
        }
        // SAFETY: as above.
        unsafe { t.visit() };
        Some(t)
    }

    /// Creates a table of level `l` and links it into the null `slot`, or
    /// returns the table another thread linked there first.
    #[cold]
    fn publish(&self, slot: &AtomicPtr<Header>, l: usize) -> Node {
        let n = Node::new(Self::kind(l));
        // Release on success: the table's (zero) initialisation happens
        // before every access through an Acquire load of the link. Acquire
        // on failure: the winner's table, likewise.
        #[cfg(not(loom))]
        let (ok, failed) = (Release, Acquire);
        #[cfg(loom)]
        let (ok, failed) = if self.relaxed_publish { (Relaxed, Relaxed) } else { (Release, Acquire) };
        match slot.compare_exchange(EMPTY, Link::table(n), ok, failed) {
            Ok(_) => {
                self.tables[l].fetch_add(1, Relaxed);
                n
            }
            Err(w) => {
                // SAFETY: `n` was never published: only this thread has it.
                unsafe { n.free(Self::kind(l)) };
                match Link::of(w) {
                    Link::Table(c) => c,
                    _ => unreachable!("a bitmap link holds tables only"),
                }
            }
        }
    }

    /// ORs `m` into word `w` of the bottom table `t`; returns the pages
    /// newly set.
    ///
    /// # Safety
    /// `t` is a live bottom table and `w` below its word count.
    #[inline(always)]
    unsafe fn or_word(t: Node, w: usize, m: u64) -> u64 {
        // SAFETY: (caller). Release: see the type's docs (Mark).
        let old = unsafe { t.cell(w) }.fetch_or(m, Release);
        (m & !old).count_ones() as u64
    }

    /// Marks the pages `p0..=p1` (tracked, `p0 <= p1`); returns the pages
    /// newly marked. One walk per bottom table.
    fn mark_pages(&self, p0: u64, p1: u64) -> u64 {
        let fanout = Self::lv(0).fanout as u64;
        let mut new = 0;
        let mut p = p0;
        loop {
            let base = p & !(fanout - 1);
            let end = p1.min(base + (fanout - 1));
            let t = self.bottom(p, true).expect("created");
            let (i0, i1) = (p - base, end - base);
            for w in i0 / 64..=i1 / 64 {
                let m = bits(i0.max(w * 64) - w * 64, i1.min(w * 64 + 63) - w * 64);
                // SAFETY: `t` is a live bottom table; `w <= i1 / 64` is a
                // word of it (`i1 < fanout`).
                new += unsafe { Self::or_word(t, w as usize, m) };
            }
            if end == p1 {
                return new;
            }
            p = end + 1;
        }
    }

    fn out_of_reach(addr: u64) -> Error {
        Error::new(ErrorKind::OutOfReach, addr, Level::BASE, ())
    }

    /// Marks the page that holds `addr` (any byte address); returns whether
    /// it was not marked before. Never waits: one RMW, plus the first time
    /// a table on the path is needed, its creation.
    ///
    /// # Errors
    /// [`OutOfReach`](ErrorKind::OutOfReach) if `addr` is beyond the
    /// tracked range (nothing marked).
    #[inline]
    pub fn mark(&self, addr: u64) -> Result<bool, Error> {
        let p = addr >> Self::PS;
        if self.last.is_none_or(|last| p > last) {
            return Err(Self::out_of_reach(addr));
        }
        let t = self.bottom(p, true).expect("created");
        let i = p & (Self::lv(0).fanout as u64 - 1);
        // SAFETY: a live bottom table; `i / 64` is below its word count.
        Ok(unsafe { Self::or_word(t, (i / 64) as usize, 1 << (i % 64)) } != 0)
    }

    /// Marks every page that the byte range touches (KVM's and vm-memory's
    /// semantics: `0xfff..0x1001` marks pages 0 and 1); returns the pages
    /// newly marked. An empty range marks nothing.
    ///
    /// # Errors
    /// Nothing marked: [`EmptyRange`](ErrorKind::EmptyRange) if the range is
    /// reversed, [`OutOfReach`](ErrorKind::OutOfReach) (with the first
    /// address beyond the tracked range) if it reaches past it.
    pub fn mark_range<Q: RangeBounds<u64>>(&self, range: Q) -> Result<u64, Error> {
        let lo = match range.start_bound() {
            Bound::Included(&a) => Some(a),
            Bound::Excluded(&a) => a.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let hi = match range.end_bound() {
            Bound::Included(&a) => Some(a),
            Bound::Excluded(&a) => a.checked_sub(1),
            Bound::Unbounded => self.last_addr(),
        };
        let (lo, hi) = match (lo, hi) {
            (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
            (Some(lo), Some(hi)) if lo - hi == 1 => return Ok(0),
            (None, _) | (_, None) => return Ok(0),
            (Some(lo), Some(_)) => return Err(Error::new(ErrorKind::EmptyRange, lo, Level::BASE, ())),
        };
        match self.last_addr() {
            Some(last) if hi <= last => Ok(self.mark_pages(lo >> Self::PS, hi >> Self::PS)),
            Some(last) => Err(Self::out_of_reach(lo.max(last + 1))),
            None => Err(Self::out_of_reach(lo)),
        }
    }

    /// Marks every tracked page that the `len` bytes at `addr` touch, and
    /// ignores the rest (beyond the tracked range, or past `u64::MAX`):
    /// vm-memory's `mark_dirty`. Returns the pages newly marked.
    pub fn mark_len(&self, addr: u64, len: u64) -> u64 {
        let Some(last) = self.last else { return 0 };
        if len == 0 || addr >> Self::PS > last {
            return 0;
        }
        let end = addr.saturating_add(len - 1) >> Self::PS;
        self.mark_pages(addr >> Self::PS, end.min(last))
    }

    // ---- peeking -------------------------------------------------------

    /// Whether the page that holds `addr` is marked (an `Acquire` load;
    /// `false` beyond the tracked range).
    #[inline]
    pub fn is_marked(&self, addr: u64) -> bool {
        let p = addr >> Self::PS;
        if self.last.is_none_or(|last| p > last) {
            return false;
        }
        let Some(t) = self.bottom(p, false) else { return false };
        let i = p & (Self::lv(0).fanout as u64 - 1);
        // SAFETY: a live bottom table; `i / 64` is below its word count.
        unsafe { t.cell((i / 64) as usize) }.load(Acquire) & (1 << (i % 64)) != 0
    }

    /// The number of marked pages: a scan of every bottom table (O(tables)),
    /// not a snapshot while marks or harvests run.
    pub fn count(&self) -> u64 {
        let mut n = 0;
        self.walk_all(Read::Peek, &mut |_, w| n += w.count_ones() as u64);
        n
    }

    /// The marked pages' addresses, ascending, left marked (not a snapshot
    /// while marks or harvests run).
    pub fn pages(&self) -> Vec<u64> {
        let mut v = Vec::new();
        self.walk_all(Read::Peek, &mut |a, w| push_pages::<G>(&mut v, a, w));
        v
    }

    // ---- harvesting ----------------------------------------------------

    /// Takes the marked pages of the byte range `range` (clipped to the
    /// tracked range): clears their bits and calls `f(addr, bits)` once per
    /// non-zero bottom word in ascending order, bit `i` of `bits` for the
    /// page at `addr + (i << PAGE_SHIFT)`. Returns the pages taken.
    ///
    /// Each word is taken with one atomic swap (or `fetch_and` at the ends
    /// of the range): a concurrent mark lands in this harvest or stays for
    /// the next, never lost, never doubled.
    pub fn take_words<Q: RangeBounds<u64>>(&self, range: Q, mut f: impl FnMut(u64, u64)) -> u64 {
        let mut n = 0;
        if let Some((p0, p1)) = self.pages_of(&range) {
            self.walk(self.root, Self::TOP, 0, p0, p1, Read::Take, &mut |a, w| {
                n += w.count_ones() as u64;
                f(a, w)
            });
        }
        n
    }

    /// Takes every marked page: their addresses, ascending.
    pub fn take_pages(&self) -> Vec<u64> {
        let mut v = Vec::new();
        self.take_words(.., |a, w| push_pages::<G>(&mut v, a, w));
        v
    }

    /// Takes every marked page, as maximal runs of consecutive pages
    /// (byte ranges), ascending.
    pub fn take_runs(&self) -> Vec<Range<u64>> {
        let mut v: Vec<Range<u64>> = Vec::new();
        self.take_words(.., |a, mut w| {
            while w != 0 {
                let i = w.trailing_zeros();
                let len = (w >> i).trailing_ones();
                let start = a + ((i as u64) << Self::PS);
                let end = start + ((len as u64) << Self::PS);
                match v.last_mut() {
                    Some(r) if r.end == start => r.end = end,
                    _ => v.push(start..end),
                }
                w = if i + len >= 64 { 0 } else { w & (u64::MAX << (i + len)) };
            }
        });
        v
    }

    /// Takes the marked pages of `out`'s span into `out` in KVM layout
    /// (`KVM_GET_DIRTY_LOG`, [`PageSet::write_bitmap`](crate::PageSet::write_bitmap)):
    /// bit `i` of `out[w]` is set exactly when the page at
    /// `base + (64 w + i) << PAGE_SHIFT` was marked; those bits are cleared.
    /// `out` is overwritten. Returns the pages taken. Pages of the span
    /// beyond the tracked range read as clear (a region of a length that is
    /// not a multiple of 64 pages still has whole words).
    ///
    /// # Errors
    /// Nothing taken, `out` unchanged: [`Misaligned`](ErrorKind::Misaligned)
    /// if `base` is not page-aligned; [`OutOfReach`](ErrorKind::OutOfReach)
    /// (with the first address beyond) if `out`'s span runs past the
    /// geometry's reach.
    pub fn take_bitmap(&self, base: u64, out: &mut [u64]) -> Result<u64, Error> {
        if base & ((1u64 << Self::PS) - 1) != 0 {
            return Err(Error::new(ErrorKind::Misaligned, base, Level::BASE, ()));
        }
        let b = base >> Self::PS;
        if out.is_empty() {
            return Ok(0);
        }
        let last = (out.len() as u64).checked_mul(64).and_then(|n| b.checked_add(n - 1));
        match last {
            Some(p1) if p1 <= Self::reach_last() => {
                out.fill(0);
                let mut n = 0;
                let Some(p1) = self.last.map(|l| l.min(p1)).filter(|&p1| p1 >= b) else { return Ok(0) };
                self.walk(self.root, Self::TOP, 0, b, p1, Read::Take, &mut |a, w| {
                    n += w.count_ones() as u64;
                    // The first word may start before `base`: its bits
                    // below `base` were masked off by the walk.
                    let ap = a >> Self::PS;
                    if ap >= b { scatter(out, ap - b, w) } else { scatter(out, 0, w >> (b - ap)) }
                });
                Ok(n)
            }
            _ => Err(Self::out_of_reach(base.max(Self::reach_last().wrapping_add(1) << Self::PS))),
        }
    }

    /// The tracked page numbers of a byte range, or `None` if it has none.
    fn pages_of<Q: RangeBounds<u64>>(&self, range: &Q) -> Option<(u64, u64)> {
        let last = self.last?;
        let lo = match range.start_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_sub(1)?,
            Bound::Unbounded => u64::MAX,
        };
        let (p0, p1) = (lo >> Self::PS, (hi >> Self::PS).min(last));
        (lo <= hi && p0 <= p1).then_some((p0, p1))
    }

    fn walk_all(&self, how: Read, f: &mut impl FnMut(u64, u64)) {
        if let Some(last) = self.last {
            self.walk(self.root, Self::TOP, 0, 0, last, how, f);
        }
    }

    /// Visits the words of pages `p0..=p1` under table `t` (level `l`,
    /// first page `base`), ascending, reading each as `how` says; calls
    /// `f(addr, bits)` for each non-zero result.
    #[allow(clippy::too_many_arguments)]
    fn walk(&self, t: Node, l: usize, base: u64, p0: u64, p1: u64, how: Read, f: &mut impl FnMut(u64, u64)) {
        let lv = Self::lv(l);
        let s = Self::slot_shift(l);
        // SAFETY: `t` is live (the root, or a table whose link the caller
        // loaded; nothing is freed under `&self`). Loom's check, as in
        // `bottom`.
        unsafe { t.visit() };
        // The table's last page, without overflow for a 64-bit reach.
        let span_last = ((lv.fanout as u64 - 1) << s) | ((1u64 << s) - 1);
        if p1 < base || p0 > base + span_last {
            return;
        }
        let (lo, hi) = (p0.max(base) - base, p1.min(base + span_last) - base);
        if l > 0 {
            for i in lo >> s..=hi >> s {
                // SAFETY: `t` is live, of `kind(l)`; `i` is below its
                // fan-out (`hi <= span_last`). Acquire: as in `bottom`.
                let w = unsafe { t.link(i as usize) }.load(Acquire);
                match Link::of(w) {
                    Link::Table(c) => self.walk(c, l - 1, base + (i << s), p0, p1, how, f),
                    Link::Empty => {}
                    _ => unreachable!("a bitmap link holds tables only"),
                }
            }
            return;
        }
        let (w0, w1) = (lo / 64, hi / 64);
        for w in w0..=w1 {
            // Whole words between the ends (the common case: a harvest of
            // everything); masked words at the ends.
            let m = if w != w0 && w != w1 {
                u64::MAX
            } else {
                bits(lo.max(w * 64) - w * 64, hi.min(w * 64 + 63) - w * 64)
            };
            // SAFETY: `t` is a live bottom table; `w <= hi / 64` is one of
            // its words (`hi < fanout`).
            let cell = unsafe { t.cell(w as usize) };
            let got = match how {
                Read::Peek => cell.load(Acquire) & m,
                // A zero word has nothing to take; a mark after this load
                // stays in the word for the next harvest.
                Read::Take if cell.load(Relaxed) & m == 0 => 0,
                Read::Take if m == u64::MAX => cell.swap(0, AcqRel),
                Read::Take => cell.fetch_and(!m, AcqRel) & m,
                #[cfg(loom)]
                Read::LoadStore => {
                    let v = cell.load(Acquire);
                    cell.store(v & !m, Release);
                    v & m
                }
            };
            if got != 0 {
                f((base + w * 64) << Self::PS, got);
            }
        }
    }

    // ---- owner ---------------------------------------------------------

    /// Unmarks every page and frees every table but the root (`&mut self`:
    /// nobody else can be in the bitmap).
    pub fn clear(&mut self) {
        if Self::TOP == 0 {
            for w in 0..Self::lv(0).words {
                // SAFETY: the root is a live bottom table; `w` is a word.
                unsafe { self.root.cell(w) }.store(0, Relaxed);
            }
            return;
        }
        for i in 0..Self::lv(Self::TOP).fanout {
            // SAFETY: the root is a live upper table; `i` is a slot.
            let slot = unsafe { self.root.link(i) };
            if let Link::Table(c) = Link::of(own_load_ptr(slot)) {
                slot.store(EMPTY, Relaxed);
                // SAFETY: `&mut self`: no other thread can reach `c`, which
                // is now unlinked.
                unsafe { Self::free_tree(c, Self::TOP - 1) };
            }
        }
        for (l, t) in self.tables.iter().enumerate() {
            t.store((l == Self::TOP) as usize, Relaxed);
        }
    }

    /// Frees the tree under `n` (level `l`).
    ///
    /// # Safety
    /// `n` is a live table of `kind(l)` that no other thread can reach, and
    /// nobody uses it or anything under it again.
    unsafe fn free_tree(n: Node, l: usize) {
        if l > 0 {
            for i in 0..Self::lv(l).fanout {
                // SAFETY: (caller) a live upper table; `i` is a slot.
                if let Link::Table(c) = Link::of(own_load_ptr(unsafe { n.link(i) })) {
                    // SAFETY: (caller) owned and unreachable, as is `n`.
                    unsafe { Self::free_tree(c, l - 1) };
                }
            }
        }
        // SAFETY: (caller).
        unsafe { n.free(Self::kind(l)) }
    }

    /// A bitmap whose new tables are published with `Relaxed` instead of
    /// `Release`/`Acquire`: the loom negative control of table creation
    /// (a marker or harvester then reads a table whose creation it has not
    /// synchronised with). Loom only; not API.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn with_relaxed_publish() -> Self {
        let mut b = Self::new();
        b.relaxed_publish = true;
        b
    }

    /// The harvest of the loom negative control: as
    /// [`take_pages`](Self::take_pages), but each word is loaded and then
    /// stored without its bits (not swapped), which loses a mark that lands
    /// in between. Loom only; not API.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn take_pages_load_store(&self) -> Vec<u64> {
        let mut v = Vec::new();
        self.walk_all(Read::LoadStore, &mut |a, w| push_pages::<G>(&mut v, a, w));
        v
    }

    /// The mark of the loom negative control: as [`mark`](Self::mark), but
    /// skips the RMW when a load finds the bit set, so a harvester that
    /// takes the bit need not see what the marker did before. Loom only;
    /// not API.
    #[cfg(loom)]
    #[doc(hidden)]
    pub fn mark_load_first(&self, addr: u64) {
        let p = addr >> Self::PS;
        let t = self.bottom(p, true).expect("created");
        let i = p & (Self::lv(0).fanout as u64 - 1);
        // SAFETY: a live bottom table; `i / 64` is one of its words.
        let cell = unsafe { t.cell((i / 64) as usize) };
        if cell.load(Relaxed) & (1 << (i % 64)) == 0 {
            cell.fetch_or(1 << (i % 64), Release);
        }
    }
}

impl<G: Geometry> Drop for PageBitmap<G> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else can reach any table.
        unsafe { Self::free_tree(self.root, Self::TOP) }
    }
}

/// Pushes the pages of the word at `a` with bits `w`.
fn push_pages<G: Geometry>(v: &mut Vec<u64>, a: u64, mut w: u64) {
    while w != 0 {
        v.push(a + ((w.trailing_zeros() as u64) << G::PAGE_SHIFT));
        w &= w - 1;
    }
}

/// ORs the 64 bits `w` into `out` starting at bit `o` (KVM layout).
fn scatter(out: &mut [u64], o: u64, w: u64) {
    let (j, s) = ((o / 64) as usize, (o % 64) as u32);
    out[j] |= w << s;
    if s != 0 {
        // Bits that fall past `out` are outside the requested span: they
        // were masked off by the walk, so `w >> (64 - s)` is zero there.
        if let Some(x) = out.get_mut(j + 1) {
            *x |= w >> (64 - s);
        }
    }
}
