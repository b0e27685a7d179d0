//! [`Occupancy`]: which parts of the address space hold entries, as text and
//! as SVG.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use super::SizeName;
use crate::MemTable;
use crate::backend::Backend;
use crate::geometry::Geometry;
use crate::page::{Level, Page};

/// The most cells a row may have: a row of `2^12` cells at most, the cells
/// made larger if the options ask for more.
const MAX_CELLS_SHIFT: u32 = 12;

/// How [`MemTable::occupancy_with`] cuts the address space into rows and
/// cells, and how the picture is drawn.
///
/// The defaults follow the geometry: a row is the page size of level 2
/// (1 GiB on x86; the whole address space for a geometry of fewer than
/// three levels) and a cell the page size of level 1 (2 MiB on x86; the base
/// page for a single-level geometry), at most 64 rows are shown, and cells
/// are drawn with Unicode shades.
///
/// Sizes are clamped to what the geometry can show: a cell is at least a
/// base page and at most a row, a row at most the address space (and at
/// most 2^63 bytes), and a row has at most 4096 cells (the cell is made
/// larger if needed).
///
/// ```
/// use mem_table::{MemTable, OccupancyOptions};
/// let mut t: MemTable<u8> = MemTable::new();
/// t.insert_range(0..0x80_0000, 1).unwrap(); // 8 MiB from 0
/// let options = OccupancyOptions::new().row_size(16 << 20).cell_size(1 << 20).ascii(true);
/// let picture = t.occupancy_with(options);
/// assert_eq!(picture.row_size(), 16 << 20);
/// assert_eq!(picture.to_string().lines().nth(1), Some("0x0000_0000_0000 |LLLLLLLL        |"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OccupancyOptions {
    row_shift: Option<u32>,
    cell_shift: Option<u32>,
    max_rows: usize,
    ascii: bool,
}

impl Default for OccupancyOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// log2 of `bytes`, which must be a power of two.
fn shift_of(bytes: u64, what: &str) -> u32 {
    assert!(bytes.is_power_of_two(), "mem-table: occupancy {what} size {bytes:#x} is not a power of two");
    bytes.trailing_zeros()
}

impl OccupancyOptions {
    /// The defaults (see the type's documentation).
    pub const fn new() -> Self {
        OccupancyOptions { row_shift: None, cell_shift: None, max_rows: 64, ascii: false }
    }

    /// The region of one row, in bytes.
    ///
    /// # Panics
    /// If `bytes` is not a power of two.
    ///
    /// ```
    /// use mem_table::{MemTable, OccupancyOptions};
    /// let t: MemTable<u8> = [(0x1000, 1)].into_iter().collect();
    /// let o = t.occupancy_with(OccupancyOptions::new().row_size(1 << 21));
    /// assert_eq!((o.row_size(), o.cell_size()), (2 << 20, 2 << 20)); // the cell shrinks to the row
    /// ```
    pub fn row_size(mut self, bytes: u64) -> Self {
        self.row_shift = Some(shift_of(bytes, "row"));
        self
    }

    /// The region of one cell (one character), in bytes.
    ///
    /// # Panics
    /// If `bytes` is not a power of two.
    ///
    /// ```
    /// use mem_table::{MemTable, OccupancyOptions};
    /// let t: MemTable<u8> = [(0x1000, 1)].into_iter().collect();
    /// let o = t.occupancy_with(OccupancyOptions::new().cell_size(64 << 20));
    /// assert_eq!(o.rows()[0].cells().len(), 16); // 1 GiB rows of 64 MiB cells
    /// ```
    pub fn cell_size(mut self, bytes: u64) -> Self {
        self.cell_shift = Some(shift_of(bytes, "cell"));
        self
    }

    /// The most rows shown (64 by default); the rest are counted in a last
    /// line, `... N more rows`.
    ///
    /// ```
    /// use mem_table::{MemTable, OccupancyOptions};
    /// let t: MemTable<u8> = (0..10u64).map(|i| (i << 30, 1)).collect(); // ten 1 GiB rows
    /// let o = t.occupancy_with(OccupancyOptions::new().max_rows(4));
    /// assert_eq!((o.rows().len(), o.total_rows(), o.hidden_rows()), (4, 10, 6));
    /// assert!(o.to_string().contains("\n... 6 more rows\n"));
    /// ```
    pub fn max_rows(mut self, rows: usize) -> Self {
        self.max_rows = rows;
        self
    }

