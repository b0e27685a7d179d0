//! loom models of the concurrent table's publication and reclamation
//! protocols: a writer thread against a reader, every interleaving up to
//! the preemption bound (`LOOM_MAX_PREEMPTIONS`, 3 unless set).
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --features sync --test sync_loom
//! ```
//!
//! loom cannot run crossbeam-epoch, so the tables here use `sync::Counted`,
//! a reader count with SeqCst fences (the same shape of argument as an
//! epoch pin), whose frees *poison* a node instead of releasing it: every
//! reader visit reads the poison cell, so a free that is not ordered after
//! every reader that could still visit the node is a data race loom
//! reports. The last model is a negative control: with `sync::Immediate`,
//! which frees at once, loom must find the race.
#![cfg(all(loom, feature = "sync"))]

use loom::sync::Arc;
use loom::thread;
use mem_table::geometry::{Custom, Large};
use mem_table::ops::FnOps;
use mem_table::sync::{self, Atom, Counted, Reclaim};
use mem_table::typenum::{U1, U12};
use mem_table::{Level, Page};

/// Three one-bit levels (two slots per table); level 1 holds large entries
/// of 8 KiB.
type G3 = Custom<U12, (U1, Large<U1>, U1)>;
type Table<V, R = Counted> = sync::MemTable<V, G3, R>;

const L1: Level = Level::new(1);

