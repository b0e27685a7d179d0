//! Drop and panic safety: every value is dropped exactly once, whatever the
//! operation, and a panic in a value's `clone` or `drop` or in consumer
//! [`PageOps`] neither leaks nor double-drops, and leaves the table either
//! unchanged (where documented) or at least valid and usable.
//!
//! Values are [`Tracked`]: each has a unique id, and a per-thread registry
//! knows which ids are alive. Tests use tiny geometries (8 slots per table)
//! so that they also run quickly under Miri, where, unlike in the other test
//! files, they run on every backend: `clear` and drop unwind through each
//! backend's own store.

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::{MemTable, TestBackend, Tiny, Tiny4, holds_no_tables, pages, snapshot_by, table};
use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::{Custom, Large};
use mem_table::ops::{Children, PageOps};
use mem_table::typenum::{U3, U12};
use mem_table::{Geometry, Level, Page};

/// Three 3-bit levels, all of which hold entries: the root holds large
/// entries too, so `clear` and drop meet values in the root table itself.
type LargeRoot = Custom<U12, (U3, Large<U3>, Large<U3>)>;

const L0: Level = Level::BASE;
const L1: Level = Level::new(1);
const L2: Level = Level::new(2);
const KIB4: u64 = 0x1000;
/// A level-1 page of the tiny geometries.
const KIB32: u64 = 0x8000;
/// A level-2 page of the tiny geometries.
const KIB256: u64 = 0x4_0000;

// --- The tracked value -------------------------------------------------------

/// What the current thread knows about its [`Tracked`] values.
#[derive(Default)]
struct Registry {
    /// The id the next value gets.
    next_id: u64,
    /// Ids of the values alive now.
    live: BTreeSet<u64>,
    /// Drops of a value that was not alive.
    bad_drops: usize,
    /// Clones that may still happen before one panics, if armed.
    clone_fuse: Option<usize>,
    /// The id whose drop panics, if armed.
    drop_bomb: Option<u64>,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// A value that registers its creation, clones and drop, and can be made to
/// panic in either.
#[derive(Debug)]
struct Tracked {
    id: u64,
    /// What the value means: clones share it, equality compares it.
    tag: u32,
}

impl Tracked {
    fn new(tag: u32) -> Tracked {
        let id = REGISTRY.with_borrow_mut(|r| {
            let id = r.next_id;
            r.next_id += 1;
            r.live.insert(id);
            id
        });
        Tracked { id, tag }
    }
}

impl Clone for Tracked {
    fn clone(&self) -> Tracked {
        let blow = REGISTRY.with_borrow_mut(|r| match &mut r.clone_fuse {
            Some(0) => {
                r.clone_fuse = None;
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        });
        if blow {
            panic!("Tracked::clone: planned panic");
        }
        Tracked::new(self.tag)
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Tracked) -> bool {
        self.tag == other.tag
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let blow = REGISTRY.with_borrow_mut(|r| {
            if !r.live.remove(&self.id) {
                r.bad_drops += 1;
            }
            r.drop_bomb.take_if(|id| *id == self.id).is_some()
        });
        if blow {
            panic!("Tracked::drop: planned panic");
        }
    }
}

/// Makes the `k`-th clone from now (1-based) panic.
fn panic_on_clone(k: usize) {
    assert!(k >= 1);
    REGISTRY.with_borrow_mut(|r| r.clone_fuse = Some(k - 1));
}

/// Makes the drop of the value with id `id` panic.
fn panic_on_drop(id: u64) {
    REGISTRY.with_borrow_mut(|r| r.drop_bomb = Some(id));
}

/// Disarms both kinds of planned panic; returns whether one was still armed.
fn disarm() -> bool {
    REGISTRY.with_borrow_mut(|r| r.clone_fuse.take().is_some() | r.drop_bomb.take().is_some())
}

/// The ids alive now.
fn live() -> BTreeSet<u64> {
    REGISTRY.with_borrow(|r| r.live.clone())
}

/// Checks that no value was dropped twice (or dropped without being made).
#[track_caller]
fn assert_no_bad_drops() {
    assert_eq!(REGISTRY.with_borrow(|r| r.bad_drops), 0, "a value was dropped twice");
}

/// Checks that exactly the values in `t`, plus `held`, are alive: nothing
/// leaked, nothing dropped that is still reachable, nothing dropped twice.
#[track_caller]
fn assert_owns<G: Geometry, B: Backend>(t: &MemTable<Tracked, G, B>, held: &[&Tracked]) {
    assert_no_bad_drops();
    // `range` rather than `values`: it does not trust `len`.
    let mut ids: Vec<u64> = t.range(..).map(|(_, v)| v).chain(held.iter().copied()).map(|v| v.id).collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "one value reachable twice");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), live(), "alive values differ from the table's");
}

