// 32-bit paging has 4 KiB and 4 MiB pages, no 1 GiB ones: no such name.
use mem_table::geometries::X86_32Bit;

fn main() {
    let _l = X86_32Bit::L1G;
}
