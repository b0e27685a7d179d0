//! Packed bottom tables: every move between forms, both ways, against a
//! `BTreeMap`, with the invariants (capacities, rank words, store counts)
//! checked after every step, on every backend.
//!
//! - One table filled slot by slot in a scattered order up to all 512 and
//!   emptied again passes through every packed class and the direct form
//!   both ways; its level-0 bytes follow the form.
//! - An insert-remove pair at a boundary does not move the table back and
//!   forth (hysteresis: the bytes stay the same).
//! - Range inserts into packed tables, clones of packed tables, and
//!   reservations that a packed table's growth draws on.
//! - `Pool` keeps direct tables.

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::collections::BTreeMap;

use common::{MemTable, TestBackend, every_backend};
use mem_table::X86_4Level;
use mem_table::backend::{Arena, Heap, Pool};

type X86<B> = MemTable<u64, X86_4Level, B>;

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;

/// Slot `k` of a permutation of the 512 slots of one bottom table.
fn scattered(k: u64) -> u64 {
    (k * 167) % 512
}

/// The bytes of bottom tables, spares given back first (a plan keeps one
/// table of every form ready).
fn level0_bytes<B: TestBackend>(t: &mut X86<B>) -> usize {
    t.shrink_to_fit();
    t.stats().level(0).bytes
}

/// Whether to compare everything after step `k`: every step, but under
/// Miri (slow) only around every sixty-fourth.
fn full_check(k: u64) -> bool {
    !cfg!(miri) || k % 64 < 2
}

/// Every backend, or under Miri (slow) the heap alone: the raw layer's
/// code is the same on each.
fn backends(heap: fn(), arena: fn(), pool: fn()) {
    if cfg!(miri) {
        heap();
    } else {
        every_backend(heap, arena, pool);
    }
}

fn agree<B: TestBackend>(t: &X86<B>, m: &BTreeMap<u64, u64>) {
    t.check_invariants().unwrap();
    assert_eq!(t.len(), m.len());
    let got: Vec<(u64, u64)> = t.iter().map(|(p, v)| (p.addr(), *v)).collect();
    let want: Vec<(u64, u64)> = m.iter().map(|(&a, &v)| (a, v)).collect();
    assert_eq!(got, want);
    let back: Vec<u64> = t.iter().rev().map(|(p, _)| p.addr()).collect();
    assert_eq!(back, want.iter().rev().map(|&(a, _)| a).collect::<Vec<_>>());
    // Every slot; under Miri (slow) every seventh, which still meets
    // occupied and vacant slots of every map word.
    for slot in (0..512).step_by(if cfg!(miri) { 7 } else { 1 }) {
        let a = MIB2 + slot * KIB4;
        assert_eq!(t.get(a), m.get(&a), "slot {slot}");
    }
    let addrs: [u64; 8] = core::array::from_fn(|k| MIB2 + scattered(k as u64 * 61) * KIB4);
    let many = t.get_many(&addrs);
    for (a, v) in addrs.iter().zip(many) {
        assert_eq!(v, m.get(a));
    }
}

fn fill_and_empty_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    let mut sizes = Vec::new();
    for k in 0..512 {
        let a = MIB2 + scattered(k) * KIB4;
        assert_eq!(t.insert(a, k), Ok(None));
        m.insert(a, k);
        if full_check(k) {
            agree(&t, &m);
        }
        if !cfg!(miri) || k == 0 || k == 511 {
            sizes.push(level0_bytes(&mut t));
        }
    }
    // A full table is a direct one, whatever the backend.
    let full = *sizes.last().unwrap();
    if B::NAME == "heap" {
        // The bytes grow with the entries, in steps, and one entry costs
        // far less than the direct form. (An arena's bytes are its chunks'.)
        assert!(sizes[0] * 10 < full, "{}: {} vs {full}", B::NAME, sizes[0]);
        assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "{}: {sizes:?}", B::NAME);
        let steps = sizes.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(cfg!(miri) || steps >= 6, "{}: {steps} form changes on the way up", B::NAME);
        // Growth stops at the class of a quarter of the fan-out: the 129th
        // entry goes direct (the class of 256 is for shrinking tables).
        if !cfg!(miri) {
            assert!(
                sizes[127] * 3 < full && sizes[128] == full,
                "{}: {} then {}",
                B::NAME,
                sizes[127],
                sizes[128]
            );
        }
    } else if B::NAME == "pool" {
        assert!(sizes.iter().all(|&s| s == full), "pool keeps direct tables");
    }
    // Replacing values never changes the form.
    for k in 0..512 {
        let a = MIB2 + scattered(k) * KIB4;
        assert_eq!(t.insert(a, k + 1000), Ok(Some(k)));
        m.insert(a, k + 1000);
    }
    agree(&t, &m);
    assert_eq!(level0_bytes(&mut t), full);
    let mut down = Vec::new();
    for k in (1..512).rev() {
        let a = MIB2 + scattered(k) * KIB4;
        assert_eq!(t.remove(a), Ok(Some(k + 1000)));
        m.remove(&a);
        if full_check(k) {
            agree(&t, &m);
        }
        if !cfg!(miri) || k == 1 {
            down.push(level0_bytes(&mut t));
        }
    }
    if B::NAME == "heap" {
        // Back to a small form, one entry left.
        assert!(down.last().unwrap() * 10 < full, "{}: {down:?}", B::NAME);
    }
    assert_eq!(t.remove(MIB2 + scattered(0) * KIB4), Ok(Some(1000)));
    m.clear();
    agree(&t, &m);
}

