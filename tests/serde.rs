//! Snapshots with the `serde` feature (this test is built only with it:
//! `cargo test --features serde --test serde`): round trips through JSON and
//! postcard on several geometries and backends, every kind of bad input
//! refused with an error that names it (and through `from_entries` with the
//! typed `RestoreError`), and properties: decode(encode(t)) == t for random
//! tables, and no input bytes make the decoder panic.

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::geometry::{Custom, Geometry, Large, X86_4Level, X86_5Level};
use mem_table::typenum::{U2, U3, U4, U12, U40};
use mem_table::{ErrorKind, Level, MemTable, RestoreErrorKind};
use quickcheck::QuickCheck;

/// Three 3-bit levels over 4 KiB pages, large entries at level 1.
type Tiny = Custom<U12, (U3, Large<U3>, U3)>;
/// A level without entries between two with, and a root with entries.
type Gappy = Custom<U12, (U2, U2, Large<U2>, Large<U2>)>;
/// Every address of the `u64` in reach; large entries at levels 1 and 3.
type Wide = Custom<U40, (U4, Large<U4>, U4, Large<U4>, U4, U4)>;

const CASES: u64 = if cfg!(miri) { 2 } else { 300 };

const X86_GEOMETRY: &str = r#"{"address_bits":48,"level_shifts":[12,21,30,39],"entry_levels":[0,1,2]}"#;

fn json<V: serde::Serialize, G: Geometry, B: Backend>(t: &MemTable<V, G, B>) -> String {
    serde_json::to_string(t).unwrap()
}

fn bin<V: serde::Serialize, G: Geometry, B: Backend>(t: &MemTable<V, G, B>) -> Vec<u8> {
    postcard::to_allocvec(t).unwrap()
}

/// Both formats give back the table, and encode the copy the same.
fn round_trip<G: Geometry, B: Backend + Default>(t: &MemTable<u32, G, B>) {
    let j = json(t);
    let from_json: MemTable<u32, G, B> = serde_json::from_str(&j).unwrap();
    assert_eq!(&from_json, t);
    from_json.check_invariants().unwrap();
    assert_eq!(json(&from_json), j);

    let b = bin(t);
    let from_bin: MemTable<u32, G, B> = postcard::from_bytes(&b).unwrap();
    assert_eq!(&from_bin, t);
    from_bin.check_invariants().unwrap();
    assert_eq!(bin(&from_bin), b);

    let entries = t.iter().map(|(p, v)| (p.addr(), p.level(), *v));
    assert_eq!(&MemTable::<u32, G, B>::from_entries(entries).unwrap(), t);
}

/// An x86 table with 4 KiB, 2 MiB and 1 GiB entries, at the ends of the
/// address space too.
fn x86_table<B: Backend + Default>() -> MemTable<u32, X86_4Level, B> {
    let mut t = MemTable::new();
    t.insert(0, 1).unwrap();
    t.insert(0x1000, 2).unwrap();
    t.insert_at(0x20_0000, X86_4Level::L2M, 3).unwrap();
    t.insert_at(0x4000_0000, X86_4Level::L1G, 4).unwrap();
    t.insert(0x8000_1000, 5).unwrap();
    t.insert_at((1 << 48) - (1 << 30), X86_4Level::L1G, 6).unwrap();
    t.insert((1 << 47) - 0x1000, 7).unwrap();
    t
}

#[test]
fn round_trips_x86_on_every_backend() {
    round_trip(&MemTable::<u32>::new());
    round_trip(&x86_table::<Heap>());
    round_trip(&x86_table::<Arena>());

    // A pool has no default: `deserialize_in` gives the backend.
    let t = x86_table::<Heap>();
    let (j, b) = (json(&t), bin(&t));
    let mut de = serde_json::Deserializer::from_str(&j);
    let p = MemTable::<u32, X86_4Level, Pool>::deserialize_in(Pool::new(8), &mut de).unwrap();
    assert!(p.iter().eq(t.iter()));
    let mut de = postcard::Deserializer::from_bytes(&b);
    let p = MemTable::<u32, X86_4Level, Pool>::deserialize_in(Pool::new(8), &mut de).unwrap();
    assert!(p.iter().eq(t.iter()));
    p.check_invariants().unwrap();
}

