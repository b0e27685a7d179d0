//! The compare report's sparse section (issue 11): random pages at a
//! density in a window, and uniform over 48 bits, against the maps a user
//! would take instead; each shape's tables estimated before it is built,
//! and skipped over the limit. Part of `examples/compare.rs`.

use super::*;

/// The sparse section's contenders: every backend, then the maps a user
/// would reach for instead.
fn sparse_contenders() -> Vec<Contender> {
    vec![
        Contender::of::<Table<Heap>>(),
        Contender::of::<Table<Arena>>(),
        Contender::of::<Table<Pool>>(),
        Contender::of::<Hashed<FxHashMap>>(),
        Contender::of::<Hashed<BrownHashMap>>(),
        Contender::of::<Ordered>(),
    ]
}

/// The bytes of `mem-table`'s tables, as measured on one-entry builds with
/// the `Heap` backend (every backend's tables are the same size; the arena
/// and pool add their chunks' slack): the first path from the root to a
/// bottom table, and one more table at each level below the root.
#[derive(Clone, Copy, Debug)]
struct TableCost {
    first_path: f64,
    /// Bottom tables, then the levels above.
    per_table: [f64; 3],
}

impl TableCost {
    fn calibrate() -> TableCost {
        let heap = Contender::of::<Table<Heap>>();
        let bytes = |addrs: &[u64]| {
            let pages = addrs.iter().map(|&a| (a, 0)).collect();
            let w = Workload::from_pages(None, "calibration".into(), pages, &mut Rng::new(1));
            let (t, fp) = measure(|| heap.build(&w));
            drop(t);
            fp.live as f64
        };
        let first_path = bytes(&[0]);
        let to_2m = bytes(&[0, 1 << 21]) - first_path;
        let to_1g = bytes(&[0, 1 << 30]) - first_path;
        let to_512g = bytes(&[0, 1 << 39]) - first_path;
        TableCost { first_path, per_table: [to_2m, to_1g - to_2m, to_512g - to_1g] }
    }

    /// The bytes of tables `w` needs: its distinct regions per level (the
    /// hint's table counts) times a table's bytes.
    fn estimate(&self, w: &Workload) -> f64 {
        let n = w.hint.nodes;
        self.first_path + (0..3).map(|l| (n[l].max(1) - 1) as f64 * self.per_table[l]).sum::<f64>()
    }
}

/// The bytes the system could still give this process (`MemAvailable`),
/// where it says.
fn mem_available() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// How much more than the estimate a backend may take (the arena's
/// chunks), and how much of the available memory the section may fill,
/// when judging whether the tables fit.
const SLACK: f64 = 1.5;
const AVAILABLE_SHARE: f64 = 0.5;

/// Why a sparse shape was not built: the estimate of its tables and the
/// limit it broke.
fn sparse_skip(est: f64, backends: usize, limit: f64) -> Option<String> {
    if est > limit {
        return Some(format!(
            "skipped for every backend: would need about {:.1} GiB of tables per backend (limit {:.1} GiB, --sparse-limit)",
            est / GIB,
            limit / GIB
        ));
    }
    match mem_available() {
        Some(avail) if est * SLACK * backends as f64 > avail * AVAILABLE_SHARE => Some(format!(
            "skipped for every backend: {backends} backends would need about {:.1} GiB of tables, more than \
             half the {:.1} GiB available",
            est * SLACK * backends as f64 / GIB,
            avail / GIB
        )),
        _ => None,
    }
}

