//! Tables carved out of large chunks that never move: the storage of
//! [`Arena`](super::Arena) (which adds and releases chunks) and
//! [`Pool`](super::Pool) (one chunk, made up front).
//!
//! A chunk hands out its tables in order (`bump`), then from its list of
//! freed tables, linked through their first word. The chunks of a level are
//! kept in a `Vec` sorted by address (a freed table finds its chunk by binary
//! search). An arena's chunks grow by doubling up to 2 MiB (or one table, if
//! larger; a reservation may add one as large as it needs); chunks of 2 MiB
//! or more are 2 MiB aligned, so that the kernel can back them with huge
//! pages.

use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::{self, NonNull};

use super::{NoRoom, Store};

/// The largest chunk grown to, unless one table is larger.
const CHUNK_BYTES: usize = if cfg!(miri) { 64 << 10 } else { 2 << 20 };

/// Asks the kernel for transparent huge pages under a chunk of 2 MiB or
/// more (feature `thp`, Linux); a no-op otherwise.
#[allow(unused_variables)]
fn advise_huge(base: NonNull<u8>, layout: Layout) {
    #[cfg(all(feature = "thp", target_os = "linux", not(miri)))]
    if layout.size() >= CHUNK_BYTES && layout.align() >= CHUNK_BYTES {
        // SAFETY: `madvise` only changes how the kernel backs the pages of
        // this allocation, which is page-aligned and `layout.size()` long; it
        // does not touch the contents. A failure is harmless and ignored.
        unsafe {
            libc::madvise(base.as_ptr().cast(), layout.size(), libc::MADV_HUGEPAGE);
        }
    }
}

/// One chunk.
///
/// # Invariants
/// - `base` is an allocation of `layout`, holding `cap` tables back to back;
/// - tables `bump..cap` were never handed out; `free` lists the freed ones
///   (linked through their first word); `live + listed + (cap - bump) == cap`.
struct Chunk {
    base: NonNull<u8>,
    layout: Layout,
    cap: usize,
    bump: usize,
    live: usize,
    free: *mut u8,
}

impl Chunk {
    fn has_room(&self) -> bool {
        !self.free.is_null() || self.bump < self.cap
    }
}

/// The chunks of one level.
///
/// # Invariants
/// - `chunks` is sorted by base address; `free` counts the tables available
///   in all of them, `live` those handed out.
#[doc(hidden)]
pub struct Chunks {
    table: Layout,
    chunks: Vec<Chunk>,
    grow: bool,
    hint: usize,
    free: usize,
    live: usize,
    total: usize,
}

// SAFETY: the chunks are owned by this value alone.
unsafe impl Send for Chunks {}
// SAFETY: `&Chunks` gives no access to chunk memory.
unsafe impl Sync for Chunks {}

impl Chunks {
    /// No chunks yet; `grow` says whether chunks are added on demand.
    pub(crate) fn new(table: Layout, grow: bool) -> Chunks {
        Chunks { table, chunks: Vec::new(), grow, hint: 0, free: 0, live: 0, total: 0 }
    }

    /// One chunk of exactly `cap` tables, allocated now (for pools).
    pub(crate) fn fixed(table: Layout, cap: usize) -> Chunks {
        let mut c = Chunks::new(table, false);
        if cap > 0 {
            c.add_chunk(cap).expect("mem-table: cannot allocate the pool");
        }
        c
    }

    fn add_chunk(&mut self, tables: usize) -> Result<(), NoRoom> {
        let size = self.table.size().checked_mul(tables).ok_or(NoRoom)?;
        let size = size.checked_next_multiple_of(4096).ok_or(NoRoom)?;
        let align = if size >= CHUNK_BYTES { CHUNK_BYTES } else { 4096 }.max(self.table.align());
        let layout = Layout::from_size_align(size, align).map_err(|_| NoRoom)?;
        self.chunks.try_reserve(1).map_err(|_| NoRoom)?;
        // SAFETY: `size` is non-zero.
        let base = NonNull::new(unsafe { alloc::alloc::alloc(layout) }).ok_or(NoRoom)?;
        advise_huge(base, layout);
        let at = self.chunks.partition_point(|c| c.base < base);
        self.chunks.insert(at, Chunk { base, layout, cap: tables, bump: 0, live: 0, free: ptr::null_mut() });
        self.hint = at;
        self.free += tables;
        self.total += tables;
        Ok(())
    }

    /// The next chunk size, in tables: double what there is, at most a
    /// chunk's worth, at least one.
    fn next_tables(&self) -> usize {
        let per_chunk = (CHUNK_BYTES / self.table.size()).max(1);
        self.total.clamp(1, per_chunk)
    }

