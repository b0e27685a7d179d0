//! The concurrent table (`mem_table::sync`) against locks and concurrent
//! maps: 2^20 dense `u64` pages, random-hit lookups in batches of 4096 on
//! the bench thread, with one writer thread updating random pages
//! continuously (these machines have 2 cores: one reader, one writer); and
//! the writer's single-page update alone.
//!
//! `cargo bench --features sync --bench sync` (brief: a few seconds per
//! contender).
//!
//! One run on an otherwise idle machine (2 cores), ns per lookup of a
//! batch of 4096 random hits, and ratios (a second run of the no-writer
//! rows gave 0.93 for the guarded read against `MemTable::get`; an earlier
//! run, with other builds on the cores, 1.33):
//!
//! | contender | writer thread | ns/lookup | vs `MemTable::get` | vs sync, guard per batch, same writer |
//! |---|---|---|---|---|
//! | `MemTable::get` (single-threaded) | none | 6.7 | 1.00 | |
//! | `sync`, guard per batch | none | 7.1 | 1.06 | |
//! | `sync`, pin per lookup | none | 18.1 | 2.70 | |
//! | `sync`, `Arc<[u64; 2]>` values, guard per batch | none | 14.3 | 2.13 | |
//! | `sync`, guard per batch | updating | 13.5 | 2.01 | 1.0 |
//! | `sync`, pin per lookup | updating | 38.4 | | 2.8 x slower |
//! | `papaya::HashMap<u64, u64>`, guard per batch | updating | 76 | | 5.6 x slower |
//! | `DashMap<u64, u64>` | updating | 104 | | 7.7 x slower |
//! | `std::sync::RwLock<MemTable>`, read lock per lookup | updating | 585 | | 43 x slower |
//! | `parking_lot::RwLock<MemTable>` | updating | 4,356 | | 323 x slower |
//!
//! The lock-based readers wait for the writer, which holds the lock most of
//! the time on 2 cores; the run before measured 87 and 214 ns for them.
//!
//! Instructions per lookup (cachegrind, 2^16 dense pages, no cache
//! simulation, so not disturbed by other builds): `MemTable::get` 49,
//! `sync` `u64` 52 and `u8` 49 under a guard (58 and 55 before the upper
//! slot decode tested the common case, a link, first).
//!
//! Writer alone, update of an existing page, per batch of 4096:
//! `sync::Writer::insert` 43.7 us, `MemTable::insert` 62.9 us (0.69 x).
//! Pinning costs about 11 ns per lookup without a writer (18.1 - 7.1).

use std::hint::black_box;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mem_table::MemTable;
use mem_table::sync;

const PAGES: u64 = 1 << 20;
const BATCH: usize = 4096;

fn rng(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn addrs(seed: u64) -> Vec<u64> {
    let mut r = rng(seed);
    (0..BATCH).map(|_| (r() % PAGES) << 12).collect()
}

/// Runs `bench` while a writer thread calls `update` with random pages,
/// until the bench is done.
fn with_writer(update: impl FnMut(u64, u64) + Send, bench: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let stop = &stop;
        let mut update = update;
        s.spawn(move || {
            let mut r = rng(0xdead_beef);
            let mut n = 0u64;
            while !stop.load(Relaxed) {
                update((r() % PAGES) << 12, n);
                n += 1;
            }
        });
        bench();
        stop.store(true, Relaxed);
    });
}

