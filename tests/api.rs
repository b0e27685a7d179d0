//! The std-map surface (issue 12): public cursors, `extract_if`,
//! `drain_range`, `split_off`, `into_keys`/`into_values`,
//! `get_disjoint_mut`, `Hash`, `Entry::key`, `Debug` and the default type
//! parameters. Large-page cases and errors (table unchanged) for each.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mem_table::backend::{Arena, Pool};
use mem_table::ops::FnOps;
use mem_table::{
    Cursor, CursorMut, Drain, Entry, ErrorKind, Iter, Level, MemTable, OccupiedEntry, Page, VacantEntry,
    X86_4Level,
};

const L1: Level = Level::new(1);
const L2: Level = Level::new(2);
const MIB2: u64 = 0x20_0000;
const GIB1: u64 = 0x4000_0000;

type Item = (u64, u8, u32);

fn items(t: &MemTable<u32>) -> Vec<Item> {
    t.iter().map(|(p, v)| (p.addr(), p.level().index() as u8, *v)).collect()
}

fn item((p, v): (Page, &u32)) -> Item {
    (p.addr(), p.level().index() as u8, *v)
}

fn owned((p, v): (Page, u32)) -> Item {
    (p.addr(), p.level().index() as u8, v)
}

/// Base pages 0x1000 (1), 0x2000 (2); 2 MiB at 0x20_0000 (3); 1 GiB at
/// 1 GiB (4); base page 0x8000_1000 (5).
fn populated() -> MemTable<u32> {
    let mut t = MemTable::new();
    t.insert(0x1000, 1).unwrap();
    t.insert(0x2000, 2).unwrap();
    t.insert_at(MIB2, L1, 3).unwrap();
    t.insert_at(GIB1, L2, 4).unwrap();
    t.insert(2 * GIB1 + 0x1000, 5).unwrap();
    t
}

/// The report of `t` rebuilds `want` from `before` (which it updates).
fn report_rebuilds(t: &mut MemTable<u32>, before: &mut Vec<(u64, u64, u32)>) {
    let mut cover: std::collections::BTreeMap<u64, (u64, u32)> =
        before.iter().map(|&(s, l, v)| (s, (l, v))).collect();
    for c in t.take_changes() {
        // Clear the region, then set it.
        let inside: Vec<u64> =
            cover.range(..=c.last).filter(|(_, (l, _))| *l >= c.start).map(|(&s, _)| s).collect();
        for s in inside {
            let (l, v) = cover.remove(&s).unwrap();
            if s < c.start {
                cover.insert(s, (c.start - 1, v));
            }
            if l > c.last {
                cover.insert(c.last + 1, (l, v));
            }
        }
        if let Some(v) = c.value {
            cover.insert(c.start, (c.last, *v));
        }
    }
    let got: Vec<(u64, u64, u32)> = cover.iter().map(|(&s, &(l, v))| (s, l, v)).collect();
    let mut want: Vec<(u64, u64, u32)> = Vec::new();
    for (p, v) in t.iter() {
        want.push((p.addr(), p.last(), *v));
    }
    // Compare by address: split both into base pages would be too large;
    // compare coverage at every region start instead.
    for &(s, l, v) in &want {
        assert!(
            got.iter().any(|&(gs, gl, gv)| gs <= s && l <= gl && gv == v),
            "{s:#x}..={l:#x} = {v} unreported"
        );
    }
    for &(s, l, v) in &got {
        for a in [s, l] {
            assert_eq!(t.get(a), Some(&v), "report says {a:#x} = {v}");
        }
    }
    *before = got;
}

// ---- cursors ----------------------------------------------------------------

