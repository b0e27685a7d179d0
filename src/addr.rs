//! Addresses: every method that takes one address takes any [`Address`]:
//! a plain `u64`, or, with the crate's optional features, the address types
//! of the crates a hypervisor or kernel already uses.
//!
//! | type | feature | the address |
//! |---|---|---|
//! | `u64` | - | itself |
//! | `x86_64::PhysAddr`, `x86_64::VirtAddr` | `x86_64` | `as_u64()` |
//! | `x86_64::structures::paging::PhysFrame<S>` | `x86_64` | its start address (the frame's size is yours to match with a level, for example `X86_4Level::L2M` for `Size2MiB`) |
//! | `vm_memory::GuestAddress` | `vm-memory` | `raw_value()` |
//!
//! Ranges stay `u64` ranges.
//!
//! ```
//! use mem_table::MemTable;
//! let mut t: MemTable<u8> = MemTable::new();
//! t.insert(0x1000, 1).unwrap(); // an integer literal is a u64 here
//! assert_eq!(t.get(0x1fffu64), Some(&1));
//! ```

/// A type that names one byte address: see the [module docs](self).
///
/// Sealed: implemented by the crate for `u64` and, with its features, for
/// the address types listed there.
pub trait Address: sealed::Sealed + Copy {
    /// The address as a `u64`.
    fn to_u64(self) -> u64;
}

mod sealed {
    pub trait Sealed {}
}

impl sealed::Sealed for u64 {}
impl Address for u64 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self
    }
}

#[cfg(feature = "x86_64")]
mod x86_64_impls {
    use super::{Address, sealed::Sealed};
    use x86_64::structures::paging::{PageSize, PhysFrame};
    use x86_64::{PhysAddr, VirtAddr};

    impl Sealed for PhysAddr {}
    impl Address for PhysAddr {
        #[inline(always)]
        fn to_u64(self) -> u64 {
            self.as_u64()
        }
    }

    impl Sealed for VirtAddr {}
    impl Address for VirtAddr {
        #[inline(always)]
        fn to_u64(self) -> u64 {
            self.as_u64()
        }
    }

    impl<S: PageSize> Sealed for PhysFrame<S> {}
    impl<S: PageSize> Address for PhysFrame<S> {
        #[inline(always)]
        fn to_u64(self) -> u64 {
            self.start_address().as_u64()
        }
    }
}

#[cfg(feature = "vm-memory")]
mod vm_memory_impls {
    use super::{Address, sealed::Sealed};
    use vm_memory::{Address as _, GuestAddress};

    impl Sealed for GuestAddress {}
    impl Address for GuestAddress {
        #[inline(always)]
        fn to_u64(self) -> u64 {
            self.raw_value()
        }
    }
}
