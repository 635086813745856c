//! Per-module cost, split into its parts: the whole check, the hash of the
//! payload, and the signature arithmetic alone.
//!
//! Uses a real Debian module and the certificate from its own kernel:
//! `MODSEAL_BENCH_MODULE` and `MODSEAL_BENCH_CERT`, defaulting to the
//! bookworm kernel that `scripts/fetch-kernels.sh` unpacks (with the
//! certificate `scripts/bench-tree.sh` extracts).
//!
//! `signature/*` compares one signature check per algorithm: RSA-4096 and
//! ECDSA P-384 over a SHA-384 digest (the fixture corpus, `MODSEAL_FIXTURES`,
//! default `target/fixtures`; `…/p384-crate` is the same ECDSA check by the
//! p384 crate alone, without modseal's fixed-base tables), and ML-DSA-44/65/87 as Linux 7.x's sign-file
//! makes them with OpenSSL 3.5, over their signed attributes (the
//! `MODSEAL_MLDSA_FIXTURES` of `scripts/make-mldsa-fixtures.sh`, default
//! `target/mldsa-fixtures`). `mldsa_module/*` is pure ML-DSA (no signed
//! attributes) over a 64 KiB payload, which ML-DSA hashes itself.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use modseal::image::compression::Compression;
use modseal::image::module::verify_bytes;
use modseal::trust::TrustStore;
use modseal::verify::algorithm::{hash_from_oid, HashLookup};
use modseal::verify::modsig::{split, Trailer};
use modseal::verify::{Options, Verdict};

fn inputs() -> (Vec<u8>, TrustStore) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let module = std::env::var_os("MODSEAL_BENCH_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let env = std::fs::read_to_string(root.join(".cache/kernels/bookworm/env"))
                .expect("run scripts/fetch-kernels.sh first (or set MODSEAL_BENCH_MODULE)");
            let modules = env
                .lines()
                .find_map(|l| l.strip_prefix("MODULES="))
                .expect("MODULES= in env");
            PathBuf::from(modules).join("kernel/fs/ext4/ext4.ko")
        });
    let cert = std::env::var_os("MODSEAL_BENCH_CERT")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".cache/kernels/bookworm/signing-cert.pem"));
    let mut trust = TrustStore::default();
    trust
        .add_trust_file(&cert)
        .expect("certificate (run scripts/bench-tree.sh or set MODSEAL_BENCH_CERT)");
    (std::fs::read(&module).expect("module file"), trust)
}

fn bench(c: &mut Criterion) {
    let (module, trust) = inputs();
    let opts = Options::default();
    let report = verify_bytes(&module, Compression::None, "bench.ko", &trust, &opts);
    assert_eq!(report.verdict, Verdict::Ok, "{}", report.reason);

    let mut g = c.benchmark_group("module");
    g.throughput(Throughput::Bytes(module.len() as u64));
    g.bench_function("verify_bytes", |b| {
        b.iter(|| verify_bytes(&module, Compression::None, "bench.ko", &trust, &opts))
    });

    let Ok(Trailer::Signed(signed)) = split(&module) else {
        panic!("bench module is not signed")
    };
    let msg = modseal::verify::pkcs7::parse(signed.pkcs7).expect("pkcs7");
    let HashLookup::Supported(hash) = hash_from_oid(msg.signer.digest_oid) else {
        panic!("hash")
    };
    g.bench_function("hash_payload", |b| b.iter(|| hash.digest(signed.payload)));
    g.finish();

    let key = trust.anchors[0].key.as_ref().expect("key");
    let digest = hash.digest(signed.payload);
    c.bench_function("signature_only", |b| {
        b.iter(|| key.verify(hash, &digest, msg.signer.signature))
    });
    c.bench_function("parse_pkcs7", |b| {
        b.iter(|| modseal::verify::pkcs7::parse(signed.pkcs7))
    });
}

fn fixture_dir(var: &str, default: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(default));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{}: missing, skipped (set {var})", dir.display());
        None
    }
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn certificate(path: PathBuf) -> modseal::trust::cert::Certificate {
    modseal::trust::cert::Certificate::from_der(&read(path)).expect("certificate")
}

