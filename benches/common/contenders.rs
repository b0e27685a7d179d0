//! The contenders: every implementation behind one small trait, [`Impl`],
//! and [`Run`], its object-safe face that drives whole loops.
//!
//! [`contenders`] is every implementation (the benchmarks run them all);
//! [`report_contenders`] is the comparison report's list.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::num::NonZeroU64;
use std::ops::Range;

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::{Level, MemTable, X86_4Level};
use rustc_hash::FxBuildHasher;

use super::plain_radix::PlainRadix;
use super::radix::RuntimeRadix;
use super::workload::{ADDRESS_BITS, Entry, Hint, PAGE, Workload, page_size};

/// Lookups per batch in the batched rows: `get_many::<BATCH>` for
/// `mem-table`, a plain loop of `get` over the batch for the others.
pub const BATCH: usize = 8;

/// What a benchmark needs of an implementation: a map from pages (of any
/// level) to `u64`, looked up by any address inside an entry.
pub trait Impl: Clone + 'static {
    /// The name in reports and benchmark ids.
    const NAME: &'static str;
    /// Whether this is one of `mem-table`'s backends.
    const IS_MEM_TABLE: bool = false;

    /// Whether the implementation can hold the workload at all.
    fn supports(_: &Workload) -> bool {
        true
    }
    /// An empty map, sized by `hint` where the implementation must be.
    fn new(hint: &Hint) -> Self;
    /// Inserts an entry of `level` at `addr`, returning the value replaced.
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64>;
    /// The value of the entry covering `addr`.
    fn get(&self, addr: u64) -> Option<u64>;
    /// Removes the entry covering `addr`.
    fn remove(&mut self, addr: u64) -> Option<u64>;
    /// Every entry as `(address, value)`; in ascending order where the
    /// implementation is ordered. Internal iteration (`for_each`), which an
    /// iterator may run faster than a chain of `next` calls.
    fn for_each(&self, f: impl FnMut(u64, u64));

    /// The values covering each of `addrs` (0 where none), summed. A plain
    /// loop of [`get`](Impl::get) unless the implementation has a batched
    /// lookup.
    #[inline]
    fn get_batch(&self, addrs: &[u64; BATCH]) -> u64 {
        let mut sum = 0u64;
        for &a in addrs {
            sum = sum.wrapping_add(self.get(a).unwrap_or(0));
        }
        sum
    }

    /// A plain `for` loop over `&table` (external iteration, one `next` at a
    /// time): the wrapping sum of `address ^ value`. `None` where the
    /// implementation has no such iterator.
    fn sum_for(&self) -> Option<u64> {
        None
    }

    /// The same over the table's reverse iterator (`iter().rev()`), where
    /// it has one.
    fn sum_rev(&self) -> Option<u64> {
        None
    }

    /// The same, consuming the table with `into_iter`, where it can.
    fn sum_into(self) -> Option<u64> {
        None
    }

    /// The entries overlapping `range`. By default, one lookup per base
    /// page (what an unordered map has to do); exact for base pages only.
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        for addr in range.step_by(PAGE as usize) {
            if let Some(v) = self.get(addr) {
                f(addr, v);
            }
        }
    }

    /// Replaces the entry of `level` at `addr` by the full table of entries
    /// one level down, each with its value. By default: remove, then insert
    /// every sub-entry.
    fn split(&mut self, addr: u64, level: u8) {
        let v = self.remove(addr).expect("an entry to split");
        let sub = page_size(level - 1);
        for i in 0..512 {
            self.insert_at(addr + i * sub, level - 1, v);
        }
    }

    /// Replaces the 512 equal entries one level below `(addr, level)` by one
    /// entry of `level`. By default: check each, remove each, insert.
    fn merge(&mut self, addr: u64, level: u8) {
        let sub = page_size(level - 1);
        let v = self.get(addr).expect("entries to merge");
        assert!((1..512).all(|i| self.get(addr + i * sub) == Some(v)), "entries differ");
        for i in 0..512 {
            self.remove(addr + i * sub);
        }
        self.insert_at(addr, level, v);
    }
}

// ---------------------------------------------------------------- mem-table

/// `mem-table` on the x86-64 geometry with backend `B`, holding the
/// workloads' `u64` values as `V`.
pub type Table<B, V = u64> = MemTable<V, X86_4Level, B>;

