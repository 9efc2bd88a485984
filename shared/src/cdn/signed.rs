//! Signed URLs and signed cookies from a policy.

use crate::cdn::cloudfront_base64;
use crate::cdn::policy::{InvalidPolicy, Policy};
use crate::cdn::signer::{HashAlgorithm, PolicySigner, SignError};

impl From<InvalidPolicy> for SignError {
    fn from(e: InvalidPolicy) -> Self {
        SignError::Config(e.to_string())
    }
}

/// `url` with `Expires` (canned) or `Policy` (custom), `Signature`, `Key-Pair-Id` and, for
/// SHA-256, `Hash-Algorithm` appended. Canned whenever the policy allows it.
pub async fn sign_url(signer: &dyn PolicySigner, url: &str, policy: &Policy) -> Result<String, SignError> {
    let json = policy.to_json()?;
    let signature = signer.sign(json.as_bytes()).await?;
    let mut params = Vec::with_capacity(4);
    if policy.is_canned_for(url) {
        params.push(format!("Expires={}", policy.date_less_than));
    } else {
        params.push(format!("Policy={}", cloudfront_base64(json.as_bytes())));
    }
    params.push(format!("Signature={}", cloudfront_base64(&signature)));
    params.push(format!("Key-Pair-Id={}", signer.key_pair_id()));
    if signer.hash_algorithm() == HashAlgorithm::Sha256 {
        params.push("Hash-Algorithm=SHA256".into());
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{separator}{}", params.join("&")))
}

/// The cookie name/value pairs, in the order they are documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCookies(pub Vec<(String, String)>);

impl SignedCookies {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.iter().map(|(n, v)| (n.clone(), serde_json::Value::from(v.as_str()))).collect())
    }

    /// `Set-Cookie` values scoped to the tenant's CDN host: `Secure`, `HttpOnly`, no `Expires`
    /// (the policy carries the expiry; session cookies vanish with the browser).
    pub fn set_cookie_headers(&self, domain: &str, path: &str) -> Vec<String> {
        self.0.iter().map(|(n, v)| format!("{n}={v}; Domain={domain}; Path={path}; Secure; HttpOnly; SameSite=None")).collect()
    }
}

/// Canned cookies (`CloudFront-Expires`) when the policy is a plain expiry on one URL, custom
/// (`CloudFront-Policy`) otherwise.
pub async fn sign_cookies(signer: &dyn PolicySigner, policy: &Policy) -> Result<SignedCookies, SignError> {
    let json = policy.to_json()?;
    let signature = signer.sign(json.as_bytes()).await?;
    let mut cookies = Vec::with_capacity(4);
    if policy.is_canned_for(&policy.resource) {
        cookies.push(("CloudFront-Expires".to_string(), policy.date_less_than.to_string()));
    } else {
        cookies.push(("CloudFront-Policy".to_string(), cloudfront_base64(json.as_bytes())));
    }
    cookies.push(("CloudFront-Signature".to_string(), cloudfront_base64(&signature)));
    cookies.push(("CloudFront-Key-Pair-Id".to_string(), signer.key_pair_id().to_string()));
    if signer.hash_algorithm() == HashAlgorithm::Sha256 {
        cookies.push(("CloudFront-Hash-Algorithm".to_string(), "SHA256".to_string()));
    }
    Ok(SignedCookies(cookies))
}
