//! The raw layer stores a value in one of several forms, chosen at compile
//! time from its type (see `src/raw/node.rs`):
//!
//! | value type here | niche (bottom cells hold `Option<V>`) | large value inline in its slot word |
//! |---|---|---|
//! | `u64` | no | no (the reference) |
//! | [`Nz`] (`NonZeroU32`) | yes | yes |
//! | `u16` | no | yes |
//! | [`Pad`] (`(u8, u16)`, one padding byte) | no | yes, padding beside the tag |
//! | [`Two`] (an enum of two `u8` variants) | yes | yes |
//! | [`Flag`] (`(bool, u16)`, one padding byte) | yes, in the `bool` | yes, padding beside the tag |
//! | `Box<u32>` | yes | no, needs drop |
//! | `String` | yes | no, needs drop |
//!
//! Each test runs the same random op list on a `MemTable<u64>` and on a
//! table of another form, and after every op compares results, errors,
//! contents, lookups and invariants. The `u64` table's form (a presence
//! bitmap, values aside) is the one the model suite and the fuzz targets
//! check against their reference model, so a difference is a bug in a form.
//! Under Miri the lists are short, and they reach every unsafe path of each
//! form (the padding byte of [`Pad`] included).

use std::fmt::Debug;
use std::num::NonZeroU32;

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::{Custom, Geometry, Large};
use mem_table::typenum::{U2, U3, U12};
use mem_table::{Level, MemTable};

/// Three 3-bit levels over 4 KiB pages, large entries at level 1.
type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
/// Large entries at two levels, the root included.
type TwoLarge = Custom<U12, (U2, Large<U2>, Large<U2>)>;

/// A value type under test: made from, and read back as, a small number.
trait Form: Clone + PartialEq + Debug {
    fn of(n: u8) -> Self;
    fn n(&self) -> u8;
}

impl Form for u64 {
    fn of(n: u8) -> Self {
        (u64::from(n) << 40) | 0xff
    }
    fn n(&self) -> u8 {
        (self >> 40) as u8
    }
}

/// A niche and four bytes: both forms at once.
#[derive(Clone, PartialEq, Debug)]
struct Nz(NonZeroU32);

impl Form for Nz {
    fn of(n: u8) -> Self {
        Nz(NonZeroU32::new(u32::from(n) + 1).expect("non-zero"))
    }
    fn n(&self) -> u8 {
        (self.0.get() - 1) as u8
    }
}

impl Form for u16 {
    fn of(n: u8) -> Self {
        u16::from(n) | 0x100
    }
    fn n(&self) -> u8 {
        *self as u8
    }
}

/// Four bytes, one of them padding: inline, and the slot word is never
/// read whole while it holds one.
#[derive(Clone, PartialEq, Debug)]
struct Pad(u8, u16);

impl Form for Pad {
    fn of(n: u8) -> Self {
        Pad(n, u16::from(n) * 3)
    }
    fn n(&self) -> u8 {
        self.0
    }
}

/// An enum whose unused discriminants are a niche.
#[derive(Clone, PartialEq, Debug)]
enum Two {
    Even(u8),
    Odd(u8),
}

impl Form for Two {
    fn of(n: u8) -> Self {
        if n % 2 == 0 { Two::Even(n) } else { Two::Odd(n) }
    }
    fn n(&self) -> u8 {
        match self {
            Two::Even(n) | Two::Odd(n) => *n,
        }
    }
}

/// A niche (the `bool`) and a padding byte: both forms, and the niche cell
/// written `None` leaves the other bytes uninitialized.
#[derive(Clone, PartialEq, Debug)]
struct Flag(bool, u16);

impl Form for Flag {
    fn of(n: u8) -> Self {
        Flag(n % 2 == 1, u16::from(n) << 4)
    }
    fn n(&self) -> u8 {
        (self.1 >> 4) as u8
    }
}

impl Form for Box<u32> {
    fn of(n: u8) -> Self {
        Box::new(u32::from(n))
    }
    fn n(&self) -> u8 {
        **self as u8
    }
}

impl Form for String {
    fn of(n: u8) -> Self {
        format!("v{n}")
    }
    fn n(&self) -> u8 {
        self[1..].parse().expect("a number")
    }
}

#[test]
fn the_forms_are_the_ones_meant() {
    use std::mem::size_of;
    assert!(size_of::<Option<u64>>() > size_of::<u64>());
    assert_eq!(size_of::<Option<Nz>>(), size_of::<Nz>());
    assert!(size_of::<Option<u16>>() > size_of::<u16>());
    assert!(size_of::<Option<Pad>>() > size_of::<Pad>());
    assert_eq!(size_of::<Option<Two>>(), size_of::<Two>());
    assert_eq!((size_of::<Option<Flag>>(), size_of::<Flag>()), (4, 4));
    assert_eq!(size_of::<Option<Box<u32>>>(), size_of::<Box<u32>>());
    assert_eq!(size_of::<Option<String>>(), size_of::<String>());
    // Inline large values leave no value array in upper tables: a table
    // of `Nz` holding only a large entry is smaller than one of `u64`.
    fn bytes<V: Form>() -> usize {
        let mut t = MemTable::<V, Tiny>::new();
        t.insert_at(0x8000, Level::new(1), V::of(1)).expect("insert");
        t.stats().bytes()
    }
    assert!(bytes::<Nz>() < bytes::<u64>(), "{} vs {}", bytes::<Nz>(), bytes::<u64>());
}

