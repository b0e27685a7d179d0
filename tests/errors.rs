//! Bad input: one test per error path. Each checks the kind, the address and
//! level reported, the value handed back, and that the table is exactly as it
//! was (length, entries, node statistics, pending changes). Every test runs on
//! every backend (under Miri, on the heap and with the first of each list of
//! cases only: see `common::every_backend` and `common::cases`).

mod common;

use std::fmt::Debug;

use common::{MemTable, NoSplitBelow, TestBackend, Tiny, cases, every_backend, snapshot, table};
use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::ops::{Children, FnOps, SplitByClone};
use mem_table::{Error, ErrorKind, Geometry, Level, X86_4Level};

const L0: Level = Level::BASE;
const L1: Level = Level::new(1);
const L2: Level = Level::new(2);
const L3: Level = Level::new(3);
const L4: Level = Level::new(4);

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
const GIB1: u64 = 0x4000_0000;
/// The first address past the reach of x86 4-level paging.
const REACH: u64 = 1 << 48;

/// A value no table holds: what a refused operation must hand back.
const REJECTED: u64 = 0xdead;

type X86<B> = MemTable<u64, X86_4Level, B>;

/// An x86 table with base, 2 MiB and 1 GiB entries, some of them with
/// pending change marks and some without.
///
/// | address | entry |
/// |---|---|
/// | 0x1000, 0x2000 | base pages |
/// | 0x20_0000 | 2 MiB |
/// | 0x4000_0000 | 1 GiB |
/// | 0x8000_1000 | base page |
/// | 0xc020_0000 | 2 MiB |
fn populated<B: TestBackend>() -> X86<B> {
    let mut t = table();
    t.insert(KIB4, 1).unwrap();
    t.insert(2 * KIB4, 2).unwrap();
    t.insert_at(MIB2, L1, 3).unwrap();
    t.insert_at(GIB1, L2, 4).unwrap();
    t.insert(2 * GIB1 + KIB4, 5).unwrap();
    assert!(t.take_changes().count() > 0);
    t.insert(2 * KIB4, 22).unwrap();
    t.insert_at(3 * GIB1 + MIB2, L1, 6).unwrap();
    t
}

/// A table under test, and the snapshot a refused operation must leave it
/// matching: taken when first needed after each change, so that a run of
/// refusals costs one snapshot each, not two.
struct Watched<V, G: Geometry, B: Backend> {
    table: MemTable<V, G, B>,
    was: Option<common::Snapshot<V>>,
}

impl<V: Clone + PartialEq + Debug, G: Geometry, B: Backend> Watched<V, G, B> {
    fn new(table: MemTable<V, G, B>) -> Self {
        Watched { table, was: None }
    }

    /// The table, to change it.
    fn table(&mut self) -> &mut MemTable<V, G, B> {
        self.was = None;
        &mut self.table
    }

    /// Runs `op`, which must fail, and checks that it left the table exactly
    /// as it was. Returns the error.
    #[track_caller]
    fn refused<R: Debug, T>(
        &mut self,
        op: impl FnOnce(&mut MemTable<V, G, B>) -> Result<R, Error<T>>,
    ) -> Error<T> {
        let was = self.was.take().unwrap_or_else(|| snapshot(&self.table));
        let err = match op(&mut self.table) {
            Ok(r) => panic!("expected an error, got Ok({r:?})"),
            Err(e) => e,
        };
        let now = snapshot(&self.table);
        assert_eq!(now, was, "the refused operation ({err:?}) changed the table");
        self.was = Some(now);
        err
    }
}

impl<V, G: Geometry, B: Backend> std::ops::Deref for Watched<V, G, B> {
    type Target = MemTable<V, G, B>;
    fn deref(&self) -> &MemTable<V, G, B> {
        &self.table
    }
}

