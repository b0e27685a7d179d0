//! [`PageSet`]: a sparse set of 4 KiB pages, kept and worked 64 pages (one
//! 64-bit word) at a time, on the same radix machinery as [`MemTable`].
//!
//! A VMM's dirty log, a set of pages to migrate, to scrub or to protect:
//! [`PageSet::or_bitmap`] takes the bitmap `KVM_GET_DIRTY_LOG` hands out for
//! a memslot, [`PageSet::write_bitmap`] gives one back, and
//! [`PageSet::runs`] turns the set into the address ranges to copy.
//!
//! ```
//! use mem_table::PageSet;
//!
//! let mut dirty = PageSet::new();
//! // A memslot at 1 GiB; KVM says pages 0, 1, 2 and 64 of it are dirty.
//! let slot = 0x4000_0000;
//! assert_eq!(dirty.or_bitmap(slot, &[0b111, 1]).unwrap(), 4);
//! dirty.insert(0x4000_3000).unwrap(); // page 3, by hand
//!
//! assert_eq!(dirty.len(), 5);
//! let runs: Vec<_> = dirty.runs().collect();
//! assert_eq!(runs, [0x4000_0000..0x4000_4000, 0x4004_0000..0x4004_1000]);
//!
//! // Back to the KVM layout.
//! let mut log = [0u64; 2];
//! dirty.write_bitmap(slot, &mut log).unwrap();
//! assert_eq!(log, [0b1111, 1]);
//! ```
//!
//! # Glossary
//!
//! | term | meaning |
//! |---|---|
//! | page | a 4 KiB page, named by its first byte address (a multiple of [`PAGE_SIZE`]) |
//! | word | 64 consecutive pages, [`WORD_BYTES`] = 256 KiB of address space, aligned; one `u64`, bit `i` = page `i` |
//! | KVM layout | a `&[u64]` for the memory at `base`: bit `i` of word `w` is the page at `base + (64 * w + i) * 4096` |
//! | run | a maximal range `start..end` of byte addresses whose pages are all in the set |
//! | reach | [`REACH`] = 2^48: every page lies below it (x86-64 4-level physical and guest-physical addresses) |
//!
//! # Layout
//!
//! The set is a [`MemTable<u64>`](MemTable) whose "base page" is a word:
//! a private geometry with a 256 KiB page and four levels of 9, 9, 9 and 3
//! index bits (48 bits in all), none of which holds large entries. Only
//! non-zero words are stored: a word that becomes zero is removed, and tables
//! left empty are freed, so memory follows the words in use.
//!
//! ```text
//!   byte address (48 bits)
//!   47    45 44    36 35    27 26    18 17   12 11      0
//!   +-------+--------+--------+--------+-------+---------+
//!   | root  |  L2    |  L1    |  L0    | bit   | in page |
//!   | 3 bits| 9 bits | 9 bits | 9 bits | 6 bits| 12 bits |
//!   +-------+--------+--------+--------+-------+---------+
//!    \___________ table indices ______/ \_ bit of the word
//!
//!   one bottom (L0) table: 512 words = 32,768 pages = 128 MiB of address space
//!   +--------+--------+-----+--------+
//!   | word 0 | word 1 | ... | word511|   word k, bit i = page (k * 64 + i)
//!   +--------+--------+-----+--------+
//! ```
//!
//! A KVM bitmap whose base is 256 KiB-aligned maps word for word onto stored
//! words; at any other page-aligned base every input word straddles two
//! stored words and is shifted into both.
//!
//! # Semantics
//!
//! Mutations ([`insert`](PageSet::insert), [`remove`](PageSet::remove),
//! [`insert_range`](PageSet::insert_range), [`clear_range`](PageSet::clear_range),
//! [`or_bitmap`](PageSet::or_bitmap), [`write_bitmap`](PageSet::write_bitmap))
//! check their input first and refuse with a [`PageSetError`] naming what was
//! wrong: an address or range bound that is not page-aligned, a bitmap or a
//! range that runs past [`REACH`], a reversed range. The set is then exactly
//! as it was. Tables a mutation creates are counted and reserved before
//! anything changes, so running out of them
//! ([`OutOfNodes`](PageSetError::OutOfNodes), on a bounded backend or when the
//! allocator refuses) leaves no half update either.
//!
//! Queries ([`contains`](PageSet::contains), [`count_range`](PageSet::count_range),
//! [`runs_in`](PageSet::runs_in), [`iter_in`](PageSet::iter_in)) take any
//! byte range: it is widened outward to whole pages and clipped to the
//! reach; runs are clipped to it.
//!
//! # Cost
//!
//! `w` is the number of input or output bitmap words, `s` the number of
//! stored (non-zero) words in the range, `t` the number of tables touched.
//! A step from the root to a word is O(levels) = O(4).
//!
//! | operation | time | note |
//! |---|---|---|
//! | `len`, `is_empty` | O(1) | a page counter is kept |
//! | `contains`, `insert`, `remove` | O(levels) | |
//! | `or_bitmap(base, bitmap)` | O(w + t x levels), each non-zero word O(levels) | zero input words are skipped |
//! | `write_bitmap(base, out)` | O(w + s + t) | overwrites `out` |
//! | `insert_range`, `clear_range` | O(words in the range + t x levels) | whole words in the middle, masked words at the ends |
//! | `count_range`, `count` | O(s + t) | popcount |
//! | `runs`, `runs_in`, `iter`, `iter_in` (both ways) | O(1) amortised per word, per table and per item | a run spanning words and tables is one run |
//! | `clear` | O(tables) | |
//!
//! No operation costs O(pages): pages are only ever handled 64 at a time.

use alloc::string::String;
use core::fmt;
use core::iter::FusedIterator;
use core::ops::{Bound, Range, RangeBounds};

use typenum::{U3, U9, U18};

use crate::backend::{Backend, Heap};
use crate::geometry::{Custom, Geometry};
use crate::iter::Iter;
use crate::page::Level;
use crate::table::MemTable;
use crate::view::Stats;

