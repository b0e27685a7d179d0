//! A reference model of [`MemTable`] and an interpreter that runs a list of
//! operations against both, checking the table after every one.
//!
//! Shared by `tests/model_quickcheck.rs`, `tests/regressions.rs` and the fuzz
//! targets under `fuzz/` (which include this file by path).
//!
//! - [`Model`] keeps the entries in a `BTreeMap` from first address to
//!   `(level, value)`, a large page as one entry, and works out the outcome
//!   of every operation on its own, from the documented semantics: each
//!   error with its kind, address and level; large-page conflicts; split,
//!   merge, range set and range remove (which split straddling entries);
//!   compact; and the tables the table must hold and the tables reserved
//!   ([`Model::credit`]), so that a bounded
//!   [`Pool`](mem_table::backend::Pool) running out of nodes is predicted
//!   exactly.
//! - [`Op`] is one operation (derived `Arbitrary`) with symbolic arguments
//!   ([`Addr`], [`Lvl`], [`RangeArg`], ..., weighted by hand) biased toward
//!   the places where things go wrong: address 0, the last page, level
//!   boundaries and one page either side, misaligned addresses, addresses
//!   past the reach, existing entries and the tables above them, and deep
//!   paths over several root slots ([`Addr::Deep`]).
//!   [`Op::resolve`] turns it into an [`Act`] with concrete arguments for the
//!   geometry (and, for addresses that name an entry, the model's state).
//!   Ops that would grow the table past [`BUDGET`] entries are skipped.
//!   Besides the mutations, the ops walk the table from both ends
//!   ([`Ends`]: `iter`, `range`, `iter_mut`, `range_mut`, `into_iter` of a
//!   clone, compared with [`walk`] over the model's entries), fold what is
//!   left after a few steps ([`FoldHow`]: `fold`, `for_each`, `count`,
//!   `last`, `Keys`, `Values`), look up in batches (`get_many`), and
//!   reserve, unreserve and shrink ([`Mem`]).
//! - [`run`] performs each op on the table and on the model and compares
//!   results and errors, then the whole table (`len`, `iter`, a lookup and a
//!   range near the op's address, both ways, node counts,
//!   `check_invariants`, the values alive). On an
//!   error it checks the table is exactly as before, change marks included.
//!   Change reports are applied to a "shadow" map that must equal the table
//!   after every `take_changes`.
//! - The interpreter is generic over the table's value type
//!   ([`ModelValue`]), and there are two, because the raw layer picks its
//!   storage at compile time from the value type (a value with a niche
//!   stored as an `Option` in bottom tables, one of at most 7 bytes inside
//!   a large entry's upper slot word): [`Value`] (12 bytes, no niche) takes
//!   neither path, [`Small`] (4 bytes, a niche) both. Both hold the model's
//!   number, plus planned panics (a [`Val`] decides them) that fire only in
//!   a run armed for them ([`check_ops_armed`], the fuzz targets): a value
//!   whose `clone` panics once, or whose `drop` panics. Every value is
//!   registered per thread, so a leak or a double drop is seen. The
//!   interpreter catches a planned panic ([`Bomb`]) around each op; the
//!   model cannot say what a half-done op leaves, so after one it checks
//!   what must hold whatever the op did (invariants, `len` against
//!   iteration, exactly the table's values alive, the change report still
//!   rebuilding the table) and then re-syncs itself from the table (see
//!   [`recover`]).
#![allow(dead_code)] // every includer uses a different part

mod coverage;
pub use coverage::{Coverage, cover, joined};

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU32;
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use arbitrary::{Arbitrary, Unstructured};
use mem_table::backend::Backend;
use mem_table::geometry::{Custom, Geometry, Large};
use mem_table::ops::{Children, FnOps};
use mem_table::typenum::{U2, U3, U4, U12, U40};
use mem_table::{Entry, Error, ErrorKind, Level, MemTable, Page, Stats};

/// Three 3-bit levels over 4 KiB pages, large entries at level 1: 21 address
/// bits, 512 base pages in all.
pub type Tiny = Custom<U12, (U3, Large<U3>, U3)>;

/// A level that holds no entries between two that do, and a root that holds
/// entries: splitting a level-2 entry is refused.
pub type Gappy = Custom<U12, (U2, U2, Large<U2>, Large<U2>)>;

/// Every address of the `u64` is in reach (1 TiB base pages, six 4-bit
/// levels); large entries at levels 1 and 3.
pub type Wide = Custom<U40, (U4, Large<U4>, U4, Large<U4>, U4, U4)>;

/// The most entries a run lets the model hold: operations that would make
/// more (large splits and range sets on x86) are skipped.
pub const BUDGET: usize = if cfg!(miri) { 256 } else { 4096 };

// ---------------------------------------------------------------------------
// Geometry, as the model sees it.

/// The shape of a geometry as plain numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Geo {
    /// log2 of the entry size at each level, bottom first.
    pub shifts: Vec<u32>,
    /// Whether each level may hold entries.
    pub holds: Vec<bool>,
    /// Address bits: addresses at or above `2^bits` are out of reach.
    pub bits: u32,
}

impl Geo {
    /// The shape of `G`.
    pub fn of<G: Geometry>() -> Geo {
        let levels = 0..G::LEVELS as u8;
        Geo {
            shifts: levels.clone().map(|l| G::page_shift(Level::new(l)).expect("level in range")).collect(),
            holds: levels.map(|l| G::holds_entries(Level::new(l))).collect(),
            bits: G::ADDRESS_BITS,
        }
    }

    pub fn levels(&self) -> usize {
        self.shifts.len()
    }

    /// The root level.
    pub fn top(&self) -> u8 {
        self.levels() as u8 - 1
    }

    pub fn shift(&self, level: u8) -> u32 {
        self.shifts[level as usize]
    }

    /// Bytes in an entry of `level`.
    pub fn size(&self, level: u8) -> u64 {
        1 << self.shift(level)
    }

    /// Bytes in a base page.
    pub fn page(&self) -> u64 {
        self.size(0)
    }

    /// Whether `level` (any number) may hold entries.
    pub fn holds(&self, level: u8) -> bool {
        self.holds.get(level as usize).copied().unwrap_or(false)
    }

    pub fn in_reach(&self, addr: u64) -> bool {
        self.bits >= 64 || addr >> self.bits == 0
    }

    /// The last address in reach.
    pub fn last_addr(&self) -> u64 {
        if self.bits >= 64 { u64::MAX } else { (1 << self.bits) - 1 }
    }

    /// The last address of the entry of `level` at `start`.
    pub fn end(&self, start: u64, level: u8) -> u64 {
        start + (self.size(level) - 1)
    }

    /// The first address of the page of `level` that holds `addr`.
    pub fn align_down(&self, addr: u64, level: u8) -> u64 {
        addr & !(self.size(level) - 1)
    }

    /// Entries of `level` in one entry of the level above (or in the whole
    /// space, at the top).
    pub fn fanout(&self, level: u8) -> u64 {
        let up = if level == self.top() { self.bits } else { self.shift(level + 1) };
        1 << (up - self.shift(level))
    }

    /// Pages of `level` in reach.
    pub fn pages(&self, level: u8) -> u64 {
        1 << (self.bits - self.shift(level))
    }

    /// `lo..=last` cut into the largest aligned pages at levels that hold
    /// entries, or `None` if that is more than `limit` pages.
    pub fn pieces(&self, lo: u64, last: u64, limit: usize) -> Option<Vec<(u64, u8)>> {
        let mut out = Vec::new();
        let mut at = lo;
        loop {
            let level = (0..=self.top())
                .rev()
                .find(|&l| self.holds(l) && at % self.size(l) == 0 && self.end(at, l) <= last)
                .expect("a base page always fits");
            if out.len() == limit {
                return None;
            }
            out.push((at, level));
            let end = self.end(at, level);
            if end == last {
                return Some(out);
            }
            at = end + 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Values.

/// A value's bombs bit: the next clone of the value panics (once: the
/// clone that panics disarms it). Clones never carry bombs.
pub const CLONE_BOMB: u8 = 1;
/// A value's bombs bit: dropping the value panics (after it is counted
/// dropped, as a value whose `drop` panics is gone all the same).
pub const DROP_BOMB: u8 = 2;

/// The payload of a planned panic: the interpreter catches these, and only
/// these (the fuzz targets' panic hook stays quiet for them alone).
#[derive(Debug)]
pub struct Bomb;

/// What the current thread knows about its values.
#[derive(Default)]
struct Registry {
    /// The last id given out (ids start at 1, so a [`Small`] has its niche).
    last_id: u32,
    /// Ids of the values alive now.
    live: BTreeSet<u32>,
    /// The sum of `live` (wrapping): a cheap check after every op.
    id_sum: u64,
    /// The number and bombs of each [`Small`] alive now, at its id - 1
    /// (`None`: dropped, or the id of a [`Value`], which carries its own).
    /// A `Vec`, not a map: the interpreter reads every value's number after
    /// every op.
    small: Vec<Option<(u32, u8)>>,
    /// Drops of a value that was not alive: a double drop.
    bad_drops: usize,
    /// Whether bombs fire (else every value behaves).
    armed: bool,
    /// Planned panics caught this run.
    caught: usize,
}

impl Registry {
    /// Numbers a new value and counts it alive.
    fn born(&mut self) -> u32 {
        self.last_id += 1;
        let id = self.last_id;
        self.live.insert(id);
        self.id_sum = self.id_sum.wrapping_add(u64::from(id));
        id
    }

    /// Records the new [`Small`] `id`'s number and bombs.
    fn small_born(&mut self, id: u32, record: (u32, u8)) {
        self.small.resize(id as usize, None);
        self.small[id as usize - 1] = Some(record);
    }

    /// The number and bombs of the [`Small`] `id` (`None` once dropped).
    fn small(&mut self, id: NonZeroU32) -> Option<&mut (u32, u8)> {
        self.small.get_mut(id.get() as usize - 1)?.as_mut()
    }

    /// Counts the [`Small`] `id` dropped and forgets its number and bombs,
    /// returning them (`None`: it was dropped before).
    fn small_died(&mut self, id: NonZeroU32) -> Option<(u32, u8)> {
        self.died(id.get());
        self.small.get_mut(id.get() as usize - 1)?.take()
    }

    /// Counts the value `id` dropped (a double drop if it was not alive).
    fn died(&mut self, id: u32) {
        if self.live.remove(&id) {
            self.id_sum = self.id_sum.wrapping_sub(u64::from(id));
        } else {
            self.bad_drops += 1;
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Whether a bomb of `kind` among `bombs` goes off now: armed, carried, and
/// not during another panic's unwinding (which would abort).
fn fires(bombs: u8, kind: u8) -> bool {
    bombs & kind != 0 && !std::thread::panicking() && REGISTRY.with_borrow(|r| r.armed)
}

/// What the interpreter needs of the values in the table under test: made
/// from the model's number and planned panics (bombs, [`CLONE_BOMB`] and
/// [`DROP_BOMB`], which fire only in an armed run), the number read and
/// changed in place, and an id in this thread's registry, so a leak or a
/// double drop is seen. `clone` makes a new value (a new id, no bombs) and
/// fires a clone bomb; `drop` counts the id dropped, then fires a drop bomb.
/// Equality (and so `merge`'s "all equal" and table equality) compares the
/// number only.
///
/// Two kinds, for the raw layer's storage modes (see the module docs):
/// [`Value`] (12 bytes, no niche) and [`Small`] (4 bytes with a niche).
pub trait ModelValue: Clone + PartialEq + fmt::Debug + 'static {
    /// A value with the bombs given (which fire only in an armed run).
    fn new(n: u32, bombs: u8) -> Self;

    /// The model's number.
    fn n(&self) -> u32;

    /// Sets the model's number.
    fn set_n(&mut self, n: u32);

    /// The value's id in this thread's registry.
    fn id(&self) -> u32;

    /// A value without bombs.
    fn plain(n: u32) -> Self {
        Self::new(n, 0)
    }

    /// Adds `add` (wrapping) to the number; returns the number before.
    fn bump(&mut self, add: u32) -> u32 {
        let old = self.n();
        self.set_n(old.wrapping_add(add));
        old
    }
}

/// Shows a number and its bombs: `3`, `3!c`, `3!c!d`.
fn show(f: &mut fmt::Formatter<'_>, n: u32, bombs: u8) -> fmt::Result {
    write!(f, "{n}")?;
    if bombs & CLONE_BOMB != 0 {
        write!(f, "!c")?;
    }
    if bombs & DROP_BOMB != 0 {
        write!(f, "!d")?;
    }
    Ok(())
}

/// A value that carries its number and bombs: 12 bytes, no niche.
pub struct Value {
    pub n: u32,
    /// Numbered per run ([`reset`]), so 32 bits are plenty.
    id: u32,
    bombs: Cell<u8>,
}

impl ModelValue for Value {
    fn new(n: u32, bombs: u8) -> Value {
        let id = REGISTRY.with_borrow_mut(Registry::born);
        Value { n, bombs: Cell::new(bombs), id }
    }

    fn n(&self) -> u32 {
        self.n
    }

    fn set_n(&mut self, n: u32) {
        self.n = n;
    }

    fn id(&self) -> u32 {
        self.id
    }
}

impl Clone for Value {
    fn clone(&self) -> Value {
        if fires(self.bombs.get(), CLONE_BOMB) {
            self.bombs.set(self.bombs.get() & !CLONE_BOMB);
            std::panic::panic_any(Bomb);
        }
        Value::plain(self.n)
    }
}

impl Drop for Value {
    fn drop(&mut self) {
        REGISTRY.with_borrow_mut(|r| r.died(self.id));
        if fires(self.bombs.get(), DROP_BOMB) {
            std::panic::panic_any(Bomb);
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.n == other.n
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(f, self.n, self.bombs.get())
    }
}

/// A value that is only its id (never 0): 4 bytes with a niche. Its number
/// and bombs live in the registry, under the id.
pub struct Small(NonZeroU32);

const _: () = {
    assert!(size_of::<Small>() == 4 && size_of::<Option<Small>>() == 4, "Small: 4 bytes with a niche");
    assert!(size_of::<Option<Value>>() > size_of::<Value>(), "Value: no niche");
};

impl Small {
    /// Its number and bombs (`None` once dropped).
    fn record(&self) -> Option<(u32, u8)> {
        REGISTRY.with_borrow_mut(|r| r.small(self.0).copied())
    }

    /// Changes its number and bombs with `f`; panics once it is dropped.
    fn update<T>(&self, f: impl FnOnce(&mut (u32, u8)) -> T) -> T {
        REGISTRY.with_borrow_mut(|r| {
            f(r.small(self.0).unwrap_or_else(|| panic!("Small #{} used after its drop", self.0)))
        })
    }

    /// Its number and bombs; panics once it is dropped.
    fn alive(&self) -> (u32, u8) {
        self.update(|record| *record)
    }
}

impl ModelValue for Small {
    fn new(n: u32, bombs: u8) -> Small {
        let id = REGISTRY.with_borrow_mut(|r| {
            let id = r.born();
            r.small_born(id, (n, bombs));
            id
        });
        Small(NonZeroU32::new(id).expect("ids start at 1"))
    }

    fn n(&self) -> u32 {
        self.alive().0
    }

    fn set_n(&mut self, n: u32) {
        self.update(|record| record.0 = n);
    }

    fn id(&self) -> u32 {
        self.0.get()
    }
}

impl Clone for Small {
    fn clone(&self) -> Small {
        let (n, bombs) = self.alive();
        if fires(bombs, CLONE_BOMB) {
            self.update(|record| record.1 &= !CLONE_BOMB);
            std::panic::panic_any(Bomb);
        }
        Small::plain(n)
    }
}

impl Drop for Small {
    fn drop(&mut self) {
        let record = REGISTRY.with_borrow_mut(|r| r.small_died(self.0));
        if record.is_some_and(|(_, bombs)| fires(bombs, DROP_BOMB)) {
            std::panic::panic_any(Bomb);
        }
    }
}

impl PartialEq for Small {
    fn eq(&self, other: &Small) -> bool {
        self.n() == other.n()
    }
}

impl fmt::Debug for Small {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record() {
            Some((n, bombs)) => show(f, n, bombs),
            None => write!(f, "#{} (dropped)", self.0),
        }
    }
}

/// Values alive on this thread: count and id sum.
fn live_count() -> (usize, u64) {
    REGISTRY.with_borrow(|r| (r.live.len(), r.id_sum))
}

fn live_ids() -> BTreeSet<u32> {
    REGISTRY.with_borrow(|r| r.live.clone())
}

/// Forgets every value of this thread (at the start of a run: none should
/// be alive) and disarms the bombs.
fn reset() {
    REGISTRY.with_borrow_mut(|r| *r = Registry::default());
}

fn bad_drops() -> usize {
    REGISTRY.with_borrow(|r| r.bad_drops)
}

/// Arms (or disarms) the bombs of this thread's values; returns the
/// previous setting.
pub fn arm(on: bool) -> bool {
    REGISTRY.with_borrow_mut(|r| std::mem::replace(&mut r.armed, on))
}

/// Makes the panic hook quiet for planned panics ([`Bomb`]) and leaves every
/// other panic to the hook in place before (a fuzz target's aborts).
/// Idempotent.
pub fn quiet_bombs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let before = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<Bomb>() {
                before(info);
            }
        }));
    });
}

