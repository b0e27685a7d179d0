//! Every public operation runs on a small thread stack: nodes and large
//! values are never built or moved on the stack whole.
//!
//! Each step of a test runs on a fresh thread with the small stack, named
//! `test/backend/step`, and hands the table on to the next step's thread; so
//! a stack overflow (which aborts the whole test binary) names the step that
//! overflowed: "thread 'u64_ops_on_16k_stack/heap/split' has overflowed its
//! stack". A step checks its results and returns what it found wrong; the
//! test thread asserts, so that a wrong result is reported in full even
//! where the small stack could not hold a panic's backtrace.
//!
//! Run in debug and in release (`cargo test --release --test stack`).

use std::thread;

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::{Custom, Large, X86_4Level};
use mem_table::typenum::{U4, U12, U16};
use mem_table::{Geometry, Level, MemTable};

const L1: Level = Level::new(1);
const L2: Level = Level::new(2);

/// Runs `f` on a new thread named `name` with a stack of `kib` KiB, and
/// returns its result.
fn on_stack<R: Send + 'static>(kib: usize, name: String, f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::Builder::new()
        .name(name)
        .stack_size(kib * 1024)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("a step panicked instead of returning its failure")
}

/// One step: an operation on the table and the checks of its results.
type Step<T> = (&'static str, fn(&mut T) -> Result<(), String>);

/// Fails the step with a message if `cond` is false.
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Makes a table on `backend` on a `kib` KiB stack, runs every step on a
/// `kib` KiB stack of its own, and drops the table on one; asserts that
/// every step got the results it expected.
fn run<V, G, B>(test: &str, kib: usize, backend: B, steps: &[Step<MemTable<V, G, B>>])
where
    V: Send + 'static,
    G: Geometry,
    B: Backend + Copy + Send,
    MemTable<V, G, B>: Send,
{
    let name = |step: &str| format!("{test}/{}/{step}", B::NAME);
    let mut t = on_stack(kib, name("new"), move || MemTable::<V, G, B>::with_backend(backend));
    let mut failures = Vec::new();
    for &(step, f) in steps {
        let (back, result) = on_stack(kib, name(step), move || {
            let mut t = t;
            let r = f(&mut t);
            (t, r)
        });
        t = back;
        if let Err(e) = result {
            failures.push(format!("{step}: expected {e}"));
        }
    }
    on_stack(kib, name("drop"), move || drop(t));
    assert!(
        failures.is_empty(),
        "{test} on {}: steps whose results were wrong:\n{}",
        B::NAME,
        failures.join("\n")
    );
}

/// The pool the tests use: room for every table the steps make.
const POOL: Pool = Pool::new(8);

// --- u64 values, x86-64, 16 KiB ---------------------------------------------

type X86<B> = MemTable<u64, X86_4Level, B>;

/// Every public operation, in an order where each result is known.
fn u64_steps<B: Backend>() -> Vec<Step<X86<B>>> {
    vec![
        ("insert", |t| {
            check!(t.insert(0x1000, 1).map_err(|e| e.kind()) == Ok(None), "insert(0x1000) == Ok(None)");
            Ok(())
        }),
        ("insert_at 2 MiB", |t| {
            check!(
                t.insert_at(0x20_0000, L1, 2).map_err(|e| e.kind()) == Ok(None),
                "insert_at 2 MiB == Ok(None)"
            );
            Ok(())
        }),
        ("insert_at 1 GiB", |t| {
            check!(
                t.insert_at(0x4000_0000, L2, 3).map_err(|e| e.kind()) == Ok(None),
                "insert_at 1 GiB == Ok(None)"
            );
            check!(t.len() == 3, "len() == 3, got {}", t.len());
            Ok(())
        }),
        ("get", |t| {
            check!(t.get(0x1abc) == Some(&1), "get(0x1abc) == Some(&1), got {:?}", t.get(0x1abc));
            check!(t.get(0x3f_ffff) == Some(&2), "get(0x3f_ffff) == Some(&2)");
            check!(t.get(0x2000).is_none(), "get(0x2000) == None");
            Ok(())
        }),
        ("get_mut", |t| {
            *t.get_mut(0x4000_1234).ok_or("get_mut(0x4000_1234) == Some")? += 10;
            check!(t.get(0x4000_0000) == Some(&13), "get after get_mut == Some(&13)");
            Ok(())
        }),
        ("get_key_value", |t| {
            let (p, v) = t.get_key_value(0x21_2345).ok_or("get_key_value(0x21_2345) == Some")?;
            check!((p.addr(), p.level(), *v) == (0x20_0000, L1, 2), "(0x20_0000, L1, 2), got {p:?} {v}");
            Ok(())
        }),
        ("entry/or_insert", |t| {
            *t.entry(0x2000).map_err(|e| e.to_string())?.or_insert(4) += 1;
            check!(t.get(0x2000) == Some(&5), "get(0x2000) == Some(&5) after or_insert(4) += 1");
            Ok(())
        }),
        ("iter", |t| {
            let (n, sum) = t.iter().fold((0, 0), |(n, s), (_, v)| (n + 1, s + v));
            check!((n, sum) == (4, 21), "4 entries summing to 21, got {n} summing to {sum}");
            Ok(())
        }),
        ("iter_mut", |t| {
            t.iter_mut().for_each(|(_, v)| *v += 100);
            let sum: u64 = t.values().sum();
            check!(sum == 421, "values summing to 421 after iter_mut, got {sum}");
            Ok(())
        }),
        ("range", |t| {
            let n = t.range(0x1000..0x20_1000).count();
            check!(n == 3, "range(0x1000..0x20_1000) yields 3 entries, got {n}");
            Ok(())
        }),
        ("split 2 MiB", |t| {
            t.split(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 3 + 512, "len() == 515 after the split, got {}", t.len());
            check!(t.get(0x3f_f000) == Some(&102), "get(0x3f_f000) == Some(&102) after the split");
            Ok(())
        }),
        ("merge", |t| {
            t.merge(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 4, "len() == 4 after the merge, got {}", t.len());
            let level = t.get_key_value(0x20_1000).map(|(p, _)| p.level());
            check!(level == Some(L1), "a level-1 entry at 0x20_0000 after the merge, got {level:?}");
            Ok(())
        }),
        ("insert_range", |t| {
            t.insert_range(0x8000_0000..0x8040_0000, 9).map_err(|e| e.to_string())?;
            check!(t.len() == 6, "len() == 6 (two 2 MiB entries added), got {}", t.len());
            Ok(())
        }),
        ("remove_range", |t| {
            t.remove_range(0x8020_0000..0x8040_0000).map_err(|e| e.to_string())?;
            check!(t.len() == 5, "len() == 5 (one 2 MiB entry removed), got {}", t.len());
            Ok(())
        }),
        ("split for compact", |t| {
            t.split(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 4 + 512, "len() == 516 after the split, got {}", t.len());
            Ok(())
        }),
        ("compact", |t| {
            let merges = t.compact();
            check!(
                merges == 1 && t.len() == 5,
                "compact() == 1 and len() == 5, got {merges} and {}",
                t.len()
            );
            Ok(())
        }),
        ("retain", |t| {
            t.retain(|p, _| p.level() != L2);
            check!(t.len() == 4 && t.get(0x4000_0000).is_none(), "the 1 GiB entry gone, len() == 4");
            Ok(())
        }),
        ("take_changes", |t| {
            let n = t.take_changes().count();
            check!(n > 0, "changes reported");
            check!(t.take_changes().count() == 0, "no change left after take_changes()");
            Ok(())
        }),
        ("clone", |t| {
            let c = t.clone();
            check!(c == *t && c.len() == 4, "the clone equals the table");
            Ok(())
        }),
        ("into_iter", |t| {
            let pages: Vec<u64> = t.clone().into_iter().map(|(p, _)| p.addr()).collect();
            check!(pages == [0x1000, 0x2000, 0x20_0000, 0x8000_0000], "into_iter's pages, got {pages:x?}");
            Ok(())
        }),
        ("pop_first", |t| {
            let first = t.pop_first().map(|(p, v)| (p.addr(), v));
            check!(first == Some((0x1000, 101)), "pop_first() == (0x1000, 101), got {first:?}");
            Ok(())
        }),
        ("clear", |t| {
            t.clear();
            check!(t.is_empty() && t.stats().nodes() == 1, "an empty table holding the root only");
            Ok(())
        }),
        ("insert after clear", |t| {
            check!(t.insert(0x1000, 1).map_err(|e| e.kind()) == Ok(None), "insert(0x1000) == Ok(None)");
            Ok(())
        }),
    ]
}

/// Every operation with `u64` values on x86-64, on a 16 KiB stack.
#[test]
#[cfg_attr(miri, ignore = "stack sizes are not enforced under Miri")]
fn u64_ops_on_16k_stack() {
    const KIB: usize = 16;
    run("u64_ops_on_16k_stack", KIB, Heap, &u64_steps());
    run("u64_ops_on_16k_stack", KIB, Arena, &u64_steps());
    run("u64_ops_on_16k_stack", KIB, POOL, &u64_steps());
}

// --- Page-sized values, x86-64, 64 KiB ----------------------------------------

/// A value as large as a base page.
type PageValue = [u8; 4096];

type Paged<B> = MemTable<PageValue, X86_4Level, B>;

/// A page-sized value filled with `b`.
fn fill(b: u8) -> PageValue {
    [b; 4096]
}

/// The first byte of the value covering `addr`, if any.
fn byte<B: Backend>(t: &Paged<B>, addr: u64) -> Option<u8> {
    t.get(addr).map(|v| v[0])
}

/// The operations of [`u64_steps`] with page-sized values, on a handful of
/// pages (a split makes 512).
fn page_steps<B: Backend>() -> Vec<Step<Paged<B>>> {
    vec![
        ("insert", |t| {
            check!(t.insert(0x1000, fill(1)).is_ok_and(|old| old.is_none()), "insert(0x1000) == Ok(None)");
            Ok(())
        }),
        ("insert_at 2 MiB", |t| {
            check!(
                t.insert_at(0x20_0000, L1, fill(2)).is_ok_and(|o| o.is_none()),
                "insert_at 2 MiB == Ok(None)"
            );
            Ok(())
        }),
        ("insert_at 1 GiB", |t| {
            check!(
                t.insert_at(0x4000_0000, L2, fill(3)).is_ok_and(|o| o.is_none()),
                "insert_at 1 GiB == Ok(None)"
            );
            check!(t.len() == 3, "len() == 3, got {}", t.len());
            Ok(())
        }),
        ("get", |t| {
            check!(byte(t, 0x1abc) == Some(1), "get(0x1abc) == [1; 4096]");
            check!(byte(t, 0x3f_ffff) == Some(2), "get(0x3f_ffff) == [2; 4096]");
            check!(byte(t, 0x2000).is_none(), "get(0x2000) == None");
            Ok(())
        }),
        ("get_mut", |t| {
            t.get_mut(0x4000_1234).ok_or("get_mut(0x4000_1234) == Some")?[0] = 13;
            check!(byte(t, 0x4000_0000) == Some(13), "get after get_mut starts with 13");
            Ok(())
        }),
        ("get_key_value", |t| {
            let (p, v) = t.get_key_value(0x21_2345).ok_or("get_key_value(0x21_2345) == Some")?;
            check!((p.addr(), p.level(), v[0]) == (0x20_0000, L1, 2), "(0x20_0000, L1, [2; ..]), got {p:?}");
            Ok(())
        }),
        ("entry/or_insert", |t| {
            t.entry(0x2000).map_err(|e| e.to_string())?.or_insert_with(|| fill(4))[0] += 1;
            check!(
                byte(t, 0x2000) == Some(5),
                "get(0x2000) starts with 5 after or_insert_with([4; ..])[0] += 1"
            );
            Ok(())
        }),
        ("iter", |t| {
            let (n, sum) = t.iter().fold((0, 0), |(n, s), (_, v)| (n + 1, s + u32::from(v[0])));
            check!((n, sum) == (4, 21), "4 entries whose first bytes sum to 21, got {n} summing to {sum}");
            Ok(())
        }),
        ("iter_mut", |t| {
            t.iter_mut().for_each(|(_, v)| v[0] += 100);
            let sum: u32 = t.values().map(|v| u32::from(v[0])).sum();
            check!(sum == 421, "first bytes summing to 421 after iter_mut, got {sum}");
            Ok(())
        }),
        ("range", |t| {
            let n = t.range(0x1000..0x20_1000).count();
            check!(n == 3, "range(0x1000..0x20_1000) yields 3 entries, got {n}");
            Ok(())
        }),
        ("split 2 MiB", |t| {
            t.split(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 3 + 512, "len() == 515 after the split, got {}", t.len());
            check!(byte(t, 0x3f_f000) == Some(102), "get(0x3f_f000) starts with 102 after the split");
            Ok(())
        }),
        ("merge", |t| {
            t.merge(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 4, "len() == 4 after the merge, got {}", t.len());
            let level = t.get_key_value(0x20_1000).map(|(p, _)| p.level());
            check!(level == Some(L1), "a level-1 entry at 0x20_0000 after the merge, got {level:?}");
            Ok(())
        }),
        ("insert_range", |t| {
            t.insert_range(0x8000_0000..0x8040_0000, fill(9)).map_err(|e| e.without_value().to_string())?;
            check!(t.len() == 6, "len() == 6 (two 2 MiB entries added), got {}", t.len());
            Ok(())
        }),
        ("remove_range", |t| {
            t.remove_range(0x8020_0000..0x8040_0000).map_err(|e| e.to_string())?;
            check!(t.len() == 5, "len() == 5 (one 2 MiB entry removed), got {}", t.len());
            Ok(())
        }),
        ("split for compact", |t| {
            t.split(0x20_0000, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 4 + 512, "len() == 516 after the split, got {}", t.len());
            Ok(())
        }),
        ("compact", |t| {
            let merges = t.compact();
            check!(
                merges == 1 && t.len() == 5,
                "compact() == 1 and len() == 5, got {merges} and {}",
                t.len()
            );
            Ok(())
        }),
        ("retain", |t| {
            t.retain(|p, _| p.level() != L2);
            check!(t.len() == 4 && t.get(0x4000_0000).is_none(), "the 1 GiB entry gone, len() == 4");
            Ok(())
        }),
        ("take_changes", |t| {
            let n = t.take_changes().count();
            check!(n > 0, "changes reported");
            check!(t.take_changes().count() == 0, "no change left after take_changes()");
            Ok(())
        }),
        ("clone", |t| {
            let c = t.clone();
            check!(c == *t && c.len() == 4, "the clone equals the table");
            Ok(())
        }),
        ("into_iter", |t| {
            let pages: Vec<(u64, u8)> = t.clone().into_iter().map(|(p, v)| (p.addr(), v[0])).collect();
            check!(
                pages == [(0x1000, 101), (0x2000, 105), (0x20_0000, 102), (0x8000_0000, 9)],
                "into_iter's pages and first bytes, got {pages:x?}"
            );
            Ok(())
        }),
        ("pop_first", |t| {
            let first = t.pop_first().map(|(p, v)| (p.addr(), v[0]));
            check!(first == Some((0x1000, 101)), "pop_first() == (0x1000, [101; ..]), got {first:?}");
            Ok(())
        }),
        ("clear", |t| {
            t.clear();
            check!(t.is_empty() && t.stats().nodes() == 1, "an empty table holding the root only");
            Ok(())
        }),
        ("insert after clear", |t| {
            check!(t.insert(0x1000, fill(1)).is_ok_and(|o| o.is_none()), "insert(0x1000) == Ok(None)");
            Ok(())
        }),
    ]
}

/// Every operation with page-sized values on x86-64, on a 64 KiB stack.
#[test]
#[cfg_attr(miri, ignore = "stack sizes are not enforced under Miri")]
fn page_sized_values_on_64k_stack() {
    const KIB: usize = 64;
    run("page_sized_values_on_64k_stack", KIB, Heap, &page_steps());
    run("page_sized_values_on_64k_stack", KIB, Arena, &page_steps());
    run("page_sized_values_on_64k_stack", KIB, POOL, &page_steps());
}

// --- A geometry with 65,536-slot tables, 64 KiB ----------------------------------

/// 4 KiB pages, 65,536-slot bottom and level-1 tables (256 MiB large pages),
/// a 16-slot root: 48 address bits.
type Wide = Custom<U12, (U16, Large<U16>, U4)>;

type WideTable<B> = MemTable<u64, Wide, B>;

/// A level-1 page of [`Wide`].
const MIB256: u64 = 1 << 28;

fn wide_steps<B: Backend>() -> Vec<Step<WideTable<B>>> {
    vec![
        ("insert", |t| {
            check!(t.insert(0x1000, 1).map_err(|e| e.kind()) == Ok(None), "insert(0x1000) == Ok(None)");
            Ok(())
        }),
        ("insert_at level 1", |t| {
            check!(
                t.insert_at(MIB256, L1, 2).map_err(|e| e.kind()) == Ok(None),
                "insert_at 256 MiB == Ok(None)"
            );
            Ok(())
        }),
        ("split", |t| {
            t.split(MIB256, L1).map_err(|e| e.to_string())?;
            check!(t.len() == 1 + 65_536, "len() == 65,537 after the split, got {}", t.len());
            Ok(())
        }),
        ("get", |t| {
            let found = t.get_key_value(MIB256 + 0x5000).map(|(p, v)| (p.addr(), p.level(), *v));
            check!(
                found == Some((MIB256 + 0x5000, Level::BASE, 2)),
                "a base entry of 2 there, got {found:?}"
            );
            Ok(())
        }),
        ("iter", |t| {
            let n = t.iter().count();
            check!(n == 1 + 65_536, "iter() yields 65,537 entries, got {n}");
            Ok(())
        }),
        ("remove_range", |t| {
            t.remove_range(MIB256..2 * MIB256).map_err(|e| e.to_string())?;
            check!(t.len() == 1 && t.get(0x1000) == Some(&1), "only 0x1000 left, len() == {}", t.len());
            Ok(())
        }),
    ]
}

/// Tables of 65,536 slots (half a MiB and a MiB each), on a 64 KiB stack.
#[test]
#[cfg_attr(miri, ignore = "stack sizes are not enforced under Miri")]
fn wide_level_geometry_on_64k_stack() {
    const KIB: usize = 64;
    run("wide_level_geometry_on_64k_stack", KIB, Heap, &wide_steps());
    run("wide_level_geometry_on_64k_stack", KIB, Arena, &wide_steps());
    run("wide_level_geometry_on_64k_stack", KIB, POOL, &wide_steps());
}