/// Checks that every value made so far was dropped, exactly once.
#[track_caller]
fn assert_all_dropped() {
    assert_no_bad_drops();
    assert_eq!(live(), BTreeSet::new(), "values leaked");
}

/// What a table holds, by tag; checks its invariants.
///
/// A panic may leave a node reserved for the operation in a growable store
/// (as a `Vec` keeps its capacity), so only the node counts, and a pool's
/// free counts, are compared, not the bytes and spare nodes of a heap or
/// arena.
fn shape<G: Geometry, B: Backend>(t: &MemTable<Tracked, G, B>) -> common::Snapshot<u32> {
    let mut s = snapshot_by(t, |v| v.tag);
    for l in s.levels.iter_mut().filter(|l| l.capacity.is_none()) {
        l.bytes = 0;
        l.available = 0;
    }
    s
}

/// The numbers in `range`, or under Miri (where each panic costs a second)
/// only its first, middle and last.
fn sample(range: std::ops::RangeInclusive<usize>) -> Vec<usize> {
    let (first, last) = (*range.start(), *range.end());
    if cfg!(miri) { vec![first, (first + last) / 2, last] } else { range.collect() }
}

/// Runs `op`, which must panic; returns what it panicked with.
#[track_caller]
fn must_panic<R>(op: impl FnOnce() -> R) -> String {
    match catch_unwind(AssertUnwindSafe(op)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => match payload.downcast::<&str>() {
            Ok(s) => s.to_string(),
            Err(payload) => payload.downcast::<String>().map(|s| *s).unwrap_or_default(),
        },
    }
}

/// A tiny table with base pages in two bottom tables, two large entries and
/// one full bottom table of equal values (mergeable).
///
/// | address | entry | tag |
/// |---|---|---|
/// | 0x1000, 0x2000 | base | 1, 2 |
/// | 0x9000 | base | 3 |
/// | 0x1_0000 | 32 KiB | 4 |
/// | 0x4_0000 | 32 KiB | 5 |
/// | 0x4_8000 ..= 0x4_f000 | 8 base pages | 6 |
fn mixed<B: TestBackend>() -> MemTable<Tracked, Tiny, B> {
    let mut t = table();
    t.insert(KIB4, Tracked::new(1)).unwrap();
    t.insert(2 * KIB4, Tracked::new(2)).unwrap();
    t.insert(9 * KIB4, Tracked::new(3)).unwrap();
    t.insert_at(2 * KIB32, L1, Tracked::new(4)).unwrap();
    t.insert_at(KIB256, L1, Tracked::new(5)).unwrap();
    for i in 0..8 {
        t.insert(KIB256 + KIB32 + i * KIB4, Tracked::new(6)).unwrap();
    }
    assert_eq!(t.len(), 13);
    t
}

/// Ops whose split and merge panic at the `k`-th call of each (1-based;
/// `usize::MAX` for never), after looking at `looked` children.
struct Faulty {
    splits: usize,
    merges: usize,
    split_at: usize,
    merge_at: usize,
    looked: usize,
}

impl Faulty {
    fn split_panics_at(k: usize) -> Faulty {
        Faulty { splits: 0, merges: 0, split_at: k, merge_at: usize::MAX, looked: 0 }
    }
    fn merge_panics_at(k: usize, looked: usize) -> Faulty {
        Faulty { splits: 0, merges: 0, split_at: usize::MAX, merge_at: k, looked }
    }
}

