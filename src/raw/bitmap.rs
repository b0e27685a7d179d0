//! One bit per slot, in 64-bit words, reached through raw pointers into a
//! table: occupancy and change marks.
//!
//! Every function takes a pointer to the first word of a bitmap inside a
//! live table and a bit or word count inside it (the callers' `Lv` gives
//! both).

/// Whether bit `i` is set.
///
/// # Safety
/// `w` points to a bitmap of more than `i` bits, readable.
#[inline(always)]
pub unsafe fn get(w: *const u64, i: usize) -> bool {
    // SAFETY: word `i / 64` is inside the bitmap (caller).
    unsafe { *w.add(i / 64) & (1 << (i % 64)) != 0 }
}

/// Sets bit `i`.
///
/// # Safety
/// `w` points to a bitmap of more than `i` bits, writable.
#[inline(always)]
pub unsafe fn set(w: *mut u64, i: usize) {
    // SAFETY: as for `get`.
    unsafe { *w.add(i / 64) |= 1 << (i % 64) }
}

/// Clears bit `i`.
///
/// # Safety
/// As for [`set`].
#[inline(always)]
pub unsafe fn clear(w: *mut u64, i: usize) {
    // SAFETY: as for `get`.
    unsafe { *w.add(i / 64) &= !(1 << (i % 64)) }
}

/// The first set bit at or after `from` and at most `to`, if any.
///
/// # Safety
/// `w` points to a readable bitmap of more than `to` bits.
#[inline]
pub unsafe fn next(w: *const u64, from: usize, to: usize) -> Option<usize> {
    if from > to {
        return None;
    }
    let mut k = from / 64;
    let last = to / 64;
    // SAFETY: `k <= last`, inside the bitmap (caller).
    let mut bits = unsafe { *w.add(k) } & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            let i = k * 64 + bits.trailing_zeros() as usize;
            return (i <= to).then_some(i);
        }
        if k == last {
            return None;
        }
        k += 1;
        // SAFETY: `k <= last`.
        bits = unsafe { *w.add(k) };
    }
}

/// The last set bit at or after `from` and at most `to`, if any.
///
/// # Safety
/// As for [`next`].
#[inline]
pub unsafe fn prev(w: *const u64, from: usize, to: usize) -> Option<usize> {
    if from > to {
        return None;
    }
    let first = from / 64;
    let mut k = to / 64;
    // SAFETY: `first <= k`, inside the bitmap (caller).
    let mut bits = unsafe { *w.add(k) } & (u64::MAX >> (63 - to % 64));
    loop {
        if bits != 0 {
            let i = k * 64 + 63 - bits.leading_zeros() as usize;
            return (i >= from).then_some(i);
        }
        if k == first {
            return None;
        }
        k -= 1;
        // SAFETY: `k >= first`.
        bits = unsafe { *w.add(k) };
    }
}

/// Whether any of the `words` words is non-zero.
///
/// # Safety
/// `w` points to `words` readable words.
pub unsafe fn any(w: *const u64, words: usize) -> bool {
    // SAFETY: caller.
    (0..words).any(|k| unsafe { *w.add(k) } != 0)
}

/// Sets the first `n` bits of a bitmap of `words` words (and no others).
///
/// # Safety
/// `w` points to `words` writable words, and `n <= 64 * words`.
pub unsafe fn set_first(w: *mut u64, words: usize, n: usize) {
    for k in 0..words {
        let lo = k * 64;
        let word = if n >= lo + 64 {
            u64::MAX
        } else if n > lo {
            (1u64 << (n - lo)) - 1
        } else {
            0
        };
        // SAFETY: caller.
        unsafe { *w.add(k) = word };
    }
}

/// Bits set in the `words` words.
///
/// # Safety
/// As for [`any`].
pub unsafe fn count(w: *const u64, words: usize) -> usize {
    // SAFETY: caller.
    (0..words).map(|k| unsafe { *w.add(k) }.count_ones() as usize).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_prev_walk_words() {
        let mut w = [0u64; 3];
        let p = w.as_mut_ptr();
        // SAFETY: `w` has 192 bits.
        unsafe {
            for i in [0, 63, 64, 190] {
                set(p, i);
            }
            assert_eq!(next(p, 0, 191), Some(0));
            assert_eq!(next(p, 1, 191), Some(63));
            assert_eq!(next(p, 65, 191), Some(190));
            assert_eq!(next(p, 65, 189), None);
            assert_eq!(next(p, 191, 191), None);
            assert_eq!(prev(p, 0, 191), Some(190));
            assert_eq!(prev(p, 0, 189), Some(64));
            assert_eq!(prev(p, 1, 62), None);
            assert_eq!(prev(p, 0, 62), Some(0));
            clear(p, 63);
            assert!(!get(p, 63) && get(p, 64));
            assert_eq!(count(p, 3), 3);
            set_first(p, 3, 70);
            assert_eq!(w, [u64::MAX, 0x3f, 0]);
        }
    }
}