/// How a table stores a workload's `u64` value.
pub trait Stored: Copy + PartialEq + 'static {
    /// Whether the type has a niche: then a bottom table's lookups read
    /// presence from the value's own cache line (see `src/raw/node.rs`).
    const NICHE: bool;
    fn put(v: u64) -> Self;
    fn get(self) -> u64;
}

impl Stored for u64 {
    const NICHE: bool = false;
    #[inline(always)]
    fn put(v: u64) -> Self {
        v
    }
    #[inline(always)]
    fn get(self) -> u64 {
        self
    }
}

/// The value's complement, which is never zero: no workload stores
/// `u64::MAX` (the flat array's absent marker).
impl Stored for NonZeroU64 {
    const NICHE: bool = true;
    #[inline(always)]
    fn put(v: u64) -> Self {
        NonZeroU64::new(!v).expect("workload values are never u64::MAX")
    }
    #[inline(always)]
    fn get(self) -> u64 {
        !NonZeroU64::get(self)
    }
}

/// A backend as the benchmarks make it.
pub trait MakeBackend: Backend {
    const LABEL: &'static str;
    /// The label with `NonZeroU64` values.
    const LABEL_NICHE: &'static str;
    fn make(hint: &Hint) -> Self;
}

impl MakeBackend for Heap {
    const LABEL: &'static str = "mem-table/heap";
    const LABEL_NICHE: &'static str = "mem-table/heap NonZeroU64";
    fn make(_: &Hint) -> Self {
        Heap
    }
}

impl MakeBackend for Arena {
    const LABEL: &'static str = "mem-table/arena";
    const LABEL_NICHE: &'static str = "mem-table/arena NonZeroU64";
    fn make(_: &Hint) -> Self {
        Arena
    }
}

impl MakeBackend for Pool {
    const LABEL: &'static str = "mem-table/pool";
    const LABEL_NICHE: &'static str = "mem-table/pool NonZeroU64";
    /// Exactly as many tables per level as the workload needs.
    fn make(hint: &Hint) -> Self {
        Pool::with_capacities(&hint.nodes)
    }
}

impl<B: MakeBackend, V: Stored> Impl for Table<B, V> {
    const NAME: &'static str = if V::NICHE { B::LABEL_NICHE } else { B::LABEL };
    const IS_MEM_TABLE: bool = true;

    fn new(hint: &Hint) -> Self {
        MemTable::with_backend(B::make(hint))
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        MemTable::insert_at(self, addr, Level::new(level), V::put(v)).expect("insert").map(V::get)
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        MemTable::get(self, addr).map(|v| v.get())
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        MemTable::remove_covering(self, addr).map(|(_, v)| v.get())
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.iter().for_each(|(page, v)| f(page.addr(), v.get()));
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        self.range(range).for_each(|(page, v)| f(page.addr(), v.get()));
    }
    #[inline]
    fn get_batch(&self, addrs: &[u64; BATCH]) -> u64 {
        let mut sum = 0u64;
        for v in self.get_many(addrs) {
            sum = sum.wrapping_add(v.map_or(0, |v| v.get()));
        }
        sum
    }
    fn sum_for(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (page, v) in self {
            sum = sum.wrapping_add(page.addr() ^ v.get());
        }
        Some(sum)
    }
    fn sum_rev(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (page, v) in self.iter().rev() {
            sum = sum.wrapping_add(page.addr() ^ v.get());
        }
        Some(sum)
    }
    fn sum_into(self) -> Option<u64> {
        let mut sum = 0u64;
        for (page, v) in self {
            sum = sum.wrapping_add(page.addr() ^ v.get());
        }
        Some(sum)
    }
    fn split(&mut self, addr: u64, level: u8) {
        MemTable::split(self, addr, Level::new(level)).expect("split");
    }
    fn merge(&mut self, addr: u64, level: u8) {
        MemTable::merge(self, addr, Level::new(level)).expect("merge");
    }
}

// ---------------------------------------------------------------- hash maps

/// The three hash maps, alike.
pub trait HashLike: Default + Clone + 'static {
    const NAME: &'static str;
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&mut self, k: u64, v: u64) -> Option<u64>;
    fn remove(&mut self, k: u64) -> Option<u64>;
    fn for_each(&self, f: impl FnMut(u64, u64));
    /// A `for` loop over `&map`: the wrapping sum of `f(key, value)`.
    fn sum_for(&self, f: impl Fn(u64, u64) -> u64) -> u64;
    /// A `for` loop consuming the map.
    fn sum_into(self, f: impl Fn(u64, u64) -> u64) -> u64;
}

