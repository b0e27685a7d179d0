//! Level-1 tables in the links form (a few child links in one or two cache
//! lines): every move between the links classes and the direct form, both
//! ways, against a `BTreeMap`, with the invariants checked after every
//! step, on every backend.
//!
//! - One level-1 table given a child in one 2 MiB region after another
//!   passes through the links classes (4, 8, 16 links) to the direct form;
//!   its level-1 bytes follow the form, and removals bring it back.
//! - A large entry, a merge, `compact` and a range insert widen a links
//!   table; a refused merge leaves it as it was.
//! - Random inserts, removes, reports and commits over one level-1 table,
//!   with every marked page found in the report.
//! - `Pool` keeps direct tables.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{MemTable, TestBackend, every_backend};
use mem_table::backend::{Arena, Heap, Pool};
use mem_table::{Level, X86_4Level};

type X86<B> = MemTable<u64, X86_4Level, B>;

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
/// A 1 GiB region away from address 0: one level-1 table.
const GIB: u64 = 0x40_0000_0000;

/// The bytes of level-1 tables, spares given back first.
fn level1_bytes<B: TestBackend>(t: &mut X86<B>) -> usize {
    t.shrink_to_fit();
    t.stats().level(1).bytes
}

fn agree<B: TestBackend>(t: &X86<B>, m: &BTreeMap<u64, u64>) {
    t.check_invariants().unwrap();
    assert_eq!(t.len(), m.len());
    let got: Vec<(u64, u64)> = t.iter().map(|(p, v)| (p.addr(), *v)).collect();
    let want: Vec<(u64, u64)> = m.iter().map(|(&a, &v)| (a, v)).collect();
    assert_eq!(got, want);
    for (&a, &v) in m {
        assert_eq!(t.get(a), Some(&v));
        // A page beside it in a region with no child is absent.
        assert_eq!(t.get(a ^ (MIB2 * 64)).copied(), m.get(&(a ^ (MIB2 * 64))).copied());
    }
}

fn grow_and_narrow_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    let links = B::NAME != "pool";
    // Bytes are a table's own only on the heap (an arena counts chunks).
    let exact = B::NAME == "heap";
    // Bytes by children: the links classes, then the direct form.
    let form_bytes = |n: usize| match n {
        1..=4 => 64,
        5..=8 => 96,
        9..=16 => 176,
        _ => 8 + 4096 + 128 + 4096,
    };
    let region = |k: u64| GIB + ((k * 37) % 512) * MIB2 + (k % 3) * KIB4;
    // (A roomy `Pool` has 16 tables a level.)
    let n = if links { 24 } else { 12 };
    for k in 0..n {
        assert_eq!(t.insert(region(k), k), Ok(None));
        m.insert(region(k), k);
        agree(&t, &m);
        if exact {
            assert_eq!(level1_bytes(&mut t), form_bytes(k as usize + 1), "{} children", k + 1);
        }
    }
    // The marks of the removed children keep their indices until a report
    // takes them: commit, then remove down to two children.
    t.changes().commit();
    for k in (2..n).rev() {
        assert_eq!(t.remove(region(k)), Ok(Some(k)));
        m.remove(&region(k));
        agree(&t, &m);
        t.changes().commit();
    }
    // Back in the smallest links class: two children, at most half of 4.
    if exact {
        assert_eq!(level1_bytes(&mut t), form_bytes(4));
    }
    // One insert and one remove at the boundary do not move it.
    for _ in 0..3 {
        t.insert(region(30), 0).unwrap();
        t.remove(region(30)).unwrap();
        t.changes().commit();
        agree(&t, &m);
    }
    if exact {
        assert_eq!(level1_bytes(&mut t), form_bytes(4));
    }
}

#[test]
fn links_tables_grow_and_narrow() {
    every_backend(grow_and_narrow_on::<Heap>, grow_and_narrow_on::<Arena>, grow_and_narrow_on::<Pool>);
}