    /// Draws the text with ASCII characters (`' ' . : + #`, `L`) instead of
    /// Unicode shades (`' ' ░ ▒ ▓ █`, `L`).
    pub fn ascii(mut self, ascii: bool) -> Self {
        self.ascii = ascii;
        self
    }
}

/// One cell of an [`Occupancy`] picture: how many of its base pages lie in
/// an entry, and whether a large entry covers any of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OccupancyCell {
    pages: u64,
    large: bool,
}

impl OccupancyCell {
    /// Base pages of the cell that lie inside an entry (of any level), out
    /// of [`Occupancy::pages_per_cell`].
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Whether an entry above level 0 covers part or all of the cell.
    pub fn large(&self) -> bool {
        self.large
    }

    /// Whether no entry covers any of the cell.
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// The cell's shade from 0 (empty) to 4: the quarter of its pages in
    /// use, rounded up (1 is up to 25 %, 4 is over 75 %).
    fn quartile(&self, per_cell: u64) -> u64 {
        (self.pages as u128 * 4).div_ceil(per_cell as u128) as u64
    }
}

/// One row of an [`Occupancy`] picture: an aligned region that holds at
/// least one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OccupancyRow {
    addr: u64,
    cells: Vec<OccupancyCell>,
}

impl OccupancyRow {
    /// The first address of the row.
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The row's cells, lowest address first.
    pub fn cells(&self) -> &[OccupancyCell] {
        &self.cells
    }
}

/// A picture of which parts of the address space hold entries: from
/// [`MemTable::occupancy`].
///
/// The address space is cut into rows (1 GiB on x86 by default) and each
/// row into cells (2 MiB); only rows that hold entries are kept, at most
/// [`max_rows`](OccupancyOptions::max_rows) of them, the lowest first. Each
/// cell counts its base pages that lie inside an entry and whether a large
/// entry covers it.
///
/// `Display` draws it for a terminal, one line per row, the row's address
/// first; `...` marks rows without entries left out between two shown
/// rows; a cell is blank when empty, shaded `░ ▒ ▓ █` by the quarter of its
/// base pages in use (`. : + #` in [ASCII](OccupancyOptions::ascii)), and
/// `L` where a large entry covers it. [`to_svg`](Self::to_svg) draws the
/// same as SVG.
///
/// Built from the entries in order: O(entries in the rows shown), plus
/// O(levels) per row left out (each found by one range lookup), never
/// O(address space); the picture holds `rows shown x cells per row` cells.
///
/// ```
/// use mem_table::{Level, MemTable, OccupancyOptions};
/// let mut t: MemTable<u8> = MemTable::new();
/// t.insert_range(0..0x10_0000, 1).unwrap(); // 1 MiB of 4 KiB pages: half of a 2 MiB cell
/// t.insert_at(0x40_0000, Level::new(1), 2).unwrap(); // one 2 MiB entry
/// t.insert(0x4000_0000, 3).unwrap(); // the second GiB
/// t.insert(0x1_0000_0000, 4).unwrap(); // the fifth GiB
///
/// let picture = t.occupancy_with(OccupancyOptions::new().cell_size(128 << 20).ascii(true));
/// assert_eq!(
///     picture.to_string(),
///     "3 rows of 1 GiB hold entries; a cell is 128 MiB (32768 pages of 4 KiB)\n\
///      0x0000_0000_0000 |L       |\n\
///      0x0000_4000_0000 |.       |\n\
///      ...\n\
///      0x0001_0000_0000 |.       |\n\
///      ' ' empty, . up to 25 %, : up to 50 %, + up to 75 %, # over 75 % of a cell's pages in use; L a large entry"
/// );
/// // A finer grid of the first row:
/// let fine = t.occupancy_with(OccupancyOptions::new().max_rows(1).row_size(8 << 20).cell_size(1 << 20));
/// assert_eq!(fine.to_string().lines().nth(1), Some("0x0000_0000_0000 |█   LL  |"));
/// assert_eq!(fine.hidden_rows(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Occupancy {
    base_shift: u32,
    cell_shift: u32,
    row_shift: u32,
    address_bits: u32,
    ascii: bool,
    rows: Vec<OccupancyRow>,
    total_rows: u64,
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// A picture of which parts of the address space hold entries, with the
    /// default [`OccupancyOptions`]: rows of the level-2 page size (1 GiB on
    /// x86), cells of the level-1 page size (2 MiB), at most 64 rows.
    ///
    /// O(entries in the rows shown + rows left out x levels); see
    /// [`Occupancy`].
    ///
    /// ```
    /// use mem_table::MemTable;
    /// let t: MemTable<u8> = (0..512u64).map(|i| (i << 12, 0)).collect(); // the first 2 MiB
    /// let o = t.occupancy();
    /// assert_eq!((o.row_size(), o.cell_size()), (1 << 30, 2 << 20));
    /// assert_eq!(o.rows().len(), 1);
    /// assert_eq!(o.rows()[0].cells()[0].pages(), 512);
    /// assert!(o.rows()[0].cells()[1..].iter().all(|c| c.is_empty()));
    /// println!("{o}");
    /// ```
    pub fn occupancy(&self) -> Occupancy {
        self.occupancy_with(OccupancyOptions::new())
    }

    /// A picture of which parts of the address space hold entries, cut and
    /// drawn as `options` say.
    ///
    /// ```
    /// use mem_table::{MemTable, OccupancyOptions};
    /// let t: MemTable<u8> = [(0x1000, 1), (1 << 40, 2)].into_iter().collect();
    /// let o = t.occupancy_with(OccupancyOptions::new().cell_size(256 << 20));
    /// assert_eq!(o.rows().iter().map(|r| r.addr()).collect::<Vec<_>>(), [0, 1 << 40]);
    /// assert_eq!(o.rows()[1].cells()[0].pages(), 1);
    /// ```
    pub fn occupancy_with(&self, options: OccupancyOptions) -> Occupancy {
        let base = G::PAGE_SHIFT;
        let space = G::ADDRESS_BITS.min(63);
        let default_row = if G::LEVELS >= 3 { G::page_shift(Level::new(2)).unwrap_or(space) } else { space };
        let default_cell = if G::LEVELS >= 2 { G::page_shift(Level::new(1)).unwrap_or(base) } else { base };
        let row_shift = options.row_shift.unwrap_or(default_row).clamp(base, space.max(base));
        let cell_shift = options
            .cell_shift
            .unwrap_or(default_cell)
            .clamp(base, row_shift)
            .max(row_shift.saturating_sub(MAX_CELLS_SHIFT));
        let mut b = Builder {
            base_shift: base,
            cell_shift,
            row_shift,
            max_rows: options.max_rows,
            rows: Vec::new(),
            total_rows: 0,
            last_counted: None,
        };
        // Rows a page reaches past the last row drawn, when the picture is
        // full: the walk goes on by jumps, one per row.
        let mut rest: Option<Page> = None;
        for (page, _) in self.iter() {
            if !b.add(page) {
                rest = Some(page);
                break;
            }
        }
        // 2^(address bits - row shift) rows in all.
        let rows_in_space = 1u128 << (G::ADDRESS_BITS - row_shift);
        while let Some(page) = rest {
            b.count(page);
            let next = (page.last() >> row_shift) as u128 + 1;
            if next >= rows_in_space {
                break;
            }
            rest = self.range(((next as u64) << row_shift)..).next().map(|(p, _)| p);
        }
        Occupancy {
            base_shift: base,
            cell_shift,
            row_shift,
            address_bits: G::ADDRESS_BITS,
            ascii: options.ascii,
            rows: b.rows,
            total_rows: b.total_rows,
        }
    }
}

