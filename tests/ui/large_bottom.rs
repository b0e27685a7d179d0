// The bottom level always holds base pages: it cannot be `Large`.
use mem_table::MemTable;
use mem_table::geometry::{Custom, Large};
use mem_table::typenum::{U9, U12};

fn main() {
    let _t: MemTable<u8, Custom<U12, (Large<U9>, U9)>> = MemTable::new();
}
