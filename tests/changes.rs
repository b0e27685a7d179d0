//! Change reports: minimal (the workloads of the hypervisor issue, counted
//! region by region) and transactional (abandon, commit).

use std::collections::BTreeMap;

use mem_table::ops::{Children, PageOps};
use mem_table::{Level, MemTable, Page};

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
const GIB1: u64 = 0x4000_0000;
const L1: Level = Level::new(1);
const L2: Level = Level::new(2);

type Report = Vec<(u64, u64, Option<u32>)>;

fn report(t: &mut MemTable<u32>) -> Report {
    t.take_changes().map(|c| (c.start, c.last, c.value.copied())).collect()
}

/// What each page held at the last report, as the reports said: the shadow
/// a hypervisor keeps. Page address -> value.
#[derive(Default)]
struct Shadow(BTreeMap<u64, u32>);

impl Shadow {
    /// Applies a report; returns how many of its regions changed no page.
    fn apply(&mut self, r: &Report) -> usize {
        let mut noop = 0;
        for &(start, last, v) in r {
            let mut changed = false;
            for p in (start..=last).step_by(KIB4 as usize) {
                changed |= match v {
                    Some(v) => self.0.insert(p, v) != Some(v),
                    None => self.0.remove(&p).is_some(),
                };
            }
            noop += !changed as usize;
        }
        noop
    }

    fn matches(&self, t: &MemTable<u32>) -> bool {
        let mut pages = BTreeMap::new();
        for (p, &v) in t.iter() {
            for a in (p.addr()..=p.last()).step_by(KIB4 as usize) {
                pages.insert(a, v);
            }
        }
        pages == self.0
    }
}

#[test]
fn clear_then_one_insert_is_three_regions() {
    let mut t: MemTable<u32> = MemTable::new();
    for i in 0..2048u64 {
        t.insert(i * KIB4 * 3, 1).unwrap();
    }
    report(&mut t);
    t.clear();
    t.insert(0x5000, 2).unwrap();
    let r = report(&mut t);
    // Empty below, the page, empty above: one region each, not one per slot.
    assert_eq!(r.len(), 3, "{r:x?}");
    assert_eq!(r[1], (0x5000, 0x5fff, Some(2)));
    assert_eq!((r[0].2, r[2].2), (None, None));
}

#[test]
fn removing_everything_then_one_insert_is_three_regions() {
    let mut t: MemTable<u32> = MemTable::new();
    for i in 0..1024u64 {
        t.insert(i * KIB4, 1).unwrap();
    }
    report(&mut t);
    for i in 0..1024u64 {
        t.remove(i * KIB4).unwrap();
    }
    t.insert(0x5000, 1).unwrap();
    let r = report(&mut t);
    assert_eq!(r.len(), 3, "{r:x?}");
}

#[test]
fn protecting_one_page_inside_a_gigabyte_is_one_region() {
    let mut t: MemTable<u32> = MemTable::new();
    t.track_values();
    t.insert_at(GIB1, L2, 7).unwrap();
    report(&mut t);
    t.split(GIB1, L2).unwrap();
    t.split(GIB1 + 3 * MIB2, L1).unwrap();
    t.insert(GIB1 + 3 * MIB2 + 5 * KIB4, 1).unwrap();
    assert_eq!(report(&mut t), [(GIB1 + 3 * MIB2 + 5 * KIB4, GIB1 + 3 * MIB2 + 6 * KIB4 - 1, Some(1))]);
    // Without value tracking too: the splits keep every value.
    let mut t: MemTable<u32> = MemTable::new();
    t.insert_at(GIB1, L2, 7).unwrap();
    report(&mut t);
    t.split(GIB1, L2).unwrap();
    t.split(GIB1, L1).unwrap();
    t.insert(GIB1, 1).unwrap();
    assert_eq!(report(&mut t).len(), 1);
}