#[test]
fn round_trips_custom_geometries() {
    let mut t: MemTable<u32, Tiny> = MemTable::new();
    t.insert(0, 1).unwrap();
    t.insert_at(0x8000, Level::new(1), 2).unwrap();
    t.insert((1 << 21) - 0x1000, 3).unwrap();
    round_trip(&t);

    let mut t: MemTable<u32, Gappy> = MemTable::new();
    t.insert(0x1000, 1).unwrap();
    t.insert_at(1 << 18, Level::new(2), 2).unwrap();
    t.insert_at(1 << 19, Level::new(3), 3).unwrap();
    round_trip(&t);

    let mut t: MemTable<u32, Wide> = MemTable::new();
    t.insert(0, 1).unwrap();
    t.insert(u64::MAX - ((1 << 40) - 1), 2).unwrap(); // the last page of the u64
    t.insert_at(1 << 44, Level::new(1), 3).unwrap();
    t.insert_at(1 << 52, Level::new(3), 4).unwrap();
    round_trip(&t);
    assert!(json(&t).contains(&format!("[{},0,2]", u64::MAX - ((1 << 40) - 1))));
}

#[test]
fn the_json_form() {
    let mut t: MemTable<&str> = MemTable::new();
    t.insert(0x1000, "r-x").unwrap();
    t.insert_at(0x20_0000, X86_4Level::L2M, "rw-").unwrap();
    assert_eq!(
        serde_json::to_string(&t).unwrap(),
        format!(r#"{{"geometry":{X86_GEOMETRY},"entries":[[4096,0,"r-x"],[2097152,1,"rw-"]]}}"#)
    );
    let tiny: MemTable<u8, Tiny> = MemTable::new();
    assert_eq!(
        serde_json::to_string(&tiny).unwrap(),
        r#"{"geometry":{"address_bits":21,"level_shifts":[12,15,18],"entry_levels":[0,1]},"entries":[]}"#
    );
    // Strings are owned in the copy.
    let back: MemTable<String> = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back.get(0x3f_ffff).map(String::as_str), Some("rw-"));
}