/// The inner table's geometry: one entry is one word of 64 pages
/// (256 KiB), four plain levels of 9, 9, 9 and 3 bits: 48 address bits.
type WordGeometry = Custom<U18, (U9, U9, U9, U3)>;

/// log2 of [`PAGE_SIZE`].
const PAGE_SHIFT: u32 = 12;

/// The size of a page: 4 KiB.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// The address space one word covers: 64 pages, 256 KiB.
pub const WORD_BYTES: u64 = 64 * PAGE_SIZE;

/// The first address out of reach, 2^48: every page of a set lies below it.
pub const REACH: u64 = 1 << 48;

/// The offset of an address within its word.
const WORD_MASK: u64 = WORD_BYTES - 1;

/// Levels of the inner table below its root.
const BELOW_TOP: usize = WordGeometry::LEVELS - 1;

const _: () = {
    assert!(WordGeometry::ADDRESS_BITS == 48 && 1u64 << WordGeometry::ADDRESS_BITS == REACH);
    assert!(1u64 << WordGeometry::PAGE_SHIFT == WORD_BYTES);
};

/// Why a [`PageSet`] refused an operation. The set is exactly as it was.
///
/// Every variant names the address, range or length that was wrong, and its
/// [`Display`](fmt::Display) says so.
///
/// ```
/// use mem_table::{PageSet, pageset::PageSetError};
///
/// let mut s = PageSet::new();
/// let err = s.or_bitmap(0x1234, &[1]).unwrap_err();
/// assert_eq!(err, PageSetError::Misaligned { addr: 0x1234 });
/// assert_eq!(err.to_string(), "address 0x1234 is not aligned to a 4 KiB page");
/// assert!(s.is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageSetError {
    /// An address that must be the first byte of a page is not: a bitmap
    /// base, a page to insert or remove, a bound of a range to change.
    Misaligned {
        /// The address.
        addr: u64,
    },
    /// A bitmap of `words` words at `base` runs past [`REACH`].
    BitmapTooLong {
        /// The bitmap's base address.
        base: u64,
        /// Its length in words.
        words: usize,
    },
    /// A page or a range runs past [`REACH`]: `start..end` (`end` may be
    /// 2^64, hence `u128`).
    OutOfReach {
        /// The first byte.
        start: u64,
        /// One past the last byte.
        end: u128,
    },
    /// A range whose start is after its end.
    ReversedRange {
        /// The start given.
        start: u128,
        /// The end given (exclusive).
        end: u128,
    },
    /// The backend had no table to give at `level` of the inner table (a
    /// full [`Pool`](crate::backend::Pool), or the allocator refused).
    OutOfNodes {
        /// The level that ran out (0 is the bottom).
        level: usize,
    },
}

impl fmt::Display for PageSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PageSetError::Misaligned { addr } => {
                write!(f, "address {addr:#x} is not aligned to a 4 KiB page")
            }
            PageSetError::BitmapTooLong { base, words } => {
                let end = base as u128 + words as u128 * WORD_BYTES as u128;
                write!(
                    f,
                    "a bitmap of {words} words at {base:#x} ends at {end:#x}, past the reach {REACH:#x}"
                )
            }
            PageSetError::OutOfReach { start, end } => {
                write!(f, "the range {start:#x}..{end:#x} runs past the reach {REACH:#x}")
            }
            PageSetError::ReversedRange { start, end } => {
                write!(f, "the range {start:#x}..{end:#x} is reversed")
            }
            PageSetError::OutOfNodes { level } => {
                write!(f, "out of table nodes at level {level}")
            }
        }
    }
}

impl core::error::Error for PageSetError {}

/// A sparse set of 4 KiB pages below [`REACH`], stored as non-zero 64-page
/// words in a radix table (see the [module documentation](self)).
///
/// `B` is the [backend](crate::backend) of the inner table.
///
/// ```
/// use mem_table::PageSet;
///
/// let mut s = PageSet::new();
/// s.insert_range(0x1000..0x9000).unwrap(); // 8 pages
/// s.clear_range(0x3000..0x5000).unwrap();
/// assert_eq!(s.len(), 6);
/// assert!(s.contains(0x2fff) && !s.contains(0x3000));
/// assert_eq!(s.runs().collect::<Vec<_>>(), [0x1000..0x3000, 0x5000..0x9000]);
/// ```
pub struct PageSet<B: Backend = Heap> {
    /// The non-zero words, keyed by the address of their first page.
    words: MemTable<u64, WordGeometry, B>,
    /// Pages in the set: the sum of the words' popcounts.
    pages: u64,
}

/// The bits `f .. l` of a word (`f <= l <= 64`).
#[inline]
fn bits(f: u32, l: u32) -> u64 {
    if f >= l {
        return 0;
    }
    let upper = if l >= 64 { !0 } else { (1u64 << l) - 1 };
    upper & (!0u64 << f)
}

/// The bits of the word at `a` whose pages lie in `lo..hi` (page-aligned).
#[inline]
fn mask(a: u64, lo: u64, hi: u64) -> u64 {
    if lo <= a && a + WORD_BYTES <= hi {
        return !0;
    }
    let f = (lo.saturating_sub(a) >> PAGE_SHIFT).min(64) as u32;
    let l = (hi.saturating_sub(a) >> PAGE_SHIFT).min(64) as u32;
    bits(f, l)
}

/// `range`'s bounds as a half-open `lo..hi` of byte addresses, in `u128`;
/// an unbounded end is [`REACH`].
fn half_open(range: &impl RangeBounds<u64>) -> (u128, u128) {
    let lo = match range.start_bound() {
        Bound::Included(&a) => a as u128,
        Bound::Excluded(&a) => a as u128 + 1,
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(&a) => a as u128 + 1,
        Bound::Excluded(&a) => a as u128,
        Bound::Unbounded => REACH as u128,
    };
    (lo, hi)
}

