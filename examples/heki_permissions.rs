//! The use case of the Linux RFC this crate grew from (Heki), made whole.
//!
//! A guest kernel maps each physical page any number of times: its heap and
//! text, module pages, every process's pages; as 4 KiB or 2 MiB pages; each
//! mapping with read, write and execute rights. The hypervisor should give
//! each guest-physical page only the union of its mappings' rights, not RWX.
//! So the guest keeps, per physical page, how many mappings grant each right
//! ([`Counters`]), in a [`MemTable`] shaped like the page table:
//!
//! - a 2 MiB mapping of an untracked region is one 2 MiB entry (and 512
//!   equal 2 MiB entries merge into one 1 GiB entry);
//! - a 4 KiB mapping inside a large entry splits it first, through
//!   [`CounterOps`]: every sub-page gets a copy of the counters;
//! - after each batch of map / unmap / mprotect operations, `compact_with`
//!   merges the regions that became uniform again, and `take_changes` yields
//!   what changed; of that, the guest sends the hypervisor only the pages
//!   whose rights really changed.
//!
//! The guest is simulated, deterministically (a fixed-seed generator). A
//! reference, a `HashMap` of counters for every 4 KiB page, is kept
//! alongside; every 20 batches the table, the reference and the
//! hypervisor's view must agree, or the example panics.
//!
//! Run it with `cargo run --release --example heki_permissions`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use mem_table::ops::{Children, PageOps};
use mem_table::{Change, Entry, ErrorKind, Level, MemTable, OccupancyOptions, Page, X86_4Level};

const PAGE: u64 = 4 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const L4K: Level = X86_4Level::L4K;
const L2M: Level = X86_4Level::L2M;

const BATCHES: usize = 100;
const OPS_PER_BATCH: usize = 200;
const MAX_PROCESSES: usize = 24;
/// The kernel unloads all its modules in the middle of every 25 batches.
const RMMOD_EVERY: usize = 25;
/// How often the table is checked against the reference (and at the end).
const VERIFY_EVERY: usize = 20;
/// The guest-physical layout: the kernel heap (0 .. 1 GiB, read-write),
/// the kernel text (8 MiB, read-execute), a shared library every process
/// maps (16 pages, read-execute), then processes' memory up to 4 GiB.
const HEAP_END: u64 = GIB;
const TEXT: u64 = HEAP_END;
const LIBC: u64 = GIB + 64 * MIB;
const USER: u64 = GIB + 128 * MIB;

type Table = MemTable<Counters>;

/// A set of access rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rights(u8);

const R: Rights = Rights(1);
const W: Rights = Rights(2);
const X: Rights = Rights(4);
const RW: Rights = Rights(3);
const RX: Rights = Rights(5);

impl Rights {
    fn has(self, r: Rights) -> bool {
        self.0 & r.0 == r.0
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |r, c| if self.has(r) { c } else { '-' };
        write!(f, "{}{}{}", c(R, 'r'), c(W, 'w'), c(X, 'x'))
    }
}

/// The value kept per page: how many mappings grant each right.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counters {
    read: u32,
    write: u32,
    exec: u32,
}

impl Counters {
    /// The union of the rights of the page's mappings.
    fn rights(&self) -> Rights {
        Rights((self.read > 0) as u8 | ((self.write > 0) as u8) << 1 | ((self.exec > 0) as u8) << 2)
    }

    fn is_unmapped(&self) -> bool {
        *self == Counters::default()
    }

    fn map(&mut self, r: Rights) {
        self.each(r, |n| n + 1);
    }

    fn unmap(&mut self, r: Rights) {
        self.each(r, |n| n.checked_sub(1).expect("unmapping rights that were never mapped"));
    }

    fn each(&mut self, r: Rights, f: impl Fn(u32) -> u32) {
        for (right, n) in [(R, &mut self.read), (W, &mut self.write), (X, &mut self.exec)] {
            if r.has(right) {
                *n = f(*n);
            }
        }
    }
}

/// How counters follow the table's shape: a split copies the large page's
/// counters to every sub-page (the same mappings cover each of them); a
/// merge happens only when every sub-page has the same counters.
#[derive(Default)]
struct CounterOps {
    /// Merges done, by the level of the merged entry.
    merges: [usize; 4],
}

impl PageOps<Counters> for CounterOps {
    /// A split copies, and a merge happens only when all are equal: no
    /// page's counters change, so neither is a change to report.
    const KEEPS_VALUES: bool = true;