/// Checks what an error reports.
#[track_caller]
fn check<T>(err: &Error<T>, kind: ErrorKind, addr: u64, level: Level) {
    assert_eq!((err.kind(), err.addr(), err.level()), (kind, addr, level), "reported: {err:?}");
}

/// Checks what an error reports and that it hands back [`REJECTED`].
#[track_caller]
fn check_value(err: Error<u64>, kind: ErrorKind, addr: u64, level: Level) {
    check(&err, kind, addr, level);
    assert_eq!(*err.value(), REJECTED);
    assert_eq!(err.into_value(), REJECTED);
}

fn misaligned_on<B: TestBackend>() {
    use ErrorKind::Misaligned;
    let mut t = Watched::new(populated::<B>());
    for &addr in cases(&[KIB4 + 1, KIB4 + 0x800, KIB4 + 0xfff]) {
        let e = t.refused(|t| t.insert(addr, REJECTED));
        check_value(e, Misaligned, addr, L0);
        let e = t.refused(|t| t.remove(addr));
        check(&e, Misaligned, addr, L0);
        let e = t.refused(|t| t.entry(addr).map(|_| ()));
        check(&e, Misaligned, addr, L0);
        let e = t.refused(|t| t.reserve_insert(addr, L0));
        check(&e, Misaligned, addr, L0);
    }
    // Base-aligned but not aligned to a large page.
    for &(addr, level) in
        cases(&[(KIB4, L1), (MIB2 / 2, L1), (MIB2 + KIB4, L1), (MIB2, L2), (GIB1 + MIB2, L2)])
    {
        let e = t.refused(|t| t.insert_at(addr, level, REJECTED));
        check_value(e, Misaligned, addr, level);
        let e = t.refused(|t| t.entry_at(addr, level).map(|_| ()));
        check(&e, Misaligned, addr, level);
        let e = t.refused(|t| t.reserve_insert(addr, level));
        check(&e, Misaligned, addr, level);
        let e = t.refused(|t| t.split(addr, level));
        check(&e, Misaligned, addr, level);
        let e = t.refused(|t| t.merge(addr, level));
        check(&e, Misaligned, addr, level);
    }
}

#[test]
fn misaligned() {
    every_backend(misaligned_on::<Heap>, misaligned_on::<Arena>, misaligned_on::<Pool>);
}

fn out_of_reach_on<B: TestBackend>() {
    use ErrorKind::OutOfReach;
    let mut t = Watched::new(populated::<B>());
    for &addr in cases(&[REACH, REACH + MIB2, 1 << 63, !0xfff]) {
        let e = t.refused(|t| t.insert(addr, REJECTED));
        check_value(e, OutOfReach, addr, L0);
        let e = t.refused(|t| t.remove(addr));
        check(&e, OutOfReach, addr, L0);
        let e = t.refused(|t| t.entry(addr).map(|_| ()));
        check(&e, OutOfReach, addr, L0);
    }
    for &level in cases(&[L1, L2]) {
        let e = t.refused(|t| t.insert_at(REACH, level, REJECTED));
        check_value(e, OutOfReach, REACH, level);
        let e = t.refused(|t| t.reserve_insert(REACH, level));
        check(&e, OutOfReach, REACH, level);
        let e = t.refused(|t| t.split(REACH, level));
        check(&e, OutOfReach, REACH, level);
        let e = t.refused(|t| t.merge(REACH, level));
        check(&e, OutOfReach, REACH, level);
    }
    assert_eq!(t.get(REACH), None);

    // The boundary is exact: the last page in reach is fine.
    t.table().insert(REACH - KIB4, 7).unwrap();
    t.table().insert_at(REACH - 2 * GIB1, L2, 8).unwrap();
    assert_eq!(t.get(REACH - 1), Some(&7));
    assert_eq!(t.get(REACH - GIB1 - 1), Some(&8));

    // The same in a geometry that reaches only 2 MiB.
    let mut tiny = Watched::new(table::<u64, Tiny, B>());
    tiny.table().insert((1 << 21) - KIB4, 1).unwrap();
    let e = tiny.refused(|t| t.insert(1 << 21, REJECTED));
    check_value(e, OutOfReach, 1 << 21, L0);
    let e = tiny.refused(|t| t.insert_at(1 << 21, L1, REJECTED));
    check_value(e, OutOfReach, 1 << 21, L1);
}

