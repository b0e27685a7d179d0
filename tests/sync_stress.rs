//! A bounded stress test of the concurrent table: one writer splits,
//! merges, rewrites, removes and re-inserts 2 MiB regions, one generation
//! at a time, and inserts and removes scattered pages (creating and freeing
//! tables), while reader threads check, under guards held across batches:
//!
//! - an iteration over a region yields nothing, its one 2 MiB entry, or all
//!   512 base pages, and every page of it from one generation;
//! - a region's generation never goes back, for lookups and iterations;
//! - a scattered page reads nothing or its own value;
//! - over a range that the writer fills with `insert_range` (into an empty
//!   region: one subtree built aside; then over itself: slot by slot) and
//!   empties with `remove_range`, every entry is one of the pages the range
//!   decomposes into (never a half-built table's), and a page's generation
//!   never goes back.
//!
//! Then the structure's invariants and the reclamation counts. About 2 s
//! per value type (`SYNC_STRESS_MS` sets the time per type); run under
//! ThreadSanitizer as well (see the module docs of `mem_table::sync`).
#![cfg(feature = "sync")]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use mem_table::ops::{Children, FnOps};
use mem_table::sync::{self, Value};
use mem_table::{Level, Page};

const L1: Level = Level::new(1);
const REGIONS: u64 = 8;
const BASE: u64 = 0x4000_0000;
/// Scattered pages: each in its own level 1 table, so inserts and removes
/// create and free tables.
const SCATTER: u64 = 16;
const SCATTER_BASE: u64 = 0x80_0000_0000;
/// The sub-page number that marks a large entry's value.
const LARGE: u64 = 1023;
/// The range the writer fills and empties: ragged at both ends, across a
/// 1 GiB boundary, alone in its top-level slot.
const RANGE: core::ops::Range<u64> = 0x100_003f_f000..0x100_4040_1000;
/// The sub-page number that marks a range value.
const RANGED: u64 = 1022;

fn region(r: u64) -> u64 {
    BASE + (r << 21)
}

fn scatter(k: u64) -> u64 {
    SCATTER_BASE + k * 0x4020_1000
}

/// A value: a generation and a sub-page number, in 32 bits (so that `u32`
/// tables can hold it too).
fn enc(gen_: u64, sub: u64) -> u64 {
    ((gen_ & 0x3f_ffff) << 10) | sub
}

fn dec(v: u64) -> (u64, u64) {
    (v >> 10, v & 1023)
}