/// Checks a range to change: ordered, page-aligned bounds, within reach.
fn check_range(range: &impl RangeBounds<u64>) -> Result<(u64, u64), PageSetError> {
    let (lo, hi) = half_open(range);
    if lo > hi {
        return Err(PageSetError::ReversedRange { start: lo, end: hi });
    }
    if hi > REACH as u128 {
        return Err(PageSetError::OutOfReach { start: lo.min(u64::MAX as u128) as u64, end: hi });
    }
    let (lo, hi) = (lo as u64, hi as u64);
    for a in [lo, hi] {
        if a & (PAGE_SIZE - 1) != 0 {
            return Err(PageSetError::Misaligned { addr: a });
        }
    }
    Ok((lo, hi))
}

/// A range to query, widened to whole pages and clipped to the reach;
/// `None` if nothing is left.
fn clip_range(range: &impl RangeBounds<u64>) -> Option<(u64, u64)> {
    let (lo, hi) = half_open(range);
    let lo = lo & !(PAGE_SIZE as u128 - 1);
    let hi = hi.div_ceil(PAGE_SIZE as u128) * PAGE_SIZE as u128;
    let hi = hi.min(REACH as u128);
    (lo < hi).then_some((lo as u64, hi as u64))
}

/// Checks a KVM-layout bitmap of `words` words at `base`; returns its end.
fn check_bitmap(base: u64, words: usize) -> Result<u64, PageSetError> {
    if base & (PAGE_SIZE - 1) != 0 {
        return Err(PageSetError::Misaligned { addr: base });
    }
    let end = base as u128 + words as u128 * WORD_BYTES as u128;
    if end > REACH as u128 {
        return Err(PageSetError::BitmapTooLong { base, words });
    }
    Ok(end as u64)
}

/// Checks a page address to insert or remove.
fn check_page(addr: u64) -> Result<(), PageSetError> {
    if addr & (PAGE_SIZE - 1) != 0 {
        return Err(PageSetError::Misaligned { addr });
    }
    if addr >= REACH {
        return Err(PageSetError::OutOfReach { start: addr, end: addr as u128 + PAGE_SIZE as u128 });
    }
    Ok(())
}

/// The word `j` (`0 ..= bitmap.len()`) of a KVM bitmap whose base lies `s`
/// pages into its first word, re-cut on word boundaries.
#[inline]
fn recut(bitmap: &[u64], s: u32, j: usize) -> u64 {
    let low = bitmap.get(j).map_or(0, |&x| x << s);
    let high = if s != 0 && j > 0 { bitmap[j - 1] >> (64 - s) } else { 0 };
    low | high
}

impl PageSet {
    /// An empty set on the [`Heap`] backend. Allocates the inner table's
    /// root (8 slots). For another backend, see
    /// [`with_backend`](Self::with_backend) or [`Default`].
    ///
    /// ```
    /// let s = mem_table::PageSet::new();
    /// assert!(s.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::with_backend(Heap)
    }
}

impl<B: Backend + Default> Default for PageSet<B> {
    fn default() -> Self {
        Self::with_backend(B::default())
    }
}

impl<B: Backend> PageSet<B> {
    /// An empty set whose tables are stored by `backend`.
    ///
    /// ```
    /// use mem_table::{PageSet, backend::Pool, pageset::PageSetError};
    ///
    /// // Room for one table per level: one bottom table, 128 MiB of pages.
    /// let mut s: PageSet<Pool> = PageSet::with_backend(Pool::new(1));
    /// s.insert(0x1000).unwrap();
    /// assert!(matches!(s.insert(1 << 40), Err(PageSetError::OutOfNodes { .. })));
    /// assert_eq!(s.len(), 1);
    /// ```
    pub fn with_backend(backend: B) -> Self {
        PageSet { words: MemTable::with_backend(backend), pages: 0 }
    }

    /// Pages in the set. O(1).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.or_bitmap(0, &[u64::MAX, 1]).unwrap();
    /// assert_eq!(s.len(), 65);
    /// ```
    pub fn len(&self) -> u64 {
        self.pages
    }

    /// Whether the set holds no page. O(1).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// assert!(s.is_empty());
    /// s.insert(0).unwrap();
    /// assert!(!s.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// Pages in the set, counted word by word (popcount): the same as
    /// [`len`](Self::len), in O(stored words) rather than O(1).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0..0x10_0000).unwrap();
    /// assert_eq!(s.count(), 256);
    /// assert_eq!(s.count(), s.len());
    /// ```
    pub fn count(&self) -> u64 {
        self.words.values().map(|w| w.count_ones() as u64).sum()
    }

    /// Pages of the set that overlap `range` (byte addresses; see
    /// [Semantics](self#semantics)). O(stored words in the range + tables).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0..0x80_0000).unwrap(); // 2048 pages
    /// assert_eq!(s.count_range(0x1000..0x3000), 2);
    /// assert_eq!(s.count_range(0x1fff..=0x2000), 2); // widened to pages 1 and 2
    /// assert_eq!(s.count_range(0x7f_f000..), 1);
    /// ```
    pub fn count_range<R: RangeBounds<u64>>(&self, range: R) -> u64 {
        let Some((lo, hi)) = clip_range(&range) else { return 0 };
        self.words.range(lo..hi).map(|(p, &w)| (w & mask(p.addr(), lo, hi)).count_ones() as u64).sum()
    }

    /// Non-zero words stored: the inner table's entries. O(1).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert(0).unwrap();
    /// s.insert(0x3f000).unwrap(); // page 63: the same word
    /// s.insert(0x40000).unwrap(); // page 64: the next
    /// assert_eq!(s.words(), 2);
    /// ```
    pub fn words(&self) -> usize {
        self.words.len()
    }

    /// Node and memory figures of the inner table
    /// ([`Stats::bytes`] is the memory held).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert(0x1000).unwrap();
    /// assert_eq!(s.stats().nodes(), 4); // one table per level
    /// ```
    pub fn stats(&self) -> Stats {
        self.words.stats()
    }

