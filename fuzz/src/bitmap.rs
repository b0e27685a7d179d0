//! The `bitmap` target's interpreter: `sync::PageBitmap` against a
//! `BTreeSet` of marked page addresses, single-threaded (the loom models
//! and `tests/sync_bitmap.rs`'s races cover the concurrency).
//!
//! The model's rules, from `PageBitmap`'s docs:
//!
//! - the tracked pages are those of `[0, limit)` (clipped to the reach), or
//!   the whole reach without a limit; `last_addr` is the last tracked byte;
//! - `mark(a)` marks `a`'s page and says whether it was new, or refuses an
//!   untracked page with `OutOfReach` at `a`;
//! - `mark_range(r)` marks every page the bytes of `r` touch and returns
//!   how many were new; an empty range (`a..a`, or a bound that overflows)
//!   marks nothing; a reversed one is `EmptyRange` at its start; one that
//!   reaches an untracked page is `OutOfReach` at the first untracked
//!   address it holds, and marks nothing;
//! - `mark_len(a, n)` marks the tracked pages the `n` bytes at `a` touch
//!   (saturating at `u64::MAX`) and ignores the rest;
//! - `is_marked`, `count` and `pages` peek; `take_words` takes the marked
//!   pages of a range (clipped to the tracked ones), word by word in
//!   ascending order; `take_pages` and `take_runs` take everything;
//! - `take_bitmap(base, out)` refuses a misaligned `base` (`Misaligned` at
//!   `base`), then an empty `out` takes nothing, then a span past the
//!   geometry's reach (not the limit) is `OutOfReach` at the first address
//!   beyond (`max(base, reach end)`), `out` unchanged; else `out` becomes
//!   the KVM-layout bitmap of the span's marked pages, which are taken;
//! - `clear` unmarks everything and frees every table but the root.
//!
//! After every op: `count` against the model; `pages` (the whole set) after
//! every op while the set is small, else every 16th; `tables` never drops
//! but at `clear` (to 1).

use std::collections::BTreeSet;
use std::ops::{Bound, RangeBounds};

use arbitrary::{Arbitrary, Unstructured};
use mem_table::geometry::{Custom, Geometry, X86_4Level, X86_5Level};
use mem_table::sync::PageBitmap;
use mem_table::typenum::{U3, U7, U12};
use mem_table::{ErrorKind, Level};

/// Three 3-bit levels: 8 pages per bottom table, less than a word.
pub type Tiny = Custom<U12, (U3, U3, U3)>;
/// One level: the root is the bottom table (128 pages, two words).
pub type Flat = Custom<U12, (U7,)>;

/// The most ops in one case.
pub const MAX_OPS: usize = 256;
/// The most pages one op may mark (an op that would mark more is skipped:
/// a range to the end of x86's reach is 2^36 pages).
pub const MAX_MARK: u64 = 1 << 14;

/// An address, symbolically (resolved by [`BAddr::resolve`] per geometry
/// and limit): near a slot boundary of some level, the end of the reach,
/// or the limit, a few pages either side and any byte in the page; or
/// anything.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum BAddr {
    /// Slot `slot` of level `level % levels`'s slot size (masked to the
    /// reach), then `pages` pages and `byte % page` bytes on.
    Slot {
        level: u8,
        slot: u16,
        pages: i8,
        byte: u16,
    },
    /// `pages` pages below the end of the reach (negative: past it).
    Top {
        pages: i8,
        byte: u16,
    },
    /// `pages` pages from the limit (the end of the reach without one).
    Limit {
        pages: i8,
        byte: u16,
    },
    Any(u64),
}

/// A range's shape: its bounds around two addresses.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Shape {
    /// `a..a + len`.
    Len(Len),
    /// `a..=a + len`.
    LenIncl(Len),
    /// `a..b`, as given (possibly reversed).
    Excl,
    /// `a..=b`, as given.
    Incl,
    /// `..b`.
    To,
    /// `a..`.
    From,
    /// `(Excluded(a), Included(b))`.
    After,
    /// `..`.
    Full,
}

/// A length, small mostly.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Len {
    Bytes(u16),
    Pages(u8),
    Mib(u8),
    Any(u64),
}

impl Len {
    fn get(self, ps: u64) -> u64 {
        match self {
            Len::Bytes(n) => n.into(),
            Len::Pages(n) => u64::from(n) * ps,
            Len::Mib(n) => u64::from(n % 64) << 20,
            Len::Any(n) => n,
        }
    }
}

