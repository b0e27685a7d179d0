#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mem_table::backend::Pool;
use mem_table_fuzz::Case;

/// A pool case: the tables each level may hold (0 to 5, bottom first), then
/// the case.
#[derive(Arbitrary, Debug)]
struct PoolCase {
    capacities: [u8; 8],
    case: Case,
}

fuzz_target!(|input: PoolCase| {
    let capacities = input.capacities.map(|c| usize::from(c % 6));
    mem_table_fuzz::run(Pool::with_capacities(&capacities), &input.case)
});
