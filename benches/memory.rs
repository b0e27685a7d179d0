//! Memory, every contender side by side, under a counting global allocator
//! (not a criterion benchmark: it prints one table per size). For each
//! workload: bytes per entry live after building in random order, the peak
//! per entry during the build, and the bytes still held after removing
//! every entry.
//!
//! `cargo bench --bench memory`

#[path = "common/mod.rs"]
mod common;

use common::alloc::{Counting, live, measure};
use common::contenders::contenders;
use common::workload::{Shape, Workload};

#[global_allocator]
static ALLOC: Counting = Counting;

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    for (k, &n) in common::sizes().iter().enumerate() {
        for shape in Shape::BASE.into_iter().chain([Shape::LargeMix]) {
            if shape.len_for(n) != n && k > 0 {
                continue;
            }
            let w = Workload::new(shape, n);
            println!("\n{} ({} entries)", w.name, w.len());
            println!(
                "{:<26} {:>12} {:>12} {:>16}",
                "implementation", "B/entry", "peak B/entry", "B left, emptied"
            );
            for c in contenders().iter().filter(|c| (c.supports)(&w)) {
                let (mut t, fp) = measure(|| c.build(&w));
                let before_remove = live();
                t.remove_all(&w.lookups);
                let left = fp.live as isize - (before_remove - live()) as isize;
                println!(
                    "{:<26} {:>12.1} {:>12.1} {:>16}",
                    c.name,
                    fp.live as f64 / w.len() as f64,
                    fp.peak as f64 / w.len() as f64,
                    left
                );
                drop(t);
            }
        }
    }
}
