//! One file through the public API, as any creator's client sends it: declare it, then send it
//! where the answer says (one PUT, or the parts of a multipart upload, skipping the parts S3
//! already has from an earlier run), then complete it.

use std::time::Duration;

use serde_json::{json, Value};
use vaultstream::metadata::Metadata;

use crate::watch::regular_file::RegularFile;
use crate::watch::state::Started;

/// Why a file did not upload.
#[derive(Debug)]
pub enum UploadError {
    /// The API refused the file itself (type, size, name): retrying cannot help.
    Refused { status: u16, code: String, message: String },
    /// The API refused the agent (a bad, expired or revoked token; a missing scope): every file
    /// would fail alike, so none is moved; the operator fixes the token file.
    Unauthorized(String),
    /// Worth another try later (the network, a 5xx, a 429, an expired upload URL).
    Temporary(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::Refused { status, code, message } => write!(f, "{status} {code}: {message}"),
            UploadError::Unauthorized(m) | UploadError::Temporary(m) => f.write_str(m),
        }
    }
}

fn temporary(what: &str) -> impl Fn(reqwest::Error) -> UploadError + '_ {
    move |e| UploadError::Temporary(format!("{what}: {e}"))
}

/// The API's `{"error":{"code","message"}}` answer, classified.
async fn api_error(response: reqwest::Response, what: &str) -> UploadError {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or("unknown").to_string();
    // API Gateway's own refusals (an authorizer's deny) are `{"message"}`, not the API's shape.
    let message =
        body["error"]["message"].as_str().or(body["message"].as_str()).map_or_else(|| text.chars().take(200).collect(), str::to_string);
    match status {
        401 | 403 => UploadError::Unauthorized(format!("{what}: {status} {code}: {message}; check the token file")),
        400 | 409 | 413 | 415 => UploadError::Refused { status, code, message },
        _ => UploadError::Temporary(format!("{what}: {status} {code}: {message}")),
    }
}

pub struct Api {
    pub http: reqwest::Client,
    /// `https://api.example.com`, no trailing slash.
    pub base: String,
    pub token: String,
    pub profile: Option<String>,
}

/// What the agent says about a file: its type by extension; its title and the rest of its
/// description from its sidecar, the title otherwise from its name.
pub fn declaration(name: &str, size: u64, profile: Option<&str>, sidecar: &Metadata) -> Result<Value, UploadError> {
    let media = vaultstream::ingest::media_types::for_file_name(name).ok_or_else(|| UploadError::Refused {
        status: 415,
        code: "unsupported_media_type".into(),
        message: format!(
            "{name}: the extension is not one of a video or audio type VaultStream transcodes ({})",
            vaultstream::ingest::media_types::accepted_list()
        ),
    })?;
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let from_name: String = stem.chars().filter(|c| !c.is_control()).take(vaultstream::ingest::upload::MAX_TITLE_CHARS).collect();
    let title = sidecar.title.clone().unwrap_or(from_name);
    let mut body = json!({"title": title, "filename": name, "content_type": media.content_type, "size_bytes": size});
    let described = Metadata { title: None, ..sidecar.clone() };
    if !described.is_empty() {
        body["metadata"] = json!(described);
    }
    if let Some(profile) = profile {
        body["profile"] = json!(profile);
    }
    Ok(body)
}

/// The bytes `[start, start + len)` of the opened file.
fn read_range(file: &RegularFile, name: &str, start: u64, len: u64) -> Result<Vec<u8>, UploadError> {
    let buffer = file.range(start, len).map_err(|e| UploadError::Temporary(format!("reading {name}: {e}")))?;
    if buffer.len() as u64 != len {
        return Err(UploadError::Temporary(format!("{name} shrank while it was uploaded")));
    }
    Ok(buffer)
}