/// An [`Occupancy`] being built from the entries in order.
struct Builder {
    base_shift: u32,
    cell_shift: u32,
    row_shift: u32,
    max_rows: usize,
    rows: Vec<OccupancyRow>,
    total_rows: u64,
    /// The index of the last row counted in `total_rows`.
    last_counted: Option<u64>,
}

impl Builder {
    /// Counts the rows `page` reaches that no earlier page did.
    fn count(&mut self, page: Page) {
        let (first, last) = (page.addr() >> self.row_shift, page.last() >> self.row_shift);
        let from = match self.last_counted {
            Some(l) if l >= first => l + 1,
            _ => first,
        };
        if from <= last {
            self.total_rows += last - from + 1;
            self.last_counted = Some(last);
        }
    }

    /// Adds `page` (past every page added so far) to the cells; false, with
    /// nothing added, if it starts in a row past the last one the picture
    /// may show. A page that reaches past the last row shown is drawn in
    /// the rows shown and counted in the others.
    fn add(&mut self, page: Page) -> bool {
        let (first, last) = (page.addr() >> self.row_shift, page.last() >> self.row_shift);
        let in_last_row = self.rows.last().is_some_and(|r| r.addr >> self.row_shift == first);
        if !in_last_row && self.rows.len() >= self.max_rows {
            return false;
        }
        self.count(page);
        let cells = 1usize << (self.row_shift - self.cell_shift);
        let large = page.level() > Level::BASE;
        let mut r = first;
        loop {
            let start = r << self.row_shift;
            if self.rows.last().is_none_or(|row| row.addr != start) {
                if self.rows.len() >= self.max_rows {
                    break;
                }
                self.rows
                    .push(OccupancyRow { addr: start, cells: alloc::vec![OccupancyCell::default(); cells] });
            }
            let end = start + ((1u64 << self.row_shift) - 1);
            let (lo, hi) = (page.addr().max(start), page.last().min(end));
            let row = self.rows.last_mut().expect("pushed above");
            let (c0, c1) = ((lo - start) >> self.cell_shift, (hi - start) >> self.cell_shift);
            for c in c0..=c1 {
                let cs = start + (c << self.cell_shift);
                let ce = cs + ((1u64 << self.cell_shift) - 1);
                let bytes = hi.min(ce) - lo.max(cs) + 1;
                let cell = &mut row.cells[c as usize];
                cell.pages += bytes >> self.base_shift;
                cell.large |= large;
            }
            if r == last {
                break;
            }
            r += 1;
        }
        true
    }
}

