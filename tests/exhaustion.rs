//! Running out of nodes, getting them back, and reserving them ahead.
//!
//! - For every operation that creates tables, the exact pool capacity it
//!   needs: with any less it fails with `OutOfNodes` (every time), hands the
//!   value back and changes nothing; with exactly that much it succeeds.
//! - Removing entries gives nodes back: a pool returns to full capacity, and
//!   a table's memory goes back to the allocator when it is dropped.
//! - Merging and removing never need a node.
//! - `reserve_insert` and `reserve_tables` make the later insert succeed
//!   without allocating (checked with a counting global allocator).

mod common;
#[path = "common/counting.rs"]
mod counting;

use counting::counted;

use common::{
    MemTable, ROOMY_POOL, TestBackend, cases, every_backend, holds_no_tables, pages, snapshot, table,
};
use mem_table::backend::{Arena, Heap, Pool};
use mem_table::{Error, ErrorKind, Level, LevelStats, X86_4Level};

const L0: Level = Level::BASE;
const L1: Level = Level::new(1);
const L2: Level = Level::new(2);

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
const GIB1: u64 = 0x4000_0000;
/// The region of one level-2 table (one root slot): 512 GiB.
const GIB512: u64 = 1 << 39;

type X86<B> = MemTable<u64, X86_4Level, B>;

// --- The exact capacity an operation needs ----------------------------------

/// A refused operation, whatever value type its error carries.
#[derive(Debug)]
struct Refused {
    kind: ErrorKind,
    level: Level,
    /// The value handed back, for operations that take one.
    value: Option<u64>,
}

impl From<Error<u64>> for Refused {
    fn from(e: Error<u64>) -> Refused {
        Refused { kind: e.kind(), level: e.level(), value: Some(e.into_value()) }
    }
}

impl From<Error> for Refused {
    fn from(e: Error) -> Refused {
        Refused { kind: e.kind(), level: e.level(), value: None }
    }
}

/// An operation that creates tables, on a table prepared by `setup`.
struct NeedsNodes {
    what: &'static str,
    setup: fn(&mut X86<Pool>),
    op: fn(&mut X86<Pool>) -> Result<(), Refused>,
    /// What the operation hands back when refused.
    value: Option<u64>,
    /// The pool capacity it needs, counted by hand from the shape the docs
    /// promise (one table per level on a path; the largest aligned pages
    /// for a range; one table per split).
    capacity: usize,
    /// Checks the result once the operation succeeded.
    done: fn(&X86<Pool>),
}

/// The highest node count of any level below the root.
fn most_nodes(levels: &[LevelStats]) -> usize {
    levels[..levels.len() - 1].iter().map(|l| l.nodes).max().unwrap_or(0)
}

fn pool_table(capacity: usize) -> X86<Pool> {
    MemTable::with_backend(Pool::new(capacity))
}

impl NeedsNodes {
    fn check(&self) {
        let what = self.what;
        // On a roomy pool: how many tables each level ends with.
        let mut roomy = pool_table(ROOMY_POOL);
        (self.setup)(&mut roomy);
        let before = most_nodes(roomy.stats().levels());
        (self.op)(&mut roomy).unwrap_or_else(|e| panic!("{what}: refused on a roomy pool: {e:?}"));
        (self.done)(&roomy);
        let after = roomy.stats();
        assert_eq!(most_nodes(after.levels()), self.capacity, "{what}: tables used, by hand and measured");
        assert!(before < self.capacity, "{what}: the setup alone must fit in less");

        // Any less: refused, every time, with nothing changed.
        for capacity in before..self.capacity {
            let mut t = pool_table(capacity);
            (self.setup)(&mut t);
            let was = snapshot(&t);
            for attempt in 1..=2 {
                let e = match (self.op)(&mut t) {
                    Ok(()) => panic!("{what}: succeeded with capacity {capacity} (attempt {attempt})"),
                    Err(e) => e,
                };
                assert_eq!(e.kind, ErrorKind::OutOfNodes, "{what}, capacity {capacity}: {e:?}");
                assert_eq!(e.value, self.value, "{what}: value handed back");
                assert!(
                    after.level(e.level.index()).nodes > capacity,
                    "{what}, capacity {capacity}: level {:?} reported, which did not run out: {after:?}",
                    e.level
                );
                assert_eq!(
                    snapshot(&t),
                    was,
                    "{what}, capacity {capacity}: table changed (attempt {attempt})"
                );
            }
        }

        // Exactly enough: the same result as with room to spare.
        let mut t = pool_table(self.capacity);
        (self.setup)(&mut t);
        (self.op)(&mut t).unwrap_or_else(|e| panic!("{what}: refused with the exact capacity: {e:?}"));
        (self.done)(&t);
        assert_eq!(snapshot(&t).entries, snapshot(&roomy).entries, "{what}");
        assert!(t.stats().levels()[..3].iter().any(|l| l.available == 0), "{what}: some level is now full");
    }
}

