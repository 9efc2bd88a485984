//! What describes a title beyond its media: title, description, artist, date, language, creation
//! time. Several providers know some of it; each is one file implementing [`MetadataProvider`]:
//!
//! - [`request`]: what the creator sent with the upload (`"metadata"`), checked strictly (a bad
//!   value is a 400);
//! - [`sidecar`]: a JSON file beside a media file (`film.mp4` + `film.json`), as watch folders
//!   and AWS's VOD solution take them;
//! - [`feed`]: a feed item's title, description and date, as feed import reads them;
//! - [`container`]: the source's own tags (MP4/QuickTime, Matroska, ID3…), read by the transcoder.
//!   The file is hostile: a value that fails the checks is dropped, never fatal.
//!
//! [`merge`] takes each field from the first provider in [`PRECEDENCE`] that has it, and
//! remembers which one that was; the status API shows both.

pub mod container;
pub mod feed;
pub mod request;
pub mod sidecar;
pub mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The descriptive fields, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artist: Option<String>,
    /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or RFC 3339: when the work was made or released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// A BCP 47 tag (`en`, `pt-BR`) or an ISO 639-2 code (`eng`), as containers carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// RFC 3339: when the recording was made, as cameras stamp it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<String>,
}

/// The fields by name, in one order, for checks and merges.
pub const FIELDS: [&str; 6] = ["title", "description", "artist", "date", "language", "creation_time"];

impl Metadata {
    pub fn get(&self, field: &str) -> Option<&String> {
        match field {
            "title" => self.title.as_ref(),
            "description" => self.description.as_ref(),
            "artist" => self.artist.as_ref(),
            "date" => self.date.as_ref(),
            "language" => self.language.as_ref(),
            "creation_time" => self.creation_time.as_ref(),
            _ => None,
        }
    }

    fn slot(&mut self, field: &str) -> Option<&mut Option<String>> {
        match field {
            "title" => Some(&mut self.title),
            "description" => Some(&mut self.description),
            "artist" => Some(&mut self.artist),
            "date" => Some(&mut self.date),
            "language" => Some(&mut self.language),
            "creation_time" => Some(&mut self.creation_time),
            _ => None,
        }
    }

    pub fn set(&mut self, field: &str, value: String) {
        if let Some(slot) = self.slot(field) {
            *slot = Some(value);
        }
    }

    pub fn is_empty(&self) -> bool {
        FIELDS.iter().all(|f| self.get(f).is_none())
    }
}

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Request,
    Sidecar,
    Feed,
    Container,
}

/// Whose word counts when two providers disagree, first first: the creator's explicit request,
/// then a sidecar written for this file, then the feed item it came from, then the file's tags.
pub const PRECEDENCE: [Source; 4] = [Source::Request, Source::Sidecar, Source::Feed, Source::Container];

/// What one provider knows, checked; `ignored` names values it had that failed the checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provided {
    pub metadata: Metadata,
    pub ignored: Vec<String>,
}

/// A source of metadata. A new provider is one file implementing this.
pub trait MetadataProvider {
    fn source(&self) -> Source;
    fn provide(&self) -> Provided;
}

/// The merged metadata of a title and where each field came from; stored on the content record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Described {
    pub values: Metadata,
    pub sources: BTreeMap<String, Source>,
}

impl Described {
    /// Only what the request said (before the transcoder has read the file).
    pub fn from_request(metadata: Metadata) -> Self {
        merge([(Source::Request, metadata)])
    }

    /// The layers this record was described by, so a later merge can add one.
    pub fn layers(&self) -> Vec<(Source, Metadata)> {
        let mut layers: BTreeMap<Source, Metadata> = BTreeMap::new();
        for (field, source) in &self.sources {
            if let Some(value) = self.values.get(field) {
                layers.entry(*source).or_default().set(field, value.clone());
            }
        }
        layers.into_iter().collect()
    }
}

/// Each field from the first layer in [`PRECEDENCE`] that has it.
pub fn merge(layers: impl IntoIterator<Item = (Source, Metadata)>) -> Described {
    let mut layers: Vec<(Source, Metadata)> = layers.into_iter().collect();
    layers.sort_by_key(|(source, _)| PRECEDENCE.iter().position(|s| s == source));
    let mut described = Described::default();
    for field in FIELDS {
        if let Some((source, value)) = layers.iter().find_map(|(s, m)| m.get(field).map(|v| (*s, v.clone()))) {
            described.values.set(field, value);
            described.sources.insert(field.to_string(), source);
        }
    }
    described
}

/// Merges what `providers` say.
pub fn describe(providers: &[&dyn MetadataProvider]) -> (Described, Vec<String>) {
    let mut ignored = Vec::new();
    let layers: Vec<(Source, Metadata)> = providers
        .iter()
        .map(|p| {
            let provided = p.provide();
            ignored.extend(provided.ignored);
            (p.source(), provided.metadata)
        })
        .collect();
    (merge(layers), ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(field: &str, value: &str) -> Metadata {
        let mut m = Metadata::default();
        m.set(field, value.into());
        m
    }

    #[test]
    fn each_field_comes_from_the_highest_provider_that_has_it() {
        let mut container = with("artist", "Tagged Artist");
        container.set("title", "tagged title".into());
        container.set("language", "eng".into());
        let request = with("title", "Launch");
        let sidecar = with("artist", "Sidecar Artist");
        let merged = merge([(Source::Container, container), (Source::Request, request), (Source::Sidecar, sidecar)]);
        assert_eq!(merged.values.title.as_deref(), Some("Launch"));
        assert_eq!(merged.values.artist.as_deref(), Some("Sidecar Artist"));
        assert_eq!(merged.values.language.as_deref(), Some("eng"));
        assert_eq!(merged.sources["title"], Source::Request);
        assert_eq!(merged.sources["artist"], Source::Sidecar);
        assert_eq!(merged.sources["language"], Source::Container);
        assert!(!merged.sources.contains_key("description"));
        // Adding a layer later keeps what the earlier ones said.
        let again = merge(merged.layers().into_iter().chain([(Source::Container, with("artist", "x"))]));
        assert_eq!(again, merged);
    }
}
