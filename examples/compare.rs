//! The comparison report: `mem-table` on each backend against the usual
//! maps, a flat array (the physical limit) and a runtime-geometry radix
//! table, on the main workloads at 2^20 entries.
//!
//! ```text
//! cargo run --release --example compare            # tables, then the targets
//! cargo run --release --example compare -- --json  # the same figures as JSON
//! ```
//!
//! Each time is the median of a few runs of a whole loop (over every entry,
//! or 2^18 random ones), measured in this thread's CPU time where the
//! system offers it, so that slices given to other processes on a shared,
//! noisy machine are not counted; each loop's result goes through
//! `black_box`. Bytes come from a counting global allocator: live
//! bytes after building in random order, the peak during that build, and
//! what is left after removing every entry. The criterion benchmarks in
//! `benches/` cover the full matrix (more shapes, sizes and operations).

#[path = "../benches/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use common::Stopwatch;
use common::alloc::{Counting, live, measure};
use common::contenders::{Contender, FLAT, FX, Run, contenders};
use common::workload::{Entry, Shape, Workload, size_label};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Entries in the main matrix.
const N: usize = 1 << 20;
/// The main shapes.
const SHAPES: [Shape; 4] = [Shape::Dense, Shape::Clustered64G, Shape::Clustered48, Shape::Random12];

/// One column of the report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    GetRandom,
    GetAscending,
    GetChain,
    InsertRandom,
    InsertAscending,
    Iter,
    /// Live bytes per entry after the build.
    Memory,
    /// Peak bytes per entry during the build.
    MemoryPeak,
    /// Bytes per (former) entry still held after removing every entry.
    MemoryLeft,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::GetRandom,
        Op::GetAscending,
        Op::GetChain,
        Op::InsertRandom,
        Op::InsertAscending,
        Op::Iter,
        Op::Memory,
        Op::MemoryPeak,
        Op::MemoryLeft,
    ];

    fn name(self) -> &'static str {
        match self {
            Op::GetRandom => "get-random",
            Op::GetAscending => "get-ascending",
            Op::GetChain => "get-chain",
            Op::InsertRandom => "insert-random",
            Op::InsertAscending => "insert-ascending",
            Op::Iter => "iter",
            Op::Memory => "memory",
            Op::MemoryPeak => "memory-peak",
            Op::MemoryLeft => "memory-left",
        }
    }

    /// The two header lines of its column.
    fn header(self) -> (&'static str, &'static str) {
        match self {
            Op::GetRandom => ("get", "random"),
            Op::GetAscending => ("get", "ascend"),
            Op::GetChain => ("get", "chain"),
            Op::InsertRandom => ("insert", "random"),
            Op::InsertAscending => ("insert", "ascend"),
            Op::Iter => ("iter", "all"),
            Op::Memory => ("bytes", "/entry"),
            Op::MemoryPeak => ("peak", "B/entry"),
            Op::MemoryLeft => ("left", "B/entry"),
        }
    }

    fn is_bytes(self) -> bool {
        matches!(self, Op::Memory | Op::MemoryPeak | Op::MemoryLeft)
    }
}

/// One figure: ns per operation, or bytes per entry.
#[derive(Clone, Debug)]
struct Figure {
    shape: String,
    entries: usize,
    op: Op,
    implementation: &'static str,
    is_mem_table: bool,
    value: f64,
}

