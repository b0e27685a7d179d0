//! The `sync` target's interpreter: `sync::Writer` (and the concurrent
//! table's readers) driven side by side with [`mem_table::MemTable`], the
//! reference, op by op, single-threaded.
//!
//! A case is one configuration byte (value type, geometry, reclaimer: see
//! [`Config`]) and then ops until the input runs out (at most
//! [`MAX_OPS`]). The model's rules:
//!
//! - The writer's methods have the reference's semantics and errors (the
//!   module docs of `mem_table::sync` say so): each op runs on both with
//!   the same arguments and fresh, equal values, and their results (values
//!   returned, errors with kind, address, level and the value handed back)
//!   must be equal. After every op: `len` and `check_invariants` of both;
//!   every 8th op, after a caught panic, and at the end, the whole contents
//!   (`iter`: every entry's page, level and value).
//! - Readers (`get`, `get_key_value`, `get_cloned`, `contains`, `get_many`,
//!   the `*_pinned` forms, `range`, and the writer's own `get`) answer as
//!   the reference's lookups do.
//! - Change reports: once `track_changes` is on, a shadow table (x86, whose
//!   levels all split, so any region can be cleared and set) starts empty
//!   and takes every committed report (`take_changes`, or `changes` then
//!   `commit`): each region is cleared, then set to its value. After each,
//!   the shadow must give every page the value the table gives it, and
//!   `has_changes` must be false. An uncommitted report leaves the marks:
//!   `has_changes` is unchanged, and says whether a report has regions.
//! - Planned panics ([`Bomb`]) in the consumer's code: split and merge ops
//!   that panic at their `n`th call, a `retain` closure that panics at its
//!   `n`th entry (before changing it). Both tables document the same for
//!   `split_with` and `merge_with` (nothing changed) and visit entries in
//!   the same order in `retain` (the entries before stay done): there both
//!   must panic, or not, alike, and agree after. For range operations and
//!   `compact_with` their docs differ, so after a panic each table is
//!   checked on its own: its invariants and `len` against its iteration.
//!   The reference promises no more (its range operations split an edge in
//!   place and may stop inside it: a page can then hold the split's value,
//!   neither the old one nor the range's). The concurrent table's range
//!   operations promise that the slots done so far stay done and the one
//!   being built is unchanged (each slot's new subtree is built aside,
//!   with the range's work in it, and published whole): so every page
//!   holds the value it held before or the one the whole op would have
//!   given it (the reference, run without the panic on a copy). Not so for
//!   `compact_with`, whose merges into the minimum go through values that
//!   are neither (a merge done, the one above not). Then, if the two
//!   tables differ, the reference is rebuilt from the concurrent table's
//!   entries.
//! - Readers that stay pinned: `Hold` pins a guard (or reuses the one held)
//!   and keeps what a lookup borrowed under it (for `Arc` values, the
//!   pointer to the value); the writer goes on; `Unhold` reads every kept
//!   value again through its pointer, and it must be intact, then unpins.
//!   A value freed while a guard that saw it is pinned is a use after free
//!   (AddressSanitizer's report).
//! - At the end: the reclaimer's counts add up (`freed + pending ==
//!   retired`), `collect` brings `pending` to 0 (at once with `Counted`,
//!   within a bounded number of rounds with `Epoch`), and once both tables
//!   are dropped no [`Quad`] (the `Arc` values' content) is alive: every
//!   value the case made was dropped, once (a double drop of an `Arc` is a
//!   use after free too).
//!
//! Costs are bounded: ops that would grow the reference past [`BUDGET`]
//! entries are skipped, and on x86 range ends are clipped to 4 GiB (a
//! range to the top of the reach is a quarter million 1 GiB entries), as
//! in `tests/sync.rs`.

use std::fmt::Debug;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use arbitrary::{Arbitrary, Unstructured};
use mem_table::geometry::{Custom, Geometry, Large, X86_4Level};
use mem_table::ops::{Children, PageOps};
use mem_table::sync::{self, Atom};
use mem_table::typenum::{U2, U12};
use mem_table::{Level, MemTable, Page};

use crate::model::{Addr, Bomb, Geo, quiet_bombs};

/// Four 2-bit levels, levels 1 and 2 large: 256 pages in all, tables of
/// four slots that fill, split, merge and compact all the time (and merges
/// that cascade).
pub type Tiny = Custom<U12, (U2, Large<U2>, Large<U2>, U2)>;
/// Large entries above a level that holds none: their split is refused
/// (`NoEntriesAtLevel`), also at a range's edge.
pub type Gappy = Custom<U12, (U2, U2, Large<U2>, U2)>;

/// The most ops in one case.
pub const MAX_OPS: usize = 192;
/// The most entries the reference may hold before an op that grows it
/// (split, fill, insert_range) is skipped.
pub const BUDGET: usize = 3000;
/// Rounds of `collect` an `Epoch` table gets to free everything it retired
/// (crossbeam-epoch frees a few bags per round once the epoch has moved on
/// twice; nothing else is pinned in the fuzzer).
pub const EPOCH_ROUNDS: usize = 10_000;

