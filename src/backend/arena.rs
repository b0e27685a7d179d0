//! [`Arena`]: nodes packed in large slabs.

use alloc::vec::Vec;
use core::mem::size_of;

use super::slab::Entry;
use super::{Backend, NoRoom, Store, sealed};

/// Nodes packed into slabs of at least 2 MiB, addressed by compact indices.
///
/// Neighbouring nodes share pages (and, where the operating system backs the
/// slab with transparent huge pages, TLB entries); a freed node goes on a free
/// list threaded through the slab and is reused by the next table created at
/// that level. `clear` and drop release whole slabs. Slabs are never given
/// back while the table lives, except by `clear`.
///
/// No `madvise` is issued (that would need `unsafe` and `libc`): on Linux,
/// slabs get huge pages when transparent huge pages are set to `always`.
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
    type Store<T: Default> = ArenaStore<T>;
    const NAME: &'static str = "arena";

    fn new_store<T: Default>(&self) -> ArenaStore<T> {
        ArenaStore { slabs: Vec::new(), fill: 0, free: NONE, len: 0 }
    }
}

/// No next free entry.
const NONE: u32 = u32::MAX;

/// The smallest slab, in bytes.
const SLAB_BYTES: usize = 2 << 20;

/// The [`Arena`] store.
///
/// # Invariants
/// - Every slab has capacity `PER_SLAB` and never reallocates.
/// - Slabs before `fill` are full; slabs after it are empty.
/// - `free` heads a list of every vacant entry.
#[doc(hidden)]
pub struct ArenaStore<T> {
    slabs: Vec<Vec<Entry<T>>>,
    /// The slab new entries are pushed to.
    fill: usize,
    free: u32,
    len: u32,
}

impl<T> ArenaStore<T> {
    /// log2 of the entries per slab: the smallest power of two whose slab is
    /// at least [`SLAB_BYTES`].
    const SHIFT: u32 = {
        let per = SLAB_BYTES.div_ceil(size_of::<Entry<T>>());
        per.next_power_of_two().trailing_zeros()
    };
    const PER_SLAB: usize = 1 << Self::SHIFT;
    const MASK: u32 = (1 << Self::SHIFT) - 1;

    #[inline(always)]
    fn entry(&self, id: u32) -> &Entry<T> {
        &self.slabs[(id >> Self::SHIFT) as usize][(id & Self::MASK) as usize]
    }

    #[inline(always)]
    fn entry_mut(&mut self, id: u32) -> &mut Entry<T> {
        &mut self.slabs[(id >> Self::SHIFT) as usize][(id & Self::MASK) as usize]
    }

    /// Entries that can be pushed into slabs already allocated.
    fn room(&self) -> usize {
        let mut room = (self.slabs.len() - self.fill) * Self::PER_SLAB;
        if let Some(s) = self.slabs.get(self.fill) {
            room -= s.len();
        }
        room
    }

    fn vacant(&self) -> usize {
        self.slabs.iter().map(Vec::len).sum::<usize>() - self.len as usize
    }
}

impl<T: Default> Store<T> for ArenaStore<T> {
    #[inline(always)]
    fn get(&self, id: u32) -> &T {
        match self.entry(id) {
            Entry::Occupied(t) => t,
            Entry::Vacant(_) => panic!("mem-table: vacant node id {id}"),
        }
    }

    #[inline(always)]
    fn get_mut(&mut self, id: u32) -> &mut T {
        match self.entry_mut(id) {
            Entry::Occupied(t) => t,
            Entry::Vacant(_) => panic!("mem-table: vacant node id {id}"),
        }
    }

    fn try_reserve(&mut self, n: usize) -> Result<usize, NoRoom> {
        if n == 0 {
            return Ok(0);
        }
        let have = self.available();
        if n <= have {
            return Ok(0);
        }
        let slabs = (n - have).div_ceil(Self::PER_SLAB);
        self.slabs.try_reserve(slabs).map_err(|_| NoRoom)?;
        for added in 0..slabs {
            let mut s = Vec::new();
            if s.try_reserve_exact(Self::PER_SLAB).is_err() {
                self.unreserve(added);
                return Err(NoRoom);
            }
            self.slabs.push(s);
        }
        Ok(slabs)
    }

    fn unreserve(&mut self, added: usize) {
        for _ in 0..added {
            let s = self.slabs.pop().expect("unreserve more than reserved");
            debug_assert!(s.is_empty());
        }
    }

    fn insert(&mut self, t: T) -> u32 {
        self.len += 1;
        if self.free != NONE {
            let id = self.free;
            match core::mem::replace(self.entry_mut(id), Entry::Occupied(t)) {
                Entry::Vacant(next) => self.free = next,
                Entry::Occupied(_) => unreachable!("free list points at an occupied entry"),
            }
            return id;
        }
        if self.slabs.get(self.fill).is_some_and(|s| s.len() == Self::PER_SLAB) {
            self.fill += 1;
        }
        if self.fill == self.slabs.len() {
            self.slabs.push(Vec::with_capacity(Self::PER_SLAB));
        }
        let slab = &mut self.slabs[self.fill];
        let id = (self.fill << Self::SHIFT) | slab.len();
        assert!(id < NONE as usize, "mem-table: more than 2^32 - 1 nodes");
        slab.push(Entry::Occupied(t));
        id as u32
    }

    fn remove(&mut self, id: u32) -> T {
        let free = self.free;
        match core::mem::replace(self.entry_mut(id), Entry::Vacant(free)) {
            Entry::Occupied(t) => {
                self.free = id;
                self.len -= 1;
                t
            }
            Entry::Vacant(_) => panic!("mem-table: removing vacant node id {id}"),
        }
    }

    fn len(&self) -> usize {
        self.len as usize
    }

    fn available(&self) -> usize {
        self.vacant() + self.room()
    }

    fn capacity(&self) -> Option<usize> {
        None
    }

    fn bytes(&self) -> usize {
        self.slabs.capacity() * size_of::<Vec<Entry<T>>>()
            + self.slabs.iter().map(|s| s.capacity() * size_of::<Entry<T>>()).sum::<usize>()
    }

    fn clear(&mut self) {
        // Reset first: if a node's drop unwinds, the store is already empty.
        let slabs = core::mem::take(&mut self.slabs);
        self.fill = 0;
        self.free = NONE;
        self.len = 0;
        drop(slabs);
    }

    fn refs_mut(&mut self) -> Vec<Option<&mut T>> {
        self.slabs
            .iter_mut()
            .flat_map(|s| s.iter_mut())
            .map(|e| match e {
                Entry::Occupied(t) => Some(t),
                Entry::Vacant(_) => None,
            })
            .collect()
    }

    fn clone_with(&self, mut f: impl FnMut(&T) -> T) -> Self {
        let slabs = self
            .slabs
            .iter()
            .map(|s| {
                let mut c = Vec::with_capacity(Self::PER_SLAB);
                c.extend(s.iter().map(|e| match e {
                    Entry::Occupied(t) => Entry::Occupied(f(t)),
                    Entry::Vacant(n) => Entry::Vacant(*n),
                }));
                c
            })
            .collect();
        ArenaStore { slabs, fill: self.fill, free: self.free, len: self.len }
    }
}
