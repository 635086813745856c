//! The RSA public operation `s^e mod n`, in variable time, for verifying
//! PKCS#1 v1.5 signatures.
//!
//! Why not the `rsa` crate's arithmetic: its constant-time big integers make
//! an RSA-4096 verify cost ~0.3 ms here against ~0.06 ms in OpenSSL, and a
//! module tree has 4,000 of them. Verification only handles public values
//! (the key, the signature, the message digest), so constant time buys
//! nothing; a plain Montgomery exponentiation over 64-bit limbs is about as
//! fast as OpenSSL's generic code. The `rsa` crate still validates keys and
//! supplies the DigestInfo prefixes.

/// A public modulus prepared for Montgomery arithmetic.
#[derive(Debug, Clone)]
pub struct Modulus {
    /// Little-endian 64-bit limbs.
    n: Vec<u64>,
    /// `-n^-1 mod 2^64`.
    n0inv: u64,
    /// `R^2 mod n` with `R = 2^(64·limbs)`.
    r2: Vec<u64>,
    /// Byte length of `n`.
    len: usize,
}

impl Modulus {
    /// `n` as big-endian bytes; must be odd and greater than one.
    pub fn new(n_be: &[u8]) -> Option<Self> {
        let trimmed = &n_be[n_be.iter().position(|&b| b != 0)?..];
        let n = to_limbs(trimmed, trimmed.len().div_ceil(8));
        if n.first()? & 1 == 0 || (n.len() == 1 && n[0] == 1) {
            return None;
        }
        // Newton's iteration doubles the correct low bits each round: 1→64.
        let mut inv: u64 = 1;
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n[0].wrapping_mul(inv)));
        }
        let mut m = Modulus {
            n0inv: inv.wrapping_neg(),
            r2: Vec::new(),
            len: trimmed.len(),
            n,
        };
        m.r2 = m.r_squared();
        Some(m)
    }

    /// The modulus' length in bytes (the signature's length).
    pub fn byte_len(&self) -> usize {
        self.len
    }

    /// `2^(128·limbs) mod n` by repeated doubling; done once per key.
    fn r_squared(&self) -> Vec<u64> {
        let s = self.n.len();
        let mut x = vec![0u64; s];
        x[0] = 1;
        for _ in 0..128 * s {
            let carry = shl1(&mut x);
            if carry || !less_than(&x, &self.n) {
                sub_in_place(&mut x, &self.n);
            }
        }
        x
    }

    /// `base^e mod n`, as big-endian bytes of the modulus' length. `None` if
    /// `base >= n` (not a valid signature representative) or `e` is zero.
    pub fn pow(&self, base_be: &[u8], e: u64) -> Option<Vec<u8>> {
        let s = self.n.len();
        if e == 0 || base_be.len() > s * 8 {
            return None;
        }
        let base = to_limbs(base_be, s);
        if !less_than(&base, &self.n) {
            return None;
        }
        let mut scratch = vec![0u64; s + 2];
        let mut xm = vec![0u64; s];
        self.mont_mul(&base, &self.r2, &mut xm, &mut scratch);
        let mut acc = xm.clone();
        let mut tmp = vec![0u64; s];
        let top = 63 - e.leading_zeros();
        for bit in (0..top).rev() {
            self.mont_sqr(&acc, &mut tmp, &mut scratch);
            std::mem::swap(&mut acc, &mut tmp);
            if (e >> bit) & 1 == 1 {
                // The last multiply by the plain base (not its Montgomery
                // form) also leaves Montgomery form: a·R · b · R^-1 = a·b.
                // RSA exponents are odd, so this saves the final conversion.
                let factor = if bit == 0 { &base } else { &xm };
                self.mont_mul(&acc, factor, &mut tmp, &mut scratch);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        if e & 1 == 1 && top > 0 {
            return Some(to_be_bytes(&acc, self.len));
        }
        let mut one = vec![0u64; s];
        one[0] = 1;
        self.mont_mul(&acc, &one, &mut tmp, &mut scratch);
        Some(to_be_bytes(&tmp, self.len))
    }

    /// `out = a·b·R^-1 mod n`, with the limb count fixed at compile time for
    /// the common key sizes so the inner loops have no bounds checks.
    fn mont_mul(&self, a: &[u64], b: &[u64], out: &mut [u64], t: &mut [u64]) {
        macro_rules! fixed {
            ($n:literal) => {
                if let (Ok(a), Ok(b), Ok(n), Ok(o)) = (
                    <&[u64; $n]>::try_from(a),
                    <&[u64; $n]>::try_from(b),
                    <&[u64; $n]>::try_from(&self.n[..]),
                    <&mut [u64; $n]>::try_from(&mut *out),
                ) {
                    return mont_mul_fixed::<$n>(a, b, n, self.n0inv, o);
                }
            };
        }
        fixed!(32);
        fixed!(48);
        fixed!(64);
        mont_mul_any(a, b, &self.n, self.n0inv, out, t);
    }

    /// `out = a²·R^-1 mod n`: squaring computes each cross product once.
    fn mont_sqr(&self, a: &[u64], out: &mut [u64], t: &mut [u64]) {
        macro_rules! fixed {
            ($n:literal, $m:literal) => {
                if let (Ok(a), Ok(n), Ok(o)) = (
                    <&[u64; $n]>::try_from(a),
                    <&[u64; $n]>::try_from(&self.n[..]),
                    <&mut [u64; $n]>::try_from(&mut *out),
                ) {
                    return mont_sqr_fixed::<$n, $m>(a, n, self.n0inv, o);
                }
            };
        }
        fixed!(32, 64);
        fixed!(48, 96);
        fixed!(64, 128);
        mont_mul_any(a, a, &self.n, self.n0inv, out, t);
    }
}

/// Montgomery squaring for `N` limbs (`M = 2N`): the full square by the
/// schoolbook method with doubled cross products, then N reduction passes.
fn mont_sqr_fixed<const N: usize, const M: usize>(
    a: &[u64; N],
    n: &[u64; N],
    n0inv: u64,
    out: &mut [u64; N],
) {
    let mut t = [0u64; M];
    for i in 0..N {
        let mut c = 0u64;
        for j in i + 1..N {
            (t[i + j], c) = mac(t[i + j], a[i], a[j], c);
        }
        t[i + N] = c;
    }
    let mut top = 0u64;
    for x in t.iter_mut() {
        let next = *x >> 63;
        *x = (*x << 1) | top;
        top = next;
    }
    let mut c = 0u64;
    for i in 0..N {
        let sq = u128::from(a[i]) * u128::from(a[i]);
        let v = u128::from(t[2 * i]) + (sq as u64 as u128) + u128::from(c);
        t[2 * i] = v as u64;
        let v = u128::from(t[2 * i + 1]) + (sq >> 64) + (v >> 64);
        t[2 * i + 1] = v as u64;
        c = (v >> 64) as u64;
    }
    // c is zero here: a² < R² fits in 2N limbs.
    let mut carry_top = 0u64;
    for i in 0..N {
        let m = t[i].wrapping_mul(n0inv);
        let mut c = 0u64;
        for j in 0..N {
            (t[i + j], c) = mac(t[i + j], m, n[j], c);
        }
        let v = u128::from(t[i + N]) + u128::from(c) + u128::from(carry_top);
        t[i + N] = v as u64;
        carry_top = (v >> 64) as u64;
    }
    out.copy_from_slice(&t[N..]);
    if carry_top != 0 || !less_than(out, n) {
        sub_in_place(out, n);
    }
}

#[inline(always)]
fn mac(acc: u64, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let v = u128::from(acc) + u128::from(a) * u128::from(b) + u128::from(carry);
    (v as u64, (v >> 64) as u64)
}

/// CIOS Montgomery multiplication for `N` limbs.
fn mont_mul_fixed<const N: usize>(
    a: &[u64; N],
    b: &[u64; N],
    n: &[u64; N],
    n0inv: u64,
    out: &mut [u64; N],
) {
    let mut t = [0u64; N];
    let mut t_hi: u64 = 0;
    for &bi in b.iter() {
        let mut c = 0u64;
        for j in 0..N {
            (t[j], c) = mac(t[j], a[j], bi, c);
        }
        let (s0, s1) = t_hi.overflowing_add(c);
        let top = u64::from(s1);
        let m = t[0].wrapping_mul(n0inv);
        let (_, mut c) = mac(t[0], m, n[0], 0);
        for j in 1..N {
            (t[j - 1], c) = mac(t[j], m, n[j], c);
        }
        let (s2, s3) = s0.overflowing_add(c);
        t[N - 1] = s2;
        t_hi = top + u64::from(s3);
    }
    *out = t;
    if t_hi != 0 || !less_than(out, n) {
        sub_in_place(out, n);
    }
}

/// CIOS Montgomery multiplication for any limb count.
fn mont_mul_any(a: &[u64], b: &[u64], n: &[u64], n0inv: u64, out: &mut [u64], t: &mut [u64]) {
    let s = n.len();
    t.iter_mut().for_each(|x| *x = 0);
    for &bi in b.iter().take(s) {
        let mut c: u64 = 0;
        for j in 0..s {
            (t[j], c) = mac(t[j], a[j], bi, c);
        }
        let v = u128::from(t[s]) + u128::from(c);
        t[s] = v as u64;
        t[s + 1] = (v >> 64) as u64;
        let m = t[0].wrapping_mul(n0inv);
        let (_, mut c) = mac(t[0], m, n[0], 0);
        for j in 1..s {
            (t[j - 1], c) = mac(t[j], m, n[j], c);
        }
        let v = u128::from(t[s]) + u128::from(c);
        t[s - 1] = v as u64;
        t[s] = t[s + 1] + ((v >> 64) as u64);
    }
    out.copy_from_slice(&t[..s]);
    if t[s] != 0 || !less_than(out, n) {
        sub_in_place(out, n);
    }
}

fn to_limbs(be: &[u8], limbs: usize) -> Vec<u64> {
    let mut out = vec![0u64; limbs];
    for (i, &byte) in be.iter().rev().enumerate() {
        if let Some(l) = out.get_mut(i / 8) {
            *l |= u64::from(byte) << (8 * (i % 8));
        }
    }
    out
}

fn to_be_bytes(limbs: &[u64], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    for (i, b) in out.iter_mut().rev().enumerate() {
        *b = limbs.get(i / 8).map_or(0, |l| (l >> (8 * (i % 8))) as u8);
    }
    out
}

fn less_than(a: &[u64], b: &[u64]) -> bool {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b`, wrapping (callers ensure `a >= b` modulo the dropped carry).
fn sub_in_place(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *x = d2;
        borrow = b1 || b2;
    }
}

fn shl1(a: &mut [u64]) -> bool {
    let mut carry = 0u64;
    for x in a.iter_mut() {
        let next = *x >> 63;
        *x = (*x << 1) | carry;
        carry = next;
    }
    carry == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_pow(base: u128, e: u64, n: u128) -> u128 {
        let mut r: u128 = 1;
        for _ in 0..e {
            r = r * base % n;
        }
        r
    }

    #[test]
    fn small_moduli_match_naive_arithmetic() {
        for n in [3u128, 0xffff_fffb, 0x1_0000_0001, 0xffff_ffff_ffff_ffc5] {
            let m = Modulus::new(&n.to_be_bytes()).unwrap();
            for base in [0u128, 1, 2, 12345 % n, n - 1] {
                for e in [1u64, 2, 3, 17] {
                    let got = m.pow(&base.to_be_bytes()[16 - m.byte_len()..], e).unwrap();
                    let mut want = [0u8; 16];
                    want.copy_from_slice(&naive_pow(base % n, e, n).to_be_bytes());
                    assert_eq!(
                        got,
                        want[16 - m.byte_len()..].to_vec(),
                        "n={n} base={base} e={e}"
                    );
                }
            }
        }
    }

    /// The fixed-size multiply and square must agree with the generic code
    /// for every key size they serve.
    #[test]
    fn fixed_sizes_match_generic() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for limbs in [32usize, 48, 64] {
            for _ in 0..20 {
                let mut n_be: Vec<u8> = (0..limbs * 8).map(|_| next() as u8).collect();
                n_be[0] |= 0x80;
                *n_be.last_mut().unwrap() |= 1;
                let m = Modulus::new(&n_be).unwrap();
                let a: Vec<u64> = (0..limbs).map(|_| next()).collect();
                let b: Vec<u64> = (0..limbs).map(|_| next()).collect();
                // Reduce a, b below n first (inputs of the real code are).
                let (mut ar, mut br) = (vec![0u64; limbs], vec![0u64; limbs]);
                let mut t = vec![0u64; limbs + 2];
                mont_mul_any(&a, &m.r2, &m.n, m.n0inv, &mut ar, &mut t);
                mont_mul_any(&b, &m.r2, &m.n, m.n0inv, &mut br, &mut t);
                let (mut want, mut got) = (vec![0u64; limbs], vec![0u64; limbs]);
                mont_mul_any(&ar, &br, &m.n, m.n0inv, &mut want, &mut t);
                m.mont_mul(&ar, &br, &mut got, &mut t);
                assert_eq!(got, want, "mul, {limbs} limbs");
                mont_mul_any(&ar, &ar, &m.n, m.n0inv, &mut want, &mut t);
                m.mont_sqr(&ar, &mut got, &mut t);
                assert_eq!(got, want, "sqr, {limbs} limbs");
            }
        }
    }

    #[test]
    fn rejects_bad_inputs() {
        assert!(Modulus::new(&[0x10]).is_none());
        assert!(Modulus::new(&[0, 0]).is_none());
        assert!(Modulus::new(&[1]).is_none());
        let m = Modulus::new(&[0x0b]).unwrap();
        assert!(m.pow(&[0x0b], 3).is_none());
        assert!(m.pow(&[0x02], 0).is_none());
    }
}
