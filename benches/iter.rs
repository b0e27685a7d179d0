//! Ordered iteration, every contender side by side: the whole table by
//! internal iteration (`iter_full`, `for_each`), by a plain `for` loop
//! (`iter_for`), backwards (`iter_rev`, where the implementation can), by
//! consuming a clone with `into_iter` (the clone not timed), and a range
//! over a 2 MiB and a 1 GiB window around the median entry. Hash maps
//! iterate in their own order, and answer a range with one lookup per page
//! of the window (there is nothing better they can do).
//!
//! `cargo bench --bench iter -- --quick [filter]`

#[path = "common/mod.rs"]
mod common;

use std::ops::Range;

use common::contenders::{Run, contenders};
use common::workload::{Shape, Workload};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn iteration(c: &mut Criterion) {
    for (k, &n) in common::sizes().iter().enumerate() {
        for shape in Shape::BASE {
            if shape.len_for(n) != n && k > 0 {
                continue;
            }
            let w = Workload::new(shape, n);
            let tables: Vec<Box<dyn Run>> =
                contenders().iter().filter(|c| (c.supports)(&w)).map(|c| c.build(&w)).collect();
            common::bench_tables(c, "iter_full", &w, &tables, w.len(), |t| t.iter_sum());
            common::bench_some(c, "iter_for", &w, &tables, w.len(), |t| t.for_sum());
            common::bench_some(c, "iter_rev", &w, &tables, w.len(), |t| t.rev_sum());
            into_iter(c, &w, &tables);
            for (op, bits) in [("range_2MiB", 21), ("range_1GiB", 30)] {
                let window = window(&w, bits);
                let inside = w.ascending.iter().filter(|e| window.contains(&e.addr)).count();
                common::bench_tables(c, op, &w, &tables, inside.max(1), |t| t.range_sum(window.clone()));
            }
        }
    }
}

/// Consuming a clone of each table that has `into_iter`.
fn into_iter(c: &mut Criterion, w: &Workload, tables: &[Box<dyn Run>]) {
    let expected = tables[0].iter_sum();
    let mut g = c.benchmark_group("into_iter");
    g.throughput(Throughput::Elements(w.len() as u64));
    for t in tables {
        match t.boxed_clone().into_sum() {
            None => continue,
            Some(sum) => assert_eq!(sum, expected, "into_iter on {}: {} disagrees", w.name, t.name()),
        }
        g.bench_function(BenchmarkId::new(t.name(), &w.name), |b| {
            b.iter_batched(|| t.boxed_clone(), |t| t.into_sum(), BatchSize::PerIteration)
        });
    }
    g.finish();
}

/// The aligned window of `2^bits` bytes around the median entry.
fn window(w: &Workload, bits: u32) -> Range<u64> {
    let lo = w.ascending[w.len() / 2].addr >> bits << bits;
    lo..lo + (1 << bits)
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = iteration
}
criterion_main!(benches);
