//! The shipped geometries against `geometries/catalogue.txt`.
//!
//! - Every type in `mem_table::geometries` has a catalogue entry and every
//!   entry a type: the catalogue, the module's source and the `shipped()`
//!   list below must name the same set.
//! - Every type's constants and per-level answers match its entry.
//! - Every entry is consistent with itself (its address width and entry
//!   sizes follow from its page shift and widths).
//! - Every type works as a table: base pages at both ends of the address
//!   space, a large entry at every level that may hold one (split and merged
//!   back), refusals at levels that may not, and `OutOfReach` at the reach.

use std::collections::BTreeSet;

use mem_table::geometries::{
    Aarch64_4K, Aarch64_16K, Aarch64_64K, RiscvSv39, RiscvSv48, RiscvSv57, X86_4Level, X86_5Level, X86_32Bit,
    X86Pae,
};
use mem_table::{ErrorKind, Geometry, Level, MemTable};

/// The catalogue, as shipped.
const CATALOGUE: &str = include_str!("../geometries/catalogue.txt");

/// The module that declares the shipped types, read to find every type it
/// declares.
const MODULE_SOURCE: &str = include_str!("../src/geometries.rs");

// ---------------------------------------------------------------------------
// The catalogue
// ---------------------------------------------------------------------------

/// One `[Name]` entry of the catalogue.
#[derive(Debug)]
struct Entry {
    /// The type's name in `mem_table::geometries`.
    name: String,
    /// The line of `[Name]`, for messages.
    line: usize,
    page_shift: u32,
    /// Index bits per level, bottom first.
    widths: Vec<u32>,
    /// Levels above 0 that may hold large entries, ascending.
    large: Vec<usize>,
    address_bits: u32,
    /// Entry size at level 0 and at every large level, bottom first.
    entry_sizes: Vec<u64>,
    /// The manual's name of every level, bottom first.
    names: Vec<String>,
    source: String,
}

/// The fields an entry must have, each exactly once; `note` may repeat.
const FIELDS: [&str; 7] = ["page_shift", "widths", "large", "address_bits", "entry_sizes", "names", "source"];

/// Parses the catalogue format (see `geometries/README.md`). Errors name the
/// line.
fn parse(text: &str) -> Result<Vec<Entry>, String> {
    /// An entry being read: its name, line and `(key, line, value)` fields.
    type Raw<'a> = (&'a str, usize, Vec<(&'a str, usize, &'a str)>);
    let mut raws: Vec<Raw<'_>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("line {n}: bad entry name {name:?}"));
            }
            raws.push((name, n, Vec::new()));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or(format!("line {n}: expected `key = value`"))?;
        let (key, value) = (key.trim(), value.trim());
        let Some((_, _, fields)) = raws.last_mut() else {
            return Err(format!("line {n}: `{key}` before the first [entry]"));
        };
        if key != "note" && !FIELDS.contains(&key) {
            return Err(format!("line {n}: unknown key `{key}`"));
        }
        if key != "note" && fields.iter().any(|&(k, _, _)| k == key) {
            return Err(format!("line {n}: `{key}` given twice"));
        }
        fields.push((key, n, value));
    }

    let mut entries = Vec::new();
    for (name, line, fields) in raws {
        let get = |key: &str| {
            fields
                .iter()
                .find(|&&(k, _, _)| k == key)
                .map(|&(_, n, v)| (n, v))
                .ok_or(format!("line {line}: [{name}] has no `{key}`"))
        };
        let number = |key: &str| -> Result<u32, String> {
            let (n, v) = get(key)?;
            v.parse().map_err(|_| format!("line {n}: `{key}` is not a number: {v:?}"))
        };
        let list = |key: &str| -> Result<Vec<u32>, String> {
            let (n, v) = get(key)?;
            if v == "-" {
                return Ok(Vec::new());
            }
            v.split_whitespace()
                .map(|w| w.parse().map_err(|_| format!("line {n}: `{key}`: not a number: {w:?}")))
                .collect()
        };
        let sizes = {
            let (n, v) = get("entry_sizes")?;
            v.split_whitespace()
                .map(|w| parse_size(w).ok_or(format!("line {n}: not a size: {w:?}")))
                .collect::<Result<Vec<_>, _>>()?
        };
        entries.push(Entry {
            name: name.to_string(),
            line,
            page_shift: number("page_shift")?,
            widths: list("widths")?,
            large: list("large")?.into_iter().map(|l| l as usize).collect(),
            address_bits: number("address_bits")?,
            entry_sizes: sizes,
            names: get("names")?.1.split_whitespace().map(str::to_string).collect(),
            source: get("source")?.1.to_string(),
        });
    }
    Ok(entries)
}