impl PageOps<Tracked> for Faulty {
    fn split(&mut self, _: Page, value: &Tracked, _: Page) -> Tracked {
        self.splits += 1;
        assert!(self.splits != self.split_at, "Faulty::split: planned panic");
        Tracked::new(value.tag)
    }
    fn merge(&mut self, _: Page, mut children: Children<'_, '_, Tracked>) -> Option<Tracked> {
        self.merges += 1;
        if self.merges == self.merge_at {
            children.take(self.looked).for_each(drop);
            panic!("Faulty::merge: planned panic");
        }
        let tag = children.next()?.tag;
        children.all(|c| c.tag == tag).then(|| Tracked::new(tag))
    }
}

// --- Every value dropped exactly once -----------------------------------------

fn insert_replace_remove_on<B: TestBackend>() {
    let mut t = mixed::<B>();
    assert_owns(&t, &[]);

    let old = t.insert(KIB4, Tracked::new(10)).unwrap().expect("replaces");
    assert_eq!(old.tag, 1);
    assert_owns(&t, &[&old]);
    drop(old);
    let old = t.insert_at(2 * KIB32, L1, Tracked::new(11)).unwrap().expect("replaces");
    assert_eq!(old.tag, 4);
    drop(old);
    assert_owns(&t, &[]);

    // Refused inserts hand the value back, and it is dropped once.
    let refusals: [(u64, Level); 5] =
        [(KIB4 + 1, L0), (2 * KIB32 + KIB4, L0), (0, L1), (0, L2), (1 << 30, L0)];
    for (addr, level) in refusals {
        let v = t.insert_at(addr, level, Tracked::new(12)).unwrap_err().into_value();
        assert_owns(&t, &[&v]);
        drop(v);
        assert_owns(&t, &[]);
    }

    let (page, v) = t.remove_covering(2 * KIB4).expect("an entry");
    assert_eq!((page.addr(), v.tag), (2 * KIB4, 2));
    assert_owns(&t, &[&v]);
    drop(v);
    let (page, v) = t.remove_covering(2 * KIB32 + 3 * KIB4).expect("the large entry");
    assert_eq!((page.level(), v.tag), (L1, 11));
    drop(v);
    assert_owns(&t, &[]);

    let first = t.pop_first().expect("an entry");
    assert_owns(&t, &[&first.1]);
    drop(first);
    drop(t);
    assert_all_dropped();
}

#[test]
fn insert_replace_remove() {
    insert_replace_remove_on::<Heap>();
    insert_replace_remove_on::<Arena>();
    insert_replace_remove_on::<Pool>();
}

fn split_merge_compact_on<B: TestBackend>() {
    let mut t = mixed::<B>();
    t.split(2 * KIB32, L1).unwrap();
    assert_eq!(t.len(), 13 + 7);
    assert_owns(&t, &[]);
    t.merge(2 * KIB32, L1).unwrap();
    assert_owns(&t, &[]);
    t.merge(KIB256 + KIB32, L1).unwrap();
    assert_eq!(t.len(), 13 - 7);
    assert_owns(&t, &[]);
    t.split_with(KIB256 + KIB32, L1, &mut Faulty::split_panics_at(usize::MAX)).unwrap();
    assert_owns(&t, &[]);
    t.merge_with(KIB256 + KIB32, L1, &mut Faulty::merge_panics_at(usize::MAX, 0)).unwrap();
    assert_owns(&t, &[]);
    drop(t);
    assert_all_dropped();

    // Compact: two bottom tables become entries, then the level-1 table
    // they filled (in a geometry where level 2 holds entries).
    let mut t = table::<Tracked, Tiny4, B>();
    for i in 0..16 {
        t.insert(i * KIB4, Tracked::new(7)).unwrap();
    }
    for i in 2..8 {
        t.insert_at(i * KIB32, L1, Tracked::new(7)).unwrap();
    }
    t.insert(KIB256, Tracked::new(8)).unwrap();
    assert_eq!(t.compact(), 3);
    assert_eq!(pages(&t), [(0, 2), (KIB256, 0)]);
    assert_owns(&t, &[]);
    drop(t);
    assert_all_dropped();
}