// ---------------------------------------------------------------------------
// The model.

/// Entries by first address: `(level, value)`.
pub type Entries = BTreeMap<u64, (u8, u32)>;

/// An entry: first address, level, value.
pub type Item = (u64, u8, u32);

/// An expected refusal: what the table's `Error` must say.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub kind: ErrorKind,
    pub addr: u64,
    pub level: u8,
}

impl Refused {
    pub fn new(kind: ErrorKind, addr: u64, level: u8) -> Refused {
        Refused { kind, addr, level }
    }

    /// What `e` says.
    pub fn of<T>(e: &Error<T>) -> Refused {
        Refused::new(e.kind(), e.addr(), e.level().index() as u8)
    }
}

impl fmt::Debug for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} at {:#x} L{}", self.kind, self.addr, self.level)
    }
}

/// How a large entry's value becomes its sub-pages' values.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitHow {
    /// Each sub-page gets a clone (`split`, `SplitByClone`).
    Clone,
    /// Sub-page `i` gets `value + i` (through `FnOps`).
    Numbered,
}

impl SplitHow {
    fn value(self, v: u32, i: u64) -> u32 {
        match self {
            SplitHow::Clone => v,
            SplitHow::Numbered => v.wrapping_add(i as u32),
        }
    }
}

/// How a full table of entries becomes one entry.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeHow {
    /// When every child is equal (`merge`, `CloneOps`).
    Equal,
    /// Always, into `fold(0, |a, v| a * 31 + v)` of the children in address
    /// order (through `FnOps`): checks the order and that every child is seen.
    Fold,
}

impl MergeHow {
    fn value(self, children: &[u32]) -> Option<u32> {
        match self {
            MergeHow::Equal => children.iter().all(|&v| v == children[0]).then_some(children[0]),
            MergeHow::Fold => Some(fold(children.iter())),
        }
    }
}

fn fold<'a>(children: impl Iterator<Item = &'a u32>) -> u32 {
    children.fold(0u32, |a, &v| a.wrapping_mul(31).wrapping_add(v))
}

/// Which entries a `retain` keeps.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    All,
    Nothing,
    EvenValues,
    BasePagesOnly,
    LargePagesOnly,
    LowerHalf,
}

impl Keep {
    pub fn keeps(self, geo: &Geo, addr: u64, level: u8, value: u32) -> bool {
        match self {
            Keep::All => true,
            Keep::Nothing => false,
            Keep::EvenValues => value % 2 == 0,
            Keep::BasePagesOnly => level == 0,
            Keep::LargePagesOnly => level > 0,
            Keep::LowerHalf => addr <= geo.last_addr() / 2,
        }
    }
}

/// What an `Entry` op does with the entry it gets.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryAction {
    /// Occupied: add one through `get_mut`. Vacant: `try_insert`.
    Bump,
    /// Occupied: `insert` (replace). Vacant: `try_insert`.
    Replace,
    /// Occupied: `remove`. Vacant: leave it.
    Remove,
}

/// What an `Entry` op saw and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryOutcome {
    Bumped(u32),
    Replaced(u32),
    Removed(u32),
    Inserted(u32),
    LeftVacant,
}

/// The reference model: the entries, the backend's bound, and what change
/// reports said so far.
#[derive(Clone, Debug)]
pub struct Model {
    pub geo: Geo,
    /// The entries the table must hold.
    pub entries: Entries,
    /// Tables the backend can hold at each level below the root (`None`
    /// where it is unbounded).
    pub capacity: Vec<Option<usize>>,
    /// Tables reserved at each level below the root and not yet drawn: each
    /// table an op creates draws one; `unreserve` and a fresh clone have
    /// none. Predicts when a reservation on a bounded backend fails.
    pub credit: Vec<usize>,
    /// The table as the change reports describe it: updated only from
    /// `take_changes` (clear each reported region, then set its value): which
    /// value covers each address, not the entries' shapes.
    pub reported: Coverage,
}

/// The entry of `entries` that covers `addr`.
fn covering(geo: &Geo, entries: &Entries, addr: u64) -> Option<Item> {
    let (&start, &(level, value)) = entries.range(..=addr).next_back()?;
    (addr <= geo.end(start, level)).then_some((start, level, value))
}

/// The entries of `entries` that overlap `lo..=last`, in order.
fn overlapping(geo: &Geo, entries: &Entries, lo: u64, last: u64) -> Vec<Item> {
    let mut out: Vec<Item> = covering(geo, entries, lo).filter(|e| e.0 < lo).into_iter().collect();
    out.extend(entries.range(lo..=last).map(|(&a, &(l, v))| (a, l, v)));
    out
}

/// One step of a double-ended walk: whether it was taken from the back, and
/// the entry it yielded.
pub type Step = (bool, Item);

/// The steps of a walk over `items` that takes each step from the end `ends`
/// says, at most `limit` steps: what a double-ended iterator must yield.
pub fn walk(items: &[Item], ends: Ends, limit: usize) -> Vec<Step> {
    let (mut lo, mut hi) = (0, items.len());
    let mut out = Vec::new();
    while lo < hi && out.len() < limit {
        let back = ends.back(out.len());
        let item = if back {
            hi -= 1;
            items[hi]
        } else {
            lo += 1;
            items[lo - 1]
        };
        out.push((back, item));
    }
    out
}

/// Replaces the entry of `level` at `start` by its sub-pages one level down.
fn split_entry(geo: &Geo, entries: &mut Entries, start: u64, level: u8, how: SplitHow) {
    let (l, v) = entries.remove(&start).expect("an entry to split");
    assert_eq!(l, level, "model: split of the wrong entry");
    let below = level - 1;
    for i in 0..geo.fanout(below) {
        entries.insert(start + i * geo.size(below), (below, how.value(v, i)));
    }
}

/// Clears `lo..=last` of `entries`, splitting (by clone) any entry that
/// straddles an end: a pure function of addresses, whatever the levels.
fn punch(geo: &Geo, entries: &mut Entries, lo: u64, last: u64) {
    for edge in [lo, last] {
        while let Some((start, level, _)) = covering(geo, entries, edge) {
            if start >= lo && geo.end(start, level) <= last {
                break;
            }
            split_entry(geo, entries, start, level, SplitHow::Clone);
        }
    }
    let inside: Vec<u64> = entries.range(lo..=last).map(|(&a, _)| a).collect();
    for a in inside {
        entries.remove(&a);
    }
}

