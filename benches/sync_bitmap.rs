//! `sync::PageBitmap` against vm-memory's `AtomicBitmap` (a flat
//! `Vec<AtomicU64>`), side by side, over the same guest: one region of
//! 4 GiB and of 64 GiB from address 0, 4 KiB pages, 1 % of the pages dirty,
//! spread two ways: `uniform` (every page with probability 1 %) and
//! `clustered` (whole 2 MiB regions, 1 % of them, as a guest's working set
//! is).
//!
//! - `mark`: two threads mark their halves of the dirty pages through
//!   vm-memory's `Bitmap::mark_dirty(page, 1)` (both contenders the same
//!   call), tables already made (the steady state of a migration: the
//!   second and later rounds). Two threads are started per sample, not per
//!   iteration;
//! - `harvest_kvm`: take every dirty page into a KVM-layout `Vec<u64>` for
//!   the whole guest (`take_bitmap`; `AtomicBitmap::get_and_reset`, which
//!   allocates the same vector);
//! - `harvest_words`: take every dirty page and visit the non-zero words
//!   (`take_words`; `get_and_reset` and a scan of its result).
//!
//! Before each harvest the pages are marked again, outside the timing.
//! A summary first gives each contender's memory (bytes held from the
//! allocator, counted) and checks that both harvest the same pages.
//!
//! `cargo bench --features sync,vm-memory --bench sync_bitmap [filter]`
//! (about 60 s, build excluded).
//!
//! One run (2 cores shared with other builds, so +-20 %: an earlier run
//! gave 1.79 and 1.40 for the uniform 64 GiB harvests), PageBitmap time /
//! AtomicBitmap time, below 1 is PageBitmap faster:
//!
//! | guest, dirty | mark (2 threads) | harvest_kvm | harvest_words | bytes held |
//! |---|---|---|---|---|
//! | 4 GiB uniform 1 % | 1.55 | 1.28 | 1.08 | 1.31 |
//! | 4 GiB clustered 1 % | 1.03 | 0.07 | 0.03 | 0.20 |
//! | 64 GiB uniform 1 % | 1.45 | 1.99 | 1.68 | 1.25 |
//! | 64 GiB clustered 1 % | 1.52 | 0.09 | 0.03 | 0.14 |
//!
//! Marking walks three upper levels (dependent loads) where the flat bitmap
//! indexes; a uniform 1 % touches every 2 MiB region, so the radix holds a
//! 72-byte table per 2 MiB (and a link to it) and its harvest chases them;
//! clustered dirt leaves most regions without a table, which the harvest
//! skips whole.

#[allow(dead_code)]
#[path = "common/alloc.rs"]
mod counting;

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use mem_table::sync::PageBitmap;
use vm_memory::bitmap::{AtomicBitmap, Bitmap};

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;