#[test]
fn cursor_walks_both_ways_over_every_level() {
    let t = populated();
    let all = items(&t);
    let mut c = t.cursor_front();
    let fwd: Vec<Item> = std::iter::from_fn(|| c.next().map(item)).collect();
    assert_eq!(fwd, all);
    assert_eq!(c.position(), Some(2 * GIB1 + 0x2000));
    assert_eq!(c.next(), None);
    let back: Vec<Item> = std::iter::from_fn(|| c.prev().map(item)).collect();
    assert!(back.iter().rev().eq(&all));
    assert_eq!(c.position(), Some(0x1000));
    assert_eq!(c.prev(), None);

    let mut c = t.cursor_back();
    assert_eq!(c.position(), None);
    assert_eq!(c.peek_next(), None);
    assert_eq!(c.peek_prev().map(item), Some((2 * GIB1 + 0x1000, 0, 5)));
    // Turning round and round.
    assert_eq!(c.prev().map(item), Some((2 * GIB1 + 0x1000, 0, 5)));
    assert_eq!(c.prev().map(item), Some((GIB1, 2, 4)));
    assert_eq!(c.next().map(item), Some((GIB1, 2, 4)));
    assert_eq!(c.prev().map(item), Some((GIB1, 2, 4)));
    assert_eq!(c.prev().map(item), Some((MIB2, 1, 3)));
    assert_eq!(c.position(), Some(MIB2));
}

#[test]
fn cursor_at_a_large_page_sits_before_it() {
    let t = populated();
    for addr in [GIB1, GIB1 + 0x1234_5678, 2 * GIB1 - 1] {
        let c = t.cursor_at(addr);
        assert_eq!(c.position(), Some(GIB1));
        assert_eq!(c.peek_next().map(item), Some((GIB1, 2, 4)));
        assert_eq!(c.peek_prev().map(item), Some((MIB2, 1, 3)));
    }
    // A hole: at the address itself.
    let mut c = t.cursor_at(0x1_0000);
    assert_eq!(c.position(), Some(0x1_0000));
    assert_eq!(c.peek_next().map(item), Some((MIB2, 1, 3)));
    assert_eq!(c.peek_prev().map(item), Some((0x2000, 0, 2)));
    // Out of reach: past everything.
    c.seek(1 << 48);
    assert_eq!(c.position(), None);
    assert_eq!(c.peek_prev().map(item), Some((2 * GIB1 + 0x1000, 0, 5)));
    c.seek(0);
    assert_eq!(c.position(), Some(0));
    assert_eq!(c.peek_prev(), None);
    // Clones move on their own.
    let mut d = c.clone();
    d.next();
    assert_eq!((c.position(), d.position()), (Some(0), Some(0x2000)));
    assert!(format!("{d:?}").contains("0x2000"));
}

#[test]
fn cursor_at_the_end_of_a_64_bit_space() {
    use mem_table::geometry::{Custom, Large};
    use mem_table::typenum::{U4, U40};
    type Wide = Custom<U40, (U4, Large<U4>, U4, Large<U4>, U4, U4)>;
    let mut t: MemTable<u32, Wide> = MemTable::new();
    let last = u64::MAX - ((1 << 40) - 1);
    t.insert(last, 9).unwrap();
    let mut c = t.cursor_front();
    assert_eq!(c.next().map(|(p, v)| (p.addr(), *v)), Some((last, 9)));
    assert_eq!(c.position(), None);
    assert_eq!(c.next(), None);
    assert_eq!(c.prev().map(|(p, _)| p.addr()), Some(last));
}

#[test]
fn cursor_mut_changes_marks_and_removes_whole_entries() {
    let mut t = populated();
    t.track_values();
    let mut shadow = Vec::new();
    report_rebuilds(&mut t, &mut shadow);
    {
        let mut c = t.cursor_at_mut(MIB2 + 0x5000);
        assert_eq!(c.position(), Some(MIB2));
        // A read-only look marks nothing.
        assert_eq!(c.as_cursor().peek_next().map(item), Some((MIB2, 1, 3)));
        let (p, v) = c.next().unwrap();
        assert_eq!(p.level(), L1);
        *v = 30;
        // Removal at the cursor: the 1 GiB entry, whole.
        let (p, v) = c.remove_next().unwrap();
        assert_eq!((p.addr(), p.level(), v), (GIB1, L2, 4));
        assert_eq!(c.position(), Some(MIB2 + 2 * 0x10_0000));
        let (p, v) = c.remove_prev().unwrap();
        assert_eq!((p.addr(), v), (MIB2, 30));
        assert_eq!(c.peek_prev().map(|(p, v)| (p.addr(), *v)), Some((0x2000, 2)));
        *c.peek_next().unwrap().1 += 50;
        assert_eq!(c.remove_next().map(owned), Some((2 * GIB1 + 0x1000, 0, 55)));
        assert_eq!(c.remove_next(), None);
        assert!(format!("{c:?}").starts_with("CursorMut"));
    }
    t.check_invariants().unwrap();
    assert_eq!(items(&t), [(0x1000, 0, 1), (0x2000, 0, 2)]);
    // Only the two tables on the remaining path are left below the root.
    assert_eq!(t.stats().nodes(), 4);
    report_rebuilds(&mut t, &mut shadow);
}

