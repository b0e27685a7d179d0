//! The comparison report: `mem-table` on each backend against the maps a
//! user would reach for, two flat arrays (the physical limit) and a plain
//! 4 x 512 radix table (the same shape without the crate's features), one
//! run side by side, `u64` values; then every target of the performance
//! issue as a ratio measured in that run, met or missed.
//!
//! ```text
//! cargo run --release --example compare                 # 2^20, 2^22, 2^24 entries
//! cargo run --release --example compare -- --quick      # 2^20 only, fewer runs (CI, smoke)
//! cargo run --release --example compare -- --sizes 22   # chosen sizes (log2 entries)
//! cargo run --release --example compare -- --json       # the same figures as JSON
//! cargo run --release --example compare -- --sparse     # the sparse shapes of issue 11 only
//! ```
//!
//! Method:
//!
//! - Lookups: each round gives a contender one untimed pass over all its
//!   keys in a shuffled order (the warm-up), then times a whole pass each
//!   of single `get`s in the same order, of batched lookups
//!   (`get_many::<8>` for `mem-table`, the same loop of `get` for the
//!   others), of `get`s in ascending order, and a dependent chain of 2^18
//!   lookups (each value is the next address). Every pass makes as many
//!   lookups as there are keys, and sums what it finds.
//! - Inserts: a table built from empty, in random then in ascending order
//!   (the empty table's creation and the drop not timed). The first
//!   random build is the one whose bytes are counted and whose table is
//!   looked up.
//! - Iteration: after one untimed pass, a plain `for` loop over `&table`,
//!   internal iteration (`for_each`), and a `for` loop over `iter().rev()`;
//!   `into_iter` consumes a clone (the clone not timed).
//! - Times are thread CPU time where the system offers it, so that slices
//!   given to other processes on a shared machine are not counted; the
//!   median over rounds, contenders taking turns round by round so that a
//!   change in the machine's load hits all alike. A contender gets as many
//!   rounds (up to 5, 3 for builds) as fit in a budget of 2 s per kind of
//!   loop, judged by its first round: one at 2^24 entries.
//! - Bytes come from a counting global allocator: live bytes after the
//!   build, the peak during it, and (at the smallest size run) what is
//!   left after removing every entry.
//! - Every loop's result is checked: the same sums from every contender.
//!
//! Shapes: `dense` and `clustered-64GiB` (runs of 512 pages at random
//! 2 MiB-aligned places in 64 GiB; 256 GiB at 2^24 entries, which would
//! fill 64 GiB) get every operation; `clustered-48bit` and `random-12.5%`
//! get the build (bytes, random inserts). Lookups inside 4 KiB, 2 MiB and
//! 1 GiB entries are compared on 2^16 entries of each.
//!
//! Sparse shapes (issue 11, the figures before adaptive tables): random
//! distinct base pages at 0.78 % of 32 GiB, 0.024 % of 1 TiB and uniform
//! over 48 bits (2^16 entries), 12.5 % of 32 GiB, 1 % of 400 GiB and
//! uniform over 48 bits (2^20 entries). Each gets bytes per entry, random
//! hits, batched lookups and iteration, for every backend against
//! `FxHashMap`, hashbrown and `BTreeMap`, with ratios to `FxHashMap`. The
//! tables a shape needs are estimated before it is built (the distinct
//! tables per level, times a table's bytes as measured on a one-entry
//! build); a shape over `--sparse-limit` (4 GiB per backend) or beyond the
//! memory available is skipped with the estimate printed, never built.
//! `--quick` runs the two 2^16 shapes in a window only (not over 48 bits);
//! `--sparse` runs this section alone, `--no-sparse` all but it.

#[path = "../benches/common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use common::Stopwatch;
use common::alloc::{Counting, live, measure};
use common::contenders::{
    BATCH, BrownHashMap, Contender, FLAT, FLAT_U64, FX, FxHashMap, HEAP, HEAP_NICHE, Hashed, Ordered, PLAIN,
    Run, Table, report_contenders,
};
use common::rng::Rng;
use common::workload::{Entry, Shape, Sparse, Workload, size_label};
use mem_table::backend::{Arena, Heap, Pool};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Sizes of a default run, as log2 of the entries.
const DEFAULT_SIZES: [u32; 3] = [20, 22, 24];
/// The sizes the targets are judged at, when run.
const HEADLINE_SIZES: [u32; 2] = [22, 24];
/// Shapes measured on every operation.
const FULL_SHAPES: [Shape; 2] = [Shape::Dense, Shape::Clustered64G];
/// Shapes measured for memory and random inserts (one build each).
const MEMORY_SHAPES: [Shape; 2] = [Shape::Clustered48, Shape::Random12];
/// Steps of the dependent chain (at most the entries).
const CHAIN_STEPS: usize = 1 << 18;
/// Entries of each lookup-inside-an-entry workload.
const IN_ENTRY: usize = 1 << 16;
/// Passes over those keys per timed sample.
const IN_ENTRY_PASSES: usize = 16;
/// The default of `--sparse-limit`: the most tables, in GiB, one backend
/// may build for one sparse shape.
const SPARSE_LIMIT_GIB: f64 = 4.0;
/// Whether `--quick` runs a sparse shape: the 2^16 entries in a window
/// (about 4 s), not over 48 bits (about 11 s and 2.2 GB of tables for the
/// three backends on the project's machine).
fn sparse_in_quick(sp: &Sparse) -> bool {
    sp.entries == 1 << 16 && sp.window_pages.is_some()
}

