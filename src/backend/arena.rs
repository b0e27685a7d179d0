//! [`Arena`]: tables carved out of chunks that never move.

use core::alloc::Layout;
use core::ptr::NonNull;

use super::chunks::Chunks;
use super::{Backend, NoRoom, Store, sealed};

/// Tables carved out of chunks of up to 2 MiB per level, which grow by
/// doubling and never move. For large tables: neighbouring tables share
/// pages, the 2 MiB chunks are 2 MiB-aligned (so the kernel may back them
/// with transparent huge pages; with the `thp` feature, on Linux, the arena
/// asks for them with `madvise`), and freeing a table is a list push.
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

impl sealed::Sealed for Arena {}

impl Backend for Arena {
    type Store = ArenaStore;
    const NAME: &'static str = "arena";

    fn new_store(&self, _level: u8, _top: bool, layout: Layout) -> ArenaStore {
        ArenaStore(Chunks::new(layout, true))
    }
}

/// The [`Arena`] store.
#[doc(hidden)]
pub struct ArenaStore(Chunks);

// SAFETY: `Chunks` hands out distinct tables of its layout until freed.
unsafe impl Store for ArenaStore {
    #[inline]
    fn alloc(&mut self) -> Option<NonNull<u8>> {
        self.0.alloc()
    }
    unsafe fn free(&mut self, p: NonNull<u8>, keep: usize) {
        // SAFETY: forwarded contract.
        unsafe { self.0.free(p, keep) }
    }
    fn ensure(&mut self, n: usize) -> Result<(), NoRoom> {
        self.0.ensure(n)
    }
    fn available(&self) -> usize {
        self.0.available()
    }
    fn live(&self) -> usize {
        self.0.live()
    }
    fn capacity(&self) -> Option<usize> {
        None
    }
    fn bytes(&self) -> usize {
        self.0.bytes()
    }
    fn shrink_to_fit(&mut self, keep: usize) {
        self.0.shrink_to_fit(keep)
    }
}