fn large_entries_on<B: TestBackend>() {
    let l1 = Level::new(1);
    // A large entry in a links table widens it.
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    t.insert(GIB + KIB4, 1).unwrap();
    t.insert_at(GIB + 4 * MIB2, l1, 2).unwrap();
    let m: BTreeMap<u64, u64> = [(GIB + KIB4, 1), (GIB + 4 * MIB2, 2)].into();
    agree(&t, &m);
    // A full bottom table under a links table merges (and the table
    // widens); a refused merge changes nothing.
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    for i in 0..512u64 {
        t.insert(GIB + MIB2 + i * KIB4, i % 2).unwrap();
        m.insert(GIB + MIB2 + i * KIB4, i % 2);
    }
    t.insert(GIB + 9 * MIB2, 7).unwrap();
    m.insert(GIB + 9 * MIB2, 7);
    let before = level1_bytes(&mut t);
    assert!(t.merge(GIB + MIB2, l1).is_err());
    agree(&t, &m);
    assert_eq!(level1_bytes(&mut t), before);
    for i in 0..512u64 {
        *t.get_mut(GIB + MIB2 + i * KIB4).unwrap() = 3;
    }
    t.merge(GIB + MIB2, l1).unwrap();
    let mut m: BTreeMap<u64, u64> = [(GIB + MIB2, 3), (GIB + 9 * MIB2, 7)].into();
    assert_eq!(t.get_key_value(GIB + MIB2 + 5 * KIB4).map(|(p, v)| (p.level(), *v)), Some((l1, 3)));
    agree(&t, &m);
    // `compact` merges a full bottom table under a links table too.
    let mut c: X86<B> = MemTable::with_backend(B::roomy());
    for i in 0..512u64 {
        c.insert(GIB + 3 * MIB2 + i * KIB4, 5).unwrap();
    }
    c.insert(GIB + 11 * MIB2, 6).unwrap();
    assert_eq!(c.compact(), 1);
    agree(&c, &[(GIB + 3 * MIB2, 5), (GIB + 11 * MIB2, 6)].into());
    // A range insert that puts a 2 MiB entry in a links table, and one
    // that links more children than it has indices for.
    t.insert(GIB + 20 * MIB2 + KIB4, 8).unwrap();
    m.insert(GIB + 20 * MIB2 + KIB4, 8);
    t.insert_range(GIB + 40 * MIB2..GIB + 42 * MIB2 + 2 * KIB4, 9).unwrap();
    m.insert(GIB + 40 * MIB2, 9);
    m.insert(GIB + 41 * MIB2, 9);
    m.insert(GIB + 42 * MIB2, 9);
    m.insert(GIB + 42 * MIB2 + KIB4, 9);
    let mut u: X86<B> = MemTable::with_backend(B::roomy());
    u.insert(GIB + KIB4, 1).unwrap();
    u.insert_range(GIB + MIB2 - KIB4..GIB + 7 * MIB2 + KIB4, 2).unwrap();
    assert_eq!(u.len(), 1 + 1 + 6 + 1);
    u.check_invariants().unwrap();
    // Tables at the second level-1 slot hold 2 MiB entries: reported at level 1.
    let got: Vec<(u64, u8)> = t.iter().map(|(p, _)| (p.addr(), p.level().index() as u8)).collect();
    assert_eq!(got.len(), m.len());
    agree(&t, &m);
    // Clones keep the forms.
    let k = t.clone();
    agree(&k, &m);
}

#[test]
fn large_entries_merges_and_ranges_widen_links_tables() {
    every_backend(large_entries_on::<Heap>, large_entries_on::<Arena>, large_entries_on::<Pool>);
}

/// Random inserts, removes, reports and commits over the children of one
/// level-1 table (up to 20 of them, in 2 MiB regions), so that it moves
/// between every links class and the direct form with marks standing;
/// every page marked since the last commit lies in a reported change with
/// its current value.
fn random_on<B: TestBackend>() {
    let mut t: X86<B> = MemTable::with_backend(B::roomy());
    let mut m = BTreeMap::new();
    let mut marked = BTreeSet::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    // (A roomy `Pool` has 16 tables a level.)
    let regions = if B::NAME == "pool" { 14 } else { 20 };
    let rounds = if cfg!(miri) { 150 } else { 4000 };
    for step in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let a = GIB + (x % regions) * 23 * MIB2 + ((x >> 5) % 2) * KIB4;
        match (x >> 12) % 10 {
            0..=4 => {
                assert_eq!(t.insert(a, step), Ok(m.insert(a, step)));
                marked.insert(a);
            }
            5..=7 => {
                let old = m.remove(&a);
                assert_eq!(t.remove(a), Ok(old));
                if old.is_some() {
                    marked.insert(a);
                }
            }
            8 => {
                let changes: Vec<_> = t.changes().map(|c| (c.start, c.last, c.value.copied())).collect();
                for &a in &marked {
                    let c = changes.iter().find(|c| c.0 <= a && a <= c.1);
                    let (s, _, v) = c.unwrap_or_else(|| panic!("step {step}: {a:#x} marked, not reported"));
                    if *s == a {
                        assert_eq!(*v, m.get(&a).copied(), "step {step}: {a:#x}'s reported value, in {c:x?}");
                    }
                }
            }
            _ => {
                t.changes().commit();
                marked.clear();
                assert!(t.changes().next().is_none());
            }
        }
        if !cfg!(miri) || step % 8 == 0 {
            agree(&t, &m);
        }
    }
}

#[test]
fn random_changes_over_one_links_table() {
    every_backend(random_on::<Heap>, random_on::<Arena>, random_on::<Pool>);
}