/// A JSON snapshot of an x86 table with these entries.
fn x86_json(entries: &str) -> String {
    format!(r#"{{"geometry":{X86_GEOMETRY},"entries":[{entries}]}}"#)
}

/// The same as postcard bytes: postcard writes a struct as the tuple of
/// its fields, so these are what a table's snapshot would be.
fn x86_bin(entries: &[(u64, u8, u32)]) -> Vec<u8> {
    let geometry = (48u32, [12u32, 21, 30, 39].as_slice(), [0u8, 1, 2].as_slice());
    postcard::to_allocvec(&(geometry, entries)).unwrap()
}

/// Decoding the JSON fails with exactly `message` (serde_json adds the
/// place in the input).
fn json_refused(input: &str, message: &str) {
    let err = serde_json::from_str::<MemTable<u32>>(input).unwrap_err().to_string();
    assert!(err.starts_with(message), "{err:?} does not start with {message:?}");
}

/// Decoding the postcard bytes fails (postcard keeps no message).
fn bin_refused(input: &[u8]) {
    assert!(postcard::from_bytes::<MemTable<u32>>(input).is_err());
}

/// `from_entries` refuses the entries at `index` with `kind`.
fn typed_refused(entries: &[(u64, u8, u32)], index: usize, kind: RestoreErrorKind) -> String {
    let entries = entries.iter().map(|&(a, l, v)| (a, Level::new(l), v));
    let err = MemTable::<u32>::from_entries(entries).unwrap_err();
    assert_eq!(err.index(), index);
    assert_eq!(*err.kind(), kind);
    err.to_string()
}

/// The refusal of the table's own error `kind`, with its address and level.
fn refused(kind: ErrorKind, addr: u64, level: u8) -> RestoreErrorKind {
    let mut t: MemTable<()> = MemTable::new();
    // Make a table error of that kind and place to compare with.
    let e = match kind {
        ErrorKind::ConflictLarger => {
            t.insert_at(addr, Level::new(level), ()).unwrap();
            t.insert(addr, ()).unwrap_err()
        }
        ErrorKind::ConflictSmaller => {
            t.insert(addr, ()).unwrap();
            t.insert_at(addr, Level::new(level), ()).unwrap_err()
        }
        _ => t.insert_at(addr, Level::new(level), ()).unwrap_err(),
    };
    assert_eq!(e.kind(), kind);
    RestoreErrorKind::Refused(e.without_value())
}

/// An entry as written: address, level number, value.
type Raw = (u64, u8, u32);

/// Every bad entry, in all three ways: JSON (the message), postcard, and
/// `from_entries` (the typed error with the same message).
#[test]
fn bad_entries_are_refused_by_name() {
    let cases: &[(&[Raw], usize, RestoreErrorKind, &str)] = &[
        (
            &[(0x1000, 0, 1), (0x2001, 0, 2)],
            1,
            refused(ErrorKind::Misaligned, 0x2001, 0),
            "entry 1 (0x2001 at level 0): address not aligned to the page size of the level",
        ),
        (
            &[(0x30_0000, 1, 1)],
            0,
            refused(ErrorKind::Misaligned, 0x30_0000, 1),
            "entry 0 (0x300000 at level 1): address not aligned to the page size of the level",
        ),
        (
            &[(1 << 48, 0, 1)],
            0,
            refused(ErrorKind::OutOfReach, 1 << 48, 0),
            "entry 0 (0x1000000000000 at level 0): address beyond the reach of the geometry",
        ),
        (
            &[(u64::MAX - 0xfff, 0, 1)],
            0,
            refused(ErrorKind::OutOfReach, u64::MAX - 0xfff, 0),
            "entry 0 (0xfffffffffffff000 at level 0): address beyond the reach of the geometry",
        ),
        (
            &[(0, 1, 1), (0x1000, 0, 2)],
            1,
            refused(ErrorKind::ConflictLarger, 0, 1),
            "entry 1 (0x1000 at level 0): overlaps a larger entry: the entry at 0x0 (level 1) covers it",
        ),
        (
            &[(0x20_0000, 1, 1), (0x20_0000, 0, 2)],
            1,
            refused(ErrorKind::ConflictLarger, 0x20_0000, 1),
            "entry 1 (0x200000 at level 0): overlaps a larger entry: the entry at 0x200000 (level 1) covers it",
        ),
        (
            &[(0x4000_0000, 0, 1), (0x4000_0000, 2, 2)],
            1,
            refused(ErrorKind::ConflictSmaller, 0x4000_0000, 2),
            "entry 1 (0x40000000 at level 2): overlaps a smaller entry: one lies inside the page",
        ),
        (
            &[(0, 4, 1)],
            0,
            RestoreErrorKind::LevelPastTop { top: Level::new(3) },
            "entry 0 (0x0 at level 4): the level is past the top of the geometry (level 3)",
        ),
        (
            &[(0, 255, 1)],
            0,
            RestoreErrorKind::LevelPastTop { top: Level::new(3) },
            "entry 0 (0x0 at level 255): the level is past the top of the geometry (level 3)",
        ),
        (
            &[(0, 3, 1)],
            0,
            refused(ErrorKind::NoEntriesAtLevel, 0, 3),
            "entry 0 (0x0 at level 3): level cannot hold entries",
        ),
        (
            &[(0x1000, 0, 1), (0x3000, 0, 2), (0x2000, 0, 3)],
            2,
            RestoreErrorKind::Unsorted { previous: 0x3000 },
            "entry 2 (0x2000 at level 0): not in address order: the previous entry is at 0x3000",
        ),
        (
            &[(0x20_0000, 1, 1), (0x1000, 0, 2)],
            1,
            RestoreErrorKind::Unsorted { previous: 0x20_0000 },
            "entry 1 (0x1000 at level 0): not in address order: the previous entry is at 0x200000",
        ),
        (
            &[(0x1000, 0, 1), (0x1000, 0, 2)],
            1,
            RestoreErrorKind::Duplicate,
            "entry 1 (0x1000 at level 0): the same page as the previous entry",
        ),
        (
            &[(0x20_0000, 1, 1), (0x20_0000, 1, 1)],
            1,
            RestoreErrorKind::Duplicate,
            "entry 1 (0x200000 at level 1): the same page as the previous entry",
        ),
    ];
    for &(entries, index, ref kind, message) in cases {
        assert_eq!(typed_refused(entries, index, kind.clone()), message);
        let text: Vec<String> = entries.iter().map(|(a, l, v)| format!("[{a},{l},{v}]")).collect();
        json_refused(&x86_json(&text.join(",")), message);
        bin_refused(&x86_bin(entries));
        // The valid entries before it restore.
        let good = &entries[..index];
        assert_eq!(postcard::from_bytes::<MemTable<u32>>(&x86_bin(good)).unwrap().len(), index);
    }
}

#[test]
fn levels_past_a_byte_are_named_too() {
    json_refused(
        &x86_json("[4096,0,1],[8192,300,2]"),
        "entry 1 (0x2000 at level 300): the level is past the top of the geometry (level 3)",
    );
    json_refused(
        &x86_json(&format!("[0,{},1]", u64::MAX)),
        "entry 0 (0x0 at level 18446744073709551615): the level is past the top of the geometry (level 3)",
    );
    json_refused(&x86_json("[0,-1,1]"), "invalid type: integer `-1`, expected a level number");
}

#[test]
fn a_pool_out_of_nodes_is_named() {
    let entries = "[4096,0,1],[1099511627776,0,2]";
    let input = x86_json(entries);
    let mut de = serde_json::Deserializer::from_str(&input);
    let err = MemTable::<u32, X86_4Level, Pool>::deserialize_in(Pool::new(1), &mut de).unwrap_err();
    assert!(
        err.to_string().starts_with("entry 1 (0x10000000000 at level 0): out of table nodes at level 2"),
        "{err}"
    );
}

#[test]
fn another_geometry_is_refused() {
    let t = x86_table::<Heap>();
    let err = serde_json::from_str::<MemTable<u32, X86_5Level>>(&json(&t)).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "geometry mismatch: the snapshot's geometry has 48 address bits, level shifts [12, 21, 30, 39], \
             entries at levels [0, 1, 2]; the table's has 57 address bits, level shifts [12, 21, 30, 39, 48], \
             entries at levels [0, 1, 2]"
        ),
        "{err}"
    );
    assert!(postcard::from_bytes::<MemTable<u32, X86_5Level>>(&bin(&t)).is_err());
    assert!(postcard::from_bytes::<MemTable<u32, Tiny>>(&bin(&t)).is_err());

    // The same widths with large entries elsewhere are another geometry.
    type NoLarge = Custom<U12, (U3, U3, U3)>;
    let tiny: MemTable<u32, Tiny> = MemTable::new();
    let err = serde_json::from_str::<MemTable<u32, NoLarge>>(&json(&tiny)).unwrap_err().to_string();
    assert!(err.contains("entries at levels [0, 1]; the table's has 21 address bits, level shifts [12, 15, 18], entries at levels [0]"), "{err}");
    assert!(postcard::from_bytes::<MemTable<u32, NoLarge>>(&bin(&tiny)).is_err());
    // Nor does only the page size differ.
    type BigPages = Custom<mem_table::typenum::U13, (U3, Large<U3>, U3)>;
    assert!(serde_json::from_str::<MemTable<u32, BigPages>>(&json(&tiny)).is_err());
    assert!(postcard::from_bytes::<MemTable<u32, BigPages>>(&bin(&tiny)).is_err());
}

