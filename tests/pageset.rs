//! `PageSet` against a model: a `BTreeSet` of page numbers.
//!
//! Random sequences of every mutation (KVM bitmaps at aligned and unaligned
//! bases, single pages, ranges with ragged ends) are applied to both; after
//! each step the set is compared with the model in full (pages, runs, count,
//! invariants), and every query is checked against the model's answer.
//! Addresses are drawn from a few zones that put words, bottom tables
//! (128 MiB), level-1 tables (64 GiB) and the top of the reach at stake.

// A run list of one run is what these tests compare with.
#![allow(clippy::single_range_in_vec_init)]

use std::collections::BTreeSet;
use std::ops::Range;

use mem_table::PageSet;
use mem_table::backend::{Backend, Pool};
use mem_table::pageset::{PAGE_SIZE, PageSetError, REACH, WORD_BYTES};
use quickcheck::{Arbitrary, Gen, QuickCheck};

/// Pages in the reach.
const PAGES: u64 = REACH / PAGE_SIZE;

/// Page numbers where zones start: the bottom, a bottom-table boundary
/// (128 MiB), a level-1 boundary (64 GiB), a level-2 boundary (32 TiB), and
/// just below the top.
const ZONES: [u64; 5] = [
    0,
    (128 << 20) / PAGE_SIZE - 700,
    (64 << 30) / PAGE_SIZE - 700,
    (32 << 40) / PAGE_SIZE - 700,
    PAGES - 1400,
];

/// A page number in one of the zones.
fn page(g: &mut Gen) -> u64 {
    let zone = ZONES[usize::arbitrary(g) % ZONES.len()];
    (zone + u64::arbitrary(g) % 1400).min(PAGES - 1)
}

