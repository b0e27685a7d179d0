//! Op lists replayed through the model interpreter (`tests/model/mod.rs`):
//! every bug the model tests or the fuzz targets found, minimized, and a few
//! hand-written scenarios around large pages and change tracking.
//!
//! Every bug here is fixed; a new one found by the fuzzers goes here as a
//! named test before it is fixed.

mod model;

use mem_table::backend::{Arena, Heap, Pool};
use mem_table::geometry::{Geometry, X86_4Level};

use model::{
    Addr, BoundArg, EntryAction, Keep, Look, Lvl, MergeHow, Op, RangeArg, SplitHow, Sweep, Tiny, Val, Wide,
};

/// Replays `ops` on a fresh table of every backend (the pool small).
fn replay<G: Geometry>(ops: &[Op]) {
    model::check_ops::<G, Heap>(Heap, ops);
    model::check_ops::<G, Arena>(Arena, ops);
    model::check_ops::<G, Pool>(Pool::new(4), ops);
}

fn at(addr: u64) -> Addr {
    Addr::Any(addr)
}

fn level(l: u8) -> Lvl {
    Lvl::At(l)
}

/// `lo..end`
fn range(lo: u64, end: u64) -> RangeArg {
    RangeArg::Bounds(BoundArg::Included(at(lo)), BoundArg::Excluded(at(end)))
}

fn insert(addr: u64, v: u8) -> Op {
    Op::Insert { addr: at(addr), value: Val(v) }
}

fn insert_at(addr: u64, l: u8, v: u8) -> Op {
    Op::InsertAt { addr: at(addr), level: level(l), value: Val(v) }
}

fn split(addr: u64, l: u8) -> Op {
    Op::Split { addr: at(addr), level: level(l), how: SplitHow::Clone }
}

fn merge(addr: u64, l: u8) -> Op {
    Op::Merge { addr: at(addr), level: level(l), how: MergeHow::Equal }
}

fn remove(addr: u64) -> Op {
    Op::Remove { addr: at(addr) }
}

// ---------------------------------------------------------------------------
// Bugs found (all four fixed in 00a2060).

/// Iterating a table of a geometry that reaches `u64::MAX` panicked
/// (overflow) once the last bottom table held an entry: the end of a bottom
/// table was computed as `base + (slots << PAGE_SHIFT) - 1`.
#[test]
fn iter_over_the_last_bottom_table_of_the_u64() {
    replay::<Wide>(&[Op::Insert { addr: Addr::High(0), value: Val(1) }]);
}

/// `insert_range` and `remove_range` on a geometry that reaches `u64::MAX`
/// panicked (overflow) whatever the range: the root's last address was
/// computed as `base + ((FANOUT << SHIFT) - 1)`, and `FANOUT << SHIFT` is
/// `2^64`.
#[test]
fn range_ops_at_the_root_of_the_u64() {
    let page = 1 << 40;
    replay::<Wide>(&[Op::InsertRange { range: range(0, page), value: Val(1), how: SplitHow::Clone }]);
    replay::<Wide>(&[insert(0, 1), Op::RemoveRange { range: range(0, page), how: SplitHow::Clone }]);
}

/// `retain` handed its closure `&mut V` but did not mark the entries it kept
/// as changed, so a value changed there never showed in `take_changes`.
#[test]
fn retain_mutation_is_reported() {
    let ops = [
        insert(0x1000, 1),
        Op::TakeChanges,
        Op::Sweep(Sweep::Retain { keep: Keep::All, bump: true }),
        Op::TakeChanges,
    ];
    replay::<Tiny>(&ops);
    replay::<X86_4Level>(&ops);
}

/// A range remove over empty space marked the path to it: `has_changes()`
/// was then true although `take_changes()` reported nothing.
#[test]
fn has_changes_after_removing_nothing() {
    replay::<Tiny>(&[
        insert(0xd000, 1),
        Op::TakeChanges,
        Op::RemoveRange { range: range(0, 0xb000), how: SplitHow::Clone },
        Op::TakeChanges,
    ]);
}

// ---------------------------------------------------------------------------
// Scenarios.

/// Split a large entry, remove one of its pages, then merge: refused while
/// a page is missing, accepted once it is back.
#[test]
fn split_remove_merge() {
    let two_mib = 2 << 20;
    replay::<X86_4Level>(&[
        insert_at(two_mib, 1, 1),
        Op::TakeChanges,
        split(two_mib, 1),
        remove(two_mib + 0x5000),
        merge(two_mib, 1),
        Op::TakeChanges,
        insert(two_mib + 0x5000, 2),
        merge(two_mib, 1),
        insert(two_mib + 0x5000, 1),
        merge(two_mib, 1),
        Op::TakeChanges,
        split(two_mib, 1),
        split(two_mib, 1),
        Op::Compact,
        Op::TakeChanges,
    ]);
    replay::<Tiny>(&[
        insert_at(0x8000, 1, 3),
        split(0x8000, 1),
        remove(0xf000),
        merge(0x8000, 1),
        Op::Merge { addr: at(0x8000), level: level(1), how: MergeHow::Fold },
        insert(0xf000, 3),
        Op::Merge { addr: at(0x8000), level: level(1), how: MergeHow::Fold },
        Op::TakeChanges,
    ]);
}