fn budget() -> Duration {
    let ms = std::env::var("SYNC_STRESS_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    Duration::from_millis(ms)
}

/// Runs the stress for values made by `to`, read back by `from` (which
/// checks an `Arc` value's content whole) and, owned, by `own`.
fn stress<V: Value + core::fmt::Debug>(to: fn(u64) -> V, from: fn(V::Read<'_>) -> u64, own: fn(&V) -> u64)
where
    for<'g> V::Read<'g>: core::fmt::Debug,
{
    let t: sync::MemTable<V> = sync::MemTable::new();
    {
        let mut w = t.writer();
        for r in 0..REGIONS {
            w.insert_at(region(r), L1, to(enc(1, LARGE))).unwrap();
        }
    }
    // The pages the range decomposes into.
    let shape: std::collections::HashSet<(u64, Level)> = {
        let t: sync::MemTable<u8> = sync::MemTable::new();
        t.writer().insert_range(RANGE, 0).unwrap();
        t.iter(&t.pin()).map(|(p, _)| (p.addr(), p.level())).collect()
    };
    assert_eq!(shape.len(), 1 + 510 + 2 + 1);
    let shape = &shape;
    let stop = AtomicBool::new(false);
    let checks = AtomicU64::new(0);
    let ranged = AtomicU64::new(0);
    let readers = 2;
    let rounds = std::thread::scope(|s| {
        for id in 0..readers {
            let (t, stop, checks, ranged) = (&t, &stop, &checks, &ranged);
            s.spawn(move || {
                let mut last = [0u64; REGIONS as usize];
                let mut range_gens = std::collections::HashMap::new();
                let mut seen_ranged = 0u64;
                let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ id;
                let mut n = 0u64;
                let mut g = t.pin();
                while !stop.load(Relaxed) {
                    // A value held across the batch: still intact at its
                    // end, whatever the writer replaced meanwhile.
                    let held = t.get(region(0), &g).map(|v| (v, from(v)));
                    for r in 0..REGIONS {
                        // An iteration over the region: one generation.
                        let all: Vec<(Page, u64)> = t
                            .range(region(r)..region(r) + (2 << 20), &g)
                            .map(|(p, v)| (p, from(v)))
                            .collect();
                        match all.len() {
                            0 => {}
                            1 => {
                                let (p, v) = all[0];
                                let (gen_, sub) = dec(v);
                                assert!(
                                    p.level() == L1 && p.addr() == region(r) && sub == LARGE,
                                    "{p:?} {v:#x}"
                                );
                                assert!(
                                    gen_ >= last[r as usize],
                                    "region {r} went back from {} to {gen_}",
                                    last[r as usize]
                                );
                                last[r as usize] = gen_;
                            }
                            512 => {
                                let gen_ = dec(all[0].1).0;
                                for (j, &(p, v)) in all.iter().enumerate() {
                                    assert_eq!(p.addr(), region(r) + ((j as u64) << 12));
                                    assert_eq!(
                                        dec(v),
                                        (gen_, j as u64),
                                        "region {r}: mixed generations or a wrong page"
                                    );
                                }
                                assert!(gen_ >= last[r as usize], "region {r} went back");
                                last[r as usize] = gen_;
                            }
                            k => panic!("region {r}: {k} entries, a half-done split or merge"),
                        }
                        // Lookups of random pages of the region.
                        for _ in 0..8 {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            let j = rng % 512;
                            if let Some((p, v)) = t.get_key_value(region(r) + (j << 12), &g) {
                                let (gen_, sub) = dec(from(v));
                                assert!(
                                    (p.level() == L1 && sub == LARGE)
                                        || (p.level() == Level::BASE && sub == j),
                                    "{p:?} {v:?}"
                                );
                                assert!(gen_ >= last[r as usize], "region {r} went back (lookup)");
                                last[r as usize] = gen_;
                            }
                        }
                    }
                    for (p, v) in t.range(RANGE, &g) {
                        let (gen_, sub) = dec(from(v));
                        assert!(sub == RANGED && shape.contains(&(p.addr(), p.level())), "{p:?} {v:?}");
                        let seen = range_gens.entry(p.addr()).or_insert(0);
                        assert!(gen_ >= *seen, "range page {:#x} went back from {seen} to {gen_}", p.addr());
                        *seen = gen_;
                        seen_ranged += 1;
                    }
                    for k in 0..SCATTER {
                        if let Some(v) = t.get(scatter(k), &g) {
                            assert_eq!(from(v), k + 1, "scattered page {k}");
                        }
                    }
                    if let Some((v, x)) = held {
                        assert_eq!(from(v), x, "a value changed or freed under its reader");
                    }
                    n += 1;
                    // A quiescent point every batch.
                    g.repin();
                    if n % 64 == 0 {
                        drop(g);
                        g = t.pin();
                    }
                }
                checks.fetch_add(n, Relaxed);
                ranged.fetch_add(seen_ranged, Relaxed);
            });
        }
        // The writer.
        let start = Instant::now();
        let mut gens = [1u64; REGIONS as usize];
        let mut split = [false; REGIONS as usize];
        let mut absent = [false; REGIONS as usize];
        let mut rounds = 0u64;
        let mut rng = 0x1234_5678u64;
        while start.elapsed() < budget() {
            let mut w = t.writer();
            for r in 0..REGIONS as usize {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let a = region(r as u64);
                let g = gens[r];
                if absent[r] {
                    gens[r] += 1;
                    assert!(w.insert_at(a, L1, to(enc(gens[r], LARGE))).unwrap().is_none());
                    absent[r] = false;
                } else if split[r] {
                    // Merge into the next generation, checking the children.
                    let mut ops = FnOps::new(
                        |_: Page, _: &V, _: Page| unreachable!(),
                        move |_: Page, c: Children<'_, '_, V>| {
                            for (j, v) in c.enumerate() {
                                assert_eq!(dec(own(v)), (g, j as u64));
                            }
                            Some(to(enc(g + 1, LARGE)))
                        },
                    );
                    w.merge_with(a, L1, &mut ops).unwrap();
                    gens[r] += 1;
                    split[r] = false;
                } else {
                    match rng % 8 {
                        0 => {
                            // Rewrite in place: one store (or a new box).
                            gens[r] += 1;
                            w.insert_at(a, L1, to(enc(gens[r], LARGE))).unwrap();
                        }
                        1 => {
                            w.remove_covering(a).unwrap();
                            absent[r] = true;
                        }
                        _ => {
                            let mut ops = FnOps::new(
                                move |_: Page, _: &V, sub: Page| to(enc(g, (sub.addr() >> 12) & 511)),
                                |_: Page, _| None,
                            );
                            w.split_with(a, L1, &mut ops).unwrap();
                            split[r] = true;
                        }
                    }
                }
            }
            for k in 0..SCATTER {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if rng % 2 == 0 {
                    w.insert(scatter(k), to(k + 1)).unwrap();
                } else {
                    w.remove(scatter(k)).unwrap();
                }
            }
            // The range: filled into an empty region, filled over, emptied.
            match rounds % 3 {
                0 | 1 => w.insert_range(RANGE, to(enc(rounds + 1, RANGED))).unwrap(),
                _ => w.remove_range(RANGE).unwrap(),
            }
            rounds += 1;
            drop(w);
            if rounds % 16 == 0 {
                std::thread::yield_now();
            }
        }
        stop.store(true, Relaxed);
        let w = t.writer();
        w.check_invariants().unwrap();
        rounds
    });
    eprintln!("{rounds} writer rounds, {} reader passes", checks.load(Relaxed));
    assert!(checks.load(Relaxed) > 0, "the readers ran");
    assert!(ranged.load(Relaxed) > 0, "the readers saw range entries");
    let before = t.reclamation();
    for _ in 0..256 {
        t.collect();
    }
    let after = t.reclamation();
    eprintln!("reclamation before: {before:?}, after collecting: {after:?}");
    assert!(after.retired > 0 && after.freed + after.pending == after.retired);
    assert!(after.pending <= before.pending);
}

#[test]
fn stress_u64() {
    stress::<u64>(|v| v, |v| v, |v| *v);
}

#[test]
fn stress_u32() {
    stress::<u32>(|v| v as u32, |v| v as u64, |v| *v as u64);
}

/// A value larger than a word: every field the same encoded value, so a
/// torn or freed read shows.
#[derive(Debug)]
struct Big([u64; 8]);

impl Big {
    fn check(&self) -> u64 {
        assert!(self.0.iter().all(|&f| f == self.0[0]), "a torn or freed value: {:x?}", self.0);
        self.0[0]
    }
}

/// Values published by pointer: every read checks the content whole.
#[test]
fn stress_arc() {
    stress::<std::sync::Arc<Big>>(|v| std::sync::Arc::new(Big([v; 8])), Big::check, |v| v.check());
}