#[test]
fn split_merge_compact() {
    split_merge_compact_on::<Heap>();
    split_merge_compact_on::<Arena>();
    split_merge_compact_on::<Pool>();
}

fn ranges_on<B: TestBackend>() {
    let mut t = mixed::<B>();
    // Over base pages, up to the middle of the large entry at 0x1_0000.
    t.insert_range(0..2 * KIB32 + 3 * KIB4, Tracked::new(20)).unwrap();
    assert_owns(&t, &[]);
    // Over whole large entries and tables.
    t.insert_range(KIB256..2 * KIB256, Tracked::new(21)).unwrap();
    assert_owns(&t, &[]);
    // Cutting large entries at both ends.
    t.remove_range(KIB4..KIB256 + 3 * KIB4).unwrap();
    assert_owns(&t, &[]);
    // A refused range hands its value back.
    let v = t.insert_range(0..0, Tracked::new(22)).unwrap_err().into_value();
    assert_owns(&t, &[&v]);
    drop(v);
    t.remove_range(..).unwrap();
    assert!(t.is_empty());
    assert_all_dropped();
}

#[test]
fn ranges() {
    ranges_on::<Heap>();
    ranges_on::<Arena>();
    ranges_on::<Pool>();
}

fn retain_clear_clone_on<B: TestBackend>() {
    let mut t = mixed::<B>();
    t.retain(|page, v| page.level() == L1 || v.tag % 2 == 0);
    assert_eq!(t.len(), 2 + 1 + 8);
    assert_owns(&t, &[]);

    let copy = t.clone();
    assert_eq!(shape(&copy).entries, shape(&t).entries);
    let mut ids: Vec<u64> = t.values().chain(copy.values()).map(|v| v.id).collect();
    ids.sort_unstable();
    assert!(ids.windows(2).all(|w| w[0] != w[1]), "a clone shares no value");
    drop(copy);
    assert_owns(&t, &[]);

    t.clear();
    assert!(t.is_empty());
    assert_all_dropped();
    t.insert(KIB4, Tracked::new(1)).unwrap();
    assert_owns(&t, &[]);
    drop(t);
    assert_all_dropped();
}

#[test]
fn retain_clear_clone() {
    retain_clear_clone_on::<Heap>();
    retain_clear_clone_on::<Arena>();
    retain_clear_clone_on::<Pool>();
}

fn into_iter_on<B: TestBackend>() {
    for taken in [0, 1, 5, 13] {
        let t = mixed::<B>();
        let mut it = t.into_iter();
        let kept: Vec<(Page, Tracked)> = it.by_ref().take(taken).collect();
        assert_eq!(it.len(), 13 - taken);
        drop(it);
        assert_no_bad_drops();
        assert_eq!(live(), kept.iter().map(|(_, v)| v.id).collect(), "dropping the iterator drops the rest");
        drop(kept);
        assert_all_dropped();
    }
}

#[test]
fn into_iter() {
    into_iter_on::<Heap>();
    into_iter_on::<Arena>();
    into_iter_on::<Pool>();
}

// --- Panics that leave the table unchanged ----------------------------------

