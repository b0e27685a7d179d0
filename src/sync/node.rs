//! One table of the concurrent table: a header and an array of atomic
//! cells, in one allocation; and the tagged words of upper slots.
//!
//! ```text
//!  upper table (level > 0)      bottom, values of <= 63 bits   bottom, 64-bit values     bottom, Arc<T> values
//!  +---------------------+      +---------------------+        +----------------------+  +---------------------+
//!  | header (len)        |      | header (len)        |        | header (len)         |  | header (len)        |
//!  +---------------------+      +---------------------+        +----------------------+  +---------------------+
//!  | fan-out x AtomicPtr |      | fan-out x AtomicU64 |        | present: 1 bit/slot  |  | fan-out x AtomicPtr |
//!  |  null   : empty     |      |  0        : empty   |        |  (AtomicU64 words)   |  |  null : empty       |
//!  |  ptr    : child     |      |  v<<1 | 1 : value v |        +----------------------+  |  p    : the value   |
//!  |  v<<1|1 : inline v  |      +---------------------+        | fan-out x AtomicU64  |  |   (Arc::into_raw)   |
//!  |  ptr|2  : boxed v   |                                     |  values              |  +---------------------+
//!  |  p|1    : Arc value |                                     +----------------------+
//!  +---------------------+
//! ```
//!
//! A boxed value is a node of one cell, immutable once published. An `Arc`
//! value is the pointer `Arc::into_raw` gave (with its provenance; tagged
//! with bit 0 in upper slots, where tables whose values are `Arc`s hold no
//! inline values), standing for one strong reference the table owns. Under
//! `cfg(loom)` the header also holds a loom cell that a reclaimed node is
//! "poisoned" through: every reader visit reads it, so a reclamation that
//! is not ordered after every reader that could still visit the node is a
//! data race loom reports; `loom_values` does the same for `Arc` values,
//! whose memory is not ours to put a cell in.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use core::sync::atomic::AtomicUsize;

use super::prim::{AtomicPtr, AtomicU64};

/// The head of every node.
///
/// # Invariants
/// `len` is only read and written by the writer (under the writer lock, or
/// with `&mut` access to the table): it is never part of what readers see.
#[repr(C)]
pub(crate) struct Header {
    /// Occupied slots: non-null links above, present entries at the bottom.
    pub len: AtomicUsize,
    /// Cleared when the node is reclaimed (loom only; see the module docs).
    #[cfg(loom)]
    alive: loom::cell::UnsafeCell<bool>,
}

/// What a node holds after its header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `n` slot links (an upper table).
    Links(usize),
    /// `n` value cells (a bottom table, or one boxed value).
    Cells(usize),
}

const fn round_up(x: usize, a: usize) -> usize {
    (x + a - 1) & !(a - 1)
}

/// Offset of the first link.
const LINKS: usize = round_up(size_of::<Header>(), align_of::<AtomicPtr<Header>>());
/// Offset of the first cell.
const CELLS: usize = round_up(size_of::<Header>(), align_of::<AtomicU64>());

impl Kind {
    /// The node's allocation.
    pub(crate) fn layout(self) -> Layout {
        let (end, align) = match self {
            Kind::Links(n) => (LINKS + n * size_of::<AtomicPtr<Header>>(), align_of::<AtomicPtr<Header>>()),
            Kind::Cells(n) => (CELLS + n * size_of::<AtomicU64>(), align_of::<AtomicU64>()),
        };
        let align = if align > align_of::<Header>() { align } else { align_of::<Header>() };
        Layout::from_size_align(end, align).expect("a table's layout fits")
    }
}

/// A node: a pointer to a live allocation of some [`Kind`].
///
/// # Invariants
/// The pointer is to an allocation made by [`Node::new`] with the kind the
/// holder knows (from the level it is at), whose header and every cell or
/// link are initialised; it is at least 8-aligned, so the low bits of a
/// link are free for tags. Whoever holds a `Node` knows why it is live: the
/// writer because only it frees nodes, a reader because of its guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Node(NonNull<Header>);

/// An empty upper slot, or one whose link has been cleared.
pub(crate) const EMPTY: *mut Header = ptr::null_mut();
/// Tag of an inline large value: the word is `bits << 1 | 1`.
const INLINE: usize = 1;
/// Tag of a boxed large value: the word is the box's address `| 2`.
const BOXED: usize = 2;

/// An upper slot's word, decoded.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Link {
    Empty,
    Table(Node),
    Inline(u64),
    Boxed(Node),
    /// An `Arc` value's pointer (tables of `Arc` values only).
    Shared(NonNull<Header>),
}

