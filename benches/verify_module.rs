//! Per-module cost, split into its parts: the whole check, the hash of the
//! payload, and the signature arithmetic alone.
//!
//! Uses a real Debian module and the certificate from its own kernel:
//! `MODSEAL_BENCH_MODULE` and `MODSEAL_BENCH_CERT`, defaulting to the
//! bookworm kernel that `scripts/fetch-kernels.sh` unpacks (with the
//! certificate `scripts/bench-tree.sh` extracts).

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

criterion_group!(benches, bench);
criterion_main!(benches);