// ---- values ----------------------------------------------------------------

/// Live [`Quad`]s, across cases: 0 between cases.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The content of the `Arc` values: four words, each `n << 8 | i`, checked
/// whenever it is read or dropped. Counts itself in [`LIVE`].
#[derive(Debug, PartialEq, PartialOrd)]
pub struct Quad([u64; 4]);

impl Quad {
    fn new(words: [u64; 4]) -> Quad {
        LIVE.fetch_add(1, Relaxed);
        Quad(words)
    }

    /// The content, checked.
    fn check(&self) -> [u64; 4] {
        let w = self.0;
        assert!(w.iter().enumerate().all(|(i, &x)| x & 0xff == i as u64), "a torn or freed value: {w:x?}");
        w
    }
}

impl Drop for Quad {
    fn drop(&mut self) {
        self.check();
        let before = LIVE.fetch_sub(1, Relaxed);
        assert!(before > 0, "more Quads dropped than made");
    }
}

/// A value type of the run: how to make one, how its reads and values
/// compare, and how a read is kept past its borrow (for a reader that stays
/// pinned).
pub trait Val: sync::Value + PartialEq + Debug {
    type Cmp: Clone + PartialEq + PartialOrd + Debug;
    /// What a read keeps: a copy of an `Atom`, the pointer of an `Arc`'s
    /// value.
    type Kept: Copy + Debug;
    fn make(n: u8) -> Self;
    fn of_read(r: Self::Read<'_>) -> Self::Cmp;
    fn of_val(v: &Self) -> Self::Cmp;
    /// The value with bit `b` of its first word flipped.
    fn flip(&self, b: u64) -> Self;
    fn keep(r: Self::Read<'_>) -> Self::Kept;
    /// Reads what `keep` kept.
    ///
    /// # Safety
    /// The guard the read was made under is still pinned.
    unsafe fn unkeep(k: Self::Kept) -> Self::Cmp;
}

impl Val for u8 {
    type Cmp = u8;
    type Kept = u8;
    fn make(n: u8) -> u8 {
        n % 4
    }
    fn of_read(r: u8) -> u8 {
        r
    }
    fn of_val(v: &u8) -> u8 {
        *v
    }
    fn flip(&self, b: u64) -> u8 {
        u8::from_bits(self.into_bits() ^ b)
    }
    fn keep(r: u8) -> u8 {
        r
    }
    unsafe fn unkeep(k: u8) -> u8 {
        k
    }
}

impl Val for u64 {
    type Cmp = u64;
    type Kept = u64;
    /// Values with the top bit set and clear: all 64 bits matter.
    fn make(n: u8) -> u64 {
        u64::from(n % 4).wrapping_mul(0x8000_0000_0000_0001)
    }
    fn of_read(r: u64) -> u64 {
        r
    }
    fn of_val(v: &u64) -> u64 {
        *v
    }
    fn flip(&self, b: u64) -> u64 {
        self ^ b
    }
    fn keep(r: u64) -> u64 {
        r
    }
    unsafe fn unkeep(k: u64) -> u64 {
        k
    }
}

/// A value published by pointer.
pub type Big = Arc<Quad>;

fn quad(x: u64) -> Big {
    Arc::new(Quad::new(core::array::from_fn(|i| x << 8 | i as u64)))
}

impl Val for Big {
    type Cmp = [u64; 4];
    type Kept = *const Quad;
    fn make(n: u8) -> Big {
        quad(u64::from(n % 4))
    }
    fn of_read(r: &Quad) -> [u64; 4] {
        r.check()
    }
    fn of_val(v: &Big) -> [u64; 4] {
        v.check()
    }
    fn flip(&self, b: u64) -> Big {
        quad((self.0[0] >> 8) ^ b)
    }
    fn keep(r: &Quad) -> *const Quad {
        r
    }
    unsafe fn unkeep(k: *const Quad) -> [u64; 4] {
        // SAFETY: (caller) the guard the pointer was read under is pinned,
        // so the table has not dropped its reference (the crate's promise
        // under test).
        unsafe { (*k).check() }
    }
}

// ---- symbolic arguments ----------------------------------------------------

/// A level, symbolically.
#[derive(Clone, Copy, Debug)]
pub enum SLvl {
    /// The `n % count`-th level that holds entries.
    Holding(u8),
    /// The level of the reference's entry covering the op's address.
    OfEntry,
    /// One above it.
    AboveEntry,
    /// Level `n % (levels + 1)`: possibly past the top.
    At(u8),
}

impl<'a> Arbitrary<'a> for SLvl {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<SLvl> {
        Ok(match u.int_in_range(0..=9u8)? {
            0..=3 => SLvl::Holding(u.arbitrary()?),
            4 | 5 => SLvl::OfEntry,
            6 | 7 => SLvl::AboveEntry,
            _ => SLvl::At(u.arbitrary()?),
        })
    }
}

/// A range: two addresses and a shape (see [`Ctx::bounds`]).
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct SRange {
    pub a: Addr,
    pub b: Addr,
    pub shape: u8,
}

/// The consumer's split and merge ops for an op.
#[derive(Clone, Copy, Debug)]
pub enum How {
    /// The methods without ops (`split`, `merge`, `insert_range`,
    /// `remove_range`, `compact`: copies, equal children merged).
    Plain,
    /// Flips the low bit of odd sub-pages (split), merges into the minimum.
    Changing,
    /// As `Changing`, but the `n`th call (`split` or `merge`) panics.
    Panic(u16),
}

impl<'a> Arbitrary<'a> for How {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<How> {
        Ok(match u.int_in_range(0..=7u8)? {
            0..=3 => How::Plain,
            4 | 5 => How::Changing,
            _ => How::Panic(u.arbitrary()?),
        })
    }
}

/// One op; values are `n % 4` (so that neighbours merge).
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Insert(Addr, u8),
    InsertAt(Addr, SLvl, u8),
    Remove(Addr),
    RemoveCovering(Addr),
    Split(Addr, SLvl, How),
    Merge(Addr, SLvl, How),
    /// Every entry of the level below in the page of the level at the
    /// address: a full table to merge.
    Fill(Addr, SLvl, u8),
    Get(Addr),
    GetMany([Addr; 3]),
    Range(SRange),
    InsertRange(SRange, u8, How),
    RemoveRange(SRange, How),
    Clear,
    /// Keeps pages whose number is not a multiple of `n % 4 + 2`, flipping
    /// the low bit of the odd ones; panics at entry `panic_at` if given.
    Retain {
        n: u8,
        panic_at: Option<u8>,
    },
    Compact(How),
    ReserveInsert(Addr, SLvl),
    ReserveSplit(Addr, SLvl),
    ReserveTables(SLvl, u8),
    Unreserve,
    TrackChanges,
    TakeChanges,
    /// A report as a transaction: committed, or dropped (a failed send).
    Changes {
        commit: bool,
    },
    /// A reader keeps what it reads at the address, pinned.
    Hold(Addr),
    /// It checks what it kept, and unpins.
    Unhold,
    Collect,
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Op> {
        Ok(match u.int_in_range(0..=49u8)? {
            0..=5 => Op::Insert(u.arbitrary()?, u.arbitrary()?),
            6..=9 => Op::InsertAt(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
            10..=12 => Op::Remove(u.arbitrary()?),
            13 | 14 => Op::RemoveCovering(u.arbitrary()?),
            15..=17 => Op::Split(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
            18..=20 => Op::Merge(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
            21..=23 => Op::Fill(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
            24 | 25 => Op::Get(u.arbitrary()?),
            26 => Op::GetMany(u.arbitrary()?),
            27 => Op::Range(u.arbitrary()?),
            28..=31 => Op::InsertRange(u.arbitrary()?, u.arbitrary()?, u.arbitrary()?),
            32..=34 => Op::RemoveRange(u.arbitrary()?, u.arbitrary()?),
            35 => Op::Clear,
            36 | 37 => Op::Retain { n: u.arbitrary()?, panic_at: u.arbitrary()? },
            38 | 39 => Op::Compact(u.arbitrary()?),
            40 => Op::ReserveInsert(u.arbitrary()?, u.arbitrary()?),
            41 => Op::ReserveSplit(u.arbitrary()?, u.arbitrary()?),
            42 => Op::ReserveTables(u.arbitrary()?, u.arbitrary()?),
            43 => Op::Unreserve,
            44 => Op::TrackChanges,
            45 => Op::TakeChanges,
            46 => Op::Changes { commit: u.arbitrary()? },
            47 => Op::Hold(u.arbitrary()?),
            48 => Op::Unhold,
            _ => Op::Collect,
        })
    }
}

/// What the first input byte picks.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// 0: `u64` (the wide path), 1: `u8` (packed), 2: `Arc<Quad>`.
    pub value: u8,
    /// 0: x86 4-level, 1: [`Tiny`], 2: [`Gappy`].
    pub geometry: u8,
    /// `Counted`, else `Epoch`.
    pub counted: bool,
}

impl Config {
    fn of(b: u8) -> Config {
        Config { value: b % 3, geometry: b / 3 % 3, counted: b / 9 % 2 == 1 }
    }
}

/// One case: the configuration, then ops until the input runs out.
#[derive(Clone, Debug)]
pub struct Case {
    pub config: Config,
    pub ops: Vec<Op>,
}

impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Case> {
        let config = Config::of(u.arbitrary()?);
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Case { config, ops })
    }
}

/// Runs a case; panics where the tables disagree or a check fails.
pub fn run(case: &Case) {
    quiet_bombs();
    let c = case.config;
    macro_rules! by_geometry {
        ($v:ty, $r:ty) => {
            match c.geometry {
                0 => Ctx::<$v, X86_4Level, $r>::go(&case.ops),
                1 => Ctx::<$v, Tiny, $r>::go(&case.ops),
                _ => Ctx::<$v, Gappy, $r>::go(&case.ops),
            }
        };
    }
    macro_rules! by_reclaimer {
        ($v:ty) => {
            if c.counted { by_geometry!($v, sync::Counted) } else { by_geometry!($v, sync::Epoch) }
        };
    }
    match c.value {
        0 => by_reclaimer!(u64),
        1 => by_reclaimer!(u8),
        _ => by_reclaimer!(Big),
    }
    assert_eq!(LIVE.load(Relaxed), 0, "Arc values left alive after the case");
}

// ---- the consumer's code ---------------------------------------------------

/// Split and merge ops per [`How`], the same for both tables.
struct TestOps {
    changing: bool,
    /// The call (split or merge) that panics.
    panic_at: Option<usize>,
    calls: usize,
}

impl TestOps {
    fn new(how: How, panic_mod: usize) -> TestOps {
        let (changing, panic_at) = match how {
            How::Plain => (false, None),
            How::Changing => (true, None),
            How::Panic(n) => (true, Some(usize::from(n) % panic_mod)),
        };
        TestOps { changing, panic_at, calls: 0 }
    }

    /// The same ops, without the panic.
    fn tame(how: How, panic_mod: usize) -> TestOps {
        TestOps { panic_at: None, ..TestOps::new(how, panic_mod) }
    }

    fn call(&mut self) {
        if self.panic_at == Some(self.calls) {
            panic_any(Bomb);
        }
        self.calls += 1;
    }
}

impl<V: Val> PageOps<V> for TestOps {
    fn split(&mut self, _: Page, v: &V, sub: Page) -> V {
        self.call();
        if self.changing { v.flip((sub.addr() >> sub.shift()) & 1) } else { v.clone() }
    }

    fn merge(&mut self, _: Page, c: Children<'_, '_, V>) -> Option<V> {
        self.call();
        if self.changing {
            c.cloned().reduce(|a, b| if V::of_val(&b) < V::of_val(&a) { b } else { a })
        } else {
            let mut c = c;
            let first = c.next()?;
            c.all(|x| x == first).then(|| first.clone())
        }
    }
}

/// Runs `f`, catching a planned panic: `None` if it panicked.
fn catching<T>(f: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(t) => Some(t),
        Err(p) if p.is::<Bomb>() => None,
        Err(p) => resume_unwind(p),
    }
}

// ---- the interpreter -------------------------------------------------------

/// The entries of a table: page (address and level) and value.
type Entries<C> = Vec<(Page, C)>;

/// The value of each page, as maximal runs `(first, last, value)`: two
/// tables with equal runs give every page the same value, whatever their
/// shapes.
fn runs<C: PartialEq>(it: impl Iterator<Item = (Page, C)>) -> Vec<(u64, u64, C)> {
    let mut out: Vec<(u64, u64, C)> = Vec::new();
    for (p, v) in it {
        match out.last_mut() {
            Some((_, last, x)) if last.checked_add(1) == Some(p.addr()) && *x == v => *last = p.last(),
            _ => out.push((p.addr(), p.last(), v)),
        }
    }
    out
}

/// The value runs give the page at `a`.
fn value_at<C: Clone>(runs: &[(u64, u64, C)], a: u64) -> Option<C> {
    let i = runs.partition_point(|r| r.1 < a);
    runs.get(i).filter(|r| r.0 <= a).map(|r| r.2.clone())
}

/// Checks that every page of `now` holds what `before` or `after` give it.
fn before_or_after<C: Clone + PartialEq + Debug>(
    now: &[(u64, u64, C)],
    before: &[(u64, u64, C)],
    after: &[(u64, u64, C)],
    what: &str,
) {
    // Every page between two consecutive boundaries of the three has one
    // value in each.
    let mut cuts: Vec<u64> = [now, before, after]
        .iter()
        .flat_map(|r| r.iter().flat_map(|&(s, l, _)| [Some(s), l.checked_add(1)]))
        .flatten()
        .chain([0])
        .collect();
    cuts.sort_unstable();
    cuts.dedup();
    for &a in &cuts {
        let (n, b, f) = (value_at(now, a), value_at(before, a), value_at(after, a));
        assert!(
            n == b || n == f,
            "{what}: after a panic, page {a:#x} holds {n:x?}, neither {b:x?} nor {f:x?}"
        );
    }
}

struct Ctx<V: Val, G: Geometry, R: sync::Reclaim + 'static> {
    m: MemTable<V, G>,
    geo: Geo,
    /// Planned panics come at call `n % panic_mod` of the ops.
    panic_mod: usize,
    _marker: std::marker::PhantomData<(G, R)>,
}