impl Link {
    /// Decodes a slot word. Pure bit manipulation: what the word points to
    /// is only touched by the caller.
    #[inline(always)]
    pub(crate) fn of(w: *mut Header) -> Link {
        let a = w.addr();
        // The common case first: a link (or nothing), one test of the tags.
        if a & (INLINE | BOXED) == 0 {
            NonNull::new(w).map_or(Link::Empty, |n| Link::Table(Node(n)))
        } else if a & INLINE != 0 {
            Link::Inline((a >> 1) as u64)
        } else {
            NonNull::new(w.map_addr(|a| a & !BOXED)).map_or(Link::Empty, |n| Link::Boxed(Node(n)))
        }
    }

    /// Decodes a slot word of a table whose values are pointers (`Arc`s):
    /// bit 0 tags a value, else a link or nothing.
    #[inline(always)]
    pub(crate) fn of_shared(w: *mut Header) -> Link {
        if w.addr() & INLINE != 0 {
            // A tagged non-null pointer: untagged, it is still non-null.
            NonNull::new(w.map_addr(|a| a & !INLINE)).map_or(Link::Empty, Link::Shared)
        } else {
            NonNull::new(w).map_or(Link::Empty, |n| Link::Table(Node(n)))
        }
    }

    /// The upper-slot word of the `Arc` value pointer `p` (bit 0 clear).
    #[inline(always)]
    pub(crate) fn shared(p: *mut Header) -> *mut Header {
        debug_assert!(p.addr() & INLINE == 0);
        p.map_addr(|a| a | INLINE)
    }

    /// The word of an inline value of at most 63 bits: an integer, with no
    /// provenance (it is never dereferenced).
    #[inline(always)]
    pub(crate) fn inline(bits: u64) -> *mut Header {
        debug_assert!(bits >> 63 == 0);
        ptr::without_provenance_mut(((bits << 1) | 1) as usize)
    }

    /// The word that links the child table `n`.
    #[inline(always)]
    pub(crate) fn table(n: Node) -> *mut Header {
        n.0.as_ptr()
    }

    /// The word of the boxed value `n` (its pointer, tagged: provenance kept).
    #[inline(always)]
    pub(crate) fn boxed(n: Node) -> *mut Header {
        n.0.as_ptr().map_addr(|a| a | BOXED)
    }
}

impl Node {
    /// A new node of `kind`: every link null, every cell zero, `len` zero.
    pub(crate) fn new(kind: Kind) -> Node {
        let layout = kind.layout();
        // SAFETY: the layout is not zero-sized: it holds a header. Zeroed
        // memory is a valid null `AtomicPtr` and a zero `AtomicU64` (both
        // have the representation of the plain type).
        #[cfg(not(loom))]
        let p = unsafe { std::alloc::alloc_zeroed(layout) };
        // SAFETY: as above; every field is written below.
        #[cfg(loom)]
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(p) = NonNull::new(p) else { std::alloc::handle_alloc_error(layout) };
        let h = p.cast::<Header>();
        // SAFETY: `h` is fresh, aligned for a header and large enough.
        unsafe {
            h.as_ptr().write(Header {
                len: AtomicUsize::new(0),
                #[cfg(loom)]
                alive: loom::cell::UnsafeCell::new(true),
            })
        };
        // Loom's atomics are not plain memory: construct each one.
        #[cfg(loom)]
        // SAFETY: every link or cell is in the allocation and aligned.
        unsafe {
            match kind {
                Kind::Links(n) => {
                    for i in 0..n {
                        p.as_ptr().add(LINKS).cast::<AtomicPtr<Header>>().add(i).write(AtomicPtr::new(EMPTY));
                    }
                }
                Kind::Cells(n) => {
                    for i in 0..n {
                        p.as_ptr().add(CELLS).cast::<AtomicU64>().add(i).write(AtomicU64::new(0));
                    }
                }
            }
        }
        Node(h)
    }

    /// Frees the node.
    ///
    /// # Safety
    /// `kind` is the node's kind; nobody uses it again (the writer has
    /// unlinked it and no reader can still visit it, or it was never
    /// published).
    pub(crate) unsafe fn free(self, kind: Kind) {
        // SAFETY: (caller) the allocation is live, of this layout, unused.
        unsafe {
            ptr::drop_in_place(self.0.as_ptr());
            std::alloc::dealloc(self.0.as_ptr().cast(), kind.layout());
        }
    }

    /// The writer's count of occupied slots.
    ///
    /// # Safety
    /// The node is live.
    #[inline(always)]
    pub(crate) unsafe fn len<'a>(self) -> &'a AtomicUsize {
        // SAFETY: (caller) a live node's header is initialised.
        unsafe { &(*self.0.as_ptr()).len }
    }