impl Model {
    /// The model of an empty `table` (which must be fresh: no change marks).
    pub fn new<V, G: Geometry, B: Backend>(table: &MemTable<V, G, B>) -> Model {
        assert!(table.is_empty(), "model: start from an empty table");
        let geo = Geo::of::<G>();
        let stats = table.stats();
        let capacity: Vec<Option<usize>> = (0..geo.top() as usize).map(|l| stats.level(l).capacity).collect();
        let credit = vec![0; capacity.len()];
        Model { geo, entries: Entries::new(), capacity, credit, reported: Coverage::new() }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn items(&self) -> Vec<Item> {
        self.entries.iter().map(|(&a, &(l, v))| (a, l, v)).collect()
    }

    /// The entry covering `addr`.
    pub fn get(&self, addr: u64) -> Option<Item> {
        if !self.geo.in_reach(addr) {
            return None;
        }
        covering(&self.geo, &self.entries, addr)
    }

    /// The entries overlapping `range`, as `MemTable::range` yields them.
    pub fn range(&self, (start, end): (Bound<u64>, Bound<u64>)) -> Vec<Item> {
        let lo = match start {
            Bound::Included(a) => Some(a),
            Bound::Excluded(a) => a.checked_add(1),
            Bound::Unbounded => Some(0),
        };
        let last = match end {
            Bound::Included(a) => Some(a),
            Bound::Excluded(a) => a.checked_sub(1),
            Bound::Unbounded => Some(u64::MAX),
        };
        match (lo, last.map(|l| l.min(self.geo.last_addr()))) {
            (Some(lo), Some(last)) if lo <= last => overlapping(&self.geo, &self.entries, lo, last),
            _ => Vec::new(),
        }
    }

    /// Tables the table holds at each level below the root, as sorted lists
    /// of region numbers: a table of level `l` exists exactly where an entry
    /// of level `l` or below lies in its region (empty tables are freed).
    pub fn tables_of(&self, entries: &Entries) -> Vec<Vec<u64>> {
        let mut tables = vec![Vec::new(); self.geo.top() as usize];
        for (&start, &(level, _)) in entries {
            for l in level..self.geo.top() {
                // Entries come in address order, so each list comes sorted.
                let region = start >> self.geo.shift(l + 1);
                let list = &mut tables[l as usize];
                if list.last() != Some(&region) {
                    list.push(region);
                }
            }
        }
        tables
    }

    /// Table counts per level below the root.
    pub fn tables(&self) -> Vec<usize> {
        self.tables_of(&self.entries).iter().map(Vec::len).collect()
    }

    /// The tables going from the current entries to `next` creates, per
    /// level below the root.
    fn created(&self, next: &Entries) -> Vec<usize> {
        let (before, after) = (self.tables_of(&self.entries), self.tables_of(next));
        before
            .iter()
            .zip(&after)
            .map(|(b, a)| a.iter().filter(|r| b.binary_search(r).is_err()).count())
            .collect()
    }

    /// Checks that `created` new tables fit in a bounded backend, on top of
    /// `reserved` tables per level (checked top level first, so the highest
    /// level that runs out is reported, at `at`). A level that needs no new
    /// table is not checked.
    fn fits(&self, created: &[usize], reserved: &[usize], at: u64) -> Result<(), Refused> {
        let live = self.tables();
        for l in (0..self.geo.top()).rev() {
            let Some(cap) = self.capacity[l as usize] else { continue };
            let n = created[l as usize];
            if n > 0 && n + reserved[l as usize] > cap.saturating_sub(live[l as usize]) {
                return Err(Refused::new(ErrorKind::OutOfNodes, at, l));
            }
        }
        Ok(())
    }

    /// Whether some level's backend is bounded: only then do table counts
    /// and reservations decide an outcome.
    fn bounded(&self) -> bool {
        self.capacity.iter().any(Option::is_some)
    }

    /// Moves to `next` if the backend has the tables for it (reserved or
    /// not); the tables created draw on the reservations.
    fn commit(&mut self, next: Entries, at: u64) -> Result<(), Refused> {
        if self.bounded() {
            let created = self.created(&next);
            self.fits(&created, &vec![0; created.len()], at)?;
            for (c, n) in self.credit.iter_mut().zip(created) {
                *c = c.saturating_sub(n);
            }
        }
        self.entries = next;
        Ok(())
    }

    /// Adds `need` tables per level to the reservations, all or nothing.
    fn reserve(&mut self, need: &[usize], at: u64) -> Result<(), Refused> {
        self.fits(need, &self.credit, at)?;
        for (c, n) in self.credit.iter_mut().zip(need) {
            *c += n;
        }
        Ok(())
    }

    /// Whether `addr` may carry an entry at `level`.
    pub fn check_place(&self, addr: u64, level: u8) -> Result<(), Refused> {
        let fail = |kind| Err(Refused::new(kind, addr, level));
        if !self.geo.holds(level) {
            return fail(ErrorKind::NoEntriesAtLevel);
        }
        if !self.geo.in_reach(addr) {
            return fail(ErrorKind::OutOfReach);
        }
        if addr % self.geo.size(level) != 0 {
            return fail(ErrorKind::Misaligned);
        }
        Ok(())
    }

    /// What an insert of `level` at `addr` meets: `Ok(true)` if it replaces
    /// an entry, `Ok(false)` if the place is free.
    pub fn probe_insert(&self, addr: u64, level: u8) -> Result<bool, Refused> {
        self.check_place(addr, level)?;
        match covering(&self.geo, &self.entries, addr) {
            Some((start, l, _)) if l > level => Err(Refused::new(ErrorKind::ConflictLarger, start, l)),
            Some((_, l, _)) if l == level => Ok(true),
            _ if overlapping(&self.geo, &self.entries, addr, self.geo.end(addr, level)).is_empty() => {
                Ok(false)
            }
            _ => Err(Refused::new(ErrorKind::ConflictSmaller, addr, level)),
        }
    }

    fn insert_next(&self, addr: u64, level: u8, v: u32) -> Result<(Entries, Option<u32>), Refused> {
        self.probe_insert(addr, level)?;
        let mut next = self.entries.clone();
        let old = next.insert(addr, (level, v)).map(|(_, old)| old);
        Ok((next, old))
    }

    pub fn insert_at(&mut self, addr: u64, level: u8, v: u32) -> Result<Option<u32>, Refused> {
        let (next, old) = self.insert_next(addr, level, v)?;
        self.commit(next, addr)?;
        Ok(old)
    }

    /// `reserve_insert`: as `insert_at` would fail, without inserting;
    /// reserves the tables it would create.
    pub fn reserve_insert(&mut self, addr: u64, level: u8) -> Result<(), Refused> {
        let (next, _) = self.insert_next(addr, level, 0)?;
        if !self.bounded() {
            return Ok(());
        }
        let need = self.created(&next);
        self.reserve(&need, addr)
    }

    /// `reserve_tables(level, n)`.
    pub fn reserve_tables(&mut self, level: u8, n: usize) -> Result<(), Refused> {
        if level >= self.geo.top() {
            return Err(Refused::new(ErrorKind::NoEntriesAtLevel, 0, level));
        }
        if !self.bounded() {
            return Ok(());
        }
        let mut need = vec![0; self.credit.len()];
        need[level as usize] = n;
        self.reserve(&need, 0)
    }

    pub fn unreserve(&mut self) {
        self.credit.iter_mut().for_each(|c| *c = 0);
    }

    /// `remove`: the base-page entry at `addr` only.
    pub fn remove(&mut self, addr: u64) -> Result<Option<Item>, Refused> {
        self.remove_at(addr, 0)
    }

    /// `remove_at`: the entry of `level` at `addr`, refused as an insert
    /// there would be (a larger entry over it, smaller ones inside).
    pub fn remove_at(&mut self, addr: u64, level: u8) -> Result<Option<Item>, Refused> {
        if !self.probe_insert(addr, level)? {
            return Ok(None);
        }
        let (l, v) = self.entries.remove(&addr).expect("probed");
        Ok(Some((addr, l, v)))
    }

    /// `remove_covering`: whatever entry covers `addr`, any address.
    pub fn remove_covering(&mut self, addr: u64) -> Option<Item> {
        if !self.geo.in_reach(addr) {
            return None;
        }
        let found = covering(&self.geo, &self.entries, addr)?;
        self.entries.remove(&found.0);
        Some(found)
    }

    pub fn get_mut(&mut self, addr: u64, add: u32) -> Option<Item> {
        let found = self.get(addr)?;
        self.entries.get_mut(&found.0).expect("found").1 = found.2.wrapping_add(add);
        Some(found)
    }

    pub fn split(&mut self, addr: u64, level: u8, how: SplitHow) -> Result<(), Refused> {
        self.check_place(addr, level)?;
        let refuse = |kind, addr, level| Err(Refused::new(kind, addr, level));
        let Some(below) = level.checked_sub(1) else { return refuse(ErrorKind::NothingToSplit, addr, level) };
        match covering(&self.geo, &self.entries, addr) {
            Some((start, l, _)) if l > level => refuse(ErrorKind::ConflictLarger, start, l),
            Some((_, l, _)) if l == level && !self.geo.holds(below) => {
                refuse(ErrorKind::NoEntriesAtLevel, addr, below)
            }
            Some((_, l, _)) if l == level => {
                let mut next = self.entries.clone();
                split_entry(&self.geo, &mut next, addr, level, how);
                self.commit(next, addr)
            }
            _ => refuse(ErrorKind::NothingToSplit, addr, level),
        }
    }

    /// The value a merge into the entry of `level` at `addr` would make.
    fn merged(&self, addr: u64, level: u8, how: MergeHow) -> Option<u32> {
        let below = level.checked_sub(1)?;
        let children = overlapping(&self.geo, &self.entries, addr, self.geo.end(addr, level));
        let full = children.len() as u64 == self.geo.fanout(below) && children.iter().all(|c| c.1 == below);
        let values: Vec<u32> = children.iter().map(|c| c.2).collect();
        if full { how.value(&values) } else { None }
    }

    pub fn merge(&mut self, addr: u64, level: u8, how: MergeHow) -> Result<(), Refused> {
        self.check_place(addr, level)?;
        if level == 0 {
            return Err(Refused::new(ErrorKind::NotMergeable, addr, level));
        }
        if let Some((start, l, _)) = covering(&self.geo, &self.entries, addr) {
            if l > level {
                return Err(Refused::new(ErrorKind::ConflictLarger, start, l));
            }
        }
        let v = self.merged(addr, level, how).ok_or(Refused::new(ErrorKind::NotMergeable, addr, level))?;
        self.replace_by(addr, level, v);
        Ok(())
    }

    /// Replaces every entry inside the page of `level` at `addr` by one.
    fn replace_by(&mut self, addr: u64, level: u8, v: u32) {
        let inside: Vec<u64> =
            self.entries.range(addr..=self.geo.end(addr, level)).map(|(&a, _)| a).collect();
        for a in inside {
            self.entries.remove(&a);
        }
        self.entries.insert(addr, (level, v));
    }

    /// The inclusive bounds of a range for `insert_range`/`remove_range`.
    pub fn check_range(&self, (start, end): (Bound<u64>, Bound<u64>)) -> Result<(u64, u64), Refused> {
        let refuse = |kind, addr| Refused::new(kind, addr, 0);
        let lo = match start {
            Bound::Included(a) => a,
            Bound::Excluded(a) => a.checked_add(1).ok_or(refuse(ErrorKind::EmptyRange, a))?,
            Bound::Unbounded => 0,
        };
        let last = match end {
            Bound::Included(a) => a,
            Bound::Excluded(a) => a.checked_sub(1).ok_or(refuse(ErrorKind::EmptyRange, lo))?,
            Bound::Unbounded => self.geo.last_addr(),
        };
        if lo > last {
            return Err(refuse(ErrorKind::EmptyRange, lo));
        }
        if !self.geo.in_reach(last) {
            return Err(refuse(ErrorKind::OutOfReach, last));
        }
        if lo % self.geo.page() != 0 {
            return Err(refuse(ErrorKind::Misaligned, lo));
        }
        if last.wrapping_add(1) % self.geo.page() != 0 {
            return Err(refuse(ErrorKind::Misaligned, last.wrapping_add(1)));
        }
        Ok((lo, last))
    }

    /// Splits the entries that straddle an end of `lo..=last` until none
    /// does, lower end first; refuses a split into a level without entries.
    fn carve(&self, next: &mut Entries, lo: u64, last: u64, how: SplitHow) -> Result<(), Refused> {
        for edge in [lo, last] {
            while let Some((start, level, _)) = covering(&self.geo, next, edge) {
                if start >= lo && self.geo.end(start, level) <= last {
                    break;
                }
                let below = level.checked_sub(1).expect("a base page never straddles a base-aligned range");
                if !self.geo.holds(below) {
                    return Err(Refused::new(ErrorKind::NoEntriesAtLevel, lo, below));
                }
                split_entry(&self.geo, next, start, level, how);
            }
        }
        let inside: Vec<u64> = next.range(lo..=last).map(|(&a, _)| a).collect();
        for a in inside {
            next.remove(&a);
        }
        Ok(())
    }

    pub fn insert_range(
        &mut self,
        range: (Bound<u64>, Bound<u64>),
        v: u32,
        how: SplitHow,
    ) -> Result<(), Refused> {
        let (lo, last) = self.check_range(range)?;
        let mut next = self.entries.clone();
        self.carve(&mut next, lo, last, how)?;
        for (addr, level) in self.geo.pieces(lo, last, usize::MAX).expect("no limit") {
            next.insert(addr, (level, v));
        }
        self.commit(next, lo)
    }

    pub fn remove_range(&mut self, range: (Bound<u64>, Bound<u64>), how: SplitHow) -> Result<(), Refused> {
        let (lo, last) = self.check_range(range)?;
        let mut next = self.entries.clone();
        self.carve(&mut next, lo, last, how)?;
        self.commit(next, lo)
    }

    /// Merges bottom up every full table of equal entries, where the level
    /// above holds entries. Returns the number of merges.
    pub fn compact(&mut self) -> usize {
        let mut merges = 0;
        for level in 1..=self.geo.top() {
            if !self.geo.holds(level) {
                continue;
            }
            let parents: BTreeSet<u64> = self
                .entries
                .iter()
                .filter(|(_, e)| e.0 == level - 1)
                .map(|(&a, _)| self.geo.align_down(a, level))
                .collect();
            for addr in parents {
                if let Some(v) = self.merged(addr, level, MergeHow::Equal) {
                    self.replace_by(addr, level, v);
                    merges += 1;
                }
            }
        }
        merges
    }

    /// Keeps the entries `keep` keeps (adding one to them if `bump`).
    /// Returns every entry visited, as it was.
    pub fn retain(&mut self, keep: Keep, bump: bool) -> Vec<Item> {
        let visited = self.items();
        for &(a, l, v) in &visited {
            if !keep.keeps(&self.geo, a, l, v) {
                self.entries.remove(&a);
            } else if bump {
                self.entries.insert(a, (l, v.wrapping_add(1)));
            }
        }
        visited
    }

    /// Adds `add` to the entries a walk over `items` yields (`ends`, at
    /// most `limit` steps); returns the walk, values as they were.
    fn add_along(&mut self, items: &[Item], ends: Ends, limit: usize, add: u32) -> Vec<Step> {
        let walked = walk(items, ends, limit);
        for &(_, (a, l, v)) in &walked {
            self.entries.insert(a, (l, v.wrapping_add(add)));
        }
        walked
    }

    /// `iter_mut`, walked as `ends` says for at most `limit` steps, adding
    /// `add` to each entry yielded.
    pub fn iter_mut(&mut self, ends: Ends, limit: usize, add: u32) -> Vec<Step> {
        self.add_along(&self.items(), ends, limit, add)
    }

    /// `range_mut(range)`, as [`iter_mut`](Self::iter_mut).
    pub fn range_mut(&mut self, range: Range, ends: Ends, limit: usize, add: u32) -> Vec<Step> {
        self.add_along(&self.range(range), ends, limit, add)
    }

    pub fn first(&self) -> Option<Item> {
        self.entries.first_key_value().map(|(&a, &(l, v))| (a, l, v))
    }

    pub fn last(&self) -> Option<Item> {
        self.entries.last_key_value().map(|(&a, &(l, v))| (a, l, v))
    }

    pub fn pop_first(&mut self) -> Option<Item> {
        self.entries.pop_first().map(|(a, (l, v))| (a, l, v))
    }

    pub fn pop_last(&mut self) -> Option<Item> {
        self.entries.pop_last().map(|(a, (l, v))| (a, l, v))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The `Entry` op: `entry_at(addr, level)`, then `action`.
    pub fn entry(
        &mut self,
        addr: u64,
        level: u8,
        action: EntryAction,
        v: u32,
    ) -> Result<EntryOutcome, Refused> {
        let occupied = self.probe_insert(addr, level)?;
        if !occupied {
            if action == EntryAction::Remove {
                return Ok(EntryOutcome::LeftVacant);
            }
            self.insert_at(addr, level, v)?;
            return Ok(EntryOutcome::Inserted(v));
        }
        let old = self.entries[&addr].1;
        Ok(match action {
            EntryAction::Bump => {
                self.entries.insert(addr, (level, old.wrapping_add(1)));
                EntryOutcome::Bumped(old.wrapping_add(1))
            }
            EntryAction::Replace => {
                self.entries.insert(addr, (level, v));
                EntryOutcome::Replaced(old)
            }
            EntryAction::Remove => {
                self.entries.remove(&addr);
                EntryOutcome::Removed(old)
            }
        })
    }

    /// Applies one change report to the shadow: clears `page`'s region, then
    /// sets its value.
    pub fn apply_change(&mut self, start: u64, last: u64, value: Option<u32>) {
        cover(&mut self.reported, start, last, value);
    }

    /// The entries' coverage, joined.
    pub fn coverage(&self) -> Vec<(u64, u64, u32)> {
        joined(self.entries.iter().map(|(&a, &(l, v))| (a, self.geo.end(a, l), v)))
    }

    /// Whether `act` would make more entries than [`BUDGET`] (or is a range
    /// set too large to work out): the interpreter skips it.
    pub fn over_budget(&self, act: &Act) -> bool {
        let room = BUDGET.saturating_sub(self.len());
        match *act {
            Act::Split { level, .. } if self.geo.holds(level) && level > 0 => {
                self.geo.fanout(level - 1) as usize > room
            }
            Act::InsertRange { range, .. } => match self.check_range(range) {
                Ok((lo, last)) => self.geo.pieces(lo, last, room).is_none(),
                Err(_) => false,
            },
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Operations.

/// An address, symbolically: resolved by [`Addr::resolve`] against the
/// model (its geometry and, for [`Addr::Entry`], its entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Addr {
    /// Base page `n % 16` from the bottom.
    Low(u8),
    /// Base page `n % 16` from the top of the reach (0: the last page).
    High(u8),
    /// Page `n % 4` of the op's level (base pages for an op without one),
    /// from the bottom or from the top of the reach.
    Page { n: u8, from_top: bool },
    /// The first address of page `n % 4` of level `level % levels`, counted
    /// from the bottom or from the top of the reach, nudged.
    Boundary { level: u8, n: u8, from_top: bool, nudge: Nudge },
    /// The first address of entry `n % count` among the model's entries of
    /// the op's level and the level below (or among all if there are none),
    /// rounded down to the op's level: an entry to split, or a table to
    /// merge. 0 if the model is empty.
    Entry(u8),
    /// A page of the op's level reached through slot `0`, `1`, the middle
    /// or the last of each table on the way down, two bits of `path` per
    /// level from the top: entries spread over several root slots and
    /// tables at every level, deep paths that other ops meet again.
    Deep(u16),
    /// `2^ADDRESS_BITS` plus `n % 4` base pages (`u64::MAX - n % 4` when
    /// every address is in reach).
    PastReach(u8),
    /// That address.
    Any(u64),
}

/// Mostly addresses in reach that other ops will meet again; now and then
/// one past the reach or anywhere at all.
impl<'a> Arbitrary<'a> for Addr {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Addr> {
        Ok(match u.int_in_range(0..=23u8)? {
            0..=3 => Addr::Low(u.arbitrary()?),
            4 | 5 => Addr::High(u.arbitrary()?),
            6..=9 => Addr::Page { n: u.arbitrary()?, from_top: u.arbitrary()? },
            10..=13 => Addr::Boundary {
                level: u.arbitrary()?,
                n: u.arbitrary()?,
                from_top: u.arbitrary()?,
                nudge: u.arbitrary()?,
            },
            14..=17 => Addr::Entry(u.arbitrary()?),
            18..=21 => Addr::Deep(u.arbitrary()?),
            22 => Addr::PastReach(u.arbitrary()?),
            _ => Addr::Any(u.arbitrary()?),
        })
    }
}

/// A small move away from a boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nudge {
    Exact,
    PageUp,
    PageDown,
    ByteUp,
    ByteDown,
}

/// Half the time exact, a page off more often than a byte off.
impl<'a> Arbitrary<'a> for Nudge {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Nudge> {
        Ok(match u.int_in_range(0..=9u8)? {
            0..=4 => Nudge::Exact,
            5 | 6 => Nudge::PageUp,
            7 => Nudge::PageDown,
            8 => Nudge::ByteUp,
            _ => Nudge::ByteDown,
        })
    }
}

impl Nudge {
    fn apply(self, geo: &Geo, addr: u64) -> u64 {
        match self {
            Nudge::Exact => addr,
            Nudge::PageUp => addr.wrapping_add(geo.page()),
            Nudge::PageDown => addr.wrapping_sub(geo.page()),
            Nudge::ByteUp => addr.wrapping_add(1),
            Nudge::ByteDown => addr.wrapping_sub(1),
        }
    }
}

impl Addr {
    /// The address, for an op acting at `level` (0 if it has none).
    pub fn resolve(self, m: &Model, level: u8) -> u64 {
        let level = level.min(m.geo.top());
        self.resolve_with(&m.geo, level, |n| {
            let near = |e: &(&u64, &(u8, u32))| e.1.0 == level || e.1.0 + 1 == level;
            let mut starts: Vec<u64> = m.entries.iter().filter(near).map(|(&a, _)| a).collect();
            if starts.is_empty() {
                starts = m.entries.keys().copied().collect();
            }
            starts.get(usize::from(n) % starts.len().max(1)).copied()
        })
    }

    /// The address in `geo`, for an op acting at `level`, with `entry(n)`
    /// giving the address of an entry for [`Addr::Entry`] (`None` if there
    /// is none): for harnesses whose reference is not a [`Model`].
    pub fn resolve_with(self, geo: &Geo, level: u8, entry: impl FnOnce(u8) -> Option<u64>) -> u64 {
        let level = level.min(geo.top());
        let last_page = geo.last_addr() - (geo.page() - 1);
        // Page `n % 4` of `level`, from the bottom or the top.
        let page = |level: u8, n: u8, from_top: bool| {
            let n = u64::from(n % 4).min(geo.pages(level) - 1);
            let index = if from_top { geo.pages(level) - 1 - n } else { n };
            index * geo.size(level)
        };
        match self {
            Addr::Low(n) => u64::from(n % 16) * geo.page(),
            Addr::High(n) => last_page - u64::from(n % 16) * geo.page(),
            Addr::Page { n, from_top } => page(level, n, from_top),
            Addr::Boundary { level, n, from_top, nudge } => {
                nudge.apply(geo, page(level % geo.levels() as u8, n, from_top))
            }
            Addr::Entry(n) => entry(n).map_or(0, |a| geo.align_down(a, level)),
            Addr::Deep(path) => (level..=geo.top()).fold(0, |addr, l| {
                let slots = geo.fanout(l);
                let slot = match (path >> (2 * u32::from(geo.top() - l))) & 3 {
                    0 => 0,
                    1 => 1,
                    2 => slots / 2,
                    _ => slots - 1,
                };
                addr | slot << geo.shift(l)
            }),
            Addr::PastReach(n) if geo.bits >= 64 => u64::MAX - u64::from(n % 4),
            Addr::PastReach(n) => (1u64 << geo.bits) + u64::from(n % 4) * geo.page(),
            Addr::Any(a) => a,
        }
    }
}

/// A level, symbolically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvl {
    /// The `n % count`-th level that holds entries, from the bottom.
    Holding(u8),
    /// The `n % count`-th level above 0 that holds entries (0 if none does).
    Large(u8),
    /// The level of the entry covering the op's address (0 if none does).
    OfEntry,
    /// One above the level of the entry covering the op's address.
    AboveEntry,
    /// Level `n % (levels + 1)` (so possibly one past the top), or `n` itself
    /// from 250 up.
    At(u8),
}

/// Mostly a level that holds entries, or one that fits the entry the op
/// meets (to split or merge it).
impl<'a> Arbitrary<'a> for Lvl {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Lvl> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=5 => Lvl::Holding(u.arbitrary()?),
            6..=9 => Lvl::Large(u.arbitrary()?),
            10..=12 => Lvl::OfEntry,
            13..=15 => Lvl::AboveEntry,
            _ => Lvl::At(u.arbitrary()?),
        })
    }
}

