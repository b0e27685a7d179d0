//! Operations that must not allocate: a pool-backed table after it is built,
//! and inserts that were reserved for beforehand.
//!
//! This binary's global allocator (`tests/common/counting.rs`) counts the
//! allocations a thread makes while it asks; other threads (the test
//! harness, other tests) are not counted. A test counts around one
//! operation at a time and asserts the count is 0 after it, naming the
//! operation.

#[path = "common/counting.rs"]
mod counting;

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::X86_4Level;
use mem_table::{Level, MemTable};

/// Runs the operation `op` of a sequence with allocation forbidden, records
/// its name in `allocating` if it allocated, and returns its result.
fn step<R>(allocating: &mut Vec<(&'static str, usize)>, op: &'static str, f: impl FnOnce() -> R) -> R {
    let (r, n) = counting::allocations(f);
    if n > 0 {
        allocating.push((op, n));
    }
    r
}

const L1: Level = Level::new(1);
const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
const GIB1: u64 = 0x4000_0000;

/// A pool-backed table allocates when it is built and never after: every
/// operation below runs with allocation forbidden. Today `iter_mut` (its
/// index of tables) and `take_changes` (its list of pages) allocate.
#[test]
#[cfg_attr(miri, ignore = "x86 tables are slow under Miri; the defect is not about unsafe code")]
fn pool_never_allocates_after_construction() {
    let mut t: MemTable<u64, X86_4Level, Pool> = MemTable::with_backend(Pool::new(16));
    let mut allocating = Vec::with_capacity(32);
    let a = &mut allocating;

    let r = step(a, "insert", || t.insert(KIB4, 1).map_err(|e| e.kind()));
    assert_eq!(r, Ok(None), "insert(0x1000)");
    let r = step(a, "insert_at 2 MiB", || t.insert_at(MIB2, L1, 2).map_err(|e| e.kind()));
    assert_eq!(r, Ok(None), "insert_at(0x20_0000, level 1)");
    let r = step(a, "get", || t.get(KIB4).copied());
    assert_eq!(r, Some(1), "get(0x1000)");
    let r = step(a, "get_mut", || t.get_mut(MIB2 + KIB4).map(|v| *v += 10).is_some());
    assert!(r, "get_mut(0x20_1000)");
    let r = step(a, "iter", || t.iter().count());
    assert_eq!(r, 2, "iter().count()");
    let r = step(a, "iter_mut", || {
        t.iter_mut().fold(0, |n, (_, v)| {
            *v += 1;
            n + 1
        })
    });
    assert_eq!(r, 2, "iter_mut().count()");
    let r = step(a, "range", || t.range(..MIB2).count());
    assert_eq!(r, 1, "range(..0x20_0000).count()");
    let r = step(a, "split", || t.split(MIB2, L1).map_err(|e| e.kind()));
    assert_eq!(r, Ok(()), "split(0x20_0000, level 1)");
    assert_eq!(t.len(), 1 + 512);
    let r = step(a, "merge", || t.merge(MIB2, L1).map_err(|e| e.kind()));
    assert_eq!(r, Ok(()), "merge(0x20_0000, level 1)");
    assert_eq!(t.len(), 2);
    let r = step(a, "insert_range", || t.insert_range(GIB1..GIB1 + 2 * MIB2, 5).map_err(|e| e.kind()));
    assert_eq!(r, Ok(()), "insert_range(1 GiB .. + 4 MiB)");
    assert_eq!(t.len(), 4);
    let r = step(a, "remove_range", || t.remove_range(GIB1 + MIB2..GIB1 + 2 * MIB2).map_err(|e| e.kind()));
    assert_eq!(r, Ok(()), "remove_range(1 GiB + 2 MiB .. + 2 MiB)");
    assert_eq!(t.len(), 3);
    let r = step(a, "split for compact", || t.split(MIB2, L1).map_err(|e| e.kind()));
    assert_eq!(r, Ok(()), "split(0x20_0000, level 1) again");
    let r = step(a, "compact", || t.compact());
    assert_eq!(r, 1, "compact() merges the split table back");
    assert_eq!(t.len(), 3);
    step(a, "retain", || t.retain(|p, _| p.addr() != GIB1));
    assert_eq!(t.len(), 2, "retain removes the entry at 1 GiB");
    let r = step(a, "remove", || t.remove(KIB4).map(|o| o.map(|v| (KIB4, v))).map_err(|e| e.kind()));
    assert_eq!(r, Ok(Some((KIB4, 2))), "remove(0x1000)");
    let r = step(a, "pop_first", || t.pop_first().map(|(p, v)| (p.addr(), v)));
    assert_eq!(r, Some((MIB2, 13)), "pop_first()");
    assert!(t.is_empty());
    let r = step(a, "entry", || t.entry(3 * KIB4).map(|e| *e.or_insert(7)).map_err(|e| e.kind()));
    assert_eq!(r, Ok(7), "entry(0x3000).or_insert(7)");
    let r = step(a, "take_changes", || t.take_changes().fold(0, |n, c| n + usize::from(c.last >= c.start)));
    assert!(r > 0, "take_changes() reports the changes");
    step(a, "clear", || t.clear());
    assert!(t.is_empty(), "clear()");
    let r = step(a, "take_changes after clear", || t.take_changes().count());
    assert!(r > 0, "take_changes() reports the cleared entry");
    t.check_invariants().unwrap();

    assert!(
        allocating.is_empty(),
        "expected no allocation by any operation of a pool-backed table after it is built; \
         these allocated (operation, allocations): {allocating:?}"
    );
}

/// Inserts reserved for with `reserve_insert` make no allocation, even when
/// several are reserved for first: two inserts whose paths share only the
/// root, reserved one after the other, then made with allocation forbidden.
/// Today the second reservation finds the first one's tables set aside and
/// reserves nothing more, so the second insert allocates.
fn reserved_inserts_on<B: Backend>(backend: B) {
    let far = (1 << 39) | KIB4; // root slot 1: a path of its own below the root
    let mut t: MemTable<u64, X86_4Level, B> = MemTable::with_backend(backend);
    t.reserve_insert(KIB4, Level::BASE).expect("reserve_insert(0x1000)");
    t.reserve_insert(far, Level::BASE).expect("reserve_insert(1 << 39 | 0x1000)");
    let mut allocating = Vec::with_capacity(4);
    let a = &mut allocating;
    let r = step(a, "insert(0x1000)", || t.insert(KIB4, 1).map_err(|e| e.kind()));
    assert_eq!(r, Ok(None), "insert(0x1000)");
    let r = step(a, "insert(1 << 39 | 0x1000)", || t.insert(far, 2).map_err(|e| e.kind()));
    assert_eq!(r, Ok(None), "insert(1 << 39 | 0x1000)");
    assert_eq!(t.stats().nodes(), 7, "two paths of three tables below the root");
    t.check_invariants().unwrap();
    assert!(
        allocating.is_empty(),
        "{}: expected no allocation by inserts reserved for by reserve_insert; \
         these allocated (operation, allocations): {allocating:?}",
        B::NAME
    );
}

#[test]
#[cfg_attr(miri, ignore = "x86 tables are slow under Miri; the defect is not about unsafe code")]
fn reserved_heap_insert_makes_no_allocation() {
    reserved_inserts_on(Heap);
}

#[test]
#[cfg_attr(miri, ignore = "x86 tables are slow under Miri; the defect is not about unsafe code")]
fn reserved_arena_insert_makes_no_allocation() {
    reserved_inserts_on(Arena);
}

/// A commit allocates nothing on `Heap` and `Arena` either: it clears
/// marks and moves no table (the report's regions borrow values past its
/// end). The table that held 40 entries and lost 36 moves to a sparse form
/// at the `shrink_to_fit` after it (checked by the level's node bytes on
/// `Heap`).
fn commit_on<B: Backend>(backend: B) {
    let mut t: MemTable<u64, X86_4Level, B> = MemTable::with_backend(backend);
    for k in 0..40u64 {
        t.insert(MIB2 + (k * 167 % 512) * KIB4, k).unwrap();
    }
    t.take_changes().for_each(drop);
    for k in 4..40u64 {
        t.remove(MIB2 + (k * 167 % 512) * KIB4).unwrap();
    }
    // Measured on a clone (which keeps the forms), so that `t` keeps the
    // free tables its stores hold.
    let before = {
        let mut c = t.clone();
        c.shrink_to_fit();
        c.stats().level(0).bytes
    };
    let mut allocating = Vec::with_capacity(4);
    let n = step(&mut allocating, "take_changes", || t.take_changes().count());
    assert!(n > 0, "take_changes() reports the removes");
    step(&mut allocating, "changes().commit()", || t.changes().commit());
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 4);
    t.shrink_to_fit();
    if B::NAME == "heap" {
        assert!(
            t.stats().level(0).bytes < before,
            "shrink_to_fit after the commit did not move the table to a smaller form"
        );
    }
    assert!(
        allocating.is_empty(),
        "{}: expected no allocation by a commit; these allocated (operation, allocations): {allocating:?}",
        B::NAME
    );
}

#[test]
#[cfg_attr(miri, ignore = "x86 tables are slow under Miri; the defect is not about unsafe code")]
fn heap_commit_makes_no_allocation() {
    commit_on(Heap);
}

#[test]
#[cfg_attr(miri, ignore = "x86 tables are slow under Miri; the defect is not about unsafe code")]
fn arena_commit_makes_no_allocation() {
    commit_on(Arena);
}
