//! Invalid geometries fail to compile, each with a message that states the
//! rule it broke (`tests/ui/*.stderr`), and named levels exist only where the
//! geometry has them.
//!
//! Regenerate the expected output after a deliberate change with
//! `TRYBUILD=overwrite cargo test --test compile_fail`, then read every
//! `.stderr`: each must state its rule in words.

// The expected messages are rustc's: other compilers word them differently,
// and Miri does not build the cases.
#[cfg(not(miri))]
#[test]
fn invalid_geometries_do_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
