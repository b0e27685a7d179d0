//! Shared by the benchmarks (`benches/*.rs`) and the comparison report
//! (`examples/compare.rs`, `examples/hit_loop.rs`), included by `#[path]`:
//! the workloads, the contenders behind one trait, a plain fixed 4 x 512
//! radix table and a runtime-geometry one to compare against, and a
//! counting allocator. Each includer uses a part of it.
#![allow(dead_code)]

pub mod alloc;
pub mod contenders;
pub mod plain_radix;
pub mod radix;
pub mod rng;
pub mod workload;

/// The table sizes to run: 2^16 and 2^20 entries, and 2^22 when the
/// environment variable `MEM_TABLE_BENCH_HUGE` is set.
/// `MEM_TABLE_BENCH_SIZES` (exponents, e.g. `16` or `16,22`) replaces the
/// list: tables are built before criterion's filter applies, so this is the
/// way to skip building the large ones.
pub fn sizes() -> Vec<usize> {
    if let Ok(list) = std::env::var("MEM_TABLE_BENCH_SIZES") {
        return list
            .split(',')
            .map(|e| 1 << e.trim().parse::<u32>().expect("MEM_TABLE_BENCH_SIZES: exponents such as 16,20"))
            .collect();
    }
    let mut s = vec![1 << 16, 1 << 20];
    if std::env::var_os("MEM_TABLE_BENCH_HUGE").is_some() {
        s.push(1 << 22);
    }
    s
}

/// Criterion settings that keep a full run in minutes on a small machine:
/// ten samples, a short warm-up and measurement, no plots. Pass `--quick`
/// for less.
pub fn criterion() -> criterion::Criterion {
    use std::time::Duration;
    criterion::Criterion::default()
        .without_plots()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

/// Benchmarks one operation on one workload: a group named `op`, one
/// benchmark per table (`implementation/workload`), `ops` operations per
/// call of `f`. First checks that every table gives the same answer.
pub fn bench_tables(
    c: &mut criterion::Criterion,
    op: &str,
    w: &workload::Workload,
    tables: &[Box<dyn contenders::Run>],
    ops: usize,
    f: impl Fn(&dyn contenders::Run) -> u64,
) {
    let tables: Vec<&dyn contenders::Run> = tables.iter().map(|t| &**t).collect();
    bench_refs(c, op, w, &tables, ops, f);
}

/// [`bench_tables`] for an operation that some implementations lack (`f`
/// gives `None` for them): benchmarks the others.
pub fn bench_some(
    c: &mut criterion::Criterion,
    op: &str,
    w: &workload::Workload,
    tables: &[Box<dyn contenders::Run>],
    ops: usize,
    f: impl Fn(&dyn contenders::Run) -> Option<u64>,
) {
    let some: Vec<&dyn contenders::Run> = tables.iter().map(|t| &**t).filter(|t| f(*t).is_some()).collect();
    if !some.is_empty() {
        bench_refs(c, op, w, &some, ops, |t| f(t).expect("checked above"));
    }
}

fn bench_refs(
    c: &mut criterion::Criterion,
    op: &str,
    w: &workload::Workload,
    tables: &[&dyn contenders::Run],
    ops: usize,
    f: impl Fn(&dyn contenders::Run) -> u64,
) {
    let expected = f(tables[0]);
    for t in tables {
        assert_eq!(f(*t), expected, "{op} on {}: {} disagrees with {}", w.name, t.name(), tables[0].name());
    }
    let mut g = c.benchmark_group(op);
    g.throughput(criterion::Throughput::Elements(ops as u64));
    for &t in tables {
        g.bench_function(criterion::BenchmarkId::new(t.name(), &w.name), |b| b.iter(|| f(t)));
    }
    g.finish();
}

/// A stopwatch on this thread's CPU time where the system has one (Linux),
/// wall time elsewhere. On a shared machine, CPU time leaves out the slices
/// in which other processes ran, the largest source of noise there (it
/// still includes their effect on caches).
#[derive(Clone, Copy, Debug)]
pub struct Stopwatch {
    start_ns: u64,
    wall: std::time::Instant,
}

impl Stopwatch {
    pub fn start() -> Stopwatch {
        Stopwatch { start_ns: cpu::thread_ns().unwrap_or(0), wall: std::time::Instant::now() }
    }

    /// Nanoseconds since `start`.
    pub fn elapsed_ns(&self) -> f64 {
        match cpu::thread_ns() {
            Some(now) => now.saturating_sub(self.start_ns) as f64,
            None => self.wall.elapsed().as_nanos() as f64,
        }
    }

    /// What the stopwatch measures, for reports.
    pub fn clock() -> &'static str {
        if cpu::thread_ns().is_some() { "thread CPU time" } else { "wall time" }
    }
}

#[cfg(target_os = "linux")]
mod cpu {
    /// `struct timespec` on 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        sec: i64,
        nsec: i64,
    }

    /// From `<time.h>`.
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    unsafe extern "C" {
        /// The C library's `clock_gettime`, which std already links.
        fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
    }

    /// This thread's CPU time, in ns.
    pub fn thread_ns() -> Option<u64> {
        if cfg!(not(target_pointer_width = "64")) {
            return None; // `Timespec` above is the 64-bit layout
        }
        let mut ts = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `ts` is a valid, writable `struct timespec` (64-bit
        // layout, checked above) for the duration of the call, and the
        // clock id is a constant the kernel defines.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.sec as u64 * 1_000_000_000 + ts.nsec as u64)
    }
}

#[cfg(not(target_os = "linux"))]
mod cpu {
    pub fn thread_ns() -> Option<u64> {
        None
    }
}