/// One step of a test.
#[derive(Clone, Copy, Debug)]
enum Op {
    Insert(u64, u8),
    InsertAt(u64, u8, u8),
    Remove(u64),
    RemoveCovering(u64),
    Split(u64, u8),
    Merge(u64, u8),
    InsertRange(u64, u64, u8),
    RemoveRange(u64, u64),
    /// Fills the bottom table around the address, page by page, with one
    /// value (so that a merge or compact can follow).
    Fill(u64, u8),
    Compact,
    Retain(u8),
    Bump(u64),
    PopFirst,
    PopLast,
    CloneTable,
    IntoIterBack,
    Clear,
}

/// The benchmarks' SplitMix64 generator.
#[allow(dead_code)] // this test uses a part of it
#[path = "../benches/common/rng.rs"]
mod rng;
use rng::Rng;

/// An op list for geometry `G`: addresses in reach, clustered so that
/// tables fill up (for merges) and empty again.
fn ops<G: Geometry>(seed: u64, len: usize) -> Vec<Op> {
    let mut r = Rng::new(seed);
    let pages = 1u64 << (G::ADDRESS_BITS - G::PAGE_SHIFT);
    let levels = G::LEVELS as u64;
    let addr =
        |r: &mut Rng| ((r.below(pages.min(64)) + r.below(2) * r.below(pages)) % pages) << G::PAGE_SHIFT;
    (0..len)
        .map(|_| {
            let a = addr(&mut r);
            let n = r.below(4) as u8;
            let l = r.below(levels) as u8;
            match r.below(20) {
                0..=4 => Op::Insert(a, n),
                5 | 6 => Op::InsertAt(a, l, n),
                7 => Op::Remove(a),
                8 => Op::RemoveCovering(a),
                9 => Op::Split(a, 1 + r.below(levels - 1) as u8),
                10 => Op::Merge(a, 1 + r.below(levels - 1) as u8),
                11 => Op::Fill(a, n),
                12 => Op::InsertRange(a, r.below(pages.min(80)) << G::PAGE_SHIFT, n),
                13 => Op::RemoveRange(a, r.below(pages.min(40)) << G::PAGE_SHIFT),
                14 => Op::Compact,
                15 => Op::Retain(1 + r.below(3) as u8),
                16 => Op::Bump(a),
                17 => [Op::PopFirst, Op::PopLast][r.below(2) as usize],
                18 => [Op::CloneTable, Op::IntoIterBack][r.below(2) as usize],
                _ => {
                    if r.below(8) == 0 {
                        Op::Clear
                    } else {
                        Op::Insert(a, n)
                    }
                }
            }
        })
        .collect()
}

/// What an op returned, in numbers.
type Outcome = Result<Option<(u64, u8, u8)>, String>;

/// Applies `op` to `t`.
fn apply<V: Form, G: Geometry, B: Backend + Clone>(t: &mut MemTable<V, G, B>, op: Op) -> Outcome {
    let kind = |e: mem_table::ErrorKind| format!("{e:?}");
    let page = |p: mem_table::Page, v: &V| Some((p.addr(), p.level().index() as u8, v.n()));
    match op {
        Op::Insert(a, n) => {
            t.insert(a, V::of(n)).map(|o| o.map(|v| (a, 0, v.n()))).map_err(|e| kind(e.kind()))
        }
        Op::InsertAt(a, l, n) => {
            let a = a & !(MemTable::<V, G, B>::page_size(Level::new(l)).unwrap_or(1) - 1);
            t.insert_at(a, Level::new(l), V::of(n))
                .map(|o| o.map(|v| (a, l, v.n())))
                .map_err(|e| kind(e.kind()))
        }
        Op::Remove(a) => t.remove(a).map(|o| o.map(|v| (a, 0, v.n()))).map_err(|e| kind(e.kind())),
        Op::RemoveCovering(a) => Ok(t.remove_covering(a).and_then(|(p, v)| page(p, &v))),
        Op::Split(a, l) => t.split(a, Level::new(l)).map(|()| None).map_err(|e| kind(e.kind())),
        Op::Merge(a, l) => t.merge(a, Level::new(l)).map(|()| None).map_err(|e| kind(e.kind())),
        Op::InsertRange(a, len, n) => {
            t.insert_range(a..a.saturating_add(len), V::of(n)).map(|()| None).map_err(|e| kind(e.kind()))
        }
        Op::RemoveRange(a, len) => {
            t.remove_range(a..a.saturating_add(len)).map(|()| None).map_err(|e| kind(e.kind()))
        }
        Op::Fill(a, n) => {
            let span = MemTable::<V, G, B>::page_size(Level::new(1)).expect("level 1 holds entries");
            let base = a & !(span - 1);
            for p in (base..base + span).step_by(1 << G::PAGE_SHIFT) {
                if t.insert(p, V::of(n)).is_err() {
                    break;
                }
            }
            Ok(None)
        }
        Op::Compact => Ok(Some((t.compact() as u64, 0, 0))),
        Op::Retain(m) => {
            t.retain(|p, v| (p.addr() >> G::PAGE_SHIFT) % u64::from(m) != 0 || v.n() == 0);
            Ok(None)
        }
        Op::Bump(a) => Ok(t.get_mut(a).map(|v| {
            *v = V::of(v.n().wrapping_add(1) % 4);
            (a, 0, v.n())
        })),
        Op::PopFirst => Ok(t.pop_first().and_then(|(p, v)| page(p, &v))),
        Op::PopLast => Ok(t.pop_last().and_then(|(p, v)| page(p, &v))),
        Op::CloneTable => {
            let c = t.clone();
            assert!(c == *t, "a clone equals its source");
            *t = c;
            Ok(None)
        }
        Op::IntoIterBack => {
            let fresh = MemTable::with_backend(t.backend().clone());
            let all: Vec<(mem_table::Page, V)> = std::mem::replace(t, fresh).into_iter().rev().collect();
            for (p, v) in all.into_iter().rev() {
                t.insert_at(p.addr(), p.level(), v).expect("reinsert what was there");
            }
            Ok(None)
        }
        Op::Clear => {
            t.clear();
            Ok(None)
        }
    }
}