#[test]
fn out_of_reach() {
    every_backend(out_of_reach_on::<Heap>, out_of_reach_on::<Arena>, out_of_reach_on::<Pool>);
}

fn no_entries_at_level_on<B: TestBackend>() {
    use ErrorKind::NoEntriesAtLevel;
    let mut t = Watched::new(populated::<B>());
    // Level 3 is the x86 root, which holds only tables; level 4 and up do
    // not exist.
    for &level in cases(&[L3, L4, Level::new(7), Level::new(8), Level::new(255)]) {
        let e = t.refused(|t| t.insert_at(0, level, REJECTED));
        check_value(e, NoEntriesAtLevel, 0, level);
        let e = t.refused(|t| t.entry_at(0, level).map(|_| ()));
        check(&e, NoEntriesAtLevel, 0, level);
        let e = t.refused(|t| t.reserve_insert(0, level));
        check(&e, NoEntriesAtLevel, 0, level);
        let e = t.refused(|t| t.split(0, level));
        check(&e, NoEntriesAtLevel, 0, level);
        let e = t.refused(|t| t.merge(0, level));
        check(&e, NoEntriesAtLevel, 0, level);
        // The root level is never reserved: it always exists.
        let e = t.refused(|t| t.reserve_tables(level, 1));
        assert_eq!(e.kind(), NoEntriesAtLevel, "{e:?}");
        assert_eq!(e.level(), level);
    }

    // The tiny geometry's root level holds no entries either.
    let mut tiny = Watched::new(table::<u64, Tiny, B>());
    tiny.table().insert(0, 1).unwrap();
    let e = tiny.refused(|t| t.insert_at(0, L2, REJECTED));
    check_value(e, NoEntriesAtLevel, 0, L2);

    // A level-2 entry whose level below holds no entries cannot be split:
    // not explicitly, nor at the edge of a range.
    let mut t = Watched::new(table::<u64, NoSplitBelow, B>());
    let big = NoSplitBelow::page_size(L2).unwrap();
    t.table().insert_at(big, L2, 1).unwrap();
    t.table().insert(0, 2).unwrap();
    let e = t.refused(|t| t.split(big, L2));
    check(&e, NoEntriesAtLevel, big, L1);
    let (lo, end) = (big + KIB4, big + 2 * KIB4);
    let e = t.refused(|t| t.insert_range(lo..end, REJECTED));
    assert_eq!((e.kind(), e.level()), (NoEntriesAtLevel, L1), "{e:?}");
    assert!(e.addr() == lo || e.addr() == big, "{e:?}");
    assert_eq!(e.into_value(), REJECTED);
    let e = t.refused(|t| t.remove_range(lo..end));
    assert_eq!((e.kind(), e.level()), (NoEntriesAtLevel, L1), "{e:?}");
    assert!(e.addr() == lo || e.addr() == big, "{e:?}");
    // A range that covers the whole entry needs no split.
    t.table().remove_range(big..2 * big).unwrap();
    assert_eq!(t.len(), 1);
}

#[test]
fn no_entries_at_level() {
    every_backend(
        no_entries_at_level_on::<Heap>,
        no_entries_at_level_on::<Arena>,
        no_entries_at_level_on::<Pool>,
    );
}