#[test]
fn cursor_mut_removes_every_entry_and_frees_the_tables() {
    let mut t = populated();
    {
        let mut c = t.cursor_back_mut();
        let mut got = Vec::new();
        while let Some(e) = c.remove_prev() {
            got.push(owned(e));
        }
        assert_eq!(got.len(), 5);
        assert_eq!(c.prev(), None);
    }
    t.check_invariants().unwrap();
    assert!(t.is_empty());
    assert_eq!(t.stats().nodes(), 1);
    // A removal with the cursor then walking on.
    let mut t: MemTable<u32> = (0..600u64).map(|i| (i << 12, i as u32)).collect();
    let mut kept = 0;
    {
        let mut c = t.cursor_front_mut();
        while let Some((p, _)) = c.as_cursor().peek_next() {
            if p.addr() % 0x3000 == 0 {
                c.remove_next();
            } else {
                c.next();
                kept += 1;
            }
        }
    }
    t.check_invariants().unwrap();
    assert_eq!(t.len(), kept);
}

// ---- extract_if ---------------------------------------------------------------

#[test]
fn extract_if_is_lazy_and_takes_large_entries_whole() {
    let mut t = populated();
    t.track_values();
    let mut shadow = Vec::new();
    report_rebuilds(&mut t, &mut shadow);
    let mut seen = Vec::new();
    {
        let mut it = t.extract_if(0x2000..GIB1 + 0x1000, |p, v| {
            seen.push(p.addr());
            *v += 10;
            p.level() != Level::BASE
        });
        // The 2 MiB entry is taken; 0x2000 was visited and kept (and changed).
        assert_eq!(it.next().map(owned), Some((MIB2, 1, 13)));
        assert!(format!("{it:?}").starts_with("ExtractIf"));
    } // dropped: the 1 GiB entry, not visited, stays
    assert_eq!(seen, [0x2000, MIB2]);
    t.check_invariants().unwrap();
    assert_eq!(items(&t), [(0x1000, 0, 1), (0x2000, 0, 12), (GIB1, 2, 4), (2 * GIB1 + 0x1000, 0, 5)]);
    report_rebuilds(&mut t, &mut shadow);

    // A large entry reaching into the range is offered too.
    let got: Vec<Item> = t.extract_if(GIB1 + 0x1000.., |_, _| true).map(owned).collect();
    assert_eq!(got, [(GIB1, 2, 4), (2 * GIB1 + 0x1000, 0, 5)]);
    t.check_invariants().unwrap();
    assert_eq!(t.stats().nodes(), 4);
    report_rebuilds(&mut t, &mut shadow);
    // An empty or out-of-reach range yields nothing.
    assert_eq!(t.extract_if(0x5000..0x5000, |_, _| true).count(), 0);
    assert_eq!(t.extract_if(1 << 50.., |_, _| true).count(), 0);
}

#[test]
fn extract_if_dropped_leaves_a_valid_table() {
    let mut t: MemTable<u32> = (0..1024u64).map(|i| (i << 12, i as u32)).collect();
    // Empties the first bottom table (512 entries) and takes one more.
    assert_eq!(t.extract_if(.., |p, _| p.addr() <= 0x20_0000).take(513).count(), 513);
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 511);
    assert_eq!(t.stats().level(0).nodes, 1);
}

