//! [`Atom`]: values that fit in one atomic word; [`Value`]: what the
//! concurrent table stores (every `Atom`, and `Arc<T>` published by pointer).

/// A value the concurrent table stores inline in an atomic word, so that a
/// reader copies it out with one atomic load and can never see it torn.
///
/// `into_bits` must return a number below `2^BITS`, and `from_bits` must
/// give back the value for it (`from_bits(v.into_bits()) == v`). Both are
/// safe: a wrong implementation gives wrong values, never undefined
/// behaviour (the table masks the bits to `BITS`).
///
/// Values of at most 63 bits are packed with a presence bit into one word,
/// everywhere in the table; 64-bit values (`u64`, `i64`) keep a separate
/// presence bitmap in bottom tables and are published by pointer in upper
/// ones (see [the module docs](super#value-representation)).
///
/// ```
/// use mem_table::sync::Atom;
///
/// /// Per-page rights: read, write, execute.
/// #[derive(Clone, Copy, Debug, PartialEq)]
/// struct Rights(u8);
/// impl Atom for Rights {
///     const BITS: u32 = 3;
///     fn into_bits(self) -> u64 { self.0 as u64 & 7 }
///     fn from_bits(bits: u64) -> Self { Rights(bits as u8) }
/// }
///
/// let t: mem_table::sync::MemTable<Rights> = Default::default();
/// t.writer().insert(0x1000, Rights(5)).unwrap();
/// assert_eq!(t.get_pinned(0x1fff), Some(Rights(5)));
/// ```
pub trait Atom: Copy + Send + Sync + 'static {
    /// How many low bits of the word the value uses: 1 to 64.
    const BITS: u32;
    /// The value as a number below `2^BITS`.
    fn into_bits(self) -> u64;
    /// The value of a number `into_bits` returned.
    fn from_bits(bits: u64) -> Self;
}

macro_rules! atom_int {
    ($($t:ty, $u:ty, $bits:expr;)*) => {$(
        impl Atom for $t {
            const BITS: u32 = $bits;
            #[inline(always)]
            fn into_bits(self) -> u64 {
                self as $u as u64
            }
            #[inline(always)]
            fn from_bits(bits: u64) -> Self {
                bits as $u as $t
            }
        }
    )*};
}

atom_int! {
    u8, u8, 8;
    u16, u16, 16;
    u32, u32, 32;
    u64, u64, 64;
    i8, u8, 8;
    i16, u16, 16;
    i32, u32, 32;
    i64, u64, 64;
}

impl Atom for bool {
    const BITS: u32 = 1;
    #[inline(always)]
    fn into_bits(self) -> u64 {
        self as u64
    }
    #[inline(always)]
    fn from_bits(bits: u64) -> Self {
        bits & 1 != 0
    }
}

/// What the table derives from an [`Atom`].
pub(crate) struct Repr<V>(core::marker::PhantomData<V>);

impl<V: Atom> Repr<V> {
    /// Checked once per table type: 1 to 64 bits.
    pub const VALID: () = assert!(V::BITS >= 1 && V::BITS <= 64, "Atom::BITS must be 1 to 64");
    /// The mask of the value's bits.
    pub const MASK: u64 = if V::BITS >= 64 { u64::MAX } else { (1u64 << V::BITS) - 1 };

    /// The value's bits, masked.
    #[inline(always)]
    pub fn bits(v: V) -> u64 {
        v.into_bits() & Self::MASK
    }
}

/// How a [`Value`] is stored (what the table's code paths branch on, at
/// compile time).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// An [`Atom`] of at most 63 bits: packed with a presence bit.
    Packed,
    /// A 64-bit [`Atom`]: a presence bitmap at the bottom, a box above.
    Wide,
    /// A pointer published in the slot (`Arc<T>`).
    Ptr,
}