fn conflict_larger_on<B: TestBackend>() {
    use ErrorKind::ConflictLarger;
    let mut t = Watched::new(populated::<B>());
    // Base pages inside the 2 MiB entry at 0x20_0000: first, middle, last.
    for &addr in cases(&[MIB2, MIB2 + KIB4, 2 * MIB2 - KIB4]) {
        let e = t.refused(|t| t.insert(addr, REJECTED));
        check_value(e, ConflictLarger, MIB2, L1);
        let e = t.refused(|t| t.entry(addr).map(|_| ()));
        check(&e, ConflictLarger, MIB2, L1);
        let e = t.refused(|t| t.reserve_insert(addr, L0));
        check(&e, ConflictLarger, MIB2, L1);
        // `remove` takes a base page: it never removes the large entry.
        let e = t.refused(|t| t.remove(addr));
        check(&e, ConflictLarger, MIB2, L1);
    }
    // Base pages and 2 MiB pages inside the 1 GiB entry at 0x4000_0000.
    for &addr in cases(&[GIB1, GIB1 + KIB4, 2 * GIB1 - KIB4]) {
        let e = t.refused(|t| t.insert(addr, REJECTED));
        check_value(e, ConflictLarger, GIB1, L2);
    }
    for &addr in cases(&[GIB1, GIB1 + MIB2, 2 * GIB1 - MIB2]) {
        let e = t.refused(|t| t.insert_at(addr, L1, REJECTED));
        check_value(e, ConflictLarger, GIB1, L2);
        let e = t.refused(|t| t.entry_at(addr, L1).map(|_| ()));
        check(&e, ConflictLarger, GIB1, L2);
        // A 2 MiB page to split or merge inside the 1 GiB entry.
        let e = t.refused(|t| t.split(addr, L1));
        check(&e, ConflictLarger, GIB1, L2);
        let e = t.refused(|t| t.merge(addr, L1));
        check(&e, ConflictLarger, GIB1, L2);
        let e = t.refused(|t| t.remove_at(addr, L1));
        check(&e, ConflictLarger, GIB1, L2);
    }
}

#[test]
fn conflict_larger() {
    every_backend(conflict_larger_on::<Heap>, conflict_larger_on::<Arena>, conflict_larger_on::<Pool>);
}

fn conflict_smaller_on<B: TestBackend>() {
    use ErrorKind::ConflictSmaller;
    let mut t = Watched::new(populated::<B>());
    // 2 MiB over the base pages at 0x1000 and 0x2000.
    let e = t.refused(|t| t.insert_at(0, L1, REJECTED));
    check_value(e, ConflictSmaller, 0, L1);
    let e = t.refused(|t| t.entry_at(0, L1).map(|_| ()));
    check(&e, ConflictSmaller, 0, L1);
    let e = t.refused(|t| t.reserve_insert(0, L1));
    check(&e, ConflictSmaller, 0, L1);
    // 1 GiB over base pages, over a 2 MiB entry, over both.
    for &addr in cases(&[2 * GIB1, 3 * GIB1, 0]) {
        let e = t.refused(|t| t.insert_at(addr, L2, REJECTED));
        check_value(e, ConflictSmaller, addr, L2);
    }
}

#[test]
fn conflict_smaller() {
    every_backend(conflict_smaller_on::<Heap>, conflict_smaller_on::<Arena>, conflict_smaller_on::<Pool>);
}

