//! Per-page data keyed by physical address, in a sparse table shaped like
//! the hardware page table.
//!
//! (Crate documentation: see the sections below.)
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(rust_2018_idioms)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod backend;
mod changes;
mod entry;
mod error;
pub mod geometries;
pub mod geometry;
mod iter;
mod large;
pub mod ops;
mod page;
mod raw;
mod table;

pub use changes::{Change, Changes};
pub use entry::{Entry, OccupiedEntry, VacantEntry};
pub use error::{Error, ErrorKind};
pub use geometry::{Geometry, X86_4Level, X86_5Level};
pub use iter::{IntoIter, Iter, IterMut, Keys, Values, ValuesMut};
pub use page::{Level, Page};
pub use table::{LevelStats, MemTable, Stats};

/// The type-level numbers used to describe [`geometry::Custom`] levels.
pub use typenum;
