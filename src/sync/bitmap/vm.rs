//! vm-memory's `Bitmap`, `NewBitmap` and `BitmapSlice` for [`PageBitmap`]
//! (feature `vm-memory`).
//!
//! vm-memory gives each guest memory region its own bitmap, made with
//! `NewBitmap::with_len(region length)`, and marks through it with offsets
//! into the region; a slice of a region (`slice_at`) is the bitmap and an
//! offset, as vm-memory's own `BaseSlice`.

use vm_memory::bitmap::{Bitmap, BitmapSlice, NewBitmap, WithBitmapSlice};

use super::PageBitmap;
use crate::geometry::{Geometry, X86_4Level};

/// A [`PageBitmap`] seen from an offset: vm-memory's `BitmapSlice` for it.
///
/// Offsets are added with wrapping arithmetic, as vm-memory's `BaseSlice`
/// does: an offset that overflows marks some other page (a false
/// positive), never an unmarked write.
///
/// ```
/// use mem_table::sync::PageBitmap;
/// use vm_memory::bitmap::{Bitmap, NewBitmap};
///
/// let region: PageBitmap = PageBitmap::with_len(0x10_0000); // a 1 MiB region
/// let s = region.slice_at(0x4000);
/// s.mark_dirty(0xfff, 2); // region offsets 0x4fff and 0x5000: two pages
/// assert!(region.dirty_at(0x4fff) && region.dirty_at(0x5000) && s.dirty_at(0x1000));
/// assert_eq!(region.take_runs(), [0x4000..0x6000]);
/// region.mark_dirty(0xf_f000, 0x2000); // past the region's end: the rest ignored
/// assert_eq!(region.take_pages(), [0xf_f000]);
/// ```
pub struct PageBitmapSlice<'a, G: Geometry = X86_4Level> {
    bitmap: &'a PageBitmap<G>,
    offset: usize,
}

impl<'a, G: Geometry> PageBitmapSlice<'a, G> {
    /// The bitmap, seen from `offset`.
    pub fn new(bitmap: &'a PageBitmap<G>, offset: usize) -> Self {
        PageBitmapSlice { bitmap, offset }
    }

    /// The bitmap this is a slice of.
    pub fn bitmap(&self) -> &'a PageBitmap<G> {
        self.bitmap
    }

    /// The slice's start in the bitmap.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<G: Geometry> Clone for PageBitmapSlice<'_, G> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<G: Geometry> Copy for PageBitmapSlice<'_, G> {}

impl<G: Geometry> core::fmt::Debug for PageBitmapSlice<'_, G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PageBitmapSlice")
            .field("offset", &format_args!("{:#x}", self.offset))
            .finish_non_exhaustive()
    }
}

impl<'a, G: Geometry> WithBitmapSlice<'a> for PageBitmap<G> {
    type S = PageBitmapSlice<'a, G>;
}

/// Offsets are bytes from the bitmap's start (the region's, under
/// vm-memory), at the geometry's page size. Pages beyond the tracked range
/// (`with_len`'s length) are ignored, as by vm-memory's `AtomicBitmap`; the
/// range's end saturates at `usize::MAX`.
impl<G: Geometry> Bitmap for PageBitmap<G> {
    fn mark_dirty(&self, offset: usize, len: usize) {
        self.mark_len(offset as u64, len as u64);
    }

    fn dirty_at(&self, offset: usize) -> bool {
        self.is_marked(offset as u64)
    }

    fn slice_at(&self, offset: usize) -> PageBitmapSlice<'_, G> {
        PageBitmapSlice::new(self, offset)
    }
}

/// `with_len(len)` is [`PageBitmap::with_limit`]`(len)`: it allocates the
/// root table only, whatever `len` is. (`Default` is
/// [`PageBitmap::new`], the geometry's whole reach.)
impl<G: Geometry> NewBitmap for PageBitmap<G> {
    fn with_len(len: usize) -> Self {
        PageBitmap::with_limit(len as u64)
    }
}

impl<G: Geometry> WithBitmapSlice<'_> for PageBitmapSlice<'_, G> {
    type S = Self;
}

impl<G: Geometry> BitmapSlice for PageBitmapSlice<'_, G> {}

impl<G: Geometry> Bitmap for PageBitmapSlice<'_, G> {
    fn mark_dirty(&self, offset: usize, len: usize) {
        self.bitmap.mark_dirty(self.offset.wrapping_add(offset), len)
    }

    fn dirty_at(&self, offset: usize) -> bool {
        self.bitmap.dirty_at(self.offset.wrapping_add(offset))
    }

    fn slice_at(&self, offset: usize) -> Self {
        PageBitmapSlice::new(self.bitmap, self.offset.wrapping_add(offset))
    }
}