    /// A table, or `None` if none is available and the store cannot grow.
    pub(crate) fn alloc(&mut self) -> Option<NonNull<u8>> {
        if self.free == 0 {
            if !self.grow {
                return None;
            }
            self.add_chunk(self.next_tables()).ok()?;
        }
        if !self.chunks[self.hint].has_room() {
            self.hint = self.chunks.iter().position(Chunk::has_room).expect("free tables are counted");
        }
        let size = self.table.size();
        let c = &mut self.chunks[self.hint];
        let p = match NonNull::new(c.free) {
            Some(p) => {
                // SAFETY: a listed table's first word links the next one.
                c.free = unsafe { p.as_ptr().cast::<*mut u8>().read() };
                p
            }
            None => {
                // SAFETY: `bump < cap`, so the table lies inside the chunk.
                let p = unsafe { c.base.add(c.bump * size) };
                c.bump += 1;
                p
            }
        };
        c.live += 1;
        self.free -= 1;
        self.live += 1;
        Some(p)
    }

    /// Gives back table `p`; may release its chunk if it empties, keeping
    /// `keep` tables available and one empty chunk.
    ///
    /// # Safety
    /// `p` came from [`alloc`](Self::alloc) and was not freed since.
    pub(crate) unsafe fn free(&mut self, p: NonNull<u8>, keep: usize) {
        let at = self.chunks.partition_point(|c| c.base <= p) - 1;
        let c = &mut self.chunks[at];
        // SAFETY: `p` is a table of this chunk, unused from now on: its first
        // word may link the list.
        unsafe { p.as_ptr().cast::<*mut u8>().write(c.free) };
        c.free = p.as_ptr();
        c.live -= 1;
        self.free += 1;
        self.live -= 1;
        if self.grow && c.live == 0 {
            let empties = self.chunks.iter().filter(|c| c.live == 0).count();
            if empties > 1 {
                self.release(at, keep);
            }
        }
    }

    /// Releases empty chunk `at` if the tables left suffice for `keep`.
    fn release(&mut self, at: usize, keep: usize) -> bool {
        let c = &self.chunks[at];
        debug_assert_eq!(c.live, 0);
        if self.free - c.cap < keep {
            return false;
        }
        let c = self.chunks.remove(at);
        self.free -= c.cap;
        self.total -= c.cap;
        // SAFETY: the chunk was allocated with `layout`; none of its tables is live.
        unsafe { alloc::alloc::dealloc(c.base.as_ptr(), c.layout) };
        self.hint = 0;
        true
    }

    /// Makes `n` tables available.
    pub(crate) fn ensure(&mut self, n: usize) -> Result<(), NoRoom> {
        while self.free < n {
            if !self.grow {
                return Err(NoRoom);
            }
            let want = self.next_tables().max(n - self.free);
            self.add_chunk(want)?;
        }
        Ok(())
    }

    /// Releases every empty chunk, keeping `keep` tables available.
    pub(crate) fn shrink_to_fit(&mut self, keep: usize) {
        let mut at = self.chunks.len();
        while at > 0 {
            at -= 1;
            if self.chunks[at].live == 0 {
                self.release(at, keep);
            }
        }
        self.chunks.shrink_to_fit();
    }
}

// SAFETY: `alloc` hands out distinct tables of `table`'s layout, inside
// chunks that stay allocated while any of their tables is live.
unsafe impl Store for Chunks {
    #[inline]
    fn alloc(&mut self) -> Option<NonNull<u8>> {
        Chunks::alloc(self)
    }
    unsafe fn free(&mut self, p: NonNull<u8>, keep: usize) {
        // SAFETY: forwarded contract.
        unsafe { Chunks::free(self, p, keep) }
    }
    fn ensure(&mut self, n: usize) -> Result<(), NoRoom> {
        Chunks::ensure(self, n)
    }
    fn available(&self) -> usize {
        self.free
    }
    fn live(&self) -> usize {
        self.live
    }
    /// A pool's capacity; an arena has none.
    fn capacity(&self) -> Option<usize> {
        (!self.grow).then_some(self.total)
    }
    fn bytes(&self) -> usize {
        self.chunks.iter().map(|c| c.layout.size()).sum::<usize>()
            + self.chunks.capacity() * size_of::<Chunk>()
    }
    fn shrink_to_fit(&mut self, keep: usize) {
        if self.grow {
            Chunks::shrink_to_fit(self, keep)
        }
    }
}

impl Drop for Chunks {
    fn drop(&mut self) {
        for c in self.chunks.drain(..) {
            // SAFETY: the chunk was allocated with `layout`; the table that
            // used it is gone.
            unsafe { alloc::alloc::dealloc(c.base.as_ptr(), c.layout) };
        }
    }
}
