//! S3 browser-based uploads (POST Object): a form a plain HTML page can submit straight to the
//! source bucket. The form carries a policy document signed with Signature Version 4; S3 itself
//! refuses a submission whose key, content type or length differ from what the policy fixes, or
//! that arrives after it expires. The AWS SDK for Rust presigns requests but not POST policies.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The form a client submits: `url` is the action, `fields` go before the file field, which S3
/// requires to be the last one and to be called `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedPost {
    pub url: String,
    pub fields: BTreeMap<String, String>,
}

/// The credentials a policy is signed with: the caller's own, so S3 checks the upload against
/// the signer's permissions (the upload function's role may only write source keys).
#[derive(Debug, Clone)]
pub struct SigningCredentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Present for temporary credentials (a Lambda role's); then part of the policy too.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
}

/// What the upload must be: exactly this key, content type and length.
#[derive(Debug, Clone)]
pub struct PostTarget<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub content_type: &'a str,
    pub size: u64,
}

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// `YYYYMMDD'T'HHMMSS'Z'` and `YYYYMMDD` of `at`, UTC.
fn sigv4_times(at: SystemTime) -> (String, String) {
    let at = OffsetDateTime::from(at);
    let day = format!("{:04}{:02}{:02}", at.year(), at.month() as u8, at.day());
    let stamp = format!("{day}T{:02}{:02}{:02}Z", at.hour(), at.minute(), at.second());
    (stamp, day)
}

/// ISO 8601 with milliseconds, as the policy's `expiration` wants it.
fn expiration(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The signed form for `target`, valid for `ttl` from `now`, posted to `url` (the bucket's
/// endpoint, as the SDK resolves it).
pub fn presign_post(
    url: String,
    target: &PostTarget<'_>,
    credentials: &SigningCredentials<'_>,
    now: SystemTime,
    ttl: Duration,
) -> PresignedPost {
    let (stamp, day) = sigv4_times(now);
    let credential = format!("{}/{day}/{}/s3/aws4_request", credentials.access_key_id, credentials.region);
    let mut fields = BTreeMap::from([
        ("key".to_string(), target.key.to_string()),
        ("Content-Type".to_string(), target.content_type.to_string()),
        ("x-amz-algorithm".to_string(), ALGORITHM.to_string()),
        ("x-amz-credential".to_string(), credential),
        ("x-amz-date".to_string(), stamp),
    ]);
    if let Some(token) = credentials.session_token {
        fields.insert("x-amz-security-token".to_string(), token.to_string());
    }
    // Exact matches only: every field the form carries is fixed by the policy, and S3 refuses a
    // form with a field the policy does not name.
    let mut conditions: Vec<Value> = vec![json!({ "bucket": target.bucket })];
    conditions.extend(fields.iter().map(|(name, value)| json!({ name: value })));
    conditions.push(json!(["content-length-range", target.size, target.size]));
    let policy = json!({ "expiration": expiration(now + ttl), "conditions": conditions });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(credentials.secret_access_key, now, credentials.region, "s3");
    let signature = aws_sigv4::sign::v4::calculate_signature(signing_key, policy.as_bytes());
    fields.insert("policy".to_string(), policy);
    fields.insert("x-amz-signature".to_string(), signature);
    PresignedPost { url, fields }
}

/// The bucket's POST endpoint from a presigned URL for `key` in it: the same URL without the
/// key and the query (`https://bucket.s3.region.amazonaws.com/` or, path-style,
/// `http://127.0.0.1:5000/bucket/`). The SDK's endpoint rules (FIPS, dual-stack, emulators)
/// thereby decide it.
pub fn bucket_url(presigned: &str, key: &str) -> Option<String> {
    let mut url = url::Url::parse(presigned).ok()?;
    let path = url.path().strip_suffix(key)?.to_string();
    if !path.ends_with('/') {
        return None;
    }
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded_policy(post: &PresignedPost) -> Value {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&post.fields["policy"]).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    const TARGET: PostTarget<'static> = PostTarget { bucket: "src", key: "source/t1/c1/original", content_type: "video/mp4", size: 1234 };

    #[test]
    fn the_policy_fixes_key_type_length_and_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let credentials =
            SigningCredentials { access_key_id: "AKID", secret_access_key: "secret", session_token: Some("tok"), region: "eu-west-1" };
        let post = presign_post("https://src.s3.eu-west-1.amazonaws.com/".into(), &TARGET, &credentials, now, Duration::from_secs(3600));
        let policy = decoded_policy(&post);
        assert_eq!(policy["expiration"], "2026-11-18T12:06:40.000Z");
        let conditions = policy["conditions"].as_array().unwrap();
        assert!(conditions.contains(&json!({"bucket": "src"})));
        assert!(conditions.contains(&json!(["content-length-range", 1234, 1234])));
        // Every field but the policy and its signature is a condition, so none can be altered.
        for (name, value) in post.fields.iter().filter(|(n, _)| !matches!(n.as_str(), "policy" | "x-amz-signature")) {
            assert!(conditions.contains(&json!({ name: value })), "{name} is not bound by the policy");
        }
        assert_eq!(post.fields["x-amz-credential"], "AKID/20261118/eu-west-1/s3/aws4_request");
        assert_eq!(post.fields["x-amz-date"], "20261118T110640Z");
        assert_eq!(post.fields["x-amz-security-token"], "tok");
    }

    #[test]
    fn the_signature_is_sigv4_over_the_encoded_policy() {
        // Computed apart, with Python's hmac over the SigV4 key derivation (AWS's example secret,
        // 2015-12-29, us-east-1, s3) and this base64 policy as the string to sign.
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_451_347_200),
            "us-east-1",
            "s3",
        );
        let policy = "eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIn0=";
        assert_eq!(
            aws_sigv4::sign::v4::calculate_signature(key, policy.as_bytes()),
            "6177f37480a703088dfd86e641c14a716a167304797a98fad5384106dc6f6061"
        );
    }

    #[test]
    fn the_form_posts_to_the_bucket_endpoint() {
        let key = "source/t1/c1/original";
        assert_eq!(
            bucket_url("https://src.s3.us-east-1.amazonaws.com/source/t1/c1/original?X-Amz-Signature=x", key).as_deref(),
            Some("https://src.s3.us-east-1.amazonaws.com/")
        );
        assert_eq!(bucket_url("http://127.0.0.1:5000/src/source/t1/c1/original?x=1", key).as_deref(), Some("http://127.0.0.1:5000/src/"));
        assert_eq!(bucket_url("http://127.0.0.1:5000/src/other?x=1", key), None);
        assert_eq!(bucket_url("http://127.0.0.1:5000/src/xsource/t1/c1/original", key), None, "the key is a whole path segment");
    }
}
