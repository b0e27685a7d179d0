//! Lookups, every contender side by side: hits in random and in ascending
//! order, random hits in batches (`get_many` for `mem-table`, a loop of
//! `get` for the others), the dependent chain (each value is the next
//! address: latency), and misses far from and near populated pages.
//!
//! `cargo bench --bench lookup -- --quick [filter]`, e.g. the filter
//! `get_random/.*dense`.

#[path = "common/mod.rs"]
mod common;

use common::contenders::{Run, contenders};
use common::workload::{Shape, Workload};
use criterion::{Criterion, criterion_group, criterion_main};

/// Misses looked up per iteration.
const MISSES: usize = 1 << 16;

fn lookups(c: &mut Criterion) {
    for (k, &n) in common::sizes().iter().enumerate() {
        for shape in Shape::BASE {
            if shape.len_for(n) != n && k > 0 {
                continue; // a fixed-size shape runs once
            }
            let w = Workload::new(shape, n);
            let tables: Vec<Box<dyn Run>> =
                contenders().iter().filter(|c| (c.supports)(&w)).map(|c| c.build(&w)).collect();
            let ascending: Vec<u64> = w.ascending.iter().map(|e| e.addr).collect();
            let far = w.misses_far(MISSES);
            let near = w.misses_near(MISSES);

            common::bench_tables(c, "get_random", &w, &tables, w.len(), |t| t.get_all(&w.lookups));
            common::bench_tables(c, "get_batch", &w, &tables, w.len(), |t| t.get_batched(&w.lookups));
            common::bench_tables(c, "get_ascending", &w, &tables, w.len(), |t| t.get_all(&ascending));
            common::bench_tables(c, "get_chain", &w, &tables, w.len(), |t| t.chain(w.chain_start, w.len()));
            common::bench_tables(c, "miss_far", &w, &tables, MISSES, |t| t.get_all(&far));
            common::bench_tables(c, "miss_near", &w, &tables, MISSES, |t| t.get_all(&near));
        }
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = lookups
}
criterion_main!(benches);