/// `4KiB` -> 4096. Binary units from KiB to PiB.
fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    let shift = match unit {
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        "TiB" => 40,
        "PiB" => 50,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn catalogue() -> Vec<Entry> {
    parse(CATALOGUE).unwrap_or_else(|e| panic!("geometries/catalogue.txt: {e}"))
}

// ---------------------------------------------------------------------------
// What a geometry says about itself
// ---------------------------------------------------------------------------

/// Everything [`Geometry`] answers about a geometry, through its public API.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    page_shift: u32,
    levels: usize,
    /// `TOP`.
    top: Level,
    address_bits: u32,
    entry_levels: u32,
    /// `page_shift(level)` for every level, and one past the top.
    page_shifts: Vec<Option<u32>>,
    /// `page_size(level)` for every level, and one past the top.
    page_sizes: Vec<Option<u64>>,
    /// `holds_entries(level)` for every level, and one past the top.
    holds: Vec<bool>,
}

/// The shape geometry `G` reports.
fn shape_of<G: Geometry>() -> Shape {
    let levels = (0..=G::LEVELS as u8).map(Level::new);
    Shape {
        page_shift: G::PAGE_SHIFT,
        levels: G::LEVELS,
        top: G::TOP,
        address_bits: G::ADDRESS_BITS,
        entry_levels: G::ENTRY_LEVELS,
        page_shifts: levels.clone().map(G::page_shift).collect(),
        page_sizes: levels.clone().map(G::page_size).collect(),
        holds: levels.map(G::holds_entries).collect(),
    }
}

/// The shape a catalogue entry describes, worked out from its page shift,
/// widths and large levels only.
fn shape_from(e: &Entry) -> Shape {
    let mut shifts = Vec::new();
    let mut shift = e.page_shift;
    for &w in &e.widths {
        shifts.push(shift);
        shift += w;
    }
    let holds = |l: usize| l == 0 || e.large.contains(&l);
    let levels = e.widths.len();
    Shape {
        page_shift: e.page_shift,
        levels,
        top: Level::new(levels as u8 - 1),
        address_bits: shift,
        entry_levels: (0..levels).filter(|&l| holds(l)).map(|l| 1 << l).sum(),
        page_shifts: shifts.iter().copied().map(Some).chain([None]).collect(),
        page_sizes: shifts.iter().map(|&s| Some(1u64 << s)).chain([None]).collect(),
        holds: (0..levels).map(holds).chain([false]).collect(),
    }
}

// ---------------------------------------------------------------------------
// The shipped types
// ---------------------------------------------------------------------------

/// One shipped type: its name and its checks, monomorphised.
struct Shipped {
    name: &'static str,
    shape: fn() -> Shape,
    exercise: fn(),
}

/// Binds a type to its own name, so the two cannot drift apart.
macro_rules! shipped {
    ($g:ident) => {
        Shipped { name: stringify!($g), shape: shape_of::<$g>, exercise: exercise::<$g> }
    };
}

/// Every type in `mem_table::geometries`.
fn shipped() -> [Shipped; 10] {
    [
        shipped!(X86_4Level),
        shipped!(X86_5Level),
        shipped!(X86_32Bit),
        shipped!(X86Pae),
        shipped!(Aarch64_4K),
        shipped!(Aarch64_16K),
        shipped!(Aarch64_64K),
        shipped!(RiscvSv39),
        shipped!(RiscvSv48),
        shipped!(RiscvSv57),
    ]
}