#[test]
fn one_table_through_every_form_and_back() {
    backends(fill_and_empty_on::<Heap>, fill_and_empty_on::<Arena>, fill_and_empty_on::<Pool>);
}

fn no_flapping_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    // Four entries fill the smallest packed class; a fifth moves it up.
    for k in 0..5 {
        t.insert(MIB2 + k * KIB4, k).unwrap();
    }
    // Heap bytes are per table, so they tell the form (an arena's are its
    // chunks', a pool's its block: those only check invariants here).
    let heap = B::NAME == "heap";
    let five = level0_bytes(&mut t);
    for round in 0..20 {
        t.remove(MIB2 + 4 * KIB4).unwrap();
        t.check_invariants().unwrap();
        let now = level0_bytes(&mut t);
        assert!(!heap || now == five, "round {round}: a remove at the boundary moved the table");
        t.insert(MIB2 + 4 * KIB4, 4).unwrap();
        let now = level0_bytes(&mut t);
        assert!(!heap || now == five, "round {round}: an insert at the boundary moved the table");
    }
    // Down to two entries: the removed slots keep their indices (they are
    // marked changed) until a report takes the marks, so the table stays.
    for k in 2..4 {
        t.remove(MIB2 + k * KIB4).unwrap();
    }
    assert!(!heap || level0_bytes(&mut t) == five, "a move with the indices still marked");
    // Once the report took them, the next remove moves it to the smallest form.
    // Two entries, two removed slots in one range, and the fifth slot.
    assert_eq!(t.take_changes().count(), 4);
    t.remove(MIB2 + 4 * KIB4).unwrap();
    assert!(!heap || level0_bytes(&mut t) < five, "no move to a smaller form");
    let left: Vec<_> = t.changes().map(|c| (c.start, c.last, c.value.is_some())).collect();
    assert_eq!(left, [(MIB2 + 4 * KIB4, MIB2 + 5 * KIB4 - 1, false)]);
    t.check_invariants().unwrap();
}

#[test]
fn a_boundary_pair_does_not_flap() {
    backends(no_flapping_on::<Heap>, no_flapping_on::<Arena>, no_flapping_on::<Pool>);
}

fn ranges_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    for k in [3u64, 100, 300] {
        t.insert(MIB2 + k * KIB4, k).unwrap();
        m.insert(MIB2 + k * KIB4, k);
    }
    // A range that the packed table has room for, then ones it has not (not
    // the whole table, which would be one 2 MiB entry).
    for (lo, hi) in [(10u64, 12u64), (20, 40), (200, 330), (0, 510)] {
        t.insert_range(MIB2 + lo * KIB4..MIB2 + (hi + 1) * KIB4, 7).unwrap();
        for s in lo..=hi {
            m.insert(MIB2 + s * KIB4, 7);
        }
        agree(&t, &m);
    }
    // Removing ranges down to a few entries, then clearing.
    t.remove_range(MIB2 + 2 * KIB4..MIB2 + 510 * KIB4).unwrap();
    m.retain(|&a, _| !(MIB2 + 2 * KIB4..MIB2 + 510 * KIB4).contains(&a));
    agree(&t, &m);
    // A fresh table made by a range of a few pages.
    t.insert_range(5 * MIB2 + KIB4..5 * MIB2 + 4 * KIB4, 9).unwrap();
    for s in 1..4 {
        m.insert(5 * MIB2 + s * KIB4, 9);
    }
    t.check_invariants().unwrap();
    assert_eq!(t.len(), m.len());
    assert_eq!(t.iter().map(|(p, v)| (p.addr(), *v)).collect::<Vec<_>>(), m.into_iter().collect::<Vec<_>>());
}

