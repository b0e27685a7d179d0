//! Reclamation of unlinked nodes: [`Reclaim`], with [`Epoch`]
//! (crossbeam-epoch) for real use and, under `cfg(loom)`, schemes loom can
//! model.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use core::ptr::NonNull;

use super::node::{Header, Kind, Node};

/// Counts of retired and freed nodes, shared with deferred frees (which may
/// run after the table is gone, on any thread).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    retired: AtomicUsize,
    retired_bytes: AtomicUsize,
    freed: AtomicUsize,
    freed_bytes: AtomicUsize,
}

/// Memory unlinked from a table and not yet freed: what
/// [`MemTable::reclamation`](super::MemTable::reclamation) reports.
///
/// Counts are of items: tables, boxed values of 64-bit types, and the
/// table's references to `Arc` values (each counted with the bytes of its
/// allocation, which dropping the reference frees unless someone else
/// holds one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reclamation {
    /// Items retired since the table was made.
    pub retired: usize,
    /// Of those, the items freed (their grace period has passed).
    pub freed: usize,
    /// Items waiting for readers: `retired - freed`.
    pub pending: usize,
    /// Bytes waiting for readers.
    pub pending_bytes: usize,
}

impl Stats {
    pub(crate) fn snapshot(&self) -> Reclamation {
        // Freed is read first: a free counted after it only makes `pending`
        // larger, never negative.
        let freed = self.freed.load(Relaxed);
        let freed_bytes = self.freed_bytes.load(Relaxed);
        let retired = self.retired.load(Relaxed);
        let retired_bytes = self.retired_bytes.load(Relaxed);
        Reclamation {
            retired,
            freed,
            pending: retired.saturating_sub(freed),
            pending_bytes: retired_bytes.saturating_sub(freed_bytes),
        }
    }
}

/// Drops one reference a table held to a value published by pointer
/// ([`Value::drop_ptr`](super::Value::drop_ptr)).
pub(crate) type DropFn = unsafe fn(*mut ());

/// What a [`Retired`] owns.
enum What {
    /// A node.
    Node(Node, Kind),
    /// One reference to a value published by pointer.
    Value(NonNull<Header>, DropFn),
    /// A node and the references to the values its slots held (a table
    /// merged away: its slots still hold them for readers inside it).
    NodeAndValues(Node, Kind, Vec<NonNull<Header>>, DropFn),
}

/// Something unlinked from the table, to be freed once no reader can reach
/// it: a node, or the table's reference to a value published by pointer.
///
/// # Invariants
/// A node in it is a live node of its kind that no table links any more (it
/// may still be visited by readers that loaded its link before); a value
/// pointer is one the table published (`Value::into_ptr`), standing for a
/// reference no slot holds any more (readers that loaded it may still read
/// the value). The `Retired` is their only owner; `count` and `bytes` are
/// what `new` added to the statistics.
#[doc(hidden)]
pub struct Retired {
    what: What,
    count: usize,
    bytes: usize,
    stats: Arc<Stats>,
}

// SAFETY: a retired node is owned by this value alone (invariant); freeing
// it on another thread is what deferred reclamation is for. Values
// published by pointer are `Send + Sync` (`Value`), so their references
// may be dropped on any thread.
unsafe impl Send for Retired {}

impl Retired {
    fn counted(what: What, count: usize, bytes: usize, stats: &Arc<Stats>) -> Retired {
        stats.retired.fetch_add(count, Relaxed);
        stats.retired_bytes.fetch_add(bytes, Relaxed);
        Retired { what, count, bytes, stats: Arc::clone(stats) }
    }

    /// Counts the retirement of a node.
    ///
    /// # Safety
    /// As the type's invariants: `node` (of `kind`) is unlinked and this is
    /// its only owner from now on.
    pub(crate) unsafe fn new(node: Node, kind: Kind, stats: &Arc<Stats>) -> Retired {
        Self::counted(What::Node(node, kind), 1, kind.layout().size(), stats)
    }

    /// Counts the retirement of the table's reference `p` to a value of
    /// `bytes`, which `drop` drops.
    ///
    /// # Safety
    /// As the type's invariants: no slot holds `p` any more, and this is
    /// the only owner of its reference from now on.
    pub(crate) unsafe fn value(
        p: NonNull<Header>,
        drop: DropFn,
        bytes: usize,
        stats: &Arc<Stats>,
    ) -> Retired {
        Self::counted(What::Value(p, drop), 1, bytes, stats)
    }

    /// Counts the retirement of a node with the references to the values
    /// its slots hold (`values`, untagged, each of `bytes`).
    ///
    /// # Safety
    /// As [`new`](Self::new) and [`value`](Self::value) together.
    pub(crate) unsafe fn node_and_values(
        node: Node,
        kind: Kind,
        values: Vec<NonNull<Header>>,
        drop: DropFn,
        bytes: usize,
        stats: &Arc<Stats>,
    ) -> Retired {
        let (n, b) = (1 + values.len(), kind.layout().size() + values.len() * bytes);
        Self::counted(What::NodeAndValues(node, kind, values, drop), n, b, stats)
    }