    /// Whether the page holding byte `addr` is in the set; `false` past the
    /// reach. O(levels).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert(0x5000).unwrap();
    /// assert!(s.contains(0x5abc));
    /// assert!(!s.contains(0x6000));
    /// assert!(!s.contains(u64::MAX));
    /// ```
    pub fn contains(&self, addr: u64) -> bool {
        if addr >= REACH {
            return false;
        }
        let bit = (addr >> PAGE_SHIFT) & 63;
        self.words.get(addr & !WORD_MASK).is_some_and(|w| w >> bit & 1 != 0)
    }

    /// Adds the page at `addr`; returns whether it was new. O(levels).
    ///
    /// # Errors
    /// The set unchanged: [`Misaligned`](PageSetError::Misaligned) if `addr`
    /// is not page-aligned, [`OutOfReach`](PageSetError::OutOfReach),
    /// [`OutOfNodes`](PageSetError::OutOfNodes).
    ///
    /// ```
    /// use mem_table::{PageSet, pageset::PageSetError};
    /// let mut s = PageSet::new();
    /// assert_eq!(s.insert(0x7000), Ok(true));
    /// assert_eq!(s.insert(0x7000), Ok(false));
    /// assert_eq!(s.insert(0x7001), Err(PageSetError::Misaligned { addr: 0x7001 }));
    /// assert!(matches!(s.insert(1 << 48), Err(PageSetError::OutOfReach { .. })));
    /// ```
    pub fn insert(&mut self, addr: u64) -> Result<bool, PageSetError> {
        check_page(addr)?;
        let bit = 1u64 << ((addr >> PAGE_SHIFT) & 63);
        let new = match self.words.get_mut(addr & !WORD_MASK) {
            Some(w) => {
                let new = *w & bit == 0;
                *w |= bit;
                new
            }
            None => {
                self.words
                    .insert(addr & !WORD_MASK, bit)
                    .map_err(|e| PageSetError::OutOfNodes { level: e.level().index() })?;
                true
            }
        };
        self.pages += new as u64;
        Ok(new)
    }

    /// Removes the page at `addr`; returns whether it was there. A word
    /// left empty is removed (and tables left empty freed). O(levels).
    ///
    /// # Errors
    /// The set unchanged: [`Misaligned`](PageSetError::Misaligned),
    /// [`OutOfReach`](PageSetError::OutOfReach).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert(0x7000).unwrap();
    /// assert_eq!(s.remove(0x7000), Ok(true));
    /// assert_eq!(s.remove(0x7000), Ok(false));
    /// assert_eq!(s.words(), 0);
    /// ```
    pub fn remove(&mut self, addr: u64) -> Result<bool, PageSetError> {
        check_page(addr)?;
        let bit = 1u64 << ((addr >> PAGE_SHIFT) & 63);
        Ok(self.and_not_word(addr & !WORD_MASK, bit) != 0)
    }

