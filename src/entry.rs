//! The [`Entry`] API: insert-or-update one page with a single call.

use crate::addr::Address;
use crate::backend::Backend;
use crate::error::Error;
#[allow(unused_imports)] // named in docs
use crate::error::ErrorKind;
use crate::geometry::Geometry;
use crate::page::{Level, Page};
use crate::raw::{Path, Probe, RawTable};
use crate::table::{MemTable, hand_back};
use core::mem::{ManuallyDrop, MaybeUninit};

/// One place in a table, occupied or vacant: from [`MemTable::entry`] and
/// [`MemTable::entry_at`].
///
/// ```
/// use mem_table::MemTable;
/// let mut t: MemTable<u32> = MemTable::new();
/// for addr in [0x1000, 0x2000, 0x1000] {
///     *t.entry(addr).unwrap().or_insert(0) += 1;
/// }
/// assert_eq!(t[0x1000], 2);
/// assert_eq!(t[0x2000], 1);
/// ```
pub enum Entry<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    /// An entry of that level at that address exists.
    Occupied(OccupiedEntry<'a, V, G, B>),
    /// Nothing covers the place.
    Vacant(VacantEntry<'a, V, G, B>),
}

/// An existing entry.
pub struct OccupiedEntry<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    table: &'a mut MemTable<V, G, B>,
    page: Page,
    /// The tables and slots from the root to the entry, as the lookup found
    /// them: the value is reached, and marked, without another walk.
    path: Path,
}

/// A place with no entry, where one may be inserted.
pub struct VacantEntry<'a, V, G: Geometry = crate::X86_4Level, B: Backend = crate::backend::Heap> {
    table: &'a mut MemTable<V, G, B>,
    addr: u64,
    level: Level,
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// The entry for the base page at `addr`.
    ///
    /// # Errors
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) if a large entry covers
    /// `addr` (the entry API never hands out a large entry for a base page).
    pub fn entry(&mut self, addr: impl Address) -> Result<Entry<'_, V, G, B>, Error> {
        let addr = addr.to_u64();
        self.entry_at(addr, Level::BASE)
    }

    /// The entry of `level` at `addr`.
    ///
    /// One walk: an occupied entry keeps the path it found, so reading,
    /// changing or replacing its value walks no further (filling a vacant
    /// one walks again, to create the tables it needs).
    ///
    /// # Errors
    /// As [`insert_at`](Self::insert_at), except that running out of nodes is
    /// only reported when a vacant entry is filled.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// t.entry_at(0x20_0000, Level::new(1)).unwrap().or_insert(1);
    /// assert_eq!(t.get_key_value(0x20_1000).unwrap().0.level(), Level::new(1));
    /// ```
    pub fn entry_at(&mut self, addr: impl Address, level: Level) -> Result<Entry<'_, V, G, B>, Error> {
        let addr = addr.to_u64();
        let mut path = Path::new();
        let (probe, _) = self.plan_insert_path(addr, level, &mut path)?;
        let shift = G::page_shift(level).expect("checked level");
        Ok(match probe {
            Probe::Occupied => Entry::Occupied(OccupiedEntry {
                table: self,
                page: Page::new(addr, level.index() as u8, shift),
                path,
            }),
            _ => Entry::Vacant(VacantEntry { table: self, addr, level }),
        })
    }
}

impl<'a, V, G: Geometry, B: Backend> Entry<'a, V, G, B> {
    /// The value, inserting `default` if vacant.
    ///
    /// # Panics
    /// If the table runs out of nodes (use [`VacantEntry::try_insert`]).
    pub fn or_insert(self, default: V) -> &'a mut V {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(default),
        }
    }

    /// The value, inserting `f()` if vacant.
    ///
    /// # Panics
    /// If the table runs out of nodes.
    pub fn or_insert_with<F: FnOnce() -> V>(self, f: F) -> &'a mut V {
        match self {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(f()),
        }
    }

    /// The value, inserting `V::default()` if vacant.
    ///
    /// # Panics
    /// If the table runs out of nodes.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }

    /// Calls `f` on the value if occupied.
    pub fn and_modify<F: FnOnce(&mut V)>(mut self, f: F) -> Self {
        if let Entry::Occupied(o) = &mut self {
            f(o.get_mut());
        }
        self
    }

    /// The entry's page.
    pub fn page(&self) -> Page {
        match self {
            Entry::Occupied(o) => o.page,
            Entry::Vacant(v) => v.page(),
        }
    }

    /// The entry's key: its page, as [`keys`](MemTable::keys) yields keys
    /// (the same as [`page`](Self::page), under `std`'s name). For an
    /// [`entry_at`](MemTable::entry_at) of a large level, the large page.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let mut t: MemTable<u8> = MemTable::new();
    /// let e = t.entry_at(0x20_0000, Level::new(1)).unwrap();
    /// assert_eq!((e.key().addr(), e.key().size()), (0x20_0000, 2 << 20));
    /// ```
    pub fn key(&self) -> Page {
        self.page()
    }
}

