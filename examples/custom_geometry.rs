//! Tables shaped like two non-x86 page tables.
//!
//! - RISC-V Sv39: a hypervisor's per-page permissions for a guest kernel
//!   image, in gigapages, megapages and 4 KiB pages; one megapage is split to
//!   make a single page writable, then merged back.
//! - AArch64 with the 64 KiB granule: per-page memory attributes for a small
//!   machine (devices, RAM in 512 MiB blocks, a non-cacheable DMA buffer).
//!
//! Each table's occupancy picture (which parts of the address space hold
//! entries, `L` where a large page covers them) is printed before and after
//! the changes.
//!
//! Run with `cargo run --example custom_geometry`; with a path argument
//! (`cargo run --example custom_geometry -- target/aarch64.svg`), the last
//! picture is also written there as SVG.

use std::fmt;

use mem_table::geometries::{Aarch64_64K, RiscvSv39};
use mem_table::geometry::Geometry;
use mem_table::{Level, MemTable, OccupancyOptions};

/// Access rights of a guest page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Perm {
    Read,
    ReadWrite,
    ReadExec,
}

impl fmt::Display for Perm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Perm::Read => "r--",
            Perm::ReadWrite => "rw-",
            Perm::ReadExec => "r-x",
        })
    }
}

/// Memory attributes of a page, as an AArch64 MAIR index would select them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Device,
    NormalNonCacheable,
    Normal,
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Attr::Device => "Device-nGnRE",
            Attr::NormalNonCacheable => "Normal-NC",
            Attr::Normal => "Normal-WB",
        })
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    riscv_kernel_image()?;
    println!();
    aarch64_memory_attributes()?;
    Ok(())
}

/// Sv39: guest RAM at 0x8000_0000 (as on QEMU's `virt` machine), with the
/// kernel image loaded at 0x8020_0000.
fn riscv_kernel_image() -> Result<(), Box<dyn std::error::Error>> {
    const RAM: std::ops::Range<u64> = 0x8000_0000..0x1_0000_0000; // 2 GiB
    const TEXT: std::ops::Range<u64> = 0x8020_0000..0x80e0_0000; // 12 MiB
    const RODATA: std::ops::Range<u64> = 0x80e0_0000..0x8110_4000; // 3 MiB + 16 KiB
    let megapage = RiscvSv39::L2M;

    let mut perms: MemTable<Perm, RiscvSv39> = MemTable::new();
    println!("RISC-V Sv39 ({} address bits), guest kernel permissions", RiscvSv39::ADDRESS_BITS);

    // All of RAM read-write: two gigapages.
    perms.insert_range(RAM, Perm::ReadWrite)?;
    assert_eq!(perms.len(), 2);
    // Rows of 64 MiB in cells of 2 MiB (a megapage each): the first row
    // holds the kernel image.
    let image_view = OccupancyOptions::new().row_size(64 << 20).cell_size(2 << 20).max_rows(2);
    println!("  before, RAM only:");
    print_picture(&perms.occupancy_with(image_view));

    // The image's sections: the gigapage under them is split at the edges,
    // the text takes six megapages, the rodata a megapage and 260 pages.
    perms.insert_range(TEXT, Perm::ReadExec)?;
    perms.insert_range(RODATA, Perm::Read)?;
    perms.check_invariants()?;

    // Patching one page of text: a 4 KiB change inside a megapage is
    // refused until the megapage is split explicitly.
    let patch = 0x8040_3000;
    let err = perms.insert(patch, Perm::ReadWrite).unwrap_err();
    println!("  insert({patch:#x}) before a split: {err}");
    perms.split(err.addr(), err.level())?;
    assert_eq!(perms.insert(patch, Perm::ReadWrite)?, Some(Perm::ReadExec));
    let (page, perm) = perms.get_key_value(patch + 0x123).expect("just inserted");
    println!("  after split(): {page} is {perm}");

    // Patched: back to r-x, and the 512 pages merge into one megapage again.
    perms.insert(patch, Perm::ReadExec)?;
    let region = patch & !(RiscvSv39::page_size(megapage).expect("Sv39 has megapages") - 1);
    perms.merge(region, megapage)?;
    let (page, _) = perms.get_key_value(patch).expect("mapped");
    println!("  after merge(): {page}, {}", size_name(page.size()));

    for addr in [0x8000_0000, 0x8030_0000, 0x8110_0000, 0x8110_4000, 0xc000_0000, 0x1_0000_0000] {
        match perms.get_key_value(addr) {
            Some((page, perm)) => {
                println!(
                    "  {:>11}: {perm} ({} page at {:#x})",
                    hex(addr),
                    size_name(page.size()),
                    page.addr()
                )
            }
            None => println!("  {:>11}: not guest RAM", hex(addr)),
        }
    }

    print_map(&perms);
    print_summary(&perms);
    println!("  after, the image mapped (the rodata's last megapage is 4 KiB pages):");
    print_picture(&perms.occupancy_with(image_view));
    Ok(())
}