/// `std::collections::HashMap` with its default hasher (SipHash-1-3).
pub type StdHashMap = HashMap<u64, u64>;
/// `std::collections::HashMap` with rustc's Fx hasher.
pub type FxHashMap = HashMap<u64, u64, FxBuildHasher>;
/// `hashbrown::HashMap` with its default hasher (foldhash).
pub type BrownHashMap = hashbrown::HashMap<u64, u64>;

/// The report name of a `std` map with this hasher.
pub trait HasherName {
    const NAME: &'static str;
}

impl HasherName for std::hash::RandomState {
    const NAME: &'static str = "std HashMap (SipHash)";
}

impl HasherName for FxBuildHasher {
    const NAME: &'static str = "std HashMap (Fx)";
}

/// `std`'s map, whatever the hasher: one impl for SipHash and Fx.
impl<S: std::hash::BuildHasher + Default + Clone + HasherName + 'static> HashLike for HashMap<u64, u64, S> {
    const NAME: &'static str = S::NAME;
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        HashMap::get(self, &k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) -> Option<u64> {
        HashMap::insert(self, k, v)
    }
    #[inline]
    fn remove(&mut self, k: u64) -> Option<u64> {
        HashMap::remove(self, &k)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.iter().for_each(|(k, v)| f(*k, *v));
    }
    fn sum_for(&self, f: impl Fn(u64, u64) -> u64) -> u64 {
        let mut sum = 0u64;
        for (&k, &v) in self {
            sum = sum.wrapping_add(f(k, v));
        }
        sum
    }
    fn sum_into(self, f: impl Fn(u64, u64) -> u64) -> u64 {
        let mut sum = 0u64;
        for (k, v) in self {
            sum = sum.wrapping_add(f(k, v));
        }
        sum
    }
}

impl HashLike for BrownHashMap {
    const NAME: &'static str = "hashbrown (foldhash)";
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        hashbrown::HashMap::get(self, &k).copied()
    }
    #[inline]
    fn insert(&mut self, k: u64, v: u64) -> Option<u64> {
        hashbrown::HashMap::insert(self, k, v)
    }
    #[inline]
    fn remove(&mut self, k: u64) -> Option<u64> {
        hashbrown::HashMap::remove(self, &k)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.iter().for_each(|(k, v)| f(*k, *v));
    }
    fn sum_for(&self, f: impl Fn(u64, u64) -> u64) -> u64 {
        let mut sum = 0u64;
        for (&k, &v) in self {
            sum = sum.wrapping_add(f(k, v));
        }
        sum
    }
    fn sum_into(self, f: impl Fn(u64, u64) -> u64) -> u64 {
        let mut sum = 0u64;
        for (k, v) in self {
            sum = sum.wrapping_add(f(k, v));
        }
        sum
    }
}

/// The key of an entry of `level` at `addr`: the level in the low bits.
#[inline(always)]
fn tagged(addr: u64, level: u8) -> u64 {
    (addr & !(page_size(level) - 1)) | level as u64
}

/// A hash map of pages of any level. A key is the page address with the
/// level in its low bits; a lookup probes the base page and, only when the
/// map holds large entries, the 2 MiB and then the 1 GiB page around it.
#[derive(Clone, Default)]
pub struct Hashed<M> {
    map: M,
    /// Entries above the base level.
    large: usize,
}

impl<M: HashLike> Impl for Hashed<M> {
    const NAME: &'static str = M::NAME;

    fn new(_: &Hint) -> Self {
        Hashed::default()
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        let old = self.map.insert(tagged(addr, level), v);
        self.large += (level > 0 && old.is_none()) as usize;
        old
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        if let Some(v) = self.map.get(tagged(addr, 0)) {
            return Some(v);
        }
        if self.large == 0 {
            return None;
        }
        self.map.get(tagged(addr, 1)).or_else(|| self.map.get(tagged(addr, 2)))
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        if let Some(v) = self.map.remove(tagged(addr, 0)) {
            return Some(v);
        }
        if self.large == 0 {
            return None;
        }
        let v = self.map.remove(tagged(addr, 1)).or_else(|| self.map.remove(tagged(addr, 2)))?;
        self.large -= 1;
        Some(v)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.map.for_each(|k, v| f(k & !3, v));
    }
    fn sum_for(&self) -> Option<u64> {
        Some(self.map.sum_for(|k, v| (k & !3) ^ v))
    }
    fn sum_into(self) -> Option<u64> {
        Some(self.map.sum_into(|k, v| (k & !3) ^ v))
    }
}