impl<V: core::fmt::Debug, G: Geometry, B: Backend> core::fmt::Debug for Entry<'_, V, G, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Entry::Occupied(o) => f.debug_tuple("Entry").field(o).finish(),
            Entry::Vacant(v) => f.debug_tuple("Entry").field(v).finish(),
        }
    }
}

impl<V: core::fmt::Debug, G: Geometry, B: Backend> core::fmt::Debug for OccupiedEntry<'_, V, G, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OccupiedEntry").field("page", &self.page).field("value", self.get()).finish()
    }
}

impl<V, G: Geometry, B: Backend> core::fmt::Debug for VacantEntry<'_, V, G, B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("VacantEntry").field("page", &self.page()).finish()
    }
}

impl<'a, V, G: Geometry, B: Backend> OccupiedEntry<'a, V, G, B> {
    /// The entry's page.
    pub fn page(&self) -> Page {
        self.page
    }

    /// The entry's key, its page (as [`Entry::key`]).
    pub fn key(&self) -> Page {
        self.page
    }

    /// The value.
    pub fn get(&self) -> &V {
        // SAFETY: the path leads to this entry's initialized value, and the
        // table is borrowed for as long as the entry is.
        unsafe { &*RawTable::<V, G, B>::path_value(&self.path) }
    }

    /// The value, mutably (marks it changed).
    pub fn get_mut(&mut self) -> &mut V {
        // SAFETY: as in `get`; the table is borrowed mutably.
        unsafe { &mut *self.mark() }
    }

    /// The value, mutably, for the table's borrow (marks it changed).
    pub fn into_mut(mut self) -> &'a mut V {
        // SAFETY: as in `get`, for the table's borrow `'a`.
        unsafe { &mut *self.mark() }
    }

    /// Marks the entry changed (keeping its value first, if values are
    /// tracked) and returns a pointer to its value.
    fn mark(&mut self) -> *mut V {
        let v = RawTable::<V, G, B>::path_value(&self.path);
        self.table.raw.touch_path(&self.path, self.page, v);
        RawTable::<V, G, B>::mark_path(&self.path);
        v
    }

    /// Replaces the value, returning the old one.
    pub fn insert(&mut self, v: V) -> V {
        core::mem::replace(self.get_mut(), v)
    }

    /// Removes the entry, returning its value.
    pub fn remove(self) -> V {
        self.table
            .remove_at(self.page.addr(), self.page.level())
            .expect("valid place")
            .expect("occupied entry")
    }
}

impl<'a, V, G: Geometry, B: Backend> VacantEntry<'a, V, G, B> {
    /// The page the entry would cover.
    pub fn page(&self) -> Page {
        let shift = G::page_shift(self.level).expect("checked level");
        Page::new(self.addr, self.level.index() as u8, shift)
    }

    /// The entry's key, the page it would cover (as [`Entry::key`]).
    pub fn key(&self) -> Page {
        self.page()
    }

    /// Inserts `v`, or hands it back if the table runs out of nodes.
    ///
    /// # Errors
    /// [`OutOfNodes`](ErrorKind::OutOfNodes), table unchanged.
    pub fn try_insert(self, v: V) -> Result<&'a mut V, Error<V>> {
        let table = self.table;
        let v = ManuallyDrop::new(v);
        // The place is vacant: nothing is replaced, so `old` stays unwritten.
        let mut old = MaybeUninit::<V>::uninit();
        match table.insert_from(self.addr, self.level, &*v, old.as_mut_ptr()) {
            Ok(_) => Ok(table.get_mut(self.addr).expect("just inserted")),
            Err(e) => Err(hand_back(e, &v)),
        }
    }

    /// Inserts `v` and returns it, mutably.
    ///
    /// # Panics
    /// If the table runs out of nodes (use [`try_insert`](Self::try_insert)).
    pub fn insert(self, v: V) -> &'a mut V {
        match self.try_insert(v) {
            Ok(v) => v,
            Err(e) => panic!("mem-table: {e}"),
        }
    }
}