    /// Removes every page.
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0..1 << 30).unwrap();
    /// s.clear();
    /// assert!(s.is_empty());
    /// assert_eq!(s.stats().nodes(), 1); // the root
    /// ```
    pub fn clear(&mut self) {
        self.words.clear();
        self.pages = 0;
    }

    /// ORs `bits` into the word at `a` (in reach, aligned), creating it if
    /// absent; returns the pages newly set. The tables it may create must
    /// have been reserved.
    #[inline]
    fn or_word(&mut self, a: u64, bits: u64) -> u64 {
        if bits == 0 {
            return 0;
        }
        let new = match self.words.get_mut(a) {
            Some(w) => {
                let new = bits & !*w;
                *w |= bits;
                new
            }
            None => {
                let r = self.words.insert(a, bits);
                debug_assert!(r.is_ok(), "tables reserved");
                if r.is_err() {
                    return 0;
                }
                bits
            }
        };
        let n = new.count_ones() as u64;
        self.pages += n;
        n
    }

    /// Clears `bits` in the word at `a` (in reach, aligned), removing it if
    /// it becomes zero; returns the bits that were set.
    #[inline]
    fn and_not_word(&mut self, a: u64, bits: u64) -> u64 {
        let Some(w) = self.words.get_mut(a) else { return 0 };
        let gone = *w & bits;
        *w &= !bits;
        if *w == 0 {
            self.words.remove(a).expect("aligned and in reach");
        }
        self.pages -= gone.count_ones() as u64;
        gone
    }

    /// The log2 of the region one table of each level below the root
    /// covers: 128 MiB, 64 GiB, 32 TiB.
    fn table_shifts() -> [u32; BELOW_TOP] {
        let mut shifts = [0u32; BELOW_TOP];
        for (l, s) in shifts.iter_mut().enumerate() {
            *s = WordGeometry::page_shift(Level::new(l as u8 + 1)).expect("below the top");
        }
        shifts
    }

    /// Whether the table for region `r` of a level whose tables cover
    /// `2^sh` bytes is absent. A table exists exactly when its region holds
    /// a word (empty tables are freed), so one lookup tells. O(levels).
    fn no_table(&self, sh: u32, r: u64) -> bool {
        self.words.range(r << sh..(r + 1) << sh).next().is_none()
    }

    /// Reserves `need[l]` tables at each level `l`, all or nothing.
    fn reserve_need(&mut self, need: &[usize; BELOW_TOP]) -> Result<(), PageSetError> {
        for (l, &n) in need.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if let Err(e) = self.words.reserve_tables(Level::new(l as u8), n) {
                self.words.unreserve();
                return Err(PageSetError::OutOfNodes { level: e.level().index() });
            }
        }
        Ok(())
    }

    /// Reserves the tables that creating words in `spans` would need: the
    /// spans are ascending, word-aligned `a..b` of byte addresses, all of
    /// whose words are to be created. O(tables touched x levels).
    fn reserve_for(&mut self, spans: impl Iterator<Item = (u64, u64)>) -> Result<(), PageSetError> {
        let shifts = Self::table_shifts();
        let mut need = [0usize; BELOW_TOP];
        // The next region of each level not yet looked at.
        let mut next = [0u64; BELOW_TOP];
        for (a, b) in spans {
            if a >= b {
                continue;
            }
            for (l, &sh) in shifts.iter().enumerate() {
                let last = (b - 1) >> sh;
                for r in (a >> sh).max(next[l])..=last {
                    need[l] += self.no_table(sh, r) as usize;
                }
                next[l] = next[l].max(last + 1);
            }
        }
        self.reserve_need(&need)
    }

    /// ORs a KVM-layout bitmap into the set: bit `i` of `bitmap[w]` adds the
    /// page at `base + (64 * w + i) * 4096`. Returns the pages newly set.
    ///
    /// Zero words are skipped. A 256 KiB-aligned `base` maps each input
    /// word onto one stored word; any other page-aligned base shifts each
    /// into two. O(bitmap words + tables touched), each non-zero word
    /// O(levels).
    ///
    /// # Errors
    /// The set unchanged: [`Misaligned`](PageSetError::Misaligned) if `base`
    /// is not page-aligned, [`BitmapTooLong`](PageSetError::BitmapTooLong)
    /// if the bitmap's pages run past [`REACH`],
    /// [`OutOfNodes`](PageSetError::OutOfNodes).
    ///
    /// ```
    /// use mem_table::{PageSet, pageset::PageSetError};
    /// let mut s = PageSet::new();
    /// // A base 3 pages into a word: page 0 of the bitmap is page 3 of the word.
    /// assert_eq!(s.or_bitmap(0x3000, &[1 | 1 << 63]).unwrap(), 2);
    /// assert!(s.contains(0x3000) && s.contains(0x3000 + 63 * 0x1000));
    /// assert_eq!(s.or_bitmap(0x3000, &[1]).unwrap(), 0); // already set
    ///
    /// let err = s.or_bitmap((1 << 48) - 0x4_0000, &[0, 0]).unwrap_err();
    /// assert_eq!(err, PageSetError::BitmapTooLong { base: 0xffff_fffc_0000, words: 2 });
    /// ```
    pub fn or_bitmap(&mut self, base: u64, bitmap: &[u64]) -> Result<u64, PageSetError> {
        let end = check_bitmap(base, bitmap.len())?;
        let s = ((base >> PAGE_SHIFT) & 63) as u32;
        let abase = base & !WORD_MASK;
        // Stored word `j` (at `abase + j * WORD_BYTES`) is `recut(bitmap, s, j)`.
        let n = bitmap.len() + (s != 0) as usize;
        if n == 0 {
            return Ok(0);
        }
        let wend = abase + n as u64 * WORD_BYTES;
        debug_assert!(wend >= end && wend <= REACH);
        let index = |a: u64| ((a - abase) / WORD_BYTES) as usize;
        let any = |j0: usize, j1: usize| (j0..j1).any(|j| recut(bitmap, s, j) != 0);
        // Plan: a table is needed for every region without one that gets a
        // non-zero word. One lookup per region touched, and a scan of the
        // words of empty regions only.
        let shifts = Self::table_shifts();
        let mut need = [0usize; BELOW_TOP];
        for (l, &sh) in shifts.iter().enumerate() {
            for r in abase >> sh..=(wend - 1) >> sh {
                let (ra, rb) = ((r << sh).max(abase), ((r + 1) << sh).min(wend));
                if self.no_table(sh, r) && any(index(ra), index(rb)) {
                    need[l] += 1;
                }
            }
        }
        self.reserve_need(&need)?;
        // Apply, one bottom region (128 MiB) at a time: in a region without
        // a table every word is new, and is inserted without a lookup.
        let sh = shifts[0];
        let before = self.pages;
        for r in abase >> sh..=(wend - 1) >> sh {
            let (ra, rb) = ((r << sh).max(abase), ((r + 1) << sh).min(wend));
            let fresh = self.no_table(sh, r);
            for j in index(ra)..index(rb) {
                let v = recut(bitmap, s, j);
                if v == 0 {
                    continue;
                }
                let a = abase + j as u64 * WORD_BYTES;
                if fresh {
                    let r = self.words.insert(a, v);
                    debug_assert!(r.is_ok(), "tables reserved");
                    if r.is_ok() {
                        self.pages += v.count_ones() as u64;
                    }
                } else {
                    self.or_word(a, v);
                }
            }
        }
        self.words.unreserve();
        Ok(self.pages - before)
    }

    /// Overwrites `out` with the set's pages in KVM layout: bit `i` of
    /// `out[w]` is set exactly when the page at `base + (64 * w + i) * 4096`
    /// is in the set. Returns the pages written (bits set). The set is not
    /// changed. O(`out` words + stored words in the range + tables).
    ///
    /// # Errors
    /// `out` and the set unchanged: [`Misaligned`](PageSetError::Misaligned)
    /// if `base` is not page-aligned, [`BitmapTooLong`](PageSetError::BitmapTooLong)
    /// if `out`'s pages run past [`REACH`].
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0x4_0000..0x4_2000).unwrap(); // the first 2 pages of word 1
    /// let mut out = [u64::MAX; 2];
    /// assert_eq!(s.write_bitmap(0x3_f000, &mut out).unwrap(), 2);
    /// assert_eq!(out, [0b110, 0]);
    /// ```
    pub fn write_bitmap(&self, base: u64, out: &mut [u64]) -> Result<u64, PageSetError> {
        let end = check_bitmap(base, out.len())?;
        out.fill(0);
        let s = ((base >> PAGE_SHIFT) & 63) as u32;
        let abase = base & !WORD_MASK;
        let len = out.len();
        let mut written = 0;
        for (p, &x) in self.words.range(abase..end) {
            let j = ((p.addr() - abase) / WORD_BYTES) as usize;
            // Stored page `64 j + b` is output page `64 j + b - s`.
            if j < len {
                let v = x >> s;
                out[j] |= v;
                written += v.count_ones() as u64;
            }
            if s != 0 && j >= 1 && j - 1 < len {
                let v = x << (64 - s);
                out[j - 1] |= v;
                written += v.count_ones() as u64;
            }
        }
        Ok(written)
    }

    /// Splits a checked, non-empty range into its masked words at the ends
    /// and its whole words between: `(head, middle, tail)`, each word as
    /// `(address, bits)`, the middle as a word-aligned byte range.
    #[allow(clippy::type_complexity)]
    fn cut(lo: u64, hi: u64) -> (Option<(u64, u64)>, Range<u64>, Option<(u64, u64)>) {
        let flo = (lo + WORD_MASK) & !WORD_MASK;
        let fhi = hi & !WORD_MASK;
        if flo > fhi {
            // Both ends in one word.
            let a = lo & !WORD_MASK;
            return (Some((a, mask(a, lo, hi))), flo..flo, None);
        }
        let head = (lo < flo).then(|| (lo & !WORD_MASK, mask(lo & !WORD_MASK, lo, hi)));
        let tail = (fhi < hi).then(|| (fhi, mask(fhi, lo, hi)));
        (head, flo..fhi, tail)
    }

    /// Adds every page in `range` (byte addresses, page-aligned bounds);
    /// returns the pages newly set. Whole words in the middle are written
    /// at once, the ends masked. O(words in the range + tables touched).
    ///
    /// # Errors
    /// The set unchanged: [`Misaligned`](PageSetError::Misaligned) naming a
    /// bound, [`OutOfReach`](PageSetError::OutOfReach),
    /// [`ReversedRange`](PageSetError::ReversedRange),
    /// [`OutOfNodes`](PageSetError::OutOfNodes). An empty range is no error.
    ///
    /// ```
    /// use mem_table::{PageSet, pageset::PageSetError};
    /// let mut s = PageSet::new();
    /// assert_eq!(s.insert_range(0x3_f000..0x8_1000).unwrap(), 66);
    /// assert_eq!(s.words(), 3);
    /// assert_eq!(s.insert_range(0..0x1800), Err(PageSetError::Misaligned { addr: 0x1800 }));
    /// ```
    pub fn insert_range<R: RangeBounds<u64>>(&mut self, range: R) -> Result<u64, PageSetError> {
        let (lo, hi) = check_range(&range)?;
        if lo == hi {
            return Ok(0);
        }
        let (head, mid, tail) = Self::cut(lo, hi);
        let span = |w: Option<(u64, u64)>| w.map(|(a, _)| (a, a + WORD_BYTES));
        let spans = span(head).into_iter().chain([(mid.start, mid.end)]).chain(span(tail));
        self.reserve_for(spans)?;
        let mut added = 0;
        if !mid.is_empty() {
            let had: u64 = self.words.range(mid.clone()).map(|(_, w)| w.count_ones() as u64).sum();
            let r = self.words.insert_range(mid.clone(), !0);
            debug_assert!(r.is_ok(), "tables reserved");
            if r.is_ok() {
                let n = (mid.end - mid.start) / PAGE_SIZE - had;
                self.pages += n;
                added += n;
            }
        }
        for (a, m) in head.into_iter().chain(tail) {
            added += self.or_word(a, m);
        }
        self.words.unreserve();
        Ok(added)
    }

    /// Removes every page in `range` (byte addresses, page-aligned bounds);
    /// returns the pages removed. Whole words in the middle are removed at
    /// once, the ends masked; words left zero are removed.
    /// O(stored words in the range + tables touched).
    ///
    /// # Errors
    /// The set unchanged: [`Misaligned`](PageSetError::Misaligned) naming a
    /// bound, [`OutOfReach`](PageSetError::OutOfReach),
    /// [`ReversedRange`](PageSetError::ReversedRange). An empty range is no
    /// error.
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0..0x100_0000).unwrap(); // 16 MiB
    /// assert_eq!(s.clear_range(0x1000..0xff_f000).unwrap(), 4094);
    /// assert_eq!(s.runs().collect::<Vec<_>>(), [0..0x1000, 0xff_f000..0x100_0000]);
    /// assert_eq!(s.words(), 2);
    /// ```
    pub fn clear_range<R: RangeBounds<u64>>(&mut self, range: R) -> Result<u64, PageSetError> {
        let (lo, hi) = check_range(&range)?;
        if lo == hi {
            return Ok(0);
        }
        let (head, mid, tail) = Self::cut(lo, hi);
        let mut removed = 0;
        if !mid.is_empty() {
            let had: u64 = self.words.range(mid.clone()).map(|(_, w)| w.count_ones() as u64).sum();
            if had > 0 {
                // No level holds large entries: nothing is split, so the
                // removal needs no table and cannot fail.
                self.words
                    .remove_range(mid)
                    .map_err(|e| PageSetError::OutOfNodes { level: e.level().index() })?;
                self.pages -= had;
                removed += had;
            }
        }
        for (a, m) in head.into_iter().chain(tail) {
            removed += self.and_not_word(a, m).count_ones() as u64;
        }
        Ok(removed)
    }

    /// The runs of the set: maximal ranges `start..end` of byte addresses
    /// whose pages are all in the set, ascending (or descending, from the
    /// back). A run that spans words and tables is one run.
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0x7fe_0000..0x802_0000).unwrap(); // across two bottom tables
    /// s.insert(0).unwrap();
    /// assert_eq!(s.runs().collect::<Vec<_>>(), [0..0x1000, 0x7fe_0000..0x802_0000]);
    /// assert_eq!(s.runs().next_back(), Some(0x7fe_0000..0x802_0000));
    /// ```
    pub fn runs(&self) -> Runs<'_, B> {
        Runs { words: Words::new(&self.words, Some((0, REACH))) }
    }

    /// The runs of the set within `range` (widened to pages, clipped to the
    /// reach), each clipped to it.
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0x1000..0x9000).unwrap();
    /// let r: Vec<_> = s.runs_in(0x3000..0x5800).collect();
    /// assert_eq!(r, [0x3000..0x6000]);
    /// ```
    pub fn runs_in<R: RangeBounds<u64>>(&self, range: R) -> Runs<'_, B> {
        Runs { words: Words::new(&self.words, clip_range(&range)) }
    }

    /// The pages of the set, as addresses, ascending (or descending, from
    /// the back).
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.or_bitmap(0x10_0000, &[0b101]).unwrap();
    /// assert_eq!(s.iter().collect::<Vec<_>>(), [0x10_0000, 0x10_2000]);
    /// assert_eq!(s.iter().next_back(), Some(0x10_2000));
    /// ```
    pub fn iter(&self) -> Pages<'_, B> {
        Pages { words: Words::new(&self.words, Some((0, REACH))) }
    }

    /// The pages of the set that overlap `range` (widened to pages, clipped
    /// to the reach), as addresses.
    ///
    /// ```
    /// let mut s = mem_table::PageSet::new();
    /// s.insert_range(0..0x10_0000).unwrap();
    /// assert_eq!(s.iter_in(0x2000..=0x3000).collect::<Vec<_>>(), [0x2000, 0x3000]);
    /// ```
    pub fn iter_in<R: RangeBounds<u64>>(&self, range: R) -> Pages<'_, B> {
        Pages { words: Words::new(&self.words, clip_range(&range)) }
    }

    /// Checks the set's invariants: the inner table's, no zero word stored,
    /// the page counter equal to the popcount. For tests.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        use alloc::format;
        self.words.check_invariants()?;
        if let Some((p, _)) = self.words.iter().find(|(_, w)| **w == 0) {
            return Err(format!("zero word stored at {:#x}", p.addr()));
        }
        let count = self.count();
        if count != self.pages {
            return Err(format!("page counter {} but {} pages stored", self.pages, count));
        }
        Ok(())
    }
}

