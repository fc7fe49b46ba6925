//! Benchmarks of the token hot paths: minting, verifying without and with the cache, and a kid
//! lookup among 10,000 configured deployments. Keys are generated at start; the clock is frozen so
//! no token expires mid-run.

#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop at once

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use svcid_identity::{
    Deployment, DeploymentKey, Deployments, GeneratorKey, ManualClock, TokenIssuer, TokenProfile,
    TokenVerifier, VerifyPolicy,
};

const NOW: i64 = 1_700_000_000;

fn deployment(name: String, key: &GeneratorKey) -> Deployment {
    Deployment {
        name,
        module: "dpe".into(),
        environment: None,
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: vec!["IMPERSONATION".into()],
        keys: vec![DeploymentKey {
            name: "key1".into(),
            fingerprint: key.kid().into(),
            public: key.public_key(),
            revoked: false,
        }],
    }
}

fn tokens(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(NOW));
    let key = GeneratorKey::generate();
    let registry = Deployments::new(vec![deployment("dpe-dev".into(), &key)]).unwrap();
    let verifier = TokenVerifier::new(VerifyPolicy::new("dpm"), registry, clock.clone());
    let issuer = TokenIssuer::new(key, Duration::from_secs(15), clock).unwrap();

    c.bench_function("mint", |b| b.iter(|| issuer.mint(black_box("dpm"), None)));

    let value = format!("Internal-jwt {}", issuer.mint("dpm", None));
    c.bench_function("verify_cold", |b| {
        b.iter(|| {
            verifier
                .verify_uncached(&[black_box(value.as_bytes())])
                .unwrap()
        })
    });
    verifier.verify(&[value.as_bytes()]).unwrap();
    c.bench_function("verify_cached", |b| {
        b.iter(|| verifier.verify(&[black_box(value.as_bytes())]).unwrap())
    });
}

fn lookup(c: &mut Criterion) {
    let keys: Vec<GeneratorKey> = (0..10_000).map(|_| GeneratorKey::generate()).collect();
    let deployments = keys
        .iter()
        .enumerate()
        .map(|(n, key)| deployment(format!("dpe-{n}"), key))
        .collect();
    let registry = Deployments::new(deployments).unwrap();
    let probe = keys[7_777].kid().to_owned();
    c.bench_function("lookup_among_10000", |b| {
        b.iter(|| registry.lookup(black_box(&probe)).unwrap())
    });
    c.bench_function("lookup_unknown_among_10000", |b| {
        b.iter(|| registry.lookup(black_box("unknown-kid")).is_none())
    });
}

criterion_group!(benches, tokens, lookup);
criterion_main!(benches);