impl Api {
    /// Declares the file (or, with the same idempotency key, gets the same content back with
    /// fresh URLs) and returns the upload answer.
    pub async fn declare(&self, name: &str, started: &Started, sidecar: &Metadata) -> Result<Value, UploadError> {
        let body = declaration(name, started.size, self.profile.as_deref(), sidecar)?;
        let response = self
            .http
            .post(format!("{}/v1/content/upload", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", &started.idempotency_key)
            .json(&body)
            .send()
            .await
            .map_err(temporary("declaring the upload"))?;
        if !response.status().is_success() {
            return Err(api_error(response, "declaring the upload").await);
        }
        response.json().await.map_err(temporary("reading the upload answer"))
    }

    /// Sends the file where `grant` says. `on_part` is told each part S3 took (number, ETag),
    /// so the caller can remember it before the next one.
    pub async fn send(
        &self,
        file: &RegularFile,
        name: &str,
        grant: &Value,
        started: &Started,
        mut on_part: impl FnMut(u32, String) -> anyhow::Result<()>,
    ) -> Result<(), UploadError> {
        let upload = &grant["upload"];
        let url = |v: &Value| {
            v.as_str().map(str::to_string).ok_or_else(|| UploadError::Temporary(format!("the upload answer has no URL: {grant}")))
        };
        match upload["method"].as_str() {
            Some("PUT") => {
                let mut request = self.http.put(url(&upload["url"])?).body(read_range(file, name, 0, started.size)?);
                for (name, value) in upload["headers"].as_object().into_iter().flatten() {
                    if name != "content-length" {
                        request = request.header(name, value.as_str().unwrap_or_default());
                    }
                }
                let response = request.send().await.map_err(temporary("uploading"))?;
                if !response.status().is_success() {
                    return Err(UploadError::Temporary(format!("S3 answered the upload with {}", response.status())));
                }
                Ok(())
            }
            Some("MULTIPART") => {
                let part_size = upload["part_size"]
                    .as_u64()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| UploadError::Temporary(format!("no part_size in {grant}")))?;
                let mut parts = started.parts.clone();
                for part in upload["parts"].as_array().into_iter().flatten() {
                    let number = part["part_number"].as_u64().unwrap_or(0) as u32;
                    if number == 0 || parts.contains_key(&number) {
                        continue;
                    }
                    let start = u64::from(number - 1) * part_size;
                    let bytes = read_range(file, name, start, part_size.min(started.size.saturating_sub(start)))?;
                    let response = self.http.put(url(&part["url"])?).body(bytes).send().await.map_err(temporary("uploading a part"))?;
                    if !response.status().is_success() {
                        return Err(UploadError::Temporary(format!("S3 answered part {number} with {}", response.status())));
                    }
                    let etag = response.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                    on_part(number, etag.clone()).map_err(|e| UploadError::Temporary(format!("remembering part {number}: {e:#}")))?;
                    parts.insert(number, etag);
                }
                let content_id = grant["content_id"].as_str().unwrap_or_default();
                let body = json!({
                    "upload_id": upload["upload_id"],
                    "parts": parts.iter().map(|(n, etag)| json!({"part_number": n, "etag": etag})).collect::<Vec<_>>(),
                });
                let response = self
                    .http
                    .post(format!("{}/v1/content/{content_id}/upload/complete", self.base))
                    .bearer_auth(&self.token)
                    .json(&body)
                    .send()
                    .await
                    .map_err(temporary("completing the upload"))?;
                if !response.status().is_success() {
                    return Err(api_error(response, "completing the upload").await);
                }
                Ok(())
            }
            other => Err(UploadError::Temporary(format!("the API answered with an upload method this agent does not know: {other:?}"))),
        }
    }
}

/// An HTTP client with limits fit for large parts on slow links.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().connect_timeout(Duration::from_secs(10)).timeout(Duration::from_secs(900)).build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_declared_by_its_name_and_extension() {
        let none = Metadata::default();
        let body = declaration("Launch day.MOV", 42, Some("default"), &none).unwrap();
        assert_eq!(
            body,
            json!({"title": "Launch day", "filename": "Launch day.MOV", "content_type": "video/quicktime", "size_bytes": 42, "profile": "default"})
        );
        let sidecar = Metadata { title: Some("Launch".into()), artist: Some("Ada".into()), ..Default::default() };
        let body = declaration("Launch day.MOV", 42, None, &sidecar).unwrap();
        assert_eq!((&body["title"], &body["metadata"]), (&json!("Launch"), &json!({"artist": "Ada"})));
        let UploadError::Refused { status, message, .. } = declaration("notes.txt", 1, None, &none).unwrap_err() else { panic!() };
        assert_eq!(status, 415);
        assert!(message.contains("notes.txt") && message.contains("video/mp4"), "{message}");
    }
}