impl Lvl {
    /// The level, for an op at `addr` (resolved as for a base page).
    pub fn resolve(self, m: &Model, addr: u64) -> u8 {
        let geo = &m.geo;
        let nth =
            |n: u8, levels: Vec<u8>| levels.get(usize::from(n) % levels.len().max(1)).copied().unwrap_or(0);
        let entry_level = || m.get(addr).map_or(0, |e| e.1);
        match self {
            Lvl::Holding(n) => nth(n, (0..=geo.top()).filter(|&l| geo.holds(l)).collect()),
            Lvl::Large(n) => nth(n, (1..=geo.top()).filter(|&l| geo.holds(l)).collect()),
            Lvl::OfEntry => entry_level(),
            Lvl::AboveEntry => entry_level() + 1,
            Lvl::At(n) if n >= 250 => n,
            Lvl::At(n) => n % (geo.levels() as u8 + 1),
        }
    }
}

/// A value: `n % 4`, so that neighbours are often equal and merge; a new
/// value with `n >> 4` 15 carries a [`CLONE_BOMB`], with 14 a
/// [`DROP_BOMB`] (which fire only in an armed run).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Val(pub u8);

impl Val {
    pub fn get(self) -> u32 {
        u32::from(self.0 % 4)
    }

    /// The value to make.
    pub fn fresh(self) -> Fresh {
        let bombs = match self.0 >> 4 {
            15 => CLONE_BOMB,
            14 => DROP_BOMB,
            _ => 0,
        };
        Fresh { n: self.get(), bombs }
    }
}

/// A value to make for an op: its number and bombs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fresh {
    pub n: u32,
    pub bombs: u8,
}

impl Fresh {
    pub fn make<W: ModelValue>(self) -> W {
        W::new(self.n, self.bombs)
    }
}

impl fmt::Debug for Fresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(f, self.n, self.bombs)
    }
}

/// Which end each step of a double-ended walk takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ends {
    /// `next` only.
    Front,
    /// `next_back` only: the reverse order.
    Back,
    /// `next`, `next_back`, `next`, ...
    Alternate,
    /// Step `i` from the back if bit `i % 16` is set.
    Bits(u16),
}

impl<'a> Arbitrary<'a> for Ends {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Ends> {
        Ok(match u.int_in_range(0..=9u8)? {
            0..=2 => Ends::Front,
            3..=5 => Ends::Back,
            6 | 7 => Ends::Alternate,
            _ => Ends::Bits(u.arbitrary()?),
        })
    }
}

impl Ends {
    /// Whether step `i` (from 0) is taken from the back.
    pub fn back(self, i: usize) -> bool {
        match self {
            Ends::Front => false,
            Ends::Back => true,
            Ends::Alternate => i % 2 == 1,
            Ends::Bits(b) => (b >> (i % 16)) & 1 == 1,
        }
    }
}

/// How a [`Look::Fold`] consumes what is left of an iterator after a few
/// steps from each end: through the iterator's internal iteration.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldHow {
    /// `Iter::fold` (of `iter()` or `range(..)`).
    IterFold,
    /// `Iter::for_each`.
    IterForEach,
    /// `Iter::count`.
    IterCount,
    /// `Iter::last`.
    IterLast,
    /// `Keys::fold` (the whole table).
    KeysFold,
    /// `Keys::for_each`.
    KeysForEach,
    /// `Values::fold`.
    ValuesFold,
    /// `Values::map(..).sum()`.
    ValuesSum,
}

/// A length: `count % 4` pages of level `level % levels`, nudged.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Len {
    pub level: u8,
    pub count: u8,
    pub nudge: Nudge,
}

impl Len {
    pub fn resolve(self, geo: &Geo) -> u64 {
        let size = geo.size(self.level % geo.levels() as u8);
        self.nudge.apply(geo, u64::from(self.count % 4).wrapping_mul(size))
    }
}

/// A range bound, symbolically.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundArg {
    Included(Addr),
    Excluded(Addr),
    Unbounded,
}

impl BoundArg {
    fn resolve(self, m: &Model) -> Bound<u64> {
        match self {
            BoundArg::Included(a) => Bound::Included(a.resolve(m, 0)),
            BoundArg::Excluded(a) => Bound::Excluded(a.resolve(m, 0)),
            BoundArg::Unbounded => Bound::Unbounded,
        }
    }
}

/// A range, symbolically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeArg {
    /// `start .. start + len`
    Span { start: Addr, len: Len },
    /// `start ..= start + len - 1`
    SpanInclusive { start: Addr, len: Len },
    /// `start ..`
    From(Addr),
    /// `.. end`
    To(Addr),
    /// `..`
    Full,
    /// Any bounds.
    Bounds(BoundArg, BoundArg),
}

/// Mostly short spans; the open-ended ranges, which reach far, less often.
impl<'a> Arbitrary<'a> for RangeArg {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<RangeArg> {
        Ok(match u.int_in_range(0..=19u8)? {
            0..=8 => RangeArg::Span { start: u.arbitrary()?, len: u.arbitrary()? },
            9..=12 => RangeArg::SpanInclusive { start: u.arbitrary()?, len: u.arbitrary()? },
            13 => RangeArg::From(u.arbitrary()?),
            14 => RangeArg::To(u.arbitrary()?),
            15 => RangeArg::Full,
            _ => RangeArg::Bounds(u.arbitrary()?, u.arbitrary()?),
        })
    }
}

/// A resolved range.
pub type Range = (Bound<u64>, Bound<u64>);

impl RangeArg {
    pub fn resolve(self, m: &Model) -> Range {
        let geo = &m.geo;
        match self {
            RangeArg::Span { start, len } => {
                let a = start.resolve(m, len.level % geo.levels() as u8);
                (Bound::Included(a), Bound::Excluded(a.wrapping_add(len.resolve(geo))))
            }
            RangeArg::SpanInclusive { start, len } => {
                let a = start.resolve(m, len.level % geo.levels() as u8);
                (Bound::Included(a), Bound::Included(a.wrapping_add(len.resolve(geo)).wrapping_sub(1)))
            }
            RangeArg::From(a) => (Bound::Included(a.resolve(m, 0)), Bound::Unbounded),
            RangeArg::To(a) => (Bound::Unbounded, Bound::Excluded(a.resolve(m, 0))),
            RangeArg::Full => (Bound::Unbounded, Bound::Unbounded),
            RangeArg::Bounds(s, e) => (s.resolve(m), e.resolve(m)),
        }
    }
}

/// One operation, with symbolic arguments.
///
/// Read-only lookups and the ops that wipe much of the table are grouped
/// under [`Op::Look`] and [`Op::Sweep`], so that a random list (each variant
/// equally likely) mostly builds and reshapes the table.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Insert {
        addr: Addr,
        value: Val,
    },
    /// `n` base-page inserts into the bottom table covering `addr`, at
    /// slots `start, start + step, ...` (wrapping round the table; `step`
    /// odd, so all distinct up to the fan-out): a table driven through the
    /// packed classes, densely (`step` 1) or scattered.
    Fill {
        addr: Addr,
        n: u8,
        step: u8,
    },
    InsertAt {
        addr: Addr,
        level: Lvl,
        value: Val,
    },
    Remove {
        addr: Addr,
    },
    RemoveAt {
        addr: Addr,
        level: Lvl,
    },
    RemoveCovering {
        addr: Addr,
    },
    GetMut {
        addr: Addr,
        add: Val,
    },
    Split {
        addr: Addr,
        level: Lvl,
        how: SplitHow,
    },
    Merge {
        addr: Addr,
        level: Lvl,
        how: MergeHow,
    },
    InsertRange {
        range: RangeArg,
        value: Val,
        how: SplitHow,
    },
    RemoveRange {
        range: RangeArg,
        how: SplitHow,
    },
    Compact,
    TakeChanges,
    Entry {
        addr: Addr,
        level: Lvl,
        action: EntryAction,
        value: Val,
    },
    /// `iter_mut`, walked from the ends `ends` says, `limit` steps (all if
    /// `None`), adding `add` to each value.
    IterMut {
        limit: Option<u8>,
        add: Val,
        ends: Ends,
    },
    /// `range_mut(range)`, as `IterMut`.
    RangeMut {
        range: RangeArg,
        limit: Option<u8>,
        add: Val,
        ends: Ends,
    },
    /// `reserve_insert`, then (if it succeeded) `insert_at`, which must not
    /// run out of nodes.
    ReserveInsert {
        addr: Addr,
        level: Lvl,
        value: Val,
    },
    /// Carries on with a clone of the table (change marks included).
    CloneTable,
    Look(Look),
    Sweep(Sweep),
    Memory(Mem),
    /// The std-map surface: cursors, `extract_if`, `drain_range`,
    /// `split_off`, `get_disjoint_mut` (see the section at the end).
    Api(Api),
}

/// Lookups (the interpreter also looks around every op's address).
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Look {
    Get {
        addr: Addr,
    },
    GetKeyValue {
        addr: Addr,
    },
    Range {
        range: RangeArg,
    },
    /// `iter()` (or `range(..)`), walked from the ends `ends` says, `limit`
    /// steps (all if `None`).
    Walk {
        range: Option<RangeArg>,
        ends: Ends,
        limit: Option<u8>,
    },
    /// `front % 4` steps with `next`, `back % 4` with `next_back`, then the
    /// rest through `how`.
    Fold {
        range: Option<RangeArg>,
        front: u8,
        back: u8,
        how: FoldHow,
    },
    /// `first_key_value` and `last_key_value`.
    FirstLast,
    GetMany4 {
        addrs: [Addr; 4],
    },
    GetMany8 {
        addrs: [Addr; 8],
    },
    /// `into_iter` of a clone, walked as `Walk`; the rest dropped with the
    /// iterator.
    IntoIter {
        ends: Ends,
        limit: Option<u8>,
    },
}

/// Ops that may empty much of the table.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Sweep {
    Retain { keep: Keep, bump: bool },
    Clear,
    PopFirst,
    PopLast,
}

/// Table memory: reservations and giving memory back.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Mem {
    /// `reserve_insert` alone: the reservation stays until drawn.
    Reserve {
        addr: Addr,
        level: Lvl,
    },
    /// `reserve_tables(level, count % 4)`.
    ReserveTables {
        level: Lvl,
        count: u8,
    },
    Unreserve,
    ShrinkToFit,
}