/// Which parts of the report run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sections {
    /// The main shapes, lookups inside entries and the targets, then the
    /// sparse shapes.
    All,
    /// `--sparse`: the sparse shapes only.
    SparseOnly,
    /// `--no-sparse`: everything but the sparse shapes.
    NoSparse,
}

/// How much to run.
struct Settings {
    sizes: Vec<usize>,
    json: bool,
    quick: bool,
    /// Rounds of each lookup and iteration loop, at most.
    runs: usize,
    /// Rounds of each build and of `into_iter`, at most.
    build_runs: usize,
    /// Seconds (wall) one contender may spend on one kind of loop.
    budget: f64,
    sections: Sections,
    /// Bytes of tables one backend may build for one sparse shape.
    sparse_limit: f64,
}

const USAGE: &str = "usage: compare [--quick] [--sizes 20,22,24] [--json] [--sparse | --no-sparse] [--sparse-limit GIB]
  --quick             2^20 entries only, at most 3 rounds, the 2^16 sparse shapes in a window only: under a minute (CI, smoke)
  --sizes LIST        table sizes as log2 of the entries, comma-separated (default 20,22,24)
  --json              the figures as JSON instead of the tables
  --sparse            the sparse shapes of issue 11 only
  --no-sparse         everything but the sparse shapes
  --sparse-limit GIB  skip a sparse shape whose tables would exceed GIB per backend (default 4)";

impl Settings {
    fn from_args() -> Result<Settings, String> {
        let mut s = Settings {
            sizes: DEFAULT_SIZES.map(|e| 1 << e).to_vec(),
            json: false,
            quick: false,
            runs: 5,
            build_runs: 3,
            budget: 2.0,
            sections: Sections::All,
            sparse_limit: SPARSE_LIMIT_GIB * GIB,
        };
        let mut sizes = None;
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--json" => s.json = true,
                "--quick" => s.quick = true,
                "--sparse" => s.sections = Sections::SparseOnly,
                "--no-sparse" => s.sections = Sections::NoSparse,
                "--sparse-limit" => {
                    let v = args.next().ok_or("--sparse-limit needs GiB, such as 4")?;
                    s.sparse_limit = parse_gib(&v)?;
                }
                "--sizes" => sizes = Some(args.next().ok_or("--sizes needs a list such as 20,22")?),
                "-h" | "--help" => return Err(String::new()),
                // `cargo bench`-style arguments, should this ever run that way.
                "--bench" => {}
                _ => match (a.strip_prefix("--sizes="), a.strip_prefix("--sparse-limit=")) {
                    (Some(list), _) => sizes = Some(list.to_string()),
                    (_, Some(v)) => s.sparse_limit = parse_gib(v)?,
                    _ => return Err(format!("unknown argument {a:?}")),
                },
            }
        }
        if s.quick {
            s.sizes = vec![1 << 20];
            s.runs = 3;
            s.build_runs = 2;
            s.budget = 0.4;
        }
        if let Some(list) = sizes {
            s.sizes = list
                .split(',')
                .map(|e| match e.trim().parse::<u32>() {
                    Ok(k @ 12..=24) => Ok(1 << k),
                    _ => Err(format!("--sizes: {e:?} is not a log2 size from 12 to 24")),
                })
                .collect::<Result<_, _>>()?;
            s.sizes.sort_unstable();
            s.sizes.dedup();
        }
        Ok(s)
    }
}

/// Bytes in a GiB.
const GIB: f64 = (1u64 << 30) as f64;

fn parse_gib(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(g) if g.is_finite() && g > 0.0 => Ok(g * GIB),
        _ => Err(format!("--sparse-limit: {v:?} is not a positive number of GiB")),
    }
}