/// The type names `src/geometries.rs` declares: `pub type Name` and
/// `pub use crate::geometry::Name;` lines.
fn declared_in_module() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in MODULE_SOURCE.lines() {
        let rest = line.strip_prefix("pub type ").or_else(|| line.strip_prefix("pub use crate::geometry::"));
        if let Some(rest) = rest {
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            assert!(!name.is_empty(), "src/geometries.rs: cannot read a name in {line:?}");
            assert!(names.insert(name.clone()), "src/geometries.rs declares {name} twice");
        }
    }
    names
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn catalogue_module_and_tests_name_the_same_types() {
    let entries = catalogue();
    let mut in_catalogue = BTreeSet::new();
    for e in &entries {
        assert!(in_catalogue.insert(e.name.clone()), "catalogue line {}: [{}] given twice", e.line, e.name);
    }
    let in_module = declared_in_module();
    let in_tests: BTreeSet<String> = shipped().iter().map(|s| s.name.to_string()).collect();

    let missing = |from: &BTreeSet<String>, to: &BTreeSet<String>| -> Vec<String> {
        from.difference(to).cloned().collect()
    };
    assert!(
        missing(&in_module, &in_catalogue).is_empty(),
        "shipped without a catalogue entry: {:?}",
        missing(&in_module, &in_catalogue)
    );
    assert!(
        missing(&in_catalogue, &in_module).is_empty(),
        "catalogue entries with no type in src/geometries.rs: {:?}",
        missing(&in_catalogue, &in_module)
    );
    assert!(
        missing(&in_module, &in_tests).is_empty(),
        "shipped but not checked here (add them to `shipped()`): {:?}",
        missing(&in_module, &in_tests)
    );
    assert_eq!(in_tests, in_module, "`shipped()` names a type the module does not declare");
}

#[test]
fn every_entry_is_consistent() {
    for e in catalogue() {
        let at = format!("catalogue line {}: [{}]", e.line, e.name);
        let levels = e.widths.len();
        assert!((1..=mem_table::geometry::MAX_LEVELS).contains(&levels), "{at}: {levels} levels");
        assert!(
            e.widths.iter().all(|&w| (1..=mem_table::geometry::MAX_LEVEL_BITS).contains(&w)),
            "{at}: a level width out of range"
        );
        assert!(e.large.windows(2).all(|w| w[0] < w[1]), "{at}: `large` not ascending");
        assert!(
            e.large.iter().all(|&l| (1..levels).contains(&l)),
            "{at}: `large` names a level out of range"
        );
        let shape = shape_from(&e);
        assert_eq!(e.address_bits, shape.address_bits, "{at}: address_bits is not page_shift + sum(widths)");
        let sizes: Vec<u64> =
            (0..levels).filter(|&l| shape.holds[l]).map(|l| shape.page_sizes[l].unwrap()).collect();
        assert_eq!(e.entry_sizes, sizes, "{at}: entry_sizes do not follow from the widths and large levels");
        assert_eq!(e.names.len(), levels, "{at}: one name per level");
        assert!(e.source.len() > 10, "{at}: no source");
    }
}

#[test]
fn every_shipped_type_matches_its_entry() {
    let entries = catalogue();
    for s in shipped() {
        let e =
            entries.iter().find(|e| e.name == s.name).unwrap_or_else(|| panic!("no entry for {}", s.name));
        let actual = (s.shape)();
        assert_eq!(actual, shape_from(e), "{} differs from catalogue line {}", s.name, e.line);
        assert_eq!(actual.address_bits, e.address_bits, "{}", s.name);
        assert_eq!(actual.page_shift, e.page_shift, "{}", s.name);
    }
}

#[test]
fn every_shipped_type_works_as_a_table() {
    for s in shipped() {
        // Miri takes seconds per table of thousands of slots: there, only
        // the geometries of at most three levels of at most 10 bits, which
        // still cover odd widths, a tables-only top and a large-entry top.
        if cfg!(miri) && !small(&(s.shape)()) {
            continue;
        }
        (s.exercise)();
    }
}

/// Whether a geometry is cheap enough for Miri.
fn small(shape: &Shape) -> bool {
    let shifts: Vec<u32> = shape.page_shifts.iter().flatten().copied().chain([shape.address_bits]).collect();
    shape.levels <= 3 && shifts.windows(2).all(|w| w[1] - w[0] <= 10)
}

