// A level of zero bits: a table of one slot indexes nothing.
use mem_table::MemTable;
use mem_table::geometry::Custom;
use mem_table::typenum::{U0, U9, U12};

fn main() {
    let _t: MemTable<u8, Custom<U12, (U9, U0)>> = MemTable::new();
}