/// One column of the report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    GetRandom,
    GetBatch,
    GetAscending,
    GetChain,
    InsertRandom,
    InsertAscending,
    /// A plain `for` loop over `&table`.
    IterFor,
    /// Internal iteration, `for_each`.
    IterEach,
    IntoIter,
    /// A `for` loop over `iter().rev()`.
    IterRev,
    /// Live bytes per entry after the build.
    Memory,
    /// Peak bytes per entry during the build.
    MemoryPeak,
    /// Bytes per (former) entry still held after removing every entry.
    MemoryLeft,
}

impl Op {
    const ALL: [Op; 13] = [
        Op::GetRandom,
        Op::GetBatch,
        Op::GetAscending,
        Op::GetChain,
        Op::InsertRandom,
        Op::InsertAscending,
        Op::IterFor,
        Op::IterEach,
        Op::IntoIter,
        Op::IterRev,
        Op::Memory,
        Op::MemoryPeak,
        Op::MemoryLeft,
    ];

    /// The name in JSON.
    fn name(self) -> &'static str {
        match self {
            Op::GetRandom => "get-random",
            Op::GetBatch => "get-batch",
            Op::GetAscending => "get-ascending",
            Op::GetChain => "get-chain",
            Op::InsertRandom => "insert-random",
            Op::InsertAscending => "insert-ascending",
            Op::IterFor => "iter-for",
            Op::IterEach => "iter",
            Op::IntoIter => "into-iter",
            Op::IterRev => "iter-rev",
            Op::Memory => "memory",
            Op::MemoryPeak => "memory-peak",
            Op::MemoryLeft => "memory-left",
        }
    }

    /// The two header lines of its column.
    fn header(self) -> (&'static str, &'static str) {
        match self {
            Op::GetRandom => ("get", "random"),
            Op::GetBatch => ("get", "batched"),
            Op::GetAscending => ("get", "ascend"),
            Op::GetChain => ("get", "chain"),
            Op::InsertRandom => ("insert", "random"),
            Op::InsertAscending => ("insert", "ascend"),
            Op::IterFor => ("iter", "for"),
            Op::IterEach => ("iter", "each"),
            Op::IntoIter => ("into", "iter"),
            Op::IterRev => ("iter", "rev"),
            Op::Memory => ("bytes", "/entry"),
            Op::MemoryPeak => ("peak", "B/entry"),
            Op::MemoryLeft => ("left", "B/entry"),
        }
    }

    fn is_bytes(self) -> bool {
        matches!(self, Op::Memory | Op::MemoryPeak | Op::MemoryLeft)
    }
}

/// One figure: ns per operation, or bytes per entry; `None` when the
/// contender does not offer the operation (printed "n/a").
#[derive(Clone, Debug)]
struct Figure {
    /// The shape's label at this size (`dense`, `clustered-256GiB`, ...).
    shape: String,
    entries: usize,
    op: Op,
    implementation: &'static str,
    is_mem_table: bool,
    value: Option<f64>,
}

/// The figures of one workload, as they are measured.
struct Sink<'a> {
    figs: &'a mut Vec<Figure>,
    shape: String,
    entries: usize,
}

impl Sink<'_> {
    fn put(&mut self, c: &Contender, op: Op, value: Option<f64>) {
        self.figs.push(Figure {
            shape: self.shape.clone(),
            entries: self.entries,
            op,
            implementation: c.name,
            is_mem_table: c.is_mem_table,
            value,
        });
    }
}

/// The label of a workload: its name without the size.
fn label(w: &Workload) -> String {
    w.name.split('/').next().unwrap_or(&w.name).to_string()
}

/// The median; of an even count, the mean of the middle two.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 0 { (v[m - 1] + v[m]) / 2.0 } else { v[m] }
}

/// Rounds for a loop whose first round took `secs`: as many as fit in
/// `budget`, at least one, at most `max`.
fn rounds_for(secs: f64, max: usize, budget: f64) -> usize {
    ((budget / secs.max(1e-9)) as usize).clamp(1, max)
}

/// Calls `f(i)` for every item `0..n` in turn, round after round, and
/// returns each item's results in order. Item `i` gets `preset[i]` rounds
/// when given (possibly none); otherwise its first round decides
/// ([`rounds_for`]).
fn take_turns<S>(
    n: usize,
    max: usize,
    budget: f64,
    preset: Option<Vec<usize>>,
    mut f: impl FnMut(usize) -> S,
) -> Vec<Vec<S>> {
    let adaptive = preset.is_none();
    let mut rounds = preset.unwrap_or_else(|| vec![max; n]);
    let total = rounds.iter().copied().max().unwrap_or(0);
    let mut out: Vec<Vec<S>> = (0..n).map(|_| Vec::new()).collect();
    for round in 0..total {
        for i in 0..n {
            if round < rounds[i] {
                let wall = Instant::now();
                out[i].push(f(i));
                if adaptive && round == 0 {
                    rounds[i] = rounds_for(wall.elapsed().as_secs_f64(), max, budget);
                }
            }
        }
    }
    out
}

