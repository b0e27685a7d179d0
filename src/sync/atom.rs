//! [`Atom`]: values that fit in one atomic word.

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
    /// 64-bit values: no spare bit for presence in the word.
    pub const WIDE: bool = V::BITS >= 64;
    /// The mask of the value's bits.
    pub const MASK: u64 = if V::BITS >= 64 { u64::MAX } else { (1u64 << V::BITS) - 1 };

    /// The value's bits, masked.
    #[inline(always)]
    pub fn bits(v: V) -> u64 {
        v.into_bits() & Self::MASK
    }
}
