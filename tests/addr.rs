//! The address types of other crates, accepted wherever an address is
//! (features `x86_64` and `vm-memory`).

use mem_table::{ErrorKind, MemTable, X86_4Level};
use vm_memory::GuestAddress;
use x86_64::structures::paging::{PhysFrame, Size2MiB, Size4KiB};
use x86_64::{PhysAddr, VirtAddr};

#[test]
fn x86_64_addresses() {
    let mut t: MemTable<u8> = MemTable::new();
    t.insert(PhysAddr::new(0x1000), 1).unwrap();
    let frame: PhysFrame<Size2MiB> = PhysFrame::containing_address(PhysAddr::new(0x40_0000));
    t.insert_at(frame, X86_4Level::L2M, 2).unwrap();
    assert_eq!(t.get(PhysAddr::new(0x1fff)), Some(&1));
    assert_eq!(t.get(VirtAddr::new(0x41_2345)), Some(&2));
    let small: PhysFrame<Size4KiB> = PhysFrame::containing_address(PhysAddr::new(0x41_0000));
    assert_eq!(t.insert(small, 3).unwrap_err().kind(), ErrorKind::ConflictLarger);
    assert_eq!(t.remove_at(frame, X86_4Level::L2M).unwrap(), Some(2));
    assert_eq!(t.remove(PhysAddr::new(0x1000)).unwrap(), Some(1));
    assert!(t.is_empty());
}

#[test]
fn vm_memory_addresses() {
    let mut t: MemTable<u32> = MemTable::new();
    t.insert(GuestAddress(0x8000), 7).unwrap();
    *t.entry(GuestAddress(0x9000)).unwrap().or_insert(0) += 1;
    assert_eq!(t.get(GuestAddress(0x8abc)), Some(&7));
    assert_eq!(t.get_key_value(GuestAddress(0x9001)).map(|(p, v)| (p.addr(), *v)), Some((0x9000, 1)));
    assert_eq!(t.insert(GuestAddress(0x8001), 1).unwrap_err().kind(), ErrorKind::Misaligned);
    assert_eq!(t.remove_covering(GuestAddress(0x8fff)).map(|(_, v)| v), Some(7));
    // Plain integers still work beside them, literals included.
    assert!(t.contains(0x9000) && !t.contains(0x8000u64));
}
