//! Forward `for` over `&table` against `iter().rev()`, and a range both
//! ways: ns per entry, best of a few rounds.
//! `cargo run --release --example rev_timing -- [log2 entries] [stride pages] [rounds] [fwd|rev|none]`

use std::hint::black_box;
use std::time::Instant;

use mem_table::MemTable;

fn best(rounds: usize, mut f: impl FnMut() -> u64) -> f64 {
    let mut b = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(f());
        b = b.min(t.elapsed().as_secs_f64());
    }
    b
}

fn main() {
    let mut args = std::env::args().skip(1);
    let log2: u32 = args.next().map_or(22, |s| s.parse().unwrap());
    let stride: u64 = args.next().map_or(1, |s| s.parse().unwrap());
    let n = 1usize << log2;
    let mut t: MemTable<u64> = MemTable::new();
    for i in 0..n as u64 {
        t.insert((i * stride) << 12, i).unwrap();
    }
    let per = |s: f64| s * 1e9 / n as f64;
    let fwd = || {
        let mut s = 0u64;
        for (p, v) in &t {
            s = s.wrapping_add(p.addr() ^ *v);
        }
        s
    };
    let rev = || {
        let mut s = 0u64;
        for (p, v) in t.iter().rev() {
            s = s.wrapping_add(p.addr() ^ *v);
        }
        s
    };
    let top = ((n as u64) * stride) << 12;
    let rfwd = || {
        let mut s = 0u64;
        for (p, v) in t.range(0x5000..top - 0x3000) {
            s = s.wrapping_add(p.addr() ^ *v);
        }
        s
    };
    let rrev = || {
        let mut s = 0u64;
        for (p, v) in t.range(0x5000..top - 0x3000).rev() {
            s = s.wrapping_add(p.addr() ^ *v);
        }
        s
    };
    assert_eq!(fwd(), rev());
    assert_eq!(rfwd(), rrev());
    let rounds: usize = args.next().map_or(40, |s| s.parse().unwrap());
    // Just one loop (`fwd`, `rev` or `none`, for counting cycles with
    // `perf stat`: the difference to `none` is the loop's).
    if let Some(only) = args.next() {
        let f: &dyn Fn() -> u64 = match only.as_str() {
            "fwd" => &fwd,
            "rev" => &rev,
            _ => &|| 0,
        };
        for _ in 0..rounds {
            black_box(f());
        }
        return;
    }
    // Alternating rounds, the best of each: a machine shared with other
    // work slows some rounds, not the best ones.
    let mut b = [f64::MAX; 4];
    for _ in 0..rounds {
        for (k, f) in [&fwd as &dyn Fn() -> u64, &rev, &rfwd, &rrev].into_iter().enumerate() {
            b[k] = b[k].min(best(1, f));
        }
    }
    let [f, r, rf, rr] = b.map(per);
    println!(
        "2^{log2} stride {stride}: iter fwd {f:.3} rev {r:.3} ns/entry ratio {:.3} | range fwd {rf:.3} rev {rr:.3} ratio {:.3}",
        r / f,
        rr / rf
    );
}
