// A level of 17 bits: wider than the 16 a table may have.
use mem_table::MemTable;
use mem_table::geometry::{Custom, Large};
use mem_table::typenum::{U9, U12, U17};

fn main() {
    let _t: MemTable<u8, Custom<U12, (U9, Large<U17>)>> = MemTable::new();
}