impl<B: Backend> Clone for PageSet<B> {
    fn clone(&self) -> Self {
        PageSet { words: self.words.clone(), pages: self.pages }
    }
}

impl<B: Backend> PartialEq for PageSet<B> {
    /// Sets are equal when they hold the same pages.
    fn eq(&self, other: &Self) -> bool {
        self.pages == other.pages && self.words == other.words
    }
}

impl<B: Backend> Eq for PageSet<B> {}

impl<B: Backend> fmt::Debug for PageSet<B> {
    /// The runs, in hexadecimal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// One run, printed as `0x..0x`.
        struct Hex(Range<u64>);
        impl fmt::Debug for Hex {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:#x}..{:#x}", self.0.start, self.0.end)
            }
        }
        f.debug_set().entries(self.runs().map(Hex)).finish()
    }
}

impl<'a, B: Backend> IntoIterator for &'a PageSet<B> {
    type Item = u64;
    type IntoIter = Pages<'a, B>;
    fn into_iter(self) -> Pages<'a, B> {
        self.iter()
    }
}

/// The stored words of a range, masked to it, taken from both ends: the
/// common part of [`Runs`] and [`Pages`].
///
/// # Invariants
/// Every set bit not yet consumed is in exactly one of `front`, `back` and
/// the words `inner` has not yielded; `front` holds bits below all others,
/// `back` bits above.
struct Words<'a, B: Backend> {
    inner: Option<Iter<'a, u64, WordGeometry, B>>,
    lo: u64,
    hi: u64,
    /// The front word: its address and the bits not yet consumed.
    front: (u64, u64),
    /// The back word: its address and the bits not yet consumed.
    back: (u64, u64),
}