/// One operation with concrete arguments for one geometry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Act {
    Insert { addr: u64, value: Fresh },
    Fill { addr: u64, n: u8, step: u8 },
    InsertAt { addr: u64, level: u8, value: Fresh },
    Remove { addr: u64 },
    RemoveAt { addr: u64, level: u8 },
    RemoveCovering { addr: u64 },
    Get { addr: u64 },
    GetKeyValue { addr: u64 },
    GetMut { addr: u64, add: u32 },
    Range { range: Range },
    Walk { range: Option<Range>, ends: Ends, limit: Option<u8> },
    Fold { range: Option<Range>, front: u8, back: u8, how: FoldHow },
    FirstLast,
    GetMany4 { addrs: [u64; 4] },
    GetMany8 { addrs: [u64; 8] },
    IntoIter { ends: Ends, limit: Option<u8> },
    Split { addr: u64, level: u8, how: SplitHow },
    Merge { addr: u64, level: u8, how: MergeHow },
    InsertRange { range: Range, value: Fresh, how: SplitHow },
    RemoveRange { range: Range, how: SplitHow },
    Compact,
    TakeChanges,
    Entry { addr: u64, level: u8, action: EntryAction, value: Fresh },
    Retain { keep: Keep, bump: bool },
    Clear,
    IterMut { limit: Option<u8>, add: u32, ends: Ends },
    RangeMut { range: Range, limit: Option<u8>, add: u32, ends: Ends },
    PopFirst,
    PopLast,
    ReserveInsert { addr: u64, level: u8, value: Fresh },
    Reserve { addr: u64, level: u8 },
    ReserveTables { level: u8, count: u8 },
    Unreserve,
    ShrinkToFit,
    CloneTable,
    Api(ApiAct),
}

impl Op {
    /// The op with concrete arguments, for the table `m` describes now.
    pub fn resolve(&self, m: &Model) -> Act {
        let a = |addr: &Addr| addr.resolve(m, 0);
        // An address and a level: the level found from the address as for a
        // base page, then the address resolved for that level.
        let al = |addr: &Addr, level: &Lvl| {
            let level = level.resolve(m, addr.resolve(m, 0));
            (addr.resolve(m, level), level)
        };
        let r = |range: &RangeArg| range.resolve(m);
        match self {
            Op::Insert { addr, value } => Act::Insert { addr: a(addr), value: value.fresh() },
            Op::Fill { addr, n, step } => Act::Fill { addr: a(addr), n: *n, step: *step },
            Op::InsertAt { addr, level, value } => {
                let (addr, level) = al(addr, level);
                Act::InsertAt { addr, level, value: value.fresh() }
            }
            Op::Remove { addr } => Act::Remove { addr: a(addr) },
            Op::RemoveAt { addr, level } => {
                let (addr, level) = al(addr, level);
                Act::RemoveAt { addr, level }
            }
            Op::RemoveCovering { addr } => Act::RemoveCovering { addr: a(addr) },
            Op::GetMut { addr, add } => Act::GetMut { addr: a(addr), add: add.get() },
            Op::Split { addr, level, how } => {
                let (addr, level) = al(addr, level);
                Act::Split { addr, level, how: *how }
            }
            Op::Merge { addr, level, how } => {
                let (addr, level) = al(addr, level);
                Act::Merge { addr, level, how: *how }
            }
            Op::InsertRange { range, value, how } => {
                Act::InsertRange { range: r(range), value: value.fresh(), how: *how }
            }
            Op::RemoveRange { range, how } => Act::RemoveRange { range: r(range), how: *how },
            Op::Compact => Act::Compact,
            Op::TakeChanges => Act::TakeChanges,
            Op::Entry { addr, level, action, value } => {
                let (addr, level) = al(addr, level);
                Act::Entry { addr, level, action: *action, value: value.fresh() }
            }
            Op::IterMut { limit, add, ends } => Act::IterMut { limit: *limit, add: add.get(), ends: *ends },
            Op::RangeMut { range, limit, add, ends } => {
                Act::RangeMut { range: r(range), limit: *limit, add: add.get(), ends: *ends }
            }
            Op::ReserveInsert { addr, level, value } => {
                let (addr, level) = al(addr, level);
                Act::ReserveInsert { addr, level, value: value.fresh() }
            }
            Op::CloneTable => Act::CloneTable,
            Op::Look(Look::Get { addr }) => Act::Get { addr: a(addr) },
            Op::Look(Look::GetKeyValue { addr }) => Act::GetKeyValue { addr: a(addr) },
            Op::Look(Look::Range { range }) => Act::Range { range: r(range) },
            Op::Look(Look::Walk { range, ends, limit }) => {
                Act::Walk { range: range.as_ref().map(r), ends: *ends, limit: *limit }
            }
            Op::Look(Look::Fold { range, front, back, how }) => {
                Act::Fold { range: range.as_ref().map(r), front: front % 4, back: back % 4, how: *how }
            }
            Op::Look(Look::FirstLast) => Act::FirstLast,
            Op::Look(Look::GetMany4 { addrs }) => Act::GetMany4 { addrs: addrs.each_ref().map(a) },
            Op::Look(Look::GetMany8 { addrs }) => Act::GetMany8 { addrs: addrs.each_ref().map(a) },
            Op::Look(Look::IntoIter { ends, limit }) => Act::IntoIter { ends: *ends, limit: *limit },
            Op::Sweep(Sweep::Retain { keep, bump }) => Act::Retain { keep: *keep, bump: *bump },
            Op::Sweep(Sweep::Clear) => Act::Clear,
            Op::Sweep(Sweep::PopFirst) => Act::PopFirst,
            Op::Sweep(Sweep::PopLast) => Act::PopLast,
            Op::Memory(Mem::Reserve { addr, level }) => {
                let (addr, level) = al(addr, level);
                Act::Reserve { addr, level }
            }
            Op::Memory(Mem::ReserveTables { level, count }) => {
                Act::ReserveTables { level: level.resolve(m, 0), count: count % 4 }
            }
            Op::Memory(Mem::Unreserve) => Act::Unreserve,
            Op::Memory(Mem::ShrinkToFit) => Act::ShrinkToFit,
            Op::Api(api) => Act::Api(api.resolve(m)),
        }
    }
}

impl Act {
    /// The address the act is about, to look around after it.
    fn addr(&self) -> Option<u64> {
        match *self {
            Act::Insert { addr, .. }
            | Act::InsertAt { addr, .. }
            | Act::Remove { addr }
            | Act::RemoveAt { addr, .. }
            | Act::RemoveCovering { addr }
            | Act::Get { addr }
            | Act::GetKeyValue { addr }
            | Act::GetMut { addr, .. }
            | Act::Split { addr, .. }
            | Act::Merge { addr, .. }
            | Act::Entry { addr, .. }
            | Act::ReserveInsert { addr, .. }
            | Act::Reserve { addr, .. } => Some(addr),
            Act::GetMany4 { addrs: [addr, ..] } | Act::GetMany8 { addrs: [addr, ..] } => Some(addr),
            Act::Range { range }
            | Act::InsertRange { range, .. }
            | Act::RemoveRange { range, .. }
            | Act::RangeMut { range, .. }
            | Act::Walk { range: Some(range), .. }
            | Act::Fold { range: Some(range), .. } => match range.0 {
                Bound::Included(a) | Bound::Excluded(a) => Some(a),
                Bound::Unbounded => Some(0),
            },
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// The interpreter.

/// The table under test, holding values of type `W` (a [`ModelValue`]).
pub type Table<G, B, W> = MemTable<W, G, B>;

/// Where a check failed, for the panic message.
struct At<'a> {
    index: usize,
    op: &'a Op,
    act: &'a Act,
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "op #{} {:?}\n  resolved: {:x?}\n ", self.index, self.op, self.act)
    }
}

/// Everything an error must leave as it was: the entries, the counts, the
/// node figures and the change marks (read from a clone's report).
#[derive(Debug, PartialEq)]
struct Snapshot {
    entries: Vec<(Page, u32)>,
    len: usize,
    stats: Stats,
    pending: bool,
    marks: Vec<(u64, u64, Option<u32>)>,
}

impl Snapshot {
    /// A snapshot of `t` if the model expects the op about to run to be
    /// refused (taking one costs a clone of the table).
    fn if_refused<T, G: Geometry, B: Backend, W: ModelValue>(
        t: &Table<G, B, W>,
        want: &Result<T, Refused>,
    ) -> Option<Snapshot> {
        want.is_err().then(|| Snapshot::take(t))
    }

    fn take<G: Geometry, B: Backend, W: ModelValue>(t: &Table<G, B, W>) -> Snapshot {
        let mut copy = t.clone();
        let marks = copy.take_changes().map(|c| (c.start, c.last, c.value.map(|v| v.n()))).collect();
        Snapshot {
            entries: t.iter().map(|(p, v)| (p, v.n())).collect(),
            len: t.len(),
            stats: t.stats(),
            pending: t.has_changes(),
            marks,
        }
    }
}

/// What an error hands back, as the model sees it.
trait HandedBack {
    fn number(&self) -> Option<u32>;
}

impl HandedBack for () {
    fn number(&self) -> Option<u32> {
        None
    }
}

impl<W: ModelValue> HandedBack for W {
    fn number(&self) -> Option<u32> {
        Some(self.n())
    }
}

/// Checks a fallible operation's result against the model's; on an error,
/// that the table is as it was (`before`, taken when the model expected the
/// error) and the value given (`given`, its number) came back. Returns
/// whether the operation failed.
fn expect<T, U, G, B, W>(
    at: &At<'_>,
    t: &Table<G, B, W>,
    before: Option<Snapshot>,
    got: Result<T, Error<U>>,
    want: Result<T, Refused>,
    given: Option<u32>,
) -> bool
where
    T: PartialEq + fmt::Debug,
    U: HandedBack + fmt::Debug,
    G: Geometry,
    B: Backend,
    W: ModelValue,
{
    match (got, want) {
        (Ok(got), Ok(want)) => {
            assert_eq!(got, want, "{at} result differs (left: table, right: model)");
            false
        }
        (Err(e), Err(want)) => {
            assert_eq!(Refused::of(&e), want, "{at} error differs (left: table, right: model)");
            assert_eq!(e.value().number(), given, "{at} error handed back another value");
            drop(e);
            let before = before.expect("a snapshot before an expected error");
            let after = Snapshot::take(t);
            assert!(
                before == after,
                "{at} the error changed the table:\nbefore {before:x?}\nafter  {after:x?}"
            );
            true
        }
        (got, want) => panic!("{at} table gave {got:x?}, model expects {want:x?}"),
    }
}

/// `(address, level, value)` of a table entry, checking its page is
/// well-formed for the geometry.
fn item<W: ModelValue>(at: &At<'_>, geo: &Geo, page: Page, v: &W) -> Item {
    let level = page.level().index() as u8;
    assert!(level <= geo.top(), "{at} page {page:?} above the top level");
    assert_eq!(page.shift(), geo.shift(level), "{at} page {page:?} has the wrong size");
    assert_eq!(page.addr() % page.size(), 0, "{at} page {page:?} is misaligned");
    assert_eq!(page.last(), geo.end(page.addr(), level), "{at} page {page:?} ends wrong");
    (page.addr(), level, v.n())
}

/// A readable account of where two entry lists first differ.
fn diff(got: &[Item], want: &[Item]) -> String {
    diff_named(("table", got), ("model", want))
}