#[test]
fn drain_range_leaked_leaves_a_valid_table() {
    let mut t: MemTable<u32> = (0..1024u64).map(|i| (i << 12, i as u32)).collect();
    let mut d = t.drain_range(..).unwrap();
    for _ in 0..513 {
        d.next().unwrap();
    }
    std::mem::forget(d);
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 511);
}

// ---- drain_range ----------------------------------------------------------------

#[test]
fn drain_range_splits_the_edges_and_hands_back_the_values() {
    let mut t = populated();
    t.track_values();
    let mut shadow = Vec::new();
    report_rebuilds(&mut t, &mut shadow);
    let got: Vec<Item> = t.drain_range(0x2000..MIB2 + 0x2000).unwrap().map(owned).collect();
    assert_eq!(got, [(0x2000, 0, 2), (MIB2, 0, 3), (MIB2 + 0x1000, 0, 3)]);
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 1 + 510 + 2);
    assert_eq!(t.get(MIB2 + 0x2000), Some(&3));
    report_rebuilds(&mut t, &mut shadow);

    // Dropped early: the rest is removed all the same.
    let mut d = t.drain_range(GIB1..).unwrap();
    assert_eq!(d.next().map(owned), Some((GIB1, 2, 4)));
    assert!(format!("{d:?}").starts_with("Drain"));
    drop(d);
    t.check_invariants().unwrap();
    assert_eq!(t.range(GIB1..).count(), 0);
    report_rebuilds(&mut t, &mut shadow);

    // With ops: the split values are the ops'.
    let mut t: MemTable<u32> = MemTable::new();
    t.insert_at(0, L1, 100).unwrap();
    let mut ops = FnOps::new(
        |page: Page, v: &u32, sub: Page| v + ((sub.addr() - page.addr()) >> 12) as u32,
        |_, _| None,
    );
    let got: Vec<Item> = t.drain_range_with(0x1f_e000..MIB2, &mut ops).unwrap().map(owned).collect();
    assert_eq!(got, [(0x1f_e000, 0, 100 + 510), (0x1f_f000, 0, 100 + 511)]);
}

#[test]
fn drain_range_errors_leave_the_table_unchanged() {
    let mut t = populated();
    let before = items(&t);
    let stats = t.stats();
    let kinds = [
        t.drain_range(0x2000..0x2000).map(drop).unwrap_err().kind(),
        t.drain_range(0x2001..0x3000).map(drop).unwrap_err().kind(),
        t.drain_range(0x2000..0x2fff).map(drop).unwrap_err().kind(),
        t.drain_range(0x2000..(1 << 48) + 0x1000).map(drop).unwrap_err().kind(),
    ];
    assert_eq!(
        kinds,
        [ErrorKind::EmptyRange, ErrorKind::Misaligned, ErrorKind::Misaligned, ErrorKind::OutOfReach]
    );
    assert_eq!(items(&t), before);
    assert_eq!(t.stats(), stats);
    t.check_invariants().unwrap();

    // A split that needs a table the pool does not have.
    let mut t: MemTable<u32, X86_4Level, Pool> = MemTable::with_backend(Pool::new(1));
    t.insert_at(MIB2, L1, 1).unwrap(); // uses the one level-1 table... and level 2
    t.insert(0x1000, 2).unwrap(); // the one bottom table
    let before: Vec<_> = t.iter().map(|(p, v)| (p, *v)).collect();
    let e = t.drain_range(MIB2..MIB2 + 0x1000).map(drop).unwrap_err();
    assert_eq!((e.kind(), e.level()), (ErrorKind::OutOfNodes, Level::BASE));
    assert_eq!(t.iter().map(|(p, v)| (p, *v)).collect::<Vec<_>>(), before);
    t.check_invariants().unwrap();
}

// ---- split_off -----------------------------------------------------------------