/// AArch64, 64 KiB granule: a machine with a GIC and a UART below 1 GiB and
/// 4 GiB of RAM at 0x4000_0000 (the layout of QEMU's `virt` machine).
fn aarch64_memory_attributes() -> Result<(), Box<dyn std::error::Error>> {
    const GIC: std::ops::Range<u64> = 0x0800_0000..0x0802_0000;
    const UART: u64 = 0x0900_0000;
    const RAM: std::ops::Range<u64> = 0x4000_0000..0x1_4000_0000;
    const DMA: std::ops::Range<u64> = 0x5000_0000..0x5020_0000; // 2 MiB

    let mut attrs: MemTable<Attr, Aarch64_64K> = MemTable::new();
    println!("AArch64, 64 KiB granule ({} address bits), memory attributes", Aarch64_64K::ADDRESS_BITS);

    attrs.insert_range(GIC, Attr::Device)?;
    // The UART's registers fill 4 KiB, but the smallest page here is 64 KiB.
    let err = attrs.insert(UART + 0x1000, Attr::Device).unwrap_err();
    println!("  insert({:#x}): {err}", UART + 0x1000);
    attrs.insert(UART, Attr::Device)?;

    // RAM: eight 512 MiB blocks.
    attrs.insert_range(RAM, Attr::Normal)?;
    let blocks = attrs.keys().filter(|p| p.level() == Aarch64_64K::L512M).count();
    println!("  RAM {:#x}..{:#x}: {blocks} blocks of {}", RAM.start, RAM.end, size_name(512 << 20));
    // Rows of 1 GiB in cells of 16 MiB.
    let view = OccupancyOptions::new().row_size(1 << 30).cell_size(16 << 20);
    println!("  before, devices and RAM:");
    print_picture(&attrs.occupancy_with(view));

    // A non-cacheable DMA buffer splits one block into 8192 pages of 64 KiB.
    attrs.insert_range(DMA, Attr::NormalNonCacheable)?;
    attrs.check_invariants()?;
    let (page, attr) = attrs.get_key_value(DMA.start + 0x1_2345).expect("mapped");
    println!(
        "  DMA buffer: {page} is {attr}; {} entries, {} KiB of tables",
        attrs.len(),
        attrs.stats().bytes() >> 10
    );
    print_map(&attrs);
    println!("  with the DMA buffer (its block split into 8192 pages):");
    print_picture(&attrs.occupancy_with(view));

    // The buffer is freed: back to Normal, and compaction rebuilds the block.
    attrs.insert_range(DMA, Attr::Normal)?;
    let merges = attrs.compact();
    println!(
        "  DMA buffer freed: {merges} merge(s), {} entries, {} KiB of tables",
        attrs.len(),
        attrs.stats().bytes() >> 10
    );
    print_summary(&attrs);
    println!("  after compaction:");
    let picture = attrs.occupancy_with(view);
    print_picture(&picture);
    if let Some(path) = std::env::args().nth(1) {
        std::fs::write(&path, picture.to_svg())?;
        println!("  (SVG written to {path})");
    }
    Ok(())
}

/// Prints an occupancy picture, indented.
fn print_picture(picture: &mem_table::Occupancy) {
    for line in picture.to_string().lines() {
        println!("    {line}");
    }
}

/// Prints the table as runs of neighbouring entries with equal values.
fn print_map<V: PartialEq + fmt::Display, G: Geometry>(t: &MemTable<V, G>) {
    /// A run being built: first address, end (exclusive), value, and the
    /// number of entries of each size.
    struct Run<'a, V> {
        start: u64,
        end: u64,
        value: &'a V,
        sizes: Vec<(u64, usize)>,
    }
    let flush = |run: &Run<'_, V>| {
        let sizes: Vec<String> =
            run.sizes.iter().map(|&(size, n)| format!("{n} x {}", size_name(size))).collect();
        println!("    {:>11}..{:<11} {:<12} {}", hex(run.start), hex(run.end), run.value, sizes.join(" + "));
    };
    let mut run: Option<Run<'_, V>> = None;
    for (page, value) in t.iter() {
        match &mut run {
            Some(r) if r.end == page.addr() && r.value == value => {
                r.end = page.last() + 1;
                match r.sizes.iter_mut().find(|(size, _)| *size == page.size()) {
                    Some((_, n)) => *n += 1,
                    None => r.sizes.push((page.size(), 1)),
                }
            }
            _ => {
                if let Some(r) = &run {
                    flush(r);
                }
                run = Some(Run {
                    start: page.addr(),
                    end: page.last() + 1,
                    value,
                    sizes: vec![(page.size(), 1)],
                });
            }
        }
    }
    if let Some(r) = &run {
        flush(r);
    }
}

/// Prints the number of entries of each page size, and the memory used.
fn print_summary<V, G: Geometry>(t: &MemTable<V, G>) {
    let counts: Vec<String> = (0..G::LEVELS as u8)
        .map(Level::new)
        .filter(|&l| G::holds_entries(l))
        .map(|l| {
            let n = t.keys().filter(|p| p.level() == l).count();
            format!("{n} x {}", size_name(G::page_size(l).expect("level in range")))
        })
        .collect();
    let stats = t.stats();
    println!(
        "  {} entries ({}); {} tables, {} KiB",
        t.len(),
        counts.join(", "),
        stats.nodes(),
        stats.bytes() >> 10
    );
}

/// `0x8000_0000` -> "0x80000000" (for alignment in columns).
fn hex(addr: u64) -> String {
    format!("{addr:#x}")
}

/// `2 << 20` -> "2 MiB".
fn size_name(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let unit = (bytes.trailing_zeros() / 10).min(6);
    format!("{} {}", bytes >> (10 * unit), units[unit as usize])
}