fn split_clone_panics_on<B: TestBackend>() {
    // A 32 KiB entry splits into 8 clones; each one in turn panics.
    let mut t = mixed::<B>();
    for k in sample(1..=8) {
        let before = shape(&t);
        panic_on_clone(k);
        let msg = must_panic(|| t.split(KIB256, L1));
        assert!(msg.contains("planned"), "{msg}");
        assert!(!disarm(), "the clone panicked");
        assert_eq!(shape(&t), before, "split panicked at clone {k}: table changed");
        assert_owns(&t, &[]);
    }
    t.split(KIB256, L1).unwrap();
    assert_owns(&t, &[]);

    // The same with consumer ops.
    for k in sample(1..=8) {
        let before = shape(&t);
        let msg = must_panic(|| t.split_with(2 * KIB32, L1, &mut Faulty::split_panics_at(k)));
        assert!(msg.contains("planned"), "{msg}");
        assert_eq!(shape(&t), before, "split_with panicked at sub-page {k}: table changed");
        assert_owns(&t, &[]);
    }
    drop(t);
    assert_all_dropped();

    // x86: 512 clones, the first, a middle and the last panicking. (Not
    // under Miri: the tiny tables above run the same code, much faster.)
    if cfg!(miri) {
        return;
    }
    let mut t = table::<Tracked, mem_table::X86_4Level, B>();
    t.insert_at(0x20_0000, L1, Tracked::new(1)).unwrap();
    t.insert(0x1000, Tracked::new(2)).unwrap();
    for k in [1, 200, 512] {
        let before = shape(&t);
        panic_on_clone(k);
        must_panic(|| t.split(0x20_0000, L1));
        assert!(!disarm());
        assert_eq!(shape(&t), before, "x86 split panicked at clone {k}: table changed");
        assert_owns(&t, &[]);
    }
    drop(t);
    assert_all_dropped();
}

#[test]
fn split_clone_panics() {
    split_clone_panics_on::<Heap>();
    split_clone_panics_on::<Arena>();
    split_clone_panics_on::<Pool>();
}

fn merge_panics_on<B: TestBackend>() {
    let mut t = mixed::<B>();
    let full = KIB256 + KIB32;
    for looked in [0, 1, 8] {
        let before = shape(&t);
        let msg = must_panic(|| t.merge_with(full, L1, &mut Faulty::merge_panics_at(1, looked)));
        assert!(msg.contains("planned"), "{msg}");
        assert_eq!(shape(&t), before, "merge panicked after {looked} children: table changed");
        assert_owns(&t, &[]);
    }
    // The default merge clones the merged value: that clone panics.
    let before = shape(&t);
    panic_on_clone(1);
    must_panic(|| t.merge(full, L1));
    assert!(!disarm());
    assert_eq!(shape(&t), before, "merge whose clone panicked: table changed");
    assert_owns(&t, &[]);

    t.merge(full, L1).unwrap();
    assert_owns(&t, &[]);
    drop(t);
    assert_all_dropped();
}

#[test]
fn merge_panics() {
    merge_panics_on::<Heap>();
    merge_panics_on::<Arena>();
    merge_panics_on::<Pool>();
}

// --- Drops that panic -------------------------------------------------------

/// A table of the [`LargeRoot`] geometry with entries at every level: in the
/// root, in a level-1 table and in bottom tables.
fn every_level<B: TestBackend>() -> MemTable<Tracked, LargeRoot, B> {
    let mut t = table();
    t.insert(KIB4, Tracked::new(1)).unwrap();
    t.insert(2 * KIB4, Tracked::new(2)).unwrap();
    t.insert(KIB32 + 7 * KIB4, Tracked::new(3)).unwrap();
    t.insert_at(3 * KIB32, L1, Tracked::new(4)).unwrap();
    t.insert_at(KIB256, L2, Tracked::new(5)).unwrap();
    t.insert_at(7 * KIB256, L2, Tracked::new(6)).unwrap();
    t.insert(2 * KIB256 + KIB4, Tracked::new(7)).unwrap();
    t.insert_at(2 * KIB256 + KIB32, L1, Tracked::new(8)).unwrap();
    assert_eq!(t.len(), 8);
    t
}

fn clear_drop_panics_on<B: TestBackend>() {
    for victim in sample(0..=7) {
        let mut t = every_level::<B>();
        let id = t.values().nth(victim).unwrap().id;
        panic_on_drop(id);
        let msg = must_panic(|| t.clear());
        assert!(msg.contains("planned"), "{msg}");
        assert!(!disarm(), "the drop of value {victim} panicked");
        assert_all_dropped();
        t.check_invariants().unwrap();
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
        assert!(holds_no_tables(&t.stats()), "no table kept: {:?}", t.stats());
        // Reusable.
        t.insert(KIB4, Tracked::new(1)).unwrap();
        t.insert_at(KIB256, L2, Tracked::new(2)).unwrap();
        assert_eq!(t.get(KIB256 + KIB4).map(|v| v.tag), Some(2));
        assert_owns(&t, &[]);
        drop(t);
        assert_all_dropped();
    }
}

