//! `sync::PageBitmap`: a model-based test against a `BTreeSet` of pages
//! (quickcheck, several geometries, with and without a limit), the KVM
//! layout against `PageSet::write_bitmap`, the edge cases, vm-memory's own
//! checks of a `Bitmap` (with the `vm-memory` feature), and bounded
//! concurrent tests: markers and harvesters race, and every page's marks and
//! harvests must account for each other exactly. No timing: every thread
//! does a fixed amount of work. Under Miri the runs are few and small.
#![cfg(feature = "sync")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

use mem_table::geometry::{Custom, Geometry, X86_4Level};
use mem_table::sync::PageBitmap;
use mem_table::typenum::{U3, U7, U12};
use mem_table::{ErrorKind, PageSet};
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Three 3-bit levels: 8 pages per bottom table (less than a word).
type Tiny = Custom<U12, (U3, U3, U3)>;
/// One level: the root is the bottom table (128 pages, two words).
type Flat = Custom<U12, (U7,)>;

const CASES: u64 = if cfg!(miri) { 2 } else { 300 };

// ---- the model -------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Mark(u64),
    MarkRange(u64, u64),
    MarkLen(u64, u64),
    Peek(u64),
    TakeRange(u64, u64),
    TakeBitmap(u64, usize),
    TakeAll,
    TakeRuns,
    Clear,
}

/// An address near something interesting: a table boundary of some level,
/// the end of the reach, or zero; in pages `[-3, 200)` of it, any byte.
struct Addr;

impl Addr {
    fn pick<G: Geometry>(g: &mut Gen) -> u64 {
        let bits = G::ADDRESS_BITS;
        let reach_last = if bits >= 64 { u64::MAX } else { (1u64 << bits) - 1 };
        let l = u32::arbitrary(g) % (G::LEVELS as u32 + 1);
        // A slot boundary of level `l`'s tables (bits of the reach above it).
        let shift = (G::PAGE_SHIFT + l * (bits - G::PAGE_SHIFT) / G::LEVELS as u32).min(bits - 1);
        let anchor = match u8::arbitrary(g) % 4 {
            0 => 0,
            1 => reach_last & !((1u64 << G::PAGE_SHIFT) - 1),
            _ => (u64::arbitrary(g) & reach_last) >> shift << shift,
        };
        let pages = (i64::arbitrary(g).rem_euclid(203) - 3) << G::PAGE_SHIFT;
        let byte = u64::arbitrary(g) & ((1 << G::PAGE_SHIFT) - 1);
        anchor.wrapping_add_signed(pages).wrapping_add(byte) & reach_last
    }
}

fn gen_op<G: Geometry>(g: &mut Gen) -> Op {
    let a = Addr::pick::<G>(g);
    let len = match u8::arbitrary(g) % 4 {
        0 => 0,
        1 => u64::arbitrary(g) % 0x1000,
        2 => u64::arbitrary(g) % 0x10_0000,
        _ => u64::arbitrary(g) % 0x400_0000,
    };
    match u8::arbitrary(g) % 20 {
        0..=5 => Op::Mark(a),
        6..=8 => Op::MarkRange(a, len),
        9 | 10 => Op::MarkLen(a, len),
        11 | 12 => Op::Peek(a),
        13 | 14 => Op::TakeRange(a, len),
        15 | 16 => Op::TakeBitmap(a & !0xfff, usize::arbitrary(g) % 40),
        17 => Op::TakeAll,
        18 => Op::TakeRuns,
        _ => Op::Clear,
    }
}

struct Ops<G> {
    limit: Option<u64>,
    ops: Vec<Op>,
    _g: std::marker::PhantomData<fn() -> G>,
}

impl<G> Clone for Ops<G> {
    fn clone(&self) -> Self {
        Ops { limit: self.limit, ops: self.ops.clone(), _g: std::marker::PhantomData }
    }
}

impl<G> std::fmt::Debug for Ops<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "limit {:x?}, {:x?}", self.limit, self.ops)
    }
}