fn one_page(t: &mut X86<Pool>) {
    t.insert(KIB4, 1).unwrap();
}

#[test]
fn exact_capacity_insert() {
    let all = [
        NeedsNodes {
            what: "insert into an empty table",
            setup: |_| {},
            op: |t| Ok(t.insert(KIB4, 7).map(drop)?),
            value: Some(7),
            capacity: 1,
            done: |t| assert_eq!(t.get(KIB4), Some(&7)),
        },
        NeedsNodes {
            what: "insert on a new path below an existing level-2 table",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert(MIB2, 2).unwrap();
            },
            op: |t| Ok(t.insert(GIB1, 7).map(drop)?),
            value: Some(7),
            capacity: 3,
            done: |t| assert_eq!(t.get(GIB1), Some(&7)),
        },
        NeedsNodes {
            what: "insert on a whole new path",
            setup: one_page,
            op: |t| Ok(t.insert(GIB512 + KIB4, 7).map(drop)?),
            value: Some(7),
            capacity: 2,
            done: |t| assert_eq!(t.get(GIB512 + KIB4), Some(&7)),
        },
        NeedsNodes {
            what: "a vacant entry filled on a new path",
            setup: one_page,
            op: |t| match t.entry(GIB1) {
                Ok(mem_table::Entry::Vacant(v)) => Ok(v.try_insert(7).map(drop)?),
                _ => panic!("a vacant place"),
            },
            value: Some(7),
            capacity: 2,
            done: |t| assert_eq!(t.get(GIB1), Some(&7)),
        },
    ];
    for case in cases(&all) {
        case.check();
    }
}

#[test]
fn exact_capacity_insert_large() {
    let all = [
        NeedsNodes {
            what: "insert_at a 2 MiB page in a new level-1 table",
            setup: one_page,
            op: |t| Ok(t.insert_at(GIB1, L1, 7).map(drop)?),
            value: Some(7),
            capacity: 2,
            done: |t| assert_eq!(t.get_key_value(GIB1 + KIB4).map(|(p, v)| (p.level(), *v)), Some((L1, 7))),
        },
        NeedsNodes {
            what: "insert_at a 1 GiB page in a new level-2 table",
            setup: one_page,
            op: |t| Ok(t.insert_at(GIB512, L2, 7).map(drop)?),
            value: Some(7),
            capacity: 2,
            done: |t| assert_eq!(t.get_key_value(GIB512 + MIB2).map(|(p, v)| (p.level(), *v)), Some((L2, 7))),
        },
    ];
    for case in cases(&all) {
        case.check();
    }
}

#[test]
fn exact_capacity_split() {
    let all = [
        NeedsNodes {
            what: "split a 2 MiB page",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert_at(MIB2, L1, 5).unwrap();
            },
            op: |t| Ok(t.split(MIB2, L1)?),
            value: None,
            capacity: 2,
            done: |t| assert_eq!(t.len(), 1 + 512),
        },
        NeedsNodes {
            what: "split a 1 GiB page",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert_at(GIB1, L2, 5).unwrap();
            },
            op: |t| Ok(t.split(GIB1, L2)?),
            value: None,
            capacity: 2,
            done: |t| assert_eq!(t.len(), 1 + 512),
        },
    ];
    for case in cases(&all) {
        case.check();
    }
}

