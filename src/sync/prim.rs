//! The atomics and the lock the module is built on: `core`/`std` ones, or
//! loom's under `cfg(loom)`, so that the loom models run the real code.
//!
//! Only what readers and the writer share goes through here. Counters that
//! only the writer touches (a table's occupancy count) and the reclamation
//! statistics are plain `core` atomics in every build: loom need not model
//! them (the first are ordered by the writer lock, the second are
//! statistics that order nothing).

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicPtr, AtomicU64};
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, fence};

#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
