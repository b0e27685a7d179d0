//! The atomics and the lock the module is built on: `core`/`std` ones, or
//! loom's under `cfg(loom)`, so that the loom models run the real code.
//!
//! Only what readers and the writer share goes through here. Counters that
//! only the writer touches (a table's occupancy count) and the reclamation
//! statistics are plain `core` atomics in every build: loom need not model
//! them (the first are ordered by the writer lock, the second are
//! statistics that order nothing).

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, fence};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, fence};

#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// The writer's load of a slot word: only the writer stores to slots, so
/// it always sees its own latest store and needs no ordering.
///
/// Under loom this is an unsynchronised load (loom checks that no other
/// thread stores concurrently). It also keeps loom's exploration sound:
/// loom remembers one last access per atomic, and an atomic load by the
/// writer just before its store would hide a reader's earlier load from
/// the store, so the interleaving in which the reader loads after the
/// store would never be tried (found while writing these models).
#[inline(always)]
pub(crate) fn own_load(a: &AtomicU64) -> u64 {
    #[cfg(loom)]
    // SAFETY: the caller is the writer, the only thread that stores to `a`.
    unsafe {
        a.unsync_load()
    }
    #[cfg(not(loom))]
    a.load(core::sync::atomic::Ordering::Relaxed)
}

/// [`own_load`] of a link.
#[inline(always)]
pub(crate) fn own_load_ptr<T>(a: &AtomicPtr<T>) -> *mut T {
    #[cfg(loom)]
    // SAFETY: as in `own_load`.
    unsafe {
        a.unsync_load()
    }
    #[cfg(not(loom))]
    a.load(core::sync::atomic::Ordering::Relaxed)
}