/// Times one loop of `ops` operations: ns per operation, and its result.
fn timed(ops: usize, f: impl FnOnce() -> u64) -> (f64, u64) {
    let start = Stopwatch::start();
    let r = black_box(f());
    (start.elapsed_ns() / ops as f64, r)
}

/// The same for a loop the contender may not offer (`None`: not run).
fn timed_opt(ops: usize, f: impl FnOnce() -> Option<u64>) -> Option<(f64, u64)> {
    let start = Stopwatch::start();
    let r = black_box(f())?;
    Some((start.elapsed_ns() / ops as f64, r))
}

/// Builds `c`'s table of `order` from empty, and drops it; ns per insert
/// (neither the empty table's creation nor the drop is timed).
fn timed_build(c: &Contender, w: &Workload, order: &[Entry]) -> f64 {
    let mut t = c.empty(w);
    let start = Stopwatch::start();
    t.insert_all(order);
    start.elapsed_ns() / order.len() as f64
}

/// Panics unless `got` is `want`: a contender gave a wrong answer.
fn check(what: &str, w: &Workload, c: &Contender, got: u64, want: u64) {
    assert_eq!(got, want, "{what} on {}: {} gives {got:#x}, expected {want:#x}", w.name, c.name);
}

/// The checksums every contender must give for `w`: the sum of the values
/// (what a pass of lookups finds) and of `address ^ value` (iteration).
fn checksums(w: &Workload) -> (u64, u64) {
    w.random
        .iter()
        .fold((0u64, 0u64), |(v, kv), e| (v.wrapping_add(e.value), kv.wrapping_add(e.addr ^ e.value)))
}

/// The median ns of each contender's samples, `None` where it has none.
fn medians(samples: Vec<Vec<f64>>) -> Vec<Option<f64>> {
    samples.into_iter().map(|s| (!s.is_empty()).then(|| median(s))).collect()
}

/// Builds every contender in random order: its table, the first random
/// insert sample (ns per insert) and its seconds (wall), and its
/// footprint.
fn build_all(cs: &[&Contender], w: &Workload) -> Vec<(Box<dyn Run>, f64, f64, common::alloc::Footprint)> {
    cs.iter()
        .map(|c| {
            let wall = Instant::now();
            let ((t, ns), fp) = measure(|| {
                let mut t = c.empty(w);
                let start = Stopwatch::start();
                t.insert_all(&w.random);
                (t, start.elapsed_ns() / w.len() as f64)
            });
            (t, ns, wall.elapsed().as_secs_f64(), fp)
        })
        .collect()
}