impl<B: Backend> Clone for Words<'_, B> {
    fn clone(&self) -> Self {
        Words { inner: self.inner.clone(), lo: self.lo, hi: self.hi, front: self.front, back: self.back }
    }
}

impl<'a, B: Backend> Words<'a, B> {
    fn new(table: &'a MemTable<u64, WordGeometry, B>, bounds: Option<(u64, u64)>) -> Self {
        let (lo, hi) = bounds.unwrap_or((0, 0));
        Words { inner: bounds.map(|(lo, hi)| table.range(lo..hi)), lo, hi, front: (0, 0), back: (0, 0) }
    }

    /// The next non-empty word from the front (taking the back word last).
    #[inline]
    fn pull_front(&mut self) -> Option<(u64, u64)> {
        if let Some(inner) = &mut self.inner {
            for (p, &w) in inner.by_ref() {
                let m = w & mask(p.addr(), self.lo, self.hi);
                if m != 0 {
                    return Some((p.addr(), m));
                }
            }
            self.inner = None;
        }
        let b = core::mem::take(&mut self.back);
        (b.1 != 0).then_some(b)
    }

    /// The next non-empty word from the back (taking the front word last).
    #[inline]
    fn pull_back(&mut self) -> Option<(u64, u64)> {
        if let Some(inner) = &mut self.inner {
            while let Some((p, &w)) = inner.next_back() {
                let m = w & mask(p.addr(), self.lo, self.hi);
                if m != 0 {
                    return Some((p.addr(), m));
                }
            }
            self.inner = None;
        }
        let f = core::mem::take(&mut self.front);
        (f.1 != 0).then_some(f)
    }

    /// Folds every word left, ascending: the front word, the rest of the
    /// inner table by its internal iteration (a bottom table's bitmap word
    /// at a time), then the back word.
    #[inline]
    fn fold<Acc>(self, init: Acc, mut f: impl FnMut(Acc, u64, u64) -> Acc) -> Acc {
        let (lo, hi) = (self.lo, self.hi);
        let mut acc = init;
        if self.front.1 != 0 {
            acc = f(acc, self.front.0, self.front.1);
        }
        if let Some(inner) = self.inner {
            acc = inner.fold(acc, |acc, (p, &w)| {
                let m = w & mask(p.addr(), lo, hi);
                if m != 0 { f(acc, p.addr(), m) } else { acc }
            });
        }
        if self.back.1 != 0 {
            acc = f(acc, self.back.0, self.back.1);
        }
        acc
    }

