//! ECDSA P-384 verification with fixed-base tables.
//!
//! Every module of a tree is checked against the same one or two keys, so
//! `u1·G + u2·Q` (SEC 1 §4.1.4, step 5) is summed from precomputed multiples
//! of G and of each trusted Q: signed 6-bit windows, one mixed addition per
//! window and point, no doubling (the crate's wNAF does ~384 doublings and
//! builds two small tables per signature). Tables hold public data only, so
//! the code is variable-time, like the crate's `lincomb_vartime` it replaces.
//!
//! Around that sum, [`verify_prehash`] is the ecdsa crate's
//! `hazmat::verify_prehashed` step for step, so a signature is accepted
//! exactly when the crate accepts it: r and s in [1, n-1] (the caller's
//! `Signature::from_der`), the digest cut to n's length and reduced mod n,
//! s inverted, the sum's x coordinate reduced mod n and compared with r (the
//! identity's x is 0, never a valid r). Neither curve's `NORMALIZE_S` is set,
//! so high s is accepted, as by the crate.
//!
//! Costs for P-384: a verification sums ≤ 130 table points (~0.24 ms, a
//! quarter of the crate's wNAF). A table is 65 windows × 32 points = 2,080
//! affine points of 104 bytes, 216 KB, built with ~2,100 point additions and
//! one batch inversion, ~4.5 ms, as long as ~4 verifications the crate's way
//! (P-256: 43 windows, 1,376 points of 72 bytes, 99 KB). A key gets its table
//! at its [`BUILD_AFTER`]th use, with G's if that is not built yet, so a few
//! signatures never pay for one; at most [`MAX_KEYS`] keys per curve are
//! tracked, so the tables of a curve never hold more than (1 + [`MAX_KEYS`])
//! × 216 KB.
//!
//! The code is generic over the curve and its tests run it on P-256 too, but
//! only P-384 (Debian's module key since trixie) uses it: P-256 keys keep
//! the crate's own check, as tables for them would add ~4 KB to the static
//! binary (`tables!(p256::NistP256)` and a `PublicKey::verify` arm like
//! P-384's turn them on).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use p384::elliptic_curve::ops::{Invert, MulByGeneratorVartime, Reduce};
use p384::elliptic_curve::point::AffineCoordinates;
use p384::elliptic_curve::{
    CurveArithmetic, CurveGroup, FieldBytes, Group, NonZeroScalar, PrimeField,
};

/// Window width in bits.
const W: usize = 6;
/// Multiples kept per window, 1..=2^(W-1): a negative digit subtracts one.
const HALF: usize = 1 << (W - 1);
/// Uses of a key before its table is built: below that, a table costs more
/// than it saves.
pub(crate) const BUILD_AFTER: u32 = 8;
/// Keys per curve whose uses are counted and whose tables are kept.
pub(crate) const MAX_KEYS: usize = 4;

/// `j · 2^(W·i) · P` for every window `i` and `j` in 1..=[`HALF`], affine.
pub(crate) struct Table<C: CurveArithmetic> {
    points: Box<[C::AffinePoint]>,
}

/// Windows of a scalar: one more than its bits fill, for the last carry.
fn windows<C: CurveArithmetic>() -> usize {
    C::Scalar::NUM_BITS as usize / W + 1
}

impl<C: CurveArithmetic> Table<C> {
    fn new(base: C::ProjectivePoint) -> Self {
        let n = windows::<C>();
        let mut projective = Vec::with_capacity(n * HALF);
        let mut base = base;
        for _ in 0..n {
            let mut multiple = base;
            projective.push(multiple);
            for _ in 1..HALF {
                multiple += base;
                projective.push(multiple);
            }
            // HALF · base, doubled: the next window's base.
            base = multiple.double();
        }
        let mut points = vec![C::AffinePoint::default(); projective.len()];
        C::ProjectivePoint::batch_normalize(&projective, &mut points);
        Table {
            points: points.into_boxed_slice(),
        }
    }

