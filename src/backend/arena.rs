//! [`Arena`]: the nodes of each level packed in one growing block.

use super::block::Block;
use super::{Backend, sealed};

/// The nodes of each level packed in one contiguous block that doubles as it
/// fills, addressed by compact indices. The fastest backend.
///
/// A lookup indexes the block directly (no per-node allocation to chase);
/// neighbouring nodes share pages, and once a block passes 2 MiB the
/// allocator maps it on its own, where the operating system can back it with
/// transparent huge pages (no `madvise` is issued: that would need `unsafe`
/// and `libc`). A freed node's id goes on a free list and is reused by the
/// next table created at that level; its memory is kept until `clear` or
/// drop, which release whole blocks in time proportional to the blocks (for
/// values without drop glue). Growing a block moves its nodes (amortized
/// O(1) per node; the allocator can often remap instead of copying).
///
/// ```
/// use mem_table::{MemTable, backend::Arena, geometry::X86_4Level};
/// let mut t: MemTable<u64, X86_4Level, Arena> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// assert_eq!(t.get(0x1000), Some(&1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arena;

impl sealed::Sealed for Arena {}

impl Backend for Arena {
    type Store<T: Default> = Block<T>;
    const NAME: &'static str = "arena";

    fn new_store<T: Default>(&self, _level: u8) -> Block<T> {
        Block::new(None)
    }
}
