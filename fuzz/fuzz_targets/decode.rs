//! The snapshot decoder on arbitrary bytes: as postcard and as JSON, into
//! an x86 table and a tiny one (where entries collide all the time). It must
//! never panic; whatever decodes must be a valid table that encodes to a
//! snapshot decoding to the same table, and encodes the same again.
//! Seeds: `fuzz/corpus/decode` (written by the `write_fuzz_seeds` test).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mem_table::MemTable;
use mem_table::geometry::{Custom, Geometry, Large, X86_4Level};
use mem_table::typenum::{U3, U12};

/// Three 3-bit levels over 4 KiB pages, large entries at level 1.
type Tiny = Custom<U12, (U3, Large<U3>, U3)>;

fn check<G: Geometry>(data: &[u8]) {
    if let Ok(t) = postcard::from_bytes::<MemTable<u32, G>>(data) {
        t.check_invariants().unwrap();
        let bytes = postcard::to_allocvec(&t).unwrap();
        let again: MemTable<u32, G> = postcard::from_bytes(&bytes).unwrap();
        assert!(again == t);
        assert_eq!(postcard::to_allocvec(&again).unwrap(), bytes);
    }
    if let Ok(t) = serde_json::from_slice::<MemTable<u32, G>>(data) {
        t.check_invariants().unwrap();
        let text = serde_json::to_string(&t).unwrap();
        let again: MemTable<u32, G> = serde_json::from_str(&text).unwrap();
        assert!(again == t);
        assert_eq!(serde_json::to_string(&again).unwrap(), text);
    }
}

fuzz_target!(|data: &[u8]| {
    check::<X86_4Level>(data);
    check::<Tiny>(data);
});
