//! The concurrent table's single-threaded behaviour: examples, reclamation
//! counts, and a model-based property that runs random operations against
//! both `sync::MemTable` and `mem_table::MemTable` and compares every
//! result and the whole contents. Under Miri the runs are few and short.
#![cfg(feature = "sync")]

use core::ops::Bound;
use mem_table::geometry::{Custom, Large};

use mem_table::ops::{Children, FnOps, PageOps};
use mem_table::sync::{self, Atom};
use mem_table::typenum::{U2, U12};
use mem_table::{ErrorKind, Level, MemTable, Page};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const CASES: u64 = if cfg!(miri) { 3 } else { 200 };

#[test]
fn basics() {
    let t: sync::MemTable<u64> = sync::MemTable::new();
    let mut w = t.writer();
    assert_eq!(w.insert(0x1000, 1).unwrap(), None);
    assert_eq!(w.insert(0x1000, u64::MAX).unwrap(), Some(1));
    assert_eq!(w.insert(0x1001, 3).unwrap_err().kind(), ErrorKind::Misaligned);
    assert_eq!(w.insert(1 << 48, 3).unwrap_err().kind(), ErrorKind::OutOfReach);
    w.insert_at(0x20_0000, Level::new(1), 7).unwrap();
    assert_eq!(w.insert(0x20_1000, 8).unwrap_err().kind(), ErrorKind::ConflictLarger);
    w.check_invariants().unwrap();
    drop(w);
    let g = t.pin();
    assert_eq!(t.get(0x1fff, &g), Some(u64::MAX));
    assert_eq!(
        t.get_key_value(0x3f_ffff, &g).map(|(p, v)| (p.addr(), p.level(), v)),
        Some((0x20_0000, Level::new(1), 7))
    );
    assert!(t.contains(0x20_0000, &g) && !t.contains(0x40_0000, &g));
    assert_eq!(t.get_many(&[0x1000, 0x2000, 0x30_0000], &g), [Some(u64::MAX), None, Some(7)]);
    assert_eq!(t.get_pinned(0x1000), Some(u64::MAX));
    let all: Vec<_> = t.iter(&g).map(|(p, v)| (p.addr(), v)).collect();
    assert_eq!(all, [(0x1000, u64::MAX), (0x20_0000, 7)]);
    assert_eq!(t.len(), 2);
}

#[test]
fn split_merge_and_reclamation_counts() {
    let t: sync::MemTable<u64> = sync::MemTable::new();
    let mut w = t.writer();
    w.insert_at(0x20_0000, Level::new(1), 5).unwrap(); // path L2, L1 tables + a box
    w.insert_at(0x20_0000, Level::new(1), 6).unwrap(); // the old box is retired
    assert_eq!(t.reclamation().retired, 1);
    let mut ops = FnOps::new(
        |_: Page, v: &u64, sub: Page| v + (sub.addr() >> 12 & 511),
        |_: Page, c: mem_table::ops::Children<'_, '_, u64>| c.min().copied(),
    );
    w.split_with(0x20_0000, Level::new(1), &mut ops).unwrap(); // the box is retired
    assert_eq!(w.len(), 512);
    assert_eq!(w.get(0x20_3000), Some(9));
    w.merge_with(0x20_0000, Level::new(1), &mut ops).unwrap(); // the bottom table is retired
    assert_eq!(w.get(0x20_3000), Some(6));
    assert_eq!(t.reclamation().retired, 3);
    // Removing the only entry frees its box and the L2 and L1 tables.
    assert_eq!(w.remove_covering(0x21_0000).map(|(p, v)| (p.addr(), v)), Some((0x20_0000, 6)));
    assert_eq!(t.reclamation().retired, 6);
    w.check_invariants().unwrap();
    drop(w);
    assert!(t.is_empty());
    // Frees happen once no reader is pinned: push them along.
    for _ in 0..if cfg!(miri) { 4 } else { 64 } {
        t.collect();
    }
    let r = t.reclamation();
    assert!(r.pending <= r.retired && r.freed + r.pending == r.retired, "{r:?}");
}