#[test]
fn range_inserts_into_packed_tables() {
    backends(ranges_on::<Heap>, ranges_on::<Arena>, ranges_on::<Pool>);
}

fn clone_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    for (k, n) in [(0u64, 1u64), (1, 5), (2, 40), (3, 129), (4, 512)] {
        for s in 0..n {
            t.insert(k * MIB2 + scattered(s) * KIB4, s).unwrap();
        }
    }
    let mut c = t.clone();
    c.check_invariants().unwrap();
    if B::NAME == "heap" {
        assert_eq!(level0_bytes(&mut c), level0_bytes(&mut t));
    }
    assert!(c.iter().eq(t.iter()));
}

#[test]
fn clones_keep_forms() {
    backends(clone_on::<Heap>, clone_on::<Arena>, clone_on::<Pool>);
}

#[test]
fn growth_draws_on_a_reservation() {
    let mut t: X86<Heap> = MemTable::new();
    for k in 0..4 {
        t.insert(MIB2 + k * KIB4, k).unwrap();
    }
    // The table is packed and full: the next vacant insert needs a table.
    t.reserve_insert(MIB2 + 4 * KIB4, mem_table::Level::BASE).unwrap();
    let (r, allocations, _) = counting::counted(|| t.insert(MIB2 + 4 * KIB4, 4));
    assert_eq!(r, Ok(None));
    assert_eq!(allocations, 0, "the move to a larger form allocated after a reservation");
    t.check_invariants().unwrap();
}

/// Both ends of `t.range(lo..=hi)` stepped in the order `pattern` gives
/// (a set bit: the back), a clone taken halfway and run out, against the
/// model (of 4 KiB entries: those overlapping the range).
fn meet<B: TestBackend>(t: &X86<B>, m: &BTreeMap<u64, u64>, lo: u64, hi: u64, pattern: u64) {
    let want: Vec<(u64, u64)> = m.range(lo & !(KIB4 - 1)..=hi).map(|(&a, &v)| (a, v)).collect();
    let mut it = t.range(lo..=hi);
    let (mut front, mut back) = (Vec::new(), Vec::new());
    let mut k = 0;
    loop {
        if k == want.len() / 2 {
            let rest: Vec<(u64, u64)> = it.clone().map(|(p, v)| (p.addr(), *v)).collect();
            let mut whole = front.clone();
            whole.extend(&rest);
            whole.extend(back.iter().rev());
            assert_eq!(whole, want, "clone after {k} steps of {lo:#x}..={hi:#x}");
        }
        let step = if pattern >> (k % 64) & 1 == 1 { it.next_back() } else { it.next() };
        let Some((p, v)) = step else { break };
        if pattern >> (k % 64) & 1 == 1 {
            back.push((p.addr(), *v));
        } else {
            front.push((p.addr(), *v));
        }
        k += 1;
    }
    assert!(it.next().is_none() && it.next_back().is_none());
    front.extend(back.iter().rev());
    assert_eq!(front, want, "{lo:#x}..={hi:#x}, pattern {pattern:#x}");
}

fn iteration_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    // Three bottom tables side by side: 24, 100 and 300 entries (two packed
    // classes and, where the backend packs, direct), scattered.
    for (table, n) in [(1u64, 24u64), (2, 100), (3, 300)] {
        for k in 0..n {
            let a = table * MIB2 + scattered(k) * KIB4;
            t.insert(a, a ^ 0x5a5a).unwrap();
            m.insert(a, a ^ 0x5a5a);
        }
    }
    agree(&t, &m);
    let sum: u64 = t.values().fold(0, |s, v| s.wrapping_add(*v));
    assert_eq!(sum, m.values().fold(0u64, |s, v| s.wrapping_add(*v)));
    let ends = [MIB2, MIB2 + 63 * KIB4, MIB2 + 64 * KIB4, 2 * MIB2 + 200 * KIB4, 3 * MIB2 - 1, 4 * MIB2 - 1];
    let patterns: &[u64] = if cfg!(miri) {
        &[0xaaaa_aaaa_aaaa_aaaa]
    } else {
        &[0, u64::MAX, 0xaaaa_aaaa_aaaa_aaaa, 0x0f0f_3c3c_9999_0ff0]
    };
    for (i, &lo) in ends.iter().enumerate() {
        for &hi in &ends[i..] {
            for &p in patterns {
                meet(&t, &m, lo, hi, p);
            }
        }
    }
}