/// One sparse shape: bytes, one random build, random hits, batched
/// lookups and iteration, for every contender; `mem-table`'s backends left
/// out (all of them, with `skip` saying why) when their tables would not
/// fit.
fn measure_sparse(cs: &[Contender], w: &Workload, s: &Settings, skip: bool, figs: &mut Vec<Figure>) {
    let cs: Vec<&Contender> = cs.iter().filter(|c| !(skip && c.is_mem_table)).collect();
    let n = w.len();
    let mut sink = Sink { figs, shape: label(w), entries: n };
    let (sum_values, sum_entries) = checksums(w);
    let built = build_all(&cs, w);
    for (c, (_, ns, _, fp)) in cs.iter().zip(&built) {
        sink.put(c, Op::InsertRandom, Some(*ns));
        sink.put(c, Op::Memory, Some(fp.live as f64 / n as f64));
        sink.put(c, Op::MemoryPeak, Some(fp.peak as f64 / n as f64));
    }
    let tables: Vec<Box<dyn Run>> = built.into_iter().map(|b| b.0).collect();

    let lookups = take_turns(cs.len(), s.runs, s.budget, None, |i| {
        let t = &tables[i];
        check("warm-up pass", w, cs[i], t.get_all(&w.lookups), sum_values);
        [timed(n, || t.get_all(&w.lookups)), timed(n, || t.get_batched(&w.lookups))]
    });
    for (c, rounds) in cs.iter().zip(lookups) {
        for (k, op) in [Op::GetRandom, Op::GetBatch].into_iter().enumerate() {
            rounds.iter().for_each(|r| check(op.name(), w, c, r[k].1, sum_values));
            sink.put(c, op, Some(median(rounds.iter().map(|r| r[k].0).collect())));
        }
    }

    let iteration = take_turns(cs.len(), s.runs, s.budget, None, |i| {
        let t = &tables[i];
        check("warm-up iteration", w, cs[i], t.iter_sum(), sum_entries);
        [timed_opt(n, || t.for_sum()), Some(timed(n, || t.iter_sum()))]
    });
    for (c, rounds) in cs.iter().zip(iteration) {
        for (k, op) in [Op::IterFor, Op::IterEach].into_iter().enumerate() {
            let got: Vec<(f64, u64)> = rounds.iter().filter_map(|r| r[k]).collect();
            got.iter().for_each(|&(_, sum)| check(op.name(), w, c, sum, sum_entries));
            sink.put(c, op, (!got.is_empty()).then(|| median(got.iter().map(|g| g.0).collect())));
        }
    }
}

/// The columns of a sparse shape's table.
const SPARSE_OPS: [Op; 7] =
    [Op::Memory, Op::MemoryPeak, Op::GetRandom, Op::GetBatch, Op::IterFor, Op::IterEach, Op::InsertRandom];