    /// Link `i` of an upper table.
    ///
    /// # Safety
    /// The node is live, of kind `Links(n)` with `i < n`.
    #[inline(always)]
    pub(crate) unsafe fn link<'a>(self, i: usize) -> &'a AtomicPtr<Header> {
        // SAFETY: (caller) in bounds, initialised, aligned.
        unsafe { &*self.0.as_ptr().cast::<u8>().add(LINKS).cast::<AtomicPtr<Header>>().add(i) }
    }

    /// Cell `i` of a bottom table or a boxed value.
    ///
    /// # Safety
    /// The node is live, of kind `Cells(n)` with `i < n`.
    #[inline(always)]
    pub(crate) unsafe fn cell<'a>(self, i: usize) -> &'a AtomicU64 {
        // SAFETY: (caller) in bounds, initialised, aligned.
        unsafe { &*self.0.as_ptr().cast::<u8>().add(CELLS).cast::<AtomicU64>().add(i) }
    }

    /// Marks a reader's visit (loom only: the read that a reclamation
    /// racing with it conflicts with).
    ///
    /// # Safety
    /// The node's memory is allocated (under loom, reclaimed nodes are
    /// poisoned, not freed, until the table is dropped).
    #[inline(always)]
    pub(crate) unsafe fn visit(self) {
        #[cfg(loom)]
        // SAFETY: (caller) the header is allocated and initialised.
        unsafe {
            (*self.0.as_ptr()).alive.with(|p| assert!(*p, "a reader visited a reclaimed node"));
        }
    }

    /// Poisons a reclaimed node (loom only): a write that races with any
    /// reader visit not ordered before it.
    ///
    /// # Safety
    /// The node's memory is allocated.
    #[cfg(loom)]
    pub(crate) unsafe fn poison(self) {
        // SAFETY: (caller) the header is allocated and initialised.
        unsafe { (*self.0.as_ptr()).alive.with_mut(|p| *p = false) }
    }
}

/// The loom stand-in for poisoning `Arc` values (loom only).
///
/// The table cannot put a loom cell inside a user's `Arc`, so it keeps one
/// per value pointer here: made when the table takes a reference
/// (`published`), read by every reader visit (`visit`), and written when
/// the table drops its last reference (`released`). A release not ordered
/// after a reader that could still visit the value is a data race loom
/// reports, and a visit after it fails outright. Per OS thread: loom runs
/// a model's threads on the test's thread, and tests run in parallel. The
/// cells are leaked (a few per model run).
#[cfg(loom)]
pub(crate) mod loom_values {
    use std::cell::RefCell;
    use std::collections::HashMap;

    type Cell = &'static loom::cell::UnsafeCell<bool>;

    std::thread_local! {
        /// Address -> (table references, poison cell).
        static VALUES: RefCell<HashMap<usize, (usize, Cell)>> = RefCell::new(HashMap::new());
    }

    /// The table took one more reference to the value at `p`.
    pub(crate) fn published<T>(p: *mut T) {
        VALUES.with(|m| {
            let mut m = m.borrow_mut();
            let fresh =
                || -> Cell { std::boxed::Box::leak(std::boxed::Box::new(loom::cell::UnsafeCell::new(true))) };
            match m.get_mut(&p.addr()) {
                Some(e) if e.0 > 0 => e.0 += 1,
                // A new value (or an address reused): a fresh cell.
                _ => {
                    m.insert(p.addr(), (1, fresh()));
                }
            }
        })
    }

    /// A reader visits the value at `p`.
    pub(crate) fn visit<T>(p: *mut T) {
        let c = VALUES.with(|m| m.borrow().get(&p.addr()).map(|e| e.1));
        let c = c.expect("a reader visited a value the table never held");
        // SAFETY: loom's pointer to the cell's value, valid in the closure.
        c.with(|a| assert!(unsafe { *a }, "a reader visited a reclaimed value"));
    }

    /// The table dropped one reference to the value at `p`.
    pub(crate) fn released<T>(p: *mut T) {
        let last = VALUES.with(|m| {
            let mut m = m.borrow_mut();
            let e = m.get_mut(&p.addr()).expect("a value released that was never published");
            assert!(e.0 > 0, "a value released more often than published");
            e.0 -= 1;
            (e.0 == 0).then_some(e.1)
        });
        if let Some(c) = last {
            // SAFETY: as in `visit`.
            c.with_mut(|a| unsafe { *a = false });
        }
    }
}