impl<G: Geometry> Arbitrary for Ops<G> {
    fn arbitrary(g: &mut Gen) -> Self {
        let n = usize::arbitrary(g) % if cfg!(miri) { 12 } else { 60 };
        let limit = bool::arbitrary(g).then(|| Addr::pick::<G>(g));
        Ops { limit, ops: (0..n).map(|_| gen_op::<G>(g)).collect(), _g: std::marker::PhantomData }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let this = self.clone();
        Box::new((0..self.ops.len()).map(move |i| {
            let mut o = this.clone();
            o.ops.remove(i);
            o
        }))
    }
}

/// Runs `ops` against a `PageBitmap<G>` and a set of page addresses.
fn run<G: Geometry>(case: Ops<G>) -> bool {
    let ps = 1u64 << G::PAGE_SHIFT;
    let reach_last = if G::ADDRESS_BITS >= 64 { u64::MAX } else { (1u64 << G::ADDRESS_BITS) - 1 };
    let mut b: PageBitmap<G> = match case.limit {
        Some(l) => PageBitmap::with_limit(l),
        None => PageBitmap::new(),
    };
    // The last tracked byte.
    let last: Option<u64> = match case.limit {
        None => Some(reach_last),
        Some(0) => None,
        Some(l) => Some(((l - 1) | (ps - 1)).min(reach_last)),
    };
    assert_eq!(b.last_addr(), last);
    let tracked = |a: u64| last.is_some_and(|l| a <= l);
    let page = |a: u64| a & !(ps - 1);
    let mut m: BTreeSet<u64> = BTreeSet::new();
    // The pages the `len` bytes at `a` touch, as an inclusive byte range.
    let span = |a: u64, len: u64| (len > 0).then(|| (page(a), page(a.saturating_add(len - 1))));
    let pages_in = |lo: u64, hi: u64| (lo >> G::PAGE_SHIFT..=hi >> G::PAGE_SHIFT).map(|p| p << G::PAGE_SHIFT);
    for op in case.ops {
        match op {
            Op::Mark(a) => {
                let r = b.mark(a);
                if tracked(a) {
                    assert_eq!(r, Ok(m.insert(page(a))), "{op:?}");
                } else {
                    let e = r.unwrap_err();
                    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, a));
                }
            }
            Op::MarkRange(a, len) => {
                let r = b.mark_range(a..a.saturating_add(len));
                match span(a, len.min(u64::MAX - a)) {
                    None => assert_eq!(r, Ok(0)),
                    Some((lo, hi)) if tracked(hi) => {
                        let new = pages_in(lo, hi).filter(|&p| m.insert(p)).count() as u64;
                        assert_eq!(r, Ok(new), "{op:?}");
                    }
                    Some(_) => {
                        let e = r.unwrap_err();
                        let first = last.map_or(a, |l| a.max(l + 1));
                        assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, first), "{op:?}");
                    }
                }
            }
            Op::MarkLen(a, len) => {
                let new = match (span(a, len), last) {
                    (Some((lo, hi)), Some(l)) if lo <= l => {
                        pages_in(lo, hi.min(page(l))).filter(|&p| m.insert(p)).count() as u64
                    }
                    _ => 0,
                };
                assert_eq!(b.mark_len(a, len), new, "{op:?}");
            }
            Op::Peek(a) => assert_eq!(b.is_marked(a), m.contains(&page(a)), "{op:?}"),
            Op::TakeRange(a, len) => {
                let mut got = Vec::new();
                let n = b.take_words(a..a.saturating_add(len), |w, bits| {
                    assert_ne!(bits, 0);
                    assert!(got.last().is_none_or(|&l| l < w), "ascending");
                    for i in 0..64 {
                        if bits & (1 << i) != 0 {
                            got.push(w + i * ps);
                        }
                    }
                });
                let want: Vec<u64> = match span(a, len.min(u64::MAX - a)) {
                    Some((lo, hi)) => m.range(lo..=hi).copied().collect(),
                    None => Vec::new(),
                };
                for p in &want {
                    m.remove(p);
                }
                assert_eq!(got, want, "{op:?}");
                assert_eq!(n, want.len() as u64);
            }
            Op::TakeBitmap(base, words) => {
                let mut out = vec![u64::MAX; words];
                let r = b.take_bitmap(base, &mut out);
                let end = base.checked_add((words as u64 * 64).saturating_mul(ps));
                if words == 0 {
                    assert_eq!(r, Ok(0));
                } else if end.is_some_and(|e| e - 1 <= reach_last) {
                    let mut want = vec![0u64; words];
                    let taken: Vec<u64> = m.range(base..end.unwrap()).copied().collect();
                    for p in &taken {
                        let i = (p - base) / ps;
                        want[(i / 64) as usize] |= 1 << (i % 64);
                        m.remove(p);
                    }
                    assert_eq!(r, Ok(taken.len() as u64), "{op:?}");
                    assert_eq!(out, want, "{op:?}");
                } else {
                    let e = r.unwrap_err();
                    let first = base.max(reach_last.wrapping_add(1));
                    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, first), "{op:?}");
                    assert!(out.iter().all(|&w| w == u64::MAX), "out unchanged on error");
                }
            }
            Op::TakeAll => assert_eq!(b.take_pages(), std::mem::take(&mut m).into_iter().collect::<Vec<_>>()),
            Op::TakeRuns => {
                let runs = b.take_runs();
                let mut pages = Vec::new();
                for (k, r) in runs.iter().enumerate() {
                    assert!(r.start < r.end && r.start % ps == 0 && r.end % ps == 0);
                    if k > 0 {
                        assert!(runs[k - 1].end < r.start, "runs maximal and ascending: {runs:x?}");
                    }
                    pages.extend((r.start..r.end).step_by(ps as usize));
                }
                assert_eq!(pages, std::mem::take(&mut m).into_iter().collect::<Vec<_>>());
            }
            Op::Clear => {
                b.clear();
                m.clear();
                assert_eq!(b.tables(), 1);
            }
        }
        assert_eq!(b.count(), m.len() as u64);
        assert_eq!(b.pages(), m.iter().copied().collect::<Vec<_>>());
    }
    true
}