fn nothing_to_split_on<B: TestBackend>() {
    use ErrorKind::NothingToSplit;
    let mut empty = Watched::new(table::<u64, X86_4Level, B>());
    for &(addr, level) in cases(&[(0, L1), (MIB2, L1), (GIB1, L2), (KIB4, L0)]) {
        let e = empty.refused(|t| t.split(addr, level));
        check(&e, NothingToSplit, addr, level);
    }
    let mut t = Watched::new(populated::<B>());
    let places = [
        (0, L1),        // a table of base pages
        (0, L2),        // a table holding base pages and a 2 MiB entry
        (2 * GIB1, L2), // a table of base pages, one level further up
        (3 * MIB2, L1), // an empty slot of an existing table
        (4 * GIB1, L2), // nothing at all
        (KIB4, L0),     // a base entry: nothing below the base level
        (2 * KIB4, L0), //
        (3 * GIB1, L2), // a table holding a 2 MiB entry
    ];
    for &(addr, level) in cases(&places) {
        let e = t.refused(|t| t.split(addr, level));
        check(&e, NothingToSplit, addr, level);
    }
    // With `split_with` too, without calling the ops.
    let mut ops = FnOps::new(
        |_, _: &u64, _| -> u64 { panic!("split called") },
        |_, _: Children<'_, '_, u64>| -> Option<u64> { panic!("merge called") },
    );
    let e = t.refused(|t| t.split_with(0, L1, &mut ops));
    check(&e, NothingToSplit, 0, L1);
}

#[test]
fn nothing_to_split() {
    every_backend(nothing_to_split_on::<Heap>, nothing_to_split_on::<Arena>, nothing_to_split_on::<Pool>);
}

fn not_mergeable_on<B: TestBackend>() {
    use ErrorKind::NotMergeable;
    let mut empty = Watched::new(table::<u64, X86_4Level, B>());
    let e = empty.refused(|t| t.merge(MIB2, L1));
    check(&e, NotMergeable, MIB2, L1);

    let mut t = Watched::new(populated::<B>());
    // An empty slot, a large entry (nothing below it), a base entry.
    for &(addr, level) in cases(&[(3 * MIB2, L1), (4 * GIB1, L2), (MIB2, L1), (GIB1, L2), (KIB4, L0)]) {
        let e = t.refused(|t| t.merge(addr, level));
        check(&e, NotMergeable, addr, level);
    }

    // A table that is not full: 511 equal pages of 512.
    let partial = 4 * MIB2;
    t.table().insert_range(partial + KIB4..partial + MIB2, 9).unwrap();
    assert_eq!(t.range(partial..partial + MIB2).count(), 511);
    let e = t.refused(|t| t.merge(partial, L1));
    check(&e, NotMergeable, partial, L1);

    // A full table whose children differ: one page of 512.
    let differs = 5 * MIB2;
    t.table().insert_range(differs..differs + MIB2, 9).unwrap();
    t.table().split(differs, L1).unwrap();
    t.table().insert(differs + 100 * KIB4, 10).unwrap();
    let e = t.refused(|t| t.merge(differs, L1));
    check(&e, NotMergeable, differs, L1);

    // A full table one of whose children is a table: 1 GiB split into 512
    // equal 2 MiB entries, one of them split again.
    let region = 5 * GIB1;
    t.table().insert_at(region, L2, 11).unwrap();
    t.table().split(region, L2).unwrap();
    t.table().split(region + MIB2, L1).unwrap();
    let e = t.refused(|t| t.merge(region, L2));
    check(&e, NotMergeable, region, L2);

    // The ops decline: a full table of equal pages, merged by ops that say no.
    let e = t.refused(|t| t.merge_with(region + MIB2, L1, &mut SplitByClone));
    check(&e, NotMergeable, region + MIB2, L1);
    let mut seen = 0;
    let mut declines = FnOps::new(
        |_, v: &u64, _| *v,
        |_, children: Children<'_, '_, u64>| {
            seen = children.count();
            None
        },
    );
    let e = t.refused(|t| t.merge_with(region + MIB2, L1, &mut declines));
    check(&e, NotMergeable, region + MIB2, L1);
    assert_eq!(seen, 512, "the ops saw every child");

    // The same places merge once nothing is in the way.
    t.table().merge(region + MIB2, L1).unwrap();
    t.table().merge(region, L2).unwrap();
    assert_eq!(t.get_key_value(region + 3 * KIB4).map(|(p, v)| (p.level(), *v)), Some((L2, 11)));
    t.table().insert(differs + 100 * KIB4, 9).unwrap();
    t.table().merge(differs, L1).unwrap();
    t.check_invariants().unwrap();
}

