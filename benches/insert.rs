//! Building and tearing down, every contender side by side: inserts in
//! random and in ascending order into an empty table (its creation not
//! timed, nor the drop of the result), and removing every entry in random
//! order.
//!
//! `cargo bench --bench insert -- --quick [filter]`

#[path = "common/mod.rs"]
mod common;

use common::contenders::{Run, contenders};
use common::workload::{Shape, Workload};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn inserts(c: &mut Criterion) {
    for (k, &n) in common::sizes().iter().enumerate() {
        for shape in Shape::BASE.into_iter().chain([Shape::LargeMix]) {
            if shape.len_for(n) != n && k > 0 {
                continue;
            }
            let w = Workload::new(shape, n);
            let contenders: Vec<_> = contenders().into_iter().filter(|c| (c.supports)(&w)).collect();
            for (op, order) in [("insert_random", &w.random), ("insert_ascending", &w.ascending)] {
                let mut g = c.benchmark_group(op);
                g.throughput(Throughput::Elements(w.len() as u64));
                for ct in &contenders {
                    g.bench_function(BenchmarkId::new(ct.name, &w.name), |b| {
                        b.iter_batched(
                            || ct.empty(&w),
                            |mut t| {
                                t.insert_all(order);
                                t
                            },
                            BatchSize::PerIteration,
                        )
                    });
                }
                g.finish();
            }

            let mut g = c.benchmark_group("remove");
            g.throughput(Throughput::Elements(w.len() as u64));
            for ct in &contenders {
                let built: Box<dyn Run> = ct.build(&w);
                g.bench_function(BenchmarkId::new(ct.name, &w.name), |b| {
                    b.iter_batched(
                        || built.boxed_clone(),
                        |mut t| {
                            t.remove_all(&w.lookups);
                            t
                        },
                        BatchSize::PerIteration,
                    )
                });
            }
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = inserts
}
criterion_main!(benches);