mod sealed {
    pub trait Sealed {}
    impl<A: super::Atom> Sealed for A {}
    impl<T: Send + Sync + 'static> Sealed for alloc::sync::Arc<T> {}
}

/// A value the concurrent table can store so that readers never see it
/// torn: every [`Atom`] (stored inline, read by copy) and `Arc<T>` for any
/// `T: Send + Sync + 'static` (published by pointer, read by reference).
/// Sealed: implement [`Atom`] for a small type, or store an `Arc` of it.
///
/// | `V` | a reader gets ([`Read<'g>`](Value::Read)) | stored as |
/// |---|---|---|
/// | `A: Atom` | `A`, a copy | the value's bits in the slot word |
/// | `Arc<T>` | `&'g T`, borrowed for the guard's lifetime | the pointer of `Arc::into_raw` in the slot |
///
/// An `Arc` value is immutable once published: replacing or removing it
/// publishes another pointer (or null) with one store, and the table's
/// reference to the old one is dropped only after every reader that could
/// have loaded it has left its read section. The writer's `insert` and
/// `remove` return the old `Arc` (a clone of the table's reference, so the
/// caller owns one while readers keep theirs).
///
/// ```
/// use std::sync::Arc;
/// use mem_table::sync::MemTable;
///
/// #[derive(Debug, PartialEq)]
/// struct Mapping { host: u64, name: String }
///
/// let t: MemTable<Arc<Mapping>> = MemTable::new();
/// let m = Arc::new(Mapping { host: 0x7f00_0000, name: "ram".into() });
/// t.writer().insert(0x1000, m.clone()).unwrap();
/// let g = t.pin();
/// let r: &Mapping = t.get(0x1abc, &g).unwrap(); // borrowed, no refcount touched
/// assert_eq!(r.name, "ram");
/// let old = t.writer().insert(0x1000, Arc::new(Mapping { host: 0, name: "rom".into() })).unwrap();
/// assert_eq!(old.as_deref(), Some(&*m));
/// assert_eq!(r.host, 0x7f00_0000); // still valid: `g` keeps the old value alive
/// drop(g);
/// assert_eq!(t.get_pinned(0x1000).unwrap().name, "rom"); // an owned `Arc`
/// ```
pub trait Value: sealed::Sealed + Clone + Send + Sync + 'static {
    /// What a reader gets for a guard borrowed for `'g`: a copy of an
    /// [`Atom`], or `&'g T` for `Arc<T>`.
    type Read<'g>: Copy;

    #[doc(hidden)]
    const STORE: Store;
    /// Checked once per table type.
    #[doc(hidden)]
    const VALID: ();
    /// Bytes a value held by the table keeps allocated (`Ptr` only).
    #[doc(hidden)]
    const HEAP_BYTES: usize;

    /// The value's masked bits (`Packed`, `Wide`).
    #[doc(hidden)]
    fn to_bits(&self) -> u64;
    /// The value of bits from `to_bits` (`Packed`, `Wide`).
    #[doc(hidden)]
    fn from_bits(bits: u64) -> Self;
    /// A reader's view of bits from `to_bits`.
    #[doc(hidden)]
    fn read_bits<'g>(bits: u64) -> Self::Read<'g>;
    /// Whether two values are stored alike (the same bits, or the same
    /// `Arc`): storing `other` over `self` would change nothing a reader
    /// can see.
    #[doc(hidden)]
    fn same(&self, other: &Self) -> bool;

    /// Gives the value's reference to the table: a pointer with
    /// provenance, with bit 0 clear (`Ptr`).
    #[doc(hidden)]
    fn into_ptr(self) -> *mut ();
    /// Borrows the value behind `p`.
    ///
    /// # Safety
    /// `p` is from `into_ptr`, and the reference it stands for is not
    /// dropped before `'g` ends.
    #[doc(hidden)]
    unsafe fn read_ptr<'g>(p: *mut ()) -> Self::Read<'g>;
    /// A new reference to the value behind `p` (a clone).
    ///
    /// # Safety
    /// As [`read_ptr`](Value::read_ptr), for the duration of the call.
    #[doc(hidden)]
    unsafe fn clone_ptr(p: *mut ()) -> Self;
    /// Drops the reference `p` stands for.
    ///
    /// # Safety
    /// `p` is from `into_ptr` and is dropped once: no one uses it again.
    #[doc(hidden)]
    unsafe fn drop_ptr(p: *mut ());
}