#[test]
fn split_off_moves_the_high_entries() {
    let mut t = populated();
    t.track_values();
    let mut shadow = Vec::new();
    report_rebuilds(&mut t, &mut shadow);
    let mut high = t.split_off(MIB2).unwrap();
    assert_eq!(items(&t), [(0x1000, 0, 1), (0x2000, 0, 2)]);
    assert_eq!(items(&high), [(MIB2, 1, 3), (GIB1, 2, 4), (2 * GIB1 + 0x1000, 0, 5)]);
    t.check_invariants().unwrap();
    high.check_invariants().unwrap();
    assert!(high.tracks_values());
    assert_eq!(t.stats().nodes(), 4);
    report_rebuilds(&mut t, &mut shadow);
    let mut fresh = Vec::new();
    report_rebuilds(&mut high, &mut fresh);
    // At 0 everything moves; past the last entry nothing does.
    let all = high.split_off(0).unwrap();
    assert!(high.is_empty());
    assert_eq!(all.len(), 3);
    high.check_invariants().unwrap();
    assert_eq!(high.stats().nodes(), 1);
    let mut all = all;
    assert!(all.split_off(3 * GIB1).unwrap().is_empty());
    assert_eq!(all.len(), 3);
}

#[test]
fn split_off_errors_leave_the_table_unchanged() {
    let mut t = populated();
    let before = items(&t);
    let e = t.split_off(MIB2 + 0x1000).unwrap_err();
    assert_eq!((e.kind(), e.addr(), e.level()), (ErrorKind::ConflictLarger, MIB2, L1));
    assert_eq!(t.split_off(0x1001).unwrap_err().kind(), ErrorKind::Misaligned);
    assert_eq!(t.split_off(1 << 48).unwrap_err().kind(), ErrorKind::OutOfReach);
    assert_eq!(items(&t), before);
    assert!(!t.take_changes().any(|c| c.start == MIB2 + 0x1000));
    t.check_invariants().unwrap();

    // A full pool: the new table's pool (of the same capacities) still has
    // room, as the moved entries need no more tables than they use here.
    let mut t: MemTable<u32, X86_4Level, Pool> = MemTable::with_backend(Pool::new(2));
    t.insert(0x1000, 1).unwrap();
    t.insert(MIB2, 2).unwrap();
    assert_eq!(t.stats().level(0).available, 0);
    let high = t.split_off(0).unwrap();
    assert_eq!((t.len(), high.len()), (0, 2));
    high.check_invariants().unwrap();
    let mut t: MemTable<u32, X86_4Level, Pool> = MemTable::with_backend(Pool::new(1));
    t.insert(0x1000, 1).unwrap();
    assert_eq!(t.split_off(0x1000).unwrap().len(), 1);
}

#[test]
fn split_off_on_an_arena() {
    let mut t: MemTable<u64, X86_4Level, Arena> = (0..2000u64).map(|i| (i << 12, i)).collect();
    let high = t.split_off(1000 << 12).unwrap();
    assert_eq!((t.len(), high.len()), (1000, 1000));
    assert_eq!(high.first_key_value().map(|(p, v)| (p.addr(), *v)), Some((1000 << 12, 1000)));
    t.check_invariants().unwrap();
    high.check_invariants().unwrap();
}

// ---- into_keys, into_values, get_disjoint_mut -------------------------------------

#[test]
fn into_keys_and_into_values() {
    let t = populated();
    let keys: Vec<(u64, Level)> = t.clone().into_keys().map(|p| (p.addr(), p.level())).collect();
    assert_eq!(keys[2], (MIB2, L1));
    let k = t.clone().into_keys();
    assert_eq!(k.len(), 5);
    assert!(format!("{k:?}").starts_with("IntoKeys"));
    assert_eq!(t.clone().into_values().rev().collect::<Vec<_>>(), [5, 4, 3, 2, 1]);
    let mut v = t.into_values();
    assert_eq!(v.next(), Some(1));
    drop(v); // the rest dropped with it
}