impl Occupancy {
    /// The rows shown, lowest address first: rows that hold entries, at
    /// most [`max_rows`](OccupancyOptions::max_rows).
    pub fn rows(&self) -> &[OccupancyRow] {
        &self.rows
    }

    /// All rows that hold entries, shown or not.
    pub fn total_rows(&self) -> u64 {
        self.total_rows
    }

    /// Rows that hold entries but are not shown (past the row limit).
    pub fn hidden_rows(&self) -> u64 {
        self.total_rows - self.rows.len() as u64
    }

    /// The size of a row's region, in bytes.
    pub fn row_size(&self) -> u64 {
        1 << self.row_shift
    }

    /// The size of a cell's region, in bytes.
    pub fn cell_size(&self) -> u64 {
        1 << self.cell_shift
    }

    /// The base pages in one cell.
    pub fn pages_per_cell(&self) -> u64 {
        1 << (self.cell_shift - self.base_shift)
    }

    /// The glyph of `cell`.
    fn glyph(&self, cell: &OccupancyCell) -> char {
        const UNICODE: [char; 5] = [' ', '░', '▒', '▓', '█'];
        const ASCII: [char; 5] = [' ', '.', ':', '+', '#'];
        if cell.large {
            return 'L';
        }
        let shades = if self.ascii { &ASCII } else { &UNICODE };
        shades[cell.quartile(self.pages_per_cell()).min(4) as usize]
    }

    /// The first line: what the rows and cells are.
    fn header(&self) -> String {
        let rows = if self.total_rows == 1 { "row" } else { "rows" };
        alloc::format!(
            "{} {rows} of {} hold entries; a cell is {} ({} pages of {})",
            self.total_rows,
            SizeName(self.row_size()),
            SizeName(self.cell_size()),
            self.pages_per_cell(),
            SizeName(1 << self.base_shift),
        )
    }

    /// The line that counts the rows not shown.
    fn more(&self) -> String {
        let n = self.hidden_rows();
        alloc::format!("... {n} more {}", if n == 1 { "row" } else { "rows" })
    }

