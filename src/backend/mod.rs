//! Table-storage backends: where a table's tables live.
//!
//! A [`MemTable`](crate::MemTable) keeps the tables of each level in a store
//! of that level. A parent slot links to a child table by the child's
//! address, on every backend, so a lookup follows one pointer per level and
//! tables never move once made. The backend, a type parameter, decides where
//! that memory comes from:
//!
//! | backend | table memory | grows | returns memory | fallible without panicking |
//! |---|---|---|---|---|
//! | [`Heap`] (default) | one global-allocator allocation per table | yes | as each table is freed | yes (allocation failure is an error) |
//! | [`Arena`] | chunks of up to 2 MiB (a 2 MiB one 2 MiB-aligned), tables carved out of them | yes, doubling | a chunk when it empties (one empty chunk is kept), and on `shrink_to_fit` | yes |
//! | [`Pool`] | one block per level, allocated when the table is built | never | when the table is dropped | yes (running out is an error) |
//!
//! All three run the same table code and give identical results; they differ
//! only in speed, memory and when they can run out.
//!
//! # Reservations
//! A level's store keeps a count of reserved tables (see
//! [`MemTable::reserve_insert`](crate::MemTable::reserve_insert)). Reserving
//! makes that many tables available (allocating on `Heap` and `Arena`,
//! checking on `Pool`) and adds them to the count; creating a table draws
//! from the count first. Reservations add up, and a store never gives back
//! memory that reserved tables need.

mod arena;
mod chunks;
mod heap;
mod pool;

pub use arena::Arena;
pub use heap::Heap;
pub use pool::Pool;

use core::panic::{RefUnwindSafe, UnwindSafe};
use core::ptr::NonNull;

/// The backend's internals, out of the public API: [`Backend`]'s supertrait
/// is crate-private, so outside the crate its items can be neither named nor
/// used, not even through a `B: Backend` bound, and it cannot be implemented.
/// The stores' inherent methods are crate-private too.
///
/// ```compile_fail,E0576
/// use mem_table::backend::{Arena, Backend};
/// fn store(_: Option<<Arena as Backend>::Store>) {}
/// ```
///
/// ```compile_fail,E0624
/// use mem_table::backend::Backend;
/// fn store<B: Backend>(_: Option<B::Store>) {}
/// ```
///
/// ```compile_fail,E0624
/// use mem_table::backend::Backend;
/// fn store<B: Backend>(b: &B) {
///     let _ = b.new_store(0, false, core::alloc::Layout::new::<[u64; 512]>());
/// }
/// ```
///
/// ```compile_fail,E0603
/// use mem_table::backend::sealed::Sealed;
/// ```
pub(crate) mod sealed {
    use core::alloc::Layout;

    use super::Store;

    /// What a [`Backend`](super::Backend) provides to the table, and the
    /// seal: implemented by the crate's backends only.
    pub(crate) trait Sealed {
        /// The store of one level's tables.
        type Store: Store;

        /// Whether bottom tables take packed forms on this backend (each
        /// packed class is a store of its own; see `raw::forms`).
        const PACKS: bool;

        /// A new, empty store for the tables of `level`, each of `layout`,
        /// configured by this backend value. `top` says it is the root's
        /// level (which holds exactly one table).
        fn new_store(&self, level: u8, top: bool, layout: Layout) -> Self::Store;
    }
}

/// How a table stores its tables. Sealed: choose [`Heap`], [`Arena`] or [`Pool`].
///
/// Every backend is `Send + Sync`, so a table is `Send` (or `Sync`) when its
/// values are, in generic code too:
///
/// ```
/// use mem_table::{MemTable, backend::{Arena, Backend}, geometry::X86_4Level};
/// fn round_trip<B: Backend>(t: MemTable<u64, X86_4Level, B>) -> MemTable<u64, X86_4Level, B> {
///     std::thread::spawn(move || t).join().unwrap()
/// }
/// let mut t: MemTable<u64, X86_4Level, Arena> = MemTable::new();
/// t.insert(0x1000, 1).unwrap();
/// assert_eq!(round_trip(t).get(0x1000), Some(&1));
/// ```
#[allow(private_bounds)] // the seal: crate-private, so that its items are too
pub trait Backend: sealed::Sealed + Clone + Send + Sync + 'static {
    /// A short name, for reports.
    const NAME: &'static str;
}

/// Crate-private items that a store's inherent methods mention: `pub` in a
/// private module, so that they are nameable inside the crate only.
mod private {
    /// A store could not make room: the pool is full or the allocator refused.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct NoRoom;
}
pub(crate) use private::NoRoom;

/// The memory of one level's tables. Crate-private: not part of the public
/// API, and not nameable from outside.
///
/// The contract that makes fallible operations all-or-nothing: after
/// `ensure(n)` succeeds, the next `n` calls to `alloc` neither allocate nor
/// fail, as long as `free` and `shrink_to_fit` are told to keep them.
///
/// # Safety
/// `alloc` returns memory of the store's layout, valid and unaliased until
/// it is given back to `free`; implementations must uphold this.
pub(crate) unsafe trait Store: Send + Sync + UnwindSafe + RefUnwindSafe + Sized {
    /// Memory for one table (uninitialized), or `None` if none is available.
    /// Draws from the tables `ensure` made available before allocating.
    fn alloc(&mut self) -> Option<NonNull<u8>>;

    /// Gives back the memory of a table. The store may release memory, but
    /// keeps at least `keep` tables available.
    ///
    /// # Safety
    /// `p` came from this store's `alloc` and was not freed since; nothing
    /// uses it afterwards.
    unsafe fn free(&mut self, p: NonNull<u8>, keep: usize);

    /// Makes at least `n` tables available without allocating.
    fn ensure(&mut self, n: usize) -> Result<(), NoRoom>;

    /// Tables that `alloc` can hand out without allocating.
    fn available(&self) -> usize;

    /// Tables handed out and not freed.
    fn live(&self) -> usize;

    /// The most tables the store can ever hold, if it is bounded.
    fn capacity(&self) -> Option<usize>;

    /// Bytes the store holds from the allocator.
    fn bytes(&self) -> usize;

    /// Releases memory no live table uses, keeping `keep` tables available.
    fn shrink_to_fit(&mut self, keep: usize);
}