/// One sparse shape: every contender's figures, each with its ratio to
/// `FxHashMap` beneath, and the estimate of the tables (or why the
/// backends were skipped).
fn print_sparse(figs: &[Figure], sp: &Sparse, names: &[&'static str], est: f64, skipped: Option<&str>) {
    let (shape, entries) = (sp.label(), sp.entries);
    println!(
        "\n== sparse: {shape}, {} entries ({} % of the window; ns per operation, bytes per entry) ==",
        size_label(entries),
        sp.density_label()
    );
    let (mut h1, mut h2) = (format!("{:<24}", ""), format!("{:<24}", "implementation"));
    for op in SPARSE_OPS {
        let (a, b) = match op {
            Op::InsertRandom => ("insert", "1 build"),
            op => op.header(),
        };
        let _ = write!(h1, "{a:>9}");
        let _ = write!(h2, "{b:>9}");
    }
    println!("{h1}\n{h2}");
    let value = |op, name: &str| find(figs, &shape, entries, op, name);
    for &name in names {
        if !SPARSE_OPS.iter().any(|&op| value(op, name).is_some()) {
            continue;
        }
        let mut line = format!("{name:<24}");
        for op in SPARSE_OPS {
            let _ = write!(line, "{:>9}", cell(value(op, name)));
        }
        println!("{line}");
        if name != FX {
            let mut line = format!("{:<24}", "  vs Fx");
            for op in SPARSE_OPS {
                let _ = write!(
                    line,
                    "{:>9}",
                    ratio_cell(ratio(value(op, name).flatten(), value(op, FX).flatten()))
                );
            }
            println!("{line}");
        }
    }
    let heap = value(Op::Memory, HEAP).flatten().map(|b| b * entries as f64);
    match (skipped, heap) {
        (Some(why), _) => println!("mem-table: {why}"),
        (None, Some(heap)) => println!(
            "mem-table tables estimated before the build at {:.0} MiB, measured {:.0} MiB (heap)",
            est / (1 << 20) as f64,
            heap / (1 << 20) as f64
        ),
        (None, None) => {}
    }
}

/// One line per sparse shape: random hits (ns) / bytes per entry of every
/// contender, the table.
fn print_sparse_summary(
    figs: &[Figure],
    shapes: &[Sparse],
    names: &[&'static str],
    skipped: &[Option<String>],
) {
    println!("\n== sparse shapes: random hits ns / bytes per entry (u64 values) ==");
    let mut head = format!("{:<30}", "shape");
    for name in names {
        let _ = write!(head, " {:>20}", name.trim_start_matches("mem-table/"));
    }
    println!("{head}");
    for (sp, skip) in shapes.iter().zip(skipped) {
        let shape = sp.label();
        let mut line = format!("{:<30}", format!("{}, {}", shape, size_label(sp.entries)));
        for name in names {
            let get = find(figs, &shape, sp.entries, Op::GetRandom, name).flatten();
            let bytes = find(figs, &shape, sp.entries, Op::Memory, name).flatten();
            let c = match (get, bytes) {
                (Some(g), Some(b)) => format!("{} / {}", cell(Some(Some(g))), cell(Some(Some(b)))),
                _ if skip.is_some() && names.iter().take(3).any(|n| n == name) => "skipped".into(),
                _ => "-".into(),
            };
            let _ = write!(line, " {c:>20}");
        }
        println!("{line}");
    }
}

/// The sparse section: every shape (the 2^16 ones with `--quick`), each
/// estimated, then measured or skipped; the summary and the targets.
pub(super) fn run_sparse(s: &Settings, figs: &mut Vec<Figure>) {
    let cs = sparse_contenders();
    let names: Vec<&'static str> = cs.iter().map(|c| c.name).collect();
    let backends: Vec<&'static str> = cs.iter().filter(|c| c.is_mem_table).map(|c| c.name).collect();
    let shapes: Vec<Sparse> = Sparse::ALL.into_iter().filter(|sp| !s.quick || sparse_in_quick(sp)).collect();
    let cost = TableCost::calibrate();
    let mut skipped = Vec::new();
    for sp in &shapes {
        let t0 = Instant::now();
        let w = sp.workload();
        let est = cost.estimate(&w);
        let skip = sparse_skip(est, backends.len(), s.sparse_limit);
        measure_sparse(&cs, &w, s, skip.is_some(), figs);
        eprintln!("compare: sparse {} measured in {:.0} s", w.name, t0.elapsed().as_secs_f64());
        if let Some(why) = &skip {
            eprintln!("compare: sparse {}: mem-table {why}", w.name);
        }
        if !s.json {
            print_sparse(figs, sp, &names, est, skip.as_deref());
        }
        skipped.push(skip);
    }
    if s.json {
        return;
    }
    print_sparse_summary(figs, &shapes, &names, &skipped);
    println!(
        "
== issue 11 targets on the sparse shapes (mem-table figure / FxHashMap's, this run; met when <= limit) =="
    );
    let skipped_shapes: Vec<(String, usize)> = shapes
        .iter()
        .zip(&skipped)
        .filter(|(_, skip)| skip.is_some())
        .map(|(sp, _)| (sp.label(), sp.entries))
        .collect();
    print_target_rows(figs, &sparse_targets(&shapes), &backends, &skipped_shapes);
    println!(
        "
sparse: {}; bytes from the counting allocator (FxHashMap's are any HashMap<u64, u64>'s); one \
         untimed pass, then whole passes of as many lookups as keys (batches of {BATCH}), median over up \
         to {} rounds, contenders taking turns; inserts from the one build measured; mem-table's tables \
         estimated before each build ({:.0} bytes for the first path, then {:.0}, {:.0} and {:.0} per table \
         at 2 MiB, 1 GiB and 512 GiB), limit {:.1} GiB per backend{}",
        Stopwatch::clock(),
        s.runs,
        cost.first_path,
        cost.per_table[0],
        cost.per_table[1],
        cost.per_table[2],
        s.sparse_limit / GIB,
        if s.quick { "; --quick: the 2^16 shapes in a window only" } else { "" }
    );
}

/// Issue 11's targets on the sparse shapes, over `FxHashMap` (whose bytes
/// are `HashMap<u64, u64>`'s with any hasher).
fn sparse_targets(shapes: &[Sparse]) -> Vec<Target> {
    let mut ts = Vec::new();
    for sp in shapes {
        let (shape, n) = (sp.label(), sp.entries);
        let d = sp.density_percent();
        let uniform = sp.window_pages.is_none();
        let mut t = |what, op, limit| {
            ts.push(Target { what, shape: shape.clone(), entries: n, op, base: Base::Other(FX), limit })
        };
        if n == 1 << 20 && (d >= 12.0 || (0.9..1.1).contains(&d)) {
            t("memory", Op::Memory, 1.0);
        }
        if uniform {
            t("memory", Op::Memory, 2.0);
        }
        if n == 1 << 20 && d >= 12.0 {
            t("random hits, single get", Op::GetRandom, 1.0);
        }
        if uniform || (n == 1 << 20 && (0.9..1.1).contains(&d)) {
            t("random hits, single get", Op::GetRandom, 1.5);
        }
        t("batched lookups, per key", Op::GetBatch, 1.0);
        t("for loop over &table", Op::IterFor, 1.0);
    }
    ts
}
