//! Named, deterministic workloads: which pages hold entries, in which order
//! they are inserted and looked up, and what each value is.
//!
//! Every workload is built from a fixed seed, outside any timed loop. Values
//! form one random cycle through all entries (an entry's value is the next
//! entry's address), so the same table serves throughput lookups and the
//! dependent chain (latency) alike.

use rustc_hash::FxHashSet;

use super::rng::Rng;

/// Base page size (x86-64 4 KiB).
pub const PAGE: u64 = 1 << 12;
/// The reach of an x86-64 4-level table.
pub const ADDRESS_BITS: u32 = 48;
/// The largest span, in pages, given to the flat arrays: 256 GiB, which is
/// 1 GiB of `Option<u64>` (the clustered shape at 2^24 entries).
pub const FLAT_LIMIT_PAGES: u64 = 1 << 26;

/// The size of an entry at `level` (0: 4 KiB, 1: 2 MiB, 2: 1 GiB).
pub fn page_size(level: u8) -> u64 {
    1 << (12 + 9 * level as u32)
}

/// How the populated pages are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Contiguous pages from address 0.
    Dense,
    /// Runs of 512 pages (full 2 MiB regions) at random 2 MiB-aligned bases
    /// inside the first 64 GiB; inside a larger window when the entries
    /// would fill more than a quarter of it ([`clustered_window_bits`]: at
    /// 2^24 entries, 256 GiB).
    Clustered64G,
    /// Runs of 512 pages at random 2 MiB-aligned bases over the whole
    /// 48-bit space.
    Clustered48,
    /// Random pages, 1 in 100 of a window sized to hold them (N x 100 pages).
    Random1,
    /// Random pages, 1 in 8 of a window sized to hold them (N x 8 pages).
    Random12,
    /// Uniformly random pages over 48 bits: the worst case, always 2^12
    /// entries (every entry needs its own tables).
    Uniform48,
    /// Mostly 2 MiB entries, 1 GiB entries in 1 of 16 GiB, 4 KiB pages in
    /// 1 of 2048 2 MiB regions (each with 4 KiB holes), 2 MiB holes in 1 of 64.
    LargeMix,
}

impl Shape {
    /// The shapes of base pages only, in report order.
    pub const BASE: [Shape; 6] = [
        Shape::Dense,
        Shape::Clustered64G,
        Shape::Clustered48,
        Shape::Random1,
        Shape::Random12,
        Shape::Uniform48,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Dense => "dense",
            Shape::Clustered64G => "clustered-64GiB",
            Shape::Clustered48 => "clustered-48bit",
            Shape::Random1 => "random-1%",
            Shape::Random12 => "random-12.5%",
            Shape::Uniform48 => "uniform-48bit",
            Shape::LargeMix => "large-mix",
        }
    }

    /// The name for `n` entries: [`name`](Shape::name), but with the window
    /// the clustered shape really spans at that size.
    pub fn label(self, n: usize) -> String {
        match self {
            Shape::Clustered64G if clustered_window_bits(n) != 36 => {
                format!("clustered-{}GiB", 1u64 << (clustered_window_bits(n) - 30))
            }
            _ => self.name().to_string(),
        }
    }

    /// The entry count used for a requested size (the uniform shape is
    /// kept small whatever is asked).
    pub fn len_for(self, requested: usize) -> usize {
        match self {
            Shape::Uniform48 => 1 << 12,
            _ => requested,
        }
    }

    /// The populated pages (or, for the large-page mix, entries) of `n`
    /// entries, in no particular order.
    fn generate(self, n: usize, rng: &mut Rng) -> Vec<(u64, u8)> {
        match self {
            Shape::Dense => (0..n as u64).map(|i| (i * PAGE, 0)).collect(),
            Shape::Clustered64G => clustered(n, clustered_window_bits(n), rng),
            Shape::Clustered48 => clustered(n, ADDRESS_BITS, rng),
            Shape::Random1 => random_in_window(n, 100, rng),
            Shape::Random12 => random_in_window(n, 8, rng),
            Shape::Uniform48 => distinct(n, 1 << (ADDRESS_BITS - 12), rng).map(|p| (p * PAGE, 0)).collect(),
            Shape::LargeMix => large_mix(n, rng),
        }
    }
}