/// A table of geometry `G` at work: the ends of the address space, a large
/// entry at every level that may hold one, and every level that may not.
fn exercise<G: Geometry>() {
    assert!(G::ADDRESS_BITS < 64, "the checks below compute 2^ADDRESS_BITS");
    let reach = 1u64 << G::ADDRESS_BITS;
    let base = 1u64 << G::PAGE_SHIFT;

    // Base pages at address 0 and at the last page of the address space.
    let mut t: MemTable<u32, G> = MemTable::new();
    assert_eq!(t.insert(0, 1).unwrap(), None);
    assert_eq!(t.insert(reach - base, 2).unwrap(), None);
    assert_eq!(t.get(base - 1), Some(&1));
    assert_eq!(t.get(base), None);
    let (page, v) = t.get_key_value(reach - 1).unwrap();
    assert_eq!((page.addr(), page.level(), page.size(), *v), (reach - base, Level::BASE, base, 2));
    assert_eq!(t.get(reach), None);

    // The reach: refused, the value handed back, the table unchanged.
    let err = t.insert(reach, 3).unwrap_err();
    assert_eq!((err.kind(), err.addr()), (ErrorKind::OutOfReach, reach));
    assert_eq!(err.into_value(), 3);
    // The last base page of the 64-bit space, far beyond the reach.
    assert_eq!(t.insert(!(base - 1), 4).unwrap_err().kind(), ErrorKind::OutOfReach);
    let keys: Vec<_> = t.keys().map(|p| (p.addr(), p.level())).collect();
    assert_eq!(keys, [(0, Level::BASE), (reach - base, Level::BASE)]);
    t.check_invariants().unwrap();

    // Removing both frees every table but the root.
    assert_eq!(t.remove_covering(reach - base).map(|(p, v)| (p.addr(), v)), Some((reach - base, 2)));
    assert_eq!(t.remove_covering(0).map(|(_, v)| v), Some(1));
    assert!(t.is_empty());
    assert_eq!(t.stats().nodes(), 1);
    t.check_invariants().unwrap();

    for l in 1..G::LEVELS as u8 {
        large_level::<G>(Level::new(l));
    }

    // Past the top there are no entries.
    let past = Level::new(G::LEVELS as u8);
    let mut t: MemTable<u32, G> = MemTable::new();
    assert_eq!(t.insert_at(0, past, 1).unwrap_err().kind(), ErrorKind::NoEntriesAtLevel);

    // A range two of the largest entries and one base page long is covered
    // by exactly that.
    let largest = (0..G::LEVELS as u8).rev().map(Level::new).find(|&l| G::holds_entries(l)).unwrap();
    let size = G::page_size(largest).unwrap();
    if 2 * size + base <= reach {
        t.insert_range(0..2 * size + base, 7).unwrap();
        let keys: Vec<_> = t.keys().map(|p| (p.addr(), p.level())).collect();
        assert_eq!(keys, [(0, largest), (size, largest), (2 * size, Level::BASE)]);
        t.check_invariants().unwrap();
    }
}

