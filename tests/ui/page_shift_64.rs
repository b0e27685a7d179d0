// A page shift of 64: base pages of 2^64 bytes.
use mem_table::MemTable;
use mem_table::geometry::Custom;
use mem_table::typenum::{U1, U64};

fn main() {
    let _t: MemTable<u8, Custom<U64, (U1,)>> = MemTable::new();
}