fn check<G: Geometry>() {
    QuickCheck::new().tests(CASES).quickcheck(run::<G> as fn(Ops<G>) -> bool);
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri; the tiny and flat geometries run the same code")]
fn model_x86_4level() {
    check::<X86_4Level>();
}

#[test]
#[cfg_attr(miri, ignore = "minutes under Miri; the tiny and flat geometries run the same code")]
fn model_x86_5level() {
    check::<mem_table::X86_5Level>();
}

#[test]
fn model_tiny_bottom_smaller_than_a_word() {
    check::<Tiny>();
}

#[test]
fn model_flat_root_is_bottom() {
    check::<Flat>();
}

// ---- edge cases and the KVM layout -----------------------------------------

#[test]
fn marks_and_errors() {
    let b: PageBitmap = PageBitmap::new();
    assert_eq!(b.last_addr(), Some((1 << 48) - 1));
    assert_eq!(b.mark(0x1234), Ok(true));
    assert_eq!(b.mark(0x1fff), Ok(false));
    assert!(b.is_marked(0x1000) && !b.is_marked(0x2000) && !b.is_marked(u64::MAX));
    assert_eq!(b.mark_range(0xfff..0x1001), Ok(1)); // pages 0 and 1: 1 was marked
    assert_eq!(b.mark_range(0x5000..0x5000), Ok(0));
    assert_eq!(b.mark_range(0x5000..=0x5000), Ok(1));
    #[allow(clippy::reversed_empty_ranges)] // the point
    let reversed = 0x6001..0x6000;
    assert_eq!(b.mark_range(reversed).unwrap_err().kind(), ErrorKind::EmptyRange);
    let e = b.mark(1 << 48).unwrap_err();
    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, 1 << 48));
    let e = b.mark_range((1 << 48) - 0x1000..(1 << 48) + 1).unwrap_err();
    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, 1 << 48));
    assert!(!b.is_marked((1 << 48) - 0x1000), "a refused range marks nothing");
    assert_eq!(b.mark_len((1 << 48) - 0x1000, 0x10_0000), 1, "mark_len clips");
    assert_eq!(b.mark_len(u64::MAX - 5, 100), 0);
    assert_eq!(b.count(), 4);
    assert_eq!(b.take_pages(), [0, 0x1000, 0x5000, (1 << 48) - 0x1000]);
    assert_eq!(b.take_pages(), Vec::<u64>::new());
    let mut out = [0u64; 1];
    assert_eq!(b.take_bitmap(0x800, &mut out).unwrap_err().kind(), ErrorKind::Misaligned);
    assert_eq!(b.take_bitmap((1 << 48) - 0x1000, &mut out).unwrap_err().kind(), ErrorKind::OutOfReach);
    assert_eq!(b.take_bitmap(!0xfff, &mut out).unwrap_err().kind(), ErrorKind::OutOfReach);

    let z: PageBitmap = PageBitmap::with_limit(0);
    assert_eq!(z.last_addr(), None);
    assert_eq!(z.mark(0).unwrap_err().kind(), ErrorKind::OutOfReach);
    assert_eq!(z.mark_len(0, 10), 0);
    assert!(z.take_pages().is_empty());
}