#[test]
fn exact_capacity_insert_range() {
    let all = [
        NeedsNodes {
            what: "insert_range across a 1 GiB boundary",
            setup: one_page,
            // 4 KiB at the end of the first GiB, two 2 MiB pages, 4 KiB after.
            op: |t| Ok(t.insert_range(GIB1 - KIB4..GIB1 + 2 * MIB2 + KIB4, 7)?),
            value: Some(7),
            capacity: 3,
            done: |t| {
                let want = [(KIB4, 0), (GIB1 - KIB4, 0), (GIB1, 1), (GIB1 + MIB2, 1), (GIB1 + 2 * MIB2, 0)];
                assert_eq!(pages(t), want);
            },
        },
        NeedsNodes {
            what: "insert_range across a 512 GiB boundary",
            setup: one_page,
            op: |t| Ok(t.insert_range(GIB512 - 2 * KIB4..GIB512 + 2 * KIB4, 7)?),
            value: Some(7),
            capacity: 3,
            done: |t| assert_eq!(t.len(), 5),
        },
        NeedsNodes {
            what: "insert_range splitting a 2 MiB page at its edge",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert_at(MIB2, L1, 5).unwrap();
            },
            op: |t| Ok(t.insert_range(MIB2 - KIB4..MIB2 + KIB4, 7)?),
            value: Some(7),
            capacity: 2,
            done: |t| {
                assert_eq!(t.get(MIB2), Some(&7));
                assert_eq!(t.get(MIB2 + KIB4), Some(&5));
                assert_eq!(t.len(), 2 + 512);
            },
        },
    ];
    for case in cases(&all) {
        case.check();
    }
}

#[test]
fn exact_capacity_remove_range() {
    let all = [
        NeedsNodes {
            what: "remove_range cutting a 2 MiB page",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert_at(MIB2, L1, 5).unwrap();
            },
            op: |t| Ok(t.remove_range(MIB2 + KIB4..MIB2 + 2 * KIB4)?),
            value: None,
            capacity: 2,
            done: |t| {
                assert_eq!(t.get(MIB2 + KIB4), None);
                assert_eq!(t.len(), 1 + 511);
            },
        },
        NeedsNodes {
            what: "remove_range cutting a 1 GiB page at both ends",
            setup: |t| {
                t.insert(KIB4, 1).unwrap();
                t.insert_at(GIB1, L2, 5).unwrap();
            },
            op: |t| Ok(t.remove_range(GIB1 + KIB4..2 * GIB1 - KIB4)?),
            value: None,
            capacity: 3,
            done: |t| assert_eq!(pages(t), [(KIB4, 0), (GIB1, 0), (2 * GIB1 - KIB4, 0)]),
        },
    ];
    for case in cases(&all) {
        case.check();
    }
}

// --- Nodes come back ---------------------------------------------------------

/// A table with base pages under several bottom tables, 2 MiB and 1 GiB
/// entries, under two level-2 tables.
fn spread<B: TestBackend>() -> X86<B> {
    let mut t = table();
    for (i, addr) in
        [KIB4, 9 * KIB4, MIB2, 3 * MIB2 + KIB4, GIB1 + KIB4, GIB512 + KIB4].into_iter().enumerate()
    {
        t.insert(addr, i as u64).unwrap();
    }
    t.insert_at(5 * MIB2, L1, 10).unwrap();
    t.insert_at(2 * GIB1, L2, 11).unwrap();
    t.insert_at(GIB512 + GIB1 + MIB2, L1, 12).unwrap();
    assert!(!holds_no_tables(&t.stats()));
    t
}

fn emptying_frees_every_table_on<B: TestBackend>() {
    let mut t = spread::<B>();
    let pages: Vec<_> = t.keys().collect();
    for p in pages {
        t.remove_at(p.addr(), p.level()).unwrap().expect("an entry");
    }
    assert!(holds_no_tables(&t.stats()), "remove: {:?}", t.stats());

    let mut t = spread::<B>();
    t.remove_range(..).unwrap();
    assert!(t.is_empty());
    assert!(holds_no_tables(&t.stats()), "remove_range: {:?}", t.stats());

    let mut t = spread::<B>();
    t.remove_range(0..2 * GIB1 + MIB2).unwrap(); // cuts the 1 GiB page
    t.remove_range(2 * GIB1..GIB512 + GIB1 + 2 * MIB2).unwrap();
    assert!(t.is_empty());
    assert!(holds_no_tables(&t.stats()), "remove_range in pieces: {:?}", t.stats());

    let mut t = spread::<B>();
    t.clear();
    assert!(holds_no_tables(&t.stats()), "clear: {:?}", t.stats());

    let mut t = spread::<B>();
    t.retain(|_, _| false);
    assert!(holds_no_tables(&t.stats()), "retain: {:?}", t.stats());

    let mut t = spread::<B>();
    while t.pop_first().is_some() {}
    assert!(holds_no_tables(&t.stats()), "pop_first: {:?}", t.stats());
    t.check_invariants().unwrap();
}