fn diff_named<T: PartialEq + fmt::Debug>(
    (name, got): (&str, &[T]),
    (want_name, want): (&str, &[T]),
) -> String {
    let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
    let show = |items: &[T]| {
        let from = first.saturating_sub(2);
        items[from.min(items.len())..(first + 4).min(items.len())]
            .iter()
            .map(|t| format!("{t:x?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{name} has {} entries, {want_name} {}; first difference at index {first}\n  {name}: .. {}\n  {want_name}: .. {}",
        got.len(),
        want.len(),
        show(got),
        show(want)
    )
}

/// Compares the whole table with the model, and the values alive with the
/// table's.
fn check_table<G: Geometry, B: Backend, W: ModelValue>(at: &At<'_>, t: &Table<G, B, W>, m: &Model) {
    if let Err(e) = t.check_invariants() {
        panic!("{at} invariant broken: {e}");
    }
    assert_eq!(t.len(), m.len(), "{at} len (left: table, right: model)");
    assert_eq!(t.is_empty(), m.is_empty(), "{at} is_empty");
    assert_eq!(t.iter().size_hint(), (m.len(), Some(m.len())), "{at} iter size_hint");
    let mut id_sum = 0u64;
    let got: Vec<Item> = t
        .iter()
        .map(|(p, v)| {
            id_sum = id_sum.wrapping_add(u64::from(v.id()));
            item(at, &m.geo, p, v)
        })
        .collect();
    let want = m.items();
    if got != want {
        panic!("{at} entries differ: {}", diff(&got, &want));
    }
    assert_eq!(bad_drops(), 0, "{at} a value was dropped twice");
    // The values kept for comparison are alive too (at most one per place).
    let kept = t.kept_values();
    let (alive, alive_sum) = live_count();
    assert!(
        alive == got.len() + kept && (kept > 0 || alive_sum == id_sum),
        "{at} values alive ({alive}, id sum {alive_sum}) differ from the table's ({}, {id_sum}, {kept} kept)",
        got.len()
    );
    let stats = t.stats();
    let tables = m.tables();
    for (l, &n) in tables.iter().enumerate() {
        let s = stats.level(l);
        assert_eq!(s.nodes, n, "{at} tables at level {l} (left: table, right: model)");
        assert_eq!(s.capacity, m.capacity[l], "{at} capacity at level {l}");
        if let Some(cap) = m.capacity[l] {
            assert_eq!(s.available, cap - n, "{at} available at level {l}");
        }
    }
    assert_eq!(stats.level(m.geo.top() as usize).nodes, 1, "{at} the root");
}

/// Looks up `addr` and the range around it, on the table and the model.
fn check_near<G: Geometry, B: Backend, W: ModelValue>(at: &At<'_>, t: &Table<G, B, W>, m: &Model, addr: u64) {
    let got = t.get_key_value(addr).map(|(p, v)| item(at, &m.geo, p, v));
    assert_eq!(got, m.get(addr), "{at} get_key_value({addr:#x}) (left: table, right: model)");
    let reach = m.geo.size(1.min(m.geo.top()));
    let range = (Bound::Included(addr.saturating_sub(reach)), Bound::Included(addr.saturating_add(reach)));
    let got: Vec<Item> = t.range(range).map(|(p, v)| item(at, &m.geo, p, v)).collect();
    assert_eq!(got, m.range(range), "{at} range {range:x?} (left: table, right: model)");
    let back: Vec<Item> = t.range(range).rev().map(|(p, v)| item(at, &m.geo, p, v)).collect();
    assert!(back.iter().rev().eq(&got), "{at} range {range:x?} reversed differs from forward: {back:x?}");
}

/// Walks `iter` from the ends `ends` says, at most `limit` steps, turning
/// each item into an [`Item`] with `f`. With `exact` (the entries the
/// iterator starts with), checks the size hint before every step. If the
/// walk ran dry, checks that both ends stay dry.
fn walk_iter<I, T>(
    at: &At<'_>,
    mut iter: I,
    ends: Ends,
    limit: usize,
    exact: Option<usize>,
    mut f: impl FnMut(Page, T) -> Item,
) -> Vec<Step>
where
    I: DoubleEndedIterator<Item = (Page, T)>,
{
    let mut out = Vec::new();
    while out.len() < limit {
        if let Some(n) = exact {
            let left =
                n.checked_sub(out.len()).unwrap_or_else(|| panic!("{at} the walk yielded more than {n}"));
            assert_eq!(iter.size_hint(), (left, Some(left)), "{at} size_hint after {} steps", out.len());
        }
        let back = ends.back(out.len());
        match if back { iter.next_back() } else { iter.next() } {
            Some((p, v)) => out.push((back, f(p, v))),
            None => {
                assert!(iter.next().is_none(), "{at} next after the walk ran dry");
                assert!(iter.next_back().is_none(), "{at} next_back after the walk ran dry");
                break;
            }
        }
    }
    out
}

/// Checks a walk against the model's.
fn check_walk(at: &At<'_>, what: &str, got: &[Step], want: &[Step]) {
    if got != want {
        let first = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
        panic!(
            "{at} {what}: walk differs at step {first} of {} (model: {}):\n  table: {:x?}\n  model: {:x?}",
            got.len(),
            want.len(),
            &got[first.saturating_sub(2)..(first + 3).min(got.len())],
            &want[first.saturating_sub(2)..(first + 3).min(want.len())]
        );
    }
}

/// `get_many` against one model lookup per address.
fn check_get_many<const N: usize, G: Geometry, B: Backend, W: ModelValue>(
    at: &At<'_>,
    t: &Table<G, B, W>,
    m: &Model,
    addrs: &[u64; N],
) {
    let got = t.get_many(addrs).map(|v| v.map(|v| v.n()));
    let want = addrs.map(|a| m.get(a).map(|e| e.2));
    assert_eq!(got, want, "{at} get_many({addrs:x?}) (left: table, right: model)");
}

/// The `Fold` look: a few steps from each end, then the rest through `how`.
fn check_fold<G: Geometry, B: Backend, W: ModelValue>(
    at: &At<'_>,
    t: &Table<G, B, W>,
    m: &Model,
    range: Option<Range>,
    (front, back): (u8, u8),
    how: FoldHow,
) {
    let whole =
        !matches!(how, FoldHow::IterFold | FoldHow::IterForEach | FoldHow::IterCount | FoldHow::IterLast);
    let range = if whole { None } else { range };
    let items = match range {
        Some(r) => m.range(r),
        None => m.items(),
    };
    // The model's middle, after the steps from both ends.
    let lo = usize::from(front).min(items.len());
    let hi = items.len().saturating_sub(usize::from(back)).max(lo);
    let middle = &items[lo..hi];
    let iter = || match range {
        Some(r) => t.range(r),
        None => t.iter(),
    };
    // Takes the steps from both ends; returns what they yielded.
    fn ends<I: DoubleEndedIterator>(it: &mut I, front: u8, back: u8) -> (Vec<I::Item>, Vec<I::Item>) {
        let f = (0..front).map_while(|_| it.next()).collect();
        let b = (0..back).map_while(|_| it.next_back()).collect();
        (f, b)
    }
    let geo = &m.geo;
    let pages: Vec<(u64, u8)> = middle.iter().map(|&(a, l, _)| (a, l)).collect();
    let page = |p: Page| (p.addr(), p.level().index() as u8);
    match how {
        FoldHow::IterFold | FoldHow::IterForEach | FoldHow::IterCount | FoldHow::IterLast => {
            let mut it = iter();
            let (f, b) = ends(&mut it, front, back);
            let f: Vec<Item> = f.into_iter().map(|(p, v)| item(at, geo, p, v)).collect();
            let b: Vec<Item> = b.into_iter().map(|(p, v)| item(at, geo, p, v)).collect();
            assert_eq!(f, items[..lo], "{at} the steps from the front");
            assert!(
                b.iter().eq(items[hi..].iter().rev().take(b.len())),
                "{at} the steps from the back: {b:x?}"
            );
            // The plain loop, on a fresh iterator with the same steps taken.
            let mut plain = iter();
            ends(&mut plain, front, back);
            let mut looped = Vec::new();
            // (`for` steps with `next`: no internal iteration.)
            for (p, v) in plain {
                looped.push(item(at, geo, p, v));
            }
            assert_eq!(looped, middle, "{at} next loop over the rest (left: table, right: model)");
            match how {
                FoldHow::IterFold => {
                    let got = it.fold(Vec::new(), |mut acc, (p, v)| {
                        acc.push(item(at, geo, p, v));
                        acc
                    });
                    assert_eq!(got, middle, "{at} fold over the rest (left: table, right: model)");
                }
                FoldHow::IterForEach => {
                    let mut got = Vec::new();
                    it.for_each(|(p, v)| got.push(item(at, geo, p, v)));
                    assert_eq!(got, middle, "{at} for_each over the rest (left: table, right: model)");
                }
                FoldHow::IterCount => assert_eq!(it.count(), middle.len(), "{at} count of the rest"),
                _ => {
                    let got = it.last().map(|(p, v)| item(at, geo, p, v));
                    assert_eq!(got.as_ref(), middle.last(), "{at} last of the rest");
                }
            }
        }
        FoldHow::KeysFold | FoldHow::KeysForEach => {
            let mut keys = t.keys();
            let (f, b) = ends(&mut keys, front, back);
            assert_eq!(f.len() + b.len(), items.len() - middle.len(), "{at} keys stepped");
            let mut looped = Vec::new();
            let mut plain = t.keys();
            ends(&mut plain, front, back);
            for p in plain {
                looped.push(page(p));
            }
            let got = if how == FoldHow::KeysFold {
                keys.fold(Vec::new(), |mut acc, p| {
                    acc.push(page(p));
                    acc
                })
            } else {
                let mut got = Vec::new();
                keys.for_each(|p| got.push(page(p)));
                got
            };
            assert_eq!(looped, pages, "{at} keys by next (left: table, right: model)");
            assert_eq!(got, pages, "{at} keys by {how:?} (left: table, right: model)");
        }
        FoldHow::ValuesFold | FoldHow::ValuesSum => {
            let mut values = t.values();
            let (f, b) = ends(&mut values, front, back);
            let stepped: Vec<u32> = f.iter().chain(&b).map(|v| v.n()).collect();
            let want: Vec<u32> = items[..lo].iter().chain(items[hi..].iter().rev()).map(|e| e.2).collect();
            assert_eq!(stepped, want, "{at} values stepped from the ends");
            let numbers: Vec<u32> = middle.iter().map(|e| e.2).collect();
            let mut plain = t.values();
            ends(&mut plain, front, back);
            let mut looped = Vec::new();
            for v in plain {
                looped.push(v.n());
            }
            assert_eq!(looped, numbers, "{at} values by next (left: table, right: model)");
            if how == FoldHow::ValuesFold {
                let got = values.fold(Vec::new(), |mut acc, v| {
                    acc.push(v.n());
                    acc
                });
                assert_eq!(got, numbers, "{at} values by fold (left: table, right: model)");
            } else {
                let got: u64 = values.map(|v| u64::from(v.n())).sum();
                assert_eq!(got, numbers.iter().map(|&n| u64::from(n)).sum::<u64>(), "{at} values summed");
            }
        }
    }
}

/// Split and merge through `FnOps`, as [`SplitHow::Numbered`] and
/// [`MergeHow::Fold`] say.
fn numbered<W: ModelValue>(page: Page, v: &W, sub: Page) -> W {
    W::plain(v.n().wrapping_add(((sub.addr() - page.addr()) >> sub.shift()) as u32))
}

fn folded<W: ModelValue>(page: Page, children: Children<'_, '_, W>) -> Option<W> {
    let len = children.len();
    let values: Vec<u32> = children.map(|v| v.n()).collect();
    assert_eq!(values.len(), len, "merge of {page:?}: Children::len() differs from the children given");
    Some(W::plain(fold(values.iter())))
}

fn never<W: ModelValue>(_: Page, _: Children<'_, '_, W>) -> Option<W> {
    None
}

/// Performs `act` on the table and the model and checks what it returned.
fn step<G: Geometry, B: Backend, W: ModelValue>(at: &At<'_>, t: &mut Table<G, B, W>, m: &mut Model) {
    let lvl = Level::new;
    let geo = m.geo.clone();
    let geo = &geo;
    let old = |r: Option<W>| r.map(|v| v.n());
    match *at.act {
        Act::Insert { addr, value } => {
            let want = m.insert_at(addr, 0, value.n);
            let before = Snapshot::if_refused(t, &want);
            let got = t.insert(addr, value.make()).map(old);
            expect(at, t, before, got, want, Some(value.n));
        }
        Act::Fill { .. } if geo.levels() < 2 => {}
        Act::Fill { addr, n, step } => {
            let (shift, slots) = (geo.shifts[0], geo.size(1) >> geo.shifts[0]);
            let base = addr & !(geo.size(1) - 1);
            let first = (addr - base) >> shift;
            // Up to 2 x the fan-out entries or at most 255, so that 8-slot
            // tables are filled whole and 512-slot ones past half.
            let step = u64::from(step | 1);
            for k in 0..u64::from(n).min(2 * slots) {
                let a = base + (((first + k * step) % slots) << shift);
                let value = Fresh { n: (k % 4) as u32, bombs: 0 };
                let want = m.insert_at(a, 0, value.n);
                let before = Snapshot::if_refused(t, &want);
                let got = t.insert(a, value.make()).map(old);
                expect(at, t, before, got, want, Some(value.n));
            }
        }
        Act::InsertAt { addr, level, value } => {
            let want = m.insert_at(addr, level, value.n);
            let before = Snapshot::if_refused(t, &want);
            let got = t.insert_at(addr, lvl(level), value.make()).map(old);
            expect(at, t, before, got, want, Some(value.n));
        }
        Act::Remove { addr } => {
            let want = m.remove(addr);
            let before = Snapshot::if_refused(t, &want);
            let got = t.remove(addr).map(|r| r.map(|v| (addr, 0, v.n())));
            expect(at, t, before, got, want, None);
        }
        Act::RemoveAt { addr, level } => {
            let want = m.remove_at(addr, level);
            let before = Snapshot::if_refused(t, &want);
            let got = t.remove_at(addr, lvl(level)).map(|r| r.map(|v| (addr, level, v.n())));
            expect(at, t, before, got, want, None);
        }
        Act::RemoveCovering { addr } => {
            let want = m.remove_covering(addr);
            let got = t.remove_covering(addr).map(|(p, v)| item(at, geo, p, &v));
            assert_eq!(got, want, "{at} remove_covering");
        }
        Act::Get { addr } => {
            assert_eq!(t.get(addr).map(|v| v.n()), m.get(addr).map(|e| e.2), "{at} get");
            assert_eq!(t.contains(addr), m.get(addr).is_some(), "{at} contains");
        }
        Act::GetKeyValue { addr } => check_near(at, t, m, addr),
        Act::GetMut { addr, add } => {
            let got = t.get_mut(addr).map(|v| v.bump(add));
            assert_eq!(got, m.get_mut(addr, add).map(|e| e.2), "{at} get_mut");
        }
        Act::Range { range } => {
            let got: Vec<Item> = t.range(range).map(|(p, v)| item(at, geo, p, v)).collect();
            let want = m.range(range);
            if got != want {
                panic!("{at} range differs: {}", diff(&got, &want));
            }
        }
        Act::Walk { range, ends, limit } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let f = |p, v| item(at, geo, p, v);
            let (got, items) = match range {
                None => (walk_iter(at, t.iter(), ends, limit, Some(m.len()), f), m.items()),
                Some(r) => (walk_iter(at, t.range(r), ends, limit, None, f), m.range(r)),
            };
            check_walk(at, "iter", &got, &walk(&items, ends, limit));
        }
        Act::Fold { range, front, back, how } => check_fold(at, t, m, range, (front, back), how),
        Act::FirstLast => {
            let got = t.first_key_value().map(|(p, v)| item(at, geo, p, v));
            assert_eq!(got, m.first(), "{at} first_key_value (left: table, right: model)");
            let got = t.last_key_value().map(|(p, v)| item(at, geo, p, v));
            assert_eq!(got, m.last(), "{at} last_key_value (left: table, right: model)");
        }
        Act::GetMany4 { addrs } => check_get_many(at, t, m, &addrs),
        Act::GetMany8 { addrs } => check_get_many(at, t, m, &addrs),
        Act::IntoIter { ends, limit } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let copy = t.clone();
            let n = copy.len();
            let got = walk_iter(at, copy.into_iter(), ends, limit, Some(n), |p, v| item(at, geo, p, &v));
            check_walk(at, "into_iter", &got, &walk(&m.items(), ends, limit));
        }
        Act::Split { addr, level, how } => {
            let want = m.split(addr, level, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.split(addr, lvl(level)),
                SplitHow::Numbered => t.split_with(addr, lvl(level), &mut FnOps::new(numbered, never)),
            };
            expect(at, t, before, got, want, None);
        }
        Act::Merge { addr, level, how } => {
            let want = m.merge(addr, level, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                MergeHow::Equal => t.merge(addr, lvl(level)),
                MergeHow::Fold => t.merge_with(addr, lvl(level), &mut FnOps::new(numbered, folded)),
            };
            expect(at, t, before, got, want, None);
        }
        Act::InsertRange { range, value, how } => {
            let want = m.insert_range(range, value.n, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.insert_range(range, value.make()),
                SplitHow::Numbered => {
                    t.insert_range_with(range, value.make(), &mut FnOps::new(numbered, never))
                }
            };
            expect(at, t, before, got, want, Some(value.n));
        }
        Act::RemoveRange { range, how } => {
            let want = m.remove_range(range, how);
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.remove_range(range),
                SplitHow::Numbered => t.remove_range_with(range, &mut FnOps::new(numbered, never)),
            };
            expect(at, t, before, got, want, None);
        }
        Act::Compact => assert_eq!(t.compact(), m.compact(), "{at} merges (left: table, right: model)"),
        Act::TakeChanges => take_changes(at, t, m),
        Act::Entry { addr, level, action, value } => {
            let want = m.entry(addr, level, action, value.n);
            let before = Snapshot::if_refused(t, &want);
            let page = |p: Page| (p.addr(), p.level().index() as u8);
            let got = match t.entry_at(addr, lvl(level)) {
                Err(e) => Err(e),
                Ok(Entry::Occupied(mut o)) => {
                    assert_eq!(page(o.page()), (addr, level), "{at} occupied entry's page");
                    Ok(match action {
                        EntryAction::Bump => {
                            o.get_mut().bump(1);
                            EntryOutcome::Bumped(o.get().n())
                        }
                        EntryAction::Replace => EntryOutcome::Replaced(o.insert(value.make()).n()),
                        EntryAction::Remove => EntryOutcome::Removed(o.remove().n()),
                    })
                }
                Ok(Entry::Vacant(v)) => {
                    assert_eq!(page(v.page()), (addr, level), "{at} vacant entry's page");
                    match action {
                        EntryAction::Remove => Ok(EntryOutcome::LeftVacant),
                        _ => match v.try_insert(value.make()) {
                            Ok(v) => Ok(EntryOutcome::Inserted(v.n())),
                            Err(e) => {
                                assert_eq!(
                                    e.value().n(),
                                    value.n,
                                    "{at} try_insert handed back another value"
                                );
                                Err(e.without_value())
                            }
                        },
                    }
                }
            };
            expect(at, t, before, got, want, None);
        }
        Act::Retain { keep, bump } => {
            let mut seen = Vec::new();
            t.retain(|p, v| {
                seen.push(item(at, geo, p, v));
                let kept = keep.keeps(geo, p.addr(), p.level().index() as u8, v.n());
                if kept && bump {
                    v.bump(1);
                }
                kept
            });
            assert_eq!(seen, m.retain(keep, bump), "{at} entries retain visited");
        }
        Act::Clear => {
            t.clear();
            m.clear();
        }
        Act::IterMut { limit, add, ends } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let iter = t.iter_mut();
            assert_eq!(iter.len(), m.len(), "{at} iter_mut len");
            let got = walk_iter(at, iter, ends, limit, Some(m.len()), |p, v: &mut W| {
                let e = item(at, geo, p, v);
                v.bump(add);
                e
            });
            check_walk(at, "iter_mut", &got, &m.iter_mut(ends, limit, add));
        }
        Act::RangeMut { range, limit, add, ends } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let got = walk_iter(at, t.range_mut(range), ends, limit, None, |p, v: &mut W| {
                let e = item(at, geo, p, v);
                v.bump(add);
                e
            });
            check_walk(at, "range_mut", &got, &m.range_mut(range, ends, limit, add));
        }
        Act::CloneTable => {
            let copy = t.clone();
            assert!(copy == *t, "{at} the clone differs");
            // A clone has no reservations.
            m.unreserve();
            drop(std::mem::replace(t, copy));
        }
        Act::PopFirst => {
            let got = t.pop_first().map(|(p, v)| item(at, geo, p, &v));
            assert_eq!(got, m.pop_first(), "{at} pop_first");
        }
        Act::PopLast => {
            let got = t.pop_last().map(|(p, v)| item(at, geo, p, &v));
            assert_eq!(got, m.pop_last(), "{at} pop_last");
        }
        Act::ReserveInsert { addr, level, value } => {
            let want = m.reserve_insert(addr, level);
            let before = Snapshot::if_refused(t, &want);
            let got = t.reserve_insert(addr, lvl(level));
            if !expect(at, t, before, got, want, None) {
                let want = m.insert_at(addr, level, value.n);
                assert!(want.is_ok(), "{at} model: a reserved insert failed: {want:?}");
                let got = t.insert_at(addr, lvl(level), value.make()).map(old);
                expect(at, t, None, got, want, Some(value.n));
            }
        }
        Act::Reserve { addr, level } => {
            let want = m.reserve_insert(addr, level);
            let before = Snapshot::if_refused(t, &want);
            let got = t.reserve_insert(addr, lvl(level));
            expect(at, t, before, got, want, None);
        }
        Act::ReserveTables { level, count } => {
            let want = m.reserve_tables(level, usize::from(count));
            let before = Snapshot::if_refused(t, &want);
            let got = t.reserve_tables(lvl(level), usize::from(count));
            expect(at, t, before, got, want, None);
        }
        Act::Unreserve => {
            t.unreserve();
            m.unreserve();
        }
        Act::Api(ref api) => api_step(at, t, m, api),
        Act::ShrinkToFit => {
            let before = t.stats();
            t.shrink_to_fit();
            let after = t.stats();
            for (l, (b, a)) in before.levels().iter().zip(after.levels()).enumerate() {
                assert_eq!(a.nodes, b.nodes, "{at} shrink_to_fit changed the tables at level {l}");
                assert!(a.bytes <= b.bytes, "{at} shrink_to_fit grew level {l}: {b:?} -> {a:?}");
            }
        }
    }
}

