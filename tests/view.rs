//! Looking at a table: `Debug`, `Stats`, the occupancy picture.

use std::collections::{BTreeMap, BTreeSet};

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometries::{RiscvSv39, X86_32Bit};
use mem_table::geometry::{Custom, Geometry, Large};
use mem_table::typenum::{U3, U12};
use mem_table::{Level, MemTable, OccupancyOptions, Stats};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

// ---- Debug -----------------------------------------------------------------

#[test]
fn debug_of_a_small_table_is_the_whole_map() {
    let mut t: MemTable<&str> = MemTable::new();
    assert_eq!(format!("{t:?}"), "{}");
    t.insert(0x3000, "c").unwrap();
    t.insert(0x1000, "a").unwrap();
    t.insert_at(0x4000_0000, Level::new(2), "g").unwrap();
    t.insert_at(0x20_0000, Level::new(1), "m").unwrap();
    assert_eq!(format!("{t:?}"), r#"{0x1000@L0: "a", 0x3000@L0: "c", 0x200000@L1: "m", 0x40000000@L2: "g"}"#);
    assert_eq!(
        format!("{t:#?}"),
        "{\n    0x1000@L0: \"a\",\n    0x3000@L0: \"c\",\n    0x200000@L1: \"m\",\n    0x40000000@L2: \"g\",\n}"
    );

    // Sixteen entries are still printed in full; the seventeenth makes a summary.
    let mut t: MemTable<u8> = (0..16u64).map(|i| (i << 12, i as u8)).collect();
    let full = format!("{t:?}");
    assert!(full.starts_with("{0x0@L0: 0, 0x1000@L0: 1, "), "{full}");
    assert_eq!(full.matches("@L0").count(), 16);
    t.insert(16 << 12, 16).unwrap();
    assert!(format!("{t:?}").starts_with("MemTable { len: 17, "));
}

#[test]
fn debug_of_a_big_table_is_a_short_summary() {
    let n = 100_000u64;
    let t: MemTable<u64> = (0..n).map(|i| (i << 12, i)).collect();
    let s = format!("{t:?}");
    assert!(s.len() < 2048, "{} bytes: {s}", s.len());
    assert!(
        s.starts_with("MemTable { len: 100000, levels: [L0: 100000 entries, 196 tables, fill 99.6 %, "),
        "{s}"
    );
    // 196 bottom tables under one level-1 table: 196 of its 512 slots.
    assert!(s.contains("; L1: 0 entries, 1 table, fill 38.2 %, "), "{s}");
    assert!(s.contains("; L3: 1 table, fill 0.1 %, "), "{s}");
    assert!(s.contains("first: {0x0@L0: 0, 0x1000@L0: 1, 0x2000@L0: 2}"), "{s}");
    assert!(s.contains("last: {0x1869d000@L0: 99997, 0x1869e000@L0: 99998, 0x1869f000@L0: 99999} }"), "{s}");

    let full = format!("{t:#?}");
    assert_eq!(full.lines().count() as u64, n + 2);
    let mut want = String::from("{\n");
    for i in 0..n {
        want.push_str(&format!("    {:#x}@L0: {i},\n", i << 12));
    }
    want.push('}');
    assert!(full == want, "the alternate form is not every entry in order");
}

// ---- Stats -----------------------------------------------------------------

/// A small deterministic generator (an LCG), so that tests need no crate.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 16
    }
}

/// Entries, tables, used slots and slots per level, worked out from the
/// entries alone (iteration), not from the tables.
fn expected<V, G: Geometry, B: Backend>(t: &MemTable<V, G, B>) -> Vec<[usize; 4]> {
    let levels = G::LEVELS;
    let shift = |l: usize| G::page_shift(Level::new(l as u8)).unwrap();
    let mut entries = vec![0usize; levels];
    // The regions of each level's tables that hold something: a table at
    // level `l` covers one page of level `l + 1`.
    let mut tables: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); levels];
    for (page, _) in t.iter() {
        let l = page.level().index();
        entries[l] += 1;
        for (k, set) in tables.iter_mut().enumerate().take(levels - 1).skip(l) {
            set.insert(page.addr() >> shift(k + 1));
        }
    }
    let mut out = Vec::new();
    for l in 0..levels {
        let n_tables = if l == levels - 1 { 1 } else { tables[l].len() };
        let children = if l == 0 { 0 } else { tables[l - 1].len() };
        let span = if l == levels - 1 { G::ADDRESS_BITS } else { shift(l + 1) };
        let fanout = 1usize << (span - shift(l));
        out.push([entries[l], n_tables, entries[l] + children, n_tables * fanout]);
    }
    out
}