    fn split(&mut self, _page: Page, value: &Counters, _sub: Page) -> Counters {
        *value
    }

    fn merge(&mut self, page: Page, mut children: Children<'_, '_, Counters>) -> Option<Counters> {
        let first = *children.next()?;
        if !children.all(|c| *c == first) {
            return None;
        }
        self.merges[page.level().index()] += 1;
        Some(first)
    }
}

/// One mapping of one physical page (4 KiB or 2 MiB).
#[derive(Clone, Copy, Debug)]
struct Mapping {
    addr: u64,
    level: Level,
    rights: Rights,
}

/// An address space: the kernel's (index 0, `home` unused) or a process's,
/// whose pages come from the two 2 MiB frames at `home`.
struct Space {
    home: u64,
    mappings: Vec<Mapping>,
}

/// SplitMix64: a tiny generator with a fixed seed, so every run is the same.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// What the hypervisor was sent: every guest page's rights (its EPT, in
/// effect). The guest keeps the same map to send only real changes.
#[derive(Default)]
struct Hypervisor {
    ept: BTreeMap<u64, Rights>,
    /// The counters of every page as the reports said: to count the
    /// reported regions that changed no page's value.
    values: HashMap<u64, Counters>,
    /// Regions reported in which no page's value changed.
    noop: usize,
    /// Changes from `take_changes`: regions set (and the pages they cover,
    /// and how many regions carried no new rights), regions cleared.
    set: usize,
    set_pages: u64,
    set_same: usize,
    cleared: usize,
    /// Pages whose rights really changed: all the guest sends.
    sent: u64,
}

impl Hypervisor {
    fn receive<'a>(&mut self, changes: impl Iterator<Item = Change<'a, Counters>>) {
        for Change { start, last, value } in changes {
            let pages = start..=last;
            match value {
                Some(c) => {
                    self.set += 1;
                    self.set_pages += (last - start + 1) / PAGE;
                    let (r, before) = (c.rights(), self.sent);
                    let mut changed = false;
                    for p in pages.step_by(PAGE as usize) {
                        self.sent += (self.ept.insert(p, r) != Some(r)) as u64;
                        changed |= self.values.insert(p, *c) != Some(*c);
                    }
                    self.set_same += (self.sent == before) as usize;
                    self.noop += !changed as usize;
                }
                None => {
                    self.cleared += 1;
                    let gone: Vec<u64> = self.ept.range(pages).map(|(&p, _)| p).collect();
                    self.sent += gone.len() as u64;
                    self.noop += gone.is_empty() as usize;
                    for p in gone {
                        self.ept.remove(&p);
                        self.values.remove(&p);
                    }
                }
            }
        }
    }
}

struct Guest {
    table: Table,
    ops: CounterOps,
    /// The same counters, one per 4 KiB page: the model the table must match.
    reference: HashMap<u64, Counters>,
    spaces: Vec<Space>,
    rng: Rng,
    /// Splits done, by the level of the split entry.
    splits: [usize; 4],
    /// Counters updates: one per 4 KiB page a map or unmap covers.
    updates: u64,
    /// Operations done: map, unmap, mprotect, process spawn, process exit.
    done: [usize; 5],
}

impl Guest {
    /// A booted guest: heap and text mapped (for good), a few processes.
    fn new(seed: u64) -> Guest {
        let mut g = Guest {
            table: Table::new(),
            ops: CounterOps::default(),
            reference: HashMap::new(),
            spaces: vec![Space { home: 0, mappings: Vec::new() }],
            rng: Rng(seed),
            splits: [0; 4],
            updates: 0,
            done: [0; 5],
        };
        // Reports compare counters: a page is sent only if they changed.
        g.table.track_values();
        let huge =
            |from: u64, to: u64, rights| (from..to).step_by(2 * MIB as usize).map(move |a| (a, rights));
        for (addr, rights) in huge(0, HEAP_END, RW).chain(huge(TEXT, TEXT + 8 * MIB, RX)) {
            g.account(Mapping { addr, level: L2M, rights }, Counters::map);
        }
        for _ in 0..MAX_PROCESSES / 2 {
            g.spawn();
        }
        g
    }

    /// Adds (`Counters::map`) or takes away (`Counters::unmap`) one
    /// mapping's rights, in the reference and in the table.
    fn account(&mut self, m: Mapping, f: fn(&mut Counters, Rights)) {
        let size = Table::page_size(m.level).expect("an x86 level");
        for p in (m.addr..m.addr + size).step_by(PAGE as usize) {
            let c = self.reference.entry(p).or_default();
            f(c, m.rights);
            if c.is_unmapped() {
                self.reference.remove(&p);
            }
        }
        self.updates += size / PAGE;
        self.update(m.addr, m.level, m.rights, f);
    }