/// Takes the change report, checks its form, applies it to the shadow and
/// checks the shadow now equals the table.
fn take_changes<G: Geometry, B: Backend, W: ModelValue>(at: &At<'_>, t: &mut Table<G, B, W>, m: &mut Model) {
    let pending = t.has_changes();
    // An abandoned report leaves everything: read it twice first.
    let first: Vec<(u64, u64, Option<u32>)> =
        t.changes().map(|c| (c.start, c.last, c.value.map(|v| v.n()))).collect();
    let changes: Vec<(u64, u64, Option<u32>)> =
        t.take_changes().map(|c| (c.start, c.last, c.value.map(|v| v.n()))).collect();
    assert_eq!(first, changes, "{at} an abandoned report changed the next one");
    if t.tracks_values() {
        assert!(pending || changes.is_empty(), "{at} has_changes() false, yet the report is {changes:x?}");
    } else {
        assert_eq!(pending, !changes.is_empty(), "{at} has_changes() disagrees with the report {changes:x?}");
    }
    assert!(!t.has_changes(), "{at} marks left after take_changes");
    for w in changes.windows(2) {
        assert!(w[0].1 < w[1].0, "{at} changes out of order or overlapping: {w:x?}");
        if w[0].1 + 1 == w[1].0 && w[0].2.is_none() {
            assert!(w[1].2.is_some(), "{at} neighbouring empty regions not joined: {w:x?}");
        }
        if t.tracks_values() && w[0].1 + 1 == w[1].0 {
            assert!(w[0].2 != w[1].2, "{at} neighbouring regions of equal value not joined: {w:x?}");
        }
    }
    for &(start, last, value) in &changes {
        assert!(
            start <= last && last <= m.geo.last_addr(),
            "{at} change region {start:x}..={last:x} out of reach"
        );
        m.apply_change(start, last, value);
    }
    let reported = joined(m.reported.iter().map(|(&s, &(l, v))| (s, l, v)));
    let table = m.coverage();
    if reported != table {
        panic!(
            "{at} the change reports do not reproduce the table: {}\n  this report: {changes:x?}",
            diff_named(("reports", &reported), ("table", &table))
        );
    }
    assert_eq!(t.take_changes().count(), 0, "{at} a second report is not empty");
}

/// After a planned panic ([`Bomb`]) in the op at `at`: checks what must hold
/// whatever part of the op was done, then re-syncs the model from the table.
///
/// The model cannot say how far a panicking op got (how many clones a range
/// set made before one panicked, which drops ran), so it does not predict
/// the state; it checks that
/// - no value was dropped twice, and the table is valid
///   (`check_invariants`);
/// - `len()` is the number of entries iteration yields (by `range(..)`,
///   which does not trust `len`, and by `iter`);
/// - exactly the values the table holds are alive: none leaked, none
///   dropped while still reachable, none reachable twice;
///
/// then takes the table's entries as the model's, drops the reservations on
/// both sides (the op may have drawn some), and checks that the change
/// report still rebuilds the table from the shadow: every change the op
/// made before it panicked was marked. (A report may also name a region
/// where nothing changed, as now emptied: consistent with the table, so the
/// shadow check lets it pass; see
/// `regressions::a_panicking_range_set_reports_nothing`.)
fn recover<G: Geometry, B: Backend, W: ModelValue>(at: &At<'_>, t: &mut Table<G, B, W>, m: &mut Model) {
    assert_eq!(bad_drops(), 0, "{at} after a planned panic: a value was dropped twice");
    if let Err(e) = t.check_invariants() {
        panic!("{at} after a planned panic: invariant broken: {e}");
    }
    let mut ids = Vec::new();
    let entries: Vec<Item> = t
        .range(..)
        .map(|(p, v)| {
            ids.push(v.id());
            item(at, &m.geo, p, v)
        })
        .collect();
    assert_eq!(t.len(), entries.len(), "{at} after a planned panic: len (left) and entries range(..) yields");
    assert_eq!(t.iter().count(), entries.len(), "{at} after a planned panic: iter().count() and range(..)");
    let reachable: BTreeSet<u32> = ids.iter().copied().collect();
    assert_eq!(reachable.len(), ids.len(), "{at} after a planned panic: a value reachable twice");
    m.entries = entries.into_iter().map(|(a, l, v)| (a, (l, v))).collect();
    t.unreserve();
    m.unreserve();
    // The report commits, dropping the values kept for comparison: then
    // exactly the values reachable are alive.
    take_changes(at, t, m);
    let live = live_ids();
    if live != reachable {
        let leaked: Vec<_> = live.difference(&reachable).collect();
        let dropped: Vec<_> = reachable.difference(&live).collect();
        panic!(
            "{at} after a planned panic: values leaked (ids {leaked:?}) or dropped while reachable ({dropped:?})"
        );
    }
}

/// Runs `ops` on `table` and `model` (which must describe it), checking the
/// table against the model after every op. Panics with the op's index, the op
/// and what differs. A planned panic ([`Bomb`]) is caught, checked and
/// recovered from ([`recover`]); any other panic goes on.
pub fn run<G: Geometry, B: Backend, W: ModelValue>(
    table: &mut Table<G, B, W>,
    model: &mut Model,
    ops: &[Op],
) {
    for (index, op) in ops.iter().enumerate() {
        let act = op.resolve(model);
        if model.over_budget(&act) {
            continue;
        }
        let at = At { index, op, act: &act };
        match catch_unwind(AssertUnwindSafe(|| step(&at, table, model))) {
            Ok(()) => {}
            Err(payload) if payload.is::<Bomb>() => {
                REGISTRY.with_borrow_mut(|r| r.caught += 1);
                recover(&at, table, model);
            }
            Err(payload) => resume_unwind(payload),
        }
        check_table(&at, table, model);
        if let Some(addr) = act.addr() {
            check_near(&at, table, model, addr);
        }
    }
}

/// Disarms the bombs when a run ends, however it ends.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        arm(false);
    }
}

/// Runs `ops` on a fresh table with `backend`, then checks the final table
/// once more by cloning it, draining it by value from both ends and
/// clearing it. Values carry bombs as the ops say, but none fires.
pub fn check_ops<G: Geometry, B: Backend, W: ModelValue>(backend: B, ops: &[Op]) {
    check_ops_with::<G, B, W>(backend, ops, false);
}

/// As [`check_ops`], with the bombs armed: a value's planned panic in
/// `clone` or `drop` is caught and checked after each op, and once more in
/// the final `clear` and drop. Returns the number of planned panics caught.
pub fn check_ops_armed<G: Geometry, B: Backend, W: ModelValue>(backend: B, ops: &[Op]) -> usize {
    quiet_bombs();
    check_ops_with::<G, B, W>(backend, ops, true)
}

fn check_ops_with<G: Geometry, B: Backend, W: ModelValue>(backend: B, ops: &[Op], armed: bool) -> usize {
    reset();
    let _disarm = Disarm;
    arm(armed);
    let mut table: Table<G, B, W> = MemTable::with_backend(backend);
    let mut model = Model::new(&table);
    // Half the runs compare values in their change reports.
    if ops.len() % 2 == 1 {
        table.track_values();
    }
    run(&mut table, &mut model, ops);

    // The final checks predict exactly: no bomb goes off.
    arm(false);
    let items = model.items();
    let copy = table.clone();
    assert!(copy == table, "a clone differs from its table");
    copy.check_invariants().expect("a clone's invariants");
    let drained: Vec<Item> =
        copy.into_iter().map(|(p, v)| (p.addr(), p.level().index() as u8, v.n())).collect();
    assert_eq!(drained, items, "into_iter (left: table, right: model)");
    let drained: Vec<Item> =
        table.clone().into_iter().rev().map(|(p, v)| (p.addr(), p.level().index() as u8, v.n())).collect();
    assert!(drained.iter().rev().eq(&items), "into_iter().rev() (left: table, right: model): {drained:x?}");
    assert_eq!(live_count().0, items.len() + table.kept_values(), "values alive after the drained clones");

    // Clearing and dropping with the bombs armed again: a planned panic in a
    // drop still leaves the table empty and every value dropped once.
    arm(armed);
    match catch_unwind(AssertUnwindSafe(|| table.clear())) {
        Ok(()) => {}
        Err(payload) if payload.is::<Bomb>() => REGISTRY.with_borrow_mut(|r| r.caught += 1),
        Err(payload) => resume_unwind(payload),
    }
    table.check_invariants().expect("invariants after clear");
    assert!(table.is_empty() && table.iter().next().is_none(), "clear left entries");
    assert_eq!(table.stats().nodes(), 1, "clear left tables");
    assert_eq!(live_count().0, table.kept_values(), "values alive after clear");
    drop(table);
    assert_eq!(bad_drops(), 0, "a value was dropped twice");
    REGISTRY.with_borrow(|r| r.caught)
}

// ---------------------------------------------------------------------------
// The std-map surface (issue 12): cursors, `extract_if`, `drain_range`,
// `split_off`, `get_disjoint_mut`, `into_keys`, `into_values`. Kept apart
// from the ops above: one `Op::Api`, one `Act::Api`, their model and
// their step.

/// Where a cursor starts.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorStart {
    /// `cursor_front`.
    Front,
    /// `cursor_back`.
    Back,
    /// `cursor_at(addr)`.
    At(Addr),
}

/// One move of a cursor.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorMove {
    Next,
    Prev,
    PeekNext,
    PeekPrev,
    /// `remove_next` (a peek on a read-only cursor).
    RemoveNext,
    /// `remove_prev` (a peek on a read-only cursor).
    RemovePrev,
    Seek(Addr),
}

/// The std-map ops, with symbolic arguments.
#[derive(Arbitrary, Clone, Debug, PartialEq, Eq)]
pub enum Api {
    /// A cursor (`mutable`: a `CursorMut`, adding `add` to every value it
    /// hands out) moved as `moves` say.
    Cursor { start: CursorStart, mutable: bool, moves: [CursorMove; 6], add: Val },
    /// `extract_if(range, ..)` taking what `keep` does not keep (adding
    /// one to the entries kept if `bump`), at most `limit` entries, then
    /// dropped.
    ExtractIf { range: RangeArg, keep: Keep, bump: bool, limit: Option<u8> },
    /// `drain_range(range)` (or `_with`), `limit` entries taken, the rest
    /// dropped with the iterator.
    DrainRange { range: RangeArg, how: SplitHow, limit: Option<u8> },
    /// `split_off(addr)`; carries on with the high part if `keep_high`.
    SplitOff { addr: Addr, keep_high: bool },
    /// `get_disjoint_mut(addrs)`, adding `add` to each value.
    GetDisjointMut { addrs: [Addr; 3], add: Val },
    /// `into_keys` and `into_values` of clones.
    IntoKeysValues,
}

