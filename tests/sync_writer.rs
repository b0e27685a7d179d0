//! The concurrent table's writer beyond the model test: reserved
//! operations make no allocation (this binary's global allocator counts
//! them), and a panic in the consumer's split or merge ops or in a
//! `retain` closure leaves the table consistent.
#![cfg(feature = "sync")]

#[path = "common/counting.rs"]
mod counting;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use mem_table::geometry::{Custom, Large};
use mem_table::ops::{Children, PageOps};
use mem_table::sync::{self, Atom};
use mem_table::typenum::{U2, U12};
use mem_table::{Level, Page};

use counting::allocations;

const L1: Level = Level::new(1);
const L2: Level = Level::new(2);

#[test]
#[cfg_attr(miri, ignore = "about allocation counts, not unsafe code")]
fn reserved_operations_make_no_allocation() {
    let t: sync::MemTable<u64> = sync::MemTable::new();
    let mut w = t.writer();
    // The control: an insert that makes a path allocates, so the counter
    // sees the table's allocations.
    let (r, n) = allocations(|| w.insert(1 << 40, 1));
    assert_eq!((r.map_err(|e| e.kind()), n > 0), (Ok(None), true), "{n} allocations");

    // Two reservations add up; the inserts draw them.
    w.reserve_insert(0x1000, Level::BASE).unwrap();
    w.reserve_insert(1 << 41, Level::BASE).unwrap();
    assert_eq!((w.reserved(Level::BASE), w.reserved(L1), w.reserved(L2)), (2, 2, 2));
    let (r, n) = allocations(|| (w.insert(0x1000, 2).is_ok(), w.insert(1 << 41, 3).is_ok()));
    assert_eq!((r, n), ((true, true), 0), "reserved inserts of base pages");
    assert_eq!((w.reserved(Level::BASE), w.reserved(L1), w.reserved(L2)), (0, 0, 0));
    drop(w);

    // Values of at most 63 bits are inline at every level: large entries,
    // splits and range operations draw only tables.
    let t: sync::MemTable<u32> = sync::MemTable::new();
    let mut w = t.writer();
    w.reserve_insert(0x20_0000, L1).unwrap();
    let (r, n) = allocations(|| w.insert_at(0x20_0000, L1, 7).is_ok());
    assert_eq!((r, n), (true, 0), "a reserved large insert");
    w.reserve_split(0x20_0000, L1).unwrap();
    let (r, n) = allocations(|| w.split(0x20_0000, L1).is_ok());
    assert_eq!((r, n, w.len()), (true, 0, 512), "a reserved split");
    // A range in an empty region with ragged ends: a level 2, a level 1 and
    // two bottom tables.
    w.reserve_tables(L2, 1).unwrap();
    w.reserve_tables(L1, 1).unwrap();
    w.reserve_tables(Level::BASE, 2).unwrap();
    let lo = (1u64 << 39) + 0x1f_f000;
    let (r, n) = allocations(|| w.insert_range(lo..lo + 0x20_2000, 9).is_ok());
    assert_eq!((r, n), (true, 0), "a range insert with its tables reserved");
    assert_eq!((w.reserved(L2), w.reserved(L1), w.reserved(Level::BASE)), (0, 0, 0));
    assert_eq!(w.get(lo), Some(9));
    w.check_invariants().unwrap();
    // Unreserved, the next one allocates again.
    w.reserve_tables(Level::BASE, 4).unwrap();
    w.unreserve();
    let (_, n) = allocations(|| w.insert(0x7000_0000, 1));
    assert!(n > 0);
}

/// Three 2-bit levels, the middle one large (as in `tests/sync.rs`).
type Tiny = Custom<U12, (U2, Large<U2>, U2)>;
type Table = sync::MemTable<u8, Tiny, sync::Counted>;

/// Split ops that copy, and panic at the `n`th sub-page; merge ops that
/// merge equal children, and panic at the `n`th merge asked.
struct Panicky(usize);