/// Every operation of every contender that can hold `w`.
fn measure_full(cs: &[Contender], w: &Workload, s: &Settings, left: bool, figs: &mut Vec<Figure>) {
    let cs: Vec<&Contender> = cs.iter().filter(|c| (c.supports)(w)).collect();
    let n = w.len();
    let mut sink = Sink { figs, shape: label(w), entries: n };
    let (sum_values, sum_entries) = checksums(w);

    let built = build_all(&cs, w);
    let (mut tables, rest): (Vec<Box<dyn Run>>, Vec<_>) =
        built.into_iter().map(|(t, a, b, c)| (t, (a, b, c))).unzip();

    // Inserts. The memory build was the first random sample.
    let preset = rest.iter().map(|&(_, secs, _)| rounds_for(secs, s.build_runs, s.budget) - 1).collect();
    let more =
        take_turns(cs.len(), s.build_runs, s.budget, Some(preset), |i| timed_build(cs[i], w, &w.random));
    let random: Vec<Vec<f64>> = rest
        .iter()
        .zip(more)
        .map(|(&(first, _, _), mut v)| {
            v.push(first);
            v
        })
        .collect();
    let ascending =
        take_turns(cs.len(), s.build_runs, s.budget, None, |i| timed_build(cs[i], w, &w.ascending));
    for (op, per) in [(Op::InsertRandom, random), (Op::InsertAscending, ascending)] {
        for (c, ns) in cs.iter().zip(medians(per)) {
            sink.put(c, op, ns);
        }
    }

    // Lookups: a warm-up pass, then whole passes, each contender in turn.
    let ascending: Vec<u64> = w.ascending.iter().map(|e| e.addr).collect();
    let steps = CHAIN_STEPS.min(n);
    let lookups = take_turns(cs.len(), s.runs, s.budget, None, |i| {
        let t = &tables[i];
        check("warm-up pass", w, cs[i], t.get_all(&w.lookups), sum_values);
        [
            timed(n, || t.get_all(&w.lookups)),
            timed(n, || t.get_batched(&w.lookups)),
            timed(n, || t.get_all(&ascending)),
            timed(steps, || t.chain(w.chain_start, steps)),
        ]
    });
    let chain_end = lookups[0][0][3].1;
    for (c, rounds) in cs.iter().zip(lookups) {
        for (k, op) in [Op::GetRandom, Op::GetBatch, Op::GetAscending, Op::GetChain].into_iter().enumerate() {
            for r in &rounds {
                check(op.name(), w, c, r[k].1, if op == Op::GetChain { chain_end } else { sum_values });
            }
            sink.put(c, op, Some(median(rounds.iter().map(|r| r[k].0).collect())));
        }
    }

    // Iteration: a warm-up pass, then each loop.
    let iteration = take_turns(cs.len(), s.runs, s.budget, None, |i| {
        let t = &tables[i];
        check("warm-up iteration", w, cs[i], t.iter_sum(), sum_entries);
        [timed_opt(n, || t.for_sum()), Some(timed(n, || t.iter_sum())), timed_opt(n, || t.rev_sum())]
    });
    let into = take_turns(cs.len(), s.build_runs, s.budget, None, |i| {
        let t = tables[i].boxed_clone();
        timed_opt(n, || t.into_sum())
    });
    for ((c, rounds), into) in cs.iter().zip(iteration).zip(into) {
        for (k, op) in [Op::IterFor, Op::IterEach, Op::IterRev].into_iter().enumerate() {
            let got: Vec<(f64, u64)> = rounds.iter().filter_map(|r| r[k]).collect();
            got.iter().for_each(|&(_, sum)| check(op.name(), w, c, sum, sum_entries));
            sink.put(c, op, (!got.is_empty()).then(|| median(got.iter().map(|g| g.0).collect())));
        }
        let got: Vec<(f64, u64)> = into.into_iter().flatten().collect();
        got.iter().for_each(|&(_, sum)| check("into_iter", w, c, sum, sum_entries));
        sink.put(c, Op::IntoIter, (!got.is_empty()).then(|| median(got.iter().map(|g| g.0).collect())));
    }

    // Memory.
    for ((c, t), &(_, _, fp)) in cs.iter().zip(&mut tables).zip(&rest) {
        put_memory(&mut sink, c, t, fp, w, left, sum_values);
    }
}

/// The bytes of one build, and (when `left`) what removing every entry
/// leaves.
fn put_memory(
    sink: &mut Sink<'_>,
    c: &Contender,
    t: &mut Box<dyn Run>,
    fp: common::alloc::Footprint,
    w: &Workload,
    left: bool,
    sum_values: u64,
) {
    let n = w.len() as f64;
    sink.put(c, Op::Memory, Some(fp.live as f64 / n));
    sink.put(c, Op::MemoryPeak, Some(fp.peak as f64 / n));
    if left {
        let before = live();
        check("remove", w, c, t.remove_all(&w.lookups), sum_values);
        let freed = before.saturating_sub(live());
        sink.put(c, Op::MemoryLeft, Some(fp.live.saturating_sub(freed) as f64 / n));
    }
}

/// The build of every contender that can hold `w`, one at a time: bytes
/// and random inserts (one sample each).
fn measure_memory(cs: &[Contender], w: &Workload, left: bool, figs: &mut Vec<Figure>) {
    let mut sink = Sink { figs, shape: label(w), entries: w.len() };
    let (sum_values, sum_entries) = checksums(w);
    for c in cs.iter().filter(|c| (c.supports)(w)) {
        let (mut t, ns, _, fp) = build_all(&[c], w).pop().expect("one table");
        check("iteration", w, c, t.iter_sum(), sum_entries);
        sink.put(c, Op::InsertRandom, Some(ns));
        put_memory(&mut sink, c, &mut t, fp, w, left, sum_values);
    }
}

/// Lookups inside 4 KiB, 2 MiB and 1 GiB entries, [`IN_ENTRY`] of each,
/// for every backend.
fn measure_in_entry(cs: &[Contender], s: &Settings, figs: &mut Vec<Figure>) {
    let ws = [0, 1, 2].map(|level| Workload::uniform_level(level, IN_ENTRY));
    // Every table of every workload takes turns, so that the ratios
    // between workloads are as fair as those within one.
    let mut items = Vec::new();
    for w in &ws {
        for c in cs.iter().filter(|c| c.is_mem_table) {
            items.push((w, c, c.build(w), checksums(w).0));
        }
    }
    let ops = IN_ENTRY * IN_ENTRY_PASSES;
    let samples = take_turns(items.len(), s.runs * 2, s.budget, None, |i| {
        let (w, c, t, want) = &items[i];
        check("warm-up pass", w, c, t.get_all(&w.lookups), *want);
        timed(ops, || (0..IN_ENTRY_PASSES).fold(0u64, |acc, _| acc.wrapping_add(t.get_all(&w.lookups))))
    });
    for ((w, c, _, want), rounds) in items.iter().zip(samples) {
        for r in &rounds {
            check("passes", w, c, r.1, want.wrapping_mul(IN_ENTRY_PASSES as u64));
        }
        let mut sink = Sink { figs, shape: label(w), entries: w.len() };
        sink.put(c, Op::GetRandom, Some(median(rounds.iter().map(|r| r.0).collect())));
    }
}

