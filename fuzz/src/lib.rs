//! The fuzz targets' shared part: one input is a geometry, a value type and
//! a list of ops, run against the table and the reference model of
//! `tests/model/mod.rs` (included by path, so the fuzzers and the test suite
//! check the same things). One target per backend: `heap`, `arena`, `pool`;
//! each runs both value types ([`Values`]: one without a niche, one of 4
//! bytes with a niche), so every storage mode the raw layer picks by value
//! type is fuzzed.
//!
//! Runs are armed (`model::check_ops_armed`): a value the input makes with
//! a planned panic in its `clone` or `drop` (see `model::Val`) panics for
//! real, in whatever operation clones or drops it; the interpreter catches
//! it and checks the table it leaves. The panic hook stays quiet for those
//! panics only: any other panic aborts, as libFuzzer's hook makes it.
//! Addresses (`model::Addr::Deep`) reach several root slots and every
//! level, on every geometry.
//!
//! The concurrent module has its own interpreters: [`sync`] (target
//! `sync`: `sync::Writer` and the readers against `MemTable`) and
//! [`bitmap`] (target `bitmap`: `sync::PageBitmap` against a set of pages).

#[path = "../../tests/model/mod.rs"]
pub mod model;

pub mod bitmap;
pub mod sync;

use arbitrary::{Arbitrary, Unstructured};
use mem_table::backend::Backend;
use mem_table::geometry::X86_4Level;

use model::{Gappy, ModelValue, Op, Small, Tiny, Value, Wide};

/// The geometry a case runs on.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum Shape {
    /// Three 3-bit levels: 512 pages in all, so ops collide all the time.
    Tiny,
    /// x86-64, 4 levels.
    X86,
    /// A level without entries between two with, and a root with entries.
    Gappy,
    /// 64 address bits.
    Wide,
}

/// The value type the table holds (see `model::ModelValue`).
#[derive(Clone, Copy, Debug)]
pub enum Values {
    /// `model::Value`: 12 bytes, no niche.
    Value,
    /// `model::Small`: 4 bytes with a niche.
    Small,
}

/// One fuzz case: the geometry and the value type (from the first input
/// bytes), then ops until the input runs out (at most [`MAX_OPS`]).
#[derive(Clone, Debug)]
pub struct Case {
    pub shape: Shape,
    pub values: Values,
    pub ops: Vec<Op>,
}

/// The most ops in one case.
pub const MAX_OPS: usize = 256;

/// Decodes ops back to back: a derived `Vec<Op>` would spend a byte on
/// "one more?" before each op and stop at the first even one. The value
/// type is the lowest bit of the first byte, which the shape's decoding
/// ignores (a derived enum reads the top bits of a little-endian `u32`):
/// a seed keeps its geometry and ops, and flipping that bit runs it with
/// the other value type.
impl<'a> Arbitrary<'a> for Case {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Case> {
        let values = match u.peek_bytes(1) {
            Some([b]) if b & 1 == 1 => Values::Small,
            _ => Values::Value,
        };
        let shape = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Case { shape, values, ops })
    }
}

/// Runs `case` on a fresh table with `backend`; panics on any disagreement
/// with the model.
pub fn run<B: Backend>(backend: B, case: &Case) {
    match case.values {
        Values::Value => run_with::<B, Value>(backend, case),
        Values::Small => run_with::<B, Small>(backend, case),
    }
}

/// [`run`] with values of type `W`.
fn run_with<B: Backend, W: ModelValue>(backend: B, case: &Case) {
    let ops = &case.ops;
    match case.shape {
        Shape::Tiny => model::check_ops_armed::<Tiny, B, W>(backend, ops),
        Shape::X86 => model::check_ops_armed::<X86_4Level, B, W>(backend, ops),
        Shape::Gappy => model::check_ops_armed::<Gappy, B, W>(backend, ops),
        Shape::Wide => model::check_ops_armed::<Wide, B, W>(backend, ops),
    };
}