/// The sparse shapes of issue 11: `entries` distinct random base pages in
/// a window of `window_pages` pages from address 0, or uniform over the
/// whole 48-bit space (`window_pages: None`). Each is deterministic from
/// its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sparse {
    pub entries: usize,
    /// The window, in 4 KiB pages; `None`: all of 48 bits.
    pub window_pages: Option<u64>,
}

/// GiB, in 4 KiB pages.
const GIB_PAGES: u64 = 1 << 18;

impl Sparse {
    /// The shapes, 2^16 entries first: 0.78 % of 32 GiB, 0.024 % of 1 TiB
    /// and uniform over 48 bits; then at 2^20, 12.5 % of 32 GiB, 1 % of
    /// 400 GiB and uniform over 48 bits.
    pub const ALL: [Sparse; 6] = [
        Sparse { entries: 1 << 16, window_pages: Some(32 * GIB_PAGES) },
        Sparse { entries: 1 << 16, window_pages: Some(1024 * GIB_PAGES) },
        Sparse { entries: 1 << 16, window_pages: None },
        Sparse { entries: 1 << 20, window_pages: Some(32 * GIB_PAGES) },
        Sparse { entries: 1 << 20, window_pages: Some(400 * GIB_PAGES) },
        Sparse { entries: 1 << 20, window_pages: None },
    ];

    /// The pages a key may fall on.
    pub fn range_pages(self) -> u64 {
        self.window_pages.unwrap_or(1 << (ADDRESS_BITS - 12))
    }

    /// The share of the window's pages that hold an entry, in percent.
    pub fn density_percent(self) -> f64 {
        self.entries as f64 / self.range_pages() as f64 * 100.0
    }

    /// `random-0.78%-32GiB`, `random-1%-400GiB`, `uniform-48bit`: the label
    /// in reports (the size goes beside it).
    pub fn label(self) -> String {
        let Some(pages) = self.window_pages else { return "uniform-48bit".to_string() };
        let gib = pages / GIB_PAGES;
        let window =
            if gib >= 1024 && gib % 1024 == 0 { format!("{}TiB", gib / 1024) } else { format!("{gib}GiB") };
        format!("random-{}%-{window}", self.density_label())
    }

    /// The density in percent, to two or three significant digits:
    /// `12.5`, `1`, `0.78`, `0.024`, `9.5e-7`.
    pub fn density_label(self) -> String {
        let d = self.density_percent();
        if d >= 1.0 {
            format!("{d:.1}").trim_end_matches(".0").to_string()
        } else if d >= 0.1 {
            format!("{d:.2}")
        } else if d >= 0.01 {
            format!("{d:.3}")
        } else {
            format!("{d:.1e}")
        }
    }

    /// The workload: distinct pages by rejection (every shape is at most
    /// 12.5 % dense), values and orders as for every workload.
    pub fn workload(self) -> Workload {
        let range = self.range_pages();
        let mut rng = Rng::new(0x5ba7_5e00_0000_0000 ^ range.rotate_left(20) ^ self.entries as u64);
        let pages = distinct(self.entries, range, &mut rng).map(|p| (p * PAGE, 0)).collect();
        Workload::from_pages(None, format!("{}/{}", self.label(), size_label(self.entries)), pages, &mut rng)
    }
}

/// One entry to insert: a page of `level` at `addr`, holding `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub addr: u64,
    pub level: u8,
    pub value: u64,
}

/// What an implementation may size itself by before the first insert.
#[derive(Clone, Copy, Debug)]
pub struct Hint {
    /// The tables each level of an x86-64 table needs, bottom first: sizes
    /// a `Pool`.
    pub nodes: [usize; 3],
    /// The populated span `[lo, hi)` for the flat array, when the workload
    /// has base pages only and the span is at most [`FLAT_LIMIT_PAGES`].
    pub flat_span: Option<(u64, u64)>,
}

