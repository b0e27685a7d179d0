//! `next` and `next_back` interleaved on one iterator (`iter`, `range`,
//! `keys`, `values`), against a `BTreeMap` reference, on random tables of
//! four geometries: the two ends must meet exactly once (no entry twice,
//! none lost), also when both are in the same bitmap word of a bottom
//! table, with range bounds inside pages and words, around large entries,
//! and after a clone or a `fold` from half-way. Seeded, so a failure
//! repeats; a smaller case count under Miri
//! (`MIRIFLAGS=-Zmiri-strict-provenance cargo +nightly miri test --test rev_iter`).

use std::collections::BTreeMap;

use mem_table::geometry::{Custom, Geometry, Large, X86_4Level};
use mem_table::typenum::{U2, U3, U7, U8, U12, U58};
use mem_table::{Iter, Level, MemTable, Page};

/// 8-slot bottom tables (a part of one bitmap word), large entries at
/// level 1.
type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
/// 128-slot bottom tables (two words), large entries of 4 slots above.
type Mid = Custom<U12, (U7, Large<U2>, U2)>;
/// One level: the root is the bottom table (four words), so both cursors
/// start inside it.
type Flat = Custom<U12, (U8,)>;

/// Pages of 2^58 bytes, 64 address bits: the last bottom table ends at
/// the top of the address space, and its tables are smaller than a word.
type Top = Custom<U58, (U3, U3)>;

#[cfg(not(miri))]
const CASES: usize = 400;
#[cfg(miri)]
const CASES: usize = 6;

/// The benchmarks' SplitMix64 generator.
#[allow(dead_code)] // this test uses a part of it
#[path = "../benches/common/rng.rs"]
mod rng;
use rng::Rng;

/// An entry as the iterators yield it: address, level, value.
type Item = (u64, usize, u32);

/// The reference: each entry's level, value and size, by address.
type Model = BTreeMap<u64, (usize, u32, u64)>;

fn item((p, v): (Page, &u32)) -> Item {
    (p.addr(), p.level().index(), *v)
}

/// A random table of `G` and its reference: a cluster of `span` base pages
/// from `start` at a random density, with large entries of level 1 (if
/// `large`) inserted first; entries that conflict with them are refused by
/// the table and left out of the reference.
fn table<G: Geometry>(rng: &mut Rng, start: u64, span: u64, large: Option<u64>) -> (MemTable<u32, G>, Model) {
    let mut t: MemTable<u32, G> = MemTable::new();
    let mut model = Model::new();
    if let Some(size) = large {
        for _ in 0..rng.below(3) {
            let a = (start + (rng.below(span) << 12)) / size * size;
            let v = rng.next_u64() as u32;
            if t.insert_at(a, Level::new(1), v).is_ok() {
                model.insert(a, (1, v, size));
            }
        }
    }
    let density = [2, 30, 70, 97, 100][rng.below(5) as usize];
    for i in 0..span {
        if rng.percent(density) {
            let a = start + (i << 12);
            let v = rng.next_u64() as u32;
            if t.insert(a, v).is_ok() {
                model.insert(a, (0, v, 1 << 12));
            }
        }
    }
    assert_eq!(t.len(), model.len());
    (t, model)
}

/// The reference's entries overlapping `lo..=last`, ascending.
fn expected(model: &Model, lo: u64, last: u64) -> Vec<Item> {
    model
        .iter()
        .filter(|&(&a, &(_, _, size))| a <= last && a + (size - 1) >= lo)
        .map(|(&a, &(l, v, _))| (a, l, v))
        .collect()
}

/// Steps `it` from both ends in a random pattern until both are done, and
/// checks every step against `exp`; `exact` if the iterator knows its
/// length (a whole-table walk). Half-way, now and then, a clone must go on
/// exactly as the original (both ways), and a `fold` of a clone must see
/// exactly the entries still between the ends.
fn walk<G: Geometry>(rng: &mut Rng, mut it: Iter<'_, u32, G>, exp: &[Item], exact: bool, what: &str) {
    let (mut i, mut j) = (0, exp.len());
    // How often the front steps: mostly one end, even, or strictly
    // alternating (-1), or in bursts of a few from one end (-2).
    let front_percent: i64 = [50, 10, 90, -1, -2, 100, 0][rng.below(7) as usize];
    let mut toggle = rng.percent(50);
    let mut burst = 0;
    let mut after_end = 0;
    let mut steps = 0;
    while after_end < 4 {
        steps += 1;
        assert!(steps < 4 * exp.len() + 100, "{what}: no end");
        if exact {
            assert_eq!(it.size_hint(), (j - i, Some(j - i)), "{what}: size_hint at {i}..{j}");
        }
        if rng.percent(3) {
            let rest: Vec<Item> = it.clone().map(item).collect();
            assert_eq!(rest, exp[i..j], "{what}: a clone at {i}..{j}");
            let rest: Vec<Item> = it.clone().rev().map(item).collect();
            assert!(rest.iter().eq(exp[i..j].iter().rev()), "{what}: a clone, reversed, at {i}..{j}");
            let rest = it.clone().fold(Vec::new(), |mut acc, e| {
                acc.push(item(e));
                acc
            });
            assert_eq!(rest, exp[i..j], "{what}: fold at {i}..{j}");
        }
        let front = match front_percent {
            -1 => {
                toggle = !toggle;
                toggle
            }
            -2 => {
                if burst == 0 {
                    burst = 1 + rng.below(5);
                    toggle = !toggle;
                }
                burst -= 1;
                toggle
            }
            p => rng.percent(p as u64),
        };
        if front {
            let got = it.next().map(item);
            if i < j {
                assert_eq!(got, Some(exp[i]), "{what}: next at {i}..{j}");
                i += 1;
            } else {
                assert_eq!(got, None, "{what}: next after the end");
            }
        } else {
            let got = it.next_back().map(item);
            if i < j {
                assert_eq!(got, Some(exp[j - 1]), "{what}: next_back at {i}..{j}");
                j -= 1;
            } else {
                assert_eq!(got, None, "{what}: next_back after the end");
            }
        }
        if i == j {
            after_end += 1;
        }
    }
    assert_eq!(it.next(), None, "{what}: fused");
    assert_eq!(it.next_back(), None, "{what}: fused");
}