/// Everything observable about `t`, in numbers: entries both ways, and
/// lookups of `probes` one at a time and batched.
fn observe<V: Form, G: Geometry, B: Backend>(t: &MemTable<V, G, B>, probes: &[u64; 8]) -> Vec<(u64, u8, u8)> {
    t.check_invariants().expect("invariants");
    let fwd: Vec<_> = t.iter().map(|(p, v)| (p.addr(), p.level().index() as u8, v.n())).collect();
    let mut back: Vec<_> = t.iter().rev().map(|(p, v)| (p.addr(), p.level().index() as u8, v.n())).collect();
    back.reverse();
    assert_eq!(fwd, back, "both ways");
    assert_eq!(fwd.len(), t.len());
    let mut out = fwd;
    let many = t.get_many(probes);
    for (k, &a) in probes.iter().enumerate() {
        let one = t.get_key_value(a).map(|(p, v)| (p.addr(), p.level().index() as u8, v.n()));
        assert_eq!(one.map(|e| e.2), many[k].map(V::n), "get_many agrees with get at {a:#x}");
        assert_eq!(one.map(|e| e.2), t.get(a).map(V::n));
        out.push(one.unwrap_or((a, 0xff, 0xff)));
    }
    out
}

/// Runs `seeds` op lists on a `u64` table and a `V` table side by side.
fn differential<V: Form, G: Geometry, B: Backend + Clone>(backend: B, seeds: u64, len: usize) {
    for seed in 0..seeds {
        let mut want = MemTable::<u64, G, B>::with_backend(backend.clone());
        let mut got = MemTable::<V, G, B>::with_backend(backend.clone());
        for (k, op) in ops::<G>(seed, len).into_iter().enumerate() {
            let ctx = || format!("seed {seed}, op {k}: {op:?}");
            let want_out = apply(&mut want, op);
            assert_eq!(apply(&mut got, op), want_out, "{}", ctx());
            let a = match op {
                Op::Insert(a, _) | Op::InsertAt(a, ..) | Op::Remove(a) | Op::Merge(a, _) | Op::Bump(a) => a,
                _ => 0,
            };
            let probes = [a, a + 1, a ^ 0x1000, a + 0x20_0000, 0, a | 0xfff, a >> 1, a.wrapping_sub(0x1000)];
            assert_eq!(observe(&got, &probes), observe(&want, &probes), "{}", ctx());
        }
    }
}

const SEEDS: u64 = if cfg!(miri) { 2 } else { 60 };
const LEN: usize = if cfg!(miri) { 40 } else { 300 };

macro_rules! forms {
    ($($name:ident: $v:ty, $g:ty;)*) => {$(
        #[test]
        fn $name() {
            differential::<$v, $g, Heap>(Heap, SEEDS, LEN);
            // The forms do not depend on the backend: under Miri, one will do.
            if !cfg!(miri) {
                differential::<$v, $g, Arena>(Arena, SEEDS / 2, LEN);
                differential::<$v, $g, Pool>(Pool::new(64), SEEDS / 2, LEN);
            }
        }
    )*};
}

forms! {
    niche_inline_tiny: Nz, Tiny;
    niche_inline_two_large: Nz, TwoLarge;
    inline_tiny: u16, Tiny;
    inline_padded_tiny: Pad, Tiny;
    inline_padded_two_large: Pad, TwoLarge;
    niche_enum_two_large: Two, TwoLarge;
    niche_padded_tiny: Flag, Tiny;
    niche_boxed_tiny: Box<u32>, Tiny;
    niche_string_two_large: String, TwoLarge;
}