#[test]
fn clear_drop_panics() {
    clear_drop_panics_on::<Heap>();
    clear_drop_panics_on::<Arena>();
    clear_drop_panics_on::<Pool>();
}

fn table_drop_panics_on<B: TestBackend>() {
    for victim in sample(0..=7) {
        let t = every_level::<B>();
        panic_on_drop(t.values().nth(victim).unwrap().id);
        let msg = must_panic(move || drop(t));
        assert!(msg.contains("planned"), "{msg}");
        assert!(!disarm());
        assert_all_dropped();
    }
    // Dropping a partly consumed iterator.
    for victim in sample(2..=7) {
        let t = every_level::<B>();
        panic_on_drop(t.values().nth(victim).unwrap().id);
        let mut it = t.into_iter();
        let kept: Vec<_> = it.by_ref().take(2).collect();
        must_panic(move || drop(it));
        assert!(!disarm());
        assert_eq!(live(), kept.iter().map(|(_, v)| v.id).collect());
        drop(kept);
        assert_all_dropped();
    }
}

#[test]
fn table_drop_panics() {
    table_drop_panics_on::<Heap>();
    table_drop_panics_on::<Arena>();
    table_drop_panics_on::<Pool>();
}

// --- Panics elsewhere: no leak, no double drop, a valid table --------------

/// An operation on [`mixed`] that panics partway, by a clone, a drop, the
/// consumer's ops or a predicate.
#[derive(Clone, Copy, Debug)]
enum Panicky {
    /// `insert_range` over everything; the k-th clone of the value panics.
    InsertRangeClone(usize),
    /// `insert_range_with` ending inside the entry at 0x4_0000; the k-th
    /// split call panics.
    InsertRangeSplit(usize),
    /// `insert_range` over a base page whose drop panics.
    InsertRangeDrop,
    /// `remove_range_with` cutting large entries at both ends; the second
    /// entry's split panics.
    RemoveRangeSplit,
    /// `remove_range` over a base page whose drop panics.
    RemoveRangeDrop,
    /// `retain` removing everything; the predicate panics on its 5th call.
    RetainPredicate,
    /// `retain` removing a base page whose drop panics.
    RetainDrop,
    /// `compact_with` over two mergeable tables; the second merge panics.
    CompactMerge,
    /// `compact` merging a table one of whose values' drop panics.
    CompactDrop,
    /// `split` of an entry whose drop panics (after its table is built).
    SplitDrop,
    /// `merge` of a table one of whose values' drop panics.
    MergeDrop,
}

impl Panicky {
    const ALL: [Panicky; 14] = [
        Panicky::InsertRangeClone(1),
        Panicky::InsertRangeClone(3),
        Panicky::InsertRangeClone(9),
        Panicky::InsertRangeSplit(1),
        Panicky::InsertRangeSplit(4),
        Panicky::InsertRangeDrop,
        Panicky::RemoveRangeSplit,
        Panicky::RemoveRangeDrop,
        Panicky::RetainPredicate,
        Panicky::RetainDrop,
        Panicky::CompactMerge,
        Panicky::CompactDrop,
        Panicky::SplitDrop,
        Panicky::MergeDrop,
    ];