    fn count_freed(&self) {
        self.stats.freed.fetch_add(self.count, Relaxed);
        self.stats.freed_bytes.fetch_add(self.bytes, Relaxed);
    }

    /// Poisons what it owns (loom only): the node's cell, and the values'
    /// cells of their last table reference.
    ///
    /// # Safety
    /// Its memory is still allocated (not yet `release`d).
    #[cfg(loom)]
    unsafe fn poison(&self) {
        // SAFETY: (caller) allocated.
        unsafe {
            match &self.what {
                What::Node(n, _) => n.poison(),
                What::Value(p, _) => super::node::loom_values::released(p.as_ptr()),
                What::NodeAndValues(n, _, vs, _) => {
                    n.poison();
                    for p in vs {
                        super::node::loom_values::released(p.as_ptr());
                    }
                }
            }
        }
    }

    /// Frees the node and drops the references, without counting.
    ///
    /// # Safety
    /// As [`free`](Self::free).
    unsafe fn release(self) {
        // SAFETY: (invariant) ours, of this kind, each reference once;
        // (caller) unvisited.
        unsafe {
            match self.what {
                What::Node(n, k) => n.free(k),
                What::Value(p, drop) => drop(p.as_ptr().cast()),
                What::NodeAndValues(n, k, vs, drop) => {
                    n.free(k);
                    for p in vs {
                        drop(p.as_ptr().cast());
                    }
                }
            }
        }
    }

    /// Frees the node, or drops the reference.
    ///
    /// # Safety
    /// No reader can still visit it: every reader that could have loaded a
    /// link to it (or its pointer) has left its read section.
    pub(crate) unsafe fn free(self) {
        self.count_freed();
        // SAFETY: (caller) unvisited; under loom, poisoned first, as the
        // deferred frees of the loom reclaimers do.
        unsafe {
            #[cfg(loom)]
            self.poison();
            self.release()
        }
    }
}

mod sealed {
    pub trait Sealed {}
}

/// How a table reclaims what it unlinks: a guard readers hold while they
/// read, and a deferred free. Sealed; [`Epoch`] is the one to use.
pub trait Reclaim: sealed::Sealed + Default + Send + Sync + 'static {
    /// What a reader holds while it reads: nodes it can reach are not freed
    /// until it is dropped.
    type Guard<'a>
    where
        Self: 'a;

    /// Enters a read section.
    fn pin(&self) -> Self::Guard<'_>;

    /// Whether `guard` protects readers of a table using `self` (a guard of
    /// another instance may not).
    #[doc(hidden)]
    fn owns(&self, guard: &Self::Guard<'_>) -> bool;

    /// Frees `r` once every read section that could reach it has ended.
    ///
    /// # Safety
    /// `r`'s node was unlinked (with a Release store) before this call.
    #[doc(hidden)]
    unsafe fn retire(&self, r: Retired);

    /// Pushes deferred frees towards running (crossbeam: flushes this
    /// thread's bag to the global queue and tries to advance the epoch).
    #[doc(hidden)]
    fn collect(&self);
}

/// Reclamation by [`crossbeam-epoch`](crossbeam_epoch)'s default collector.
///
/// Why crossbeam-epoch: it is the well-kept epoch scheme of the Rust
/// ecosystem (crossbeam's own queues and skiplist use it), readers pay one
/// thread-local increment and a fence to pin (about 11 ns) and nothing per
/// node visited, and a pin held across a batch amortises even that (one
/// run of `benches/sync.rs`: 7.1 ns per lookup with a guard per batch of
/// 4,096, 18.1 ns with a pin per lookup, 6.7 ns for
/// `crate::MemTable::get`). `seize` was not measured here; a
/// quiescent-state scheme would be cheaper still but needs every
/// reader thread to report quiescent points, which is a larger API change
/// (left for later). What epochs cannot do is bound memory: a guard held
/// for a long time holds back every node retired after it was taken; hence
/// [`MemTable::reclamation`](super::MemTable::reclamation), and
/// [`Guard::repin`] for long-running readers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epoch;

/// A read section of an [`Epoch`] table: a pinned crossbeam-epoch guard of
/// the default collector. Made by [`MemTable::pin`](super::MemTable::pin);
/// hold one across a batch of lookups.
pub struct Guard {
    inner: crossbeam_epoch::Guard,
}

impl Guard {
    /// Leaves and re-enters the read section: a quiescent point for a
    /// reader that keeps its guard for a long time (a vCPU thread at an
    /// exit), after which nodes retired before it may be freed.
    pub fn repin(&mut self) {
        self.inner.repin();
    }
}

impl core::fmt::Debug for Guard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Guard")
    }
}

impl sealed::Sealed for Epoch {}

impl Reclaim for Epoch {
    type Guard<'a> = Guard;

    #[inline]
    fn pin(&self) -> Guard {
        Guard { inner: crossbeam_epoch::pin() }
    }

