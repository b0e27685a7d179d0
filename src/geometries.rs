//! The catalogue of real hardware page-table geometries.
//!
//! (Being filled in: see `geometries/` at the top of the repository.)