/// Outcomes a model saw, one bit each, over all its interleavings: the
/// models check that loom did explore both sides of each race.
#[derive(Clone, Default)]
struct Seen(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Seen {
    fn saw(&self, bit: usize) {
        self.0.fetch_or(1 << bit, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs `f` under loom; returns the outcomes seen.
fn model<F: Fn(&Seen) + Sync + Send + 'static>(f: F) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let seen = Seen::default();
    let s2 = seen.clone();
    b.check(move || {
        counted.fetch_add(1, Relaxed);
        f(&s2)
    });
    println!("{} interleavings, preemption bound {:?}", runs.load(Relaxed), b.preemption_bound);
    seen.0.load(Relaxed)
}

// The models -----------------------------------------------------------------

fn insert_into_new_table<V: Atom + PartialEq + core::fmt::Debug>(v: V) {
    let seen = model(move |seen| {
        let t: Arc<Table<V>> = Arc::new(Table::new());
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().insert(0x1000, v).unwrap();
            })
        };
        {
            let g = t.pin();
            match t.get_key_value(0x1000, &g) {
                None => seen.saw(0),
                Some((p, x)) => {
                    assert!(p.addr() == 0x1000 && p.level() == Level::BASE && x == v);
                    seen.saw(1);
                }
            }
            assert_eq!(t.get(0, &g), None);
        }
        w.join().unwrap();
        assert_eq!(t.get_pinned(0x1000), Some(v));
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn insert_into_new_table_packed() {
    insert_into_new_table(7u32);
}

#[test]
fn insert_into_new_table_wide() {
    insert_into_new_table(u64::MAX - 7);
}

fn split_vs_reader<V: Atom + PartialEq + core::fmt::Debug>(big: V, subs: [V; 2]) {
    let seen = model(move |seen| {
        let t: Arc<Table<V>> = Arc::new(Table::new());
        t.writer().insert_at(0, L1, big).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut ops = FnOps::new(
                    move |_: Page, _: &V, sub: Page| subs[(sub.addr() >> 12) as usize],
                    |_: Page, _| None,
                );
                t.writer().split_with(0, L1, &mut ops).unwrap();
            })
        };
        {
            let g = t.pin();
            // One lookup: the large entry or its sub-page, never anything else.
            let (p, x) = t.get_key_value(0x1000, &g).expect("always covered");
            assert!(
                (p.level() == L1 && x == big) || (p.level() == Level::BASE && x == subs[1]),
                "{p:?} {x:?}"
            );
            seen.saw((p.level() == L1) as usize);
            // An iteration sees the split whole or not at all.
            let all: Vec<_> = t.iter(&g).map(|(p, x)| (p.addr(), p.level(), x)).collect();
            assert!(
                all == [(0, L1, big)] || all == [(0, Level::BASE, subs[0]), (0x1000, Level::BASE, subs[1])],
                "{all:?}"
            );
        }
        w.join().unwrap();
        let wr = t.writer();
        wr.check_invariants().unwrap();
        drop(wr);
        t.collect();
        let r = t.reclamation();
        assert_eq!(r.pending, 0, "{r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn split_vs_reader_packed() {
    split_vs_reader(5u32, [10, 11]);
}

#[test]
fn split_vs_reader_wide() {
    split_vs_reader(u64::MAX, [1, 2]);
}

fn merge_vs_reader<V: Atom + PartialEq + core::fmt::Debug, R: Reclaim>(v: V) {
    let seen = model(move |seen| {
        let t: Arc<Table<V, R>> = Arc::new(Table::new());
        {
            let mut w = t.writer();
            w.insert(0, v).unwrap();
            w.insert(0x1000, v).unwrap();
        }
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().merge(0, L1).unwrap();
                t.collect();
            })
        };
        {
            let g = t.pin();
            let (p, x) = t.get_key_value(0x1000, &g).expect("always covered");
            assert!(x == v && (p.level() == L1 || p.addr() == 0x1000));
            seen.saw((p.level() == L1) as usize);
            let n = t.iter(&g).count();
            assert!(n == 1 || n == 2);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (1, 0), "{r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn merge_and_reclaim_vs_reader_packed() {
    merge_vs_reader::<u32, Counted>(3);
}

#[test]
fn merge_and_reclaim_vs_reader_wide() {
    merge_vs_reader::<u64, Counted>(1 << 63);
}

/// The negative control: a reclaimer that frees the merged table at once
/// must be caught (loom reports the race on the poison cell, or the
/// reader's check finds the node poisoned).
#[test]
#[should_panic]
fn merge_with_immediate_free_is_caught() {
    merge_vs_reader::<u32, sync::Immediate>(3);
}

fn remove_frees_tables_vs_reader<V: Atom + PartialEq + core::fmt::Debug>(v: V) {
    let seen = model(move |seen| {
        let t: Arc<Table<V>> = Arc::new(Table::new());
        t.writer().insert(0x1000, v).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                assert_eq!(w.remove(0x1000).unwrap(), Some(v));
                w.check_invariants().unwrap();
            })
        };
        {
            let g = t.pin();
            let x = t.get(0x1000, &g);
            assert!(x.is_none() || x == Some(v));
            seen.saw(x.is_some() as usize);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        // The bottom table and the level 1 table below the root.
        assert_eq!((r.retired, r.pending), (2, 0), "{r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn remove_that_frees_tables_vs_reader_packed() {
    remove_frees_tables_vs_reader(9u8);
}

#[test]
fn remove_that_frees_tables_vs_reader_wide() {
    remove_frees_tables_vs_reader(9u64);
}

/// Value replacement by pointer: a 64-bit large value is a box; replacing
/// it publishes a new box and retires the old one.
#[test]
fn boxed_value_replacement_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<u64>> = Arc::new(Table::new());
        t.writer().insert_at(0, L1, 1).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                assert_eq!(t.writer().insert_at(0, L1, 2).unwrap(), Some(1));
            })
        };
        {
            let g = t.pin();
            let x = t.get(0x1000, &g);
            assert!(x == Some(1) || x == Some(2), "{x:?}");
            seen.saw((x == Some(2)) as usize);
        }
        w.join().unwrap();
        t.collect();
        assert_eq!(t.reclamation().pending, 0);
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// A single-slot write is one store: a reader sees the old or new value.
#[test]
fn single_slot_update_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<u64>> = Arc::new(Table::new());
        t.writer().insert(0x1000, 1).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().insert(0x1000, 2).unwrap();
            })
        };
        let x = t.get_pinned(0x1000);
        assert!(x == Some(1) || x == Some(2), "{x:?}");
        seen.saw((x == Some(2)) as usize);
        w.join().unwrap();
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// Two operations in a row (split, then merge back) against a reader that
/// looks up twice and iterates: every read is one of the three states.
#[test]
fn split_then_merge_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<u32>> = Arc::new(Table::new());
        t.writer().insert_at(0, L1, 4).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                w.split(0, L1).unwrap();
                w.merge(0, L1).unwrap();
            })
        };
        {
            let g = t.pin();
            for a in [0, 0x1000] {
                let (p, x) = t.get_key_value(a, &g).unwrap();
                assert_eq!(x, 4);
                seen.saw(p.level().index());
            }
            let all: Vec<_> = t.iter(&g).map(|(p, _)| p.level()).collect();
            assert!(all == [L1] || all == [Level::BASE, Level::BASE], "{all:?}");
        }
        w.join().unwrap();
        t.collect();
        assert_eq!(t.reclamation().pending, 0);
    });
    assert_eq!(seen, 0b11);
}