#[test]
fn not_mergeable() {
    every_backend(not_mergeable_on::<Heap>, not_mergeable_on::<Arena>, not_mergeable_on::<Pool>);
}

fn range_errors_on<B: TestBackend>() {
    use ErrorKind::{EmptyRange, Misaligned, OutOfReach};
    use std::ops::Bound::{Excluded, Included, Unbounded};
    let mut t = Watched::new(populated::<B>());

    // Empty or reversed: reported at the range's start.
    let empty = [
        (Included(0x2000), Excluded(0x2000)),
        (Included(0x3000), Excluded(0x2000)),
        (Included(0x2000), Included(0x1fff)),
        (Included(0), Excluded(0)),
        (Unbounded, Excluded(0)),
        (Included(MIB2), Excluded(0)),
    ];
    for &range in cases(&empty) {
        let start = match range.0 {
            Included(a) => a,
            _ => 0,
        };
        let e = t.refused(|t| t.insert_range(range, REJECTED));
        check_value(e, EmptyRange, start, L0);
        let e = t.refused(|t| t.remove_range(range));
        check(&e, EmptyRange, start, L0);
    }

    // Misaligned bounds: reported at the offending bound.
    let misaligned = [
        (Included(0x1001), Excluded(0x3000), 0x1001),
        (Included(0x1000), Excluded(0x2fff), 0x2fff),
        (Included(0x1fff), Excluded(0x3000), 0x1fff),
        (Included(0x1000), Excluded(MIB2 + 1), MIB2 + 1),
        (Excluded(0x1000), Excluded(0x3000), 0x1001),
    ];
    for &(lo, hi, at) in cases(&misaligned) {
        let e = t.refused(|t| t.insert_range((lo, hi), REJECTED));
        check_value(e, Misaligned, at, L0);
        let e = t.refused(|t| t.remove_range((lo, hi)));
        check(&e, Misaligned, at, L0);
    }
    // An inclusive end must be the last byte of a page; whether the error
    // names that bound or the exclusive end after it, it is one of the two.
    for &range in cases(&[(Included(0x1000), Included(0x2000)), (Included(0x1000), Included(0x2ffe))]) {
        let Included(end) = range.1 else { unreachable!() };
        let e = t.refused(|t| t.insert_range(range, REJECTED));
        assert_eq!((e.kind(), e.level()), (Misaligned, L0), "{e:?}");
        assert!(e.addr() == end || e.addr() == end + 1, "{e:?}");
        assert_eq!(e.into_value(), REJECTED);
        let e = t.refused(|t| t.remove_range(range));
        assert_eq!(e.kind(), Misaligned, "{e:?}");
        assert!(e.addr() == end || e.addr() == end + 1, "{e:?}");
    }

    // Past the reach: the end is out of reach, wherever the start is.
    let far = [
        (Included(0x1000), Excluded(REACH + 0x1000)),
        (Included(REACH - KIB4), Excluded(REACH + KIB4)),
        (Included(0), Included(u64::MAX)),
        (Included(REACH), Excluded(REACH + KIB4)),
        (Unbounded, Excluded(REACH + GIB1)),
    ];
    for &range in cases(&far) {
        let e = t.refused(|t| t.insert_range(range, REJECTED));
        assert_eq!((e.kind(), e.level()), (OutOfReach, L0), "{e:?}");
        assert!(e.addr() >= REACH, "an address out of reach: {e:?}");
        assert_eq!(e.into_value(), REJECTED);
        let e = t.refused(|t| t.remove_range(range));
        assert_eq!(e.kind(), OutOfReach, "{e:?}");
        assert!(e.addr() >= REACH, "an address out of reach: {e:?}");
    }

    // The boundaries themselves are fine: up to the last page in reach, and
    // the whole reach of a small geometry.
    t.table().insert_range(REACH - 2 * KIB4..REACH, 3).unwrap();
    assert_eq!(t.get(REACH - 1), Some(&3));
    t.table().remove_range(REACH - 2 * KIB4..=REACH - 1).unwrap();
    assert_eq!(t.get(REACH - 1), None);
    let mut tiny = Watched::new(table::<u64, Tiny, B>());
    tiny.table().insert_range(.., 1).unwrap();
    assert_eq!(tiny.len(), 64, "the whole 2 MiB reach as 32 KiB entries");
    tiny.table().remove_range(..).unwrap();
    assert!(tiny.is_empty());
}