    fn update(&mut self, addr: u64, level: Level, rights: Rights, f: fn(&mut Counters, Rights)) {
        // A larger entry covering the page is split first (1 GiB, then 2 MiB).
        while let Some((big, _)) = self.table.get_key_value(addr).filter(|(p, _)| p.level() > level) {
            self.table.split_with(big.addr(), big.level(), &mut self.ops).expect("split a large entry");
            self.splits[big.level().index()] += 1;
        }
        match self.table.entry_at(addr, level) {
            Ok(Entry::Occupied(mut e)) => {
                f(e.get_mut(), rights);
                if e.get().is_unmapped() {
                    e.remove();
                }
            }
            Ok(Entry::Vacant(e)) => {
                let mut c = Counters::default();
                f(&mut c, rights);
                e.insert(c);
            }
            // A 2 MiB mapping of a region held as 4 KiB entries: update
            // every sub-page.
            Err(e) if e.kind() == ErrorKind::ConflictSmaller => {
                let below = level.below().expect("above the base level");
                let size = Table::page_size(level).expect("an x86 level");
                let sub = Table::page_size(below).expect("an x86 level");
                for a in (addr..addr + size).step_by(sub as usize) {
                    self.update(a, below, rights, f);
                }
            }
            Err(e) => panic!("update {addr:#x} at {level}: {e}"),
        }
    }

    /// A new mapping for space `s`: a module page (4 KiB) in the heap for the
    /// kernel; a 4 KiB page, or one time in five a 2 MiB page, from a
    /// process's frames.
    fn new_mapping(&mut self, s: usize) -> Mapping {
        if s == 0 {
            let addr = self.rng.below(HEAP_END / PAGE) * PAGE;
            return Mapping { addr, level: L4K, rights: self.rng.pick(&[R, RX]) };
        }
        let (home, rights) = (self.spaces[s].home, self.rng.pick(&[R, RW, RX]));
        match self.rng.below(5) {
            0 => Mapping { addr: home + self.rng.below(2) * 2 * MIB, level: L2M, rights },
            _ => Mapping { addr: home + self.rng.below(4 * MIB / PAGE) * PAGE, level: L4K, rights },
        }
    }

    fn map(&mut self, s: usize, m: Mapping) {
        self.account(m, Counters::map);
        self.spaces[s].mappings.push(m);
        self.done[0] += 1;
    }

    fn unmap_all(&mut self, mappings: Vec<Mapping>) {
        for m in mappings {
            self.account(m, Counters::unmap);
            self.done[1] += 1;
        }
    }

    fn spawn(&mut self) {
        let home = USER + self.rng.below((4 * GIB - USER) / (2 * MIB) - 1) * 2 * MIB;
        self.spaces.push(Space { home, mappings: Vec::new() });
        let s = self.spaces.len() - 1;
        for i in 0..16 {
            self.map(s, Mapping { addr: LIBC + i * PAGE, level: L4K, rights: RX });
        }
        for _ in 0..8 + self.rng.below(24) {
            let m = self.new_mapping(s);
            self.map(s, m);
        }
        self.done[3] += 1;
    }

    /// One guest operation, chosen at random.
    fn step(&mut self) {
        let roll = self.rng.below(100);
        let processes = self.spaces.len() - 1;
        if roll < 2 && processes < MAX_PROCESSES {
            return self.spawn();
        }
        if roll < 4 && processes > 2 {
            let exiting = self.spaces.swap_remove(1 + self.rng.below(processes as u64) as usize);
            self.done[4] += 1;
            return self.unmap_all(exiting.mappings);
        }
        // The kernel (space 0) does a fifth of the work.
        let s = match self.rng.below(5) {
            0 => 0,
            _ => 1 + self.rng.below(processes as u64) as usize,
        };
        let n = self.spaces[s].mappings.len();
        if roll < 50 || n == 0 {
            let m = self.new_mapping(s);
            return self.map(s, m);
        }
        let i = self.rng.below(n as u64) as usize;
        if roll < 80 {
            let m = self.spaces[s].mappings.swap_remove(i);
            self.unmap_all(vec![m]);
        } else {
            // mprotect: the same page, new rights.
            let old = self.spaces[s].mappings[i];
            let new = Mapping { rights: self.rng.pick(&[R, RW, RX]), ..old };
            self.account(old, Counters::unmap);
            self.account(new, Counters::map);
            self.spaces[s].mappings[i] = new;
            self.done[2] += 1;
        }
    }