/// Remove and re-insert of one page against a reader that looks twice.
/// Packed values (one word per entry): the reader never sees the new value
/// and then nothing.
#[test]
fn remove_reinsert_vs_reader_packed() {
    model(|_| {
        let t: Arc<Table<u32>> = Arc::new(Table::new());
        t.writer().insert(0, 1).unwrap();
        t.writer().insert(0x1000, 9).unwrap(); // keeps the table alive
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                w.remove(0).unwrap();
                w.insert(0, 2).unwrap();
            })
        };
        {
            let g = t.pin();
            let (a, b) = (t.get(0, &g), t.get(0, &g));
            assert!(!(a == Some(2) && b.is_none()), "{a:?} then {b:?}");
            assert!(!(a == Some(2) && b == Some(1)) && !(a.is_none() && b == Some(1)));
        }
        w.join().unwrap();
    });
}

/// The same for 64-bit values, whose presence is a separate bit: the
/// documented relaxation (the re-inserted value read early, then the page
/// absent) is reachable, and is the only anomaly.
#[test]
fn remove_reinsert_vs_reader_wide_relaxation() {
    let seen = model(|seen| {
        let t: Arc<Table<u64>> = Arc::new(Table::new());
        t.writer().insert(0, 1).unwrap();
        t.writer().insert(0x1000, 9).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                w.remove(0).unwrap();
                w.insert(0, 2).unwrap();
            })
        };
        {
            let g = t.pin();
            let (a, b) = (t.get(0, &g), t.get(0, &g));
            if a == Some(2) && b.is_none() {
                seen.saw(0);
            }
            // Never back to the value from before the remove.
            assert!(!(a != Some(1) && b == Some(1)), "{a:?} then {b:?}");
        }
        w.join().unwrap();
    });
    assert_eq!(seen, 1, "the relaxation documented in the module docs");
}

// Values published by pointer (`Arc`) ---------------------------------------

/// A value larger than a word: every field its generation.
type Big = std::sync::Arc<[u64; 4]>;

fn big(gen_: u64) -> Big {
    std::sync::Arc::new([gen_; 4])
}

/// The generation of a value read, checked whole.
fn gen_of(v: &[u64; 4]) -> u64 {
    assert!(v.iter().all(|&f| f == v[0]), "a torn value: {v:?}");
    v[0]
}