#[test]
fn range_errors() {
    every_backend(range_errors_on::<Heap>, range_errors_on::<Arena>, range_errors_on::<Pool>);
}

/// Only a pool runs out of nodes in a test: a bounded number per level.
#[test]
fn exhausted_pool() {
    use ErrorKind::OutOfNodes;

    // One path: every level below the root is full.
    let mut t = Watched::new(X86::with_backend(Pool::new(1)));
    t.table().insert(KIB4, 1).unwrap();
    t.table().insert_at(MIB2, L1, 2).unwrap(); // same tables: needs none
    t.table().insert_at(GIB1, L2, 3).unwrap(); // same tables: needs none
    assert!(t.stats().levels()[..3].iter().all(|l| l.available == 0));

    // A new bottom table.
    let e = t.refused(|t| t.insert(3 * MIB2, REJECTED));
    check_value(e, OutOfNodes, 3 * MIB2, L0);
    let e = t.refused(|t| t.split(MIB2, L1));
    check(&e, OutOfNodes, MIB2, L0);
    let e = t.refused(|t| t.remove_range(MIB2..MIB2 + KIB4));
    check(&e, OutOfNodes, MIB2, L0);
    let e = t.refused(|t| t.insert_range(MIB2 - KIB4..MIB2 + MIB2 + KIB4, REJECTED));
    check_value(e, OutOfNodes, MIB2 - KIB4, L0);
    let e = t.refused(|t| t.reserve_tables(L0, 1));
    check(&e, OutOfNodes, 0, L0);
    let e = t.refused(|t| t.reserve_insert(3 * MIB2, L0));
    check(&e, OutOfNodes, 3 * MIB2, L0);
    let e = t.refused(|t| match t.entry(3 * MIB2) {
        Ok(mem_table::Entry::Vacant(v)) => v.try_insert(REJECTED).map(|_| ()),
        _ => panic!("the place is vacant and valid"),
    });
    check_value(e, OutOfNodes, 3 * MIB2, L0);

    // A new level-1 table (and a bottom one, for a base page).
    let e = t.refused(|t| t.insert_at(2 * GIB1, L1, REJECTED));
    check_value(e, OutOfNodes, 2 * GIB1, L1);
    let e = t.refused(|t| t.split(GIB1, L2));
    check(&e, OutOfNodes, GIB1, L1);
    let e = t.refused(|t| t.insert(2 * GIB1, REJECTED));
    assert_eq!(e.kind(), OutOfNodes);
    assert!(e.level() == L0 || e.level() == L1, "both levels are full: {e:?}");
    assert_eq!(e.into_value(), REJECTED);

    // A new level-2 table.
    let e = t.refused(|t| t.insert_at(1 << 39, L2, REJECTED));
    check_value(e, OutOfNodes, 1 << 39, L2);

    // Room at one level, none at another: the level that ran out is named.
    let mut t = Watched::new(X86::with_backend(Pool::new(2)));
    t.table().insert(KIB4, 1).unwrap();
    t.table().insert(MIB2, 2).unwrap();
    let e = t.refused(|t| t.insert(GIB1, REJECTED));
    check_value(e, OutOfNodes, GIB1, L0);
    t.table().insert_at(GIB1, L1, 3).unwrap(); // the level-1 table alone fits
}