#[path = "compare/sparse.rs"]
mod sparse;
use sparse::run_sparse;

/// The figure for `(shape, entries, op, implementation)`: `None` when not
/// measured, `Some(None)` when not available.
fn find(figs: &[Figure], shape: &str, entries: usize, op: Op, implementation: &str) -> Option<Option<f64>> {
    figs.iter()
        .find(|f| {
            f.shape == shape && f.entries == entries && f.op == op && f.implementation == implementation
        })
        .map(|f| f.value)
}

/// `a / b`, when both exist and `b` is not zero.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn cell(v: Option<Option<f64>>) -> String {
    match v {
        None => "-".into(),
        Some(None) => "n/a".into(),
        Some(Some(v)) if v >= 1000.0 => format!("{v:.0}"),
        Some(Some(v)) if v >= 10.0 => format!("{v:.1}"),
        Some(Some(v)) => format!("{v:.2}"),
    }
}

fn ratio_cell(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}x"))
}

/// The side-by-side table of one workload: the columns measured on it.
fn print_shape(figs: &[Figure], shape: &str, entries: usize, names: &[&'static str]) {
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|&op| figs.iter().any(|f| f.shape == shape && f.entries == entries && f.op == op))
        .collect();
    println!("\n== {shape}, {} entries (ns per operation; bytes per entry) ==", size_label(entries));
    let (mut h1, mut h2) = (format!("{:<24}", ""), format!("{:<24}", "implementation"));
    for op in &ops {
        let (a, b) = op.header();
        let _ = write!(h1, "{a:>9}");
        let _ = write!(h2, "{b:>9}");
    }
    println!("{h1}\n{h2}");
    let value = |op, name: &str| find(figs, shape, entries, op, name);
    for &name in names {
        if !ops.iter().any(|&op| value(op, name).is_some()) {
            continue; // the implementation cannot hold this shape
        }
        let mut line = format!("{name:<24}");
        for &op in &ops {
            let _ = write!(line, "{:>9}", cell(value(op, name)));
        }
        println!("{line}");
        let is_mem_table = figs.iter().any(|f| f.implementation == name && f.is_mem_table);
        if !is_mem_table {
            continue;
        }
        for (tag, base) in [("  vs Fx", FX), ("  vs flat Vec<u64>", FLAT_U64), ("  vs plain radix", PLAIN)] {
            if !ops.iter().any(|&op| value(op, base).is_some()) {
                continue;
            }
            let mut line = format!("{tag:<24}");
            for &op in &ops {
                let r = if op == Op::MemoryLeft {
                    None
                } else {
                    ratio(value(op, name).flatten(), value(op, base).flatten())
                };
                let _ = write!(line, "{:>9}", ratio_cell(r));
            }
            println!("{line}");
        }
    }
}

/// What a target's figure is divided by.
#[derive(Clone, Copy)]
enum Base {
    /// Another implementation, same operation.
    Other(&'static str),
    /// The fastest backend, same operation (judged for the heap only).
    BestBackend,
    /// The same backend, another operation.
    OtherOp(Op),
    /// The same backend and operation, inside 4 KiB entries.
    In4KiB,
}

/// A target: a `mem-table` figure over a baseline, met when at most `limit`.
struct Target {
    what: &'static str,
    shape: String,
    entries: usize,
    op: Op,
    base: Base,
    limit: f64,
}

impl Target {
    fn baseline(&self) -> String {
        match self.base {
            Base::Other(name) => name.to_string(),
            Base::BestBackend => "best backend".into(),
            Base::OtherOp(op) => format!("same, {}", op.name()),
            Base::In4KiB => "same, 4 KiB entries".into(),
        }
    }