/// The iterators' fast steps through packed words (values found by
/// running on, not by offset) meet exactly, from both ends, in part
/// ranges, and clone mid-way.
#[test]
fn iterators_step_through_packed_words() {
    backends(iteration_on::<Heap>, iteration_on::<Arena>, iteration_on::<Pool>);
}

fn sparse_iteration_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    // Bottom tables of each sparse class's sizes (1 and 3 entries: 4
    // indices; 7: 8; 16: 16), their slots in several map words, at the
    // words' edges (0, 63, 64, 511) among them.
    let tables: [(u64, &[u64]); 5] = [
        (1, &[0]),
        (2, &[63, 64, 511]),
        (3, &[5, 70, 130, 200, 300, 400, 510]),
        (4, &[0, 1, 2, 62, 63, 64, 65, 127, 128, 255, 256, 300, 383, 384, 500, 511]),
        (6, &[64]),
    ];
    for (table, slots) in tables {
        for &k in slots {
            let a = table * MIB2 + k * KIB4;
            t.insert(a, a ^ 0x3c3c).unwrap();
            m.insert(a, a ^ 0x3c3c);
        }
    }
    agree(&t, &m);
    if B::NAME == "heap" {
        // Every bottom table is sparse: 64, 64, 96 and 176 bytes, and 64.
        assert_eq!(level0_bytes(&mut t), 64 + 64 + 96 + 176 + 64);
    }
    let sum: u64 = t.iter().fold(0, |s, (p, v)| s.wrapping_add(p.addr() ^ *v));
    assert_eq!(sum, m.iter().fold(0u64, |s, (a, v)| s.wrapping_add(a ^ v)));
    // Bounds inside tables, between entries of one word and of two, on
    // entries and beside them.
    let ends = [
        0,
        MIB2 + KIB4,
        2 * MIB2 + 63 * KIB4,
        2 * MIB2 + 64 * KIB4 - 1,
        3 * MIB2 + 131 * KIB4,
        4 * MIB2 + 64 * KIB4,
        4 * MIB2 + 300 * KIB4 - 1,
        5 * MIB2,
        7 * MIB2 - 1,
    ];
    let patterns: &[u64] = if cfg!(miri) {
        &[0x9999_9999_9999_9999]
    } else {
        &[0, u64::MAX, 0xaaaa_aaaa_aaaa_aaaa, 0x0f0f_3c3c_9999_0ff0, 0x8421_8421_8421_8421]
    };
    for (i, &lo) in ends.iter().enumerate() {
        for &hi in &ends[i..] {
            for &p in patterns {
                meet(&t, &m, lo, hi, p);
            }
        }
    }
    // A partial walk, then the rest by fold, from each end.
    for k in 0..m.len() {
        let mut it = t.iter();
        let head: Vec<u64> = it.by_ref().take(k).map(|(p, _)| p.addr()).collect();
        let tail = it.rev().fold(Vec::new(), |mut v, (p, _)| {
            v.push(p.addr());
            v
        });
        let want: Vec<u64> = m.keys().copied().collect();
        assert_eq!(head, want[..k]);
        assert_eq!(tail, want[k..].iter().rev().copied().collect::<Vec<_>>(), "after {k}");
    }
}

/// The iterators' runs through sparse tables (a whole table's positions,
/// not a map word) meet exactly, from both ends, in part ranges, clone
/// mid-way, and give the rest back to a fold.
#[test]
fn iterators_step_through_sparse_runs() {
    backends(sparse_iteration_on::<Heap>, sparse_iteration_on::<Arena>, sparse_iteration_on::<Pool>);
}

/// A full bottom table (direct) at `MIB2`, and its model.
fn full_table<B: TestBackend>() -> (X86<B>, BTreeMap<u64, u64>) {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    for k in 0..512 {
        let a = MIB2 + k * KIB4;
        t.insert(a, k).unwrap();
        m.insert(a, k);
    }
    (t, m)
}