#[test]
fn tables_and_bytes() {
    let mut b: PageBitmap = PageBitmap::new();
    let top = b.bytes();
    assert_eq!(b.tables(), 1);
    assert!(top >= 512 * 8);
    b.mark(0x1000).unwrap(); // a table at each of levels 2, 1, 0
    assert_eq!(b.tables(), 4);
    let bottom = 512 / 8; // 64 bytes of bits, plus a header
    assert!(b.bytes() >= 3 * top + bottom && b.bytes() < 3 * top + bottom + 64);
    b.mark(0x1f_f000).unwrap(); // the same 2 MiB
    assert_eq!(b.tables(), 4);
    b.mark(0x20_0000).unwrap(); // the next one
    assert_eq!(b.tables(), 5);
    b.take_pages();
    assert_eq!(b.tables(), 5, "a harvest keeps the tables");
    b.clear();
    assert_eq!((b.tables(), b.bytes(), b.count()), (1, top, 0));
    b.mark(0x1000).unwrap();
    assert_eq!(b.take_pages(), [0x1000]);
}

/// The KVM layout, against `PageSet::write_bitmap` (the crate's other
/// writer of it), at aligned and unaligned bases.
#[test]
fn take_bitmap_is_kvm_layout() {
    let pages: Vec<u64> = (0..if cfg!(miri) { 60u64 } else { 400 })
        .map(|k| (k * k * 7919 % 3000) << 12)
        .chain([0x3f_f000, 0x40_0000])
        .collect();
    let bases: &[u64] = if cfg!(miri) {
        &[0, 0x3f000, 0x3f_f000]
    } else {
        &[0, 0x1000, 0x3f000, 0x40000, 0x3c_0000, 0x3f_f000, 0x12_3000]
    };
    for &base in bases {
        for words in if cfg!(miri) { vec![1usize, 9] } else { vec![1usize, 2, 3, 9, 64] } {
            let b: PageBitmap = PageBitmap::new();
            let mut set = PageSet::new();
            for &p in &pages {
                b.mark(p).unwrap();
                set.insert(p).unwrap();
            }
            let mut want = vec![0; words];
            let n = set.write_bitmap(base, &mut want).unwrap();
            let mut got = vec![u64::MAX; words];
            assert_eq!(b.take_bitmap(base, &mut got), Ok(n), "base {base:#x}, {words} words");
            assert_eq!(got, want, "base {base:#x}, {words} words");
            // Exactly those pages were taken; the others are still there.
            let end = base + words as u64 * 64 * 4096;
            let left: Vec<u64> = pages
                .iter()
                .copied()
                .filter(|&p| p < base || p >= end)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(b.pages(), left);
        }
    }
}

// ---- concurrency -----------------------------------------------------------

/// A page for marker `t`'s `k`-th mark: scattered over a few GiB so that
/// tables are created during the race, with overlap between threads.
fn page_of(t: u64, k: u64) -> u64 {
    let x = (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ t.wrapping_mul(0x2545_f491)) >> 20;
    let region = x % 40; // 40 regions of 2 MiB over 5 GiB: 40 bottom tables
    let off = (x >> 8) % 600; // more than one table: crosses into the next region
    (region * 0x8020_0000 + off * 0x1000) % (5 << 30)
}

