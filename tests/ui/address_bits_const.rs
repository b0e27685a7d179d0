// The constants and methods of an invalid geometry cannot be used either.
use mem_table::geometry::{Custom, Geometry};
use mem_table::typenum::{U9, U60};

type Wide = Custom<U60, (U9, U9)>;

fn main() {
    let _bits = <Wide as Geometry>::ADDRESS_BITS;
    let _reach = <Wide as Geometry>::in_reach(1 << 63);
    let _levels = Wide::LEVELS;
}