fn bulk_removes_on<B: TestBackend>() {
    let (mut t, _) = full_table::<B>();
    let direct = level0_bytes(&mut t);
    // Each bulk remove leaves 10 entries: a bottom table that small moves to
    // a packed form where the backend packs, and the entries stay.
    type Op<B> = fn(&mut X86<B>, &mut BTreeMap<u64, u64>);
    let ops: [(&str, Op<B>); 5] = [
        ("retain", |t, m| {
            t.retain(|p, _| p.addr() < MIB2 + 10 * KIB4);
            m.retain(|&a, _| a < MIB2 + 10 * KIB4);
        }),
        ("remove_range", |t, m| {
            t.remove_range(MIB2 + 10 * KIB4..2 * MIB2).unwrap();
            m.retain(|&a, _| a < MIB2 + 10 * KIB4);
        }),
        ("drain_range", |t, m| {
            let gone: Vec<u64> =
                t.drain_range(MIB2 + 5 * KIB4..MIB2 + 507 * KIB4).unwrap().map(|(p, _)| p.addr()).collect();
            assert_eq!(gone.len(), 502);
            m.retain(|&a, _| !(MIB2 + 5 * KIB4..MIB2 + 507 * KIB4).contains(&a));
        }),
        ("extract_if", |t, m| {
            assert_eq!(t.extract_if(.., |p, _| p.addr() % (51 * KIB4) != 0).count(), 502);
            m.retain(|&a, _| a % (51 * KIB4) == 0);
        }),
        ("pop_first", |t, m| {
            for _ in 0..502 {
                let (p, v) = t.pop_first().unwrap();
                assert_eq!(m.pop_first(), Some((p.addr(), v)));
            }
        }),
    ];
    for (name, op) in ops {
        let (mut t, mut m) = full_table::<B>();
        op(&mut t, &mut m);
        assert_eq!(m.len(), 10, "{name}");
        agree(&t, &m);
        let after = level0_bytes(&mut t);
        match B::NAME {
            "pool" => assert_eq!(after, direct, "{name}: pool keeps direct tables"),
            _ if B::NAME == "heap" => assert!(after * 5 < direct, "{name}: {after} bytes left of {direct}"),
            _ => {}
        }
        // The table goes on working in its new form.
        for k in 100..140 {
            t.insert(MIB2 + k * KIB4, k).unwrap();
            m.insert(MIB2 + k * KIB4, k);
        }
        agree(&t, &m);
    }
}

/// Bulk removes (`retain`, `remove_range`, `drain_range`, `extract_if`,
/// `pop_first`) move a bottom table they leave nearly empty to a small
/// form, as a single `remove` does.
#[test]
fn bulk_removes_shrink_forms() {
    backends(bulk_removes_on::<Heap>, bulk_removes_on::<Arena>, bulk_removes_on::<Pool>);
}

fn dense_run_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    let mut sizes = Vec::new();
    for k in 0..512 {
        let a = MIB2 + k * KIB4;
        t.insert(a, k).unwrap();
        m.insert(a, k);
        if full_check(k) {
            agree(&t, &m);
        }
        // (Miri runs the moves; the sizes are checked natively.)
        if !cfg!(miri) {
            sizes.push(level0_bytes(&mut t));
        }
    }
    agree(&t, &m);
    if B::NAME == "heap" && !cfg!(miri) {
        // Packed classes of 4, 8, 16, 32 and 64 entries, then direct: the
        // 65th entry of a dense run skips the classes of 128 and 256.
        let steps: Vec<usize> = sizes.windows(2).filter(|w| w[0] != w[1]).map(|w| w[1]).collect();
        assert_eq!(steps.len(), 5, "{sizes:?}");
        // Sparse classes of 4 (64 bytes), 8 and 16; packed ones of 32 and
        // 64 (664 bytes), with maps and ranks.
        assert_eq!(sizes[63], sizes[0] + (664 - 64), "64 entries: the class of 64");
        assert_eq!(sizes[64], sizes[511], "65 entries: direct");
    }
    // A scattered table of as many entries stays packed.
    let mut s: X86<B> = MemTable::with_backend(B::roomy());
    for k in 0..65 {
        s.insert(MIB2 + scattered(k) * KIB4, k).unwrap();
    }
    s.check_invariants().unwrap();
    if B::NAME == "heap" && !cfg!(miri) {
        assert!(level0_bytes(&mut s) * 2 < sizes[511]);
    }
}

