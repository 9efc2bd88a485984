//! The source file's own tags, as FFmpeg reads them from its container (MP4/QuickTime atoms,
//! Matroska tags, ID3, RIFF INFO). The file is an upload, so hostile: only known keys are read,
//! every value passes the same checks as the creator's, and what fails is dropped, never fatal.

use std::collections::BTreeMap;

use super::validate::check;
use super::{MetadataProvider, Provided, Source};

/// FFmpeg's tag keys (lower-cased) for each field, best first.
const KEYS: [(&str, &[&str]); 6] = [
    ("title", &["title"]),
    ("description", &["description", "synopsis", "comment"]),
    ("artist", &["artist", "album_artist", "author", "composer"]),
    ("date", &["date", "year", "date_released"]),
    ("language", &["language"]),
    ("creation_time", &["creation_time"]),
];

/// At most this many tags are looked at, and each value at most this long, before any check.
pub const MAX_TAGS: usize = 64;
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

pub struct ContainerTags<'a> {
    /// Keys as FFmpeg names them (any case).
    pub tags: &'a BTreeMap<String, String>,
}

impl MetadataProvider for ContainerTags<'_> {
    fn source(&self) -> Source {
        Source::Container
    }

    fn provide(&self) -> Provided {
        let tags: BTreeMap<String, &str> = self
            .tags
            .iter()
            .take(MAX_TAGS)
            .filter(|(_, v)| v.len() <= MAX_VALUE_BYTES)
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
            .collect();
        let mut provided = Provided::default();
        for (field, keys) in KEYS {
            let Some(value) = keys.iter().find_map(|k| tags.get(*k)) else { continue };
            match check(field, value) {
                Ok(v) => provided.metadata.set(field, v),
                Err(e) => provided.ignored.push(format!("container tag {e}")),
            }
        }
        provided
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_tags_are_read_and_hostile_ones_dropped() {
        let tags = BTreeMap::from([
            ("TITLE".to_string(), "Camera roll".to_string()),
            ("album_artist".to_string(), "Ada".to_string()),
            ("comment".to_string(), "x".repeat(6000)),
            ("creation_time".to_string(), "2024-05-01T12:00:00.000000Z".to_string()),
            ("language".to_string(), "und\u{202E}".to_string()),
            ("encoder".to_string(), "Lavf61".to_string()),
        ]);
        let provided = ContainerTags { tags: &tags }.provide();
        assert_eq!(provided.metadata.title.as_deref(), Some("Camera roll"));
        assert_eq!(provided.metadata.artist.as_deref(), Some("Ada"));
        assert_eq!(provided.metadata.creation_time.as_deref(), Some("2024-05-01T12:00:00.000000Z"));
        assert_eq!((provided.metadata.description.as_ref(), provided.metadata.language.as_ref()), (None, None));
        assert_eq!(provided.ignored.len(), 2, "{:?}", provided.ignored);
    }
}