/// A range: two addresses and a shape.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct BRange {
    pub a: BAddr,
    pub b: BAddr,
    pub shape: Shape,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Op {
    Mark(BAddr),
    MarkRange(BRange),
    MarkLen(BAddr, Len),
    Peek(BAddr),
    TakeWords(BRange),
    /// `take_bitmap` at `base` (page-aligned unless `misalign`) into
    /// `words % 40` words, first filled with `fill`.
    TakeBitmap {
        base: BAddr,
        misalign: bool,
        words: u8,
        fill: u64,
    },
    TakePages,
    TakeRuns,
    Pages,
    Clear,
}

/// The geometry of a case.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Geo {
    X86,
    X86Five,
    Tiny,
    Flat,
}

/// One case: the geometry, the limit (`None`: `new`), then ops until the
/// input runs out (at most [`MAX_OPS`]).
#[derive(Clone, Debug)]
pub struct Case {
    pub geo: Geo,
    pub limit: Option<BAddr>,
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Case> {
        let geo = u.arbitrary()?;
        let limit = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Case { geo, limit, ops })
    }
}

/// Runs a case; panics where the bitmap and the model disagree.
pub fn run(case: &Case) {
    match case.geo {
        Geo::X86 => Run::<X86_4Level>::go(case),
        Geo::X86Five => Run::<X86_5Level>::go(case),
        Geo::Tiny => Run::<Tiny>::go(case),
        Geo::Flat => Run::<Flat>::go(case),
    }
}

struct Run<G: Geometry> {
    b: PageBitmap<G>,
    m: BTreeSet<u64>,
    /// The limit given (`None`: the whole reach).
    limit: Option<u64>,
    /// The last tracked byte, by the model's rule.
    last: Option<u64>,
}

impl<G: Geometry> Run<G> {
    const PS: u64 = 1 << G::PAGE_SHIFT;
    /// The last byte of the reach.
    const REACH_LAST: u64 = if G::ADDRESS_BITS >= 64 { u64::MAX } else { (1 << G::ADDRESS_BITS) - 1 };

    fn page(a: u64) -> u64 {
        a & !(Self::PS - 1)
    }

    fn tracked(&self, a: u64) -> bool {
        self.last.is_some_and(|l| a <= l)
    }

    fn resolve(&self, a: BAddr) -> u64 {
        let ps = Self::PS;
        let near = |anchor: u64, pages: i8, byte: u16| {
            anchor
                .wrapping_add_signed(i64::from(pages).wrapping_mul(ps as i64))
                .wrapping_add(u64::from(byte) % ps)
        };
        match a {
            BAddr::Slot { level, slot, pages, byte } => {
                let l = Level::new(level % G::LEVELS as u8);
                let shift = G::page_shift(l).expect("a level");
                let anchor = u64::from(slot).checked_shl(shift).unwrap_or(0) & Self::REACH_LAST;
                near(anchor, pages, byte)
            }
            BAddr::Top { pages, byte } => near(Self::REACH_LAST.wrapping_add(1), pages.wrapping_neg(), byte),
            BAddr::Limit { pages, byte } => {
                near(self.limit.unwrap_or(Self::REACH_LAST.wrapping_add(1)), pages, byte)
            }
            BAddr::Any(a) => a,
        }
    }

    fn bounds(&self, r: BRange) -> (Bound<u64>, Bound<u64>) {
        use Bound::{Excluded, Included, Unbounded};
        let (a, b) = (self.resolve(r.a), self.resolve(r.b));
        match r.shape {
            Shape::Len(n) => (Included(a), Excluded(a.saturating_add(n.get(Self::PS)))),
            Shape::LenIncl(n) => (Included(a), Included(a.saturating_add(n.get(Self::PS)))),
            Shape::Excl => (Included(a), Excluded(b)),
            Shape::Incl => (Included(a), Included(b)),
            Shape::To => (Unbounded, Excluded(b)),
            Shape::From => (Included(a), Unbounded),
            Shape::After => (Excluded(a), Included(b)),
            Shape::Full => (Unbounded, Unbounded),
        }
    }