/// A table filling up densely (ascending inserts) moves from the class of
/// an eighth of the fan-out straight to the direct form; scattered entries
/// as many do not.
#[test]
fn a_dense_run_goes_direct_early() {
    backends(dense_run_on::<Heap>, dense_run_on::<Arena>, dense_run_on::<Pool>);
}

/// The pages a report names, each with its value (`None`: removed).
fn reported<B: TestBackend>(t: &mut X86<B>) -> BTreeMap<u64, Option<u64>> {
    let mut out = BTreeMap::new();
    for c in t.changes() {
        let mut a = c.start;
        while a <= c.last {
            out.insert(a, c.value.copied());
            a += KIB4;
        }
    }
    out
}

/// A sparse table keeps an index for each removed slot until a report
/// takes its mark: inserts, removes and reports in one bottom table of at
/// most 16 entries, against a model of the values and of the marks.
fn sparse_marks_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    let mut marked = std::collections::BTreeSet::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let rounds = if cfg!(miri) { 120 } else { 3000 };
    for step in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Slots at both ends of the table and a few between: 0, 511 and
        // the SWAR search's lane neighbours.
        let slot =
            [0, 1, 3, 4, 5, 7, 8, 15, 16, 63, 64, 200, 255, 256, 300, 400, 510, 511][(x % 18) as usize];
        let a = MIB2 + slot * KIB4;
        match (x >> 8) % 8 {
            0..=3 if m.len() < 16 || m.contains_key(&a) => {
                assert_eq!(t.insert(a, step), Ok(m.insert(a, step)));
                marked.insert(a);
            }
            0..=5 => {
                let old = m.remove(&a);
                assert_eq!(t.remove(a), Ok(old));
                if old.is_some() {
                    marked.insert(a);
                }
            }
            6 => {
                let want: BTreeMap<u64, Option<u64>> =
                    marked.iter().map(|&a| (a, m.get(&a).copied())).collect();
                assert_eq!(reported(&mut t), want, "step {step}");
                if (x >> 16) % 2 == 0 {
                    t.changes().commit();
                    marked.clear();
                }
            }
            _ => {
                // A value changed in place is marked too.
                if let Some((&a, _)) = m.iter().nth((x >> 20) as usize % m.len().max(1)) {
                    *t.get_mut(a).unwrap() += 1;
                    *m.get_mut(&a).unwrap() += 1;
                    marked.insert(a);
                }
            }
        }
        // (Under Miri, every fourth step: the structure is checked
        // natively after each.)
        if !cfg!(miri) || step % 4 == 0 {
            t.check_invariants().unwrap();
        }
        if full_check(step) {
            agree(&t, &m);
        }
    }
    let want: BTreeMap<u64, Option<u64>> = marked.iter().map(|&a| (a, m.get(&a).copied())).collect();
    assert_eq!(reported(&mut t), want);
}

#[test]
fn sparse_tables_keep_removed_slots_until_reported() {
    backends(sparse_marks_on::<Heap>, sparse_marks_on::<Arena>, sparse_marks_on::<Pool>);
}

/// A bottom table made where a removed table's mark still stands has every
/// slot marked, which the sparse form cannot say: it gets a form with maps,
/// and the report covers the whole region.
fn marked_region_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    // A neighbour keeps the level-1 table, so that only the bottom table
    // goes.
    t.insert(MIB2, 1).unwrap();
    t.insert(2 * MIB2, 0).unwrap();
    let sparse = level0_bytes(&mut t) / 2;
    t.changes().commit();
    // The table is freed, its parent slot marked.
    assert_eq!(t.remove(MIB2), Ok(Some(1)));
    t.insert(MIB2 + 7 * KIB4, 2).unwrap();
    t.check_invariants().unwrap();
    if B::NAME == "heap" {
        assert!(level0_bytes(&mut t) > 2 * sparse, "a sparse table with every slot marked");
    }
    let r = reported(&mut t);
    assert_eq!(r.len(), 512);
    assert_eq!(r[&(MIB2 + 7 * KIB4)], Some(2));
    assert_eq!(r[&MIB2], None);
    t.changes().commit();
    // Its marks taken, a remove moves it back to the sparse form (the
    // commit did not: `level0_bytes` gave back the free tables it could
    // have moved it into).
    t.insert(MIB2 + 8 * KIB4, 3).unwrap();
    assert_eq!(t.remove(MIB2 + 8 * KIB4), Ok(Some(3)));
    t.check_invariants().unwrap();
    if B::NAME == "heap" {
        assert_eq!(level0_bytes(&mut t), 2 * sparse);
    }
    assert_eq!(t.get(MIB2 + 7 * KIB4), Some(&2));
    assert_eq!(t.get(2 * MIB2), Some(&0));
}

