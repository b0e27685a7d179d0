//! A real KVM guest whose page tables come from a `MemTable`, and a
//! pre-copy migration whose dirty log goes through one (issue 9, part 4).
//!
//! ```text
//! cargo run --release --example kvm_migrate
//! ```
//!
//! Linux x86-64 with `/dev/kvm` only; elsewhere it says so. The guest and
//! the checks are in `tests/common/kvm_guest.rs` (shared with
//! `tests/kvm.rs`, which runs a smaller version and asserts the results).
//! This prints the layout, the probe results, pages sent per round, and
//! the harvest cost per dirty page of four structures fed the same KVM
//! bitmaps. Where the kernel offers the dirty ring
//! (`KVM_CAP_DIRTY_LOG_RING`), it then runs the same guest (same seed, same
//! writes) in a second VM harvested through the ring, checks it the same
//! way, and prints its rounds and the cost of ring entries into a
//! `MemTable<u32>` (and a `HashMap`); elsewhere it says the ring is not
//! offered and skips that part. It exits non-zero, naming the failure, if
//! the guest exits unexpectedly, a KVM ioctl fails, or a check fails.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[allow(dead_code)]
#[path = "../tests/common/kvm_guest.rs"]
mod kvm_guest;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() -> std::process::ExitCode {
    match migrate() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvm_migrate: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    println!("kvm_migrate: not supported on this platform (needs Linux on x86-64 with KVM)");
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn migrate() -> Result<(), Box<dyn std::error::Error>> {
    use kvm_guest::{GuestError, PAGE, Phase, example_config, harvest_bench, ring_bench, run, with_ring};
    use std::time::{Duration, Instant};

    let cfg = example_config();
    let t = Instant::now();
    let r = run(&cfg)?;
    let elapsed = t.elapsed();

    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    println!("memslots (dirty logging on every one):");
    for (i, &(base, size)) in r.slots.iter().enumerate() {
        println!("  slot {i}: {base:#013x} .. {:#013x}  ({} MiB)", base + size, size >> 20);
    }
    let span = r.slots.iter().map(|s| s.0 + s.1).max().unwrap_or(0);
    println!("  guest-physical span {:.1} GiB, {:.2} GiB of it backed", gib(span), gib(r.compared_bytes));
    println!(
        "dirty ring (KVM_CAP_DIRTY_LOG_RING): {}; this VM uses KVM_GET_DIRTY_LOG (the two are exclusive)",
        if r.dirty_ring_offered {
            format!("offered by the kernel, up to {} KiB", r.dirty_ring_max_bytes >> 10)
        } else {
            "not offered".to_string()
        }
    );
    println!(
        "guest mappings in the MemTable: {} entries; data: {} x 4 KiB, {} x 2 MiB, {} x 1 GiB",
        r.all_maps, r.data_maps[0], r.data_maps[1], r.data_maps[2]
    );
    if !r.gib_pages_offered && r.split_1g > 0 {
        println!(
            "1 GiB guest pages: not offered by this KVM (CPUID pdpe1gb clear); 1 GiB entries \
             split (split_with) into 512 x 2 MiB each before the page tables were emitted: {}",
            r.split_1g
        );
    }
    println!("page tables emitted from iter(): {} pages (PML4 + PDPTs + PDs + PTs)", r.page_table_pages);
    println!(
        "long-mode guest read {} probes through its page tables: {} differ from get_key_value \
         (software walk of the same tables: {} differ)",
        r.probes,
        r.probe_mismatches.len(),
        r.soft_walk_mismatches
    );

    println!();
    println!(
        "round  phase          scatter  runs   dirty  expected  missing  extra    sent  in-large  ioctl us"
    );
    for s in &r.rounds {
        let phase = match s.phase {
            Phase::Setup => "setup+probe",
            Phase::Live => "live",
            Phase::StopAndCopy => "stop-and-copy",
        };
        println!(
            "{:>5}  {:<13} {:>8} {:>5} {:>7} {:>9} {:>8} {:>6} {:>7} {:>9} {:>9.1}",
            s.round,
            phase,
            s.scatter,
            s.runs,
            s.dirty,
            s.expected,
            s.missing_count,
            s.extra_count,
            s.sent,
            s.sent_in_large,
            s.harvest_ioctl.as_secs_f64() * 1e6
        );
    }
    println!(
        "rounds: {} (setup, {} live, stop-and-copy); {}, {} pages in the stop-and-copy",
        r.rounds.len(),
        r.rounds.iter().filter(|s| s.phase == Phase::Live).count(),
        if r.converged { "converged" } else { "round limit reached" },
        r.rounds.last().map_or(0, |s| s.dirty)
    );
    println!(
        "pages sent: {} ({:.1} MiB) of {} backed pages",
        r.pages_sent(),
        (r.pages_sent() as u64 * PAGE) as f64 / (1 << 20) as f64,
        r.compared_bytes / PAGE
    );
    println!("dirty pages after the guest stopped (it only halts): {}", r.dirty_after_stop);
    println!(
        "destination vs source, {:.2} GiB byte for byte: {} pages differ",
        gib(r.compared_bytes),
        r.dest_diff_pages
    );
    println!(
        "dirty table ({} pages, page -> last round) vs the guest's writes: {} differ",
        r.table_entries, r.table_mismatches
    );
    println!("guest run, migration and checks: {:.2} s", elapsed.as_secs_f64());

    let (rows, bits) = harvest_bench(&r, Duration::from_millis(300), 20);
    println!();
    println!(
        "harvest: the same {} KVM bitmaps ({} dirty bits, {} rounds) into each structure, built from empty",
        r.harvests.iter().map(|h| h.bitmaps.len()).sum::<usize>(),
        bits,
        r.harvests.len(),
    );
    for row in &rows {
        println!(
            "  {:<18} {:>8.2} ns per dirty page   ({} builds, {} distinct pages)",
            row.name, row.ns_per_page, row.reps, row.pages
        );
    }

    failures(&r).map_err(|why| format!("verification failed: {why}"))?;

    // The same guest in a second VM, harvested through the dirty ring.
    println!();
    let ring_cfg = with_ring(&cfg, RING_ENTRIES);
    let t = Instant::now();
    let rr = match run(&ring_cfg) {
        Err(GuestError::RingUnavailable(why)) => {
            println!("dirty ring: not offered by this kernel ({why}); ring harvest skipped");
            println!("verification: all checks passed");
            return Ok(());
        }
        other => other?,
    };
    let elapsed = t.elapsed();
    println!(
        "dirty ring: a second VM, same guest and seed, ring of {} entries ({} KiB) on its vCPU",
        rr.ring_bytes.unwrap_or(0) / 16,
        rr.ring_bytes.unwrap_or(0) >> 10
    );
    println!("round  dirty  expected  missing  extra    sent  ring entries  full exits  harvest us");
    for s in &rr.rounds {
        println!(
            "{:>5} {:>6} {:>9} {:>8} {:>6} {:>7} {:>13} {:>11} {:>11.1}",
            s.round,
            s.dirty,
            s.expected,
            s.missing_count,
            s.extra_count,
            s.sent,
            s.ring_entries,
            s.ring_full_exits,
            s.harvest_ioctl.as_secs_f64() * 1e6
        );
    }
    let same = rr.rounds.len() == r.rounds.len()
        && rr.rounds.iter().zip(&r.rounds).all(|(a, b)| a.dirty == b.dirty && a.expected == b.expected);
    println!(
        "ring rounds: {}; pages sent {}; {} ring entries for {} dirty pages; {} full exits; \
         same per-round dirty sets as the bitmap VM: {}",
        rr.rounds.len(),
        rr.pages_sent(),
        rr.ring_entries(),
        rr.rounds.iter().map(|s| s.dirty).sum::<usize>(),
        rr.ring_full_exits(),
        if same { "yes" } else { "no" }
    );
    println!(
        "ring: destination vs source {} pages differ; dirty table ({} pages) vs the guest's writes: {} differ; \
         run and checks {:.2} s",
        rr.dest_diff_pages,
        rr.table_entries,
        rr.table_mismatches,
        elapsed.as_secs_f64()
    );
    let live: f64 = rr.rounds.iter().map(|s| s.harvest_ioctl.as_nanos() as f64).sum::<f64>()
        / rr.ring_entries().max(1) as f64;
    let ioctl: f64 = r.rounds.iter().map(|s| s.harvest_ioctl.as_nanos() as f64).sum::<f64>()
        / r.rounds.iter().map(|s| s.dirty).sum::<usize>().max(1) as f64;
    let (ring_rows, entries) = ring_bench(&rr, Duration::from_millis(300), 20);
    println!(
        "harvest from the kernel, per dirty page: KVM_GET_DIRTY_LOG {ioctl:.1} ns; \
         ring walk + KVM_RESET_DIRTY_RINGS {live:.1} ns per entry"
    );
    let ring_pages = rr.rounds.iter().map(|s| s.dirty).sum::<usize>();
    println!(
        "harvest: the same {entries} recorded ring entries ({ring_pages} dirty pages over {} rounds) \
         into each structure, built from empty",
        rr.rounds.len()
    );
    for row in &ring_rows {
        println!(
            "  {:<26} {:>8.2} ns per ring entry, {:>6.2} ns per dirty page   ({} builds, {} distinct pages)",
            row.name,
            row.ns_per_page,
            row.ns_per_page * entries as f64 / ring_pages.max(1) as f64,
            row.reps,
            row.pages
        );
    }
    if let Some(b) = rows.first() {
        println!("  (from the bitmaps above: {} {:.2} ns per dirty page)", b.name, b.ns_per_page);
    }
    failures(&rr).map_err(|why| format!("ring verification failed: {why}"))?;
    if !same {
        return Err("the ring VM's per-round dirty sets differ from the bitmap VM's".into());
    }
    println!("verification: all checks passed (bitmap and ring)");
    Ok(())
}

/// The ring of the second VM: room for round 1 (about 16 k pages) and the
/// kernel's reserve; cut down to what the kernel offers.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const RING_ENTRIES: u32 = 32768;

/// What failed in `r`, if anything.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn failures(r: &kvm_guest::Report) -> Result<(), String> {
    if !r.ok() {
        let mut why = Vec::new();
        if r.soft_walk_mismatches > 0 {
            why.push(format!("{} probes walk wrong in software", r.soft_walk_mismatches));
        }
        if let Some(m) = r.probe_mismatches.first() {
            why.push(format!("probe at {:#x} read {:#x}, expected {:x?}", m.va, m.got, m.expected));
        }
        if let Some(s) = r.rounds.iter().find(|s| s.missing_count + s.extra_count > 0) {
            why.push(format!("round {} dirty set: missing {:x?}, extra {:x?}", s.round, s.missing, s.extra));
        }
        if let Some(p) = r.first_dest_diff {
            why.push(format!("destination differs at {p:#x}"));
        }
        if let Some(m) = r.first_table_mismatch {
            why.push(format!("dirty table differs at {:#x}: {:?} vs {:?}", m.0, m.1, m.2));
        }
        if r.dirty_after_stop > 0 {
            why.push(format!("{} pages dirtied after the stop", r.dirty_after_stop));
        }
        return Err(why.join("; "));
    }
    Ok(())
}
