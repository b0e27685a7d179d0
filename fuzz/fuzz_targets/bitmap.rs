//! `sync::PageBitmap` against a `BTreeSet` of marked pages: every marking,
//! peeking and harvesting call, its errors, and the KVM-layout bitmap bit
//! by bit, on four geometries with and without a limit (the model's rules:
//! `fuzz/src/bitmap.rs`). Seeds: `fuzz/corpus/bitmap`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mem_table_fuzz::bitmap::{Case, run};

fuzz_target!(|case: Case| run(&case));