#[test]
fn split_and_merge_that_keep_values_report_nothing() {
    let mut t: MemTable<u32> = MemTable::new();
    t.insert_at(MIB2, L1, 3).unwrap();
    report(&mut t);
    t.split(MIB2, L1).unwrap();
    assert!(report(&mut t).is_empty());
    t.merge(MIB2, L1).unwrap();
    assert!(report(&mut t).is_empty());
    t.split(MIB2, L1).unwrap();
    assert_eq!(t.compact(), 1);
    assert!(report(&mut t).is_empty());
}

/// Shares a count out over the sub-pages; sums on merge.
struct Share;

impl PageOps<u32> for Share {
    fn split(&mut self, page: Page, value: &u32, sub: Page) -> u32 {
        value / (page.size() / sub.size()) as u32
    }
    fn merge(&mut self, _: Page, children: Children<'_, '_, u32>) -> Option<u32> {
        Some(children.sum())
    }
}

#[test]
fn a_split_that_changes_values_reports_the_pages_coalesced() {
    let mut t: MemTable<u32> = MemTable::new();
    t.track_values();
    t.insert_at(MIB2, L1, 1024).unwrap();
    report(&mut t);
    t.split_with(MIB2, L1, &mut Share).unwrap();
    assert_eq!(report(&mut t), [(MIB2, 2 * MIB2 - 1, Some(2))]);
    // Without tracking, each sub-page is its own region.
    let mut t: MemTable<u32> = MemTable::new();
    t.insert_at(MIB2, L1, 1024).unwrap();
    report(&mut t);
    t.split_with(MIB2, L1, &mut Share).unwrap();
    assert_eq!(report(&mut t).len(), 512);
}

#[test]
fn read_only_passes_report_nothing_when_values_are_compared() {
    let mut t: MemTable<u32> = MemTable::new();
    t.track_values();
    for i in 0..600u64 {
        t.insert(i * KIB4, i as u32).unwrap();
    }
    t.insert_at(GIB1, L2, 9).unwrap();
    report(&mut t);
    let _ = t.get_mut(0x3000).unwrap();
    for (_, v) in t.iter_mut() {
        let _ = *v;
    }
    for (_, v) in t.range_mut(..0x1_0000).rev() {
        *v += 1;
        *v -= 1;
    }
    t.retain(|_, v| *v < 1_000_000);
    *t.entry(0x4000).unwrap().or_insert(0) += 0;
    t.insert(0x5000, 5).unwrap();
    t.insert_range(GIB1..2 * GIB1, 9).unwrap();
    assert!(t.has_changes(), "the passes marked");
    assert_eq!(report(&mut t), []);
    // A real change among them is reported alone.
    for (p, v) in t.iter_mut() {
        if p.addr() == 0x7000 {
            *v = 70;
        }
    }
    assert_eq!(report(&mut t), [(0x7000, 0x7fff, Some(70))]);
}

#[test]
fn insert_then_remove_within_a_batch_reports_nothing_when_compared() {
    let mut t: MemTable<u32> = MemTable::new();
    t.track_values();
    t.insert(0x1000, 1).unwrap();
    t.insert(0x9000, 9).unwrap();
    report(&mut t);
    t.insert(1 << 40, 2).unwrap(); // new tables on the way
    t.remove(1 << 40).unwrap();
    t.remove(0x1000).unwrap();
    t.insert(0x1000, 1).unwrap();
    assert_eq!(report(&mut t), []);
}