/// Replacement by pointer against a reader, in a bottom slot or a large
/// entry: the reader sees the old or the new value, whole; the table's
/// reference to the old one is dropped after the reader (the loom poison
/// of `Arc` values: a drop not ordered after the reader's visit is a race
/// loom reports).
fn arc_replacement_vs_reader<R: Reclaim>(level: Level) {
    let seen = model(move |seen| {
        let t: Arc<Table<Big, R>> = Arc::new(Table::new());
        t.writer().insert_at(0, level, big(1)).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let old = t.writer().insert_at(0, level, big(2)).unwrap();
                assert_eq!(old.as_deref().map(gen_of), Some(1));
                t.collect();
            })
        };
        {
            let g = t.pin();
            let x = t.get(0, &g).map(gen_of);
            assert!(x == Some(1) || x == Some(2), "{x:?}");
            seen.saw((x == Some(2)) as usize);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (1, 0), "{r:?}");
        assert_eq!(t.get_pinned(0).as_deref().map(gen_of), Some(2));
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn arc_replacement_vs_reader_bottom() {
    arc_replacement_vs_reader::<Counted>(Level::BASE);
}

#[test]
fn arc_replacement_vs_reader_large() {
    arc_replacement_vs_reader::<Counted>(L1);
}

/// The negative control for values: a reclaimer that drops the table's
/// reference at once must be caught.
#[test]
#[should_panic]
fn arc_replacement_with_immediate_free_is_caught() {
    arc_replacement_vs_reader::<sync::Immediate>(Level::BASE);
}

/// Remove of an `Arc` value against a reader: the value, whole, or
/// nothing; the returned clone is the caller's.
#[test]
fn arc_remove_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<Big>> = Arc::new(Table::new());
        t.writer().insert(0x1000, big(5)).unwrap();
        t.writer().insert(0, big(6)).unwrap(); // keeps the table
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let old = t.writer().remove(0x1000).unwrap();
                assert_eq!(old.as_deref().map(gen_of), Some(5));
                t.collect();
            })
        };
        {
            let g = t.pin();
            let x = t.get(0x1000, &g).map(gen_of);
            assert!(x.is_none() || x == Some(5), "{x:?}");
            seen.saw(x.is_some() as usize);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (1, 0), "{r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// A split shares one `Arc` among the sub-pages (one reference per slot):
/// the reader sees the large entry or a sub-page, the same value either
/// way, and an iteration sees the split whole.
#[test]
fn arc_split_shares_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<Big>> = Arc::new(Table::new());
        let a = big(3);
        t.writer().insert_at(0, L1, a.clone()).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().split(0, L1).unwrap();
                t.collect();
            })
        };
        {
            let g = t.pin();
            let (p, x) = t.get_key_value(0x1000, &g).expect("always covered");
            assert!(core::ptr::eq(x, &*a), "the one shared value");
            assert_eq!(gen_of(x), 3);
            seen.saw((p.level() == L1) as usize);
            let all: Vec<_> = t.iter(&g).map(|(p, x)| (p.addr(), p.level(), gen_of(x))).collect();
            assert!(all == [(0, L1, 3)] || all == [(0, Level::BASE, 3), (0x1000, Level::BASE, 3)], "{all:?}");
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (1, 0), "the large entry's reference: {r:?}");
        // Ours, the two sub-pages', and the large entry's: the loom
        // reclaimer keeps what it poisoned until it is dropped.
        assert_eq!(std::sync::Arc::strong_count(&a), 4);
        drop(t);
        assert_eq!(std::sync::Arc::strong_count(&a), 1, "every table reference dropped once");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// Merge of `Arc` values against a reader: the merged table and its