    /// The last line: what the glyphs mean.
    fn legend(&self) -> &'static str {
        if self.ascii {
            "' ' empty, . up to 25 %, : up to 50 %, + up to 75 %, # over 75 % of a cell's pages in use; L a large entry"
        } else {
            "' ' empty, ░ up to 25 %, ▒ up to 50 %, ▓ up to 75 %, █ over 75 % of a cell's pages in use; L a large entry"
        }
    }

    /// The label of the row at `addr`: hex digits for the whole address
    /// space, in groups of four.
    fn label(&self, addr: u64) -> String {
        let digits = self.address_bits.div_ceil(4) as usize;
        let mut s = String::from("0x");
        for i in (0..digits).rev() {
            let d = (addr >> (4 * i)) & 0xf;
            s.push(char::from_digit(d as u32, 16).expect("a hex digit"));
            if i > 0 && i % 4 == 0 {
                s.push('_');
            }
        }
        s
    }

    /// Whether rows are left out between shown row `i - 1` and row `i`.
    fn gap_before(&self, i: usize) -> bool {
        i > 0 && self.rows[i].addr - self.rows[i - 1].addr != self.row_size()
    }

    /// The picture as a standalone SVG document: a labelled row per row
    /// shown, a `<rect class="cell">` per cell that holds entries (its
    /// opacity its share of pages in use; red where a large entry covers
    /// it), and the same header and legend as the text.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.insert(0x1000, 1).unwrap();
    /// t.insert_at(0x4000_0000, Level::new(2), 2).unwrap();
    /// let svg = t.occupancy().to_svg();
    /// assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    /// assert!(svg.trim_end().ends_with("</svg>"));
    /// // One cell in the first row, 512 in the second:
    /// assert_eq!(svg.matches("<rect class=\"cell\"").count(), 1 + 512);
    /// ```
    pub fn to_svg(&self) -> String {
        let mut s = String::new();
        // Writing to a `String` cannot fail.
        let _ = self.write_svg(&mut s);
        s
    }

    fn write_svg(&self, s: &mut String) -> fmt::Result {
        /// Vertical distance between lines, height of a row's cells, width
        /// of a character of text, margin.
        const PITCH: usize = 14;
        const HEIGHT: usize = 12;
        const CHAR: usize = 7;
        const MARGIN: usize = 8;
        const LEGEND: &str =
            "fill opacity: the share of a cell's pages in use; blue: base pages; red: a large entry";
        let cells = 1usize << (self.row_shift - self.cell_shift);
        let cw = (1024 / cells).clamp(1, 16);
        let label_w = (self.label(0).len() + 1) * CHAR;
        let gaps = (0..self.rows.len()).filter(|&i| self.gap_before(i)).count();
        let lines = 1 + self.rows.len() + gaps + usize::from(self.hidden_rows() > 0) + 1;
        let width = (MARGIN + label_w + cells * cw)
            .max(MARGIN + self.header().chars().count() * CHAR)
            .max(MARGIN + LEGEND.len() * CHAR);
        let total_h = lines * PITCH + MARGIN;
        let per_cell = self.pages_per_cell() as f64;
        writeln!(
            s,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{total_h}\" \
             viewBox=\"0 0 {width} {total_h}\" font-family=\"monospace\" font-size=\"11\">"
        )?;
        writeln!(s, "<rect class=\"background\" width=\"{width}\" height=\"{total_h}\" fill=\"#ffffff\"/>")?;
        let mut y = PITCH;
        writeln!(s, "<text x=\"4\" y=\"{y}\">{}</text>", self.header())?;
        for (i, row) in self.rows.iter().enumerate() {
            if self.gap_before(i) {
                y += PITCH;
                writeln!(s, "<text x=\"4\" y=\"{y}\">...</text>")?;
            }
            y += PITCH;
            let top = y + 2 - HEIGHT;
            writeln!(s, "<text x=\"4\" y=\"{y}\">{}</text>", self.label(row.addr))?;
            writeln!(
                s,
                "<rect class=\"row\" x=\"{label_w}\" y=\"{top}\" width=\"{}\" height=\"{HEIGHT}\" \
                 fill=\"#f2f2f2\" stroke=\"#cccccc\" stroke-width=\"0.5\"/>",
                cells * cw
            )?;
            for (c, cell) in row.cells.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
                let colour = if cell.large { "#d1242f" } else { "#1f5fbf" };
                let opacity = (cell.pages as f64 / per_cell).max(0.1);
                writeln!(
                    s,
                    "<rect class=\"cell\" x=\"{}\" y=\"{top}\" width=\"{cw}\" height=\"{HEIGHT}\" \
                     fill=\"{colour}\" fill-opacity=\"{opacity:.3}\"/>",
                    label_w + c * cw
                )?;
            }
        }
        if self.hidden_rows() > 0 {
            y += PITCH;
            writeln!(s, "<text x=\"4\" y=\"{y}\">{}</text>", self.more())?;
        }
        y += PITCH;
        writeln!(s, "<text x=\"4\" y=\"{y}\">{LEGEND}</text>")?;
        s.push_str("</svg>\n");
        Ok(())
    }
}

impl fmt::Display for Occupancy {
    /// The picture for a terminal: a header, a line per row shown (`...`
    /// where rows are left out, `... N more rows` past the row limit) and a
    /// legend. No newline after the legend.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.header())?;
        for (i, row) in self.rows.iter().enumerate() {
            if self.gap_before(i) {
                writeln!(f, "...")?;
            }
            write!(f, "{} |", self.label(row.addr))?;
            for cell in &row.cells {
                f.write_char(self.glyph(cell))?;
            }
            writeln!(f, "|")?;
        }
        if self.hidden_rows() > 0 {
            writeln!(f, "{}", self.more())?;
        }
        f.write_str(self.legend())
    }
}