impl Hint {
    /// The hint for a set of entries.
    pub fn of(entries: &[Entry]) -> Hint {
        // Tables per level: distinct regions of the level above that hold
        // an entry at or below the level.
        let mut nodes = [1; 3];
        for (n, (level, shift)) in nodes.iter_mut().zip([(0u8, 21u32), (1, 30), (2, 39)]) {
            let mut regions: Vec<u64> =
                entries.iter().filter(|e| e.level <= level).map(|e| e.addr >> shift).collect();
            regions.sort_unstable();
            regions.dedup();
            *n = regions.len().max(1);
        }
        let flat_span = if entries.iter().all(|e| e.level == 0) && !entries.is_empty() {
            let lo = entries.iter().map(|e| e.addr).min().unwrap_or(0);
            let hi = entries.iter().map(|e| e.addr).max().unwrap_or(0) + PAGE;
            ((hi - lo) / PAGE <= FLAT_LIMIT_PAGES).then_some((lo, hi))
        } else {
            None
        };
        Hint { nodes, flat_span }
    }
}

/// A named workload: its entries in two insertion orders, the addresses to
/// look up, and the start of the dependent chain.
pub struct Workload {
    pub shape: Option<Shape>,
    /// `shape/2^k`, for reports and benchmark ids.
    pub name: String,
    /// Entries in random insertion order.
    pub random: Vec<Entry>,
    /// The same entries in ascending address order.
    pub ascending: Vec<Entry>,
    /// One address inside every entry, in an independent random order.
    pub lookups: Vec<u64>,
    /// Where the chain of values starts (and, after `len` steps, ends).
    pub chain_start: u64,
    pub hint: Hint,
}

/// `2^k` for exact powers of two, the number otherwise.
pub fn size_label(n: usize) -> String {
    if n.is_power_of_two() { format!("2^{}", n.trailing_zeros()) } else { n.to_string() }
}

impl Workload {
    /// The workload of `shape` at (about) `n` entries; deterministic.
    pub fn new(shape: Shape, n: usize) -> Workload {
        let n = shape.len_for(n);
        let mut rng = Rng::new(0x6d65_6d2d_7461_626c ^ ((shape as u64) << 40) ^ n as u64);
        let pages = shape.generate(n, &mut rng);
        Workload::from_pages(Some(shape), format!("{}/{}", shape.label(n), size_label(n)), pages, &mut rng)
    }

    /// `n` entries of one `level`, side by side from address 0: to compare
    /// a lookup inside a 4 KiB, a 2 MiB and a 1 GiB entry.
    pub fn uniform_level(level: u8, n: usize) -> Workload {
        let mut rng = Rng::new(0x1e7e1 ^ level as u64 ^ (n as u64) << 8);
        let pages = (0..n as u64).map(|i| (i * page_size(level), level)).collect();
        let label = ["4KiB", "2MiB", "1GiB"][level as usize];
        Workload::from_pages(None, format!("{label}-entries/{}", size_label(n)), pages, &mut rng)
    }

    /// Entries at `(addr, level)`; values, orders and lookups derived with `rng`.
    pub fn from_pages(
        shape: Option<Shape>,
        name: String,
        mut pages: Vec<(u64, u8)>,
        rng: &mut Rng,
    ) -> Workload {
        assert!(!pages.is_empty());
        rng.shuffle(&mut pages); // the chain's order
        let n = pages.len();
        let mut random: Vec<Entry> = (0..n)
            .map(|i| Entry { addr: pages[i].0, level: pages[i].1, value: pages[(i + 1) % n].0 })
            .collect();
        rng.shuffle(&mut random);
        let mut ascending = random.clone();
        ascending.sort_unstable_by_key(|e| e.addr);
        let mut lookups: Vec<u64> =
            random.iter().map(|e| e.addr + rng.below(page_size(e.level) / PAGE) * PAGE).collect();
        rng.shuffle(&mut lookups);
        let hint = Hint::of(&random);
        Workload { shape, name, random, ascending, lookups, chain_start: pages[0].0, hint }
    }

    pub fn len(&self) -> usize {
        self.random.len()
    }

    /// Whether every entry is a base page.
    pub fn base_pages_only(&self) -> bool {
        self.random.iter().all(|e| e.level == 0)
    }

