//! loom models of `sync::PageBitmap`'s protocols: table creation raced by
//! two markers, a mark against a harvest's swap, two harvesters, and a mark
//! whose data a harvester must see; every interleaving up to the preemption
//! bound (`LOOM_MAX_PREEMPTIONS`, 3 unless set: at most 168 interleavings
//! a model). The models are small enough to explore without a bound as
//! well: `LOOM_MAX_PREEMPTIONS=100` (more than any of them can use) passes
//! too, at most 903 interleavings, well under a second.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --features sync --test sync_bitmap_loom
//! ```
//!
//! The bitmap runs on loom's atomics (`src/sync/prim.rs`), and each table
//! visit reads a loom cell written when the table was made: a thread that
//! reaches a table whose creation does not happen before its visit is a
//! causality violation loom reports. Tables are never freed while shared,
//! so there is no reclamation to model. Three negative controls, each
//! through a `#[doc(hidden)]` `cfg(loom)` hook, must fail: new tables
//! published with `Relaxed`; a harvest by load and store instead of a swap
//! (a mark is lost); a mark that skips its RMW when it finds the bit set (a
//! harvester takes the bit without the marker's data, and no later harvest
//! has it).
#![cfg(all(loom, feature = "sync"))]

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;
use mem_table::geometry::Custom;
use mem_table::sync::PageBitmap;
use mem_table::typenum::{U1, U12};
use std::sync::atomic::Ordering::Relaxed;

/// Three one-bit levels: two pages per bottom table, two links above.
type G3 = Custom<U12, (U1, U1, U1)>;
/// Two one-bit levels: the root and the bottom tables.
type G2 = Custom<U12, (U1, U1)>;

/// Outcomes a model saw, one bit each, over all its interleavings: the
/// models check that loom explored both sides of each race.
#[derive(Clone, Default)]
struct Seen(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Seen {
    fn saw(&self, bit: usize) {
        self.0.fetch_or(1 << bit, Relaxed);
    }
}

/// Runs `f` under loom; returns the outcomes seen.
fn model<F: Fn(&Seen) + Sync + Send + 'static>(f: F) -> usize {
    use std::sync::atomic::AtomicUsize;
    let mut b = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        b.preemption_bound = Some(3);
    }
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = runs.clone();
    let seen = Seen::default();
    let s2 = seen.clone();
    b.check(move || {
        counted.fetch_add(1, Relaxed);
        f(&s2)
    });
    println!("{} interleavings, preemption bound {:?}", runs.load(Relaxed), b.preemption_bound);
    seen.0.load(Relaxed)
}

/// Two markers race to create the same path of two tables (each marks its
/// own page of the same bottom table); the loser frees its tables and uses
/// the winner's. Both marks land, the tables are counted once.
#[test]
fn table_creation_race() {
    let seen = model(|seen| {
        let b: Arc<PageBitmap<G3>> = Arc::new(PageBitmap::new());
        let t = {
            let b = b.clone();
            thread::spawn(move || b.mark(0x1000).unwrap())
        };
        assert!(b.mark(0).unwrap());
        // The other page's mark, seen or not yet: never a torn table.
        seen.saw(b.is_marked(0x1000) as usize);
        assert!(t.join().unwrap());
        assert_eq!(b.tables(), 3);
        assert_eq!(b.take_pages(), [0, 0x1000]);
    });
    assert_eq!(seen, 0b11, "both sides of the race explored");
}

/// Both markers mark the same page: exactly one sets it.
#[test]
fn same_page_race() {
    model(|_| {
        let b: Arc<PageBitmap<G3>> = Arc::new(PageBitmap::new());
        let t = {
            let b = b.clone();
            thread::spawn(move || b.mark(0x1000).unwrap())
        };
        let mine = b.mark(0x1000).unwrap();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one 0 -> 1 transition");
        assert_eq!(b.tables(), 3);
        assert_eq!(b.take_pages(), [0x1000]);
    });
}

/// A mark against a harvest of the same word (another page of it is
/// already marked): the mark lands in this harvest or the next, once.
fn mark_vs_harvest(load_store: bool) -> usize {
    model(move |seen| {
        let b: Arc<PageBitmap<G2>> = Arc::new(PageBitmap::new());
        b.mark(0x1000).unwrap();
        let t = {
            let b = b.clone();
            thread::spawn(move || b.mark(0).unwrap())
        };
        let first = if load_store { b.take_pages_load_store() } else { b.take_pages() };
        t.join().unwrap();
        let second = b.take_pages();
        seen.saw(first.contains(&0) as usize);
        let mut all = [first, second].concat();
        all.sort();
        assert_eq!(all, [0, 0x1000], "each mark harvested exactly once");
    })
}