/// A region whose tables were freed and made anew within the batch: with
/// values compared, the freed tables' marks say which of their slots were
/// empty, so the gaps of the new tables are not reported. Without, they are.
#[test]
fn a_region_freed_and_refilled_reports_nothing_new() {
    let mut t: MemTable<u32> = MemTable::new();
    t.track_values();
    t.insert(0x1000, 1).unwrap();
    t.insert(1 << 30, 3).unwrap();
    report(&mut t);
    t.remove(0x1000).unwrap(); // frees the bottom table, and the 2 MiB level's
    t.remove(1 << 30).unwrap(); // frees the 1 GiB level's too
    t.insert(0x1000, 1).unwrap();
    t.insert(0x3000, 2).unwrap();
    // The 1 GiB region whose tables went is reported emptied, as one region.
    assert_eq!(report(&mut t), [(0x3000, 0x3fff, Some(2)), (1 << 30, (2 << 30) - 1, None)]);
    // Without comparison: the new tables' gaps are reported as emptied.
    let mut t: MemTable<u32> = MemTable::new();
    t.insert(0x1000, 1).unwrap();
    report(&mut t);
    t.remove(0x1000).unwrap();
    t.insert(0x1000, 1).unwrap();
    assert_eq!(report(&mut t), [(0, 0xfff, None), (0x1000, 0x1fff, Some(1)), (0x2000, (1 << 39) - 1, None)]);
}

#[test]
fn an_abandoned_harvest_loses_nothing() {
    let mut t: MemTable<u32> = MemTable::new();
    for i in 0..8u64 {
        t.insert(i * GIB1, i as u32).unwrap();
    }
    let all = report(&mut t);
    assert_eq!(all.len(), 8);
    t.insert(0x1000, 1).unwrap();
    t.insert(5 * GIB1, 50).unwrap();
    t.remove(7 * GIB1).unwrap();
    // Half-way through sending, the send fails: abandon.
    {
        let mut harvest = t.changes();
        assert_eq!(harvest.next().map(|c| c.start), Some(0x1000));
        // dropped here without commit
    }
    t.insert(6 * GIB1, 60).unwrap();
    let r: Report = t.changes().map(|c| (c.start, c.last, c.value.copied())).collect();
    let starts: Vec<u64> = r.iter().map(|c| c.0).collect();
    assert_eq!(starts, [0x1000, 5 * GIB1, 6 * GIB1, 7 * GIB1], "{r:x?}");
    // Committed without reading the rest: the marks are gone.
    t.changes().commit();
    assert!(!t.has_changes());
    assert_eq!(report(&mut t), []);
}

/// The permission workload of the issue: rounds of four page protects
/// (each splits a large entry), periodic unprotects, and `compact`. Counts
/// the regions that change no page against a shadow, with the reports
/// applied, and checks the shadow reproduces the table.
fn permission_workload(track: bool) -> (usize, usize, usize) {
    let mut t: MemTable<u32> = MemTable::new();
    if track {
        t.track_values();
    }
    let mut shadow = Shadow::default();
    for g in 0..4u64 {
        t.insert_at(g * GIB1, L2, 0b011).unwrap(); // rw-
    }
    shadow.apply(&report(&mut t));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let (mut regions, mut noop, mut protected) = (0, 0, Vec::new());
    for round in 0..200 {
        for _ in 0..4 {
            let page = next(4 * GIB1 / KIB4) * KIB4;
            for l in [L2, L1] {
                if let Some((p, _)) = t.get_key_value(page) {
                    if p.level() == l {
                        t.split(p.addr(), l).unwrap();
                    }
                }
            }
            t.insert(page, 0b001).unwrap(); // r--
            protected.push(page);
        }
        if round % 10 == 9 {
            for page in protected.drain(..) {
                t.insert(page, 0b011).unwrap();
            }
        }
        t.compact();
        let r = report(&mut t);
        regions += r.len();
        noop += shadow.apply(&r);
    }
    assert!(shadow.matches(&t), "the reports do not reproduce the table");
    (regions, noop, t.len())
}

#[test]
fn permission_workload_reports_are_minimal() {
    let (regions, noop, _) = permission_workload(true);
    println!("permission workload, values compared: {regions} regions, {noop} change no page");
    assert!(regions > 0);
    // The target: at most 1 % of reported regions change no page's value.
    assert!(noop * 100 <= regions, "{noop} of {regions} regions change no page");
    let (regions, noop, _) = permission_workload(false);
    println!("permission workload, not compared: {regions} regions, {noop} change no page");
}
