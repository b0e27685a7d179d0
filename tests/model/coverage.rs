//! Which value covers each address, as change reports describe a table:
//! shared by the model suite and `tests/raw_v2.rs`.

use std::collections::BTreeMap;

/// Which value covers each address: first address -> (last address, value),
/// disjoint.
pub type Coverage = BTreeMap<u64, (u64, u32)>;

/// Sets `lo..=last` of `c` to `value` (`None`: empties it).
pub fn cover(c: &mut Coverage, lo: u64, last: u64, value: Option<u32>) {
    if let Some((&s, &(l, v))) = c.range(..lo).next_back() {
        if l >= lo {
            c.insert(s, (lo - 1, v));
            if l > last {
                c.insert(last + 1, (l, v));
            }
        }
    }
    let inside: Vec<u64> = c.range(lo..=last).map(|(&s, _)| s).collect();
    for s in inside {
        let (l, v) = c.remove(&s).expect("listed");
        if l > last {
            c.insert(last + 1, (l, v));
        }
    }
    if let Some(v) = value {
        c.insert(lo, (last, v));
    }
}

/// `regions` (ascending, disjoint) with neighbours of equal value joined:
/// two coverages are the same exactly when these are equal.
pub fn joined(regions: impl IntoIterator<Item = (u64, u64, u32)>) -> Vec<(u64, u64, u32)> {
    let mut out: Vec<(u64, u64, u32)> = Vec::new();
    for (s, l, v) in regions {
        match out.last_mut() {
            Some(p) if p.2 == v && p.1.checked_add(1) == Some(s) => p.1 = l,
            _ => out.push((s, l, v)),
        }
    }
    out
}