#[test]
fn mark_vs_harvest_swap() {
    assert_eq!(mark_vs_harvest(false), 0b11, "both sides of the race explored");
}

/// Negative control: a harvest that loads the word and stores it back
/// without its bits loses the mark that lands in between.
#[test]
#[should_panic(expected = "each mark harvested exactly once")]
fn negative_control_harvest_by_load_and_store() {
    mark_vs_harvest(true);
}

/// A harvest while the marker creates the tables: the harvester sees no
/// table, or the new table whole; the mark is taken once.
///
/// The marker runs on the model's main thread and the harvester on the
/// spawned one, not the other way round: loom's DPOR remembers one last
/// access per atomic, so a marker's load of a null link just before its
/// compare-exchange hides an earlier load by the harvester from the
/// exchange, and the interleaving in which the harvester loads after it
/// would never be tried (it was not, with the roles swapped: one
/// interleaving). A harvester's load *after* the exchange is a dependency
/// loom does see, and backtracks from.
#[test]
fn harvest_vs_table_creation() {
    let seen = model(|seen| {
        let b: Arc<PageBitmap<G3>> = Arc::new(PageBitmap::new());
        let t = {
            let b = b.clone();
            thread::spawn(move || b.take_pages())
        };
        assert!(b.mark(0x3000).unwrap());
        let first = t.join().unwrap();
        seen.saw(first.len());
        let mut all = [first, b.take_pages()].concat();
        all.sort();
        assert_eq!(all, [0x3000]);
    });
    assert_eq!(seen, 0b11, "both sides of the race explored");
}

/// Negative control: tables published with `Relaxed`. The reader that
/// finds the link visits a table whose creation it did not synchronise
/// with. (Roles as in `harvest_vs_table_creation`.)
#[test]
#[should_panic(expected = "Causality violation")]
fn negative_control_relaxed_publication() {
    model(|_| {
        let b: Arc<PageBitmap<G3>> = Arc::new(PageBitmap::with_relaxed_publish());
        let t = {
            let b = b.clone();
            thread::spawn(move || b.is_marked(0x3000))
        };
        b.mark(0x3000).unwrap();
        t.join().unwrap();
    });
}

/// Two harvesters and one marked page: exactly one takes it.
#[test]
fn two_harvesters() {
    let seen = model(|seen| {
        let b: Arc<PageBitmap<G2>> = Arc::new(PageBitmap::new());
        b.mark(0x1000).unwrap();
        let t = {
            let b = b.clone();
            thread::spawn(move || b.take_pages())
        };
        let mine = b.take_pages();
        let theirs = t.join().unwrap();
        seen.saw(mine.len());
        let mut all = [mine, theirs].concat();
        all.sort();
        assert_eq!(all, [0x1000]);
    });
    assert_eq!(seen, 0b11, "both sides of the race explored");
}

/// What dirty tracking is for: the guest writes a page, then marks it; a
/// harvester that takes the page copies it. Whatever the interleaving, the
/// copy of the last harvest that took the page holds the write (page 0 is
/// already dirty from an earlier write, so the bit may already be set).
fn mark_publishes_data(load_first: bool) -> usize {
    model(move |seen| {
        let b: Arc<PageBitmap<G2>> = Arc::new(PageBitmap::new());
        let data = Arc::new(AtomicU64::new(0));
        b.mark(0).unwrap();
        let t = {
            let (b, data) = (b.clone(), data.clone());
            thread::spawn(move || {
                data.store(1, Relaxed); // the guest's write
                if load_first {
                    b.mark_load_first(0);
                } else {
                    b.mark(0).unwrap();
                }
            })
        };
        // One migration round: take the dirty pages, copy them.
        let mut copy = None;
        if b.take_pages() == [0] {
            copy = Some(data.load(Relaxed));
            seen.saw(copy.unwrap() as usize);
        }
        t.join().unwrap();
        // The final round, after the guest stopped.
        if b.take_pages() == [0] {
            copy = Some(data.load(Relaxed));
        }
        assert_eq!(copy, Some(1), "the destination has the guest's write");
    })
}

#[test]
fn mark_publishes_data_to_the_harvester() {
    // The first round copied the page before the write (and the final
    // round copies it again) or after it.
    assert_eq!(mark_publishes_data(false), 0b11);
}

/// Negative control: a mark that finds the bit set and skips its RMW
/// gives the harvester nothing to acquire, and no later harvest has it.
#[test]
#[should_panic(expected = "the destination has the guest's write")]
fn negative_control_mark_that_skips_a_set_bit() {
    mark_publishes_data(true);
}