/// Entries of `level` (above 0) in a table of geometry `G`: at both ends of
/// the address space if the level may hold them, refused if not.
fn large_level<G: Geometry>(level: Level) {
    let reach = 1u64 << G::ADDRESS_BITS;
    let base = 1u64 << G::PAGE_SHIFT;
    let size = G::page_size(level).unwrap();
    let mut t: MemTable<u32, G> = MemTable::new();

    if !G::holds_entries(level) {
        let err = t.insert_at(0, level, 1).unwrap_err();
        assert_eq!((err.kind(), err.level()), (ErrorKind::NoEntriesAtLevel, level));
        assert_eq!(t.split(0, level).unwrap_err().kind(), ErrorKind::NoEntriesAtLevel);
        assert!(t.is_empty());
        return;
    }

    assert_eq!(t.insert_at(0, level, 1).unwrap(), None);
    assert_eq!(t.insert_at(reach - size, level, 2).unwrap(), None);
    let (page, v) = t.get_key_value(size - 1).unwrap();
    assert_eq!((page.addr(), page.level(), page.size(), *v), (0, level, size, 1));
    let (page, v) = t.get_key_value(reach - 1).unwrap();
    assert_eq!((page.addr(), page.level(), page.size(), *v), (reach - size, level, size, 2));
    if reach - size > size {
        assert_eq!(t.get(size), None);
    }

    // A base page inside a large entry conflicts with it; a misaligned or
    // out-of-reach large entry is refused.
    let err = t.insert(base, 3).unwrap_err();
    assert_eq!((err.kind(), err.addr(), err.level()), (ErrorKind::ConflictLarger, 0, level));
    assert_eq!(t.insert_at(base, level, 4).unwrap_err().kind(), ErrorKind::Misaligned);
    assert_eq!(t.insert_at(reach, level, 5).unwrap_err().kind(), ErrorKind::OutOfReach);
    assert_eq!(t.len(), 2);
    t.check_invariants().unwrap();

    // Split into the level below (if it holds entries) and merge back.
    let below = level.below().unwrap();
    if G::holds_entries(below) {
        t.split(0, level).unwrap();
        let fanout = (size / G::page_size(below).unwrap()) as usize;
        assert_eq!(t.len(), 1 + fanout);
        let (page, v) = t.get_key_value(size - 1).unwrap();
        assert_eq!((page.level(), page.size(), *v), (below, G::page_size(below).unwrap(), 1));
        t.check_invariants().unwrap();
        t.merge(0, level).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.get_key_value(0).unwrap().0.level(), level);
    } else {
        assert_eq!(t.split(0, level).unwrap_err().kind(), ErrorKind::NoEntriesAtLevel);
    }
    t.check_invariants().unwrap();
}

// ---------------------------------------------------------------------------
// Named levels
// ---------------------------------------------------------------------------

