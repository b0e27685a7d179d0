//! Ordered iteration, every contender side by side: the whole table, and a
//! range over a 2 MiB and a 1 GiB window around the median entry. Hash maps
//! iterate in their own order, and answer a range with one lookup per page
//! of the window (there is nothing better they can do).
//!
//! `cargo bench --bench iter -- --quick [filter]`

#[path = "common/mod.rs"]
mod common;

use std::ops::Range;

use common::contenders::{Run, contenders};
use common::workload::{Shape, Workload};
use criterion::{Criterion, criterion_group, criterion_main};

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
            for (op, bits) in [("range_2MiB", 21), ("range_1GiB", 30)] {
                let window = window(&w, bits);
                let inside = w.ascending.iter().filter(|e| window.contains(&e.addr)).count();
                common::bench_tables(c, op, &w, &tables, inside.max(1), |t| t.range_sum(window.clone()));
            }
        }
    }
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
