//! `PageSet` against the usual ways to keep a dirty-page set, side by side:
//! a flat `Vec<u64>` bitmap, vm-memory's `AtomicBitmap`, and `BTreeSet` /
//! `HashSet` of page numbers.
//!
//! The layout: 54 GiB of guest RAM in four memslots spread over a 64 GiB
//! guest-physical space (holes at 2-4 GiB, 32-36 GiB and 56-60 GiB), with
//! 1 % and 10 % of the RAM pages dirty (seeded, uniform). Each memslot comes
//! with its KVM-layout dirty bitmap, as `KVM_GET_DIRTY_LOG` gives it.
//!
//! - `harvest`: OR every slot's bitmap into an empty structure (a flat
//!   bitmap ORs words; `AtomicBitmap` has no word API and sets bit by bit;
//!   the sets insert page by page);
//! - `runs`: turn the set into `start..end` runs (a `HashSet` sorts first);
//! - `pages`: visit every dirty page;
//! - `count`: count the dirty pages (`PageSet` by popcount, as the flat
//!   bitmaps; its O(1) `len` is not what is timed; the std sets' `len`).
//!
//! `AtomicBitmap` is read through `get_and_reset` (its only word-level
//! read), on a fresh clone per iteration, made and dropped outside the
//! timing; the others are read in place.
//!
//! Before the timings, a summary gives every contender's memory (bytes held
//! from the allocator, counted) and checks that all agree on the results.
//!
//! `cargo bench --bench pageset [filter]` (about 35 s, build excluded).
//!
//! One run (2 shared cores, so +-20 %), PageSet time / contender time,
//! below 1 is PageSet faster:
//!
//! | op, dirty | Vec<u64> | AtomicBitmap | BTreeSet | HashSet |
//! |---|---|---|---|---|
//! | harvest 1 % | 18.3 | 1.32 | 0.10 | 0.16 |
//! | harvest 10 % | 24.4 | 0.31 | 0.02 | 0.03 |
//! | runs 1 % | 0.56 | 0.24 | 3.81 | 0.46 |
//! | runs 10 % | 1.22 | 0.97 | 1.05 | 0.29 |
//! | pages 1 % | 0.51 | 0.17 | 2.73 | 2.45 |
//! | pages 10 % | 1.11 | 0.63 | 0.51 | 1.40 |
//! | count 1 % (popcount) | 1.05 | 0.10 | (`len`, O(1)) | (`len`, O(1)) |
//! | count 10 % (popcount) | 0.83 | 0.08 | (`len`, O(1)) | (`len`, O(1)) |
//!
//! Memory (bytes held): PageSet 1.84 MB at 1 % and at 10 % (435 tables),
//! flat bitmaps 2.10 MB, BTreeSet 2.78 / 27.8 MB, HashSet 2.36 / 18.9 MB.

#[allow(dead_code)]
#[path = "common/alloc.rs"]
mod counting;

use std::collections::{BTreeSet, HashSet};
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::ops::Range;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use mem_table::PageSet;
use vm_memory::bitmap::AtomicBitmap;

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;
/// The guest-physical space the flat bitmaps cover.
const SPACE: u64 = 64 * GIB;
/// The memslots: guest-physical base and size.
const SLOTS: [(u64, u64); 4] = [(0, 2 * GIB), (4 * GIB, 28 * GIB), (36 * GIB, 20 * GIB), (60 * GIB, 4 * GIB)];

/// The benchmarks' SplitMix64 generator.
#[allow(dead_code)] // this benchmark uses a part of it
#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// One memslot's dirty log.
struct Slot {
    base: u64,
    bitmap: Vec<u64>,
}

/// Every slot's log, with `percent` of its pages dirty.
fn workload(percent: u64) -> Vec<Slot> {
    let mut rng = Rng::new(0x5eed ^ percent);
    SLOTS
        .iter()
        .map(|&(base, size)| {
            let pages = size / PAGE;
            let mut bitmap = vec![0u64; (pages / 64) as usize];
            for p in 0..pages {
                if rng.next_u64() % 100 < percent {
                    bitmap[(p / 64) as usize] |= 1 << (p % 64);
                }
            }
            Slot { base, bitmap }
        })
        .collect()
}

