//! A vector of entries with a free list threaded through the vacant ones
//! (the `slab` crate's layout): ids stay stable, freed ids are reused.

use alloc::vec::Vec;

/// No next free entry.
const NONE: u32 = u32::MAX;

/// One entry of a [`Slab`].
#[derive(Clone)]
pub(crate) enum Entry<X> {
    Occupied(X),
    /// Vacant, holding the id of the next vacant entry.
    Vacant(u32),
}

/// Entries addressed by id, with an index-linked free list.
///
/// # Invariants
/// - `free` heads a list of exactly `entries.len() - len` vacant entries.
pub(crate) struct Slab<X> {
    pub(crate) entries: Vec<Entry<X>>,
    free: u32,
    len: u32,
}

impl<X> Slab<X> {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Slab { entries: Vec::with_capacity(cap), free: NONE, len: 0 }
    }

    #[inline(always)]
    pub(crate) fn get(&self, id: u32) -> &X {
        match &self.entries[id as usize] {
            Entry::Occupied(x) => x,
            Entry::Vacant(_) => panic!("mem-table: vacant node id {id}"),
        }
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self, id: u32) -> &mut X {
        match &mut self.entries[id as usize] {
            Entry::Occupied(x) => x,
            Entry::Vacant(_) => panic!("mem-table: vacant node id {id}"),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len as usize
    }

    /// Vacant entries: inserts that reuse an entry.
    pub(crate) fn vacant(&self) -> usize {
        self.entries.len() - self.len as usize
    }

    /// Stores `x` in a vacant entry, or a new one at the end.
    pub(crate) fn insert(&mut self, x: X) -> u32 {
        self.len += 1;
        if self.free != NONE {
            let id = self.free;
            match core::mem::replace(&mut self.entries[id as usize], Entry::Occupied(x)) {
                Entry::Vacant(next) => self.free = next,
                Entry::Occupied(_) => unreachable!("free list points at an occupied entry"),
            }
            id
        } else {
            assert!(self.entries.len() < NONE as usize, "mem-table: more than 2^32 - 1 nodes");
            self.entries.push(Entry::Occupied(x));
            (self.entries.len() - 1) as u32
        }
    }

    pub(crate) fn remove(&mut self, id: u32) -> X {
        match core::mem::replace(&mut self.entries[id as usize], Entry::Vacant(self.free)) {
            Entry::Occupied(x) => {
                self.free = id;
                self.len -= 1;
                x
            }
            Entry::Vacant(next) => {
                self.entries[id as usize] = Entry::Vacant(next);
                panic!("mem-table: removing vacant node id {id}")
            }
        }
    }

    /// Empties the slab, keeping its capacity.
    pub(crate) fn clear(&mut self) {
        self.free = NONE;
        self.len = 0;
        self.entries.clear();
    }

    pub(crate) fn refs_mut(&mut self) -> impl Iterator<Item = Option<&mut X>> {
        self.entries.iter_mut().map(|e| match e {
            Entry::Occupied(x) => Some(x),
            Entry::Vacant(_) => None,
        })
    }

    /// A copy with every occupied item mapped by `f` and `capacity` reserved.
    pub(crate) fn clone_with(&self, cap: usize, mut f: impl FnMut(&X) -> X) -> Self {
        let mut entries = Vec::with_capacity(cap.max(self.entries.len()));
        entries.extend(self.entries.iter().map(|e| match e {
            Entry::Occupied(x) => Entry::Occupied(f(x)),
            Entry::Vacant(n) => Entry::Vacant(*n),
        }));
        Slab { entries, free: self.free, len: self.len }
    }
}