impl PageOps<u8> for Panicky {
    fn split(&mut self, _: Page, v: &u8, _: Page) -> u8 {
        self.0 = self.0.checked_sub(1).expect("the consumer's split panics");
        *v
    }
    fn merge(&mut self, _: Page, mut c: Children<'_, '_, u8>) -> Option<u8> {
        self.0 = self.0.checked_sub(1).expect("the consumer's merge panics");
        let first = *c.next()?;
        c.all(|&x| x == first).then_some(first)
    }
}

/// Every base page's value in the reach of `Tiny` (64 pages).
fn pages(t: &Table) -> Vec<Option<u8>> {
    (0..64u64).map(|i| t.get_pinned(i << 12)).collect()
}

/// A table whose range operations below split large entries at both
/// edges, and cross tables: pages 0..64, large entries (16 KiB) of value 1
/// in the first half, base pages of value 2 in the second.
fn filled() -> Table {
    let t = Table::new();
    let mut w = t.writer();
    w.insert_range(0..0x2_0000, 1).unwrap();
    for i in 32..64u64 {
        w.insert(i << 12, 2).unwrap();
    }
    drop(w);
    t
}

/// Checks a table after a panic: invariants, the count, and that each page
/// holds what it held before or what the operation would have made.
fn consistent(t: &Table, before: &[Option<u8>], after: &[Option<u8>]) {
    let w = t.writer();
    w.check_invariants().unwrap();
    assert_eq!(w.len(), t.iter(&t.pin()).count());
    drop(w);
    for (i, now) in pages(t).into_iter().enumerate() {
        assert!(
            now == before[i] || now == after[i],
            "page {i}: {now:?}, not {:?} or {:?}",
            before[i],
            after[i]
        );
    }
}

#[test]
fn a_panic_in_range_ops_leaves_the_table_consistent() {
    let before = pages(&filled());
    // Both edges inside 16 KiB entries: a panic in the second split comes
    // after the slots before it changed.
    let range = 0x1000..0x1_f000;
    let after_insert = {
        let t = filled();
        t.writer().insert_range(range.clone(), 5).unwrap();
        pages(&t)
    };
    let after_remove = {
        let t = filled();
        t.writer().remove_range(range.clone()).unwrap();
        pages(&t)
    };
    let mut panicked = 0;
    for n in 0..8 {
        for insert in [true, false] {
            let t = filled();
            let mut w = t.writer();
            let r = catch_unwind(AssertUnwindSafe(|| {
                if insert {
                    w.insert_range_with(range.clone(), 5, &mut Panicky(n)).unwrap();
                } else {
                    w.remove_range_with(range.clone(), &mut Panicky(n)).unwrap();
                }
            }));
            panicked += r.is_err() as usize;
            drop(w);
            if (4..8).contains(&n) {
                // The first edge and the middle are done, the last edge not.
                assert_eq!(t.get_pinned(0x1000), after_insert[1].filter(|_| insert));
                assert_eq!(t.get_pinned(0x1_e000), before[0x1e]);
            }
            consistent(&t, &before, if insert { &after_insert } else { &after_remove });
            // Usable after: the operation completes.
            let mut w = t.writer();
            if insert {
                w.insert_range(range.clone(), 5).unwrap();
            } else {
                w.remove_range(range.clone()).unwrap();
            }
            drop(w);
            assert_eq!(&pages(&t), if insert { &after_insert } else { &after_remove });
        }
    }
    // Each range splits two entries of 4 sub-pages: the panics at each of
    // the 8, for both operations, happened.
    assert_eq!(panicked, 16);
}