/// `markers` threads mark `per` pages each (by `mark` and `mark_range`)
/// while `harvesters` threads harvest until the markers are done; then a
/// last harvest. Every page is marked by 0->1 transitions and taken by
/// harvests: their numbers must agree, page by page (nothing lost, nothing
/// invented, nothing taken twice for one mark), and the union of harvests
/// must be the union of marks. The tables are counted exactly (the losers
/// of a creation race freed theirs: Miri checks the leak).
fn race(markers: u64, harvesters: usize, per: u64) {
    let b: PageBitmap = PageBitmap::new();
    let done = AtomicUsize::new(0);
    let start = Barrier::new(markers as usize + harvesters);
    let (marks, harvests) = std::thread::scope(|s| {
        let ms: Vec<_> = (0..markers)
            .map(|t| {
                let (b, done, start) = (&b, &done, &start);
                s.spawn(move || {
                    // (page, set by this thread) for each mark.
                    let mut mine: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
                    start.wait();
                    for k in 0..per {
                        let p = page_of(t, k);
                        if k % 5 == 0 {
                            // Three pages at once (one may be past a table's end).
                            let n = b.mark_range(p + 0x800..p + 0x2801).unwrap();
                            let e = mine.entry(p).or_default();
                            e.0 += 1;
                            mine.entry(p + 0x1000).or_default().0 += 1;
                            mine.entry(p + 0x2000).or_default().0 += 1;
                            // Which of the three were new is not known one
                            // by one: credit the count to the first.
                            mine.entry(p).or_default().1 += n;
                        } else {
                            let new = b.mark(p).unwrap();
                            let e = mine.entry(p).or_default();
                            e.0 += 1;
                            e.1 += new as u64;
                        }
                    }
                    done.fetch_add(1, SeqCst);
                    mine
                })
            })
            .collect();
        let hs: Vec<_> = (0..harvesters)
            .map(|_| {
                let (b, done, start) = (&b, &done, &start);
                s.spawn(move || {
                    let mut got: BTreeMap<u64, u64> = BTreeMap::new();
                    start.wait();
                    loop {
                        // Read before harvesting: the last round runs after
                        // every marker finished.
                        let finished = done.load(SeqCst) == markers as usize;
                        let mut prev = None;
                        b.take_words(.., |a, w| {
                            assert!(prev < Some(a), "one harvest ascends");
                            prev = Some(a);
                            for i in 0..64 {
                                if w & (1 << i) != 0 {
                                    *got.entry(a + i * 4096).or_default() += 1;
                                }
                            }
                        });
                        if finished {
                            return got;
                        }
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        let marks: Vec<_> = ms.into_iter().map(|h| h.join().unwrap()).collect();
        let harvests: Vec<_> = hs.into_iter().map(|h| h.join().unwrap()).collect();
        (marks, harvests)
    });
    assert_eq!(b.count(), 0, "the last harvest ran after every mark");
    let mut marked: BTreeMap<u64, u64> = BTreeMap::new(); // page -> marks
    let mut sets = 0; // 0 -> 1 transitions reported by the markers
    for m in &marks {
        for (&p, &(n, s)) in m {
            *marked.entry(p).or_default() += n;
            sets += s;
        }
    }
    let mut taken: BTreeMap<u64, u64> = BTreeMap::new();
    for h in &harvests {
        for (&p, &n) in h {
            *taken.entry(p).or_default() += n;
        }
    }
    assert_eq!(
        marked.keys().collect::<Vec<_>>(),
        taken.keys().collect::<Vec<_>>(),
        "union of harvests == union of marks"
    );
    for (p, n) in &taken {
        assert!(*n <= marked[p], "page {p:#x} taken {n} times, marked {} times", marked[p]);
    }
    assert_eq!(taken.values().sum::<u64>(), sets, "every 0->1 transition is taken exactly once");
    // The tables: the root, and one per distinct region of each level.
    let mut want = 1;
    for shift in [21, 30, 39] {
        want += marked.keys().map(|p| p >> shift).collect::<BTreeSet<_>>().len();
    }
    assert_eq!(b.tables(), want);
}

#[test]
fn concurrent_markers_and_one_harvester() {
    race(2, 1, if cfg!(miri) { 60 } else { 20_000 });
}

#[test]
fn concurrent_markers_and_two_harvesters() {
    race(3, 2, if cfg!(miri) { 40 } else { 10_000 });
}

/// Markers that all start on an empty bitmap at once and mark the same
/// pages: every table is raced for.
#[test]
fn concurrent_table_creation() {
    let rounds = if cfg!(miri) { 2 } else { 200 };
    for _ in 0..rounds {
        let b: PageBitmap = PageBitmap::new();
        let start = Barrier::new(3);
        let news: Vec<u64> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3)
                .map(|_| {
                    let (b, start) = (&b, &start);
                    s.spawn(move || {
                        start.wait();
                        (0..4u64).map(|k| b.mark(k << 30 | 0x1000).unwrap() as u64).sum::<u64>()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(news.iter().sum::<u64>(), 4, "each page newly set once: {news:?}");
        assert_eq!(b.tables(), 1 + 1 + 4 + 4);
        assert_eq!(b.take_pages(), [0x1000, 0x4000_1000, 0x8000_1000, 0xc000_1000]);
    }
}

// ---- vm-memory -------------------------------------------------------------

/// vm-memory's checks of a `Bitmap` (its `bitmap::tests` and
/// `backend::atomic_bitmap` tests), applied to `PageBitmap`; written here,
/// since vm-memory's helpers are private to its own tests.
#[cfg(feature = "vm-memory")]
mod vm {
    use super::*;
    use vm_memory::bitmap::{Bitmap, NewBitmap};
    use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

    fn range_is_clean<B: Bitmap>(b: &B, start: usize, len: usize) -> bool {
        (start..start + len).all(|o| !b.dirty_at(o))
    }

    fn range_is_dirty<B: Bitmap>(b: &B, start: usize, len: usize) -> bool {
        (start..start + len).all(|o| b.dirty_at(o))
    }

    fn check_range<B: Bitmap>(b: &B, start: usize, len: usize, clean: bool) -> bool {
        if clean { range_is_clean(b, start, len) } else { range_is_dirty(b, start, len) }
    }

    /// vm-memory's `test_bitmap`, at this bitmap's 4 KiB pages: the
    /// offsets are vm-memory's scaled to whole pages (theirs assume 128-byte
    /// or 1-byte pages), plus the page rounding that a 4 KiB page implies.
    fn test_bitmap<B: Bitmap>(b: &B) {
        let (len, dirty_offset, dirty_len) = (0x8_0000, 0x4_0000, 0x1_0000);
        let s = b.slice_at(dirty_offset);
        assert!(range_is_clean(b, 0, len));
        assert!(range_is_clean(&s, 0, dirty_len));
        b.mark_dirty(dirty_offset, dirty_len);
        assert!(range_is_dirty(b, dirty_offset, dirty_len));
        assert!(range_is_dirty(&s, 0, dirty_len));
        assert!(range_is_clean(b, 0, dirty_offset) && range_is_clean(b, dirty_offset + dirty_len, 0x1000));
        // One byte dirties its whole page, and nothing else.
        b.mark_dirty(0x7_0fff, 1);
        assert!(range_is_dirty(b, 0x7_0000, 0x1000) && range_is_clean(b, 0x7_1000, 0x1000));
        assert!(range_is_clean(b, 0x6_f000, 0x1000));
        b.mark_dirty(0x7_8000, 0); // empty
        assert!(range_is_clean(b, 0x7_8000, 0x1000));
    }

    #[test]
    fn bitmap_impl() {
        test_bitmap(&PageBitmap::<X86_4Level>::with_len(0x8_0000));
        // Through a slice, and a slice of a slice.
        let b: PageBitmap = PageBitmap::with_len(0x10_0000);
        test_bitmap(&b.slice_at(0));
        let s = b.slice_at(0x1000).slice_at(0x2000);
        s.mark_dirty(0, 1);
        assert!(b.dirty_at(0x3000) && s.dirty_at(0xfff) && !s.dirty_at(0x1000) && !b.dirty_at(0x2fff));
        assert_eq!((s.offset(), std::ptr::eq(s.bitmap(), &b)), (0x3000, true));
    }

    /// `test_bitmap_basic` and `test_bitmap_reset`, at 4 KiB pages: sizes
    /// round up to pages, a range marks the pages it touches, a harvest is
    /// `get_and_reset`.
    #[test]
    fn basic_and_reset() {
        let a: PageBitmap = PageBitmap::with_len(9 * 4096 - 1023);
        assert_eq!(a.last_addr(), Some(9 * 4096 - 1)); // 9 pages
        let b: PageBitmap = PageBitmap::with_len(8 * 4096);
        assert_eq!(b.last_addr(), Some(8 * 4096 - 1));
        b.mark_dirty(4096, 4097);
        assert!(!b.dirty_at(0) && b.dirty_at(4096) && b.dirty_at(8192) && !b.dirty_at(3 * 4096));
        let mut v = [0u64; 1];
        assert_eq!(b.take_bitmap(0, &mut v), Ok(2));
        assert_eq!(v, [0b110]);
        assert!(!b.dirty_at(4096) && !b.dirty_at(8192));
        b.mark_dirty(4096, 4097);
        assert_eq!(b.take_words(4096..4097, |_, _| {}), 1, "reset_addr_range of one page");
        assert!(!b.dirty_at(4096) && b.dirty_at(8192));
    }

    /// `test_bitmap_out_of_range`: never set beyond the end; a range's end
    /// saturates.
    #[test]
    fn out_of_range() {
        let b: PageBitmap = PageBitmap::with_len(1024 * 4096);
        b.mark_dirty(768 * 4096, 512 * 4096);
        assert!(b.dirty_at(768 * 4096) && b.dirty_at(1023 * 4096 + 4095));
        assert!(!b.dirty_at(1024 * 4096) && !b.dirty_at(1152 * 4096));
        assert_eq!(b.count(), 256);
        b.mark_dirty(usize::MAX - 10, 100);
        b.mark_dirty(1024 * 4096, usize::MAX);
        assert_eq!(b.count(), 256);
        let full: PageBitmap = PageBitmap::default(); // the whole 48-bit reach
        full.mark_dirty((1 << 48) - 1, usize::MAX);
        assert_eq!(full.take_pages(), [(1 << 48) - 4096]);
    }

    /// vm-memory's `test_slice`.
    #[test]
    fn slice() {
        let (size, off, len) = (0x8_0000, 0x4_0000, 0x1_0000);
        let b: PageBitmap = PageBitmap::with_len(size);
        let (s1, s2) = (b.slice_at(0), b.slice_at(off));
        assert!(range_is_clean(&s1, 0, size) && range_is_clean(&s2, 0, len));
        b.mark_dirty(off, len);
        assert!(range_is_dirty(&s1, off, len) && range_is_dirty(&s2, 0, len));
        assert!(check_range(&s2, len, 0x1000, true) && check_range(&s1, off, len, false));
    }

    /// vm-memory's `test_guest_memory_and_region` and `test_bytes`, with
    /// `GuestMemoryMmap<PageBitmap>`: each region's bitmap (keyed by the
    /// offset in the region) records the guest writes.
    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn guest_memory_mmap() {
        let size = 0x10_0000;
        let m: GuestMemoryMmap<PageBitmap> =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size), (GuestAddress(0x40_0000), size)])
                .unwrap();
        let (region, ra) = m.to_region_addr(GuestAddress(0x1000)).unwrap();
        let slice = m.get_slices(GuestAddress(0x1000), 8).next().unwrap().unwrap();
        assert!(range_is_clean(&region.bitmap(), 0, region.len() as usize));
        assert!(range_is_clean(slice.bitmap(), 0, 8));
        m.write_obj(123u64, GuestAddress(0x1000)).unwrap();
        assert!(range_is_dirty(&region.bitmap(), ra.0 as usize, 8));
        assert!(range_is_dirty(slice.bitmap(), 0, 8));

        // `test_bytes`: write, write_slice, write_obj and store, a page apart,
        // in the second region.
        let check = |start: u64, len: usize, clean: bool| {
            m.get_slices(GuestAddress(start), len).all(|r| {
                let s = r.unwrap();
                check_range(s.bitmap(), 0, s.len(), clean)
            })
        };
        let buf = vec![1u8; 1024];
        let mut a = 0x40_1000;
        assert!(check(a, 1024, true));
        assert_eq!(m.write(&buf, GuestAddress(a)).unwrap(), 1024);
        assert!(check(a, 1024, false));
        a += 0x1000;
        assert!(check(a, 1024, true));
        m.write_slice(&buf, GuestAddress(a)).unwrap();
        assert!(check(a, 1024, false));
        a += 0x1000;
        assert!(check(a, 1024, true));
        m.write_obj(1u64, GuestAddress(a)).unwrap();
        assert!(check(a, 8, false));
        a += 0x1000;
        assert!(check(a, 1024, true));
        m.store(1u64, GuestAddress(a), std::sync::atomic::Ordering::Relaxed).unwrap();
        assert!(check(a, 8, false));

        // The harvest, per region, in region offsets.
        let r2 = m.find_region(GuestAddress(0x40_0000)).unwrap();
        assert_eq!(r2.bitmap().bitmap().take_runs(), vec![0x1000..0x5000]);
        let r1 = m.find_region(GuestAddress(0)).unwrap();
        assert_eq!(r1.bitmap().bitmap().take_pages(), [0x1000]);
        assert!(check(0, 8, true) && check(0x40_1000, 0x4000, true));
        // A write across the two regions' boundary is not possible (a gap);
        // one across two pages marks both.
        m.write_obj(7u64, GuestAddress(0x40_2ffc)).unwrap();
        assert_eq!(r2.bitmap().bitmap().take_pages(), [0x2000, 0x3000]);
    }

    /// What the bitmap is for, end to end: two vCPU threads write guest
    /// memory through `GuestMemoryMmap<PageBitmap>` while a migration thread
    /// harvests the dirty pages and copies them to a destination, round
    /// after round; after the vCPUs stop, one last round. The destination
    /// must then equal the guest memory, byte for byte. (Bounded: a fixed
    /// number of writes. The copies race with the guest's writes as in any
    /// live migration, through vm-memory's volatile accesses.)
    #[test]
    #[cfg_attr(miri, ignore)] // mmap
    fn migration_copies_every_write() {
        const SIZE: usize = 0x40_0000; // 1024 pages
        let m: GuestMemoryMmap<PageBitmap> =
            GuestMemoryMmap::from_ranges(&[(GuestAddress(0), SIZE)]).unwrap();
        let done = AtomicUsize::new(0);
        let mut dest = vec![0u8; SIZE];
        let rounds = std::thread::scope(|s| {
            for t in 0..2u64 {
                let (m, done) = (&m, &done);
                s.spawn(move || {
                    for k in 0..20_000u64 {
                        let x = (k + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ t;
                        let page = (x >> 40) % 1024;
                        let slot = (x >> 20) % 512;
                        m.write_obj(x, GuestAddress(page * 4096 + slot * 8)).unwrap();
                    }
                    done.fetch_add(1, SeqCst);
                });
            }
            let bitmap = m.find_region(GuestAddress(0)).unwrap().bitmap().bitmap();
            let mut rounds = 0;
            loop {
                let last = done.load(SeqCst) == 2;
                for r in bitmap.take_runs() {
                    let (a, z) = (r.start as usize, r.end as usize);
                    m.read_slice(&mut dest[a..z], GuestAddress(r.start)).unwrap();
                }
                rounds += 1;
                if last {
                    return rounds;
                }
            }
        });
        let mut src = vec![0u8; SIZE];
        m.read_slice(&mut src, GuestAddress(0)).unwrap();
        assert!(rounds > 1);
        assert!(src == dest, "a write was not copied ({rounds} rounds)");
        assert!(src.iter().any(|&b| b != 0));
    }
}