    /// The first and last byte a range holds, `end` standing for an
    /// unbounded end; `None` if a bound overflows (the range is empty).
    fn ends(r: &(Bound<u64>, Bound<u64>), end: Option<u64>) -> Option<(u64, u64)> {
        let lo = match r.start_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_add(1)?,
            Bound::Unbounded => 0,
        };
        let hi = match r.end_bound() {
            Bound::Included(&a) => a,
            Bound::Excluded(&a) => a.checked_sub(1)?,
            Bound::Unbounded => end?,
        };
        Some((lo, hi))
    }

    /// The pages of the bytes `lo..=hi`.
    fn pages_in(lo: u64, hi: u64) -> impl Iterator<Item = u64> {
        (lo >> G::PAGE_SHIFT..=hi >> G::PAGE_SHIFT).map(|p| p << G::PAGE_SHIFT)
    }

    /// Marks the pages of `lo..=hi` in the model; the number new.
    fn model_mark(&mut self, lo: u64, hi: u64) -> u64 {
        Self::pages_in(lo, hi).filter(|&p| self.m.insert(p)).count() as u64
    }

    fn go(case: &Case) {
        let ps = Self::PS;
        let mut r =
            Run::<G> { b: PageBitmap::new(), m: BTreeSet::new(), limit: None, last: Some(Self::REACH_LAST) };
        if let Some(l) = case.limit {
            let l = r.resolve(l);
            r.b = PageBitmap::with_limit(l);
            r.limit = Some(l);
            // `[0, l)`'s pages: the last byte of the page of `l - 1`.
            r.last = l.checked_sub(1).map(|a| (a | (ps - 1)).min(Self::REACH_LAST));
        }
        assert_eq!(r.b.last_addr(), r.last, "last_addr (limit {:x?})", r.limit);
        assert_eq!(r.b.tables(), 1, "a new bitmap has its root only");
        let mut tables = 1;
        for (k, &op) in case.ops.iter().enumerate() {
            r.step(op);
            assert_eq!(r.b.count(), r.m.len() as u64, "count after op {k} {op:x?}");
            if r.m.len() < 512 || k % 16 == 15 {
                assert!(r.b.pages().iter().eq(r.m.iter()), "pages after op {k} {op:x?}");
            }
            let now = r.b.tables();
            if matches!(op, Op::Clear) {
                assert_eq!(now, 1, "clear leaves the root only");
            } else {
                assert!(now >= tables, "tables {tables} -> {now} without a clear (op {k} {op:x?})");
            }
            tables = now;
        }
        assert!(r.b.take_pages().into_iter().eq(std::mem::take(&mut r.m)), "the final harvest");
        assert_eq!(r.b.count(), 0);
    }

    fn step(&mut self, op: Op) {
        let ps = Self::PS;
        match op {
            Op::Mark(a) => {
                let a = self.resolve(a);
                let got = self.b.mark(a);
                if self.tracked(a) {
                    assert_eq!(got, Ok(self.m.insert(Self::page(a))), "mark {a:#x}");
                } else {
                    let e = got.expect_err("an untracked mark is refused");
                    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfReach, a), "mark {a:#x}");
                }
            }
            Op::MarkRange(r) => {
                let r = self.bounds(r);
                let want = match Self::ends(&r, self.last) {
                    None => Ok(None),
                    Some((lo, hi)) if lo <= hi => match self.last {
                        Some(last) if hi <= last => Ok(Some((lo, hi))),
                        Some(last) => Err((ErrorKind::OutOfReach, lo.max(last + 1))),
                        None => Err((ErrorKind::OutOfReach, lo)),
                    },
                    // `a..a`: empty.
                    Some((lo, hi)) if lo - hi == 1 => Ok(None),
                    Some((lo, _)) => Err((ErrorKind::EmptyRange, lo)),
                };
                if let Ok(Some((lo, hi))) = want {
                    if (hi >> G::PAGE_SHIFT) - (lo >> G::PAGE_SHIFT) >= MAX_MARK {
                        return;
                    }
                }
                let got = self.b.mark_range(r);
                match want {
                    Ok(None) => assert_eq!(got, Ok(0), "mark_range {r:x?}: empty"),
                    Ok(Some((lo, hi))) => {
                        let new = self.model_mark(lo, hi);
                        assert_eq!(got, Ok(new), "mark_range {r:x?}");
                    }
                    Err(e) => {
                        let got = got.expect_err("mark_range refused");
                        assert_eq!((got.kind(), got.addr()), e, "mark_range {r:x?}");
                    }
                }
            }
            Op::MarkLen(a, n) => {
                let (a, n) = (self.resolve(a), n.get(ps));
                let span = match self.last {
                    Some(last) if n > 0 && a <= last => Some((a, a.saturating_add(n - 1).min(last))),
                    _ => None,
                };
                if span.is_some_and(|(lo, hi)| (hi >> G::PAGE_SHIFT) - (lo >> G::PAGE_SHIFT) >= MAX_MARK) {
                    return;
                }
                let got = self.b.mark_len(a, n);
                let new = span.map_or(0, |(lo, hi)| self.model_mark(lo, hi));
                assert_eq!(got, new, "mark_len {a:#x} {n:#x}");
            }
            Op::Peek(a) => {
                let a = self.resolve(a);
                assert_eq!(self.b.is_marked(a), self.m.contains(&Self::page(a)), "is_marked {a:#x}");
            }
            Op::TakeWords(r) => {
                let r = self.bounds(r);
                // Words of `min(64, fan-out)` pages: the address of each is
                // aligned to that many pages.
                let word_pages =
                    64.min(1u64 << (G::page_shift(Level::new(1)).unwrap_or(G::ADDRESS_BITS) - G::PAGE_SHIFT));
                let mut got: Vec<u64> = Vec::new();
                let mut last_word = None;
                let n = self.b.take_words(r, |w, bits| {
                    assert_ne!(bits, 0, "take_words: a zero word");
                    assert_eq!(w % (word_pages * ps), 0, "take_words: word {w:#x} misaligned");
                    assert!(last_word.is_none_or(|l| l < w), "take_words: words not ascending");
                    assert!(word_pages == 64 || bits >> word_pages == 0, "bits past the table");
                    last_word = Some(w);
                    got.extend((0..64).filter(|i| bits & (1 << i) != 0).map(|i| w + i * ps));
                });
                // The range's bytes, clipped to the tracked ones (an
                // unbounded end is the end of the `u64`).
                let want: Vec<u64> = match (Self::ends(&r, Some(u64::MAX)), self.last) {
                    (Some((lo, hi)), Some(last)) if lo <= hi => {
                        let hi = hi.min(last);
                        if lo <= hi {
                            self.m.range(Self::page(lo)..=Self::page(hi)).copied().collect()
                        } else {
                            Vec::new()
                        }
                    }
                    _ => Vec::new(),
                };
                for p in &want {
                    self.m.remove(p);
                }
                assert_eq!(got, want, "take_words {r:x?}");
                assert_eq!(n, want.len() as u64, "take_words {r:x?}: the count");
            }
            Op::TakeBitmap { base, misalign, words, fill } => {
                let base = self.resolve(base);
                let base = if misalign { base | 1 } else { Self::page(base) };
                let words = usize::from(words % 40);
                let mut out = vec![fill; words];
                let got = self.b.take_bitmap(base, &mut out);
                if base % ps != 0 {
                    let e = got.expect_err("a misaligned base is refused");
                    assert_eq!((e.kind(), e.addr()), (ErrorKind::Misaligned, base));
                    assert!(out.iter().all(|&w| w == fill), "out changed by a refusal");
                    return;
                }
                if words == 0 {
                    assert_eq!(got, Ok(0), "take_bitmap into nothing");
                    return;
                }
                // The span's last byte, if it is in the geometry's reach.
                let span_last = (words as u64 * 64).checked_mul(ps).and_then(|n| base.checked_add(n - 1));
                match span_last {
                    Some(hi) if hi <= Self::REACH_LAST => {
                        let mut taken = 0;
                        for (w, &word) in out.iter().enumerate() {
                            for i in 0..64 {
                                let p = base + (w as u64 * 64 + i) * ps;
                                let want = self.tracked(p) && self.m.remove(&p);
                                taken += want as u64;
                                assert_eq!(
                                    word & (1 << i) != 0,
                                    want,
                                    "take_bitmap {base:#x} x{words}: bit {i} of word {w} (page {p:#x})"
                                );
                            }
                        }
                        assert_eq!(got, Ok(taken), "take_bitmap {base:#x} x{words}: the count");
                    }
                    _ => {
                        let e = got.expect_err("a span past the reach is refused");
                        let first = base.max(Self::REACH_LAST.wrapping_add(1));
                        assert_eq!(
                            (e.kind(), e.addr()),
                            (ErrorKind::OutOfReach, first),
                            "take_bitmap {base:#x}"
                        );
                        assert!(out.iter().all(|&w| w == fill), "out changed by a refusal");
                    }
                }
            }
            Op::TakePages => {
                assert!(self.b.take_pages().into_iter().eq(std::mem::take(&mut self.m)), "take_pages");
            }
            Op::TakeRuns => {
                let runs = self.b.take_runs();
                let mut pages = Vec::new();
                for (k, r) in runs.iter().enumerate() {
                    assert!(r.start < r.end && r.start % ps == 0 && r.end % ps == 0, "a bad run {r:x?}");
                    if k > 0 {
                        assert!(runs[k - 1].end < r.start, "runs not maximal and ascending: {runs:x?}");
                    }
                    pages.extend((r.start..r.end).step_by(ps as usize));
                }
                assert!(pages.into_iter().eq(std::mem::take(&mut self.m)), "take_runs");
            }
            Op::Pages => assert!(self.b.pages().iter().eq(self.m.iter()), "pages"),
            Op::Clear => {
                self.b.clear();
                self.m.clear();
            }
        }
    }
}