#[test]
fn a_panic_in_compact_or_retain_leaves_the_table_consistent() {
    // Four full bottom tables of equal values under the first 64 KiB.
    let make = || {
        let t = Table::new();
        let mut w = t.writer();
        for i in 0..16u64 {
            w.insert(i << 12, 3).unwrap();
        }
        w.insert(0x3_0000, 4).unwrap();
        drop(w);
        t
    };
    let before = pages(&make());
    let after = {
        let t = make();
        assert_eq!(t.writer().compact(), 4);
        pages(&t)
    };
    for n in 0..4 {
        let t = make();
        let mut w = t.writer();
        let r = catch_unwind(AssertUnwindSafe(|| w.compact_with(&mut Panicky(n))));
        assert!(r.is_err());
        drop(w);
        consistent(&t, &before, &after);
        assert_eq!(t.writer().compact(), 4 - n, "the merges before the panic are done");
    }
    // retain: the closure panics at the fifth entry, after doubling four.
    let t = make();
    let mut w = t.writer();
    let mut k = 0;
    let r = catch_unwind(AssertUnwindSafe(|| {
        w.retain(|_, v| {
            k += 1;
            assert!(k < 5, "the consumer's closure panics");
            *v *= 2;
            true
        })
    }));
    assert!(r.is_err());
    drop(w);
    let mut expect = before.clone();
    expect[..4].iter_mut().for_each(|v| *v = Some(6));
    consistent(&t, &before, &expect);
    assert_eq!(pages(&t), expect);
}

#[test]
fn a_writer_dropped_by_a_panic_leaves_the_table_usable() {
    let t = filled();
    let before = pages(&t);
    let r = catch_unwind(AssertUnwindSafe(|| {
        let mut w = t.writer();
        w.insert_range_with(0x1000..0x3_f000, 5, &mut Panicky(2)).unwrap();
    }));
    assert!(r.is_err());
    // The lock was poisoned; the next writer takes it over.
    let mut w = t.writer();
    w.check_invariants().unwrap();
    assert_eq!(pages(&t)[0], before[0]);
    w.clear();
    assert!(w.is_empty());
    w.check_invariants().unwrap();
}

/// The reservation draws tables whatever value type: a `u64` large value is
/// a box made at the insert, which the reservation does not cover (the
/// documented limit), so that insert allocates exactly once.
#[test]
#[cfg_attr(miri, ignore = "about allocation counts, not unsafe code")]
fn a_reserved_large_insert_of_a_u64_allocates_its_box_only() {
    let t: sync::MemTable<u64> = sync::MemTable::new();
    let mut w = t.writer();
    w.reserve_insert(0x20_0000, L1).unwrap();
    let (r, n) = allocations(|| w.insert_at(0x20_0000, L1, u64::MAX).is_ok());
    assert_eq!((r, n), (true, 1));
}

thread_local! {
    /// Whether `Picky::from_bits` panics now.
    static PICKY: Cell<bool> = const { Cell::new(false) };
}

/// A value whose `from_bits` (the consumer's value code) panics on demand.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Picky(u8);

impl Atom for Picky {
    const BITS: u32 = 8;
    fn into_bits(self) -> u64 {
        self.0 as u64
    }
    fn from_bits(bits: u64) -> Self {
        assert!(!PICKY.get(), "the consumer's from_bits panics");
        Picky(bits as u8)
    }
}

/// A range removal never runs the consumer's value code (what it clears
/// is retired as stored), and `remove` makes the value it returns only
/// once the table is consistent again (counts kept, emptied tables
/// unlinked): a panicking `from_bits` loses the returned value, nothing
/// else.
#[test]
fn a_panic_in_value_code_leaves_the_table_consistent() {
    let t: sync::MemTable<Picky, Tiny, sync::Counted> = sync::MemTable::new();
    let mut w = t.writer();
    w.insert(0x1000, Picky(1)).unwrap();
    w.insert(0x2000, Picky(2)).unwrap();
    w.insert(0x5000, Picky(5)).unwrap(); // alone in its bottom table
    PICKY.set(true);
    w.remove_range(0x1000..0x3000).unwrap();
    let r = catch_unwind(AssertUnwindSafe(|| w.remove(0x5000)));
    PICKY.set(false);
    assert!(r.is_err(), "remove made its value, and from_bits panicked");
    w.check_invariants().unwrap();
    assert!(w.is_empty());
    drop(w);
    t.collect();
    let r = t.reclamation();
    assert_eq!(r.pending, 0, "{r:?}");
}