    /// Adds `digit · 2^(W·window) · P` to `sum`.
    fn add(&self, sum: &mut C::ProjectivePoint, window: usize, digit: i8) -> Option<()> {
        let Some(j) = usize::from(digit.unsigned_abs()).checked_sub(1) else {
            return Some(());
        };
        let point = self.points.get(window * HALF + j)?;
        if digit > 0 {
            *sum += point;
        } else {
            *sum -= point;
        }
        Some(())
    }
}

/// `k`'s signed base-2^W digits, least significant first:
/// `k = Σ d_i · 2^(W·i)` with `-2^(W-1) < d_i ≤ 2^(W-1)`.
fn digits<C: CurveArithmetic>(k: &C::Scalar) -> Option<Vec<i8>> {
    let repr = k.to_repr();
    let be: &[u8] = repr.as_ref();
    let bits = be.len() * 8;
    let bit = |i: usize| -> i16 {
        match be.len().checked_sub(1 + i / 8).and_then(|at| be.get(at)) {
            Some(byte) if i < bits => i16::from((byte >> (i % 8)) & 1),
            _ => 0,
        }
    };
    let n = windows::<C>();
    let mut out = Vec::with_capacity(n);
    let mut carry = 0i16;
    for w in 0..n {
        let mut d = carry;
        for b in 0..W {
            d += bit(w * W + b) << b;
        }
        carry = i16::from(d > HALF as i16);
        d -= carry << W;
        out.push(i8::try_from(d).ok()?);
    }
    (carry == 0).then_some(out)
}

/// `a·G + b·Q` from the two tables; `None` only if a digit falls outside
/// them, which the digit ranges rule out.
fn mul_add<C: CurveArithmetic>(
    g: &Table<C>,
    a: &C::Scalar,
    q: &Table<C>,
    b: &C::Scalar,
) -> Option<C::ProjectivePoint> {
    let (da, db) = (digits::<C>(a)?, digits::<C>(b)?);
    let mut sum = C::ProjectivePoint::identity();
    for (window, (x, y)) in da.iter().zip(&db).enumerate() {
        g.add(&mut sum, window, *x)?;
        q.add(&mut sum, window, *y)?;
    }
    Some(sum)
}

/// A key whose uses are counted, and its table once it has earned one.
pub(crate) struct KeyEntry<C: CurveArithmetic> {
    point: C::AffinePoint,
    uses: u32,
    table: Arc<OnceLock<Table<C>>>,
}

/// The curves with tables: each has its generator's table and its keys.
pub(crate) trait Tables: CurveArithmetic {
    /// G's table, built with the first key table.
    fn generator() -> &'static OnceLock<Table<Self>>;
    /// The keys seen, at most [`MAX_KEYS`].
    fn keys() -> &'static Mutex<Vec<KeyEntry<Self>>>;
}

macro_rules! tables {
    ($curve:ty) => {
        impl Tables for $curve {
            fn generator() -> &'static OnceLock<Table<Self>> {
                static G: OnceLock<Table<$curve>> = OnceLock::new();
                &G
            }
            fn keys() -> &'static Mutex<Vec<KeyEntry<Self>>> {
                static KEYS: Mutex<Vec<KeyEntry<$curve>>> = Mutex::new(Vec::new());
                &KEYS
            }
        }
    };
}
tables!(p384::NistP384);

/// Counts a use of `key` in the curve's slots: [`count_use`].
fn key_slot<C: Tables>(key: &C::AffinePoint) -> Option<Arc<OnceLock<Table<C>>>> {
    let mut keys = C::keys().lock().unwrap_or_else(PoisonError::into_inner);
    count_use(&mut keys, key)
}