#[test]
fn get_disjoint_mut_refuses_one_entry_twice() {
    let mut t = populated();
    t.take_changes().for_each(drop);
    let [a, b, c] = t.get_disjoint_mut([0x1000, MIB2 + 0x1234, GIB1]).unwrap();
    *a += 10;
    *b += 10;
    *c += 10;
    assert_eq!((t[0x1000], t[MIB2], t[GIB1]), (11, 13, 14));
    let changed: Vec<u64> = t.take_changes().map(|c| c.start).collect();
    assert_eq!(changed, [0x1000, MIB2, GIB1]);
    // Two addresses in one large page, a missing one, one out of reach:
    // none, and nothing marked.
    assert!(t.get_disjoint_mut([MIB2, MIB2 + 0x1000]).is_none());
    assert!(t.get_disjoint_mut([0x1000, 0x1000]).is_none());
    assert!(t.get_disjoint_mut([0x1000, 0x5000]).is_none());
    assert!(t.get_disjoint_mut([0x1000, 1 << 60]).is_none());
    assert!(!t.has_changes());
    assert_eq!(t.get_disjoint_mut::<0>([]), Some([]));
    // Zero-sized values: told apart by their pages.
    let mut z: MemTable<()> = MemTable::new();
    z.insert(0x1000, ()).unwrap();
    z.insert(0x2000, ()).unwrap();
    assert!(z.get_disjoint_mut([0x1000, 0x2000]).is_some());
}

// ---- Hash, Debug, Entry::key, default type parameters ---------------------------

fn hash_of<T: Hash>(t: &T) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

#[test]
fn hash_agrees_with_eq() {
    let t = populated();
    let mut u: MemTable<u32, X86_4Level> = MemTable::new();
    // Same entries, other order, other marks, other shape history.
    for (p, v) in t.iter().collect::<Vec<_>>().into_iter().rev() {
        u.insert_at(p.addr(), p.level(), *v).unwrap();
    }
    u.take_changes().for_each(drop);
    assert!(t == u);
    assert_eq!(hash_of(&t), hash_of(&u));
    *u.get_mut(0x1000).unwrap() = 7;
    assert!(t != u);
    assert_ne!(hash_of(&t), hash_of(&u));
    // Same pages and values, another level: not equal, not the same hash.
    let mut a: MemTable<u32> = MemTable::new();
    a.insert_at(0, L1, 1).unwrap();
    let mut b: MemTable<u32> = MemTable::new();
    b.insert(0, 1).unwrap();
    assert!(a != b);
    assert_ne!(hash_of(&a), hash_of(&b));
}

#[test]
fn entries_have_keys_debug_and_default_parameters() {
    let mut t = populated();
    // The default type parameters let user code name the types.
    let e: Entry<'_, u32> = t.entry_at(MIB2, L1).unwrap();
    assert_eq!((e.key().addr(), e.key().level()), (MIB2, L1));
    assert_eq!(
        format!("{e:?}"),
        "Entry(OccupiedEntry { page: 0x200000@Level(1), value: 3 })".replace("Level(1)", &format!("{L1:?}"))
    );
    let o: OccupiedEntry<'_, u32> = match e {
        Entry::Occupied(o) => o,
        Entry::Vacant(_) => unreachable!(),
    };
    assert_eq!(o.key(), o.page());
    let v: VacantEntry<'_, u32> = match t.entry(0x9000).unwrap() {
        Entry::Vacant(v) => v,
        Entry::Occupied(_) => unreachable!(),
    };
    assert_eq!(v.key().addr(), 0x9000);
    assert!(format!("{v:?}").starts_with("VacantEntry { page: 0x9000"));
    let _: Iter<'_, u32> = t.iter();
    let _: Cursor<'_, u32> = t.cursor_front();
    let _: CursorMut<'_, u32> = t.cursor_front_mut();
    let _: Drain<'_, u32> = t.drain_range(0x9000..0xa000).unwrap();
}

#[test]
fn every_iterator_is_debug() {
    fn debug<T: std::fmt::Debug>(_: &T) {}
    let mut t = populated();
    debug(&t.iter());
    debug(&t.keys());
    debug(&t.values());
    debug(&t.range(..));
    debug(&t.iter_mut());
    debug(&t.range_mut(..));
    debug(&t.values_mut());
    debug(&t.cursor_front());
    debug(&t.cursor_front_mut());
    debug(&t.extract_if(.., |_, _| false));
    debug(&t.changes());
    debug(&t.clone().into_iter());
    debug(&t.clone().into_keys());
    debug(&t.clone().into_values());
    debug(&t.drain_range(0x1000..0x2000).unwrap());
}
