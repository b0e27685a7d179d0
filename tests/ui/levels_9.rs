// Nine levels: one more than a geometry may have.
use mem_table::MemTable;
use mem_table::geometry::Custom;
use mem_table::typenum::{U1, U12};

fn main() {
    let _t: MemTable<u8, Custom<U12, (U1, U1, U1, U1, U1, U1, U1, U1, U1)>> = MemTable::new();
}