fn benches(c: &mut Criterion) {
    let lookups = addrs(42);
    let mut g = c.benchmark_group("sync_read");
    g.throughput(Throughput::Elements(BATCH as u64));

    // Single-threaded baseline.
    let mut plain: MemTable<u64> = MemTable::new();
    for i in 0..PAGES {
        plain.insert(i << 12, i).unwrap();
    }
    g.bench_function("memtable_get/no_writer", |b| {
        b.iter(|| lookups.iter().map(|&a| *plain.get(a).unwrap()).sum::<u64>())
    });

    let st: sync::MemTable<u64> = sync::MemTable::new();
    {
        let mut w = st.writer();
        for i in 0..PAGES {
            w.insert(i << 12, i).unwrap();
        }
    }
    g.bench_function("sync_guard_per_batch/no_writer", |b| {
        b.iter(|| {
            let guard = st.pin();
            lookups.iter().map(|&a| st.get(a, &guard).unwrap()).sum::<u64>()
        })
    });
    g.bench_function("sync_pin_per_lookup/no_writer", |b| {
        b.iter(|| lookups.iter().map(|&a| st.get_pinned(a).unwrap()).sum::<u64>())
    });
    {
        // Values larger than a word, published by pointer: a borrow per
        // lookup (one more dependent load, to the value), no count touched.
        let arcs: sync::MemTable<std::sync::Arc<[u64; 2]>> = sync::MemTable::new();
        {
            let mut w = arcs.writer();
            for i in 0..PAGES {
                w.insert(i << 12, std::sync::Arc::new([i, !i])).unwrap();
            }
        }
        g.bench_function("sync_arc_guard_per_batch/no_writer", |b| {
            b.iter(|| {
                let guard = arcs.pin();
                lookups.iter().map(|&a| arcs.get(a, &guard).unwrap()[0]).sum::<u64>()
            })
        });
    }
    {
        with_writer(
            |a, n| {
                st.writer().insert(a, n).unwrap();
            },
            || {
                g.bench_function("sync_guard_per_batch/writer", |b| {
                    b.iter(|| {
                        let guard = st.pin();
                        lookups.iter().map(|&a| st.get(a, &guard).unwrap()).sum::<u64>()
                    })
                });
                g.bench_function("sync_pin_per_lookup/writer", |b| {
                    b.iter(|| lookups.iter().map(|&a| st.get_pinned(a).unwrap()).sum::<u64>())
                });
            },
        );
    }

    let std_lock = RwLock::new(plain.clone());
    with_writer(
        |a, n| {
            std_lock.write().unwrap().insert(a, n).unwrap();
        },
        || {
            g.bench_function("std_rwlock_per_lookup/writer", |b| {
                b.iter(|| lookups.iter().map(|&a| *std_lock.read().unwrap().get(a).unwrap()).sum::<u64>())
            });
        },
    );
    drop(std_lock);

    let pl_lock = parking_lot::RwLock::new(plain.clone());
    with_writer(
        |a, n| {
            pl_lock.write().insert(a, n).unwrap();
        },
        || {
            g.bench_function("parking_lot_rwlock_per_lookup/writer", |b| {
                b.iter(|| lookups.iter().map(|&a| *pl_lock.read().get(a).unwrap()).sum::<u64>())
            });
        },
    );
    drop(pl_lock);

    let dm: dashmap::DashMap<u64, u64> = dashmap::DashMap::with_capacity(PAGES as usize);
    for i in 0..PAGES {
        dm.insert(i << 12, i);
    }
    with_writer(
        |a, n| {
            dm.insert(a, n);
        },
        || {
            g.bench_function("dashmap/writer", |b| {
                b.iter(|| lookups.iter().map(|&a| *dm.get(&a).unwrap()).sum::<u64>())
            });
        },
    );
    drop(dm);

    let pm: papaya::HashMap<u64, u64> = papaya::HashMap::with_capacity(PAGES as usize);
    {
        let m = pm.pin();
        for i in 0..PAGES {
            m.insert(i << 12, i);
        }
    }
    with_writer(
        |a, n| {
            pm.pin().insert(a, n);
        },
        || {
            g.bench_function("papaya_guard_per_batch/writer", |b| {
                b.iter(|| {
                    let m = pm.pin();
                    lookups.iter().map(|&a| *m.get(&a).unwrap()).sum::<u64>()
                })
            });
        },
    );
    drop(pm);
    g.finish();

    // The writer alone: a single-page update of an existing page.
    let mut g = c.benchmark_group("sync_write");
    g.throughput(Throughput::Elements(BATCH as u64));
    let updates = addrs(7);
    g.bench_function("memtable_insert", |b| {
        b.iter(|| {
            for (k, &a) in updates.iter().enumerate() {
                black_box(plain.insert(a, k as u64).unwrap());
            }
        })
    });
    let mut w = st.writer();
    g.bench_function("sync_writer_insert", |b| {
        b.iter(|| {
            for (k, &a) in updates.iter().enumerate() {
                black_box(w.insert(a, k as u64).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = group;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10)
        .without_plots();
    targets = benches
}
criterion_main!(group);
