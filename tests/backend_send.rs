//! Every backend is `Send + Sync`, so generic code can move a table to
//! another thread, or share one between threads, for any `B: Backend`.

use mem_table::backend::{Arena, Backend, Heap, Pool};
use mem_table::{MemTable, X86_4Level};

/// Moves the table to another thread and back.
fn send<B: Backend>(t: MemTable<u64, X86_4Level, B>) -> MemTable<u64, X86_4Level, B> {
    std::thread::spawn(move || t).join().unwrap()
}

/// Reads the table from two threads at once.
fn share<B: Backend>(t: &MemTable<u64, X86_4Level, B>) -> u64 {
    std::thread::scope(|s| {
        let a = s.spawn(|| t.iter().map(|(_, v)| *v).sum::<u64>());
        let b = s.spawn(|| t.len() as u64);
        a.join().unwrap() + b.join().unwrap()
    })
}

fn check<B: Backend>(backend: B) {
    let mut t: MemTable<u64, X86_4Level, B> = MemTable::with_backend(backend);
    t.insert(0x1000, 1).unwrap();
    t.insert(0x20_0000, 2).unwrap();
    let t = send(t);
    assert_eq!(t.get(0x1000), Some(&1));
    assert_eq!(share(&t), 3 + 2, "{}", B::NAME);
}

#[test]
fn every_backend_sends_and_shares_its_table() {
    check(Heap);
    check(Arena);
    check(Pool::new(4));
}
