//! CloudFront private content: policies, signatures, signed URLs and cookies exactly as
//! CloudFront (and `aws cloudfront sign`) expect them, and each tenant's CDN host name.

//!
//! Signing and verifying with PEM keys in process (OpenSSL) is the `pem` feature: the local
//! stack's edge, the tests and the CLI turn it on; Lambda packages, which sign with KMS, leave it
//! out.

#[cfg(feature = "pem")]
pub mod pem_signer;
pub mod policy;
pub mod signed;
pub mod signer;
pub mod tenant_host;
#[cfg(feature = "pem")]
pub mod verify;

#[cfg(feature = "pem")]
pub use pem_signer::PemPolicySigner;
pub use policy::Policy;
pub use signed::{sign_cookies, sign_url, SignedCookies};
pub use signer::{HashAlgorithm, KeyKind, PolicySigner, SignError};
pub use tenant_host::{clean_uri, HostRefusal, TenantHosts};
#[cfg(feature = "pem")]
pub use verify::{verify, Denial, EdgeRequest, SignedCredentials, TrustedKeys};

/// CloudFront's URL-safe base64: standard base64 with `+ = /` replaced by `- _ ~`.
pub fn cloudfront_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '-',
            '=' => '_',
            '/' => '~',
            c => c,
        })
        .collect()
}

/// The inverse, for verifying what we (or anyone) signed.
pub fn cloudfront_base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let standard: String = text
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '=',
            '~' => '/',
            c => c,
        })
        .collect();
    base64::engine::general_purpose::STANDARD.decode(standard).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_alphabet_is_cloudfronts() {
        let bytes = [0xfb, 0xff, 0xfe, 0x3e];
        let text = super::cloudfront_base64(&bytes);
        assert_eq!(text, "-~~-Pg__");
        assert_eq!(super::cloudfront_base64_decode(&text).unwrap(), bytes);
    }
}