#[test]
fn packed_values_and_a_user_type() {
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Rights(u8);
    impl Atom for Rights {
        const BITS: u32 = 3;
        fn into_bits(self) -> u64 {
            self.0 as u64
        }
        fn from_bits(bits: u64) -> Self {
            Rights(bits as u8)
        }
    }
    let t: sync::MemTable<Rights> = sync::MemTable::new();
    let mut w = t.writer();
    w.insert_at(0x4000_0000, Level::new(2), Rights(7)).unwrap();
    w.split(0x4000_0000, Level::new(2)).unwrap();
    w.split(0x4020_0000, Level::new(1)).unwrap();
    w.insert(0x4020_1000, Rights(1)).unwrap();
    assert_eq!(w.merge(0x4020_0000, Level::new(1)).unwrap_err().kind(), ErrorKind::NotMergeable);
    w.insert(0x4020_1000, Rights(7)).unwrap();
    w.merge(0x4020_0000, Level::new(1)).unwrap();
    w.merge(0x4000_0000, Level::new(2)).unwrap();
    assert_eq!(w.len(), 1);
    w.check_invariants().unwrap();
    let t2: sync::MemTable<i8> = sync::MemTable::new();
    t2.writer().insert(0, -1).unwrap();
    assert_eq!(t2.get_pinned(0), Some(-1));
}

// ---- the model-based property ----------------------------------------------

/// A small geometry: three 2-bit levels, the middle one large.
type Tiny = Custom<U12, (U2, Large<U2>, U2)>;
/// Large entries above a level that holds none: their split is refused
/// (`NoEntriesAtLevel`), also at a range's edge.
type Gappy = Custom<U12, (U2, U2, Large<U2>, U2)>;

#[derive(Clone, Copy, Debug)]
enum Op {
    Insert(A, u8),
    InsertAt(A, u8, u8),
    Remove(A),
    Split(A, u8),
    Merge(A, u8),
    /// Every entry of the level below in the slot of `level` at `addr`.
    Fill(A, u8, u8),
    Get(A),
    Range(A, A),
    /// `insert_range` over the range made of two addresses and a shape
    /// (see [`bounds`]), with value-changing split ops if `true`.
    InsertRange(A, A, u8, u8, bool),
    RemoveRange(A, A, u8, bool),
    Clear,
    /// Keeps pages whose number is not a multiple of `n`, flipping the low
    /// bit of the values of those that are odd.
    Retain(u8),
    /// `compact`, or with ops that merge into the minimum if `true`.
    Compact(bool),
    ReserveInsert(A, u8),
    ReserveSplit(A, u8),
    ReserveTables(u8, u8),
    Unreserve,
    /// A report read and then dropped without a commit.
    AbandonReport,
}

/// An address near the others, as coordinates placed per geometry: few
/// regions of the two levels above the bottom, few pages, sometimes
/// misaligned or out of reach.
#[derive(Clone, Copy, Debug)]
struct A(u8, u8, u8, u8);

fn addr(g: &mut Gen) -> A {
    let pick = |g: &mut Gen, n: u8| u8::arbitrary(g) % n;
    A(pick(g, 2), pick(g, 3), pick(g, 4), pick(g, 20))
}

/// The address of `a` on `G`.
fn at<G: mem_table::Geometry>(a: A) -> u64 {
    let shift = |l: u8| G::page_shift(Level::new(l)).unwrap_or(63);
    let x = ((a.0 as u64) << shift(2)) | ((a.1 as u64) << shift(1)) | ((a.2 as u64) << shift(0));
    match a.3 {
        0 => x | 0x800,
        1 => 1 << G::ADDRESS_BITS.min(63),
        2 => x & !((1u64 << shift(1)) - 1),
        3 => x & !((1u64 << shift(2)) - 1),
        _ => x,
    }
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Op {
        let v = u8::arbitrary(g) % 3;
        let l = *g.choose(&[0, 1, 1, 2, 3]).unwrap();
        match u8::arbitrary(g) % 16 {
            0..=3 => Op::Insert(addr(g), v),
            4..=5 => Op::InsertAt(addr(g), l, v),
            6..=7 => Op::Remove(addr(g)),
            8..=9 => Op::Split(addr(g), l),
            10..=11 => Op::Merge(addr(g), l),
            12 => Op::Fill(addr(g), *g.choose(&[1, 1, 2]).unwrap(), v),
            13 => Op::Get(addr(g)),
            14 => Op::Range(addr(g), addr(g)),
            _ => match u8::arbitrary(g) % 24 {
                0..=6 => Op::InsertRange(addr(g), addr(g), u8::arbitrary(g) % 8, v, bool::arbitrary(g)),
                7..=11 => Op::RemoveRange(addr(g), addr(g), u8::arbitrary(g) % 8, bool::arbitrary(g)),
                12 => Op::Clear,
                13..=14 => Op::Retain(u8::arbitrary(g) % 4 + 2),
                15..=16 => Op::Compact(bool::arbitrary(g)),
                17 => Op::ReserveInsert(addr(g), l),
                18 => Op::ReserveSplit(addr(g), l),
                19 => Op::ReserveTables(l, u8::arbitrary(g) % 3),
                20 => Op::Unreserve,
                _ => Op::AbandonReport,
            },
        }
    }
}