#[test]
fn malformed_snapshots_are_refused() {
    let g = X86_GEOMETRY;
    let cases = [
        (format!(r#"{{"entries":[],"geometry":{g}}}"#), "entries before the geometry"),
        (r#"{"entries":[]}"#.to_owned(), "entries before the geometry"),
        (format!(r#"{{"geometry":{g}}}"#), "missing field `entries`"),
        (r#"{}"#.to_owned(), "missing field `geometry`"),
        (format!(r#"{{"geometry":{g},"geometry":{g},"entries":[]}}"#), "duplicate field `geometry`"),
        (format!(r#"{{"geometry":{g},"entries":[],"entries":[]}}"#), "duplicate field `entries`"),
        (format!(r#"{{"geometry":{g},"entries":[],"extra":1}}"#), "unknown field `extra`"),
        (
            r#"{"geometry":{"address_bits":48,"level_shifts":[12,21,30,39,1,2,3,4,5],"entry_levels":[0]},"entries":[]}"#
                .to_owned(),
            "geometry: more than 8 levels",
        ),
        (r#"{"geometry":{"address_bits":48},"entries":[]}"#.to_owned(), "missing field `level_shifts`"),
        (format!(r#"{{"geometry":{g},"entries":[[4096,0]]}}"#), "invalid length 2, expected an entry"),
        (format!(r#"{{"geometry":{g},"entries":[[4096,0,1,2]]}}"#), "trailing characters"),
        (format!(r#"{{"geometry":{g},"entries":[[4096,0,"one"]]}}"#), "invalid type: string"),
        (format!(r#"{{"geometry":{g},"entries":{{}}}}"#), "invalid type: map"),
        (r#"[]"#.to_owned(), "invalid length 0, expected a mem-table snapshot"),
        (format!(r#"[{g}]"#), "invalid length 1, expected a mem-table snapshot"),
        (r#"7"#.to_owned(), "invalid type: integer `7`, expected a mem-table snapshot"),
    ];
    for (input, message) in &cases {
        let err = serde_json::from_str::<MemTable<u32>>(input).unwrap_err().to_string();
        assert!(err.contains(message), "{input}: {err:?} does not say {message:?}");
    }
    // The sequence form restores as well as the map form.
    let seq = format!(r#"[{g},[[4096,0,1]]]"#);
    assert_eq!(serde_json::from_str::<MemTable<u32>>(&seq).unwrap().get(0x1fff), Some(&1));
}

#[test]
fn claimed_lengths_allocate_nothing_ahead() {
    // A snapshot claiming u64::MAX entries (postcard: a varint length), then
    // none: refused at the end of the input.
    let mut b = x86_bin(&[]);
    b.pop(); // the empty list's length
    b.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    bin_refused(&b);
    // The same with a few entries after it.
    b.extend(postcard::to_allocvec(&(4096u64, 0u8, 1u32)).unwrap());
    bin_refused(&b);
    // A geometry claiming u64::MAX levels.
    let mut g = postcard::to_allocvec(&48u32).unwrap();
    g.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    bin_refused(&g);
    for cut in 0..x86_bin(&[(0x1000, 0, 1)]).len() {
        bin_refused(&x86_bin(&[(0x1000, 0, 1)])[..cut]);
    }
}

/// A random table of `G` from `(address bits, level choice, value)`: the
/// addresses gather in four windows, a quarter of the reach apart, so that
/// pages of every level meet and overlap (inserts that fail are skipped).
fn random_table<G: Geometry>(ops: &[(u64, u8, u32)]) -> MemTable<u32, G> {
    let levels: Vec<Level> = (0..G::LEVELS as u8).map(Level::new).filter(|&l| G::holds_entries(l)).collect();
    let mut t = MemTable::new();
    for &(a, l, v) in ops {
        let level = levels[l as usize % levels.len()];
        let shift = G::page_shift(level).unwrap();
        let window = (a >> 62) << (G::ADDRESS_BITS - 2);
        let addr = window.wrapping_add((a % 64).checked_shl(shift).unwrap_or(0));
        if v % 8 == 0 {
            let _ = t.remove(addr);
        } else {
            let _ = t.insert_at(addr, level, v);
        }
    }
    t
}

fn round_trips<G: Geometry>(ops: Vec<(u64, u8, u32)>) -> bool {
    let t = random_table::<G>(&ops);
    round_trip(&t);
    true
}

#[test]
fn quickcheck_decode_of_encode_is_the_table() {
    let qc = || QuickCheck::new().tests(CASES);
    qc().quickcheck(round_trips::<X86_4Level> as fn(Vec<(u64, u8, u32)>) -> bool);
    qc().quickcheck(round_trips::<Tiny> as fn(Vec<(u64, u8, u32)>) -> bool);
    qc().quickcheck(round_trips::<Gappy> as fn(Vec<(u64, u8, u32)>) -> bool);
    qc().quickcheck(round_trips::<Wide> as fn(Vec<(u64, u8, u32)>) -> bool);
}

/// Whatever decodes is a valid table that encodes back to itself.
fn check_decoded<G: Geometry>(bytes: &[u8]) {
    if let Ok(t) = postcard::from_bytes::<MemTable<u32, G>>(bytes) {
        t.check_invariants().unwrap();
        let again = bin(&t);
        assert_eq!(postcard::from_bytes::<MemTable<u32, G>>(&again).unwrap(), t);
    }
    if let Ok(t) = serde_json::from_slice::<MemTable<u32, G>>(bytes) {
        t.check_invariants().unwrap();
        assert_eq!(serde_json::from_str::<MemTable<u32, G>>(&json(&t)).unwrap(), t);
    }
}

fn arbitrary_bytes_never_panic(bytes: Vec<u8>) -> bool {
    check_decoded::<X86_4Level>(&bytes);
    check_decoded::<Tiny>(&bytes);
    true
}

/// Snapshots of random tables with random bytes changed, in both formats.
fn damaged_snapshots_never_panic(ops: Vec<(u64, u8, u32)>, flips: Vec<(usize, u8)>) -> bool {
    let t = random_table::<Tiny>(&ops);
    for mut bytes in [bin(&t), json(&t).into_bytes()] {
        for &(at, x) in &flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        check_decoded::<Tiny>(&bytes);
    }
    true
}

#[test]
fn quickcheck_no_input_panics() {
    QuickCheck::new().tests(CASES * 4).quickcheck(arbitrary_bytes_never_panic as fn(Vec<u8>) -> bool);
    QuickCheck::new()
        .tests(CASES * 4)
        .quickcheck(damaged_snapshots_never_panic as fn(Vec<(u64, u8, u32)>, Vec<(usize, u8)>) -> bool);
}

/// Writes the decode fuzzer's seeds (small snapshots in both formats):
/// `cargo test --features serde --test serde -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/decode");
    std::fs::create_dir_all(dir).unwrap();
    let mut tiny: MemTable<u32, Tiny> = MemTable::new();
    tiny.insert(0x1000, 1).unwrap();
    tiny.insert_at(0x8000, Level::new(1), 2).unwrap();
    let mut small: MemTable<u32> = MemTable::new();
    small.insert(0x1000, 7).unwrap();
    small.insert_at(0x20_0000, X86_4Level::L2M, 8).unwrap();
    small.insert_at(0x4000_0000, X86_4Level::L1G, 9).unwrap();
    let write = |name: &str, bytes: &[u8]| std::fs::write(format!("{dir}/{name}"), bytes).unwrap();
    write("x86-empty.bin", &bin(&MemTable::<u32>::new()));
    write("x86-small.bin", &bin(&small));
    write("x86-small.json", json(&small).as_bytes());
    write("x86-large.bin", &bin(&x86_table::<Heap>()));
    write("tiny.bin", &bin(&tiny));
    write("tiny.json", json(&tiny).as_bytes());
    write("x86-overlap.bin", &x86_bin(&[(0, 1, 1), (0x1000, 0, 2)]));
}
