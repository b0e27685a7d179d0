//! Snapshots: [`MemTable::from_entries`], which rebuilds a table from its
//! entries and validates every one, and, with the `serde` feature,
//! `Serialize` and `Deserialize` for [`MemTable`] on top of it.

use core::fmt;

use crate::backend::Backend;
use crate::error::{Error, ErrorKind};
use crate::geometry::Geometry;
use crate::page::Level;
use crate::table::MemTable;

/// Why a restore ([`MemTable::from_entries`], or deserializing a table) was
/// refused: which entry, and what was wrong with it.
///
/// A restore builds a new table, so a refusal leaves every existing table as
/// it was; the partly built one is dropped.
///
/// ```
/// use mem_table::{ErrorKind, Level, MemTable, RestoreErrorKind};
/// let entries = [(0x1000, Level::BASE, 'a'), (0x2001, Level::BASE, 'b')];
/// let err = MemTable::<char>::from_entries(entries).unwrap_err();
/// assert_eq!(err.index(), 1);
/// assert_eq!(err.addr(), 0x2001);
/// assert_eq!(err.level(), Level::BASE);
/// assert!(matches!(err.kind(), RestoreErrorKind::Refused(e) if e.kind() == ErrorKind::Misaligned));
/// assert_eq!(
///     err.to_string(),
///     "entry 1 (0x2001 at level 0): address not aligned to the page size of the level"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError {
    index: usize,
    addr: u64,
    level: Level,
    kind: RestoreErrorKind,
}

/// What was wrong with an entry of a restore (see [`RestoreError`]).
///
/// ```
/// use mem_table::{Level, MemTable, RestoreErrorKind};
/// let entries = [(0x2000, Level::BASE, 1), (0x1000, Level::BASE, 2)];
/// let err = MemTable::<u8>::from_entries(entries).unwrap_err();
/// assert_eq!(*err.kind(), RestoreErrorKind::Unsorted { previous: 0x2000 });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreErrorKind {
    /// The level is past the top of the table's geometry, `top`.
    LevelPastTop {
        /// The geometry's top level.
        top: Level,
    },
    /// The address is below the previous entry's, `previous`: entries come
    /// in address order, as [`MemTable::iter`] yields them.
    Unsorted {
        /// The previous entry's address.
        previous: u64,
    },
    /// The entry is the same page (address and level) as the previous one.
    Duplicate,
    /// The table refused the entry, as [`MemTable::insert_at`] would:
    /// [`NoEntriesAtLevel`](ErrorKind::NoEntriesAtLevel) (a level that
    /// holds no entries), [`OutOfReach`](ErrorKind::OutOfReach),
    /// [`Misaligned`](ErrorKind::Misaligned),
    /// [`ConflictLarger`](ErrorKind::ConflictLarger) (an earlier, larger
    /// entry covers it: the error's address and level are that entry's),
    /// [`ConflictSmaller`](ErrorKind::ConflictSmaller) (an earlier, smaller
    /// entry lies inside it) or [`OutOfNodes`](ErrorKind::OutOfNodes).
    Refused(Error),
}

impl RestoreError {
    /// The entry's position in the input, from 0.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let err = MemTable::<u8>::from_entries([(0, Level::new(9), 1)]).unwrap_err();
    /// assert_eq!(err.index(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The entry's address, as given.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let err = MemTable::<u8>::from_entries([(1 << 48, Level::BASE, 1)]).unwrap_err();
    /// assert_eq!(err.addr(), 1 << 48);
    /// ```
    pub fn addr(&self) -> u64 {
        self.addr
    }

    /// The entry's level, as given.
    ///
    /// ```
    /// use mem_table::{Level, MemTable};
    /// let err = MemTable::<u8>::from_entries([(0, Level::new(3), 1)]).unwrap_err();
    /// assert_eq!(err.level(), Level::new(3)); // x86 level 3 holds no entries
    /// ```
    pub fn level(&self) -> Level {
        self.level
    }

    /// What was wrong with the entry.
    ///
    /// ```
    /// use mem_table::{Level, MemTable, RestoreErrorKind};
    /// let entries = [(0x1000, Level::BASE, 1), (0x1000, Level::BASE, 2)];
    /// let err = MemTable::<u8>::from_entries(entries).unwrap_err();
    /// assert_eq!(*err.kind(), RestoreErrorKind::Duplicate);
    /// ```
    pub fn kind(&self) -> &RestoreErrorKind {
        &self.kind
    }
}