/// references are retired as one item, dropped after the reader.
#[test]
fn arc_merge_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<Big>> = Arc::new(Table::new());
        {
            let mut w = t.writer();
            w.insert(0, big(7)).unwrap();
            w.insert(0x1000, big(7)).unwrap();
        }
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().merge(0, L1).unwrap();
                t.collect();
            })
        };
        {
            let g = t.pin();
            let (p, x) = t.get_key_value(0x1000, &g).expect("always covered");
            assert_eq!(gen_of(x), 7);
            seen.saw((p.level() == L1) as usize);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (3, 0), "the table and two references: {r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// A value whose content loom tracks: written by the thread that makes
/// it, read by readers through a loom cell.
struct Tracked(loom::cell::UnsafeCell<u64>);

// SAFETY: written once, before it is published (`with_mut` in `tracked`),
// then only read; loom checks every access is ordered after that write.
unsafe impl Sync for Tracked {}

fn tracked(v: u64) -> std::sync::Arc<Tracked> {
    let t = Tracked(loom::cell::UnsafeCell::new(0));
    // SAFETY: ours alone.
    t.0.with_mut(|p| unsafe { *p = v });
    std::sync::Arc::new(t)
}

fn read_tracked(t: &Tracked) -> u64 {
    // SAFETY: a shared read; loom reports it if not ordered after the write.
    t.0.with(|p| unsafe { *p })
}

/// Publication by pointer: a value made by the writer's thread and
/// inserted (a new entry in an existing table, a replacement, and a large
/// entry) is seen by a reader with its content: the Release store of the
/// pointer and the reader's Acquire load order the content's write before
/// the read (a Relaxed store here is a race loom reports).
#[test]
fn arc_publication_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<std::sync::Arc<Tracked>>> = Arc::new(Table::new());
        t.writer().insert(0x1000, tracked(1)).unwrap(); // the tables exist
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                w.insert(0, tracked(2)).unwrap();
                w.insert(0x1000, tracked(3)).unwrap();
            })
        };
        {
            let g = t.pin();
            let a = t.get(0, &g).map(read_tracked);
            let b = t.get(0x1000, &g).map(read_tracked);
            assert!(a.is_none() || a == Some(2), "{a:?}");
            assert!(b == Some(1) || b == Some(3), "{b:?}");
            seen.saw(a.is_some() as usize);
        }
        w.join().unwrap();
        t.collect();
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

// Range operations -------------------------------------------------------------

/// A range insert into an empty region builds the whole subtree aside (a
/// level 1 table holding a bottom table with page 0x1000 and a large entry
/// at 0x2000) and links it with one store: a reader sees none of it or all
/// of it, never the bottom table without the large entry.
fn range_insert_builds_aside_vs_reader<V: Atom + PartialEq + core::fmt::Debug>(v: V) {
    let seen = model(move |seen| {
        let t: Arc<Table<V>> = Arc::new(Table::new());
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().insert_range(0x1000..0x4000, v).unwrap();
            })
        };
        {
            let g = t.pin();
            let all: Vec<_> = t.iter(&g).map(|(p, x)| (p.addr(), p.level(), x)).collect();
            assert!(all.is_empty() || all == [(0x1000, Level::BASE, v), (0x2000, L1, v)], "{all:?}");
            seen.saw(all.is_empty() as usize);
            // Two lookups: once the second half is seen, so is the first.
            let (b, a) = (t.get(0x2000, &g), t.get(0x1000, &g));
            assert!(!(b.is_some() && a.is_none()), "{b:?} then {a:?}");
        }
        w.join().unwrap();
        t.writer().check_invariants().unwrap();
        assert_eq!(t.get_pinned(0x3fff), Some(v));
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn range_insert_builds_aside_vs_reader_packed() {
    range_insert_builds_aside_vs_reader(3u8);
}

#[test]
fn range_insert_builds_aside_vs_reader_wide() {
    range_insert_builds_aside_vs_reader(u64::MAX - 3);
}