/// What every contender answers, to check they agree.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    count: u64,
    runs: (u64, u64),
    pages: u64,
}

/// A structure under test.
trait Contender {
    const NAME: &'static str;
    /// Whether reading empties it (`get_and_reset`).
    const DESTRUCTIVE_READS: bool = false;
    fn empty() -> Self;
    fn harvest(&mut self, slots: &[Slot]);
    /// The number of runs and the sum of their ends, as a checksum.
    fn runs(&self) -> (u64, u64);
    /// The sum of the dirty pages' addresses.
    fn pages(&self) -> u64;
    fn count(&self) -> u64;
}

/// Folds runs into the checksum.
fn fold_run(acc: (u64, u64), r: Range<u64>) -> (u64, u64) {
    (acc.0 + 1, acc.1.wrapping_add(r.end).wrapping_add(r.start << 1))
}

/// Runs of a flat bitmap's words (the first word at address 0).
fn flat_runs(words: impl Iterator<Item = u64>) -> (u64, u64) {
    let mut acc = (0, 0);
    // The start of the run reaching the current position.
    let mut open: Option<u64> = None;
    let mut a = 0;
    for w in words {
        if w == 0 {
            if let Some(s) = open.take() {
                acc = fold_run(acc, s..a);
            }
        } else if w == !0 {
            open.get_or_insert(a);
        } else {
            let mut b = 0;
            while b < 64 {
                let rest = w >> b;
                if rest & 1 == 0 {
                    if let Some(s) = open.take() {
                        acc = fold_run(acc, s..a + b as u64 * PAGE);
                    }
                    if rest == 0 {
                        break;
                    }
                    b += rest.trailing_zeros();
                } else {
                    open.get_or_insert(a + b as u64 * PAGE);
                    b += rest.trailing_ones();
                }
            }
        }
        a += 64 * PAGE;
    }
    if let Some(s) = open {
        acc = fold_run(acc, s..a);
    }
    acc
}

/// The sum of the pages of a flat bitmap's words.
fn flat_pages(words: impl Iterator<Item = u64>) -> u64 {
    let mut sum = 0u64;
    for (i, mut w) in words.enumerate() {
        while w != 0 {
            sum = sum.wrapping_add((i as u64 * 64 + w.trailing_zeros() as u64) * PAGE);
            w &= w - 1;
        }
    }
    sum
}

/// Runs of ascending page numbers.
fn sorted_runs(pages: impl Iterator<Item = u64>) -> (u64, u64) {
    let mut acc = (0, 0);
    let mut open: Option<Range<u64>> = None;
    for p in pages {
        let a = p * PAGE;
        match &mut open {
            Some(r) if r.end == a => r.end += PAGE,
            _ => {
                if let Some(r) = open.replace(a..a + PAGE) {
                    acc = fold_run(acc, r);
                }
            }
        }
    }
    if let Some(r) = open {
        acc = fold_run(acc, r);
    }
    acc
}

impl Contender for PageSet {
    const NAME: &'static str = "PageSet";
    fn empty() -> Self {
        PageSet::new()
    }
    fn harvest(&mut self, slots: &[Slot]) {
        for s in slots {
            self.or_bitmap(s.base, &s.bitmap).unwrap();
        }
    }
    fn runs(&self) -> (u64, u64) {
        self.runs().fold((0, 0), fold_run)
    }
    fn pages(&self) -> u64 {
        self.iter().fold(0u64, |s, p| s.wrapping_add(p))
    }
    fn count(&self) -> u64 {
        PageSet::count(self)
    }
}

/// A flat bitmap over the whole guest-physical space.
struct Flat(Vec<u64>);