#[test]
fn a_marked_region_gets_a_table_with_maps() {
    backends(marked_region_on::<Heap>, marked_region_on::<Arena>, marked_region_on::<Pool>);
}

/// A table that lost most of its entries keeps a form with maps while the
/// removed slots are marked (a sparse form would need an index for each),
/// even through `shrink_to_fit`. A commit clears the marks but moves no
/// table: the regions a report yielded borrow their values past the
/// report's end, so a value read after the report is dropped is still in
/// place (Miri checks the read; the address is checked on every backend).
/// `shrink_to_fit` then moves the table to the sparse form.
fn commit_then_shrink_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    for k in 0..40 {
        t.insert(MIB2 + scattered(k) * KIB4, k).unwrap();
        m.insert(MIB2 + scattered(k) * KIB4, k);
    }
    // A neighbour with four entries, never removed: its form is the one
    // the shrunk table must reach.
    for k in 0..4 {
        t.insert(2 * MIB2 + scattered(k) * KIB4, k).unwrap();
        m.insert(2 * MIB2 + scattered(k) * KIB4, k);
    }
    t.changes().commit();
    let heap = B::NAME == "heap";
    // The bytes of one table holding `n` entries from the start.
    let fresh = |n: u64| {
        let mut one: X86<B> = MemTable::with_backend(B::roomy());
        for k in 0..n {
            one.insert(2 * MIB2 + scattered(k) * KIB4, k).unwrap();
        }
        level0_bytes(&mut one)
    };
    // Four entries left take the form that holds twice as many (the
    // hysteresis): the second sparse class, as for five to eight.
    let (small, want) = (fresh(4), fresh(4) + fresh(5));
    for k in 4..40 {
        assert_eq!(t.remove(MIB2 + scattered(k) * KIB4), Ok(Some(k)));
        m.remove(&(MIB2 + scattered(k) * KIB4));
        t.check_invariants().unwrap();
    }
    // A kept entry changed, so that the report yields a reference into the
    // table that is moving if anything moves.
    let kept = MIB2 + scattered(0) * KIB4;
    *t.get_mut(kept).unwrap() = 100;
    m.insert(kept, 100);
    let marked = level0_bytes(&mut t);
    assert!(!heap || marked > 2 * small, "the table moved to a sparse form with its slots marked");
    // A report read and dropped, not committed: the marks stay.
    assert_eq!(t.changes().count(), 37);
    assert!(t.has_changes());
    let report: Vec<_> = t.take_changes().collect(); // committed as it drops
    let v = report.iter().find_map(|c| c.value).expect("the changed value is reported");
    assert_eq!(*v, 100, "a value the committed report yielded");
    let at: *const u64 = v;
    drop(report);
    assert!(!t.has_changes());
    assert_eq!(t.get(kept).map(|v| v as *const u64), Some(at), "the commit moved the table");
    t.check_invariants().unwrap();
    assert!(!heap || level0_bytes(&mut t) == want, "shrink_to_fit did not move the table to the sparse form");
    agree(&t, &m);
    // The same through `changes` and `commit`.
    for k in 4..20 {
        t.insert(MIB2 + scattered(k) * KIB4, k).unwrap();
        m.insert(MIB2 + scattered(k) * KIB4, k);
    }
    t.changes().commit();
    for k in 4..20 {
        t.remove(MIB2 + scattered(k) * KIB4).unwrap();
        m.remove(&(MIB2 + scattered(k) * KIB4));
    }
    let at: *const u64 = t.get(kept).unwrap();
    t.changes().commit();
    assert!(!t.has_changes());
    assert_eq!(t.get(kept).map(|v| v as *const u64), Some(at), "the commit moved the table");
    assert!(!heap || level0_bytes(&mut t) == want, "shrink_to_fit did not move the table");
    t.check_invariants().unwrap();
    agree(&t, &m);
}

#[test]
fn a_commit_moves_no_table_and_shrink_to_fit_does() {
    backends(commit_then_shrink_on::<Heap>, commit_then_shrink_on::<Arena>, commit_then_shrink_on::<Pool>);
}