fn check_stats<V, G: Geometry, B: Backend>(t: &MemTable<V, G, B>, what: &str) {
    let s: Stats = t.stats();
    let want = expected(t);
    for (l, (got, want)) in s.levels().iter().zip(&want).enumerate() {
        assert_eq!([got.entries, got.nodes, got.used, got.slots], *want, "{what}: level {l}: {got:?}");
        assert_eq!(got.page_size, G::page_size(Level::new(l as u8)).unwrap(), "{what}: level {l}");
        assert_eq!(got.holds_entries, G::holds_entries(Level::new(l as u8)), "{what}: level {l}");
        let fill = if want[3] == 0 { 0.0 } else { want[2] as f64 / want[3] as f64 };
        assert!((got.fill() - fill).abs() < 1e-12, "{what}: level {l}: fill {} != {fill}", got.fill());
    }
    assert_eq!(s.levels().len(), G::LEVELS);
    assert_eq!(s.entries(), t.len(), "{what}");
    let large = t.keys().filter(|p| p.level() > Level::BASE).count();
    assert_eq!(s.large_entries(), large, "{what}");
    let used: usize = want.iter().map(|w| w[2]).sum();
    let slots: usize = want.iter().map(|w| w[3]).sum();
    assert!((s.fill() - used as f64 / slots as f64).abs() < 1e-12, "{what}");
    let text = s.to_string();
    assert_eq!(text.lines().count(), G::LEVELS + 2, "{what}: {text}");
    assert!(text.ends_with(&format!("  ({large} large)")), "{what}: {text}");
}

/// A table of scattered 4 KiB, 2 MiB and 1 GiB entries (some of them
/// refused as conflicts), then some removed.
fn mixed<B: Backend>(backend: B, what: &str) {
    let mut t: MemTable<u32, mem_table::X86_4Level, B> = MemTable::with_backend(backend);
    check_stats(&t, what);
    let mut rng = Lcg(7);
    for i in 0..3000u32 {
        // Mostly inside the first 8 GiB, so that entries share tables; some
        // far away.
        let far = rng.next() % 8 == 0;
        let space = if far { 1u64 << 47 } else { 8 * GIB };
        let addr = rng.next() % space;
        let (level, size) = match rng.next() % 10 {
            0 => (2, GIB),
            1..=3 => (1, 2 * MIB),
            _ => (0, 4096),
        };
        let _ = t.insert_at(addr & !(size - 1), Level::new(level), i);
    }
    let counts = expected(&t);
    assert!(
        counts[0][0] > 1000 && counts[1][0] > 100 && counts[2][0] > 10,
        "{what}: layout too thin: {counts:?}"
    );
    check_stats(&t, what);
    // Remove every third entry: tables are freed as they empty.
    let pages: Vec<_> = t.keys().collect();
    for p in pages.iter().step_by(3) {
        t.remove_at(p.addr(), p.level()).unwrap();
    }
    check_stats(&t, &format!("{what} after removals"));
    t.clear();
    check_stats(&t, &format!("{what} cleared"));
    assert_eq!(t.stats().level(3).used, 0);
}

#[test]
fn stats_count_entries_large_entries_and_fill_on_every_backend() {
    mixed(Heap, "heap");
    mixed(Arena, "arena");
    mixed(Pool::new(4096), "pool");
}