    /// Panics unless the table, the reference and the hypervisor agree.
    fn verify(&self, hv: &Hypervisor) {
        let mut pages = 0;
        for (page, c) in &self.table {
            for p in (page.addr()..=page.last()).step_by(PAGE as usize) {
                assert_eq!(self.reference.get(&p), Some(c), "counters of page {p:#x}");
                assert_eq!(hv.ept.get(&p), Some(&c.rights()), "rights sent for page {p:#x}");
            }
            pages += page.size() / PAGE;
        }
        assert_eq!(pages, self.reference.len() as u64, "pages tracked");
        assert_eq!(pages, hv.ept.len() as u64, "pages known to the hypervisor");
    }
}

fn main() {
    let mut guest = Guest::new(0x4845_4b49); // "HEKI"
    let mut hv = Hypervisor::default();
    // The picture: a row per 256 MiB, a cell per 8 MiB of guest memory.
    let view = OccupancyOptions::new().row_size(256 * MIB).cell_size(8 * MIB);
    println!("guest memory at boot, before compaction:\n{}", guest.table.occupancy_with(view));
    // Boot: the heap's 2 MiB entries merge into one 1 GiB entry.
    let mut merges = guest.table.compact_with(&mut guest.ops);
    hv.receive(guest.table.take_changes());
    for batch in 1..=BATCHES {
        for _ in 0..OPS_PER_BATCH {
            guest.step();
        }
        if batch % RMMOD_EVERY == RMMOD_EVERY / 2 {
            let modules = std::mem::take(&mut guest.spaces[0].mappings);
            guest.unmap_all(modules);
        }
        merges += guest.table.compact_with(&mut guest.ops);
        hv.receive(guest.table.take_changes());
        if batch % VERIFY_EVERY == 0 || batch == BATCHES {
            guest.verify(&hv);
        }
    }
    assert_eq!(merges, guest.ops.merges.iter().sum::<usize>());

    let (mut entries, mut by_rights) = ([0; 4], [0; 8]);
    for (page, c) in &guest.table {
        entries[page.level().index()] += 1;
        by_rights[c.rights().0 as usize] += page.size() / PAGE;
    }
    let rights: Vec<_> = (1..8)
        .filter(|&r| by_rights[r] > 0)
        .map(|r| format!("{} {}", Rights(r as u8), by_rights[r]))
        .collect();
    let stats = guest.table.stats();
    let nodes: Vec<_> = stats.levels().iter().map(|l| l.nodes.to_string()).collect();
    let (done, splits, merges) = (guest.done, guest.splits, guest.ops.merges);

    println!("heki_permissions: {BATCHES} batches of {OPS_PER_BATCH} guest operations");
    println!(
        "  guest     {} maps, {} unmaps, {} mprotects; {} processes started, {} exited",
        done[0], done[1], done[2], done[3], done[4]
    );
    println!(
        "  tracked   {} pages in {} entries: {} of 4 KiB, {} of 2 MiB, {} of 1 GiB",
        guest.reference.len(),
        guest.table.len(),
        entries[0],
        entries[1],
        entries[2]
    );
    println!("  rights    {} (pages)", rights.join(", "));
    println!(
        "  shape     {} splits of 1 GiB, {} of 2 MiB; {} merges into 1 GiB, {} into 2 MiB",
        splits[2], splits[1], merges[2], merges[1]
    );
    println!(
        "  changes   {} regions set ({} pages, {} regions with no new rights), {} cleared",
        hv.set, hv.set_pages, hv.set_same, hv.cleared
    );
    let reported = hv.set + hv.cleared;
    println!(
        "  minimal   {} of {} regions reported ({:.2} %) changed no page's counters",
        hv.noop,
        reported,
        100.0 * hv.noop as f64 / reported.max(1) as f64
    );
    println!(
        "  sent      {} pages whose rights changed (of {} page counter updates)",
        hv.sent, guest.updates
    );
    println!(
        "  memory    {} nodes (level 0 up: {}), {} KiB",
        stats.nodes(),
        nodes.join(" / "),
        stats.bytes() / 1024
    );
    println!("  verified  table == per-page reference == hypervisor's view");
    println!("guest memory after {BATCHES} batches:\n{}", guest.table.occupancy_with(view));
}