    /// `n` page addresses whose 1 GiB region holds no entry: a lookup that
    /// ends high in the table.
    pub fn misses_far(&self, n: usize) -> Vec<u64> {
        let regions: FxHashSet<u64> = self.random.iter().map(|e| e.addr >> 30).collect();
        let mut rng = Rng::new(0xfa7);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let addr = rng.below(1 << (ADDRESS_BITS - 12)) * PAGE;
            if !regions.contains(&(addr >> 30)) {
                out.push(addr);
            }
        }
        out
    }

    /// `n` unpopulated pages close to populated ones: within 512 pages where
    /// there are holes, further out (by factors of 8) where there are none.
    /// For base-page workloads.
    pub fn misses_near(&self, n: usize) -> Vec<u64> {
        assert!(self.base_pages_only());
        let keys: FxHashSet<u64> = self.random.iter().map(|e| e.addr).collect();
        let mut rng = Rng::new(0x4ea5);
        let mut out = Vec::with_capacity(n);
        let mut radius = 512u64;
        let mut failures = 0;
        while out.len() < n {
            let e = self.random[rng.below(self.len() as u64) as usize];
            let page = (e.addr / PAGE) as i64 + rng.below(2 * radius + 1) as i64 - radius as i64;
            let addr = (page.max(0) as u64 * PAGE).min((1 << ADDRESS_BITS) - PAGE);
            if keys.contains(&addr) {
                // 64 misses in a row: no holes this close, look further.
                failures += 1;
                if failures == 64 {
                    radius = (radius * 8).min(1 << (ADDRESS_BITS - 12));
                    failures = 0;
                }
            } else {
                out.push(addr);
                failures = 0;
            }
        }
        rng.shuffle(&mut out);
        out
    }
}

/// The window of the clustered shape, as address bits: 64 GiB (36 bits),
/// or the smallest power of two that `n` pages fill to at most a quarter
/// (2^24 pages are 64 GiB by themselves).
pub fn clustered_window_bits(n: usize) -> u32 {
    let pages_bits = n.next_power_of_two().trailing_zeros() + 12;
    36.max(pages_bits + 2)
}

/// `k` distinct numbers below `range`, in random order (rejection).
fn distinct(k: usize, range: u64, rng: &mut Rng) -> impl Iterator<Item = u64> {
    assert!(k as u64 <= range / 2, "too dense for rejection sampling");
    let mut seen = FxHashSet::default();
    let mut out = Vec::with_capacity(k);
    while out.len() < k {
        let x = rng.below(range);
        if seen.insert(x) {
            out.push(x);
        }
    }
    out.into_iter()
}

/// Runs of 512 pages at distinct random 2 MiB-aligned bases below
/// `2^window_bits` (the last run shorter if `n` is not a multiple of 512).
fn clustered(n: usize, window_bits: u32, rng: &mut Rng) -> Vec<(u64, u8)> {
    let runs = n.div_ceil(512);
    let bases = distinct(runs, 1 << (window_bits - 21), rng);
    let mut out = Vec::with_capacity(n);
    for base in bases {
        let take = (n - out.len()).min(512) as u64;
        out.extend((0..take).map(|j| ((base << 21) + j * PAGE, 0)));
    }
    out
}

/// `n` distinct random pages in a window of `n * one_in` pages from 0.
fn random_in_window(n: usize, one_in: u64, rng: &mut Rng) -> Vec<(u64, u8)> {
    let window = n as u64 * one_in;
    let mut taken = vec![0u64; window.div_ceil(64) as usize];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let p = rng.below(window);
        let (w, b) = ((p / 64) as usize, p % 64);
        if taken[w] & (1 << b) == 0 {
            taken[w] |= 1 << b;
            out.push((p * PAGE, 0));
        }
    }
    out
}

/// The large-page mix: gigabyte by gigabyte from address 0, until `n`
/// entries.
fn large_mix(n: usize, rng: &mut Rng) -> Vec<(u64, u8)> {
    let mut out = Vec::with_capacity(n);
    let mut gib = 0u64;
    while out.len() < n {
        let base = gib << 30;
        gib += 1;
        if rng.one_in(16) {
            out.push((base, 2));
            continue;
        }
        for j in 0..512u64 {
            let region = base + (j << 21);
            if rng.one_in(64) {
                continue; // a 2 MiB hole
            }
            if rng.one_in(2048) {
                // 4 KiB pages with 4 KiB holes.
                out.extend((0..512u64).filter(|_| !rng.one_in(64)).map(|k| (region + k * PAGE, 0)));
            } else {
                out.push((region, 1));
            }
        }
    }
    out.truncate(n);
    out
}