/// The benchmarks' SplitMix64 generator.
#[allow(dead_code)] // this benchmark uses a part of it
#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// The dirty pages' addresses of a guest of `size` bytes, shuffled (the
/// order in which vCPUs dirty them).
fn workload(size: u64, clustered: bool) -> Vec<u64> {
    let mut rng = Rng::new(size ^ clustered as u64);
    let mut v: Vec<u64> = if clustered {
        let regions = size >> 21;
        (0..regions)
            .filter(|_| rng.next_u64() % 100 == 0)
            .flat_map(|r| (0..512).map(move |i| (r << 21) + i * PAGE))
            .collect()
    } else {
        (0..size / PAGE).filter(|_| rng.next_u64() % 100 == 0).map(|p| p * PAGE).collect()
    };
    for i in (1..v.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// A dirty bitmap under test.
trait Contender: Bitmap + Sync {
    const NAME: &'static str;
    fn make(size: u64) -> Self;
    /// Takes every page into a KVM-layout bitmap of the whole guest.
    fn harvest_kvm(&self, size: u64) -> Vec<u64>;
    /// Takes every page; returns a checksum of the non-zero words.
    fn harvest_words(&self) -> u64;
}

impl Contender for PageBitmap {
    const NAME: &'static str = "PageBitmap";
    fn make(size: u64) -> Self {
        PageBitmap::with_limit(size)
    }
    fn harvest_kvm(&self, size: u64) -> Vec<u64> {
        let mut out = vec![0u64; (size / PAGE / 64) as usize];
        self.take_bitmap(0, &mut out).unwrap();
        out
    }
    fn harvest_words(&self) -> u64 {
        let mut sum = 0u64;
        self.take_words(.., |a, w| sum = sum.wrapping_add(a ^ w));
        sum
    }
}

impl Contender for AtomicBitmap {
    const NAME: &'static str = "AtomicBitmap";
    fn make(size: u64) -> Self {
        AtomicBitmap::new(size as usize, NonZeroUsize::new(PAGE as usize).unwrap())
    }
    fn harvest_kvm(&self, _size: u64) -> Vec<u64> {
        self.get_and_reset()
    }
    fn harvest_words(&self) -> u64 {
        let mut sum = 0u64;
        for (i, w) in self.get_and_reset().into_iter().enumerate() {
            if w != 0 {
                sum = sum.wrapping_add((i as u64 * 64 * PAGE) ^ w);
            }
        }
        sum
    }
}

fn mark_all<C: Contender>(b: &C, pages: &[u64]) {
    for &p in pages {
        b.mark_dirty(p as usize, 1);
    }
}

/// Bytes held by a contender with `pages` marked; checks its harvest.
fn summarise<C: Contender>(size: u64, pages: &[u64], want: &mut Option<Vec<u64>>) -> usize {
    let (b, fp) = counting::measure(|| {
        let b = C::make(size);
        mark_all(&b, pages);
        b
    });
    let got = b.harvest_kvm(size);
    match want {
        Some(w) => assert!(&got == w, "{} disagrees", C::NAME),
        None => *want = Some(got),
    }
    fp.live
}

/// Two threads marking their halves of `pages`, `iters` times each; the
/// wall time from both starting to both done.
fn mark_two_threads<C: Contender>(b: &C, pages: &[u64], iters: u64) -> Duration {
    let (a, z) = pages.split_at(pages.len() / 2);
    let start = Barrier::new(3);
    std::thread::scope(|s| {
        for half in [a, z] {
            let (b, start) = (b, &start);
            s.spawn(move || {
                start.wait();
                for _ in 0..iters {
                    mark_all(b, black_box(half));
                }
            });
        }
        start.wait();
        let t = Instant::now();
        // The scope joins both threads before returning.
        t
    })
    .elapsed()
}

fn bench_one<C: Contender>(c: &mut Criterion, label: &str, size: u64, pages: &[u64]) {
    let b = C::make(size);
    mark_all(&b, pages); // the tables, for the steady state
    let mut g = c.benchmark_group(format!("sync_bitmap/{label}"));
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(500));
    g.bench_function(format!("mark/{}", C::NAME), |x| {
        x.iter_custom(|iters| mark_two_threads(&b, pages, iters))
    });
    g.bench_function(format!("harvest_kvm/{}", C::NAME), |x| {
        x.iter_batched(|| mark_all(&b, pages), |()| black_box(b.harvest_kvm(size)), BatchSize::PerIteration)
    });
    g.bench_function(format!("harvest_words/{}", C::NAME), |x| {
        x.iter_batched(|| mark_all(&b, pages), |()| black_box(b.harvest_words()), BatchSize::PerIteration)
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    for (size, sname) in [(4 * GIB, "4GiB"), (64 * GIB, "64GiB")] {
        for (clustered, dname) in [(false, "uniform"), (true, "clustered")] {
            let pages = workload(size, clustered);
            let mut want = None;
            let pb = summarise::<PageBitmap>(size, &pages, &mut want);
            let ab = summarise::<AtomicBitmap>(size, &pages, &mut want);
            println!(
                "{sname} {dname}: {} dirty pages; bytes held: PageBitmap {pb}, AtomicBitmap {ab} (ratio {:.2})",
                pages.len(),
                pb as f64 / ab as f64
            );
            let label = format!("{sname}/{dname}");
            bench_one::<PageBitmap>(c, &label, size, &pages);
            bench_one::<AtomicBitmap>(c, &label, size, &pages);
        }
    }
}

criterion_group!(group, benches);
criterion_main!(group);