/// The named levels of one shipped type: `(name, level, size)`, bottom first.
struct Named {
    name: &'static str,
    levels: Vec<(&'static str, Level, u64)>,
    /// `MemTable::<u8, G>::page_size`, `G::holds_entries` and
    /// `G::level_for_size` for every named level.
    answers: fn(Level, u64) -> Answers,
}

/// `page_size(level)`, `holds_entries(level)` and `level_for_size(size)`.
type Answers = (Option<u64>, bool, Option<Level>);

/// The answers of geometry `G` about a level and a size.
fn answers<G: Geometry>(level: Level, size: u64) -> Answers {
    (MemTable::<u8, G>::page_size(level), G::holds_entries(level), G::level_for_size(size))
}

/// `named!(G: L4K = 4 << 10, ...)`: the named levels of `G` with the size
/// each stands for.
macro_rules! named {
    ($g:ident: $($l:ident = $size:expr),+ $(,)?) => {
        Named {
            name: stringify!($g),
            levels: vec![$((stringify!($l), $g::$l, $size)),+],
            answers: answers::<$g>,
        }
    };
}

/// Every shipped type's named levels, bottom first.
fn named_levels() -> Vec<Named> {
    vec![
        named!(X86_4Level: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30),
        named!(X86_5Level: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30),
        named!(X86_32Bit: L4K = 4 << 10, L4M = 4 << 20),
        named!(X86Pae: L4K = 4 << 10, L2M = 2 << 20),
        named!(Aarch64_4K: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30),
        named!(Aarch64_16K: L16K = 16 << 10, L32M = 32 << 20),
        named!(Aarch64_64K: L64K = 64 << 10, L512M = 512 << 20),
        named!(RiscvSv39: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30),
        named!(RiscvSv48: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30, L512G = 512 << 30),
        named!(RiscvSv57: L4K = 4 << 10, L2M = 2 << 20, L1G = 1 << 30, L512G = 512 << 30, L256T = 256 << 40),
    ]
}

/// `4096` -> `4K`, `2 << 20` -> `2M`: the size part of a level's name.
fn size_name(size: u64) -> String {
    let units = [(40, 'T'), (30, 'G'), (20, 'M'), (10, 'K')];
    let &(shift, unit) = units.iter().find(|&&(shift, _)| size % (1 << shift) == 0).expect("a size in KiB");
    format!("{}{unit}", size >> shift)
}

#[test]
fn named_levels_have_their_sizes() {
    for n in named_levels() {
        for &(name, level, size) in &n.levels {
            let at = format!("{}::{name}", n.name);
            let (page_size, holds, by_size) = (n.answers)(level, size);
            assert_eq!(page_size, Some(size), "{at}: page size");
            assert!(holds, "{at}: the level holds no entries");
            assert_eq!(by_size, Some(level), "{at}: level_for_size({size})");
            assert_eq!(name, format!("L{}", size_name(size)), "{at}: the name does not say the size");
        }
        assert!(n.levels.windows(2).all(|w| w[0].1 < w[1].1), "{}: not bottom first", n.name);
        assert_eq!(n.levels[0].1, Level::BASE, "{}: the base level is not named", n.name);
    }
}

#[test]
fn named_levels_are_the_catalogue_entry_sizes() {
    let entries = catalogue();
    let named = named_levels();
    let names: BTreeSet<&str> = named.iter().map(|n| n.name).collect();
    let shipped: BTreeSet<&str> = shipped().iter().map(|s| s.name).collect();
    assert_eq!(names, shipped, "`named_levels()` and `shipped()` name different types");
    for n in named {
        let e = entries.iter().find(|e| e.name == n.name).unwrap();
        let sizes: Vec<u64> = n.levels.iter().map(|&(_, _, size)| size).collect();
        assert_eq!(sizes, e.entry_sizes, "{}: one name per entry size of catalogue line {}", n.name, e.line);
    }
}

#[test]
fn named_levels_work_in_a_table() {
    let mut t: MemTable<&str, RiscvSv48> = MemTable::new();
    t.insert_at(0, RiscvSv48::L512G, "terapage").unwrap();
    t.insert_at(512 << 30, RiscvSv48::L1G, "gigapage").unwrap();
    t.split(512 << 30, RiscvSv48::L1G).unwrap();
    assert_eq!(t.get_key_value(512 << 30).unwrap().0.level(), RiscvSv48::L2M);
    t.merge(512 << 30, RiscvSv48::L1G).unwrap();
    let levels: Vec<Level> = t.keys().map(|p| p.level()).collect();
    assert_eq!(levels, [RiscvSv48::L512G, RiscvSv48::L1G]);
    assert_eq!(RiscvSv48::TOP, RiscvSv48::L512G);
    assert_eq!(X86_4Level::TOP, Level::new(3));
    assert_eq!(X86_4Level::level_for_size(512 << 30), None, "a PML4E maps no page");
    assert_eq!(X86_32Bit::level_for_size(2 << 20), None);
}

// ---------------------------------------------------------------------------
// The parser itself
// ---------------------------------------------------------------------------

/// A well-formed entry, to break one line at a time.
const GOOD: &str = "\
# comment
[Tiny]
page_shift   = 12
widths       = 3 3
large        = -
address_bits = 18
entry_sizes  = 4KiB
names        = A B
source       = nowhere in particular
note         = one
note         = two
";

#[test]
fn parser_reads_a_good_entry() {
    let entries = parse(GOOD).unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!((e.name.as_str(), e.line, e.page_shift, e.address_bits), ("Tiny", 2, 12, 18));
    assert_eq!((e.widths.as_slice(), e.large.as_slice()), (&[3, 3][..], &[][..]));
    assert_eq!(e.entry_sizes, [4096]);
    assert_eq!(shape_from(e).entry_levels, 1);
    assert_eq!(parse_size("256TiB"), Some(256 << 40));
    assert_eq!(parse_size("4kB"), None);
}

#[test]
fn parser_rejects_broken_entries() {
    let broken = [
        (GOOD.replace("page_shift   = 12\n", ""), "has no `page_shift`"),
        (GOOD.replace("large ", "larg "), "unknown key `larg`"),
        (GOOD.replace("names", "widths"), "`widths` given twice"),
        (GOOD.replace("= 4KiB", "= 4 KiB"), "not a size"),
        (GOOD.replace("[Tiny]", "[Ti ny]"), "bad entry name"),
        (GOOD.replace("widths       =", "widths"), "expected `key = value`"),
        (GOOD.replace("[Tiny]\n", ""), "before the first [entry]"),
    ];
    for (text, expected) in broken {
        let err = parse(&text).unwrap_err();
        assert!(err.contains(expected), "{err:?} does not say {expected:?}");
    }
}