/// A range set over a region that was split: the pages inside are replaced,
/// the large entries straddling its ends split again.
#[test]
fn range_set_over_a_split_region() {
    replay::<Tiny>(&[
        Op::InsertRange { range: range(0, 0x40000), value: Val(1), how: SplitHow::Clone },
        Op::TakeChanges,
        split(0x8000, 1),
        Op::InsertRange { range: range(0x9000, 0x13000), value: Val(2), how: SplitHow::Numbered },
        Op::TakeChanges,
        Op::RemoveRange { range: range(0x3000, 0x1d000), how: SplitHow::Numbered },
        Op::Compact,
        Op::TakeChanges,
    ]);
    let gib = 1 << 30;
    replay::<X86_4Level>(&[
        insert_at(gib, 2, 1),
        split(gib, 2),
        split(gib + (4 << 20), 1),
        Op::InsertRange { range: range(gib + 0x1000, gib + (5 << 20)), value: Val(2), how: SplitHow::Clone },
        Op::TakeChanges,
        Op::RemoveRange { range: range(gib - 0x1000, gib + 0x3000), how: SplitHow::Clone },
        Op::TakeChanges,
    ]);
}

/// Clearing reports every region that held something; refilling part of it
/// before the report reports every page of the new tables.
#[test]
fn clear_then_changes() {
    replay::<Tiny>(&[
        insert(0x1000, 1),
        insert_at(0x10000, 1, 2),
        insert(0x1f_f000, 3),
        Op::TakeChanges,
        Op::Sweep(Sweep::Clear),
        Op::TakeChanges,
        insert(0x2000, 1),
        Op::Sweep(Sweep::Clear),
        insert(0x1f_e000, 2),
        Op::TakeChanges,
        Op::Sweep(Sweep::Clear),
        Op::Sweep(Sweep::Clear),
        Op::TakeChanges,
        Op::TakeChanges,
    ]);
}

/// Removing a whole table's worth and refilling one page before the report.
#[test]
fn remove_then_refill_before_the_report() {
    replay::<X86_4Level>(&[
        insert(0x1000, 1),
        insert(0x2000, 1),
        Op::TakeChanges,
        remove(0x1000),
        remove(0x2000),
        insert(0x3000, 2),
        Op::TakeChanges,
        Op::Sweep(Sweep::PopFirst),
        insert_at(0, 1, 3),
        Op::TakeChanges,
    ]);
}

/// The entry API at a large level, and an entry refused under a larger one.
#[test]
fn entries_at_large_levels() {
    let entry = |addr, l, action| Op::Entry { addr: at(addr), level: level(l), action, value: Val(2) };
    replay::<Tiny>(&[
        entry(0x8000, 1, EntryAction::Bump),
        entry(0x8000, 1, EntryAction::Bump),
        entry(0x9000, 0, EntryAction::Replace),
        entry(0x8000, 1, EntryAction::Replace),
        Op::TakeChanges,
        entry(0x8000, 1, EntryAction::Remove),
        entry(0x8000, 1, EntryAction::Remove),
        entry(0x9000, 0, EntryAction::Bump),
        entry(0x8000, 1, EntryAction::Bump),
        Op::TakeChanges,
    ]);
}

/// A pool that runs out: every refusal leaves the table as it was, and a
/// reserved insert always succeeds.
#[test]
fn pool_runs_out() {
    let ops = [
        insert(0x1000, 1),
        insert(0x4000_0000_0000, 2),
        Op::ReserveInsert { addr: at(0x20_0000), level: level(0), value: Val(3) },
        Op::ReserveInsert { addr: at(0x8000_0000_0000 - 0x1000), level: level(0), value: Val(3) },
        insert_at(1 << 30, 2, 1),
        split(1 << 30, 2),
        Op::InsertRange { range: range(0x1000, 0x4000_0000_3000), value: Val(1), how: SplitHow::Clone },
        Op::TakeChanges,
    ];
    model::check_ops::<X86_4Level, Pool>(Pool::new(1), &ops);
    model::check_ops::<X86_4Level, Pool>(Pool::new(2), &ops);
}

/// Lookups at and past the ends of the address space.
#[test]
fn lookups_at_the_ends() {
    replay::<Tiny>(&[
        insert(0, 1),
        Op::Insert { addr: Addr::High(0), value: Val(2) },
        Op::Look(Look::Get { addr: at(u64::MAX) }),
        Op::Look(Look::GetKeyValue { addr: at((1 << 21) - 1) }),
        Op::Look(Look::Range {
            range: RangeArg::Bounds(BoundArg::Excluded(at(u64::MAX)), BoundArg::Unbounded),
        }),
        Op::Look(Look::Range { range: RangeArg::Bounds(BoundArg::Unbounded, BoundArg::Included(at(0))) }),
        Op::Look(Look::Range { range: RangeArg::From(at(1 << 21)) }),
        Op::RemoveRange {
            range: RangeArg::Bounds(BoundArg::Excluded(at(u64::MAX)), BoundArg::Unbounded),
            how: SplitHow::Clone,
        },
        Op::RemoveRange { range: RangeArg::To(at(0)), how: SplitHow::Clone },
        Op::RemoveRange { range: RangeArg::Full, how: SplitHow::Clone },
        Op::TakeChanges,
    ]);
}