/// A value type of the model: what its reads and its values compare as
/// (the value for an `Atom`, the content for an `Arc`).
trait Val: sync::Value + PartialEq + core::fmt::Debug {
    type Cmp: PartialOrd + core::fmt::Debug;
    fn of_read(r: Self::Read<'_>) -> Self::Cmp;
    fn of_val(v: &Self) -> Self::Cmp;
    /// The value with bit `b` of its first word flipped.
    fn flip(&self, b: u64) -> Self;
}

macro_rules! atom_val {
    ($($t:ty),*) => {$(
        impl Val for $t {
            type Cmp = $t;
            fn of_read(r: $t) -> $t {
                r
            }
            fn of_val(v: &$t) -> $t {
                *v
            }
            fn flip(&self, b: u64) -> $t {
                <$t as Atom>::from_bits(self.into_bits() ^ b)
            }
        }
    )*};
}
atom_val!(u8, u32, u64);

/// A value larger than a word.
type Big = Arc<[u64; 8]>;

impl Val for Big {
    type Cmp = [u64; 8];
    fn of_read(r: &[u64; 8]) -> [u64; 8] {
        *r
    }
    fn of_val(v: &Big) -> [u64; 8] {
        **v
    }
    fn flip(&self, b: u64) -> Big {
        let mut x = **self;
        x[0] ^= b;
        Arc::new(x)
    }
}

fn big(v: u8) -> Big {
    Arc::new(core::array::from_fn(|i| (v as u64) << 8 | i as u64))
}

/// The range of two addresses: `a..b` (ordered) mostly, sometimes with an
/// open end, inclusive (usually misaligned), or empty.
fn bounds<G: mem_table::Geometry>(a: A, b: A, shape: u8) -> (Bound<u64>, Bound<u64>) {
    let (a, b) = (at::<G>(a), at::<G>(b));
    let (lo, hi) = (a.min(b), a.max(b));
    // A range to the top of the reach holds a quarter million 1 GiB
    // entries on x86: too slow to compare after every op. There, ranges
    // end by 4 GiB (except for the inclusive shape, which is out of reach).
    let big = G::ADDRESS_BITS > 32;
    let (lo, hi) = if big && shape != 2 { (lo.min(1 << 32), hi.min(1 << 32)) } else { (lo, hi) };
    match shape {
        0 => (Bound::Unbounded, Bound::Excluded(hi)),
        1 if !big => (Bound::Included(lo), Bound::Unbounded),
        1 => (Bound::Included(lo), Bound::Excluded(1 << 32)),
        2 => (Bound::Included(lo), Bound::Included(hi)),
        3 => (Bound::Included(hi), Bound::Excluded(lo)),
        _ => (Bound::Included(lo), Bound::Excluded(hi)),
    }
}

/// Split ops that give sub-pages new values (the low bit flipped on odd
/// sub-pages), and merge ops that merge into the minimum: the same for
/// both tables.
fn page_ops<V: Val>() -> impl PageOps<V> {
    FnOps::new(
        |_: Page, v: &V, sub: Page| v.flip((sub.addr() >> sub.shift()) & 1),
        |_: Page, c: Children<'_, '_, V>| {
            c.cloned().reduce(|a, b| if V::of_val(&b) < V::of_val(&a) { b } else { a })
        },
    )
}

/// The table's contents as maximal runs of pages of one value: two tables
/// with the same runs give every page the same value, whatever the shapes.
fn runs<V: PartialEq>(it: impl Iterator<Item = (Page, V)>) -> Vec<(u64, u64, V)> {
    let mut out: Vec<(u64, u64, V)> = Vec::new();
    for (p, v) in it {
        match out.last_mut() {
            Some((_, last, x)) if last.checked_add(1) == Some(p.addr()) && *x == v => *last = p.last(),
            _ => out.push((p.addr(), p.last(), v)),
        }
    }
    out
}

/// Applies a change report to the shadow: clears each region, then sets
/// its value.
fn apply<V: Val>(shadow: &mut MemTable<V>, report: &[sync::Change<V>]) -> Result<(), String> {
    let mut prev = None;
    for c in report {
        if prev.is_some_and(|p| p >= c.start) || c.start > c.last {
            return Err(format!("report regions out of order or empty at {c:x?}"));
        }
        prev = Some(c.last);
        shadow.remove_range(c.start..=c.last).map_err(|e| format!("shadow remove {c:x?}: {e}"))?;
        if let Some(v) = c.value.clone() {
            shadow.insert_range(c.start..=c.last, v).map_err(|e| format!("shadow insert {c:x?}: {e}"))?;
        }
    }
    Ok(())
}

/// Runs `ops` against both tables; `Err` says where they disagree.
fn run<V, G, R>(ops: &[Op], val: impl Fn(u8) -> V) -> Result<(), String>
where
    V: Val,
    G: mem_table::Geometry,
    R: sync::Reclaim,
{
    let s: sync::MemTable<V, G, R> = sync::MemTable::new();
    let mut m: MemTable<V, G> = MemTable::new();
    let mut w = s.writer();
    w.track_changes();
    // What the change reports say the table holds: on x86, whose levels
    // all split, so that any region can be cleared and set (on `Gappy`, a
    // table of its own geometry could not clear part of a large entry; the
    // test geometries all have 4 KiB pages and fit in 48 bits).
    let mut shadow: MemTable<V> = MemTable::new();
    // Reports after every op, or (in half the runs) every seventh, so that
    // the marks of many ops add up.
    let report_each = ops.len() % 2 == 0;
    let g = s.pin();
    for (k, &op) in ops.iter().enumerate() {
        let same = |what: String| -> Result<(), String> { Err(format!("op {k} {op:?}: {what}")) };
        match op {
            Op::Range(a, b) => {
                let (a, b) = (at::<G>(a), at::<G>(b));
                let (a, b) = (a.min(b), a.max(b));
                let x: Vec<_> = s.range(a..=b, &g).map(|(p, v)| (p, V::of_read(v))).collect();
                let y: Vec<_> = m.range(a..=b).map(|(p, v)| (p, V::of_val(v))).collect();
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Insert(a, v) => {
                let a = at::<G>(a);
                let (x, y) = (w.insert(a, val(v)), m.insert(a, val(v)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::InsertAt(a, l, v) => {
                let a = at::<G>(a);
                let (x, y) = (w.insert_at(a, Level::new(l), val(v)), m.insert_at(a, Level::new(l), val(v)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Remove(a) => {
                let a = at::<G>(a);
                let (x, y) = (w.remove(a), m.remove(a));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Split(a, l) => {
                let a = at::<G>(a);
                let (x, y) = (w.split(a, Level::new(l)), m.split(a, Level::new(l)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Merge(a, l) => {
                let a = at::<G>(a);
                let (x, y) = (w.merge(a, Level::new(l)), m.merge(a, Level::new(l)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Fill(a, l, v) => {
                let a = at::<G>(a);
                let (Some(big), Some(small)) = (G::page_size(Level::new(l)), G::page_size(Level::new(l - 1)))
                else {
                    continue;
                };
                let base = a & !(big - 1);
                for j in 0..big / small {
                    let p = base + j * small;
                    let (x, y) = (
                        w.insert_at(p, Level::new(l - 1), val(v)),
                        m.insert_at(p, Level::new(l - 1), val(v)),
                    );
                    if x != y {
                        return same(format!("at {p:#x}: {x:?} vs {y:?}"));
                    }
                }
            }
            Op::InsertRange(a, b, shape, v, changing) => {
                let r = bounds::<G>(a, b, shape);
                let (x, y) = if changing {
                    (
                        w.insert_range_with(r, val(v), &mut page_ops()),
                        m.insert_range_with(r, val(v), &mut page_ops()),
                    )
                } else {
                    (w.insert_range(r, val(v)), m.insert_range(r, val(v)))
                };
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::RemoveRange(a, b, shape, changing) => {
                let r = bounds::<G>(a, b, shape);
                let (x, y) = if changing {
                    (w.remove_range_with(r, &mut page_ops()), m.remove_range_with(r, &mut page_ops()))
                } else {
                    (w.remove_range(r), m.remove_range(r))
                };
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Clear => {
                w.clear();
                m.clear();
            }
            Op::Retain(n) => {
                let f = |p: Page, v: &mut V| {
                    let i = p.addr() >> G::PAGE_SHIFT;
                    if i % 2 == 1 {
                        *v = v.flip(1);
                    }
                    i % n as u64 != 0
                };
                w.retain(f);
                m.retain(f);
            }
            Op::Compact(with) => {
                let (x, y) = if with {
                    (w.compact_with(&mut page_ops()), m.compact_with(&mut page_ops()))
                } else {
                    (w.compact(), m.compact())
                };
                if x != y {
                    return same(format!("{x} vs {y} merges"));
                }
            }
            Op::ReserveInsert(a, l) => {
                let a = at::<G>(a);
                let (x, y) = (w.reserve_insert(a, Level::new(l)), m.reserve_insert(a, Level::new(l)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::ReserveSplit(a, l) => {
                let a = at::<G>(a);
                let (x, y) = (w.reserve_split(a, Level::new(l)), m.reserve_split(a, Level::new(l)));
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::ReserveTables(l, n) => {
                let (x, y) = (
                    w.reserve_tables(Level::new(l), n as usize),
                    m.reserve_tables(Level::new(l), n as usize),
                );
                if x != y {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
            Op::Unreserve => {
                w.unreserve();
                m.unreserve();
            }
            Op::AbandonReport => {
                let had = w.has_changes();
                let n = w.changes().count();
                if had != (n > 0) || w.has_changes() != had {
                    return same(format!("has_changes {had} with {n} regions, then {}", w.has_changes()));
                }
            }
            Op::Get(a) => {
                let a = at::<G>(a);
                let x = s.get_key_value(a, &g).map(|(p, v)| (p, V::of_read(v)));
                let y = m.get_key_value(a).map(|(p, v)| (p, V::of_val(v)));
                let z = s.get_cloned(a, &g);
                if x != y
                    || w.get(a).map(V::of_read) != m.get(a).map(V::of_val)
                    || z.as_ref() != m.get(a)
                    || s.contains(a, &g) != m.contains(a)
                {
                    return same(format!("{x:?} vs {y:?}"));
                }
            }
        }
        if w.len() != m.len() {
            return same(format!("len {} vs {}", w.len(), m.len()));
        }
        w.check_invariants().map_err(|e| format!("op {k} {op:?}: {e}"))?;
        if report_each || k % 7 == 6 {
            // Alternately the committing report and a transaction committed.
            let report: Vec<_> = if k % 2 == 0 {
                w.take_changes().collect()
            } else {
                let mut r = w.changes();
                let v = r.by_ref().collect();
                r.commit();
                v
            };
            apply(&mut shadow, &report).map_err(|e| format!("op {k} {op:?}: {e}"))?;
            let x = runs(s.iter(&g).map(|(p, v)| (p, V::of_read(v))));
            let y = runs(shadow.iter().map(|(p, v)| (p, V::of_val(v))));
            if x != y || w.has_changes() {
                return same(format!("the reports' shadow differs: {x:x?} vs {y:x?} (report {report:x?})"));
            }
        }
    }
    let x: Vec<_> = s.iter(&g).map(|(p, v)| (p, V::of_read(v))).collect();
    let y: Vec<_> = m.iter().map(|(p, v)| (p, V::of_val(v))).collect();
    if x != y {
        return Err(format!("contents differ: {x:?} vs {y:?}"));
    }
    m.check_invariants()?;
    Ok(())
}

// The `fn` pointer above cannot capture `val`: one function per type.
macro_rules! model {
    ($name:ident, $v:ty, $g:ty, $r:ty, $f:expr) => {
        #[test]
        fn $name() {
            fn prop(ops: Vec<Op>) -> quickcheck::TestResult {
                match run::<$v, $g, $r>(&ops, $f) {
                    Ok(()) => quickcheck::TestResult::passed(),
                    Err(e) => quickcheck::TestResult::error(e),
                }
            }
            let size = if cfg!(miri) { 12 } else { 60 };
            QuickCheck::new()
                .rng(Gen::new(size))
                .tests(CASES)
                .quickcheck(prop as fn(Vec<Op>) -> quickcheck::TestResult);
        }
    };
}

model!(model_u64_x86, u64, mem_table::X86_4Level, sync::Epoch, |v| u64::MAX - v as u64);
model!(model_u32_x86, u32, mem_table::X86_4Level, sync::Epoch, |v| v as u32);
// With the reader-count reclaimer: the runs Miri checks with strict
// provenance (crossbeam-epoch's tagged pointers need permissive provenance).
model!(counted_model_u64_x86, u64, mem_table::X86_4Level, sync::Counted, |v| u64::MAX - v as u64);
model!(counted_model_u8_tiny, u8, Tiny, sync::Counted, |v| v);
model!(counted_model_u64_tiny, u64, Tiny, sync::Counted, |v| (v as u64).wrapping_mul(0x8000_0000_0000_0001));
model!(model_u64_tiny, u64, Tiny, sync::Epoch, |v| (v as u64).wrapping_mul(0x8000_0000_0000_0001));
model!(model_u8_tiny, u8, Tiny, sync::Epoch, |v| v);
model!(model_u8_gappy, u8, Gappy, sync::Epoch, |v| v);
model!(counted_model_u32_gappy, u32, Gappy, sync::Counted, |v| v as u32);
// Values larger than a word, published by pointer (compared by content).
model!(model_arc_x86, Big, mem_table::X86_4Level, sync::Epoch, big);
model!(model_arc_tiny, Big, Tiny, sync::Epoch, big);
model!(counted_model_arc_tiny, Big, Tiny, sync::Counted, big);
model!(counted_model_arc_x86, Big, mem_table::X86_4Level, sync::Counted, big);

// ---- ownership of values published by pointer ------------------------------

/// A value that records its drop (exactly once, checked) and whose every
/// field is its generation number, checked whenever it is read or dropped:
/// a use after free reads garbage (and Miri reports it).
#[derive(Debug)]
struct Probe {
    fields: [u64; 6],
    drops: Arc<Drops>,
}

/// Drops per generation.
#[derive(Debug, Default)]
struct Drops(Mutex<Vec<usize>>, AtomicUsize);

impl Drops {
    fn make(self: &Arc<Self>, gen_: u64) -> Arc<Probe> {
        let mut d = self.0.lock().unwrap();
        assert_eq!(d.len() as u64, gen_, "generations in order");
        d.push(0);
        Arc::new(Probe { fields: [gen_; 6], drops: self.clone() })
    }
    fn of(&self, gen_: u64) -> usize {
        self.0.lock().unwrap()[gen_ as usize]
    }
    fn all_once(&self) -> bool {
        self.0.lock().unwrap().iter().all(|&n| n == 1)
    }
}

impl Probe {
    fn check(&self) -> u64 {
        let g = self.fields[0];
        assert!(self.fields.iter().all(|&f| f == g), "a torn or freed value: {:?}", self.fields);
        g
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let g = self.check();
        let mut d = self.drops.0.lock().unwrap();
        d[g as usize] += 1;
        assert_eq!(d[g as usize], 1, "generation {g} dropped twice");
        self.drops.1.fetch_add(1, Relaxed);
    }
}

/// Every value dropped exactly once, and none while a reader that saw it
/// is pinned: a reader keeps its `&Probe` across the writer's replace,
/// remove, split and merge and their `collect`, and reads it intact. With
/// the reader-count reclaimer every drop is checked to happen as soon as
/// the reader leaves (`exact`); with crossbeam-epoch, only that none
/// happens early or twice.
fn arc_ownership<R: sync::Reclaim>(exact: bool) {
    let d = Arc::new(Drops::default());
    let t: sync::MemTable<Arc<Probe>, mem_table::X86_4Level, R> = sync::MemTable::new();
    let bytes = 2 * size_of::<usize>() + size_of::<Probe>();
    {
        let mut w = t.writer();
        assert!(w.insert(0x1000, d.make(0)).unwrap().is_none());
        drop(w);
        let g = t.pin();
        let r0: &Probe = t.get(0x1000, &g).unwrap();
        // Replace: the caller gets the old value; the table's reference
        // waits for the reader.
        let old = t.writer().insert(0x1000, d.make(1)).unwrap().unwrap();
        assert_eq!(old.check(), 0);
        assert_eq!(Arc::strong_count(&old), 2, "ours and the table's retired one");
        drop(old);
        let r1: &Probe = t.get(0x1000, &g).unwrap();
        // Remove: the same.
        assert_eq!(t.writer().remove(0x1000).unwrap().unwrap().check(), 1);
        // A large entry split into 512 sharing one `Arc`, then merged back.
        let mut w = t.writer();
        w.insert_at(0x20_0000, Level::new(1), d.make(2)).unwrap();
        w.split(0x20_0000, Level::new(1)).unwrap();
        let shared = w.get_key_value(0x20_5000).map(|(p, v)| (p.level(), v.check()));
        assert_eq!(shared, Some((Level::BASE, 2)));
        let c = t.get_cloned(0x20_0000, &g).unwrap();
        assert_eq!(Arc::strong_count(&c), 1 + 512 + 1, "ours, 512 slots, the retired large entry");
        drop(c);
        let r2: &Probe = t.get(0x3f_f000, &g).unwrap();
        let mut by_ptr = FnOps::new(
            |_: Page, v: &Arc<Probe>, _: Page| v.clone(),
            |_: Page, mut c: mem_table::ops::Children<'_, '_, Arc<Probe>>| {
                let first = c.next()?;
                c.all(|x| Arc::ptr_eq(x, first)).then(|| first.clone())
            },
        );
        w.merge_with(0x20_0000, Level::new(1), &mut by_ptr).unwrap();
        w.check_invariants().unwrap();
        drop(w);
        let r = t.reclamation();
        // 0 and 1; the three tables the remove emptied; the split's large
        // 2; the merged table and its 512 references.
        assert_eq!(r.pending, 2 + 3 + 1 + 1 + 512, "{r:?}");
        assert!(r.pending_bytes >= (3 + 512) * bytes, "{r:?}");
        for _ in 0..8 {
            t.collect();
        }
        // Nothing the reader saw is dropped while it is pinned.
        assert_eq!((d.of(0), d.of(1), d.of(2)), (0, 0, 0));
        assert_eq!((r0.check(), r1.check(), r2.check()), (0, 1, 2));
        assert_eq!(t.get(0x20_0000, &g).map(Probe::check), Some(2));
    }
    for _ in 0..if exact { 1 } else { 64 } {
        t.collect();
    }
    if exact {
        assert_eq!((d.of(0), d.of(1)), (1, 1), "dropped once the reader left");
        assert_eq!(d.of(2), 0, "still in the table");
        assert_eq!(t.reclamation().pending, 0);
    }
    assert_eq!(t.get_pinned(0x20_0000).map(|v| v.check()), Some(2));
    drop(t);
    if exact {
        assert!(d.all_once(), "{:?}", d.0.lock().unwrap());
    } else {
        // crossbeam-epoch may keep some garbage past the table: never twice,
        // and the table's own are dropped with it.
        assert_eq!(d.of(2), 1);
    }
}

#[test]
fn counted_arc_ownership() {
    arc_ownership::<sync::Counted>(true);
}

#[test]
fn arc_ownership_epoch() {
    arc_ownership::<sync::Epoch>(false);
}

/// A table of `Arc`s dropped with values in every representation frees
/// them all, once each.
#[test]
fn counted_arc_table_drop_frees_every_value() {
    let d = Arc::new(Drops::default());
    let t: sync::MemTable<Arc<Probe>, Tiny, sync::Counted> = sync::MemTable::new();
    let mut w = t.writer();
    w.insert(0x1000, d.make(0)).unwrap();
    w.insert_at(1 << 16, Level::new(1), d.make(1)).unwrap();
    w.insert_at(2 << 16, Level::new(1), d.make(2)).unwrap();
    w.split(2 << 16, Level::new(1)).unwrap(); // 4 slots share generation 2
    w.insert(0x2000, d.make(3)).unwrap();
    w.insert(0x2000, d.make(4)).unwrap(); // 3 retired, freed at once: no reader
    assert_eq!(d.of(3), 1);
    assert_eq!(w.remove(0x2000).unwrap().map(|v| v.check()), Some(4));
    assert_eq!(d.of(4), 1);
    w.check_invariants().unwrap();
    drop(w);
    assert_eq!(t.len(), 6);
    drop(t);
    assert!(d.all_once(), "{:?}", d.0.lock().unwrap());
}