/// Counts a use of `key`; its table's slot once the key has been used
/// [`BUILD_AFTER`] times. A new key takes a free slot, or that of the
/// least-used key without a table; with every slot's table built, it has none.
fn count_use<C: CurveArithmetic>(
    keys: &mut Vec<KeyEntry<C>>,
    key: &C::AffinePoint,
) -> Option<Arc<OnceLock<Table<C>>>> {
    let at = match keys.iter().position(|e| e.point == *key) {
        Some(at) => at,
        None => {
            let entry = KeyEntry {
                point: *key,
                uses: 0,
                table: Arc::new(OnceLock::new()),
            };
            if keys.len() < MAX_KEYS {
                keys.push(entry);
                keys.len() - 1
            } else {
                let at = keys
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.table.get().is_none())
                    .min_by_key(|(_, e)| e.uses)
                    .map(|(at, _)| at)?;
                *keys.get_mut(at)? = entry;
                at
            }
        }
    };
    let entry = keys.get_mut(at)?;
    entry.uses = entry.uses.saturating_add(1);
    (entry.uses >= BUILD_AFTER).then(|| Arc::clone(&entry.table))
}

/// The digest as a scalar: cut to n's byte length, big-endian, reduced mod
/// n (the crate's `bytes2scalar`; both curves' n fill their field bytes).
fn bytes_to_scalar<C: CurveArithmetic>(bytes: &[u8]) -> C::Scalar {
    let mut padded = FieldBytes::<C>::default();
    let (size, len) = (padded.len(), padded.len().min(bytes.len()));
    if let (Some(dst), Some(src)) = (padded.get_mut(size - len..), bytes.get(..len)) {
        dst.copy_from_slice(src);
    }
    <C::Scalar as Reduce<FieldBytes<C>>>::reduce(&padded)
}

/// Whether `(r, s)` signs `digest` under `key` (see the module's comment for
/// the rules), with the tables once the key has earned them.
pub(crate) fn verify_prehash<C: Tables>(
    key: &C::AffinePoint,
    digest: &[u8],
    r: &NonZeroScalar<C>,
    s: &NonZeroScalar<C>,
) -> bool {
    match key_slot::<C>(key) {
        Some(slot) => {
            let g = C::generator().get_or_init(|| Table::new(C::ProjectivePoint::generator()));
            let q = slot.get_or_init(|| Table::new((*key).into()));
            check(key, digest, r, s, Some((g, q)))
        }
        None => check(key, digest, r, s, None),
    }
}