    /// The front word, refilled if consumed.
    #[inline]
    fn front(&mut self) -> Option<(u64, u64)> {
        if self.front.1 == 0 {
            self.front = self.pull_front()?;
        }
        Some(self.front)
    }

    /// The back word, refilled if consumed.
    #[inline]
    fn back(&mut self) -> Option<(u64, u64)> {
        if self.back.1 == 0 {
            self.back = self.pull_back()?;
        }
        Some(self.back)
    }
}

/// The runs of a [`PageSet`], as `start..end` byte ranges, ascending (or
/// descending, from the back): from [`PageSet::runs`] and
/// [`PageSet::runs_in`]. Each run is maximal (within the range asked for),
/// whatever words and tables it spans.
pub struct Runs<'a, B: Backend = Heap> {
    words: Words<'a, B>,
}

impl<B: Backend> Clone for Runs<'_, B> {
    fn clone(&self) -> Self {
        Runs { words: self.words.clone() }
    }
}

impl<B: Backend> fmt::Debug for Runs<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runs").field("lo", &self.words.lo).field("hi", &self.words.hi).finish_non_exhaustive()
    }
}

impl<B: Backend> Iterator for Runs<'_, B> {
    type Item = Range<u64>;

    fn next(&mut self) -> Option<Range<u64>> {
        let (a, w) = self.words.front()?;
        let f = w.trailing_zeros();
        let l = f + (w >> f).trailing_ones();
        self.words.front.1 = w & !bits(f, l);
        let start = a + ((f as u64) << PAGE_SHIFT);
        let mut end = a + ((l as u64) << PAGE_SHIFT);
        if l == 64 {
            // The run reaches the word's end: it goes on while the next
            // words are adjacent and start with set bits.
            while let Some((na, nw)) = self.words.pull_front() {
                if na != end || nw & 1 == 0 {
                    self.words.front = (na, nw);
                    break;
                }
                let n = nw.trailing_ones();
                end += (n as u64) << PAGE_SHIFT;
                if n < 64 {
                    self.words.front = (na, nw & !bits(0, n));
                    break;
                }
            }
        }
        Some(start..end)
    }

    fn fold<Acc, F: FnMut(Acc, Range<u64>) -> Acc>(self, init: Acc, f: F) -> Acc {
        self.fold_runs(init, f)
    }
}

impl<B: Backend> Runs<'_, B> {
    /// Internal iteration: every word's runs, merged across words, with
    /// no per-run bookkeeping in the iterator.
    #[inline]
    fn fold_runs<Acc>(self, init: Acc, mut f: impl FnMut(Acc, Range<u64>) -> Acc) -> Acc {
        let mut open: Option<Range<u64>> = None;
        let acc = self.words.fold(init, |mut acc, a, mut w| {
            while w != 0 {
                let lo = w.trailing_zeros();
                let hi = lo + (w >> lo).trailing_ones();
                w &= !bits(lo, hi);
                let (start, end) = (a + ((lo as u64) << PAGE_SHIFT), a + ((hi as u64) << PAGE_SHIFT));
                match &mut open {
                    Some(r) if r.end == start => r.end = end,
                    _ => {
                        if let Some(r) = open.replace(start..end) {
                            acc = f(acc, r);
                        }
                    }
                }
            }
            acc
        });
        match open {
            Some(r) => f(acc, r),
            None => acc,
        }
    }
}

impl<B: Backend> DoubleEndedIterator for Runs<'_, B> {
    fn next_back(&mut self) -> Option<Range<u64>> {
        let (a, w) = self.words.back()?;
        let l = 64 - w.leading_zeros();
        let f = l - (w << (64 - l)).leading_ones();
        self.words.back.1 = w & !bits(f, l);
        let mut start = a + ((f as u64) << PAGE_SHIFT);
        let end = a + ((l as u64) << PAGE_SHIFT);
        if f == 0 {
            while let Some((na, nw)) = self.words.pull_back() {
                if na + WORD_BYTES != start || nw >> 63 == 0 {
                    self.words.back = (na, nw);
                    break;
                }
                let n = nw.leading_ones();
                start -= (n as u64) << PAGE_SHIFT;
                if n < 64 {
                    self.words.back = (na, nw & !bits(64 - n, 64));
                    break;
                }
            }
        }
        Some(start..end)
    }
}

impl<B: Backend> FusedIterator for Runs<'_, B> {}

/// The pages of a [`PageSet`], as addresses, ascending (or descending,
/// from the back): from [`PageSet::iter`] and [`PageSet::iter_in`].
pub struct Pages<'a, B: Backend = Heap> {
    words: Words<'a, B>,
}

impl<B: Backend> Clone for Pages<'_, B> {
    fn clone(&self) -> Self {
        Pages { words: self.words.clone() }
    }
}

impl<B: Backend> fmt::Debug for Pages<'_, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("lo", &self.words.lo)
            .field("hi", &self.words.hi)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Iterator for Pages<'_, B> {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        let (a, w) = self.words.front()?;
        self.words.front.1 = w & (w - 1);
        Some(a + ((w.trailing_zeros() as u64) << PAGE_SHIFT))
    }

    /// Internal iteration: a word's pages in a tight loop, the words by the
    /// inner table's own internal iteration.
    fn fold<Acc, F: FnMut(Acc, u64) -> Acc>(self, init: Acc, mut f: F) -> Acc {
        self.words.fold(init, |mut acc, a, mut w| {
            while w != 0 {
                acc = f(acc, a + ((w.trailing_zeros() as u64) << PAGE_SHIFT));
                w &= w - 1;
            }
            acc
        })
    }
}

impl<B: Backend> DoubleEndedIterator for Pages<'_, B> {
    #[inline]
    fn next_back(&mut self) -> Option<u64> {
        let (a, w) = self.words.back()?;
        let b = 63 - w.leading_zeros();
        self.words.back.1 = w & !(1 << b);
        Some(a + ((b as u64) << PAGE_SHIFT))
    }
}

impl<B: Backend> FusedIterator for Pages<'_, B> {}