/// Where an entry is, as every restore message starts.
#[derive(Clone, Copy)]
struct At {
    index: usize,
    addr: u64,
    level: u64,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {} ({:#x} at level {})", self.index, self.addr, self.level)
    }
}

/// The message for a level past the top (also for level numbers that do not
/// fit a [`Level`], which only a decoder meets).
fn past_top(f: &mut fmt::Formatter<'_>, at: At, top: Level) -> fmt::Result {
    write!(f, "{at}: the level is past the top of the geometry ({top})")
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = At { index: self.index, addr: self.addr, level: self.level.index() as u64 };
        match &self.kind {
            RestoreErrorKind::LevelPastTop { top } => past_top(f, at, *top),
            RestoreErrorKind::Unsorted { previous } => {
                write!(f, "{at}: not in address order: the previous entry is at {previous:#x}")
            }
            RestoreErrorKind::Duplicate => write!(f, "{at}: the same page as the previous entry"),
            RestoreErrorKind::Refused(e) => match e.kind() {
                ErrorKind::ConflictLarger => write!(
                    f,
                    "{at}: overlaps a larger entry: the entry at {:#x} ({}) covers it",
                    e.addr(),
                    e.level()
                ),
                ErrorKind::ConflictSmaller => {
                    write!(f, "{at}: overlaps a smaller entry: one lies inside the page")
                }
                ErrorKind::OutOfNodes => write!(f, "{at}: out of table nodes at {}", e.level()),
                kind => write!(f, "{at}: {kind}"),
            },
        }
    }
}

impl core::error::Error for RestoreError {}

/// Rebuilds a table entry by entry, checking each against the rules of a
/// snapshot: a level of the geometry, then [`MemTable::insert_at`]'s own
/// checks of the place, then address order, then overlaps.
struct Restorer<V, G: Geometry, B: Backend> {
    table: MemTable<V, G, B>,
    index: usize,
    prev: Option<(u64, Level)>,
}

impl<V, G: Geometry, B: Backend> Restorer<V, G, B> {
    fn new(backend: B) -> Self {
        Restorer { table: MemTable::with_backend(backend), index: 0, prev: None }
    }

    fn push(&mut self, addr: u64, level: Level, v: V) -> Result<(), RestoreError> {
        let index = self.index;
        let fail = |kind| RestoreError { index, addr, level, kind };
        if level.index() >= G::LEVELS {
            return Err(fail(RestoreErrorKind::LevelPastTop { top: G::TOP }));
        }
        if let Err(e) = MemTable::<V, G, B>::check_place(addr, level) {
            return Err(fail(RestoreErrorKind::Refused(e)));
        }
        match self.prev {
            Some((previous, _)) if addr < previous => {
                return Err(fail(RestoreErrorKind::Unsorted { previous }));
            }
            Some(p) if p == (addr, level) => return Err(fail(RestoreErrorKind::Duplicate)),
            _ => {}
        }
        // In address order, with no two the same, an insert replaces
        // nothing: it adds the entry or reports an overlap.
        if let Err(e) = self.table.insert_at(addr, level, v) {
            return Err(fail(RestoreErrorKind::Refused(e.without_value())));
        }
        self.prev = Some((addr, level));
        self.index += 1;
        Ok(())
    }
}

impl<V, G: Geometry, B: Backend + Default> MemTable<V, G, B> {
    /// Rebuilds a table from its entries `(address, level, value)`, in
    /// address order, as [`iter`](Self::iter) yields them; the inverse of
    /// `t.iter().map(|(p, v)| (p.addr(), p.level(), v.clone()))`.
    ///
    /// # Errors
    /// A [`RestoreError`] for the first entry that is wrong, naming it: a
    /// level past the geometry's top, or one that holds no entries; an
    /// address out of reach or not aligned to the level; an entry not in
    /// address order, or the same page as the one before; one that overlaps
    /// an earlier entry; a backend out of nodes. The table built so far is
    /// dropped.
    ///
    /// ```
    /// use mem_table::{Level, MemTable, X86_4Level};
    /// let mut t: MemTable<&str> = MemTable::new();
    /// t.insert(0x1000, "4 KiB").unwrap();
    /// t.insert_at(0x4000_0000, X86_4Level::L1G, "1 GiB").unwrap();
    ///
    /// let entries = t.iter().map(|(p, v)| (p.addr(), p.level(), *v));
    /// let copy = MemTable::from_entries(entries).unwrap();
    /// assert_eq!(copy, t);
    ///
    /// // The 4 KiB page lies inside the 2 MiB one before it:
    /// let bad = [(0, Level::new(1), "2 MiB"), (0x1000, Level::BASE, "4 KiB")];
    /// let err = MemTable::<&str>::from_entries(bad).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "entry 1 (0x1000 at level 0): overlaps a larger entry: the entry at 0x0 (level 1) covers it"
    /// );
    /// ```
    pub fn from_entries<I: IntoIterator<Item = (u64, Level, V)>>(entries: I) -> Result<Self, RestoreError> {
        Self::from_entries_in(B::default(), entries)
    }
}

impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
    /// As [`from_entries`](Self::from_entries), with the nodes stored by
    /// `backend` (a [`Pool`](crate::backend::Pool) refuses entries past its
    /// capacity with [`OutOfNodes`](ErrorKind::OutOfNodes)).
    ///
    /// # Errors
    /// As [`from_entries`](Self::from_entries).
    ///
    /// ```
    /// use mem_table::{ErrorKind, Level, MemTable, RestoreErrorKind, backend::Pool, X86_4Level};
    /// // One table per level below the root: room for one 2 MiB region of pages.
    /// let entries = [(0x1000, Level::BASE, 1u8), (1 << 40, Level::BASE, 2)];
    /// let err = MemTable::<u8, X86_4Level, Pool>::from_entries_in(Pool::new(1), entries).unwrap_err();
    /// assert_eq!(err.index(), 1);
    /// assert!(matches!(err.kind(), RestoreErrorKind::Refused(e) if e.kind() == ErrorKind::OutOfNodes));
    /// ```
    pub fn from_entries_in<I: IntoIterator<Item = (u64, Level, V)>>(
        backend: B,
        entries: I,
    ) -> Result<Self, RestoreError> {
        let mut r = Restorer::new(backend);
        for (addr, level, v) in entries {
            r.push(addr, level, v)?;
        }
        Ok(r.table)
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use core::fmt;
    use core::marker::PhantomData;

    use arrayvec::ArrayVec;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
    use serde::{Deserialize, Serialize};

    use super::{At, Restorer, past_top};
    use crate::backend::Backend;
    use crate::geometry::{Geometry, MAX_LEVELS};
    use crate::page::Level;
    use crate::table::MemTable;

    /// A geometry's identity as a snapshot records it.
    #[derive(PartialEq, Eq)]
    struct Shape {
        address_bits: u32,
        level_shifts: ArrayVec<u32, MAX_LEVELS>,
        entry_levels: ArrayVec<u8, MAX_LEVELS>,
    }

    const SHAPE_FIELDS: &[&str] = &["address_bits", "level_shifts", "entry_levels"];
    const TABLE_FIELDS: &[&str] = &["geometry", "entries"];

    impl Shape {
        fn of<G: Geometry>() -> Shape {
            let levels = (0..G::LEVELS as u8).map(Level::new);
            Shape {
                address_bits: G::ADDRESS_BITS,
                level_shifts: levels.clone().filter_map(G::page_shift).collect(),
                entry_levels: levels.filter(|&l| G::holds_entries(l)).map(|l| l.index() as u8).collect(),
            }
        }
    }

    impl fmt::Display for Shape {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "{} address bits, level shifts {:?}, entries at levels {:?}",
                self.address_bits, self.level_shifts, self.entry_levels
            )
        }
    }

    impl Serialize for Shape {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("Geometry", 3)?;
            st.serialize_field("address_bits", &self.address_bits)?;
            st.serialize_field("level_shifts", self.level_shifts.as_slice())?;
            st.serialize_field("entry_levels", self.entry_levels.as_slice())?;
            st.end()
        }
    }

    /// A list of at most [`MAX_LEVELS`] numbers, refused past that.
    struct Bounded<T>(ArrayVec<T, MAX_LEVELS>);

    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Bounded<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
                type Value = Bounded<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "a list of at most {MAX_LEVELS} numbers, one per level")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let mut out = ArrayVec::new();
                    while let Some(x) = seq.next_element()? {
                        if out.try_push(x).is_err() {
                            return Err(de::Error::custom(format_args!(
                                "geometry: more than {MAX_LEVELS} levels (no geometry has that many)"
                            )));
                        }
                    }
                    Ok(Bounded(out))
                }
            }
            d.deserialize_seq(V(PhantomData))
        }
    }

    /// A field name of a struct with the fields `.0`, as its index.
    struct Field(&'static [&'static str]);

    impl<'de> DeserializeSeed<'de> for Field {
        type Value = usize;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
            d.deserialize_identifier(self)
        }
    }

    impl<'de> Visitor<'de> for Field {
        type Value = usize;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "one of the fields {:?}", self.0)
        }
        fn visit_u64<E: de::Error>(self, i: u64) -> Result<usize, E> {
            match usize::try_from(i) {
                Ok(i) if i < self.0.len() => Ok(i),
                _ => Err(E::invalid_value(de::Unexpected::Unsigned(i), &self)),
            }
        }
        fn visit_str<E: de::Error>(self, name: &str) -> Result<usize, E> {
            self.0.iter().position(|&f| f == name).ok_or_else(|| E::unknown_field(name, self.0))
        }
        fn visit_bytes<E: de::Error>(self, name: &[u8]) -> Result<usize, E> {
            match core::str::from_utf8(name) {
                Ok(name) => self.visit_str(name),
                Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(name), &self)),
            }
        }
    }

    impl<'de> Deserialize<'de> for Shape {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Shape;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a geometry: address bits, level shifts, levels that hold entries")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                    let missing = |i| de::Error::invalid_length(i, &self);
                    let address_bits = seq.next_element()?.ok_or_else(|| missing(0))?;
                    let Bounded(level_shifts) = seq.next_element()?.ok_or_else(|| missing(1))?;
                    let Bounded(entry_levels) = seq.next_element()?.ok_or_else(|| missing(2))?;
                    Ok(Shape { address_bits, level_shifts, entry_levels })
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
                    let (mut bits, mut shifts, mut levels) = (None, None, None);
                    while let Some(i) = map.next_key_seed(Field(SHAPE_FIELDS))? {
                        let dup = match i {
                            0 => bits.replace(map.next_value()?).is_some(),
                            1 => shifts.replace(map.next_value::<Bounded<_>>()?.0).is_some(),
                            _ => levels.replace(map.next_value::<Bounded<_>>()?.0).is_some(),
                        };
                        if dup {
                            return Err(de::Error::duplicate_field(SHAPE_FIELDS[i]));
                        }
                    }
                    Ok(Shape {
                        address_bits: bits.ok_or_else(|| de::Error::missing_field(SHAPE_FIELDS[0]))?,
                        level_shifts: shifts.ok_or_else(|| de::Error::missing_field(SHAPE_FIELDS[1]))?,
                        entry_levels: levels.ok_or_else(|| de::Error::missing_field(SHAPE_FIELDS[2]))?,
                    })
                }
            }
            d.deserialize_struct("Geometry", SHAPE_FIELDS, V)
        }
    }

    /// The entries, in address order, as `(address, level, value)`.
    struct Entries<'a, V, G: Geometry, B: Backend>(&'a MemTable<V, G, B>);

    impl<V: Serialize, G: Geometry, B: Backend> Serialize for Entries<'_, V, G, B> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(self.0.len()))?;
            for (page, v) in self.0.iter() {
                seq.serialize_element(&(page.addr(), page.level().index() as u8, v))?;
            }
            seq.end()
        }
    }

    /// A snapshot of the table: its geometry, then its entries in address
    /// order. Needs the `serde` feature.
    ///
    /// The form is a struct `MemTable` of two fields:
    ///
    /// - `geometry`, a struct `Geometry`: `address_bits`
    ///   ([`Geometry::ADDRESS_BITS`]), `level_shifts` (log2 of an entry's
    ///   size at each level, from the bottom up: [`Geometry::page_shift`])
    ///   and `entry_levels` (the levels that hold entries, ascending:
    ///   [`Geometry::holds_entries`]);
    /// - `entries`, a sequence of `(address, level, value)` tuples (`u64`,
    ///   `u8`, `V`) in address order.
    ///
    /// ```
    /// use mem_table::{MemTable, X86_4Level};
    /// let mut t: MemTable<&str> = MemTable::new();
    /// t.insert(0x1000, "r-x").unwrap();
    /// t.insert_at(0x20_0000, X86_4Level::L2M, "rw-").unwrap();
    /// assert_eq!(
    ///     serde_json::to_string(&t).unwrap(),
    ///     r#"{"geometry":{"address_bits":48,"level_shifts":[12,21,30,39],"entry_levels":[0,1,2]},"#
    ///         .to_owned()
    ///         + r#""entries":[[4096,0,"r-x"],[2097152,1,"rw-"]]}"#
    /// );
    /// ```
    impl<V: Serialize, G: Geometry, B: Backend> Serialize for MemTable<V, G, B> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("MemTable", 2)?;
            st.serialize_field("geometry", &Shape::of::<G>())?;
            st.serialize_field("entries", &Entries(self))?;
            st.end()
        }
    }

    /// Restores a snapshot written by the `Serialize` implementation, with
    /// the backend's default configuration (see
    /// [`deserialize_in`](MemTable::deserialize_in) for another). Needs the
    /// `serde` feature.
    ///
    /// Everything is checked: the geometry must be the table's (and come
    /// before the entries), and the entries are restored as by
    /// [`from_entries`](MemTable::from_entries), each refusal becoming the
    /// format's error with the [`RestoreError`](crate::RestoreError)'s
    /// message. Bad input never panics, and nothing is allocated ahead from
    /// a length the input claims.
    ///
    /// ```
    /// use mem_table::{MemTable, X86_5Level};
    /// let mut t: MemTable<u32> = MemTable::new();
    /// t.insert(0x1000, 7).unwrap();
    /// let json = serde_json::to_string(&t).unwrap();
    /// assert_eq!(serde_json::from_str::<MemTable<u32>>(&json).unwrap(), t);
    ///
    /// // A snapshot of a 4-level table does not restore into a 5-level one.
    /// let err = serde_json::from_str::<MemTable<u32, X86_5Level>>(&json).unwrap_err();
    /// assert!(err.to_string().starts_with("geometry mismatch"));
    ///
    /// let bad = r#"{"geometry":{"address_bits":48,"level_shifts":[12,21,30,39],"entry_levels":[0,1,2]},
    ///               "entries":[[8192,0,1],[4096,0,2]]}"#;
    /// let err = serde_json::from_str::<MemTable<u32>>(bad).unwrap_err();
    /// assert!(err.to_string().starts_with(
    ///     "entry 1 (0x1000 at level 0): not in address order: the previous entry is at 0x2000"
    /// ));
    /// ```
    impl<'de, V: Deserialize<'de>, G: Geometry, B: Backend + Default> Deserialize<'de> for MemTable<V, G, B> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Self::deserialize_in(B::default(), d)
        }
    }

    impl<V, G: Geometry, B: Backend> MemTable<V, G, B> {
        /// Restores a snapshot as the `Deserialize` implementation does,
        /// with the nodes stored by `backend` (for a
        /// [`Pool`](crate::backend::Pool), which has no default). Needs the
        /// `serde` feature.
        ///
        /// # Errors
        /// The deserializer's error, for bad input as `Deserialize` says,
        /// or when the backend runs out of nodes.
        ///
        /// ```
        /// use mem_table::{MemTable, X86_4Level, backend::Pool};
        /// let mut t: MemTable<u32> = MemTable::new();
        /// t.insert(0x1000, 7).unwrap();
        /// let json = serde_json::to_string(&t).unwrap();
        ///
        /// let mut de = serde_json::Deserializer::from_str(&json);
        /// let p = MemTable::<u32, X86_4Level, Pool>::deserialize_in(Pool::new(1), &mut de).unwrap();
        /// assert_eq!(p.get(0x1000), Some(&7));
        /// ```
        pub fn deserialize_in<'de, D: Deserializer<'de>>(backend: B, d: D) -> Result<Self, D::Error>
        where
            V: Deserialize<'de>,
        {
            d.deserialize_struct("MemTable", TABLE_FIELDS, TableVisitor { backend, _types: PhantomData })
        }
    }

    /// Checks the geometry of a snapshot against `G`'s.
    fn check_geometry<G: Geometry, E: de::Error>(found: &Shape) -> Result<(), E> {
        let expected = Shape::of::<G>();
        if *found == expected {
            Ok(())
        } else {
            Err(E::custom(format_args!(
                "geometry mismatch: the snapshot's geometry has {found}; the table's has {expected}"
            )))
        }
    }

    struct TableVisitor<V, G, B> {
        backend: B,
        _types: PhantomData<fn() -> (V, G)>,
    }

    impl<'de, V: Deserialize<'de>, G: Geometry, B: Backend> Visitor<'de> for TableVisitor<V, G, B> {
        type Value = MemTable<V, G, B>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mem-table snapshot: its geometry, then its entries")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let shape: Shape = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
            check_geometry::<G, _>(&shape)?;
            let entries = EntriesSeed::<V, G, B> { backend: self.backend, _types: PhantomData };
            match seq.next_element_seed(entries)? {
                Some(table) => Ok(table),
                None => {
                    Err(de::Error::invalid_length(1, &"a mem-table snapshot: its geometry, then its entries"))
                }
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut backend = Some(self.backend);
            let mut geometry = false;
            let mut table = None;
            while let Some(i) = map.next_key_seed(Field(TABLE_FIELDS))? {
                if i == 0 {
                    if geometry {
                        return Err(de::Error::duplicate_field("geometry"));
                    }
                    check_geometry::<G, _>(&map.next_value::<Shape>()?)?;
                    geometry = true;
                } else {
                    let Some(backend) = backend.take() else {
                        return Err(de::Error::duplicate_field("entries"));
                    };
                    if !geometry {
                        return Err(de::Error::custom(
                            "entries before the geometry: a snapshot gives its geometry first",
                        ));
                    }
                    table = Some(map.next_value_seed(EntriesSeed { backend, _types: PhantomData })?);
                }
            }
            if !geometry {
                return Err(de::Error::missing_field("geometry"));
            }
            table.ok_or_else(|| de::Error::missing_field("entries"))
        }
    }

    /// Deserializes the entries into a new table on `backend`.
    struct EntriesSeed<V, G, B> {
        backend: B,
        _types: PhantomData<fn() -> (V, G)>,
    }

    impl<'de, V: Deserialize<'de>, G: Geometry, B: Backend> DeserializeSeed<'de> for EntriesSeed<V, G, B> {
        type Value = MemTable<V, G, B>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de, V: Deserialize<'de>, G: Geometry, B: Backend> Visitor<'de> for EntriesSeed<V, G, B> {
        type Value = MemTable<V, G, B>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of entries (address, level, value)")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut r = Restorer::<V, G, B>::new(self.backend);
            // One entry at a time: nothing is allocated from a size hint.
            while let Some(RawEntry(addr, level, v)) = seq.next_element()? {
                let Ok(level) = u8::try_from(level) else {
                    struct PastTop(At, Level);
                    impl fmt::Display for PastTop {
                        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                            past_top(f, self.0, self.1)
                        }
                    }
                    return Err(de::Error::custom(PastTop(At { index: r.index, addr, level }, G::TOP)));
                };
                r.push(addr, Level::new(level), v).map_err(de::Error::custom)?;
            }
            Ok(r.table)
        }
    }

    /// One entry as written: its level any unsigned number, checked by the
    /// restore (so that a level past 255 is named as such).
    struct RawEntry<V>(u64, u64, V);

    impl<'de, V: Deserialize<'de>> Deserialize<'de> for RawEntry<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct E<V>(PhantomData<V>);
            impl<'de, V: Deserialize<'de>> Visitor<'de> for E<V> {
                type Value = RawEntry<V>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an entry (address, level, value)")
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    let missing = |i| de::Error::invalid_length(i, &self);
                    let addr = seq.next_element()?.ok_or_else(|| missing(0))?;
                    let level = seq.next_element_seed(LevelNumber)?.ok_or_else(|| missing(1))?;
                    let v = seq.next_element()?.ok_or_else(|| missing(2))?;
                    Ok(RawEntry(addr, level, v))
                }
            }
            d.deserialize_tuple(3, E(PhantomData))
        }
    }

    /// A level, written as a `u8`, read as any unsigned number.
    struct LevelNumber;

    impl<'de> DeserializeSeed<'de> for LevelNumber {
        type Value = u64;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
            d.deserialize_u8(self)
        }
    }

    impl<'de> Visitor<'de> for LevelNumber {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a level number")
        }
        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }
    }
}