/// The ecdsa crate's `verify_prehashed`, with `u1·G + u2·Q` from `tables`
/// (G's, then Q's) when given, else from the crate.
fn check<C: CurveArithmetic>(
    key: &C::AffinePoint,
    digest: &[u8],
    r: &NonZeroScalar<C>,
    s: &NonZeroScalar<C>,
    tables: Option<(&Table<C>, &Table<C>)>,
) -> bool {
    let z = bytes_to_scalar::<C>(digest);
    let s_inv = *s.invert_vartime();
    let u1 = z * s_inv;
    let u2 = **r * s_inv;
    let sum = tables
        .and_then(|(g, q)| mul_add(g, &u1, q, &u2))
        .unwrap_or_else(|| {
            C::ProjectivePoint::mul_by_generator_and_mul_add_vartime(&u1, &u2, &(*key).into())
        });
    **r == bytes_to_scalar::<C>(&sum.to_affine().x())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::verify::algorithm::HashAlgo;
    use crate::verify::pubkey::{PublicKey, SigError};

    /// A deterministic byte stream: SHA-512 of a label and a counter.
    fn bytes(label: &str, i: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for block in 0.. {
            if out.len() >= len {
                break;
            }
            let seed = format!("{label}/{i}/{block}");
            out.extend(HashAlgo::Sha512.digest(seed.as_bytes()));
        }
        out.truncate(len);
        out
    }

    /// A minimal DER INTEGER of a big-endian magnitude.
    fn der_int(be: &[u8]) -> Vec<u8> {
        let start = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        let mut v = be[start..].to_vec();
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }

    fn der_sig(r: &[u8], s: &[u8]) -> Vec<u8> {
        let body = [der_int(r), der_int(s)].concat();
        let mut out = vec![0x30, body.len() as u8];
        out.extend(body);
        out
    }

    #[test]
    fn key_slots_count_build_and_evict() {
        type C = p384::NistP384;
        let point = |i: u64| {
            p384::AffinePoint::from(p384::ProjectivePoint::GENERATOR * p384::Scalar::from(i))
        };
        let mut keys: Vec<KeyEntry<C>> = Vec::new();
        for _ in 1..BUILD_AFTER {
            assert!(count_use(&mut keys, &point(1)).is_none());
        }
        let slot = count_use(&mut keys, &point(1)).expect("built after BUILD_AFTER uses");
        slot.get_or_init(|| Table::new(p384::ProjectivePoint::GENERATOR));
        for i in 2..=MAX_KEYS as u64 {
            assert!(count_use(&mut keys, &point(i)).is_none());
        }
        assert!(count_use(&mut keys, &point(2)).is_none());
        // Full: a new key replaces the least-used key without a table (3).
        assert!(count_use(&mut keys, &point(100)).is_none());
        assert_eq!(keys.len(), MAX_KEYS);
        assert!(keys.iter().any(|e| e.point == point(2)));
        assert!(!keys.iter().any(|e| e.point == point(3)));
        assert!(keys.iter().any(|e| e.point == point(1)));
        // Every slot with a table: a new key gets none, and no slot.
        for e in keys.iter() {
            e.table
                .get_or_init(|| Table::new(p384::ProjectivePoint::GENERATOR));
        }
        assert!(count_use(&mut keys, &point(200)).is_none());
        assert!(!keys.iter().any(|e| e.point == point(200)));
    }

    #[test]
    fn table_size() {
        // The module comment's figures.
        assert_eq!(windows::<p384::NistP384>() * HALF, 2080);
        assert_eq!(windows::<p256::NistP256>() * HALF, 1376);
        assert_eq!(std::mem::size_of::<p384::AffinePoint>(), 104);
        assert_eq!(std::mem::size_of::<p256::AffinePoint>(), 72);
    }

    /// Every ECDSA signature of the fixture corpus (`MODSEAL_FIXTURES`):
    /// with the tables, without, through the slots, against the crate.
    #[test]
    fn fixture_signatures() {
        use crate::verify::algorithm::{hash_from_oid, HashLookup};
        use crate::verify::modsig::{split, Trailer};
        use p256::ecdsa::signature::hazmat::PrehashVerifier;

        // Where the integration tests look (tests/common): never a silent
        // skip, a missing corpus fails here.
        let dir = std::env::var_os("MODSEAL_FIXTURES")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fixtures")
            });
        let cases = std::fs::read_to_string(dir.join("cases.tsv")).unwrap_or_else(|e| {
            panic!(
                "{}/cases.tsv: {e}: make the corpus with scripts/make-fixtures.sh DIR \
                 and set MODSEAL_FIXTURES=DIR (scripts/test.sh does)",
                dir.display()
            )
        });
        let mut checked = 0;
        for line in cases.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (module, trust) = (cols[1], cols[2]);
            if !module.ends_with(".ko") || !trust.starts_with("keys/ec") {
                continue;
            }
            let file = std::fs::read(dir.join(module)).unwrap();
            let Ok(Trailer::Signed(signed)) = split(&file) else {
                continue;
            };
            let msg = crate::verify::pkcs7::parse(signed.pkcs7).unwrap();
            let HashLookup::Supported(hash) = hash_from_oid(msg.signer.digest_oid) else {
                continue;
            };
            let digest = match &msg.signer.signed_attrs {
                None => hash.digest(signed.payload),
                Some(attrs) => {
                    let mut h = hash.hasher();
                    attrs.signed_bytes(|b| h.update(b));
                    h.finish()
                }
            };
            let mut store = crate::trust::TrustStore::default();
            store.add_trust_file(&dir.join(trust)).unwrap();
            let der = msg.signer.signature;
            let key = store.anchors[0].key.as_ref().unwrap();
            let (want, [tables, plain]) = match key {
                PublicKey::P256(vk) => {
                    let sig = p256::ecdsa::Signature::from_der(der).unwrap();
                    let (r, s) = sig.split_scalars();
                    let want = vk.verify_prehash(&digest, &sig).is_ok();
                    (want, both_ways(vk.as_affine(), &digest, &r, &s))
                }
                PublicKey::P384(vk) => {
                    let sig = p384::ecdsa::Signature::from_der(der).unwrap();
                    let (r, s) = sig.split_scalars();
                    let want = vk.verify_prehash(&digest, &sig).is_ok();
                    (want, both_ways(vk.as_affine(), &digest, &r, &s))
                }
                _ => continue,
            };
            // Past BUILD_AFTER uses, P-384 keys verify through their tables.
            let slots = (0..=BUILD_AFTER).all(|_| key.verify(hash, &digest, der).is_ok());
            assert_eq!([tables, plain, slots], [want; 3], "{module}");
            let mut flipped = digest.clone();
            flipped[0] ^= 0x80;
            assert!(key.verify(hash, &flipped, der).is_err(), "{module}");
            checked += 1;
        }
        assert!(checked >= 10, "{checked} ECDSA fixtures");
    }

    /// With the tables and without.
    fn both_ways<C: CurveArithmetic>(
        key: &C::AffinePoint,
        digest: &[u8],
        r: &NonZeroScalar<C>,
        s: &NonZeroScalar<C>,
    ) -> [bool; 2] {
        let g = Table::<C>::new(C::ProjectivePoint::generator());
        let q = Table::<C>::new((*key).into());
        [
            check(key, digest, r, s, Some((&g, &q))),
            check(key, digest, r, s, None),
        ]
    }

    macro_rules! curve_tests {
        ($name:ident, $krate:ident, $curve:ty, $variant:ident, $hash:expr) => {
            mod $name {
                use super::*;
                use $krate::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
                use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};
                use $krate::elliptic_curve::ops::LinearCombination;
                use $krate::{FieldBytes, ProjectivePoint, Scalar};

                type C = $curve;

                fn scalar(label: &str, i: usize) -> Scalar {
                    let b = bytes(label, i, FieldBytes::default().len());
                    <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::try_from(&b[..]).unwrap())
                }

                /// n - 1, n - 2, 1, 2, 2^(bits-1) and neighbours, and more.
                fn edges() -> Vec<Scalar> {
                    let half = (1..Scalar::NUM_BITS).fold(Scalar::ONE, |a, _| a.double());
                    vec![
                        Scalar::ZERO,
                        Scalar::ONE,
                        Scalar::from(2u64),
                        Scalar::from(31u64),
                        Scalar::from(32u64),
                        Scalar::from(33u64),
                        -Scalar::ONE,
                        -Scalar::from(2u64),
                        -Scalar::from(32u64),
                        half,
                        half - Scalar::ONE,
                        half + Scalar::ONE,
                        -half,
                    ]
                }

                fn key(i: usize) -> SigningKey {
                    SigningKey::from_bytes(&scalar("key", i).to_repr()).unwrap()
                }

                /// What modseal says, with the tables, without, and through
                /// `PublicKey::verify`; all must agree with the crate.
                fn agree(
                    vk: &VerifyingKey,
                    tables: (&Table<C>, &Table<C>),
                    digest: &[u8],
                    der: &[u8],
                ) -> bool {
                    let crate_says =
                        Signature::from_der(der).map(|sig| vk.verify_prehash(digest, &sig).is_ok());
                    let ours = PublicKey::$variant(*vk).verify($hash, digest, der);
                    match crate_says {
                        Err(_) => {
                            assert_eq!(ours, Err(SigError::EcdsaEncoding));
                            false
                        }
                        Ok(ok) => {
                            let sig = Signature::from_der(der).unwrap();
                            let (r, s) = sig.split_scalars();
                            let key = vk.as_affine();
                            assert_eq!(check(key, digest, &r, &s, Some(tables)), ok, "tables");
                            assert_eq!(check(key, digest, &r, &s, None), ok, "crate path");
                            assert_eq!(ours.is_ok(), ok, "PublicKey::verify");
                            if !ok {
                                assert_eq!(ours, Err(SigError::EcdsaMismatch));
                            }
                            ok
                        }
                    }
                }

                #[test]
                fn digits_recompose() {
                    let mut ks = edges();
                    ks.extend((0..64).map(|i| scalar("digits", i)));
                    for k in ks {
                        let d = digits::<C>(&k).unwrap();
                        assert_eq!(d.len(), windows::<C>());
                        assert!(d.iter().all(|&x| (-(HALF as i8) < x) && (x <= HALF as i8)));
                        let radix = Scalar::from(1u64 << W);
                        let signed = d.iter().rev().fold(Scalar::ZERO, |acc, &x| {
                            let m = Scalar::from(u64::from(x.unsigned_abs()));
                            acc * radix + if x < 0 { -m } else { m }
                        });
                        assert_eq!(signed, k);
                    }
                }

                #[test]
                fn tables_match_the_crate() {
                    let g = Table::<C>::new(ProjectivePoint::GENERATOR);
                    let edges = edges();
                    for i in 0..3 {
                        let q = ProjectivePoint::GENERATOR * scalar("point", i);
                        let qt = Table::<C>::new(q);
                        let mut pairs: Vec<(Scalar, Scalar)> =
                            (0..24).map(|j| (scalar("a", j), scalar("b", j))).collect();
                        for a in &edges {
                            for b in &edges {
                                pairs.push((*a, *b));
                            }
                        }
                        for (a, b) in pairs {
                            let want = ProjectivePoint::lincomb_vartime(&[
                                (ProjectivePoint::GENERATOR, a),
                                (q, b),
                            ]);
                            assert_eq!(mul_add(&g, &a, &qt, &b).unwrap(), want);
                        }
                    }
                }

                #[test]
                fn signatures_agree_with_the_crate() {
                    let g = Table::<C>::new(ProjectivePoint::GENERATOR);
                    for i in 0..4 {
                        let sk = key(i);
                        let vk = *sk.verifying_key();
                        let qt = Table::<C>::new(ProjectivePoint::from(*vk.as_affine()));
                        let other = key(100 + i);
                        for (j, len) in [1, 20, 32, 48, 64, 66, 100].into_iter().enumerate() {
                            let digest = bytes("digest", i * 10 + j, len);
                            let sig: Signature = sk.sign_prehash(&digest).unwrap();
                            let (r, s) = (sig.r(), sig.s());
                            let der = sig.to_der();
                            assert!(agree(&vk, (&g, &qt), &digest, der.as_bytes()));
                            let r_bytes = r.to_repr();
                            let s_bytes = s.to_repr();
                            let neg_s = (-*s).to_repr();
                            let r1 = (*r + Scalar::ONE).to_repr();
                            let s1 = (*s + Scalar::ONE).to_repr();
                            // High s: accepted, as by the crate (NORMALIZE_S is false).
                            assert!(agree(&vk, (&g, &qt), &digest, &der_sig(&r_bytes, &neg_s)));
                            for bad in [
                                der_sig(&r1, &s_bytes),
                                der_sig(&r_bytes, &s1),
                                der_sig(&s_bytes, &r_bytes),
                            ] {
                                assert!(!agree(&vk, (&g, &qt), &digest, &bad));
                            }
                            let mut flipped = digest.clone();
                            if let Some(b) = flipped.first_mut() {
                                *b ^= 1;
                                assert!(!agree(&vk, (&g, &qt), &flipped, der.as_bytes()));
                            }
                            let theirs: Signature = other.sign_prehash(&digest).unwrap();
                            assert!(!agree(&vk, (&g, &qt), &digest, theirs.to_der().as_bytes()));
                        }
                    }
                }

                #[test]
                fn out_of_range_r_and_s_are_encoding_errors() {
                    let sk = key(7);
                    let vk = *sk.verifying_key();
                    let g = Table::<C>::new(ProjectivePoint::GENERATOR);
                    let qt = Table::<C>::new(ProjectivePoint::from(*vk.as_affine()));
                    let digest = bytes("range", 0, 48);
                    let sig: Signature = sk.sign_prehash(&digest).unwrap();
                    let (r, s) = (sig.r().to_repr().to_vec(), sig.s().to_repr().to_vec());
                    let size = r.len();
                    // n itself, as bytes: (n - 1) + 1 by hand.
                    let mut n = (-Scalar::ONE).to_repr().to_vec();
                    *n.last_mut().unwrap() += 1;
                    let mut n1 = n.clone();
                    *n1.last_mut().unwrap() += 1;
                    let zero = vec![0u8; size];
                    let max = vec![0xffu8; size];
                    let wide = [vec![1u8], vec![0u8; size]].concat();
                    for bad in [&zero, &n, &n1, &max, &wide] {
                        assert!(!agree(&vk, (&g, &qt), &digest, &der_sig(bad, &s)));
                        assert!(!agree(&vk, (&g, &qt), &digest, &der_sig(&r, bad)));
                        assert_eq!(
                            PublicKey::$variant(vk).verify($hash, &digest, &der_sig(bad, &s)),
                            Err(SigError::EcdsaEncoding)
                        );
                    }
                    assert!(agree(&vk, (&g, &qt), &digest, &der_sig(&r, &s)));
                }

                /// An empty digest is z = 0: signed by hand, s = k⁻¹·r·d.
                #[test]
                fn an_empty_digest_is_zero() {
                    let d = scalar("d", 1);
                    let sk = SigningKey::from_bytes(&d.to_repr()).unwrap();
                    let vk = *sk.verifying_key();
                    let g = Table::<C>::new(ProjectivePoint::GENERATOR);
                    let qt = Table::<C>::new(ProjectivePoint::from(*vk.as_affine()));
                    let k = scalar("k", 1);
                    let x = (ProjectivePoint::GENERATOR * k).to_affine().x();
                    let r = <Scalar as Reduce<FieldBytes>>::reduce(&x);
                    let s = k.invert().unwrap() * r * d;
                    let der = der_sig(&r.to_repr(), &s.to_repr());
                    assert!(agree(&vk, (&g, &qt), &[], &der));
                    assert!(agree(&vk, (&g, &qt), &[0; 8], &der));
                    assert!(!agree(&vk, (&g, &qt), &[1], &der));
                }

                /// u1·G + u2·Q at infinity: x is 0, never r.
                #[test]
                fn a_sum_at_infinity_is_refused() {
                    let d = scalar("d", 0);
                    let sk = SigningKey::from_bytes(&d.to_repr()).unwrap();
                    let vk = *sk.verifying_key();
                    let g = Table::<C>::new(ProjectivePoint::GENERATOR);
                    let qt = Table::<C>::new(ProjectivePoint::from(*vk.as_affine()));
                    let r = scalar("r", 0);
                    // z + r·d = 0 (mod n)
                    let z = -(r * d);
                    let (u1, u2) = (z, r);
                    assert_eq!(
                        mul_add(&g, &u1, &qt, &u2).unwrap(),
                        ProjectivePoint::IDENTITY
                    );
                    let digest = z.to_repr();
                    for i in 0..4 {
                        let s = scalar("s", i);
                        let der = der_sig(&r.to_repr(), &s.to_repr());
                        assert!(!agree(&vk, (&g, &qt), &digest, &der));
                    }
                }

                /// Through `PublicKey::verify`: a P-384 key's first uses go
                /// the crate's way, the rest through its table; all verify.
                #[test]
                fn repeated_use_agrees() {
                    let sk = key(50);
                    let vk = *sk.verifying_key();
                    let key = PublicKey::$variant(vk);
                    for i in 0..2 * BUILD_AFTER as usize {
                        let digest = bytes("slots", i, 32);
                        let sig: Signature = sk.sign_prehash(&digest).unwrap();
                        let der = sig.to_der();
                        assert_eq!(key.verify($hash, &digest, der.as_bytes()), Ok(()));
                        assert_eq!(
                            key.verify($hash, &digest[1..], der.as_bytes()),
                            Err(SigError::EcdsaMismatch)
                        );
                    }
                }
            }
        };
    }

    curve_tests!(p256_tests, p256, p256::NistP256, P256, HashAlgo::Sha256);
    curve_tests!(p384_tests, p384, p384::NistP384, P384, HashAlgo::Sha384);
}
