// No levels at all.
use mem_table::MemTable;
use mem_table::geometry::Custom;
use mem_table::typenum::U12;

fn main() {
    let _t: MemTable<u8, Custom<U12, ()>> = MemTable::new();
}
