//! [`Heap`]: every table its own allocation.

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::{Backend, NoRoom, Store, sealed};

/// Every table is its own allocation from the global allocator. The default.
///
/// Simple, and memory goes back to the allocator as soon as a table is
/// freed. Tables are allocated at their exact size (4,232 bytes for an x86
/// bottom table of `u64`), which the system allocator serves without
/// rounding to a power of two. Allocation failure is reported as
/// [`ErrorKind::OutOfNodes`](crate::ErrorKind::OutOfNodes) by every fallible
/// operation: tables are allocated before the table changes.
///
/// ```
/// use mem_table::{MemTable, backend::Heap, geometry::X86_4Level};
/// let t: MemTable<u64, X86_4Level, Heap> = MemTable::new();
/// assert!(t.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heap;

impl sealed::Sealed for Heap {
    type Store = HeapStore;
    const PACKS: bool = true;

    fn new_store(&self, _level: u8, _top: bool, layout: Layout) -> HeapStore {
        HeapStore { layout, live: 0, spare: ptr::null_mut(), spares: 0 }
    }
}

impl Backend for Heap {
    const NAME: &'static str = "heap";
}

/// The [`Heap`] store.
///
/// # Invariants
/// - `spare` heads a list of `spares` allocations of `layout`, linked
///   through their first word (a table is at least 8 bytes and 8-aligned).
#[doc(hidden)]
pub struct HeapStore {
    layout: Layout,
    live: usize,
    spare: *mut u8,
    spares: usize,
}

// SAFETY: the store owns its spare allocations; nothing else points to them.
unsafe impl Send for HeapStore {}
// SAFETY: `&HeapStore` gives no access to the spare allocations.
unsafe impl Sync for HeapStore {}

impl HeapStore {
    fn pop_spare(&mut self) -> Option<NonNull<u8>> {
        let p = NonNull::new(self.spare)?;
        // SAFETY: `p` is a spare allocation whose first word links the next.
        self.spare = unsafe { p.as_ptr().cast::<*mut u8>().read() };
        self.spares -= 1;
        Some(p)
    }

    fn push_spare(&mut self, p: NonNull<u8>) {
        // SAFETY: `p` is an allocation of `layout`, at least 8 bytes, 8-aligned.
        unsafe { p.as_ptr().cast::<*mut u8>().write(self.spare) };
        self.spare = p.as_ptr();
        self.spares += 1;
    }

    fn release_spares(&mut self, keep: usize) {
        while self.spares > keep {
            let p = self.pop_spare().expect("counted");
            // SAFETY: `p` was allocated with `layout` and is no longer listed.
            unsafe { alloc::alloc::dealloc(p.as_ptr(), self.layout) };
        }
    }
}

// SAFETY: every pointer handed out is a fresh allocation of `layout` (or a
// spare one, unlisted when handed out).
unsafe impl Store for HeapStore {
    #[inline]
    fn alloc(&mut self) -> Option<NonNull<u8>> {
        let p = match self.pop_spare() {
            Some(p) => p,
            // SAFETY: tables have a non-zero size.
            None => NonNull::new(unsafe { alloc::alloc::alloc(self.layout) })?,
        };
        self.live += 1;
        Some(p)
    }

    unsafe fn free(&mut self, p: NonNull<u8>, keep: usize) {
        self.live -= 1;
        if self.spares < keep {
            self.push_spare(p);
        } else {
            // SAFETY: `p` came from `alloc` with this layout (caller).
            unsafe { alloc::alloc::dealloc(p.as_ptr(), self.layout) };
        }
    }

    fn ensure(&mut self, n: usize) -> Result<(), NoRoom> {
        while self.spares < n {
            // SAFETY: tables have a non-zero size.
            let p = NonNull::new(unsafe { alloc::alloc::alloc(self.layout) }).ok_or(NoRoom)?;
            self.push_spare(p);
        }
        Ok(())
    }

    fn available(&self) -> usize {
        self.spares
    }

    fn live(&self) -> usize {
        self.live
    }

    fn capacity(&self) -> Option<usize> {
        None
    }

    fn bytes(&self) -> usize {
        (self.live + self.spares) * self.layout.size()
    }

    fn shrink_to_fit(&mut self, keep: usize) {
        self.release_spares(keep);
    }
}

impl Drop for HeapStore {
    fn drop(&mut self) {
        self.release_spares(0);
    }
}