#[test]
fn stats_on_other_geometries() {
    type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
    let mut t: MemTable<u8, Tiny> = MemTable::new();
    t.insert(0x1000, 1).unwrap();
    t.insert_at(0x8000, Level::new(1), 2).unwrap();
    t.insert(0x10_0000, 3).unwrap();
    check_stats(&t, "tiny");
    let s = t.stats();
    // Level 0: two tables of 8 slots, one entry each; level 1: two tables,
    // one holding a link and a large entry; the root: two links of 8.
    assert_eq!([s.level(0).used, s.level(0).slots], [2, 16]);
    assert_eq!([s.level(1).entries, s.level(1).used, s.level(1).slots], [1, 3, 16]);
    assert_eq!([s.level(2).used, s.level(2).slots], [2, 8]);

    let mut t: MemTable<u8, RiscvSv39> = MemTable::new();
    t.insert_range(0x8000_0000..0x1_0000_0000, 1).unwrap();
    t.insert_range(0x8020_0000..0x8040_1000, 2).unwrap();
    check_stats(&t, "sv39");
}

// ---- Occupancy -------------------------------------------------------------

/// Rows of 16 MiB, cells of 2 MiB: eight cells a row.
fn small_grid() -> OccupancyOptions {
    OccupancyOptions::new().row_size(16 * MIB).cell_size(2 * MIB).max_rows(4)
}

/// The layout the golden pictures are drawn from.
fn layout() -> MemTable<u8> {
    let mut t: MemTable<u8> = MemTable::new();
    let pages = |t: &mut MemTable<u8>, from: u64, n: u64| {
        for i in 0..n {
            t.insert(from + (i << 12), 0).unwrap();
        }
    };
    // Row 0 (0 .. 16 MiB), cells of 512 pages:
    pages(&mut t, 0, 128); //                   cell 0: 128 pages, 25 %
    pages(&mut t, 2 * MIB, 256); //             cell 1: 50 %
    pages(&mut t, 4 * MIB + 0x1000, 257); //    cell 2: 257 pages, just over 50 %
    t.insert_at(6 * MIB, Level::new(1), 1).unwrap(); // cell 3: a 2 MiB entry
    pages(&mut t, 8 * MIB + 0x8_0000, 384); //  cell 4: 75 %, its last 1.5 MiB
    pages(&mut t, 10 * MIB, 512); //            cell 5: full
    pages(&mut t, 14 * MIB + 0x1f_f000, 1); //  cell 7: its last page
    // Row 1 (16 .. 32 MiB): one page in the last cell.
    pages(&mut t, 32 * MIB - 0x1000, 1);
    // Rows 64 .. 127: a 1 GiB entry, sixty-four rows of 16 MiB.
    t.insert_at(GIB, Level::new(2), 2).unwrap();
    t
}