/// RSA-4096 and ECDSA P-384: the signature over the payload's digest.
fn classic_signatures(c: &mut Criterion, fixtures: &std::path::Path) {
    for (name, module, cert) in [
        (
            "signature/rsa4096-sha384",
            "rsa4096-sha384.ko",
            "rsa4096.crt",
        ),
        (
            "signature/ecdsa-p384-sha384",
            "ecp384-sha384.ko",
            "ecp384.crt",
        ),
    ] {
        let module = read(fixtures.join("modules").join(module));
        let mut trust = TrustStore::default();
        trust
            .add_trust_file(&fixtures.join("keys").join(cert))
            .expect("certificate");
        let Ok(Trailer::Signed(signed)) = split(&module) else {
            panic!("{name}: not signed")
        };
        let msg = modseal::verify::pkcs7::parse(signed.pkcs7).expect("pkcs7");
        let HashLookup::Supported(hash) = hash_from_oid(msg.signer.digest_oid) else {
            panic!("hash")
        };
        let key = trust.anchors[0].key.as_ref().expect("key");
        let digest = hash.digest(signed.payload);
        key.verify(hash, &digest, msg.signer.signature).expect(name);
        c.bench_function(name, |b| {
            b.iter(|| key.verify(hash, &digest, msg.signer.signature))
        });
        // The same check done the p384 crate's way (wNAF, no tables): what
        // modseal did before its fixed-base tables (src/verify/ecdsa.rs).
        if let modseal::verify::pubkey::PublicKey::P384(vk) = key {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let sig = p384::ecdsa::Signature::from_der(msg.signer.signature).expect("DER");
            vk.verify_prehash(&digest, &sig).expect(name);
            c.bench_function(&format!("{name}/p384-crate"), |b| {
                b.iter(|| vk.verify_prehash(&digest, &sig))
            });
        }
    }
}

/// ML-DSA: sign-file's signature over its signed attributes, and the whole
/// check of a module signed over its payload.
fn mldsa_signatures(c: &mut Criterion, dir: &std::path::Path) {
    for l in [44, 65, 87] {
        let module = read(dir.join(format!("mldsa{l}-sha512.ko")));
        let cert = certificate(dir.join(format!("cert-{l}.der")));
        let Ok(Trailer::Signed(signed)) = split(&module) else {
            panic!("not signed")
        };
        let msg = modseal::verify::pkcs7::parse(signed.pkcs7).expect("pkcs7");
        let attrs = msg
            .signer
            .signed_attrs
            .expect("sign-file's signed attributes");
        let mut message = Vec::new();
        attrs.signed_bytes(|b| message.extend_from_slice(b));
        let key = cert.key.as_ref().expect("key");
        key.verify_message(&[&message], msg.signer.signature)
            .expect("ML-DSA signature");
        c.bench_function(&format!("signature/mldsa{l}"), |b| {
            b.iter(|| key.verify_message(&[&message], msg.signer.signature))
        });

        let payload = read(dir.join("payload.ko"));
        let sig = read(dir.join(format!("payload-{l}.sig")));
        key.verify_message(&[&payload], &sig).expect("pure ML-DSA");
        let mut g = c.benchmark_group("mldsa_module");
        g.throughput(Throughput::Bytes(payload.len() as u64));
        g.bench_function(format!("pure_mldsa{l}_signature"), |b| {
            b.iter(|| key.verify_message(&[&payload], &sig))
        });
        g.finish();
    }
}

fn signatures(c: &mut Criterion) {
    if let Some(f) = fixture_dir("MODSEAL_FIXTURES", "target/fixtures") {
        classic_signatures(c, &f);
    }
    if let Some(m) = fixture_dir("MODSEAL_MLDSA_FIXTURES", "target/mldsa-fixtures") {
        mldsa_signatures(c, &m);
    }
}

criterion_group!(benches, signatures, bench);
criterion_main!(benches);
