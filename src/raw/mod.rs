//! The private raw layer: node types and the level chain.
//!
//! Items here are `pub` only so that the sealed [`Geometry`](crate::Geometry)
//! trait may name them; the module is private, so users cannot.

pub mod bitmap;
pub mod bottom;
pub mod chain;
pub mod inner;
pub mod ranges;
pub mod walk;

/// Everything the table needs from a geometry's chain of levels.
pub trait Tree: ranges::Ranges {}
impl<T: ranges::Ranges> Tree for T {}
