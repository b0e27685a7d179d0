//! [`Arena`]: tables carved out of chunks that never move.

use core::alloc::Layout;

use super::chunks::Chunks;
use super::{Backend, sealed};

/// Tables carved out of chunks of up to 2 MiB per level, which grow by
/// doubling and never move (a reservation may add one chunk as large as it
/// needs). For large tables: neighbouring tables share pages, the 2 MiB
/// chunks are 2 MiB-aligned (so the kernel may back them with transparent
/// huge pages; with the `thp` feature, on Linux, the arena asks for them
/// with `madvise`), and freeing a table is a list push.
///
/// A chunk whose tables are all freed is given back to the allocator (one
/// empty chunk per level is kept, so that a table that empties and refills
/// does not allocate each time); [`MemTable::shrink_to_fit`](crate::MemTable::shrink_to_fit)
/// gives back that one too. Tables are not moved to fill holes: a chunk with
/// one live table stays.
///
/// ```
/// use mem_table::{MemTable, backend::Arena, geometry::X86_4Level};
/// let mut t: MemTable<u64, X86_4Level, Arena> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// assert_eq!(t.get(0x1000), Some(&1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arena;

impl sealed::Sealed for Arena {
    type Store = Chunks;
    const PACKS: bool = true;

    fn new_store(&self, _level: u8, _top: bool, layout: Layout) -> Chunks {
        Chunks::new(layout, true)
    }
}

impl Backend for Arena {
    const NAME: &'static str = "arena";
}
