//! The bottom table: base-page values at their own size, with a presence bitmap.
//!
//! This is the only place in the crate with `unsafe` code: a value slot is a
//! `MaybeUninit<V>`, so a table of `u64` costs 8 bytes per slot (plus one bit),
//! not the 16 of an `Option<u64>`. Every access goes through the presence
//! bitmap.

use core::mem::{self, MaybeUninit};

use generic_array::GenericArray;

use super::bitmap;
use crate::geometry::Width;

/// A table of base-page entries.
///
/// # Invariants
/// - `values[i]` is initialized exactly when bit `i` of `present` is set.
/// - `len` is the number of bits set in `present`.
/// - Bits at or past the fan-out are never set in `present` or `dirty`.
///
/// `repr(C)` keeps the bitmaps in front of the values, so the presence word
/// of a lookup shares the node's first lines (and page) with its header.
#[repr(C)]
pub struct BottomNode<V, W: Width> {
    /// One bit per slot: the slot holds a value.
    present: GenericArray<u64, W::Words>,
    /// One bit per slot: the slot changed since the last change report.
    pub dirty: GenericArray<u64, W::Words>,
    /// Number of values held.
    len: u32,
    /// The values; only the slots marked in `present` are initialized.
    values: GenericArray<MaybeUninit<V>, W::Fanout>,
}

impl<V, W: Width> Default for BottomNode<V, W> {
    fn default() -> Self {
        // INVARIANT: no bit is set and no value is initialized.
        BottomNode {
            present: GenericArray::default(),
            dirty: GenericArray::default(),
            len: 0,
            values: GenericArray::uninit(),
        }
    }
}

impl<V, W: Width> BottomNode<V, W> {
    /// Slots in the node.
    pub const FANOUT: usize = 1 << W::USIZE;

    /// Number of values held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The value in slot `i`.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<&V> {
        if bitmap::get(&self.present, i) {
            // SAFETY: the presence bit is set, so the slot is initialized
            // (type invariant).
            Some(unsafe { self.values[i].assume_init_ref() })
        } else {
            None
        }
    }

    /// The value in slot `i`, which the caller knows is occupied.
    ///
    /// # Safety
    /// Bit `i` of [`present`](Self::present) must be set.
    #[inline(always)]
    pub unsafe fn get_unchecked(&self, i: usize) -> &V {
        debug_assert!(bitmap::get(&self.present, i));
        // SAFETY: the caller promises the presence bit is set, so the slot is
        // initialized (type invariant).
        unsafe { self.values[i].assume_init_ref() }
    }

    /// The value in slot `i`, mutably.
    #[inline(always)]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut V> {
        if bitmap::get(&self.present, i) {
            // SAFETY: the presence bit is set, so the slot is initialized
            // (type invariant).
            Some(unsafe { self.values[i].assume_init_mut() })
        } else {
            None
        }
    }

    /// Puts `v` in slot `i`, handing back the value it replaces.
    pub fn insert(&mut self, i: usize, v: V) -> Option<V> {
        if bitmap::get(&self.present, i) {
            // SAFETY: the presence bit is set, so the slot is initialized;
            // it stays initialized (with `v`) after the swap.
            Some(mem::replace(unsafe { self.values[i].assume_init_mut() }, v))
        } else {
            self.values[i].write(v);
            // INVARIANT: the slot was just initialized.
            bitmap::set(&mut self.present, i);
            self.len += 1;
            None
        }
    }

    /// Takes the value out of slot `i`.
    pub fn take(&mut self, i: usize) -> Option<V> {
        if bitmap::get(&self.present, i) {
            // INVARIANT: the bit is cleared before the value is moved out, so
            // the slot counts as uninitialized from here on.
            bitmap::clear(&mut self.present, i);
            self.len -= 1;
            // SAFETY: the bit was set, so the slot was initialized; it is now
            // marked vacant and will not be read again.
            Some(unsafe { self.values[i].assume_init_read() })
        } else {
            None
        }
    }

    /// The first occupied slot at or after `from`.
    #[inline]
    pub fn next_occupied(&self, from: usize) -> Option<usize> {
        bitmap::next_set(&self.present, from)
    }

    /// The presence bitmap.
    #[inline]
    pub fn present(&self) -> &[u64] {
        &self.present
    }

    /// The values and the change marks, split so that both can be borrowed
    /// mutably at once (for mutable iteration).
    pub fn split_mut(&mut self) -> (ValuesMut<'_, V>, &mut [u64]) {
        (ValuesMut { present: &self.present, values: &mut self.values, next: 0 }, &mut self.dirty)
    }

    /// Drops every value, leaving the node empty. If a value's drop panics,
    /// the remaining values are still dropped (as a slice's are), and none is
    /// dropped twice.
    pub fn clear(&mut self) {
        /// Drops the rest of the values if a drop unwinds.
        struct Rest<'a, V, W: Width>(&'a mut BottomNode<V, W>);
        impl<V, W: Width> Drop for Rest<'_, V, W> {
            fn drop(&mut self) {
                self.0.clear();
            }
        }
        if !mem::needs_drop::<V>() {
            self.present = GenericArray::default();
            self.len = 0;
            return;
        }
        let rest = Rest(self);
        while let Some(i) = rest.0.next_occupied(0) {
            drop(rest.0.take(i));
        }
        mem::forget(rest);
    }
}

