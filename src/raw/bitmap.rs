//! One bit per slot, in 64-bit words: presence and change marks.

/// Whether bit `i` is set.
#[inline(always)]
pub fn get(words: &[u64], i: usize) -> bool {
    words[i / 64] & (1 << (i % 64)) != 0
}

/// Sets bit `i`.
#[inline(always)]
pub fn set(words: &mut [u64], i: usize) {
    words[i / 64] |= 1 << (i % 64);
}

/// Clears bit `i`.
#[inline(always)]
pub fn clear(words: &mut [u64], i: usize) {
    words[i / 64] &= !(1 << (i % 64));
}

/// Sets the first `n` bits (and no others).
pub fn set_first(words: &mut [u64], n: usize) {
    for (w, word) in words.iter_mut().enumerate() {
        let lo = w * 64;
        *word = if n >= lo + 64 {
            u64::MAX
        } else if n > lo {
            (1u64 << (n - lo)) - 1
        } else {
            0
        };
    }
}

/// The first set bit at or after `from`, if any.
#[inline]
pub fn next_set(words: &[u64], from: usize) -> Option<usize> {
    let mut w = from / 64;
    if w >= words.len() {
        return None;
    }
    let mut bits = words[w] & (u64::MAX << (from % 64));
    loop {
        if bits != 0 {
            return Some(w * 64 + bits.trailing_zeros() as usize);
        }
        w += 1;
        if w == words.len() {
            return None;
        }
        bits = words[w];
    }
}

/// Whether any bit is set.
pub fn any(words: &[u64]) -> bool {
    words.iter().any(|&w| w != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_set_walks_words() {
        let mut w = [0u64; 3];
        set(&mut w, 0);
        set(&mut w, 63);
        set(&mut w, 64);
        set(&mut w, 190);
        assert_eq!(next_set(&w, 0), Some(0));
        assert_eq!(next_set(&w, 1), Some(63));
        assert_eq!(next_set(&w, 64), Some(64));
        assert_eq!(next_set(&w, 65), Some(190));
        assert_eq!(next_set(&w, 191), None);
        assert_eq!(next_set(&w, 500), None);
        clear(&mut w, 63);
        assert!(!get(&w, 63) && get(&w, 64));
    }

    #[test]
    fn set_first_is_exact() {
        let mut w = [0u64; 2];
        set_first(&mut w, 8);
        assert_eq!(w, [0xff, 0]);
        set_first(&mut w, 64);
        assert_eq!(w, [u64::MAX, 0]);
        set_first(&mut w, 70);
        assert_eq!(w, [u64::MAX, 0x3f]);
        set_first(&mut w, 0);
        assert!(!any(&w));
    }
}