impl Contender for Flat {
    const NAME: &'static str = "Vec<u64>";
    fn empty() -> Self {
        Flat(vec![0; (SPACE / PAGE / 64) as usize])
    }
    fn harvest(&mut self, slots: &[Slot]) {
        for s in slots {
            let first = (s.base / PAGE / 64) as usize;
            for (d, &w) in self.0[first..first + s.bitmap.len()].iter_mut().zip(&s.bitmap) {
                *d |= w;
            }
        }
    }
    fn runs(&self) -> (u64, u64) {
        flat_runs(self.0.iter().copied())
    }
    fn pages(&self) -> u64 {
        flat_pages(self.0.iter().copied())
    }
    fn count(&self) -> u64 {
        self.0.iter().map(|w| w.count_ones() as u64).sum()
    }
}

/// vm-memory's bitmap over the whole guest-physical space.
struct Atomic(AtomicBitmap);

impl Contender for Atomic {
    const NAME: &'static str = "AtomicBitmap";
    const DESTRUCTIVE_READS: bool = true;
    fn empty() -> Self {
        Atomic(AtomicBitmap::new(SPACE as usize, NonZeroUsize::new(PAGE as usize).unwrap()))
    }
    fn harvest(&mut self, slots: &[Slot]) {
        for s in slots {
            let first = (s.base / PAGE) as usize;
            for (i, &w) in s.bitmap.iter().enumerate() {
                let mut w = w;
                while w != 0 {
                    self.0.set_bit(first + i * 64 + w.trailing_zeros() as usize);
                    w &= w - 1;
                }
            }
        }
    }
    // The reads go through `get_and_reset`, which takes `&self`; the
    // benchmark gives each iteration its own clone.
    fn runs(&self) -> (u64, u64) {
        flat_runs(self.0.get_and_reset().into_iter())
    }
    fn pages(&self) -> u64 {
        flat_pages(self.0.get_and_reset().into_iter())
    }
    fn count(&self) -> u64 {
        self.0.get_and_reset().iter().map(|w| w.count_ones() as u64).sum()
    }
}

/// Pages of a log, as page numbers.
fn log_pages(slots: &[Slot]) -> impl Iterator<Item = u64> + '_ {
    slots.iter().flat_map(|s| {
        s.bitmap.iter().enumerate().flat_map(move |(i, &w)| {
            let first = s.base / PAGE + i as u64 * 64;
            (0..64).filter(move |b| w >> b & 1 != 0).map(move |b| first + b)
        })
    })
}