impl<V: Val, G: Geometry, R: sync::Reclaim + 'static> Ctx<V, G, R> {
    /// The reference's entries.
    fn entries_m(&self) -> Entries<V::Cmp> {
        self.m.iter().map(|(p, v)| (p, V::of_val(v))).collect()
    }

    /// `a` for an op at `level`, as the single-threaded fuzzers resolve
    /// addresses, with the reference's `n % len`-th entry for
    /// [`Addr::Entry`].
    fn resolve(&self, a: Addr, level: u8) -> u64 {
        a.resolve_with(&self.geo, level, |n| {
            let len = self.m.len();
            (len > 0).then(|| self.m.iter().nth(usize::from(n) % len).expect("in range").0.addr())
        })
    }

    fn level(&self, l: SLvl, addr: u64) -> u8 {
        let geo = &self.geo;
        let entry = || self.m.get_key_value(addr).map_or(0, |(p, _)| p.level().index() as u8);
        match l {
            SLvl::Holding(n) => {
                let holding: Vec<u8> = (0..=geo.top()).filter(|&l| geo.holds(l)).collect();
                holding[usize::from(n) % holding.len()]
            }
            SLvl::OfEntry => entry(),
            SLvl::AboveEntry => entry() + 1,
            SLvl::At(n) => n % (geo.levels() as u8 + 1),
        }
    }

    /// An address and a level for an op: the level first (of the entry at
    /// the base-page address), then the address for that level.
    fn place(&self, a: Addr, l: SLvl) -> (u64, Level) {
        let level = self.level(l, self.resolve(a, 0));
        (self.resolve(a, level), Level::new(level))
    }

    /// A range of two addresses: `a..b` ordered mostly, sometimes with an
    /// open end, inclusive (usually misaligned), or reversed. On x86, ends
    /// are clipped to 4 GiB, except the inclusive shape's (which is then
    /// usually out of reach or misaligned, and refused).
    fn bounds(&self, r: SRange) -> (Bound<u64>, Bound<u64>) {
        let (a, b) = (self.resolve(r.a, 0), self.resolve(r.b, 0));
        let (lo, hi) = (a.min(b), a.max(b));
        let big = G::ADDRESS_BITS > 32;
        let shape = r.shape % 8;
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

    fn go(ops: &[Op]) {
        let s: sync::MemTable<V, G, R> = sync::MemTable::new();
        let geo = Geo::of::<G>();
        // A few times the largest split: a panic inside a range's splits.
        let panic_mod = 4 * (0..geo.top()).map(|l| geo.fanout(l) as usize).max().unwrap_or(4);
        let mut cx = Ctx::<V, G, R> { m: MemTable::new(), geo, panic_mod, _marker: Default::default() };
        // The reports' shadow, from `track_changes` on.
        let mut shadow: Option<MemTable<V>> = None;
        // A reader that stays pinned, and what it kept: address, the kept
        // read, and its content then.
        let mut held: Option<(R::Guard<'_>, Vec<(u64, V::Kept, V::Cmp)>)> = None;
        let mut w = s.writer();
        for (k, &op) in ops.iter().enumerate() {
            let full = cx.step(&s, &mut w, &mut shadow, &mut held, op);
            assert_eq!(w.len(), cx.m.len(), "len after op {k} {op:x?}");
            if let Err(e) = w.check_invariants() {
                panic!("sync invariants after op {k} {op:x?}: {e}");
            }
            if let Err(e) = cx.m.check_invariants() {
                panic!("reference invariants after op {k} {op:x?}: {e}");
            }
            if full || k % 8 == 7 {
                let g = s.pin();
                let x: Entries<V::Cmp> = s.iter(&g).map(|(p, v)| (p, V::of_read(v))).collect();
                assert_eq!(x, cx.entries_m(), "contents after op {k} {op:x?} (left: sync)");
            }
        }
        cx.step(&s, &mut w, &mut shadow, &mut held, Op::Unhold);
        cx.step(&s, &mut w, &mut shadow, &mut held, Op::TakeChanges);
        let g = s.pin();
        let x: Entries<V::Cmp> = s.iter(&g).map(|(p, v)| (p, V::of_read(v))).collect();
        assert_eq!(x, cx.entries_m(), "contents at the end (left: sync)");
        drop(g);
        drop(w);
        // Every retirement freed once no reader is pinned.
        let r = s.reclamation();
        assert_eq!(r.freed + r.pending, r.retired, "{r:?}");
        s.collect();
        let mut rounds = 0;
        while s.reclamation().pending > 0 {
            assert!(!R::is_counted() && rounds < EPOCH_ROUNDS, "still pending: {:?}", s.reclamation());
            s.collect();
            rounds += 1;
        }
        drop(held);
        drop(cx);
        drop(shadow);
        drop(s);
    }

    /// Runs one op; returns whether the whole contents must be compared
    /// now (after a caught panic).
    fn step<'s>(
        &mut self,
        s: &'s sync::MemTable<V, G, R>,
        w: &mut sync::Writer<'s, V, G, R>,
        shadow: &mut Option<MemTable<V>>,
        held: &mut Option<(R::Guard<'s>, Vec<(u64, V::Kept, V::Cmp)>)>,
        op: Op,
    ) -> bool {
        let room = self.m.len() <= BUDGET;
        match op {
            Op::Insert(a, v) => {
                let a = self.resolve(a, 0);
                assert_eq!(w.insert(a, V::make(v)), self.m.insert(a, V::make(v)), "insert {a:#x}");
            }
            Op::InsertAt(a, l, v) => {
                let (a, l) = self.place(a, l);
                assert_eq!(
                    w.insert_at(a, l, V::make(v)),
                    self.m.insert_at(a, l, V::make(v)),
                    "insert_at {a:#x} {l:?}"
                );
            }
            Op::Remove(a) => {
                let a = self.resolve(a, 0);
                assert_eq!(w.remove(a), self.m.remove(a), "remove {a:#x}");
            }
            Op::RemoveCovering(a) => {
                let a = self.resolve(a, 0);
                assert_eq!(w.remove_covering(a), self.m.remove_covering(a), "remove_covering {a:#x}");
            }
            Op::Split(a, l, how) => {
                if !room {
                    return false;
                }
                let (a, l) = self.place(a, l);
                let before = matches!(how, How::Panic(_)).then(|| self.entries_m());
                let pm = self.panic_mod;
                let x = catching(|| match how {
                    How::Plain => w.split(a, l),
                    _ => w.split_with(a, l, &mut TestOps::new(how, pm)),
                });
                let y = catching(|| match how {
                    How::Plain => self.m.split(a, l),
                    _ => self.m.split_with(a, l, &mut TestOps::new(how, pm)),
                });
                assert_eq!(x, y, "split_with {a:#x} {l:?} {how:?} (None: panicked)");
                if x.is_none() {
                    // Documented alike: a panic in `ops` changes nothing.
                    assert_eq!(
                        self.entries_m(),
                        before.expect("a planned panic"),
                        "split_with {a:#x}: a panic changed the table"
                    );
                    return true;
                }
            }
            Op::Merge(a, l, how) => {
                let (a, l) = self.place(a, l);
                let before = matches!(how, How::Panic(_)).then(|| self.entries_m());
                let pm = self.panic_mod;
                let x = catching(|| match how {
                    How::Plain => w.merge(a, l),
                    _ => w.merge_with(a, l, &mut TestOps::new(how, pm)),
                });
                let y = catching(|| match how {
                    How::Plain => self.m.merge(a, l),
                    _ => self.m.merge_with(a, l, &mut TestOps::new(how, pm)),
                });
                assert_eq!(x, y, "merge_with {a:#x} {l:?} {how:?} (None: panicked)");
                if x.is_none() {
                    assert_eq!(
                        self.entries_m(),
                        before.expect("a planned panic"),
                        "merge_with {a:#x}: a panic changed the table"
                    );
                    return true;
                }
            }
            Op::Fill(a, l, v) => {
                if !room {
                    return false;
                }
                let (a, l) = self.place(a, l);
                let (Some(below), Some(big)) = (l.below(), G::page_size(l)) else { return false };
                let small = G::page_size(below).expect("a level");
                let base = a & !(big - 1);
                for j in 0..big / small {
                    let p = base + j * small;
                    let (x, y) = (w.insert_at(p, below, V::make(v)), self.m.insert_at(p, below, V::make(v)));
                    assert_eq!(x, y, "fill: insert_at {p:#x} {below:?}");
                }
            }
            Op::Get(a) => {
                let a = self.resolve(a, 0);
                let g = s.pin();
                let want = self.m.get_key_value(a).map(|(p, v)| (p, V::of_val(v)));
                assert_eq!(
                    s.get_key_value(a, &g).map(|(p, v)| (p, V::of_read(v))),
                    want,
                    "get_key_value {a:#x}"
                );
                assert_eq!(s.get(a, &g).map(|r| V::of_read(r)), want.clone().map(|e| e.1), "get {a:#x}");
                assert_eq!(s.get_cloned(a, &g).as_ref(), self.m.get(a), "get_cloned {a:#x}");
                assert_eq!(s.contains(a, &g), want.is_some(), "contains {a:#x}");
                drop(g);
                assert_eq!(
                    w.get_key_value(a).map(|(p, v)| (p, V::of_read(v))),
                    want,
                    "Writer::get_key_value {a:#x}"
                );
                assert_eq!(w.get(a).map(|r| V::of_read(r)), want.clone().map(|e| e.1), "Writer::get {a:#x}");
                assert_eq!(s.get_pinned(a).as_ref(), self.m.get(a), "get_pinned {a:#x}");
                let kv = s.get_key_value_pinned(a).map(|(p, v)| (p, V::of_val(&v)));
                assert_eq!(kv, want, "get_key_value_pinned {a:#x}");
                assert_eq!(s.contains_pinned(a), want.is_some(), "contains_pinned {a:#x}");
            }
            Op::GetMany(a) => {
                let a = a.map(|a| self.resolve(a, 0));
                let g = s.pin();
                let x = s.get_many(&a, &g).map(|v| v.map(|r| V::of_read(r)));
                let y = a.map(|a| self.m.get(a).map(V::of_val));
                assert_eq!(x, y, "get_many {a:x?}");
            }
            Op::Range(r) => {
                let r = self.bounds(r);
                let g = s.pin();
                let x: Entries<V::Cmp> = s.range(r, &g).map(|(p, v)| (p, V::of_read(v))).collect();
                let y: Entries<V::Cmp> = self.m.range(r).map(|(p, v)| (p, V::of_val(v))).collect();
                assert_eq!(x, y, "range {r:x?}");
            }
            Op::InsertRange(r, v, how) => {
                if !room {
                    return false;
                }
                let r = self.bounds(r);
                let plain = matches!(how, How::Plain);
                return self.ranged(w, how, true, &format!("insert_range_with {r:x?} {how:?}"), |t, ops| {
                    match t {
                        Either::S(w) if plain => w.insert_range(r, V::make(v)),
                        Either::M(m) if plain => m.insert_range(r, V::make(v)),
                        Either::S(w) => w.insert_range_with(r, V::make(v), ops),
                        Either::M(m) => m.insert_range_with(r, V::make(v), ops),
                    }
                });
            }
            Op::RemoveRange(r, how) => {
                let r = self.bounds(r);
                let plain = matches!(how, How::Plain);
                return self.ranged(w, how, true, &format!("remove_range_with {r:x?} {how:?}"), |t, ops| {
                    match t {
                        Either::S(w) if plain => w.remove_range(r),
                        Either::M(m) if plain => m.remove_range(r),
                        Either::S(w) => w.remove_range_with(r, ops),
                        Either::M(m) => m.remove_range_with(r, ops),
                    }
                });
            }
            Op::Compact(how) => {
                let plain = matches!(how, How::Plain);
                return self.ranged(w, how, false, &format!("compact_with {how:?}"), |t, ops| match t {
                    Either::S(w) if plain => w.compact(),
                    Either::M(m) if plain => m.compact(),
                    Either::S(w) => w.compact_with(ops),
                    Either::M(m) => m.compact_with(ops),
                });
            }
            Op::Clear => {
                w.clear();
                self.m.clear();
            }
            Op::Retain { n, panic_at } => {
                let keep = |panic_at: Option<u8>| {
                    let mut calls = 0;
                    move |p: Page, v: &mut V| {
                        // The planned panic comes before any change: the
                        // reference's closure changes the entry in place,
                        // the concurrent one a copy.
                        if panic_at.is_some_and(|k| usize::from(k) == calls) {
                            panic_any(Bomb);
                        }
                        calls += 1;
                        let i = p.addr() >> G::PAGE_SHIFT;
                        if i % 2 == 1 {
                            *v = v.flip(1);
                        }
                        i % (u64::from(n % 4) + 2) != 0
                    }
                };
                let x = catching(|| w.retain(keep(panic_at)));
                let y = catching(|| self.m.retain(keep(panic_at)));
                assert_eq!(x.is_some(), y.is_some(), "retain: panicked in one table only");
                if x.is_none() {
                    // Both visit in address order: the entries before the
                    // panic are done, the others untouched, alike (compared
                    // whole by the caller).
                    return true;
                }
            }
            Op::ReserveInsert(a, l) => {
                let (a, l) = self.place(a, l);
                assert_eq!(
                    w.reserve_insert(a, l),
                    self.m.reserve_insert(a, l),
                    "reserve_insert {a:#x} {l:?}"
                );
            }
            Op::ReserveSplit(a, l) => {
                let (a, l) = self.place(a, l);
                assert_eq!(w.reserve_split(a, l), self.m.reserve_split(a, l), "reserve_split {a:#x} {l:?}");
            }
            Op::ReserveTables(l, n) => {
                let l = Level::new(self.level(l, 0));
                let n = usize::from(n % 4);
                let had = w.reserved(l);
                let x = w.reserve_tables(l, n);
                assert_eq!(x, self.m.reserve_tables(l, n), "reserve_tables {l:?} {n}");
                let want = if x.is_ok() { had + n } else { had };
                assert_eq!(w.reserved(l), want, "reserved after reserve_tables {l:?} {n}");
            }
            Op::Unreserve => {
                w.unreserve();
                self.m.unreserve();
                for l in 0..G::LEVELS as u8 {
                    assert_eq!(w.reserved(Level::new(l)), 0, "reserved after unreserve");
                }
            }
            Op::TrackChanges => {
                w.track_changes();
                assert!(w.tracks_changes());
                // The first report covers the whole reach: the shadow starts
                // empty.
                shadow.get_or_insert_with(MemTable::new);
            }
            Op::TakeChanges => {
                let report: Vec<sync::Change<V>> = w.take_changes().collect();
                self.commit(s, w, shadow, &report, "take_changes");
            }
            Op::Changes { commit } => {
                let had = w.has_changes();
                let mut r = w.changes();
                let report: Vec<sync::Change<V>> = r.by_ref().collect();
                assert_eq!(had, !report.is_empty(), "has_changes {had} with {} regions", report.len());
                if commit {
                    r.commit();
                    self.commit(s, w, shadow, &report, "changes, committed");
                } else {
                    drop(r);
                    assert_eq!(w.has_changes(), had, "an uncommitted report changed the marks");
                }
            }
            Op::Hold(a) => {
                let a = self.resolve(a, 0);
                let (g, kept) = held.get_or_insert_with(|| (s.pin(), Vec::new()));
                if let Some(r) = s.get(a, g) {
                    kept.push((a, V::keep(r), V::of_read(r)));
                }
            }
            Op::Unhold => {
                if let Some((g, kept)) = held.take() {
                    for (a, k, was) in kept {
                        // SAFETY: `g`, the guard `k` was read under, is
                        // still pinned.
                        let now = unsafe { V::unkeep(k) };
                        assert_eq!(now, was, "a value read at {a:#x} changed under a pinned reader");
                    }
                    drop(g);
                }
            }
            Op::Collect => {
                s.collect();
                let r = s.reclamation();
                assert_eq!(r.freed + r.pending, r.retired, "{r:?}");
                if R::is_counted() && held.is_none() {
                    assert_eq!(r.pending, 0, "Counted, nobody pinned: {r:?}");
                }
            }
        }
        false
    }

    /// A committed report: applied to the shadow, which must then give
    /// every page the table's value; nothing is marked after.
    fn commit(
        &self,
        s: &sync::MemTable<V, G, R>,
        w: &sync::Writer<'_, V, G, R>,
        shadow: &mut Option<MemTable<V>>,
        report: &[sync::Change<V>],
        what: &str,
    ) {
        assert!(!w.has_changes(), "{what}: marks left after a commit");
        let Some(sh) = shadow else {
            assert!(report.is_empty(), "{what}: a report without tracking");
            return;
        };
        let mut prev = None;
        for c in report {
            assert!(
                prev.is_none_or(|p| p < c.start) && c.start <= c.last,
                "{what}: regions out of order: {c:x?}"
            );
            prev = Some(c.last);
            if let Err(e) = sh.remove_range(c.start..=c.last) {
                panic!("{what}: shadow remove {c:x?}: {e}");
            }
            if let Some(v) = c.value.clone() {
                if let Err(e) = sh.insert_range(c.start..=c.last, v) {
                    panic!("{what}: shadow insert {c:x?}: {e}");
                }
            }
        }
        let g = s.pin();
        let x = runs(s.iter(&g).map(|(p, v)| (p, V::of_read(v))));
        let y = runs(sh.iter().map(|(p, v)| (p, V::of_val(v))));
        assert_eq!(x, y, "{what}: the reports' shadow differs (left: sync)");
    }

    /// A range operation or `compact_with`, run on both tables with the
    /// same ops. Without a panic, the results must agree. After a panic (in
    /// either), each table is checked on its own (see the module docs) and
    /// the reference rebuilt from the concurrent table if they differ.
    /// Returns whether a panic was caught.
    fn ranged<T: PartialEq + Debug>(
        &mut self,
        w: &mut sync::Writer<'_, V, G, R>,
        how: How,
        pagewise: bool,
        what: &str,
        f: impl Fn(Either<'_, '_, V, G, R>, &mut TestOps) -> T,
    ) -> bool {
        let panicky = matches!(how, How::Panic(_));
        let before = panicky.then(|| self.m.clone());
        let x = catching(|| f(Either::S(w), &mut TestOps::new(how, self.panic_mod)));
        let y = catching(|| f(Either::M(&mut self.m), &mut TestOps::new(how, self.panic_mod)));
        if let (Some(x), Some(y)) = (&x, &y) {
            assert_eq!(x, y, "{what}");
            return false;
        }
        let mut after = before.expect("a planned panic");
        let before = runs(after.iter().map(|(p, v)| (p, V::of_val(v))));
        f(Either::M(&mut after), &mut TestOps::tame(how, self.panic_mod));
        let after = runs(after.iter().map(|(p, v)| (p, V::of_val(v))));
        // The concurrent table, on its own.
        let s = w.table();
        if let Err(e) = w.check_invariants() {
            panic!("{what}: sync invariants after a panic: {e}");
        }
        let g = s.pin();
        assert_eq!(s.iter(&g).count(), w.len(), "{what}: sync len after a panic");
        let now_s: Entries<V::Cmp> = s.iter(&g).map(|(p, v)| (p, V::of_read(v))).collect();
        if pagewise {
            before_or_after(&runs(now_s.iter().cloned()), &before, &after, what);
        }
        // The reference, on its own.
        if let Err(e) = self.m.check_invariants() {
            panic!("{what}: reference invariants after a panic: {e}");
        }
        assert_eq!(self.m.iter().count(), self.m.len(), "{what}: reference len after a panic");
        if now_s != self.entries_m() {
            // Back in step: the reference takes the concurrent table's
            // entries, shapes included.
            let mut m = MemTable::new();
            for (p, _) in &now_s {
                let v = s.get_cloned(p.addr(), &g).expect("an entry");
                m.insert_at(p.addr(), p.level(), v).expect("an entry of the concurrent table");
            }
            self.m = m;
        }
        true
    }
}

/// The table a range operation runs on.
enum Either<'a, 's, V: Val, G: Geometry, R: sync::Reclaim> {
    S(&'a mut sync::Writer<'s, V, G, R>),
    M(&'a mut MemTable<V, G>),
}

/// Whether a reclaimer frees at once when nobody is pinned.
trait Exact {
    fn is_counted() -> bool;
}

impl<R: sync::Reclaim + 'static> Exact for R {
    fn is_counted() -> bool {
        std::any::TypeId::of::<R>() == std::any::TypeId::of::<sync::Counted>()
    }
}