/// Many random tables and bounds of `G`, walked every way.
fn mixed<G: Geometry>(seed: u64, start: u64, span: u64, large: Option<u64>) {
    let mut rng = Rng::new(seed);
    for case in 0..CASES {
        let (t, model) = table::<G>(&mut rng, start, span, large);
        let end = start + (span << 12);
        let what = format!("seed {seed} case {case}");
        // The whole table.
        walk(&mut rng, t.iter(), &expected(&model, 0, u64::MAX), true, &format!("{what} iter"));
        // Ranges with bounds anywhere, inside pages and words, sometimes
        // a single page or empty.
        for _ in 0..3 {
            let from = start - 0x1000.min(start);
            let lo = from + rng.below(end + 0x1000 - from);
            let last =
                if rng.percent(10) { lo + rng.below(0x1000) } else { lo + rng.below(end + 0x1000 - lo) };
            let exp = expected(&model, lo, last);
            if rng.percent(50) {
                walk(&mut rng, t.range(lo..=last), &exp, false, &format!("{what} range {lo:#x}..={last:#x}"));
            } else {
                let exp = if last > lo { expected(&model, lo, last - 1) } else { Vec::new() };
                walk(&mut rng, t.range(lo..last), &exp, false, &format!("{what} range {lo:#x}..{last:#x}"));
            }
        }
        // The views, interleaved the same way.
        let exp = expected(&model, 0, u64::MAX);
        let (mut keys, mut values) = (t.keys(), t.values());
        let (mut i, mut j) = (0, exp.len());
        while i < j {
            if rng.percent(50) {
                assert_eq!(keys.next().map(|p| p.addr()), Some(exp[i].0), "{what} keys");
                assert_eq!(values.next(), Some(&exp[i].2), "{what} values");
                i += 1;
            } else {
                assert_eq!(keys.next_back().map(|p| p.addr()), Some(exp[j - 1].0), "{what} keys");
                assert_eq!(values.next_back(), Some(&exp[j - 1].2), "{what} values");
                j -= 1;
            }
        }
        assert_eq!((keys.next(), keys.next_back()), (None, None), "{what} keys");
        assert_eq!((values.next(), values.next_back()), (None, None), "{what} values");
    }
}

#[test]
fn x86_4level_mixed_ends_meet_once() {
    // Three bottom tables around a 2 MiB boundary (fewer under Miri).
    let span = if cfg!(miri) { 160 } else { 3 * 512 };
    mixed::<X86_4Level>(1, 0x4000_0000 - 0x20_0000 - 0x2_0000, span, Some(0x20_0000));
}

#[test]
fn tiny_mixed_ends_meet_once() {
    mixed::<Tiny>(2, 0x8000, 64, Some(8 << 12));
}

#[test]
fn mid_mixed_ends_meet_once() {
    mixed::<Mid>(3, 0x3_0000, 3 * 128, Some(128 << 12));
}

#[test]
fn flat_mixed_ends_meet_once() {
    mixed::<Flat>(4, 0, 256, None);
}

/// Both ends in one bitmap word, every split of a full word: `k` steps
/// from the front and the rest from the back (and the other way round)
/// yield each entry once.
#[test]
fn full_word_every_split() {
    let t: MemTable<u32> = (0..64u64).map(|i| ((0x40 + i) << 12, i as u32)).collect();
    for k in 0..=64 {
        for front_first in [true, false] {
            let mut it = t.iter();
            let mut seen = Vec::new();
            if front_first {
                seen.extend(it.by_ref().take(k).map(|(_, v)| *v));
                seen.extend(it.by_ref().rev().map(|(_, v)| *v));
            } else {
                seen.extend(it.by_ref().rev().take(64 - k).map(|(_, v)| *v));
                seen.extend(it.by_ref().map(|(_, v)| *v));
            }
            assert_eq!(it.next(), None);
            assert_eq!(it.next_back(), None);
            seen.sort_unstable();
            assert_eq!(seen, (0..64).collect::<Vec<u32>>(), "k {k} front first {front_first}");
        }
    }
}

/// At the top of the address space: the back's word arithmetic must not
/// overflow, and ranges up to `u64::MAX` meet exactly once.
#[test]
fn top_of_the_address_space() {
    let mut rng = Rng::new(5);
    for case in 0..CASES * 4 {
        let mut t: MemTable<u32, Top> = MemTable::new();
        let mut model = Model::new();
        let density = [10, 50, 90, 100][rng.below(4) as usize];
        for i in 0..64u64 {
            if rng.percent(density) {
                let v = rng.next_u64() as u32;
                t.insert(i << 58, v).unwrap();
                model.insert(i << 58, (0, v, 1 << 58));
            }
        }
        let what = format!("top case {case}");
        walk(&mut rng, t.iter(), &expected(&model, 0, u64::MAX), true, &what);
        let lo = rng.next_u64();
        walk(
            &mut rng,
            t.range(lo..),
            &expected(&model, lo, u64::MAX),
            false,
            &format!("{what} range {lo:#x}.."),
        );
    }
}