impl<V, W: Width> Drop for BottomNode<V, W> {
    fn drop(&mut self) {
        if mem::needs_drop::<V>() {
            self.clear();
        }
    }
}

impl<V: Clone, W: Width> Clone for BottomNode<V, W> {
    fn clone(&self) -> Self {
        // If a clone panics, `out` is dropped and drops exactly the values
        // cloned so far (each is marked present as soon as it is written).
        let mut out = BottomNode::default();
        out.dirty = self.dirty.clone();
        let mut i = 0;
        while let Some(j) = self.next_occupied(i) {
            let v = self.get(j).expect("next_occupied returns an occupied slot");
            out.insert(j, v.clone());
            i = j + 1;
        }
        out
    }
}

/// Mutable references to every value of a bottom node, in slot order.
pub struct ValuesMut<'a, V> {
    present: &'a [u64],
    values: &'a mut [MaybeUninit<V>],
    /// Slot number of `values[0]`.
    next: usize,
}

impl<'a, V> Iterator for ValuesMut<'a, V> {
    type Item = (usize, &'a mut V);

    #[inline]
    fn next(&mut self) -> Option<(usize, &'a mut V)> {
        let i = bitmap::next_set(self.present, self.next)?;
        let values = mem::take(&mut self.values);
        let (_, rest) = values.split_at_mut(i - self.next);
        let (slot, rest) = rest.split_first_mut()?;
        self.values = rest;
        self.next = i + 1;
        // SAFETY: bit `i` of the presence bitmap is set, so the slot is
        // initialized; the bitmap cannot change while it is borrowed here.
        Some((i, unsafe { slot.assume_init_mut() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;
    use typenum::U3;

    #[test]
    fn insert_take_and_iterate() {
        let mut n: BottomNode<String, U3> = BottomNode::default();
        assert_eq!(n.insert(3, "a".into()), None);
        assert_eq!(n.insert(3, "b".into()).as_deref(), Some("a"));
        assert_eq!(n.insert(7, "c".into()), None);
        assert_eq!(n.len(), 2);
        let c = n.clone();
        let (vals, _) = n.split_mut();
        let seen: Vec<_> = vals.map(|(i, v)| (i, v.clone())).collect();
        assert_eq!(seen, [(3, "b".to_string()), (7, "c".to_string())]);
        assert_eq!(n.take(3).as_deref(), Some("b"));
        assert_eq!(n.take(3), None);
        assert_eq!(c.get(7).map(String::as_str), Some("c"));
        assert_eq!(n.len(), 1);
    }
}