impl<A: Atom> Value for A {
    type Read<'g> = A;
    const STORE: Store = if A::BITS >= 64 { Store::Wide } else { Store::Packed };
    const VALID: () = Repr::<A>::VALID;
    const HEAP_BYTES: usize = 0;

    #[inline(always)]
    fn to_bits(&self) -> u64 {
        Repr::<A>::bits(*self)
    }
    #[inline(always)]
    fn from_bits(bits: u64) -> A {
        A::from_bits(bits)
    }
    #[inline(always)]
    fn read_bits<'g>(bits: u64) -> Self::Read<'g> {
        A::from_bits(bits)
    }
    #[inline]
    fn same(&self, other: &Self) -> bool {
        self.to_bits() == other.to_bits()
    }
    fn into_ptr(self) -> *mut () {
        unreachable!("an Atom is stored inline")
    }
    unsafe fn read_ptr<'g>(_: *mut ()) -> Self::Read<'g> {
        unreachable!("an Atom is stored inline")
    }
    unsafe fn clone_ptr(_: *mut ()) -> A {
        unreachable!("an Atom is stored inline")
    }
    unsafe fn drop_ptr(_: *mut ()) {
        unreachable!("an Atom is stored inline")
    }
}

impl<T: Send + Sync + 'static> Value for alloc::sync::Arc<T> {
    type Read<'g> = &'g T;
    const STORE: Store = Store::Ptr;
    const VALID: () = ();
    // The allocation of an `Arc<T>`: two counters and the value.
    const HEAP_BYTES: usize = 2 * size_of::<usize>() + size_of::<T>();

    fn to_bits(&self) -> u64 {
        unreachable!("an Arc is stored by pointer")
    }
    fn from_bits(_: u64) -> Self {
        unreachable!("an Arc is stored by pointer")
    }
    fn read_bits<'g>(_: u64) -> Self::Read<'g> {
        unreachable!("an Arc is stored by pointer")
    }
    fn same(&self, other: &Self) -> bool {
        alloc::sync::Arc::ptr_eq(self, other)
    }

    #[inline]
    fn into_ptr(self) -> *mut () {
        // Bit 0 tags a value in an upper slot. An `Arc`'s value follows its
        // two counters in an allocation aligned for them, so it is always
        // even; checked, since std does not promise it.
        assert!(alloc::sync::Arc::as_ptr(&self).addr() & 1 == 0, "an Arc's value at an odd address");
        alloc::sync::Arc::into_raw(self).cast_mut().cast()
    }
    #[inline(always)]
    unsafe fn read_ptr<'g>(p: *mut ()) -> Self::Read<'g> {
        // SAFETY: (caller) `p` is an `Arc<T>`'s value pointer whose strong
        // reference lives for `'g`; `T: Sync`, and the value is immutable.
        unsafe { &*p.cast::<T>() }
    }
    #[inline]
    unsafe fn clone_ptr(p: *mut ()) -> Self {
        // SAFETY: (caller) a live strong reference stands for `p`: count
        // one more and take it.
        unsafe {
            alloc::sync::Arc::increment_strong_count(p.cast::<T>());
            alloc::sync::Arc::from_raw(p.cast::<T>())
        }
    }
    unsafe fn drop_ptr(p: *mut ()) {
        // SAFETY: (caller) the reference is dropped once.
        drop(unsafe { alloc::sync::Arc::from_raw(p.cast::<T>()) })
    }
}
