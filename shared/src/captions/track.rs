//! What a caption track declares, checked before anything is stored: every value here ends up
//! quoted in a master playlist (`LANGUAGE="…"`, `NAME="…"`), so nothing that could break out of
//! an HLS quoted string (a `"`, a line break) is accepted.

use crate::access::AccessError;
use crate::ids::TrackName;

/// At most this many caption tracks per title.
pub const MAX_TRACKS: usize = 32;
pub const MAX_LABEL_CHARS: usize = 64;

/// The query of `PUT /v1/content/{id}/captions/{track}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackRequest {
    pub language: Option<String>,
    pub label: Option<String>,
    pub default: bool,
    pub forced: bool,
}

/// A declared track, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSettings {
    pub language: String,
    pub label: String,
    pub default: bool,
    pub forced: bool,
}

/// A BCP 47 tag in its common shape: a 2–3 letter language and up to four subtags
/// (`en`, `pt-BR`, `zh-Hant-TW`, `es-419`).
pub fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let language = parts.next().unwrap_or_default();
    let subtags: Vec<&str> = parts.collect();
    tag.len() <= 35
        && (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_alphabetic())
        && subtags.len() <= 4
        && subtags.iter().all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl TrackRequest {
    /// Reads a query's `language`, `label`, `default` and `forced`; anything else is refused.
    pub fn from_query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<TrackRequest, AccessError> {
        let flag = |name: &str, value: &str| match value {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(AccessError::BadRequest(format!("{name}: {value:?} is not true or false"))),
        };
        let mut request = TrackRequest::default();
        for (name, value) in pairs {
            match name {
                "language" => request.language = Some(value.to_string()),
                "label" => request.label = Some(value.to_string()),
                "default" => request.default = flag(name, value)?,
                "forced" => request.forced = flag(name, value)?,
                other => {
                    let shown: String = other.chars().take(40).collect();
                    return Err(AccessError::BadRequest(format!(
                        "unknown query parameter {shown:?}; a caption track takes language, label, default and forced"
                    )));
                }
            }
        }
        Ok(request)
    }

    /// The language defaults to the track's name when that is a language tag (`en`), and the
    /// label to the language.
    pub fn settle(&self, track: &TrackName) -> Result<TrackSettings, AccessError> {
        let language = match &self.language {
            Some(l) => l.clone(),
            None if is_language_tag(track.as_str()) => track.to_string(),
            None => {
                return Err(AccessError::BadRequest(format!(
                    "language: missing, and the track name {track:?} is not a language tag; add ?language=en (BCP 47)"
                )))
            }
        };
        if !is_language_tag(&language) {
            let shown: String = language.chars().take(40).collect();
            return Err(AccessError::BadRequest(format!("language: {shown:?} is not a BCP 47 language tag like en, pt-BR or es-419")));
        }
        let label = self.label.clone().unwrap_or_else(|| language.clone());
        let chars = label.chars().count();
        if label.trim().is_empty() || chars > MAX_LABEL_CHARS {
            return Err(AccessError::BadRequest(format!("label: must be 1 to {MAX_LABEL_CHARS} characters, got {chars}")));
        }
        if let Some(c) = label.chars().find(|c| c.is_control() || *c == '"') {
            return Err(AccessError::BadRequest(format!("label: may not contain {c:?} (quotes and control characters)")));
        }
        Ok(TrackSettings { language, label, default: self.default, forced: self.forced })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(name: &str) -> TrackName {
        TrackName::parse(name).unwrap()
    }

    #[test]
    fn language_tags() {
        for good in ["en", "pt-BR", "zh-Hant-TW", "es-419", "deu"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in ["", "e", "english", "en_US", "en-", "en-toolongsubtag", "en\"x", "1a"] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn defaults_come_from_the_track_name() {
        let settled = TrackRequest::default().settle(&track("fr")).unwrap();
        assert_eq!(settled, TrackSettings { language: "fr".into(), label: "fr".into(), default: false, forced: false });
        let err = TrackRequest::default().settle(&track("main_track")).unwrap_err();
        assert!(err.to_string().contains("add ?language=en"), "{err}");
    }

    #[test]
    fn query_is_read_strictly() {
        let request = TrackRequest::from_query([("language", "de"), ("label", "Deutsch (SDH)"), ("default", "true")]).unwrap();
        assert_eq!(request.settle(&track("de-sdh")).unwrap().label, "Deutsch (SDH)");
        assert!(TrackRequest::from_query([("default", "maybe")]).unwrap_err().to_string().contains("not true or false"));
        assert!(TrackRequest::from_query([("lang", "de")]).unwrap_err().to_string().contains("unknown query parameter \"lang\""));
    }

    #[test]
    fn labels_cannot_break_a_playlist() {
        for bad in ["a\"b", "line\nbreak", "", &"x".repeat(65)] {
            let request = TrackRequest { label: Some(bad.to_string()), ..Default::default() };
            assert!(request.settle(&track("en")).is_err(), "{bad:?}");
        }
        let request = TrackRequest { label: Some("Français, sous-titres".into()), ..Default::default() };
        assert!(request.settle(&track("fr")).is_ok());
    }
}
