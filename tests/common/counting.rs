//! A global allocator that counts, on request, per thread: the allocations
//! (`alloc`, `alloc_zeroed`, `realloc`) a thread makes while it counts, and
//! the bytes it leaves allocated. Other threads (the test harness, other
//! tests) are not counted. A test binary that includes this module
//! (`#[path = "common/counting.rs"] mod counting;`) runs on it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the allocations (and the bytes held) of
/// the threads that ask it to.
struct Counting;

thread_local! {
    /// Whether this thread's allocations are counted now.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations (including reallocations) counted on this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes allocated minus bytes freed while counting, on this thread.
    static HELD: Cell<isize> = const { Cell::new(0) };
}

/// Records an allocation of `added` bytes and a release of `freed` bytes.
fn note(allocation: bool, added: usize, freed: usize) {
    // `try_with`: the allocator also runs while thread locals are torn down.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            if allocation {
                ALLOCATIONS.set(ALLOCATIONS.get() + 1);
            }
            HELD.set(HELD.get() + added as isize - freed as isize);
        }
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; counting touches only
// thread-local `Cell`s, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(true, layout.size(), 0);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(true, layout.size(), 0);
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(false, 0, layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(true, new_size, layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f`, counting the allocations it makes on this thread and the bytes
/// it leaves allocated.
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, usize, isize) {
    ALLOCATIONS.set(0);
    HELD.set(0);
    COUNTING.set(true);
    let r = f();
    COUNTING.set(false);
    (r, ALLOCATIONS.get(), HELD.get())
}

/// Runs `f`, returning its result and the allocations it made on this
/// thread.
pub fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let (r, n, _) = counted(f);
    (r, n)
}
