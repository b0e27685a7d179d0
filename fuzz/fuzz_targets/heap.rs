#![no_main]

use libfuzzer_sys::fuzz_target;
use mem_table::backend::Heap;
use mem_table_fuzz::Case;

fuzz_target!(|case: Case| mem_table_fuzz::run(Heap, &case));