    /// Builds [`mixed`], runs the operation, checks that it panicked as
    /// planned, and returns the table.
    fn run<B: TestBackend>(self) -> MemTable<Tracked, Tiny, B> {
        let mut t = mixed::<B>();
        let id_at = |t: &MemTable<Tracked, Tiny, B>, addr| t.get(addr).unwrap().id;
        match self {
            Panicky::InsertRangeClone(k) => panic_on_clone(k),
            Panicky::InsertRangeDrop | Panicky::RemoveRangeDrop => panic_on_drop(id_at(&t, 9 * KIB4)),
            Panicky::RetainDrop => panic_on_drop(id_at(&t, 2 * KIB4)),
            Panicky::CompactMerge => {
                for i in 0..8 {
                    t.insert(i * KIB4, Tracked::new(40)).unwrap();
                }
            }
            Panicky::CompactDrop => panic_on_drop(id_at(&t, KIB256 + KIB32 + 2 * KIB4)),
            Panicky::SplitDrop => panic_on_drop(id_at(&t, KIB256)),
            Panicky::MergeDrop => panic_on_drop(id_at(&t, KIB256 + KIB32 + 5 * KIB4)),
            _ => {}
        }
        let msg = must_panic(|| match self {
            Panicky::InsertRangeClone(_) => drop(t.insert_range(0..2 * KIB256, Tracked::new(30))),
            Panicky::InsertRangeSplit(k) => {
                let mut ops = Faulty::split_panics_at(k);
                drop(t.insert_range_with(0..KIB256 + 3 * KIB4, Tracked::new(31), &mut ops))
            }
            Panicky::InsertRangeDrop => drop(t.insert_range(0..KIB256 + KIB32, Tracked::new(32))),
            Panicky::RemoveRangeSplit => {
                let mut ops = Faulty::split_panics_at(8 + 2);
                drop(t.remove_range_with(2 * KIB32 + KIB4..KIB256 + KIB4, &mut ops))
            }
            Panicky::RemoveRangeDrop => drop(t.remove_range(0..KIB256 + KIB32)),
            Panicky::RetainPredicate => {
                let mut seen = 0;
                t.retain(|_, _| {
                    seen += 1;
                    assert!(seen < 5, "retain predicate: planned panic");
                    false
                })
            }
            Panicky::RetainDrop => t.retain(|_, v| v.tag > 4),
            Panicky::CompactMerge => {
                let _ = t.compact_with(&mut Faulty::merge_panics_at(2, 3));
            }
            Panicky::CompactDrop => {
                let _ = t.compact();
            }
            Panicky::SplitDrop => drop(t.split(KIB256, L1)),
            Panicky::MergeDrop => drop(t.merge(KIB256 + KIB32, L1)),
        });
        assert!(msg.contains("planned"), "{self:?}: {msg}");
        assert!(!disarm(), "{self:?}: the planned panic happened");
        t
    }

    /// Checks that the panic leaked nothing, dropped nothing twice, and left
    /// a valid table, consistent and usable.
    fn leaves_valid_table<B: TestBackend>(self) {
        let mut t = self.run::<B>();
        assert_owns(&t, &[]);
        if let Err(e) = t.check_invariants() {
            panic!("{self:?} on {:?}: table broken after the panic: {e}", t.backend());
        }
        assert_eq!(t.iter().count(), t.len(), "{self:?}: len disagrees with iteration");
        // Usable: every entry can be removed, and the table refilled.
        let pages: Vec<_> = t.keys().collect();
        for p in pages {
            drop(t.remove_at(p.addr(), p.level()).unwrap().expect("listed entry"));
        }
        assert!(t.is_empty());
        assert_all_dropped();
        t.insert(KIB4, Tracked::new(1)).unwrap();
        drop(t);
        assert_all_dropped();
    }
}

#[test]
fn panics_leave_a_valid_table() {
    for p in Panicky::ALL {
        p.leaves_valid_table::<Heap>();
        p.leaves_valid_table::<Arena>();
        p.leaves_valid_table::<Pool>();
    }
}

fn clone_panics_on<B: TestBackend>() {
    for k in [1, 5, 13] {
        let t = mixed::<B>();
        panic_on_clone(k);
        must_panic(|| t.clone());
        assert!(!disarm());
        assert_owns(&t, &[]);
    }
    assert_all_dropped();
}

#[test]
fn clone_panics() {
    clone_panics_on::<Heap>();
    clone_panics_on::<Arena>();
    clone_panics_on::<Pool>();
}