/// A word of a bitmap: empty, full, one bit, sparse or random.
fn word(g: &mut Gen) -> u64 {
    match u8::arbitrary(g) % 6 {
        0 => 0,
        1 => !0,
        2 => 1 << (u8::arbitrary(g) % 64),
        3 => u64::arbitrary(g) & u64::arbitrary(g) & u64::arbitrary(g),
        4 => !0 << (u8::arbitrary(g) % 64),
        _ => u64::arbitrary(g),
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// `or_bitmap(base_page * 4096, words)`.
    Or(u64, Vec<u64>),
    Insert(u64),
    Remove(u64),
    /// `insert_range` of `n` pages from a page.
    InsertRange(u64, u64),
    ClearRange(u64, u64),
    /// `write_bitmap(base_page * 4096, [0; n])`, compared with the model.
    Write(u64, usize),
    /// Queries on a byte range (any bytes): count, runs, pages, both ways.
    Query(u64, u64, Vec<bool>),
    Clear,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let len = |g: &mut Gen| match u8::arbitrary(g) % 4 {
            0 => u64::arbitrary(g) % 3,
            1 => u64::arbitrary(g) % 70,
            2 => u64::arbitrary(g) % 300,
            _ => u64::arbitrary(g) % 2000,
        };
        match u8::arbitrary(g) % 20 {
            0..=4 => {
                let base = if bool::arbitrary(g) { page(g) & !63 } else { page(g) };
                let n = usize::arbitrary(g) % 24;
                Op::Or(base, (0..n).map(|_| word(g)).collect())
            }
            5..=6 => Op::Insert(page(g)),
            7..=8 => Op::Remove(page(g)),
            9..=10 => Op::InsertRange(page(g), len(g)),
            11..=13 => Op::ClearRange(page(g), len(g)),
            14..=15 => Op::Write(page(g), usize::arbitrary(g) % 24),
            16..=18 => {
                let lo = page(g) * PAGE_SIZE + u64::arbitrary(g) % (2 * PAGE_SIZE);
                let hi = lo + len(g) * PAGE_SIZE + u64::arbitrary(g) % PAGE_SIZE;
                let dirs = (0..u8::arbitrary(g) % 40).map(|_| bool::arbitrary(g)).collect();
                Op::Query(lo, hi, dirs)
            }
            _ => Op::Clear,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Op>> {
        match self {
            Op::Or(b, w) => {
                let b = *b;
                Box::new(w.shrink().map(move |w| Op::Or(b, w)))
            }
            Op::InsertRange(p, n) => {
                let p = *p;
                Box::new(n.shrink().map(move |n| Op::InsertRange(p, n)))
            }
            Op::ClearRange(p, n) => {
                let p = *p;
                Box::new(n.shrink().map(move |n| Op::ClearRange(p, n)))
            }
            _ => Box::new(std::iter::empty()),
        }
    }
}

/// The model's runs of the pages in `lo..hi` (page numbers), as byte ranges.
fn model_runs(m: &BTreeSet<u64>, lo: u64, hi: u64) -> Vec<Range<u64>> {
    let mut runs: Vec<Range<u64>> = Vec::new();
    for &p in m.range(lo..hi) {
        let a = p * PAGE_SIZE;
        match runs.last_mut() {
            Some(r) if r.end == a => r.end += PAGE_SIZE,
            _ => runs.push(a..a + PAGE_SIZE),
        }
    }
    runs
}

/// Takes items from the front or the back as `dirs` says, then the rest
/// from the front: the items in ascending order, if the iterator is right.
fn both_ways<T, I: DoubleEndedIterator<Item = T>>(mut it: I, dirs: &[bool]) -> Vec<T> {
    let (mut front, mut back) = (Vec::new(), Vec::new());
    for &d in dirs {
        let x = if d { it.next() } else { it.next_back() };
        match x {
            Some(x) if d => front.push(x),
            Some(x) => back.push(x),
            None => break,
        }
    }
    // The rest by internal iteration (`fold`), the steps above by `next`.
    it.for_each(|x| front.push(x));
    front.extend(back.into_iter().rev());
    front
}

/// The set and the model agree in full.
fn same<B: Backend>(s: &PageSet<B>, m: &BTreeSet<u64>) -> Result<(), String> {
    s.check_invariants()?;
    if s.len() != m.len() as u64 || s.count() != s.len() || s.is_empty() != m.is_empty() {
        return Err(format!("len {} count {} but the model has {}", s.len(), s.count(), m.len()));
    }
    let pages: Vec<u64> = s.iter().collect();
    let want: Vec<u64> = m.iter().map(|p| p * PAGE_SIZE).collect();
    if pages != want {
        return Err(format!("pages {pages:x?}, model {want:x?}"));
    }
    let runs: Vec<_> = s.runs().collect();
    let want = model_runs(m, 0, PAGES);
    if runs != want {
        return Err(format!("runs {runs:x?}, model {want:x?}"));
    }
    let folded = s.runs().fold(Vec::new(), |mut v, r| {
        v.push(r);
        v
    });
    if folded != want {
        return Err(format!("runs by fold {folded:x?}, model {want:x?}"));
    }
    let sum = s.iter().fold(0u64, |a, p| a.wrapping_add(p));
    if sum != m.iter().fold(0u64, |a, p| a.wrapping_add(p * PAGE_SIZE)) {
        return Err("pages by fold".into());
    }
    let back: Vec<_> = s.runs().rev().collect();
    if back.iter().rev().ne(want.iter()) {
        return Err(format!("runs from the back {back:x?}, model {want:x?}"));
    }
    Ok(())
}

/// Applies one operation to both; checks its result against the model's.
fn step<B: Backend>(s: &mut PageSet<B>, m: &mut BTreeSet<u64>, op: &Op) -> Result<(), String> {
    match op {
        Op::Or(base, words) => {
            let before = s.clone();
            let r = s.or_bitmap(base * PAGE_SIZE, words);
            if base + 64 * words.len() as u64 > PAGES {
                if r != Err(PageSetError::BitmapTooLong { base: base * PAGE_SIZE, words: words.len() }) {
                    return Err(format!("or_bitmap past the reach: {r:?}"));
                }
                if *s != before {
                    return Err("or_bitmap past the reach changed the set".into());
                }
                return Ok(());
            }
            let mut added = 0;
            for (w, &x) in words.iter().enumerate() {
                for i in 0..64 {
                    if x >> i & 1 != 0 && m.insert(base + 64 * w as u64 + i) {
                        added += 1;
                    }
                }
            }
            if r != Ok(added) {
                return Err(format!("or_bitmap gave {r:?}, model added {added}"));
            }
        }
        Op::Insert(p) => {
            let r = s.insert(p * PAGE_SIZE);
            if r != Ok(m.insert(*p)) {
                return Err(format!("insert gave {r:?}"));
            }
        }
        Op::Remove(p) => {
            let r = s.remove(p * PAGE_SIZE);
            if r != Ok(m.remove(p)) {
                return Err(format!("remove gave {r:?}"));
            }
        }
        Op::InsertRange(p, n) | Op::ClearRange(p, n) => {
            let insert = matches!(op, Op::InsertRange(..));
            let range = p * PAGE_SIZE..(p + n) * PAGE_SIZE;
            let before = s.clone();
            let r = if insert { s.insert_range(range.clone()) } else { s.clear_range(range.clone()) };
            if p + n > PAGES {
                let want = PageSetError::OutOfReach { start: range.start, end: range.end as u128 };
                if r != Err(want) || *s != before {
                    return Err(format!("range past the top: {r:?}, changed: {}", *s != before));
                }
                return Ok(());
            }
            let mut changed = 0;
            for q in *p..p + n {
                if if insert { m.insert(q) } else { m.remove(&q) } {
                    changed += 1;
                }
            }
            if r != Ok(changed) {
                return Err(format!("range op gave {r:?}, model changed {changed}"));
            }
        }
        Op::Write(base, n) => {
            let mut out = vec![0x5555_5555_5555_5555u64; *n];
            let r = s.write_bitmap(base * PAGE_SIZE, &mut out);
            if base + 64 * *n as u64 > PAGES {
                let untouched = out.iter().all(|&w| w == 0x5555_5555_5555_5555);
                if !untouched || r != Err(PageSetError::BitmapTooLong { base: base * PAGE_SIZE, words: *n }) {
                    return Err(format!("write_bitmap past the reach: {r:?}"));
                }
                return Ok(());
            }
            let mut want = vec![0u64; *n];
            for &q in m.range(*base..base + 64 * *n as u64) {
                let i = q - base;
                want[(i / 64) as usize] |= 1 << (i % 64);
            }
            let bits: u64 = want.iter().map(|w| w.count_ones() as u64).sum();
            if out != want || r != Ok(bits) {
                return Err(format!("write_bitmap {out:x?} ({r:?}), model {want:x?}"));
            }
            // And back: the bitmap ORed into an empty set is the model's
            // part in that window.
            let mut t = PageSet::new();
            t.or_bitmap(base * PAGE_SIZE, &out).map_err(|e| e.to_string())?;
            let got: Vec<u64> = t.iter().collect();
            let want: Vec<u64> = m.range(*base..base + 64 * *n as u64).map(|q| q * PAGE_SIZE).collect();
            if got != want {
                return Err(format!("round trip {got:x?}, model {want:x?}"));
            }
        }
        Op::Query(lo, hi, dirs) => {
            // Widened to pages, clipped to the reach.
            let (plo, phi) = (lo / PAGE_SIZE, hi.div_ceil(PAGE_SIZE).min(PAGES));
            let count = s.count_range(*lo..*hi);
            let want = m.range(plo..phi.max(plo)).count() as u64;
            if count != want {
                return Err(format!("count_range({lo:#x}..{hi:#x}) = {count}, model {want}"));
            }
            let runs = both_ways(s.runs_in(*lo..*hi), dirs);
            let want = model_runs(m, plo, phi.max(plo));
            if runs != want {
                return Err(format!("runs_in({lo:#x}..{hi:#x}) {runs:x?}, model {want:x?}"));
            }
            let pages = both_ways(s.iter_in(*lo..*hi), dirs);
            let want: Vec<u64> = m.range(plo..phi.max(plo)).map(|q| q * PAGE_SIZE).collect();
            if pages != want {
                return Err(format!("iter_in({lo:#x}..{hi:#x}) {pages:x?}, model {want:x?}"));
            }
            let all = both_ways(s.runs(), dirs);
            if all != model_runs(m, 0, PAGES) {
                return Err(format!("runs both ways {all:x?}"));
            }
            for q in [plo, phi.saturating_sub(1)] {
                if s.contains(q * PAGE_SIZE + 5) != m.contains(&q) {
                    return Err(format!("contains({:#x})", q * PAGE_SIZE + 5));
                }
            }
        }
        Op::Clear => {
            s.clear();
            m.clear();
        }
    }
    Ok(())
}

fn agrees_on<B: Backend>(mut s: PageSet<B>, ops: &[Op]) -> Result<(), String> {
    let mut m = BTreeSet::new();
    for (i, op) in ops.iter().enumerate() {
        step(&mut s, &mut m, op).and_then(|()| same(&s, &m)).map_err(|e| format!("step {i} {op:?}: {e}"))?;
    }
    Ok(())
}

fn agrees(ops: Vec<Op>) -> quickcheck::TestResult {
    match agrees_on(PageSet::new(), &ops) {
        Ok(()) => quickcheck::TestResult::passed(),
        Err(e) => quickcheck::TestResult::error(e),
    }
}

#[test]
fn model() {
    let tests = if cfg!(miri) { 10 } else { 400 };
    QuickCheck::new()
        .rng(Gen::new(60))
        .tests(tests)
        .quickcheck(agrees as fn(Vec<Op>) -> quickcheck::TestResult);
}

/// One memslot's bitmap into the set and back, at aligned and unaligned
/// bases, with several slots side by side.
#[test]
fn kvm_round_trip() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let slots: [(u64, usize); 4] =
        [(0, 512), (0x1_0000_0000 + 0x5000, 300), (0x7_ffff_0000, 40), (REACH - 1000 * WORD_BYTES, 1000)];
    let mut s = PageSet::new();
    let mut logs = Vec::new();
    for &(base, n) in &slots {
        let log: Vec<u64> = (0..n).map(|i| if i % 7 == 0 { 0 } else { rnd() & rnd() }).collect();
        let pages: u64 = log.iter().map(|w| w.count_ones() as u64).sum();
        assert_eq!(s.or_bitmap(base, &log).unwrap(), pages);
        logs.push(log);
    }
    for (&(base, n), log) in slots.iter().zip(&logs) {
        let mut out = vec![!0; n];
        let pages: u64 = log.iter().map(|w| w.count_ones() as u64).sum();
        assert_eq!(s.write_bitmap(base, &mut out).unwrap(), pages);
        assert_eq!(&out, log, "slot at {base:#x}");
    }
    let total: u64 = logs.iter().flatten().map(|w| w.count_ones() as u64).sum();
    assert_eq!(s.len(), total);
    s.check_invariants().unwrap();
    // Clearing a slot's range leaves the others.
    let (base, n) = slots[1];
    s.clear_range(base..base + n as u64 * WORD_BYTES).unwrap();
    let mut out = vec![0; n];
    assert_eq!(s.write_bitmap(base, &mut out).unwrap(), 0);
    assert!(out.iter().all(|&w| w == 0));
    let mut out = vec![0; slots[0].1];
    s.write_bitmap(0, &mut out).unwrap();
    assert_eq!(out, logs[0]);
}

/// A full bitmap is one run, across words and tables, whatever the base.
#[test]
fn runs_coalesce_across_tables() {
    for base in [0, 0x1000, 0x7fff_f000, (128 << 20) - 0x3000] {
        let mut s = PageSet::new();
        // 2 * 512 words: at least two bottom tables.
        s.or_bitmap(base, &[!0; 1024]).unwrap();
        let end = base + 1024 * WORD_BYTES;
        assert_eq!(s.runs().collect::<Vec<_>>(), [base..end], "base {base:#x}");
        assert_eq!(s.runs().rev().collect::<Vec<_>>(), [base..end]);
        assert_eq!(s.runs_in(base + 0x1000..end - 0x1000).collect::<Vec<_>>(), [base + 0x1000..end - 0x1000]);
        assert_eq!(s.len(), 1024 * 64);
        assert_eq!(s.iter().count(), 1024 * 64);
    }
}

/// Every refusal names what was wrong and leaves the set as it was.
#[test]
fn errors_leave_the_set_unchanged() {
    let mut s = PageSet::new();
    s.or_bitmap(0x4000_0000, &[0xf0f0, 0, 1]).unwrap();
    s.insert(REACH - PAGE_SIZE).unwrap();
    let before = s.clone();
    let runs: Vec<_> = s.runs().collect();

    let e = s.or_bitmap(0x4000_0800, &[1]).unwrap_err();
    assert_eq!(e, PageSetError::Misaligned { addr: 0x4000_0800 });
    assert!(e.to_string().contains("0x40000800"), "{e}");

    // Past the reach by one word: the last word is not applied either.
    let base = REACH - 2 * WORD_BYTES;
    let e = s.or_bitmap(base, &[!0, !0, !0]).unwrap_err();
    assert_eq!(e, PageSetError::BitmapTooLong { base, words: 3 });
    assert!(e.to_string().contains("0x1000000040000"), "names the end: {e}");
    // Unaligned, past the reach by one page.
    let e = s.or_bitmap(base + PAGE_SIZE, &[1, 1]).unwrap_err();
    assert_eq!(e, PageSetError::BitmapTooLong { base: base + PAGE_SIZE, words: 2 });
    // A base past the reach, even with an empty bitmap.
    assert_eq!(
        s.or_bitmap(REACH + PAGE_SIZE, &[]),
        Err(PageSetError::BitmapTooLong { base: REACH + PAGE_SIZE, words: 0 })
    );

    let e = s.insert_range(REACH - PAGE_SIZE..REACH + PAGE_SIZE).unwrap_err();
    assert_eq!(
        e,
        PageSetError::OutOfReach { start: REACH - PAGE_SIZE, end: REACH as u128 + PAGE_SIZE as u128 }
    );
    assert!(e.to_string().contains("0x1000000001000"), "{e}");
    assert_eq!(s.clear_range(0..=u64::MAX).unwrap_err(), PageSetError::OutOfReach { start: 0, end: 1 << 64 });
    assert_eq!(
        s.clear_range(0x4000_0000..0x4000_1800).unwrap_err(),
        PageSetError::Misaligned { addr: 0x4000_1800 }
    );
    assert_eq!(s.insert_range(0x4000_0001..).unwrap_err(), PageSetError::Misaligned { addr: 0x4000_0001 });
    #[allow(clippy::reversed_empty_ranges)]
    let e = s.clear_range(0x5000..0x4000).unwrap_err();
    assert_eq!(e, PageSetError::ReversedRange { start: 0x5000, end: 0x4000 });
    assert_eq!(s.insert(REACH), Err(PageSetError::OutOfReach { start: REACH, end: REACH as u128 + 4096 }));
    assert_eq!(s.remove(0x4000_0010), Err(PageSetError::Misaligned { addr: 0x4000_0010 }));

    let mut out = [7u64; 4];
    assert_eq!(s.write_bitmap(0x10, &mut out), Err(PageSetError::Misaligned { addr: 0x10 }));
    assert_eq!(
        s.write_bitmap(REACH - WORD_BYTES, &mut out),
        Err(PageSetError::BitmapTooLong { base: REACH - WORD_BYTES, words: 4 })
    );
    assert_eq!(out, [7; 4]);

    assert_eq!(s, before);
    assert_eq!(s.runs().collect::<Vec<_>>(), runs);
    s.check_invariants().unwrap();
    // Empty ranges and bitmaps are no error.
    assert_eq!(s.clear_range(0x1000..0x1000), Ok(0));
    assert_eq!(s.or_bitmap(REACH, &[]), Ok(0));
    assert_eq!(s, before);
}

/// Running out of tables part-way through a bitmap leaves nothing applied:
/// the tables are counted and reserved first.
#[test]
fn out_of_nodes_is_all_or_nothing() {
    // Two bottom tables (2 x 128 MiB), one table above each.
    let mut s: PageSet<Pool> = PageSet::with_backend(Pool::with_capacities(&[2, 1, 1]));
    s.insert(0x1000).unwrap();
    let before = s.clone();
    // Words in three bottom tables: the third does not fit.
    let mut log = vec![0u64; 3 * 512];
    log[0] = 0b100;
    log[600] = 1;
    log[1100] = 1;
    let e = s.or_bitmap(0, &log).unwrap_err();
    assert_eq!(e, PageSetError::OutOfNodes { level: 0 });
    assert_eq!(s, before);
    s.check_invariants().unwrap();
    // Two tables' worth fits.
    log[1100] = 0;
    assert_eq!(s.or_bitmap(0, &log).unwrap(), 2);
    // A range over a third table: refused whole, the head word too.
    let before = s.clone();
    let e = s.insert_range(0xfff_f000..0x1000_1000 + (128 << 20)).unwrap_err();
    assert_eq!(e, PageSetError::OutOfNodes { level: 0 });
    assert_eq!(s, before);
    // A page in another 64 GiB needs a level-1 table.
    assert_eq!(s.insert(64 << 30), Err(PageSetError::OutOfNodes { level: 1 }));
    assert_eq!(s, before);
}

/// Zero words are never kept: clearing everything frees every table.
#[test]
fn zero_words_are_removed() {
    let mut s = PageSet::new();
    s.or_bitmap(0x3000, &[!0; 100]).unwrap();
    assert_eq!(s.words(), 101);
    s.clear_range(0x3000..0x3000 + 100 * WORD_BYTES).unwrap();
    assert!(s.is_empty());
    assert_eq!(s.words(), 0);
    assert_eq!(s.stats().nodes(), 1, "only the root is left");
    s.insert_range(0..0x4000).unwrap();
    for p in 0..4 {
        s.remove(p * PAGE_SIZE).unwrap();
    }
    assert_eq!((s.words(), s.stats().nodes()), (0, 1));
    assert_eq!(format!("{s:?}"), "{}");
    s.insert_range(0x1000..0x3000).unwrap();
    assert_eq!(format!("{s:?}"), "{0x1000..0x3000}");
}
