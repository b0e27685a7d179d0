use mem_table::{Level, MemTable};

#[test]
fn smoke() {
    let mut t: MemTable<u64> = MemTable::new();
    for i in 0..2000u64 {
        t.insert(i << 12, i).unwrap();
    }
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 2000);
    assert_eq!(t.iter().count(), 2000);
    assert!(t.iter().all(|(p, v)| p.addr() >> 12 == *v));
    for (_, v) in t.iter_mut() {
        *v += 1;
    }
    assert_eq!(t[0x1000], 2);
    t.insert_range(0x4000_0000..0x8020_0000, 7).unwrap();
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 2002);
    t.remove_range(0x4000_0000..0x4000_1000).unwrap();
    t.check_invariants().unwrap();
    assert_eq!(t.len(), 2002 + 511 + 511 - 1);
    assert_eq!(t.compact(), 0);
    t.insert(0x4000_0000, 7).unwrap();
    assert_eq!(t.compact(), 2);
    assert_eq!(t.len(), 2002);
    t.check_invariants().unwrap();
    let c = t.clone();
    assert_eq!(c, t);
    t.clear();
    t.check_invariants().unwrap();
    assert!(t.is_empty());
    assert_eq!(t.stats().nodes(), 1);
    let _ = Level::BASE;
}