#[test]
fn occupancy_of_a_known_layout() {
    let t = layout();
    let o = t.occupancy_with(small_grid());
    assert_eq!((o.row_size(), o.cell_size(), o.pages_per_cell()), (16 * MIB, 2 * MIB, 512));
    assert_eq!((o.rows().len(), o.total_rows(), o.hidden_rows()), (4, 66, 62));
    let golden = "\
66 rows of 16 MiB hold entries; a cell is 2 MiB (512 pages of 4 KiB)
0x0000_0000_0000 |░▒▓L▓█ ░|
0x0000_0100_0000 |       ░|
...
0x0000_4000_0000 |LLLLLLLL|
0x0000_4100_0000 |LLLLLLLL|
... 62 more rows
' ' empty, ░ up to 25 %, ▒ up to 50 %, ▓ up to 75 %, █ over 75 % of a cell's pages in use; L a large entry";
    assert_eq!(o.to_string(), golden);

    let ascii = t.occupancy_with(small_grid().ascii(true)).to_string();
    let golden_ascii = "\
66 rows of 16 MiB hold entries; a cell is 2 MiB (512 pages of 4 KiB)
0x0000_0000_0000 |.:+L+# .|
0x0000_0100_0000 |       .|
...
0x0000_4000_0000 |LLLLLLLL|
0x0000_4100_0000 |LLLLLLLL|
... 62 more rows
' ' empty, . up to 25 %, : up to 50 %, + up to 75 %, # over 75 % of a cell's pages in use; L a large entry";
    assert_eq!(ascii, golden_ascii);

    let pages: Vec<u64> = o.rows()[0].cells().iter().map(|c| c.pages()).collect();
    assert_eq!(pages, [128, 256, 257, 512, 384, 512, 0, 1]);
    let large: Vec<bool> = o.rows()[0].cells().iter().map(|c| c.large()).collect();
    assert_eq!(large, [false, false, false, true, false, false, false, false]);
    assert!(o.rows()[2].cells().iter().all(|c| c.large() && c.pages() == 512));
    assert_eq!(o.rows()[2].addr(), GIB);

    // With room for every row, the whole gigabyte shows.
    let all = t.occupancy_with(small_grid().max_rows(100));
    assert_eq!((all.rows().len(), all.hidden_rows()), (66, 0));
    assert_eq!(all.rows().last().unwrap().addr(), 2 * GIB - 16 * MIB);
    assert!(!all.to_string().contains("more rows"));
    // Cells larger than a 2 MiB entry are still marked large.
    let coarse = t.occupancy_with(small_grid().cell_size(16 * MIB));
    assert_eq!(coarse.to_string().lines().nth(1), Some("0x0000_0000_0000 |L|"));
    assert_eq!(coarse.rows()[0].cells()[0].pages(), 128 + 256 + 257 + 512 + 384 + 512 + 1);
}

#[test]
fn occupancy_defaults_follow_the_geometry() {
    let t: MemTable<u8> = [(0x1000, 1)].into_iter().collect();
    let o = t.occupancy();
    assert_eq!((o.row_size(), o.cell_size()), (GIB, 2 * MIB));
    assert_eq!(o.rows()[0].cells().len(), 512);

    let t: MemTable<u8, X86_32Bit> = [(0xffff_f000, 1)].into_iter().collect();
    let o = t.occupancy();
    // Two levels: one row for the whole 4 GiB, cells of 4 MiB.
    assert_eq!((o.row_size(), o.cell_size(), o.rows().len()), (4 * GIB, 4 * MIB, 1));
    assert_eq!(o.rows()[0].cells()[1023].pages(), 1);
    assert!(o.to_string().lines().nth(1).unwrap().starts_with("0x0000_0000 |   "), "{o}");

    // Out-of-range options are clamped: cells of at least a page, rows of
    // at most 4096 cells.
    let t: MemTable<u8> = [(0x1000, 1)].into_iter().collect();
    let o = t.occupancy_with(OccupancyOptions::new().cell_size(1).row_size(1 << 40));
    assert_eq!((o.row_size(), o.cell_size()), (1 << 40, 1 << 28));
    let o = t.occupancy_with(OccupancyOptions::new().cell_size(1));
    assert_eq!(o.cell_size(), 1 << 18);
    assert!(o.rows()[0].cells().len() <= 4096);

    // An empty table.
    let t: MemTable<u8> = MemTable::new();
    let o = t.occupancy();
    assert_eq!(o.total_rows(), 0);
    assert_eq!(o.to_string().lines().count(), 2);
}

