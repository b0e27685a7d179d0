// 60 + 9 + 9 = 78 address bits: more than a u64 holds.
use mem_table::MemTable;
use mem_table::geometry::Custom;
use mem_table::typenum::{U9, U60};

fn main() {
    let _t = MemTable::<u8, Custom<U60, (U9, U9)>>::new();
}