/// A cursor's start, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Front,
    Back,
    At(u64),
}

/// A cursor move, resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    Next,
    Prev,
    PeekNext,
    PeekPrev,
    RemoveNext,
    RemovePrev,
    Seek(u64),
}

/// [`Api`] with concrete arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiAct {
    Cursor { start: Start, mutable: bool, moves: [Move; 6], add: u32 },
    ExtractIf { range: Range, keep: Keep, bump: bool, limit: Option<u8> },
    DrainRange { range: Range, how: SplitHow, limit: Option<u8> },
    SplitOff { addr: u64, keep_high: bool },
    GetDisjointMut { addrs: [u64; 3], add: u32 },
    IntoKeysValues,
}

impl Api {
    pub fn resolve(&self, m: &Model) -> ApiAct {
        let a = |addr: &Addr| addr.resolve(m, 0);
        match self {
            Api::Cursor { start, mutable, moves, add } => ApiAct::Cursor {
                start: match start {
                    CursorStart::Front => Start::Front,
                    CursorStart::Back => Start::Back,
                    CursorStart::At(addr) => Start::At(a(addr)),
                },
                mutable: *mutable,
                moves: moves.map(|mv| match mv {
                    CursorMove::Next => Move::Next,
                    CursorMove::Prev => Move::Prev,
                    CursorMove::PeekNext => Move::PeekNext,
                    CursorMove::PeekPrev => Move::PeekPrev,
                    CursorMove::RemoveNext => Move::RemoveNext,
                    CursorMove::RemovePrev => Move::RemovePrev,
                    CursorMove::Seek(addr) => Move::Seek(a(&addr)),
                }),
                add: add.get(),
            },
            Api::ExtractIf { range, keep, bump, limit } => {
                ApiAct::ExtractIf { range: range.resolve(m), keep: *keep, bump: *bump, limit: *limit }
            }
            Api::DrainRange { range, how, limit } => {
                ApiAct::DrainRange { range: range.resolve(m), how: *how, limit: *limit }
            }
            Api::SplitOff { addr, keep_high } => ApiAct::SplitOff { addr: a(addr), keep_high: *keep_high },
            Api::GetDisjointMut { addrs, add } => {
                ApiAct::GetDisjointMut { addrs: addrs.each_ref().map(a), add: add.get() }
            }
            Api::IntoKeysValues => ApiAct::IntoKeysValues,
        }
    }
}

/// What one cursor move yielded (the entry as it was) and where the
/// cursor is after it.
pub type Moved = (Option<Item>, Option<u64>);

impl Model {
    /// The gap of `cursor_at(addr)`: before the entry covering `addr`, or
    /// at `addr`; past everything out of reach.
    fn gap_at(&self, addr: u64) -> Option<u64> {
        self.geo.in_reach(addr).then(|| self.get(addr).map_or(addr, |e| e.0))
    }

    /// The gap just past entry `e`.
    fn past(&self, e: Item) -> Option<u64> {
        self.geo.end(e.0, e.1).checked_add(1).filter(|&a| self.geo.in_reach(a))
    }

    /// A cursor from `start`, moved by `moves`.
    pub fn cursor(&mut self, start: Start, mutable: bool, moves: &[Move], add: u32) -> Vec<Moved> {
        let mut pos = match start {
            Start::Front => Some(0),
            Start::Back => None,
            Start::At(a) => self.gap_at(a),
        };
        let mut out = Vec::new();
        for &mv in moves {
            // (after the gap, moves, removes)
            let (after, step, remove) = match mv {
                Move::Next => (true, true, false),
                Move::Prev => (false, true, false),
                Move::PeekNext => (true, false, false),
                Move::PeekPrev => (false, false, false),
                Move::RemoveNext => (true, false, mutable),
                Move::RemovePrev => (false, false, mutable),
                Move::Seek(a) => {
                    pos = self.gap_at(a);
                    out.push((None, pos));
                    continue;
                }
            };
            let e = if after {
                pos.and_then(|a| self.entries.range(a..).next())
            } else {
                match pos {
                    None => self.entries.iter().next_back(),
                    Some(a) => self.entries.range(..a).next_back(),
                }
            }
            .map(|(&a, &(l, v))| (a, l, v));
            if let Some(e) = e {
                if remove {
                    self.entries.remove(&e.0);
                } else {
                    if mutable {
                        self.entries.insert(e.0, (e.1, e.2.wrapping_add(add)));
                    }
                    if step {
                        pos = if after { self.past(e) } else { Some(e.0) };
                    }
                }
            }
            out.push((e, pos));
        }
        out
    }

    /// `extract_if`: the entries visited (as they were) and those taken.
    pub fn extract_if(
        &mut self,
        range: Range,
        keep: Keep,
        bump: bool,
        limit: usize,
    ) -> (Vec<Item>, Vec<Item>) {
        let (mut visited, mut taken) = (Vec::new(), Vec::new());
        for (a, l, v) in self.range(range) {
            if taken.len() == limit {
                break;
            }
            visited.push((a, l, v));
            if !keep.keeps(&self.geo, a, l, v) {
                self.entries.remove(&a);
                taken.push((a, l, v));
            } else if bump {
                self.entries.insert(a, (l, v.wrapping_add(1)));
            }
        }
        (visited, taken)
    }

    /// `drain_range`: as `remove_range`, returning what it removed.
    pub fn drain_range(&mut self, range: Range, how: SplitHow) -> Result<Vec<Item>, Refused> {
        let (lo, last) = self.check_range(range)?;
        let mut next = self.entries.clone();
        for edge in [lo, last] {
            while let Some((start, level, _)) = covering(&self.geo, &next, edge) {
                if start >= lo && self.geo.end(start, level) <= last {
                    break;
                }
                let below = level.checked_sub(1).expect("a base page never straddles a base-aligned range");
                if !self.geo.holds(below) {
                    return Err(Refused::new(ErrorKind::NoEntriesAtLevel, lo, below));
                }
                split_entry(&self.geo, &mut next, start, level, how);
            }
        }
        let removed: Vec<Item> = next.range(lo..=last).map(|(&a, &(l, v))| (a, l, v)).collect();
        for e in &removed {
            next.remove(&e.0);
        }
        self.commit(next, lo)?;
        Ok(removed)
    }

    /// `split_off(addr)`: keeps the entries below `addr`, returns the rest.
    pub fn split_off(&mut self, addr: u64) -> Result<Entries, Refused> {
        self.check_place(addr, 0)?;
        if let Some((start, level, _)) = self.get(addr) {
            if start < addr {
                return Err(Refused::new(ErrorKind::ConflictLarger, start, level));
            }
        }
        let high: Entries = self.entries.range(addr..).map(|(&a, &e)| (a, e)).collect();
        let need: Vec<usize> = self.tables_of(&high).iter().map(Vec::len).collect();
        for l in (0..self.geo.top()).rev() {
            if let Some(cap) = self.capacity[l as usize] {
                if need[l as usize] > cap {
                    return Err(Refused::new(ErrorKind::OutOfNodes, addr, l));
                }
            }
        }
        self.entries.retain(|&a, _| a < addr);
        Ok(high)
    }

    /// `get_disjoint_mut(addrs)`, adding `add`: the values as they were.
    pub fn get_disjoint_mut(&mut self, addrs: &[u64], add: u32) -> Option<Vec<u32>> {
        let found: Vec<Item> = addrs.iter().map(|&a| self.get(a)).collect::<Option<_>>()?;
        for (i, e) in found.iter().enumerate() {
            if found[..i].iter().any(|f| f.0 == e.0) {
                return None;
            }
        }
        for e in &found {
            self.entries.insert(e.0, (e.1, e.2.wrapping_add(add)));
        }
        Some(found.iter().map(|e| e.2).collect())
    }
}

/// The first `limit` entries of a drain, as items (the rest dropped with
/// it).
fn drained<W: ModelValue, I: Iterator<Item = (Page, W)>>(
    at: &At<'_>,
    geo: &Geo,
    it: I,
    limit: usize,
) -> Vec<Item> {
    it.take(limit).map(|(p, v)| item(at, geo, p, &v)).collect()
}

/// Performs an [`ApiAct`] on the table and the model.
fn api_step<G: Geometry, B: Backend, W: ModelValue>(
    at: &At<'_>,
    t: &mut Table<G, B, W>,
    m: &mut Model,
    act: &ApiAct,
) {
    let geo = m.geo.clone();
    let geo = &geo;
    match *act {
        ApiAct::Cursor { start, mutable, moves, add } => {
            let mut got: Vec<Moved> = Vec::new();
            if mutable {
                let mut c = match start {
                    Start::Front => t.cursor_front_mut(),
                    Start::Back => t.cursor_back_mut(),
                    Start::At(a) => t.cursor_at_mut(a),
                };
                let bump = |(p, v): (Page, &mut W)| {
                    let e = item(at, geo, p, v);
                    v.bump(add);
                    e
                };
                for mv in moves {
                    let r = match mv {
                        Move::Next => c.next().map(bump),
                        Move::Prev => c.prev().map(bump),
                        Move::PeekNext => c.peek_next().map(bump),
                        Move::PeekPrev => c.peek_prev().map(bump),
                        Move::RemoveNext => c.remove_next().map(|(p, v)| item(at, geo, p, &v)),
                        Move::RemovePrev => c.remove_prev().map(|(p, v)| item(at, geo, p, &v)),
                        Move::Seek(a) => {
                            c.seek(a);
                            None
                        }
                    };
                    got.push((r, c.position()));
                }
            } else {
                let mut c = match start {
                    Start::Front => t.cursor_front(),
                    Start::Back => t.cursor_back(),
                    Start::At(a) => t.cursor_at(a),
                };
                let seen = |(p, v): (Page, &W)| item(at, geo, p, v);
                for mv in moves {
                    let r = match mv {
                        Move::Next => c.next().map(seen),
                        Move::Prev => c.prev().map(seen),
                        Move::PeekNext | Move::RemoveNext => c.peek_next().map(seen),
                        Move::PeekPrev | Move::RemovePrev => c.peek_prev().map(seen),
                        Move::Seek(a) => {
                            c.seek(a);
                            None
                        }
                    };
                    got.push((r, c.position()));
                }
            }
            let want = m.cursor(start, mutable, &moves, add);
            assert_eq!(got, want, "{at} cursor moves (left: table, right: model)");
        }
        ApiAct::ExtractIf { range, keep, bump, limit } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let mut seen = Vec::new();
            let taken: Vec<Item> = t
                .extract_if(range, |p, v| {
                    seen.push(item(at, geo, p, v));
                    let kept = keep.keeps(geo, p.addr(), p.level().index() as u8, v.n());
                    if kept && bump {
                        v.bump(1);
                    }
                    !kept
                })
                .take(limit)
                .map(|(p, v)| item(at, geo, p, &v))
                .collect();
            let (want_seen, want_taken) = m.extract_if(range, keep, bump, limit);
            assert_eq!(seen, want_seen, "{at} entries extract_if visited (left: table, right: model)");
            assert_eq!(taken, want_taken, "{at} entries extract_if took (left: table, right: model)");
        }
        ApiAct::DrainRange { range, how, limit } => {
            let limit = limit.map_or(usize::MAX, usize::from);
            let want = m.drain_range(range, how).map(|r| r.into_iter().take(limit).collect::<Vec<_>>());
            let before = Snapshot::if_refused(t, &want);
            let got = match how {
                SplitHow::Clone => t.drain_range(range).map(|d| drained(at, geo, d, limit)),
                SplitHow::Numbered => t
                    .drain_range_with(range, &mut FnOps::new(numbered, never))
                    .map(|d| drained(at, geo, d, limit)),
            };
            expect(at, t, before, got, want, None);
        }
        ApiAct::SplitOff { addr, keep_high } => {
            let want = m.split_off(addr);
            let before = Snapshot::if_refused(t, &want);
            match t.split_off(addr) {
                Err(e) => {
                    expect(at, t, before, Err::<(), _>(e), want.map(drop), None);
                }
                Ok(mut high) => {
                    let want: Vec<Item> = match want {
                        Ok(w) => w.into_iter().map(|(a, (l, v))| (a, l, v)).collect(),
                        Err(e) => panic!("{at} split_off succeeded, model expects {e:?}"),
                    };
                    if let Err(e) = high.check_invariants() {
                        panic!("{at} split_off: the new table's invariant broken: {e}");
                    }
                    let got: Vec<Item> = high.iter().map(|(p, v)| item(at, geo, p, v)).collect();
                    if got != want {
                        panic!("{at} split_off: the new table differs: {}", diff(&got, &want));
                    }
                    assert_eq!(high.len(), want.len(), "{at} split_off: the new table's len");
                    assert_eq!(high.tracks_values(), t.tracks_values(), "{at} split_off: value tracking");
                    // Its report rebuilds it from nothing.
                    let mut shadow = Coverage::new();
                    for c in high.take_changes() {
                        cover(&mut shadow, c.start, c.last, c.value.map(|v| v.n()));
                    }
                    let reported = joined(shadow.iter().map(|(&s, &(l, v))| (s, l, v)));
                    let table = joined(want.iter().map(|&(a, l, v)| (a, geo.end(a, l), v)));
                    if reported != table {
                        panic!(
                            "{at} split_off: the new table's report does not rebuild it: {}",
                            diff_named(("report", &reported), ("table", &table))
                        );
                    }
                    if keep_high {
                        let low = std::mem::replace(t, high);
                        m.entries = want.iter().map(|&(a, l, v)| (a, (l, v))).collect();
                        m.reported = shadow;
                        m.unreserve();
                        drop(low);
                    } else {
                        drop(high);
                    }
                }
            }
        }
        ApiAct::GetDisjointMut { addrs, add } => {
            let got =
                t.get_disjoint_mut(addrs).map(|vs| vs.into_iter().map(|v| v.bump(add)).collect::<Vec<u32>>());
            assert_eq!(got, m.get_disjoint_mut(&addrs, add), "{at} get_disjoint_mut({addrs:x?})");
        }
        ApiAct::IntoKeysValues => {
            let items = m.items();
            let keys: Vec<(u64, u8)> =
                t.clone().into_keys().map(|p| (p.addr(), p.level().index() as u8)).collect();
            let want: Vec<(u64, u8)> = items.iter().map(|&(a, l, _)| (a, l)).collect();
            assert_eq!(keys, want, "{at} into_keys (left: table, right: model)");
            let values: Vec<u32> = t.clone().into_values().rev().map(|v| v.n()).collect();
            let want: Vec<u32> = items.iter().rev().map(|e| e.2).collect();
            assert_eq!(values, want, "{at} into_values().rev() (left: table, right: model)");
        }
    }
}