// ---------------------------------------------------------------- BTreeMap

/// A `BTreeMap` of pages of any level, keys tagged as in [`Hashed`]; a
/// lookup is an exact search while there are no large entries, a
/// predecessor search otherwise.
#[derive(Clone, Default)]
pub struct Ordered {
    map: BTreeMap<u64, u64>,
    large: usize,
}

impl Ordered {
    /// The key of the entry covering `addr`, by predecessor search.
    #[inline]
    fn key_of(&self, addr: u64) -> Option<u64> {
        let page = addr & !(PAGE - 1);
        let (&k, _) = self.map.range(..=page | 3).next_back()?;
        ((k & !3) + page_size((k & 3) as u8) > addr).then_some(k)
    }
}

impl Impl for Ordered {
    const NAME: &'static str = "BTreeMap";

    fn new(_: &Hint) -> Self {
        Ordered::default()
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        let old = self.map.insert(tagged(addr, level), v);
        self.large += (level > 0 && old.is_none()) as usize;
        old
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        if self.large == 0 {
            return self.map.get(&(addr & !(PAGE - 1))).copied();
        }
        self.key_of(addr).map(|k| self.map[&k])
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        if self.large == 0 {
            return self.map.remove(&(addr & !(PAGE - 1)));
        }
        let key = self.key_of(addr)?;
        self.large -= (key & 3 != 0) as usize;
        self.map.remove(&key)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.map.iter().for_each(|(k, v)| f(k & !3, *v));
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        self.map.range(range).for_each(|(k, v)| f(k & !3, *v));
    }
    fn sum_for(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in &self.map {
            sum = sum.wrapping_add((k & !3) ^ v);
        }
        Some(sum)
    }
    fn sum_rev(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in self.map.iter().rev() {
            sum = sum.wrapping_add((k & !3) ^ v);
        }
        Some(sum)
    }
    fn sum_into(self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in self.map {
            sum = sum.wrapping_add((k & !3) ^ v);
        }
        Some(sum)
    }
}

// ---------------------------------------------------------------- flat array

/// The physical limit: `Vec<Option<u64>>` indexed by page number over the
/// workload's span; base pages only, spans up to 64 GiB.
#[derive(Clone)]
pub struct Flat {
    /// The address of slot 0.
    base: u64,
    slots: Vec<Option<u64>>,
}

impl Impl for Flat {
    const NAME: &'static str = "flat Vec<Option>";