    #[inline(always)]
    fn owns(&self, _: &Guard) -> bool {
        // Every `Guard` is of the default collector, the one `retire` uses.
        true
    }

    unsafe fn retire(&self, r: Retired) {
        let g = crossbeam_epoch::pin();
        // SAFETY: the node was unlinked before this pin (caller), so only
        // readers pinned before now can reach it, and crossbeam runs the
        // closure after all of them have unpinned. The closure owns `r`
        // alone (it is `Send`).
        unsafe { g.defer_unchecked(move || r.free()) };
    }

    fn collect(&self) {
        crossbeam_epoch::pin().flush();
    }
}

/// Loom-friendly reclamation by a count of active readers.
///
/// A reader's pin increments `active` and issues a SeqCst fence before it
/// loads any link; the writer, after unlinking (Release store) and queueing
/// a node, issues a SeqCst fence and loads `active` (Acquire): if it reads
/// zero, every reader either finished (its Release decrement is acquired)
/// or pins after the fence and so loads the new link. Reclaimed nodes are
/// poisoned under loom (see [`node`](super::node)), and their memory is
/// only released when the reclaimer is dropped, so a wrong free is a
/// reported data race, not a real use after free; elsewhere they are
/// freed. For the loom models, and for Miri with strict provenance (which
/// crossbeam-epoch's tagged pointers do not pass): one counter shared by
/// all readers would be slow.
#[doc(hidden)]
#[derive(Default)]
pub struct Counted {
    active: super::prim::AtomicUsize,
    queue: std::sync::Mutex<Vec<Retired>>,
    grave: std::sync::Mutex<Vec<Retired>>,
}

/// A reader's section of a [`Counted`] table.
#[doc(hidden)]
pub struct CountedGuard<'a>(&'a Counted);

impl Drop for CountedGuard<'_> {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, core::sync::atomic::Ordering::Release);
    }
}

impl Counted {
    fn poison_queue_if_quiescent(&self) {
        use core::sync::atomic::Ordering::{Acquire, SeqCst};
        super::prim::fence(SeqCst);
        if self.active.load(Acquire) == 0 {
            let mut q = self.queue.lock().unwrap();
            #[allow(unused_mut, unused_variables)] // used under loom only
            let mut grave = self.grave.lock().unwrap();
            for r in q.drain(..) {
                // SAFETY: no reader can visit it (the argument above).
                #[cfg(loom)]
                unsafe {
                    r.poison();
                    r.count_freed();
                    grave.push(r);
                }
                // SAFETY: as above.
                #[cfg(not(loom))]
                unsafe {
                    r.free()
                };
            }
        }
    }
}

impl sealed::Sealed for Counted {}

impl Reclaim for Counted {
    type Guard<'a> = CountedGuard<'a>;

    fn pin(&self) -> CountedGuard<'_> {
        use core::sync::atomic::Ordering::{Relaxed, SeqCst};
        self.active.fetch_add(1, Relaxed);
        super::prim::fence(SeqCst);
        CountedGuard(self)
    }

    fn owns(&self, guard: &CountedGuard<'_>) -> bool {
        core::ptr::eq(self, guard.0)
    }

    unsafe fn retire(&self, r: Retired) {
        self.queue.lock().unwrap().push(r);
        self.poison_queue_if_quiescent();
    }

    fn collect(&self) {
        self.poison_queue_if_quiescent();
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // Dropped with the table: no reader is left.
        let q = core::mem::take(self.queue.get_mut().unwrap());
        let g = core::mem::take(self.grave.get_mut().unwrap());
        for r in q {
            // SAFETY: no reader is left.
            unsafe { r.free() };
        }
        for r in g {
            // SAFETY: as above; already counted as freed and poisoned.
            unsafe { r.release() };
        }
    }
}

/// A deliberately wrong reclaimer for the loom models' negative control:
/// it poisons (frees, for readers) every node and value the moment it is
/// retired,
/// ignoring readers. A model run with it must fail.
#[cfg(loom)]
#[doc(hidden)]
#[derive(Default)]
pub struct Immediate {
    grave: std::sync::Mutex<Vec<Retired>>,
}

#[cfg(loom)]
impl sealed::Sealed for Immediate {}

#[cfg(loom)]
impl Reclaim for Immediate {
    type Guard<'a> = ();

    fn pin(&self) {}

    fn owns(&self, _: &()) -> bool {
        true
    }

    unsafe fn retire(&self, r: Retired) {
        // SAFETY: not safe at all, on purpose: this is the wrong scheme (but
        // the memory is kept until the reclaimer is dropped).
        unsafe { r.poison() };
        r.count_freed();
        self.grave.lock().unwrap().push(r);
    }

    fn collect(&self) {}
}

#[cfg(loom)]
impl Drop for Immediate {
    fn drop(&mut self) {
        for r in core::mem::take(self.grave.get_mut().unwrap()) {
            // SAFETY: dropped with the table: no reader is left.
            unsafe { r.release() };
        }
    }
}