/// `remove_range` over a whole top slot (or `clear`) unlinks a two-level
/// subtree (a level 1 table, a bottom table under it, a large entry beside)
/// with one store and retires it node by node, while a reader walks it:
/// the reader sees all or nothing, and no node is freed under it.
fn remove_subtree_vs_reader<V: Atom + PartialEq + core::fmt::Debug, R: Reclaim>(v: V, clear: bool) {
    let seen = model(move |seen| {
        let t: Arc<Table<V, R>> = Arc::new(Table::new());
        {
            let mut w = t.writer();
            w.insert(0, v).unwrap();
            w.insert_at(0x2000, L1, v).unwrap();
        }
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                let mut w = t.writer();
                if clear {
                    w.clear();
                } else {
                    w.remove_range(0..0x4000).unwrap();
                }
                drop(w);
                t.collect();
            })
        };
        {
            let g = t.pin();
            let x = t.get(0, &g);
            assert!(x.is_none() || x == Some(v));
            let all: Vec<_> = t.iter(&g).map(|(p, _)| p.addr()).collect();
            assert!(all.is_empty() || all == [0, 0x2000], "{all:?}");
            seen.saw(all.is_empty() as usize);
            if x.is_none() {
                assert!(all.is_empty(), "the subtree came back");
            }
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        // The level 1 and bottom tables, and the box of a 64-bit value.
        let boxes = (V::BITS == 64) as usize;
        assert_eq!((r.retired, r.pending), (2 + boxes, 0), "{r:?}");
        assert!(t.is_empty());
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

#[test]
fn remove_range_frees_a_subtree_vs_reader_packed() {
    remove_subtree_vs_reader::<u32, Counted>(5, false);
}

#[test]
fn remove_range_frees_a_subtree_vs_reader_wide() {
    remove_subtree_vs_reader::<u64, Counted>(5, false);
}

#[test]
fn clear_frees_a_subtree_vs_reader() {
    remove_subtree_vs_reader::<u32, Counted>(5, true);
}

/// The negative control of the subtree protocol: freed at once, loom must
/// catch a reader still in the subtree.
#[test]
#[should_panic]
fn remove_range_with_immediate_free_is_caught() {
    remove_subtree_vs_reader::<u32, sync::Immediate>(5, false);
}

/// `remove_range` of part of a large entry: the split is built aside with
/// the removal done in it, and replaces the entry with one store.
#[test]
fn remove_range_splits_an_edge_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<u64>> = Arc::new(Table::new());
        t.writer().insert_at(0, L1, 8).unwrap();
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                t.writer().remove_range(0x1000..0x2000).unwrap();
            })
        };
        {
            let g = t.pin();
            let (p, x) = t.get_key_value(0, &g).expect("page 0 is never removed");
            assert_eq!(x, 8);
            let all: Vec<_> = t.iter(&g).map(|(p, x)| (p.addr(), p.level(), x)).collect();
            assert!(all == [(0, L1, 8)] || all == [(0, Level::BASE, 8)], "{all:?}");
            seen.saw((p.level() == L1) as usize);
        }
        w.join().unwrap();
        t.writer().check_invariants().unwrap();
        t.collect();
        // The large entry's box.
        assert_eq!(t.reclamation().retired, 1);
        assert_eq!(t.reclamation().pending, 0);
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}

/// `compact` merging a full bottom table while a reader looks: the merge
/// protocol (the large entry's word replaces the link, then the table is
/// retired).
#[test]
fn compact_vs_reader() {
    let seen = model(|seen| {
        let t: Arc<Table<u64>> = Arc::new(Table::new());
        {
            let mut w = t.writer();
            w.insert(0, 1 << 63).unwrap();
            w.insert(0x1000, 1 << 63).unwrap();
        }
        let w = {
            let t = t.clone();
            thread::spawn(move || {
                assert_eq!(t.writer().compact(), 1);
                t.collect();
            })
        };
        {
            let g = t.pin();
            let (p, x) = t.get_key_value(0x1000, &g).expect("always covered");
            assert_eq!(x, 1 << 63);
            seen.saw((p.level() == L1) as usize);
            let n = t.iter(&g).count();
            assert!(n == 1 || n == 2);
        }
        w.join().unwrap();
        t.collect();
        let r = t.reclamation();
        assert_eq!((r.retired, r.pending), (1, 0), "{r:?}");
    });
    assert_eq!(seen, 0b11, "loom explored both orders");
}