/// Runs of each timed loop; the median is kept.
const RUNS: usize = 5;
/// Runs of each build and of the chain (the slow loops).
const BUILD_RUNS: usize = 3;
/// Seconds of one run past which a contender gets fewer runs (down to
/// one), so that the whole report fits in two minutes on two busy cores.
const BUDGET: f64 = 0.6;
/// Random lookups and chain steps per run: a random quarter of the entries,
/// enough to leave no part of a 2^20 table warm.
const LOOKUPS: usize = 1 << 18;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` (giving ns per operation) on every item in turn, `max` rounds,
/// and keeps each item's median. Taking turns means a change in the
/// machine's load hits every contender alike rather than whichever ran
/// then. An item whose first run takes long gets fewer rounds (at least
/// one) so that it spends about [`BUDGET`] seconds in all.
fn round_robin<T>(items: &[T], max: usize, mut f: impl FnMut(&T) -> f64) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(max); items.len()];
    let mut rounds = vec![max; items.len()];
    for round in 0..max {
        for (i, item) in items.iter().enumerate() {
            if round < rounds[i] {
                let wall = Instant::now();
                samples[i].push(f(item));
                if round == 0 {
                    rounds[i] = ((BUDGET / wall.elapsed().as_secs_f64()) as usize).clamp(1, max);
                }
            }
        }
    }
    samples.into_iter().map(median).collect()
}

/// Times one run of `f` over `ops` operations, in ns per operation.
fn ns_per_op(ops: usize, f: impl FnOnce() -> u64) -> f64 {
    let start = Stopwatch::start();
    black_box(f());
    start.elapsed_ns() / ops as f64
}

/// Builds `c`'s table of `order` from empty, and drops it; ns per insert
/// (neither the empty table's creation nor the drop is timed).
fn timed_build(c: &Contender, w: &Workload, order: &[Entry]) -> f64 {
    let mut t = c.empty(w);
    let start = Stopwatch::start();
    t.insert_all(order);
    start.elapsed_ns() / order.len() as f64
}

/// Every figure of every contender that can hold `w`.
fn measure_shape(cs: &[Contender], w: &Workload, out: &mut Vec<Figure>) {
    let cs: Vec<&Contender> = cs.iter().filter(|c| (c.supports)(w)).collect();
    let n = w.len();
    let mut put = |c: &Contender, op, value| {
        out.push(Figure {
            shape: w.shape.map_or(w.name.clone(), |s| s.name().to_string()),
            entries: n,
            op,
            implementation: c.name,
            is_mem_table: c.is_mem_table,
            value,
        })
    };

    // Memory: one build each, in random order, kept for the lookups.
    let (mut tables, footprints): (Vec<Box<dyn Run>>, Vec<_>) =
        cs.iter().map(|c| measure(|| c.build(w))).unzip();

    let random = &w.lookups[..LOOKUPS.min(n)];
    let ascending: Vec<u64> = w.ascending.iter().map(|e| e.addr).collect();
    let steps = LOOKUPS.min(n);
    let ids: Vec<usize> = (0..cs.len()).collect();
    let timings = [
        (Op::InsertRandom, round_robin(&cs, BUILD_RUNS, |c| timed_build(c, w, &w.random))),
        (Op::InsertAscending, round_robin(&cs, BUILD_RUNS, |c| timed_build(c, w, &w.ascending))),
        (Op::GetRandom, round_robin(&ids, RUNS, |&i| ns_per_op(random.len(), || tables[i].get_all(random)))),
        (Op::GetAscending, round_robin(&ids, RUNS, |&i| ns_per_op(n, || tables[i].get_all(&ascending)))),
        (
            Op::GetChain,
            round_robin(&ids, BUILD_RUNS, |&i| ns_per_op(steps, || tables[i].chain(w.chain_start, steps))),
        ),
        (Op::Iter, round_robin(&ids, RUNS, |&i| ns_per_op(n, || tables[i].iter_sum()))),
    ];
    for (op, per_contender) in timings {
        for (c, ns) in cs.iter().zip(per_contender) {
            put(c, op, ns);
        }
    }

    for ((c, t), fp) in cs.iter().zip(&mut tables).zip(footprints) {
        put(c, Op::Memory, fp.live as f64 / n as f64);
        put(c, Op::MemoryPeak, fp.peak as f64 / n as f64);
        let before = live();
        t.remove_all(&w.lookups);
        let freed = before.saturating_sub(live());
        put(c, Op::MemoryLeft, fp.live.saturating_sub(freed) as f64 / n as f64);
    }
}

/// The figure for `(shape, op, implementation)`, if measured.
fn find<'a>(figs: &'a [Figure], shape: &str, op: Op, implementation: &str) -> Option<&'a Figure> {
    figs.iter().find(|f| f.shape == shape && f.op == op && f.implementation == implementation)
}

/// `a / b`, when both exist and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn ratio_cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

/// The side-by-side table of one shape.
fn print_shape(figs: &[Figure], w: &Workload, names: &[&'static str]) {
    let shape = w.shape.expect("a named shape").name();
    println!("\n== {} ({} entries; ns per operation, bytes per entry) ==", shape, size_label(w.len()));
    let (mut h1, mut h2) = (format!("{:<24}", ""), format!("{:<24}", "implementation"));
    for op in Op::ALL {
        let (a, b) = op.header();
        let _ = write!(h1, "{a:>9}");
        let _ = write!(h2, "{b:>9}");
    }
    println!("{h1}\n{h2}");
    let value = |op, name: &str| find(figs, shape, op, name).map(|f| f.value);
    for &name in names {
        if find(figs, shape, Op::Memory, name).is_none() {
            continue; // the implementation cannot hold this shape
        }
        let mut line = format!("{name:<24}");
        for op in Op::ALL {
            let _ = write!(line, "{:>9}", cell(value(op, name)));
        }
        println!("{line}");
        if find(figs, shape, Op::Memory, name).is_some_and(|f| f.is_mem_table) {
            for (label, base) in [("  vs Fx", FX), ("  vs flat", FLAT)] {
                let mut line = format!("{label:<24}");
                for op in Op::ALL {
                    let r = if op == Op::MemoryLeft { None } else { ratio(value(op, name), value(op, base)) };
                    let _ = write!(line, "{:>9}", ratio_cell(r));
                }
                println!("{line}");
            }
        }
    }
}

/// A target: an operation on a shape, a MemTable figure over a baseline's,
/// at most `limit`.
struct Target {
    what: &'static str,
    shape: &'static str,
    op: Op,
    baseline: &'static str,
    /// The baseline's operation, when it differs.
    baseline_op: Option<Op>,
    limit: f64,
}

fn print_targets(figs: &[Figure], backends: &[&'static str]) {
    let t = |what, shape, op, baseline, limit| Target { what, shape, op, baseline, baseline_op: None, limit };
    let mut targets = Vec::new();
    for shape in ["dense", "clustered-64GiB"] {
        targets.push(t("random hits", shape, Op::GetRandom, FX, 0.6));
        targets.push(t("random hits", shape, Op::GetRandom, FLAT, 1.5));
    }
    targets.push(t("dependent chain", "dense", Op::GetChain, FLAT, 1.25));
    for s in SHAPES {
        targets.push(t("ascending hits", s.name(), Op::GetAscending, FX, 0.15));
    }
    for s in SHAPES {
        targets.push(t("ascending inserts", s.name(), Op::InsertAscending, FX, 0.1));
        targets.push(t("random inserts", s.name(), Op::InsertRandom, FX, 0.5));
    }
    for s in SHAPES {
        targets.push(t("full iteration", s.name(), Op::Iter, FX, 0.5));
        targets.push(t("full iteration", s.name(), Op::Iter, "BTreeMap", 0.1));
    }
    targets.push(t("memory", "dense", Op::Memory, FX, 0.25));
    targets.push(t("memory", "clustered-48bit", Op::Memory, FX, 0.5));
    targets.push(t("type-level vs runtime geometry, random hits", "dense/2^16", Op::GetRandom, RADIX, 0.9));
    for label in ["2MiB", "1GiB"] {
        targets.push(Target {
            what: "lookup inside a large entry vs a 4 KiB one",
            shape: if label == "2MiB" { "2MiB-entries/2^16" } else { "1GiB-entries/2^16" },
            op: Op::GetRandom,
            baseline: SAME,
            baseline_op: None,
            limit: 1.0,
        });
    }

    println!("\n== targets (MemTable figure / baseline; met when <= limit) ==");
    let mut head = format!("{:<44} {:<18} {:<22} {:>6}", "target", "shape", "baseline", "limit");
    for b in backends {
        let _ = write!(head, " {:>16}", b.trim_start_matches("mem-table/"));
    }
    println!("{head}");
    for tg in &targets {
        let mut line = format!("{:<44} {:<18} {:<22} {:>6}", tg.what, tg.shape, tg.baseline, tg.limit);
        for &b in backends {
            let mine = find(figs, tg.shape, tg.op, b).map(|f| f.value);
            let base = if tg.baseline == SAME {
                find(figs, "4KiB-entries/2^16", tg.op, b).map(|f| f.value)
            } else {
                find(figs, tg.shape, tg.baseline_op.unwrap_or(tg.op), tg.baseline).map(|f| f.value)
            };
            let r = ratio(mine, base);
            let verdict = match r {
                Some(r) if r <= tg.limit => "met",
                Some(_) => "MISSED",
                None => "",
            };
            let _ = write!(line, " {:>9} {:<6}", ratio_cell(r), verdict);
        }
        println!("{line}");
    }
}

/// The runtime-geometry radix table's name.
const RADIX: &str = "runtime-geometry radix";
/// A target whose baseline is the same backend on 4 KiB entries.
const SAME: &str = "same, 4 KiB entries";

fn json_string(s: &str) -> String {
    let mut out = String::from('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "null".into(),
    }
}

fn print_json(figs: &[Figure]) {
    println!("[");
    for (i, f) in figs.iter().enumerate() {
        let value = |base| {
            let b = find(figs, &f.shape, f.op, base).map(|b| b.value);
            if f.is_mem_table && f.op != Op::MemoryLeft { ratio(Some(f.value), b) } else { None }
        };
        let (ns, bytes) = if f.op.is_bytes() { (None, Some(f.value)) } else { (Some(f.value), None) };
        println!(
            "  {{\"shape\": {}, \"entries\": {}, \"operation\": {}, \"implementation\": {}, \
             \"ns_per_op\": {}, \"bytes_per_entry\": {}, \"vs_fx\": {}, \"vs_flat\": {}}}{}",
            json_string(&f.shape),
            f.entries,
            json_string(f.op.name()),
            json_string(f.implementation),
            json_number(ns),
            json_number(bytes),
            json_number(value(FX)),
            json_number(value(FLAT)),
            if i + 1 < figs.len() { "," } else { "" }
        );
    }
    println!("]");
}

/// The few small measurements the targets need beyond the main matrix:
/// random hits at 2^16 (type-level against runtime geometry) and lookups
/// inside 4 KiB, 2 MiB and 1 GiB entries.
fn extras(cs: &[Contender], figs: &mut Vec<Figure>) {
    let small = Workload::new(Shape::Dense, 1 << 16);
    let in_entry = [0, 1, 2].map(|level| Workload::uniform_level(level, 1 << 16));
    // Every table of every workload takes turns, so that the ratios
    // between workloads are as fair as those within one.
    let mut items = Vec::new();
    for w in std::iter::once(&small).chain(&in_entry) {
        for c in cs.iter().filter(|c| c.is_mem_table || (c.name == RADIX && w.name == small.name)) {
            items.push((w, c, c.build(w)));
        }
    }
    let ns = round_robin(&items, RUNS * 2, |(w, _, t)| ns_per_op(w.len(), || t.get_all(&w.lookups)));
    for ((w, c, _), ns) in items.iter().zip(ns) {
        figs.push(Figure {
            shape: w.name.clone(),
            entries: w.len(),
            op: Op::GetRandom,
            implementation: c.name,
            is_mem_table: c.is_mem_table,
            value: ns,
        });
    }
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let started = Instant::now();
    let cs = contenders();
    let names: Vec<&'static str> = cs.iter().map(|c| c.name).collect();
    let mut figs = Vec::new();
    let mut workloads = Vec::new();
    for shape in SHAPES {
        let w = Workload::new(shape, N);
        let t0 = Instant::now();
        measure_shape(&cs, &w, &mut figs);
        eprintln!("compare: {} measured in {:.0} s", w.name, t0.elapsed().as_secs_f64());
        if !json {
            print_shape(&figs, &w, &names);
        }
        workloads.push(w);
    }
    extras(&cs, &mut figs);
    if json {
        print_json(&figs);
    } else {
        let backends: Vec<&'static str> = cs.iter().filter(|c| c.is_mem_table).map(|c| c.name).collect();
        print_targets(&figs, &backends);
        println!(
            "\n{}; median of up to {RUNS} runs ({BUILD_RUNS} for builds and the chain; fewer when one run \
             takes over {BUDGET} s), contenders taking turns; {:.0} s in all",
            Stopwatch::clock(),
            started.elapsed().as_secs_f64()
        );
    }
}