#[test]
fn occupancy_of_entries_spread_over_48_bits_is_bounded() {
    // 20,000 entries, each in its own 1 GiB row (and the last page of the
    // address space): the picture must not walk the 2^27 cells in between.
    let n = 20_000u64;
    let step = ((1u64 << 48) / n) & !(GIB - 1);
    let mut t: MemTable<u8> = (0..n).map(|i| (i * step, 1)).collect();
    t.insert((1 << 48) - 0x1000, 2).unwrap();
    let o = t.occupancy();
    let text = o.to_string();
    let svg = o.to_svg();
    // Only the rows shown hold cells (a row of 1 GiB, cells of 2 MiB).
    let cells: usize = o.rows().iter().map(|r| r.cells().len()).sum();
    assert!(cells <= 64 * 512, "{cells} cells built");
    assert_eq!((o.rows().len() as u64, o.total_rows()), (64, n + 1));
    assert!(text.contains(&format!("\n... {} more rows\n", n + 1 - 64)));
    // A header, 64 rows, 63 gaps, the count of the rest, the legend.
    assert_eq!(text.lines().count(), 1 + 64 + 63 + 1 + 1);
    assert!(text.len() < 64 * 2 * 1600, "{} bytes", text.len());
    assert_eq!(svg.matches("<rect class=\"cell\"").count(), 64);

    // A dense table past the row limit: the rows left out are counted by
    // jumps, and a large entry over many rows counts each.
    let mut t: MemTable<u8> = (0..(1u64 << 16)).map(|i| (i << 12, 1)).collect();
    t.insert_at(GIB, Level::new(2), 2).unwrap();
    let o = t.occupancy_with(OccupancyOptions::new().row_size(2 * MIB).max_rows(3));
    // 256 MiB of pages = 128 rows of 2 MiB; the 1 GiB entry is 512 rows.
    assert_eq!((o.rows().len(), o.total_rows()), (3, 128 + 512));
    let o = t.occupancy_with(OccupancyOptions::new().row_size(2 * MIB).max_rows(0));
    assert_eq!((o.rows().len(), o.total_rows()), (0, 128 + 512));
    assert_eq!(o.to_string().lines().nth(1), Some("... 640 more rows"));
    let o = t.occupancy_with(OccupancyOptions::new().row_size(2 * MIB).max_rows(128 + 511));
    assert_eq!(o.to_string().lines().rev().nth(1), Some("... 1 more row"));
}

/// Checks that `svg` is well-formed as far as tags go: every element is
/// closed, in order, and attribute quotes are balanced. Returns the number
/// of elements by name.
fn check_tags(svg: &str) -> BTreeMap<String, usize> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = BTreeMap::new();
    let mut rest = svg;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>') && !text.contains('&'), "stray character in text {text:?}");
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        assert!(!tag.contains('<'), "'<' inside <{tag}>");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "</{name}> closes the wrong element");
        } else {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/').to_string();
            *names.entry(name.clone()).or_insert(0) += 1;
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert!(rest.trim().is_empty(), "text after the root element: {rest:?}");
    names
}

#[test]
fn svg_is_well_formed_and_has_a_rect_per_cell_shown() {
    let t = layout();
    for options in [small_grid(), small_grid().max_rows(100), OccupancyOptions::new()] {
        let o = t.occupancy_with(options);
        let svg = o.to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "), "{svg}");
        let names = check_tags(&svg);
        assert_eq!(names["svg"], 1);
        let cells: usize = o.rows().iter().map(|r| r.cells().iter().filter(|c| !c.is_empty()).count()).sum();
        let large: usize = o.rows().iter().map(|r| r.cells().iter().filter(|c| c.large()).count()).sum();
        assert_eq!(svg.matches("<rect class=\"cell\"").count(), cells);
        assert_eq!(svg.matches("fill=\"#d1242f\"").count(), large);
        assert_eq!(svg.matches("<rect class=\"row\"").count(), o.rows().len());
        // The background, a frame per row, a rect per cell.
        assert_eq!(names["rect"], 1 + o.rows().len() + cells);
        for row in o.rows() {
            assert!(
                svg.contains(&format!(">{}</text>", label(row.addr()))),
                "no label for row {:#x}",
                row.addr()
            );
        }
        assert_eq!(svg.contains(" more row"), o.hidden_rows() > 0);
    }
    // The first row of the small grid: 7 cells in use, one of them large.
    let svg = t.occupancy_with(small_grid()).to_svg();
    assert_eq!(svg.matches("<rect class=\"cell\"").count(), 7 + 1 + 8 + 8);
    assert!(svg.contains("fill-opacity=\"0.250\""), "128 of 512 pages");
}

/// A 48-bit address as the picture labels it.
fn label(addr: u64) -> String {
    let h = format!("{addr:012x}");
    format!("0x{}_{}_{}", &h[0..4], &h[4..8], &h[8..12])
}
