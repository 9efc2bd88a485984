//! A JSON file beside a media file, with the same base name (`film.mp4` and `film.json`), as
//! watch folders and AWS's VOD solution take them: `{"title","description","artist","date",
//! "language","creation_time"}`. Other keys are reported and ignored, so a sidecar written for
//! another tool still lends what it shares.

use serde_json::Value;

use super::validate::check;
use super::{MetadataProvider, Provided, Source, FIELDS};

/// The largest sidecar read; anything bigger is not a description of one file.
pub const MAX_BYTES: usize = 64 * 1024;

pub struct Sidecar {
    pub bytes: Vec<u8>,
}

impl Sidecar {
    /// The sidecar of `media`, if there is one beside it: `NAME.json` for `NAME.EXT`. Found by
    /// its own name, not followed: a link in its place is found too, so that the reader can
    /// refuse it (and say so) rather than read what it points at.
    pub fn beside(media: &std::path::Path) -> Option<std::path::PathBuf> {
        let path = media.with_extension("json");
        (path != media && std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir())).then_some(path)
    }
}

impl MetadataProvider for Sidecar {
    fn source(&self) -> Source {
        Source::Sidecar
    }

    fn provide(&self) -> Provided {
        let mut provided = Provided::default();
        if self.bytes.len() > MAX_BYTES {
            provided.ignored.push(format!("the sidecar is {} bytes, more than {MAX_BYTES}", self.bytes.len()));
            return provided;
        }
        let object = match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                provided.ignored.push("the sidecar is not a JSON object".into());
                return provided;
            }
            Err(e) => {
                provided.ignored.push(format!("the sidecar is not JSON: {e}"));
                return provided;
            }
        };
        for (key, value) in object {
            let Some(field) = FIELDS.iter().find(|f| **f == key) else {
                provided.ignored.push(format!("{key}: not a metadata field ({})", FIELDS.join(", ")));
                continue;
            };
            match value.as_str().map(|v| check(field, v)) {
                Some(Ok(v)) => provided.metadata.set(field, v),
                Some(Err(e)) => provided.ignored.push(e),
                None => provided.ignored.push(format!("{key}: must be a string")),
            }
        }
        provided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecar_lends_the_fields_it_has_right() {
        let sidecar = Sidecar { bytes: br#"{"title":"Keynote","artist":"Ada","language":"not a tag","duration":12,"date":2024}"#.to_vec() };
        let provided = sidecar.provide();
        assert_eq!(provided.metadata.title.as_deref(), Some("Keynote"));
        assert_eq!(provided.metadata.artist.as_deref(), Some("Ada"));
        assert_eq!(provided.metadata.language, None);
        assert_eq!(provided.ignored.len(), 3, "{:?}", provided.ignored);
        assert!(Sidecar { bytes: b"[1]".to_vec() }.provide().ignored[0].contains("not a JSON object"));
        let huge = format!("{{\"title\":\"{}\"}}", "x".repeat(MAX_BYTES));
        assert!(Sidecar { bytes: huge.into_bytes() }.provide().metadata.is_empty());
    }
}