impl Contender for BTreeSet<u64> {
    const NAME: &'static str = "BTreeSet";
    fn empty() -> Self {
        BTreeSet::new()
    }
    fn harvest(&mut self, slots: &[Slot]) {
        for p in log_pages(slots) {
            self.insert(p);
        }
    }
    fn runs(&self) -> (u64, u64) {
        sorted_runs(self.iter().copied())
    }
    fn pages(&self) -> u64 {
        self.iter().fold(0u64, |s, p| s.wrapping_add(p * PAGE))
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

impl Contender for HashSet<u64> {
    const NAME: &'static str = "HashSet";
    fn empty() -> Self {
        HashSet::new()
    }
    fn harvest(&mut self, slots: &[Slot]) {
        for p in log_pages(slots) {
            self.insert(p);
        }
    }
    fn runs(&self) -> (u64, u64) {
        let mut v: Vec<u64> = self.iter().copied().collect();
        v.sort_unstable();
        sorted_runs(v.into_iter())
    }
    fn pages(&self) -> u64 {
        self.iter().fold(0u64, |s, p| s.wrapping_add(p * PAGE))
    }
    fn count(&self) -> u64 {
        self.len() as u64
    }
}

/// Builds a contender from the log, measuring its memory; checks its answers.
fn summarise<C: Contender + Clone>(slots: &[Slot], want: &mut Option<Answers>) -> usize {
    let (c, fp) = counting::measure(|| {
        let mut c = C::empty();
        c.harvest(slots);
        c
    });
    let got = Answers { count: c.clone().count(), runs: c.clone().runs(), pages: c.clone().pages() };
    match want {
        Some(w) => assert_eq!(&got, w, "{} disagrees", C::NAME),
        None => *want = Some(got),
    }
    fp.live
}

impl Clone for Flat {
    fn clone(&self) -> Self {
        Flat(self.0.clone())
    }
}

impl Clone for Atomic {
    fn clone(&self) -> Self {
        Atomic(self.0.clone())
    }
}

/// Times one contender's four operations on one workload.
fn bench_one<C: Contender + Clone>(c: &mut Criterion, label: &str, slots: &[Slot]) {
    let mut built = C::empty();
    built.harvest(slots);
    let mut g = c.benchmark_group(format!("pageset/{label}"));
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(50))
        .measurement_time(Duration::from_millis(400));
    g.bench_function(format!("harvest/{}", C::NAME), |b| {
        b.iter_batched(
            C::empty,
            |mut s| {
                s.harvest(black_box(slots));
                s
            },
            BatchSize::PerIteration,
        )
    });
    // Only `AtomicBitmap`'s reads consume it: it gets a fresh clone per
    // iteration; the others are read in place.
    if C::DESTRUCTIVE_READS {
        g.bench_function(format!("runs/{}", C::NAME), |b| {
            b.iter_batched(|| built.clone(), |s| (black_box(s.runs()), s), BatchSize::PerIteration)
        });
        g.bench_function(format!("pages/{}", C::NAME), |b| {
            b.iter_batched(|| built.clone(), |s| (black_box(s.pages()), s), BatchSize::PerIteration)
        });
        g.bench_function(format!("count/{}", C::NAME), |b| {
            b.iter_batched(|| built.clone(), |s| (black_box(s.count()), s), BatchSize::PerIteration)
        });
    } else {
        g.bench_function(format!("runs/{}", C::NAME), |b| b.iter(|| black_box(&built).runs()));
        g.bench_function(format!("pages/{}", C::NAME), |b| b.iter(|| black_box(&built).pages()));
        g.bench_function(format!("count/{}", C::NAME), |b| b.iter(|| black_box(&built).count()));
    }
    g.finish();
}

fn pagesets(c: &mut Criterion) {
    for percent in [1, 10] {
        let slots = workload(percent);
        let label = format!("{percent}pct");
        let dirty: u64 = slots.iter().flat_map(|s| &s.bitmap).map(|w| w.count_ones() as u64).sum();
        let mut want = None;
        println!("\n{label}: {dirty} dirty pages of {} in the memslots, over 64 GiB", (54 * GIB) / PAGE);
        let mem = [
            ("PageSet", summarise::<PageSet>(&slots, &mut want)),
            ("Vec<u64>", summarise::<Flat>(&slots, &mut want)),
            ("AtomicBitmap", summarise::<Atomic>(&slots, &mut want)),
            ("BTreeSet", summarise::<BTreeSet<u64>>(&slots, &mut want)),
            ("HashSet", summarise::<HashSet<u64>>(&slots, &mut want)),
        ];
        let mut s = PageSet::new();
        s.harvest(&slots);
        println!(
            "  PageSet: {} words stored, {} tables, stats().bytes() = {}",
            s.words(),
            s.stats().nodes(),
            s.stats().bytes()
        );
        for (name, bytes) in mem {
            println!(
                "  memory {name:>12}: {:>11} bytes ({:.2} bytes per dirty page)",
                bytes,
                bytes as f64 / dirty as f64
            );
        }
        println!("  all contenders agree: {:?}", want.unwrap());
        bench_one::<PageSet>(c, &label, &slots);
        bench_one::<Flat>(c, &label, &slots);
        bench_one::<Atomic>(c, &label, &slots);
        bench_one::<BTreeSet<u64>>(c, &label, &slots);
        bench_one::<HashSet<u64>>(c, &label, &slots);
    }
}

criterion_group! {
    name = benches;
    // No plots: they cost more than the measurements here.
    config = Criterion::default().without_plots();
    targets = pagesets
}
criterion_main!(benches);
