//! Word-at-a-time ("SWAR": SIMD within a register) scanners for the parser's
//! hot loops: finding a byte, finding the end of a line, and checking that a
//! field value has only allowed bytes, eight bytes per step.
//!
//! Each scanner has a plain byte-by-byte twin that is the reference: the
//! unit test below checks on random input that both always agree, and the
//! plain one can replace the fast one everywhere.
//!
//! # Switching SWAR off
//!
//! Build with the `maitred_no_swar` cfg, e.g.
//!
//! ```text
//! RUSTFLAGS="--cfg maitred_no_swar" cargo test
//! ```
//!
//! and every scanner runs its plain loop instead (for auditing, or to rule
//! the word tricks out when hunting a bug). The choice is a constant, so the
//! unused variant costs nothing at run time.

use crate::grammar::{self, CR, LF};

/// Whether the word-at-a-time scanners are used (see the module docs).
const USE_SWAR: bool = !cfg!(maitred_no_swar);

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Up to eight bytes as a little-endian word (one load for a full chunk).
#[inline]
fn word(c: &[u8]) -> u64 {
    match <[u8; 8]>::try_from(c) {
        Ok(a) => u64::from_le_bytes(a),
        Err(_) => {
            let mut a = [0u8; 8];
            for (d, s) in a.iter_mut().zip(c) {
                *d = *s;
            }
            u64::from_le_bytes(a)
        }
    }
}

/// Flags (high bit of each byte) the zero bytes of `x`. Flags above the
/// lowest may be false positives (a borrow ripples up), but the lowest flag
/// is always exact, which is all the scanners use.
#[inline]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Position of the first `needle` in `s`.
#[inline]
pub(super) fn find_byte(s: &[u8], needle: u8) -> Option<usize> {
    if USE_SWAR {
        find_byte_swar(s, needle)
    } else {
        find_byte_plain(s, needle)
    }
}

/// Position of the first CR or LF in `s`: where a line ends, or where a bare
/// CR or LF is.
#[inline]
pub(super) fn find_cr_or_lf(s: &[u8]) -> Option<usize> {
    if USE_SWAR {
        find_cr_or_lf_swar(s)
    } else {
        find_cr_or_lf_plain(s)
    }
}

/// True when every byte of `v` may appear in a field value
/// ([`grammar::is_field_value_byte`]).
#[inline]
pub(super) fn all_field_value(v: &[u8]) -> bool {
    if USE_SWAR {
        all_field_value_swar(v)
    } else {
        all_field_value_plain(v)
    }
}

fn find_byte_plain(s: &[u8], needle: u8) -> Option<usize> {
    s.iter().position(|&b| b == needle)
}

#[inline]
fn find_byte_swar(s: &[u8], needle: u8) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let t = zero_bytes(word(c) ^ (LO * u64::from(needle)));
        if t != 0 {
            return Some(base + (t.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    find_byte_plain(chunks.remainder(), needle).map(|p| base + p)
}

fn find_cr_or_lf_plain(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == CR || b == LF)
}

#[inline]
fn find_cr_or_lf_swar(s: &[u8]) -> Option<usize> {
    let mut chunks = s.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = word(c);
        // The lowest flag of each half is exact, so the lowest of both is.
        let t = zero_bytes(w ^ (LO * u64::from(CR))) | zero_bytes(w ^ (LO * u64::from(LF)));
        if t != 0 {
            return Some(base + (t.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    find_cr_or_lf_plain(chunks.remainder()).map(|p| base + p)
}

fn all_field_value_plain(v: &[u8]) -> bool {
    v.iter().all(|&b| grammar::is_field_value_byte(b))
}

/// Words with no byte below SP and no DEL pass eight bytes at a time; a word
/// that has one (HTAB is allowed) is checked byte by byte.
#[inline]
fn all_field_value_swar(v: &[u8]) -> bool {
    let mut chunks = v.chunks_exact(8);
    for c in &mut chunks {
        let w = word(c);
        // High bit set for bytes below 0x20 (exact for the ASCII bytes; a
        // false flag only means the slow check runs).
        let below_space = w.wrapping_sub(LO * 0x20) & !w & HI;
        let del = zero_bytes(w ^ (LO * 0x7F));
        if (below_space | del) != 0 && !all_field_value_plain(c) {
            return false;
        }
    }
    all_field_value_plain(chunks.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;
    // The parser tests' xorshift64: random inputs without a dependency.
    use crate::parser::tests::XorShift;

    /// Random bytes biased towards the ones the scanners look for.
    fn input(rng: &mut XorShift) -> Vec<u8> {
        let len = (rng.next() % 70) as usize;
        (0..len)
            .map(|_| match rng.next() % 10 {
                0 => b'\n',
                1 => b'\r',
                2 => b'\t',
                3 => 0x7F,
                4 => (rng.next() % 32) as u8,
                5 => b':',
                6 => 0x80 | (rng.next() % 128) as u8,
                _ => b' ' + (rng.next() % 95) as u8,
            })
            .collect()
    }

    #[test]
    fn swar_agrees_with_the_plain_loops_on_random_input() {
        let mut rng = XorShift(0x5EED_2545_F491_4F6D);
        for _ in 0..20_000 {
            let v = input(&mut rng);
            // Every start offset, so every alignment of the words is seen.
            for start in 0..v.len().min(9) {
                let s = &v[start..];
                assert_eq!(find_cr_or_lf_swar(s), find_cr_or_lf_plain(s), "{s:?}");
                for needle in [b'\n', b':', b' ', b'%', 0x80, 0] {
                    assert_eq!(
                        find_byte_swar(s, needle),
                        find_byte_plain(s, needle),
                        "{needle} in {s:?}"
                    );
                }
                assert_eq!(all_field_value_swar(s), all_field_value_plain(s), "{s:?}");
            }
        }
    }

    #[test]
    fn every_single_byte_in_every_lane() {
        for lane in 0..8 {
            for b in 0..=255u8 {
                let mut v = vec![b'a'; 8];
                v[lane] = b;
                assert_eq!(find_cr_or_lf_swar(&v), find_cr_or_lf_plain(&v));
                if b != b'a' {
                    assert_eq!(find_byte_swar(&v, b), Some(lane));
                }
                assert_eq!(all_field_value_swar(&v), all_field_value_plain(&v), "{b}");
            }
        }
    }
}