    fn supports(w: &Workload) -> bool {
        w.hint.flat_span.is_some() && w.base_pages_only()
    }
    fn new(hint: &Hint) -> Self {
        let (lo, hi) = hint.flat_span.expect("a span for the flat array");
        Flat { base: lo, slots: vec![None; ((hi - lo) / PAGE) as usize] }
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        assert_eq!(level, 0, "the flat array holds base pages only");
        self.slots[((addr - self.base) / PAGE) as usize].replace(v)
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        let i = addr.wrapping_sub(self.base) / PAGE;
        self.slots.get(i as usize).copied().flatten()
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        let i = addr.wrapping_sub(self.base) / PAGE;
        self.slots.get_mut(i as usize)?.take()
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(v) = s {
                f(self.base + i as u64 * PAGE, *v);
            }
        }
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        let lo = (range.start.max(self.base) - self.base) / PAGE;
        let hi = ((range.end.max(self.base) - self.base) / PAGE).min(self.slots.len() as u64);
        for i in lo..hi.max(lo) {
            if let Some(v) = self.slots[i as usize] {
                f(self.base + i * PAGE, v);
            }
        }
    }
    fn sum_for(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(v) = s {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn sum_rev(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, s) in self.slots.iter().enumerate().rev() {
            if let Some(v) = s {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn sum_into(self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, s) in self.slots.into_iter().enumerate() {
            if let Some(v) = s {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn split(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in a flat array")
    }
    fn merge(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in a flat array")
    }
}

/// The physical limit without `Option`'s tag: `Vec<u64>` indexed by page
/// number over the workload's span, [`FlatU64::ABSENT`] (`u64::MAX`) in
/// empty slots; base pages only, spans up to [`super::workload::FLAT_LIMIT_PAGES`].
#[derive(Clone)]
pub struct FlatU64 {
    /// The address of slot 0.
    base: u64,
    slots: Vec<u64>,
}

impl FlatU64 {
    /// The value of an empty slot.
    pub const ABSENT: u64 = u64::MAX;
}

impl Impl for FlatU64 {
    const NAME: &'static str = "flat Vec<u64>";

    fn supports(w: &Workload) -> bool {
        w.hint.flat_span.is_some() && w.base_pages_only()
    }
    fn new(hint: &Hint) -> Self {
        let (lo, hi) = hint.flat_span.expect("a span for the flat array");
        FlatU64 { base: lo, slots: vec![Self::ABSENT; ((hi - lo) / PAGE) as usize] }
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        assert!(level == 0 && v != Self::ABSENT, "base pages only, and not the absent marker");
        let old = std::mem::replace(&mut self.slots[((addr - self.base) / PAGE) as usize], v);
        (old != Self::ABSENT).then_some(old)
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        let i = addr.wrapping_sub(self.base) / PAGE;
        self.slots.get(i as usize).copied().filter(|&v| v != Self::ABSENT)
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        let i = addr.wrapping_sub(self.base) / PAGE;
        let old = std::mem::replace(self.slots.get_mut(i as usize)?, Self::ABSENT);
        (old != Self::ABSENT).then_some(old)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        for (i, &v) in self.slots.iter().enumerate() {
            if v != Self::ABSENT {
                f(self.base + i as u64 * PAGE, v);
            }
        }
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        let lo = (range.start.max(self.base) - self.base) / PAGE;
        let hi = ((range.end.max(self.base) - self.base) / PAGE).min(self.slots.len() as u64);
        for i in lo..hi.max(lo) {
            let v = self.slots[i as usize];
            if v != Self::ABSENT {
                f(self.base + i * PAGE, v);
            }
        }
    }
    fn sum_for(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, &v) in self.slots.iter().enumerate() {
            if v != Self::ABSENT {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn sum_rev(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, &v) in self.slots.iter().enumerate().rev() {
            if v != Self::ABSENT {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn sum_into(self) -> Option<u64> {
        let mut sum = 0u64;
        for (i, v) in self.slots.into_iter().enumerate() {
            if v != Self::ABSENT {
                sum = sum.wrapping_add((self.base + i as u64 * PAGE) ^ v);
            }
        }
        Some(sum)
    }
    fn split(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in a flat array")
    }
    fn merge(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in a flat array")
    }
}

// ---------------------------------------------------------------- plain radix

impl Impl for PlainRadix {
    const NAME: &'static str = "plain 4x512 radix";

    fn supports(w: &Workload) -> bool {
        w.base_pages_only()
    }
    fn new(_: &Hint) -> Self {
        PlainRadix::default()
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        assert_eq!(level, 0, "the plain radix table holds base pages only");
        PlainRadix::insert(self, addr, v)
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        PlainRadix::get(self, addr)
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        PlainRadix::remove(self, addr)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.iter().for_each(|(k, v)| f(k, v));
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        self.range(range).for_each(|(k, v)| f(k, v));
    }
    fn sum_for(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in self.iter() {
            sum = sum.wrapping_add(k ^ v);
        }
        Some(sum)
    }
    fn sum_rev(&self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in self.iter().rev() {
            sum = sum.wrapping_add(k ^ v);
        }
        Some(sum)
    }
    fn sum_into(self) -> Option<u64> {
        let mut sum = 0u64;
        for (k, v) in self.into_entries() {
            sum = sum.wrapping_add(k ^ v);
        }
        Some(sum)
    }
    fn split(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in the plain radix table")
    }
    fn merge(&mut self, _: u64, _: u8) {
        unreachable!("no large entries in the plain radix table")
    }
}

// ---------------------------------------------------------------- runtime radix

impl Impl for RuntimeRadix {
    const NAME: &'static str = "runtime-geometry radix";

    fn new(_: &Hint) -> Self {
        RuntimeRadix::x86_64()
    }
    #[inline]
    fn insert_at(&mut self, addr: u64, level: u8, v: u64) -> Option<u64> {
        RuntimeRadix::insert_at(self, addr, level, v)
    }
    #[inline]
    fn get(&self, addr: u64) -> Option<u64> {
        RuntimeRadix::get(self, addr)
    }
    #[inline]
    fn remove(&mut self, addr: u64) -> Option<u64> {
        RuntimeRadix::remove(self, addr)
    }
    fn for_each(&self, mut f: impl FnMut(u64, u64)) {
        self.for_each_in(0..1 << ADDRESS_BITS, &mut f);
    }
    fn for_each_in(&self, range: Range<u64>, mut f: impl FnMut(u64, u64)) {
        RuntimeRadix::for_each_in(self, range, &mut f);
    }
}

// ---------------------------------------------------------------- Run

/// A table of some implementation, driven one whole loop per call. Object
/// safe, so that every contender fits in one list; each loop inside is
/// compiled for its implementation, so the one dynamic call per loop is all
/// the indirection a measurement sees. Every loop returns a checksum
/// (equal across implementations for the same workload and operation).
pub trait Run {
    fn name(&self) -> &'static str;
    /// Inserts every entry, in the order given.
    fn insert_all(&mut self, entries: &[Entry]);
    /// Looks up every address; the wrapping sum of the values found.
    fn get_all(&self, addrs: &[u64]) -> u64;
    /// The same in batches of [`BATCH`] ([`Impl::get_batch`]); the sum is
    /// `get_all`'s.
    fn get_batched(&self, addrs: &[u64]) -> u64;
    /// Follows `steps` values from `start`, each the next address: one
    /// lookup's latency at a time. Returns where it ends.
    fn chain(&self, start: u64, steps: usize) -> u64;
    /// Walks every entry; a checksum of addresses and values.
    fn iter_sum(&self) -> u64;
    /// A plain `for` loop over the table; `iter_sum`'s checksum, or `None`
    /// where the implementation has no iterator ([`Impl::sum_for`]).
    fn for_sum(&self) -> Option<u64>;
    /// A `for` loop over `iter().rev()`; `iter_sum`'s checksum, or `None`.
    fn rev_sum(&self) -> Option<u64>;
    /// Consumes the table with a `for` loop over `into_iter`; `iter_sum`'s
    /// checksum, or `None`.
    fn into_sum(self: Box<Self>) -> Option<u64>;
    /// Walks the entries overlapping `range`; a checksum.
    fn range_sum(&self, range: Range<u64>) -> u64;
    /// Removes the entry covering each address; the sum of the values.
    fn remove_all(&mut self, addrs: &[u64]) -> u64;
    /// Splits the entry of `level` at each address.
    fn split_all(&mut self, addrs: &[u64], level: u8);
    /// Merges the table of entries under `(addr, level)` at each address.
    fn merge_all(&mut self, addrs: &[u64], level: u8);
    fn boxed_clone(&self) -> Box<dyn Run>;
}

impl<I: Impl> Run for I {
    fn name(&self) -> &'static str {
        I::NAME
    }
    fn insert_all(&mut self, entries: &[Entry]) {
        for e in black_box(entries) {
            black_box(self.insert_at(e.addr, e.level, e.value));
        }
    }
    fn get_all(&self, addrs: &[u64]) -> u64 {
        let mut sum = 0u64;
        for &a in black_box(addrs) {
            sum = sum.wrapping_add(self.get(a).unwrap_or(0));
        }
        black_box(sum)
    }
    fn get_batched(&self, addrs: &[u64]) -> u64 {
        let chunks = black_box(addrs).chunks_exact(BATCH);
        let mut sum = 0u64;
        for &a in chunks.remainder() {
            sum = sum.wrapping_add(self.get(a).unwrap_or(0));
        }
        for batch in chunks {
            sum = sum.wrapping_add(self.get_batch(batch.try_into().expect("a whole batch")));
        }
        black_box(sum)
    }
    fn chain(&self, start: u64, steps: usize) -> u64 {
        let mut a = black_box(start);
        for _ in 0..steps {
            a = self.get(a).expect("the chain of values is a cycle");
        }
        black_box(a)
    }
    fn iter_sum(&self) -> u64 {
        let mut sum = 0u64;
        self.for_each(|k, v| sum = sum.wrapping_add(k ^ v));
        black_box(sum)
    }
    fn for_sum(&self) -> Option<u64> {
        black_box(self.sum_for())
    }
    fn rev_sum(&self) -> Option<u64> {
        black_box(self.sum_rev())
    }
    fn into_sum(self: Box<Self>) -> Option<u64> {
        black_box((*self).sum_into())
    }
    fn range_sum(&self, range: Range<u64>) -> u64 {
        let mut sum = 0u64;
        self.for_each_in(black_box(range), |k, v| sum = sum.wrapping_add(k ^ v));
        black_box(sum)
    }
    fn remove_all(&mut self, addrs: &[u64]) -> u64 {
        let mut sum = 0u64;
        for &a in black_box(addrs) {
            sum = sum.wrapping_add(self.remove(a).unwrap_or(0));
        }
        black_box(sum)
    }
    fn split_all(&mut self, addrs: &[u64], level: u8) {
        for &a in black_box(addrs) {
            self.split(a, level);
        }
    }
    fn merge_all(&mut self, addrs: &[u64], level: u8) {
        for &a in black_box(addrs) {
            self.merge(a, level);
        }
    }
    fn boxed_clone(&self) -> Box<dyn Run> {
        Box::new(self.clone())
    }
}

/// One implementation in a comparison: how to make it and what it holds.
#[derive(Clone, Copy)]
pub struct Contender {
    pub name: &'static str,
    pub is_mem_table: bool,
    pub supports: fn(&Workload) -> bool,
    /// An empty table for a workload's hint.
    pub new: fn(&Hint) -> Box<dyn Run>,
}

fn new_boxed<I: Impl>(hint: &Hint) -> Box<dyn Run> {
    Box::new(I::new(hint))
}

impl Contender {
    pub fn of<I: Impl>() -> Contender {
        Contender { name: I::NAME, is_mem_table: I::IS_MEM_TABLE, supports: I::supports, new: new_boxed::<I> }
    }

    /// An empty table for `w`.
    pub fn empty(&self, w: &Workload) -> Box<dyn Run> {
        (self.new)(&w.hint)
    }

    /// A table holding `w`, built in random order.
    pub fn build(&self, w: &Workload) -> Box<dyn Run> {
        let mut t = self.empty(w);
        t.insert_all(&w.random);
        t
    }
}

/// Every contender, `mem-table`'s backends first: what the benchmarks run.
pub fn contenders() -> Vec<Contender> {
    vec![
        Contender::of::<Table<Heap>>(),
        Contender::of::<Table<Arena>>(),
        Contender::of::<Table<Pool>>(),
        Contender::of::<Hashed<StdHashMap>>(),
        Contender::of::<Hashed<FxHashMap>>(),
        Contender::of::<Hashed<BrownHashMap>>(),
        Contender::of::<Ordered>(),
        Contender::of::<FlatU64>(),
        Contender::of::<Flat>(),
        Contender::of::<PlainRadix>(),
        Contender::of::<RuntimeRadix>(),
    ]
}

/// The comparison report's contenders: `mem-table` on every backend, the
/// maps a user would reach for, the two flat arrays (the physical limit)
/// and the plain radix table (the same shape without the crate's
/// features). Not SipHash (the Fx map shows a hash map's best case) nor the
/// runtime-geometry radix (`cargo bench` keeps both).
pub fn report_contenders() -> Vec<Contender> {
    vec![
        Contender::of::<Table<Heap>>(),
        Contender::of::<Table<Arena>>(),
        Contender::of::<Table<Pool>>(),
        Contender::of::<Table<Heap, NonZeroU64>>(),
        Contender::of::<Hashed<FxHashMap>>(),
        Contender::of::<Hashed<BrownHashMap>>(),
        Contender::of::<Ordered>(),
        Contender::of::<FlatU64>(),
        Contender::of::<Flat>(),
        Contender::of::<PlainRadix>(),
    ]
}

/// Contender names, the ratios' bases.
pub const HEAP: &str = <Table<Heap> as Impl>::NAME;
pub const HEAP_NICHE: &str = <Table<Heap, NonZeroU64> as Impl>::NAME;
pub const FX: &str = <Hashed<FxHashMap> as Impl>::NAME;
pub const FLAT: &str = <Flat as Impl>::NAME;
pub const FLAT_U64: &str = <FlatU64 as Impl>::NAME;
pub const PLAIN: &str = <PlainRadix as Impl>::NAME;