#[test]
fn emptying_frees_every_table() {
    every_backend(
        emptying_frees_every_table_on::<Heap>,
        emptying_frees_every_table_on::<Arena>,
        emptying_frees_every_table_on::<Pool>,
    );
}

fn drop_returns_memory_on<B: TestBackend>() {
    let ((), allocations, held) = counted(|| {
        let mut t = spread::<B>();
        t.split(2 * GIB1, L2).unwrap();
        t.remove_range(KIB4..2 * KIB4).unwrap();
        drop(t);
    });
    assert!(allocations > 0, "the counter counts");
    assert_eq!(held, 0, "{}: bytes still allocated after the table was dropped", B::NAME);
    let ((), _, held) = counted(|| {
        let mut it = spread::<B>().into_iter();
        it.nth(2).expect("a third entry");
    });
    assert_eq!(held, 0, "{}: bytes still allocated after a dropped IntoIter", B::NAME);
}

#[test]
fn drop_returns_memory() {
    every_backend(
        drop_returns_memory_on::<Heap>,
        drop_returns_memory_on::<Arena>,
        drop_returns_memory_on::<Pool>,
    );
}

#[test]
fn pool_for_one_path_moves_elsewhere() {
    let far = GIB512 * 3 + GIB1 * 5 + MIB2 * 7;
    let mut t = pool_table(1);
    t.insert(KIB4, 1).unwrap();
    assert_eq!(t.insert(far, 2).unwrap_err().kind(), ErrorKind::OutOfNodes);
    t.remove(KIB4).unwrap();
    t.insert(far, 2).unwrap();
    assert_eq!(t.insert(KIB4, 1).unwrap_err().into_value(), 1);
    t.remove_range(far..far + KIB4).unwrap();
    t.insert_at(GIB1, L1, 3).unwrap();
    t.clear();
    let e = t.insert_range(far - KIB4..far + KIB4, 4).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::OutOfNodes, "two bottom tables");
    t.insert_range(far..far + 2 * KIB4, 4).unwrap();
    assert_eq!(t.len(), 2);
    t.retain(|_, _| false);
    t.insert_at(0, L2, 5).unwrap();
    t.split(0, L2).unwrap();
    assert_eq!(t.len(), 512);
    t.check_invariants().unwrap();
}

#[test]
fn merge_and_remove_need_no_node() {
    // Every level below the root full.
    let mut t = pool_table(1);
    for i in 0..512 {
        t.insert(i * KIB4, 7).unwrap();
    }
    assert!(t.stats().levels()[..3].iter().all(|l| l.available == 0), "{:?}", t.stats());
    let full = snapshot(&t).levels;
    t.merge(0, L1).unwrap();
    assert_eq!(t.stats().level(0).available, 1);
    t.split(0, L1).unwrap(); // takes it back

    // Entries of 2 MiB fill the level-1 table; its parent is full too.
    let mut big = pool_table(1);
    for i in 0..512 {
        big.insert_at(GIB1 + i * MIB2, L1, 8).unwrap();
    }
    assert_eq!(big.stats().level(1).available, 0);
    big.merge(GIB1, L2).unwrap();
    assert_eq!(big.len(), 1);

    // Removals of every kind, on a full pool.
    assert_eq!(snapshot(&t).levels, full);
    t.remove(5 * KIB4).unwrap().expect("an entry");
    t.remove_range(8 * KIB4..16 * KIB4).unwrap();
    t.retain(|p, _| p.addr() != KIB4);
    assert_eq!(t.len(), 512 - 10);
    t.insert(5 * KIB4, 7).unwrap();
    t.insert(KIB4, 7).unwrap();
    t.insert_range(8 * KIB4..16 * KIB4, 7).unwrap();
    assert_eq!(t.compact(), 1);
    assert_eq!(t.len(), 1);
    t.remove_covering(0).expect("the merged entry");
    assert!(holds_no_tables(&t.stats()));
}

