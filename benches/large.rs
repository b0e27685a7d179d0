//! Large pages, every contender that can hold them side by side (hash maps
//! and the B-tree key entries by page and level, and probe level by level):
//! a lookup inside a 4 KiB, a 2 MiB and a 1 GiB entry; lookups, the chain,
//! inserts and iteration on the large-page mix; split and merge.
//!
//! `cargo bench --bench large -- --quick [filter]`

#[path = "common/mod.rs"]
mod common;

use common::contenders::{Contender, Run, contenders};
use common::rng::Rng;
use common::workload::{Shape, Workload, page_size};
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// Entries in the lookup-inside-an-entry tables.
const IN_ENTRY: usize = 1 << 16;

fn built(w: &Workload) -> Vec<Box<dyn Run>> {
    contenders().iter().filter(|c| (c.supports)(w)).map(|c| c.build(w)).collect()
}

/// A lookup inside an entry of each size: the same number of entries, the
/// same random order.
fn in_entry(c: &mut Criterion) {
    for level in 0..=2 {
        let w = Workload::uniform_level(level, IN_ENTRY);
        let tables = built(&w);
        common::bench_tables(c, "get_in_entry", &w, &tables, w.len(), |t| t.get_all(&w.lookups));
    }
}

/// The large-page mix at each size.
fn mix(c: &mut Criterion) {
    for &n in &common::sizes() {
        let w = Workload::new(Shape::LargeMix, n);
        let tables = built(&w);
        common::bench_tables(c, "get_random", &w, &tables, w.len(), |t| t.get_all(&w.lookups));
        common::bench_tables(c, "get_chain", &w, &tables, w.len(), |t| t.chain(w.chain_start, w.len()));
        common::bench_tables(c, "iter_full", &w, &tables, w.len(), |t| t.iter_sum());
    }
}

/// `k` entries of `level` side by side, and the same region as the `k`
/// full tables of equal entries one level down that merge into them.
fn split_merge_pair(level: u8, k: usize) -> (Workload, Workload) {
    let size = page_size(level);
    let sub = page_size(level - 1);
    let large: Vec<(u64, u8)> = (0..k as u64).map(|i| (i * size, level)).collect();
    let small: Vec<(u64, u8)> =
        large.iter().flat_map(|&(a, _)| (0..512).map(move |j| (a + j * sub, level - 1))).collect();
    let label = ["4KiB", "2MiB", "1GiB"][level as usize];
    let mut rng = Rng::new(0x5b1 ^ level as u64);
    let mut whole = Workload::from_pages(None, format!("{k}x{label}"), large, &mut rng);
    let mut parts = Workload::from_pages(None, format!("{k}x{label}"), small, &mut rng);
    // Every sub-entry of a large entry holds its value, so that they merge.
    for e in parts.random.iter_mut().chain(parts.ascending.iter_mut()) {
        e.value = e.addr & !(size - 1);
    }
    whole.hint = parts.hint; // a pool sized for the split state
    (whole, parts)
}

fn split_merge(c: &mut Criterion) {
    for (level, k) in [(1, 64), (2, 4)] {
        let (whole, parts) = split_merge_pair(level, k);
        let addrs: Vec<u64> = whole.ascending.iter().map(|e| e.addr).collect();
        let cs: Vec<Contender> = contenders().into_iter().filter(|c| (c.supports)(&whole)).collect();
        for (op, from) in [("split", &whole), ("merge", &parts)] {
            let mut g = c.benchmark_group(op);
            g.throughput(Throughput::Elements(k as u64));
            for ct in &cs {
                let start = ct.build(from);
                g.bench_function(BenchmarkId::new(ct.name, &whole.name), |b| {
                    b.iter_batched(
                        || start.boxed_clone(),
                        |mut t| {
                            if op == "split" {
                                t.split_all(&addrs, level);
                            } else {
                                t.merge_all(&addrs, level);
                            }
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
    targets = in_entry, mix, split_merge
}
criterion_main!(benches);
