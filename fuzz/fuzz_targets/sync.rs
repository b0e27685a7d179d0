//! `sync::Writer` and the concurrent table's readers against
//! `mem_table::MemTable`, op by op: every mutating call, its result and
//! error, the contents, the invariants, a shadow rebuilt from the change
//! reports, planned panics in the consumer's ops and closures, readers that
//! stay pinned across writes, and every `Arc` value dropped once at the
//! end; `u64`, `u8` and `Arc` values, on x86 and two tiny geometries, with
//! either reclaimer (the model's rules: `fuzz/src/sync.rs`). Seeds:
//! `fuzz/corpus/sync`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mem_table_fuzz::sync::{Case, run};

fuzz_target!(|case: Case| run(&case));