// --- Reservation -------------------------------------------------------------

fn reserve_insert_on<B: TestBackend>() {
    let mut t = table::<u64, X86_4Level, B>();
    t.insert(KIB4, 1).unwrap();

    // Without a reservation an insert on a new path allocates: the counter
    // sees it (or, on a pool, nothing ever allocates).
    let (r, allocations, _) = counted(|| t.insert(GIB512 + KIB4, 2));
    r.unwrap();
    assert_eq!(allocations > 0, B::NAME != "pool", "{}: allocations {allocations}", B::NAME);

    for (addr, level) in [(GIB1, L0), (2 * GIB1, L1), (2 * GIB512, L2), (3 * GIB512 + MIB2, L0)] {
        t.reserve_insert(addr, level).unwrap();
        let (r, allocations, _) = counted(|| t.insert_at(addr, level, 3));
        assert_eq!(r.unwrap(), None);
        assert_eq!(allocations, 0, "{}: insert at {addr:#x} ({level:?}) allocated after reserve", B::NAME);
    }
    // Reserving twice, or for a place that needs nothing, is fine.
    t.reserve_insert(4 * GIB512, L0).unwrap();
    t.reserve_insert(4 * GIB512, L0).unwrap();
    t.reserve_insert(KIB4, L0).unwrap();
    let (_, allocations, _) = counted(|| {
        t.insert(4 * GIB512, 4).unwrap();
        t.insert(KIB4, 5).unwrap();
    });
    assert_eq!(allocations, 0, "{}", B::NAME);
    t.check_invariants().unwrap();
}

#[test]
fn reserve_insert() {
    every_backend(reserve_insert_on::<Heap>, reserve_insert_on::<Arena>, reserve_insert_on::<Pool>);
}

fn reserve_tables_on<B: TestBackend>() {
    let mut t = table::<u64, X86_4Level, B>();
    t.insert(KIB4, 1).unwrap();
    t.reserve_tables(L0, 3).unwrap();
    t.reserve_tables(L1, 2).unwrap();
    let (_, allocations, _) = counted(|| {
        // Three new bottom tables under the existing level-1 table.
        for i in 1..4 {
            t.insert(i * MIB2, i).unwrap();
        }
        // Two new level-1 tables, for large entries.
        t.insert_at(GIB1, L1, 4).unwrap();
        t.insert_at(2 * GIB1, L1, 5).unwrap();
    });
    assert_eq!(allocations, 0, "{}: inserts allocated after reserve_tables", B::NAME);
    assert_eq!(t.len(), 6);
    t.check_invariants().unwrap();
}

#[test]
fn reserve_tables() {
    every_backend(reserve_tables_on::<Heap>, reserve_tables_on::<Arena>, reserve_tables_on::<Pool>);
}

#[test]
fn reservation_on_a_pool_checks_what_is_free() {
    let mut t = pool_table(2);
    t.insert(KIB4, 1).unwrap();
    let was = snapshot(&t);
    // One table free per level; the insert at 1 GiB needs one at levels 0
    // and 1. Reservations add up: nothing more fits at those levels.
    t.reserve_insert(GIB1, L0).unwrap();
    t.reserve_tables(L2, 1).unwrap();
    assert_eq!(snapshot(&t), was, "a pool reserves by checking");

    for e in [t.reserve_tables(L0, 1).unwrap_err(), t.reserve_tables(L1, 5).unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::OutOfNodes);
        assert_eq!(snapshot(&t), was);
    }
    assert_eq!(t.reserve_tables(L1, 5).unwrap_err().level(), L1);
    // A failed reservation added nothing: the reserved insert still fits.
    t.insert(GIB1, 2).unwrap();
    let e = t.reserve_insert(GIB512, L0).unwrap_err();
    assert_eq!((e.kind(), e.addr()), (ErrorKind::OutOfNodes, GIB512));
    assert_eq!(t.insert(GIB512, 3).unwrap_err().kind(), ErrorKind::OutOfNodes);
    assert_eq!(t.stats().level(0).available, 0);
    assert_eq!(t.stats().level(0).capacity, Some(2));
}