    /// The ratio for `backend`, or `None` when not measured (or not judged).
    fn ratio(&self, figs: &[Figure], backend: &str, backends: &[&'static str]) -> Option<Option<f64>> {
        let get = |shape: &str, entries, op, name: &str| find(figs, shape, entries, op, name);
        let mine = get(&self.shape, self.entries, self.op, backend)?;
        let base = match self.base {
            Base::Other(name) => get(&self.shape, self.entries, self.op, name)?,
            Base::BestBackend if backend == HEAP => backends
                .iter()
                .filter(|&&b| b != HEAP_NICHE)
                .filter_map(|b| get(&self.shape, self.entries, self.op, b).flatten())
                .min_by(f64::total_cmp),
            Base::BestBackend => return None,
            Base::OtherOp(op) => get(&self.shape, self.entries, op, backend)?,
            Base::In4KiB => get("4KiB-entries", self.entries, self.op, backend)?,
        };
        Some(mine.and(ratio(mine, base)))
    }
}

/// The issue's targets at the headline sizes run (or, when none was, at
/// the sizes run).
fn targets(sizes: &[usize]) -> (Vec<Target>, bool) {
    let headline: Vec<usize> =
        sizes.iter().copied().filter(|n| HEADLINE_SIZES.contains(&n.trailing_zeros())).collect();
    let at_headline = !headline.is_empty();
    let judged = if at_headline { headline } else { sizes.to_vec() };
    let mut ts = Vec::new();
    let mut t = |what, shape: String, entries, op, base, limit| {
        ts.push(Target { what, shape, entries, op, base, limit })
    };
    for &n in &judged {
        for shape in FULL_SHAPES {
            let s = shape.label(n);
            t("random hits, single get", s.clone(), n, Op::GetRandom, Base::Other(FX), 0.7);
            t("random hits, single get", s.clone(), n, Op::GetRandom, Base::Other(PLAIN), 1.1);
            t("random hits, single get", s.clone(), n, Op::GetRandom, Base::BestBackend, 1.15);
            t("batched lookups, per key", s.clone(), n, Op::GetBatch, Base::Other(FX), 0.45);
            t("batched lookups, per key", s, n, Op::GetBatch, Base::Other(FLAT_U64), 1.5);
        }
        for shape in FULL_SHAPES {
            let s = shape.label(n);
            t("ascending hits", s.clone(), n, Op::GetAscending, Base::Other(FX), 0.1);
            t("ascending inserts", s.clone(), n, Op::InsertAscending, Base::Other(FX), 0.1);
            t("for loop over &table", s.clone(), n, Op::IterFor, Base::Other(FX), 0.5);
            t("into_iter", s.clone(), n, Op::IntoIter, Base::Other(FX), 1.0);
            t("reverse iteration vs forward", s, n, Op::IterRev, Base::OtherOp(Op::IterFor), 1.2);
        }
        t("memory", Shape::Dense.label(n), n, Op::Memory, Base::Other(FX), 0.25);
        t("memory", Shape::Clustered48.label(n), n, Op::Memory, Base::Other(FX), 0.5);
    }
    for (what, shape) in
        [("lookup inside a 2 MiB entry", "2MiB-entries"), ("lookup inside a 1 GiB entry", "1GiB-entries")]
    {
        t(what, shape.into(), IN_ENTRY, Op::GetRandom, Base::In4KiB, 1.0);
    }
    (ts, at_headline)
}

fn print_targets(figs: &[Figure], sizes: &[usize], backends: &[&'static str]) {
    let (ts, at_headline) = targets(sizes);
    println!("\n== targets (mem-table figure / baseline, measured in this run; met when <= limit) ==");
    if !at_headline {
        println!("(neither 2^22 nor 2^24 entries run: judged at the sizes run instead)");
    }
    print_target_rows(figs, &ts, backends, &[]);
}

/// The rows of a target table, one column per backend; a target on a shape
/// in `skipped` (label, entries) reads "skipped" where it has no figure.
fn print_target_rows(figs: &[Figure], ts: &[Target], backends: &[&'static str], skipped: &[(String, usize)]) {
    let mut head =
        format!("{:<30} {:<18} {:>5}  {:<20} {:>5}", "target", "shape", "size", "baseline", "limit");
    for b in backends {
        let _ = write!(head, "  {:>14}", b.trim_start_matches("mem-table/"));
    }
    println!("{head}");
    for t in ts {
        let skip = skipped.iter().any(|(shape, n)| *shape == t.shape && *n == t.entries);
        let mut line = format!(
            "{:<30} {:<18} {:>5}  {:<20} {:>5}",
            t.what,
            t.shape,
            size_label(t.entries),
            t.baseline(),
            t.limit
        );
        for b in backends {
            let (r, verdict) = match t.ratio(figs, b, backends) {
                None if skip => ("skipped".into(), ""),
                None => (String::new(), ""),
                Some(None) => ("n/a".into(), ""),
                Some(Some(r)) => (format!("{r:.2}x"), if r <= t.limit { "met" } else { "MISSED" }),
            };
            let _ = write!(line, "  {r:>7} {verdict:<6}");
        }
        println!("{}", line.trim_end());
    }
}

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

/// Every figure as one JSON object; `vs_flat` is over `Vec<Option<u64>>`
/// (as before the `Vec<u64>` array was added), `vs_flat_u64` over
/// `Vec<u64>`; `available` is false where the implementation lacks the
/// operation.
fn print_json(figs: &[Figure]) {
    println!("[");
    for (i, f) in figs.iter().enumerate() {
        let vs = |base| {
            let b = find(figs, &f.shape, f.entries, f.op, base).flatten();
            if f.is_mem_table && f.op != Op::MemoryLeft { ratio(f.value, b) } else { None }
        };
        let (ns, bytes) = if f.op.is_bytes() { (None, f.value) } else { (f.value, None) };
        println!(
            "  {{\"shape\": {}, \"entries\": {}, \"operation\": {}, \"implementation\": {}, \
             \"available\": {}, \"ns_per_op\": {}, \"bytes_per_entry\": {}, \"vs_fx\": {}, \"vs_flat\": {}, \
             \"vs_flat_u64\": {}, \"vs_plain_radix\": {}}}{}",
            json_string(&f.shape),
            f.entries,
            json_string(f.op.name()),
            json_string(f.implementation),
            f.value.is_some(),
            json_number(ns),
            json_number(bytes),
            json_number(vs(FX)),
            json_number(vs(FLAT)),
            json_number(vs(FLAT_U64)),
            json_number(vs(PLAIN)),
            if i + 1 < figs.len() { "," } else { "" }
        );
    }
    println!("]");
}

fn main() {
    let s = match Settings::from_args() {
        Ok(s) => s,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("compare: {e}");
            }
            eprintln!("{USAGE}");
            std::process::exit(if e.is_empty() { 0 } else { 2 });
        }
    };
    let started = Instant::now();
    let cs = report_contenders();
    let names: Vec<&'static str> = cs.iter().map(|c| c.name).collect();
    let backends: Vec<&'static str> = cs.iter().filter(|c| c.is_mem_table).map(|c| c.name).collect();
    let smallest = s.sizes[0];
    let mut figs = Vec::new();
    if s.sections == Sections::SparseOnly {
        run_sparse(&s, &mut figs);
        if s.json {
            print_json(&figs);
        }
        eprintln!("compare: {:.0} s in all", started.elapsed().as_secs_f64());
        return;
    }
    for &n in &s.sizes {
        for shape in FULL_SHAPES.into_iter().chain(MEMORY_SHAPES) {
            let t0 = Instant::now();
            let w = Workload::new(shape, n);
            if FULL_SHAPES.contains(&shape) {
                measure_full(&cs, &w, &s, n == smallest, &mut figs);
            } else {
                measure_memory(&cs, &w, n == smallest, &mut figs);
            }
            eprintln!("compare: {} measured in {:.0} s", w.name, t0.elapsed().as_secs_f64());
            if !s.json {
                print_shape(&figs, &label(&w), n, &names);
            }
        }
    }
    let t0 = Instant::now();
    measure_in_entry(&cs, &s, &mut figs);
    eprintln!("compare: lookups inside entries measured in {:.0} s", t0.elapsed().as_secs_f64());
    if !s.json {
        for shape in ["4KiB-entries", "2MiB-entries", "1GiB-entries"] {
            print_shape(&figs, shape, IN_ENTRY, &names);
        }
        print_targets(&figs, &s.sizes, &backends);
    }
    if s.sections == Sections::All {
        run_sparse(&s, &mut figs);
    }
    if s.json {
        print_json(&figs);
        return;
    }
    if s.sizes.iter().any(|&n| Shape::Clustered64G.label(n) != Shape::Clustered64G.name()) {
        println!(
            "\nclustered-64GiB spreads over a larger window where its entries would fill more than a \
             quarter of 64 GiB (2^24 entries are 64 GiB): clustered-256GiB at 2^24."
        );
    }
    println!(
        "\n{}; each contender warmed by one untimed pass, then whole passes (as many lookups as keys; \
         batches of {BATCH}; chain of {} steps); median over rounds, contenders taking turns: up to {} \
         rounds ({} for builds and into_iter), as many as fit in {} s per contender and loop, at least \
         one; `left` at {} only{}; {:.0} s in all",
        Stopwatch::clock(),
        size_label(CHAIN_STEPS),
        s.runs,
        s.build_runs,
        s.budget,
        size_label(smallest),
        if s.quick { "; --quick" } else { "" },
        started.elapsed().as_secs_f64()
    );
}
