//! JWT verification throughput, RS256/ES256/HS256: the full `JwtVerifier` (header checks, JWKS
//! cache lookup, claims, `Principal`) beside the reference, a bare `jsonwebtoken::decode` with the
//! key already in hand. bench/access.sh turns the two into a ratio.

use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::json;
use vaultstream::identity::{FileJwks, JwksCache, JwtSettings, JwtVerifier};
use zeroize::Zeroizing;

const SECRET: &[u8] = b"bench-shared-secret-of-at-least-32-bytes";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rsa = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap().private_key_to_pem_pkcs8().unwrap();
    let ec = PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap())
        .unwrap()
        .private_key_to_pem_pkcs8()
        .unwrap();
    let keys = [
        (Algorithm::RS256, EncodingKey::from_rsa_pem(&rsa).unwrap(), "r"),
        (Algorithm::ES256, EncodingKey::from_ec_pem(&ec).unwrap(), "e"),
    ];
    let jwks = JwkSet {
        keys: keys
            .iter()
            .map(|(alg, key, kid)| {
                let mut jwk = Jwk::from_encoding_key(key, *alg).unwrap();
                jwk.common.key_id = Some(kid.to_string());
                jwk
            })
            .collect(),
    };
    std::fs::write(dir.path().join("jwks.json"), serde_json::to_vec(&jwks).unwrap()).unwrap();
    let settings = JwtSettings {
        issuer: "iss".into(),
        audience: "aud".into(),
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::HS256],
        hs256_secret: Some(Zeroizing::new(SECRET.to_vec())),
        leeway_seconds: 60,
    };
    let verifier = JwtVerifier::new(settings, Some(JwksCache::new(Box::new(FileJwks(dir.path().join("jwks.json")))))).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({"iss": "iss", "aud": "aud", "sub": "viewer", "tenant": "acme", "scope": "content:read", "sid": "s1", "iat": now, "exp": now + 3600});

    let mut group = c.benchmark_group("jwt_verify");
    let cases = [
        (Algorithm::RS256, EncodingKey::from_rsa_pem(&rsa).unwrap(), Some("r"), DecodingKey::from_jwk(&jwks.keys[0]).unwrap()),
        (Algorithm::ES256, EncodingKey::from_ec_pem(&ec).unwrap(), Some("e"), DecodingKey::from_jwk(&jwks.keys[1]).unwrap()),
        (Algorithm::HS256, EncodingKey::from_secret(SECRET), None, DecodingKey::from_secret(SECRET)),
    ];
    for (alg, key, kid, decoding) in cases {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_string);
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        rt.block_on(verifier.verify(&token, now)).expect("the bench token verifies");
        let name = format!("{alg:?}");
        group.bench_function(format!("{name}/vaultstream"), |b| b.to_async(&rt).iter(|| verifier.verify(&token, now)));
        let mut validation = Validation::new(alg);
        validation.set_audience(&["aud"]);
        validation.set_issuer(&["iss"]);
        group.bench_function(format!("{name}/jsonwebtoken"), |b| {
            b.iter(|| jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
