//! Exactly K random hit lookups on a dense table, for counting
//! instructions: `benches/instructions.sh` runs this under cachegrind with
//! K and 2K lookups, and the difference divided by K is the instructions
//! per lookup (building the table and the keys costs the same in both runs).
//!
//! ```text
//! cargo run --release --example hit_loop -- <contender> [log2 entries] [K]
//! ```
//!
//! Contenders: `crate-heap`, `crate-arena`, `crate-pool` (`mem-table` on
//! each backend), `crate-heap-nz` (`NonZeroU64` values on the heap: a
//! niche, so the bottom table's presence is read from the value's line),
//! `plain-radix` (the plain 4 x 512 radix table),
//! `fx` (`std` `HashMap` with the Fx hasher), `hashbrown`, `flat` (a flat
//! `Vec<u64>`). The table holds 2^(log2 entries) `u64` entries side by side
//! from address 0 (default 2^22); the lookups go over a shuffled array of
//! every key, round after round, until K are done (default 2^22), summing
//! what they find.

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::contenders::{BrownHashMap, FlatU64, FxHashMap, Hashed, Impl, Table};
use common::plain_radix::PlainRadix;
use common::rng::Rng;
use common::workload::{Entry, Hint, PAGE};
use mem_table::backend::{Arena, Heap, Pool};

const USAGE: &str = "usage: hit_loop <crate-heap|crate-arena|crate-pool|crate-heap-nz|plain-radix|fx|hashbrown|flat> \
                     [log2 entries, default 22] [K lookups, default 2^22]";

/// Builds the table of `entries` and makes `k` lookups over `keys`.
fn run<I: Impl>(entries: &[Entry], keys: &[u64], k: usize) -> u64 {
    let mut t = I::new(&Hint::of(entries));
    for e in entries {
        t.insert_at(e.addr, e.level, e.value);
    }
    let keys = black_box(keys);
    let mut sum = 0u64;
    let mut left = k;
    while left > 0 {
        let m = left.min(keys.len());
        for &a in &keys[..m] {
            sum = sum.wrapping_add(t.get(a).unwrap_or(0));
        }
        left -= m;
    }
    black_box(sum)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |a| {
            a.parse().unwrap_or_else(|_| {
                eprintln!("hit_loop: {a:?} is not a number\n{USAGE}");
                std::process::exit(2)
            })
        })
    };
    let Some(contender) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2)
    };
    let log2 = number(1, 22);
    let k = number(2, 1 << 22) as usize;
    if !(1..=26).contains(&log2) {
        eprintln!("hit_loop: log2 entries from 1 to 26\n{USAGE}");
        std::process::exit(2);
    }
    let n = 1usize << log2;

    // Dense pages from 0, each holding its page number plus one (never 0,
    // never the flat array's absent marker).
    let entries: Vec<Entry> =
        (0..n as u64).map(|i| Entry { addr: i * PAGE, level: 0, value: i + 1 }).collect();
    let mut keys: Vec<u64> = entries.iter().map(|e| e.addr).collect();
    Rng::new(0x4117).shuffle(&mut keys);

    let sum = match contender.as_str() {
        "crate-heap" => run::<Table<Heap>>(&entries, &keys, k),
        "crate-arena" => run::<Table<Arena>>(&entries, &keys, k),
        "crate-pool" => run::<Table<Pool>>(&entries, &keys, k),
        "crate-heap-nz" => run::<Table<Heap, std::num::NonZeroU64>>(&entries, &keys, k),
        "plain-radix" => run::<PlainRadix>(&entries, &keys, k),
        "fx" => run::<Hashed<FxHashMap>>(&entries, &keys, k),
        "hashbrown" => run::<Hashed<BrownHashMap>>(&entries, &keys, k),
        "flat" => run::<FlatU64>(&entries, &keys, k),
        other => {
            eprintln!("hit_loop: unknown contender {other:?}\n{USAGE}");
            std::process::exit(2)
        }
    };
    // Every lookup hits: the sum is known. Checked in as many instructions
    // whatever K is (a pass over every key, no branch on K), so that the
    // check cancels out of Ir(2K) - Ir(K).
    let per_round = (n as u64) * (n as u64 + 1) / 2;
    let (rounds, rest) = ((k / n) as u64, k % n);
    let first_rest = keys
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, a)| acc.wrapping_add((a / PAGE + 1) * (i < rest) as u64));
    let want = per_round.wrapping_mul(rounds).wrapping_add(first_rest);
    assert_eq!(sum, want, "{contender}: the lookups found the wrong values");
    println!("{contender}: {n} entries, {k} lookups, sum {sum}");
}
