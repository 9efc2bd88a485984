//! The creator's own word: the `"metadata"` object of `POST /v1/content/upload`, beside its
//! `"title"`. Checked strictly: the upload is refused (400) naming the first bad field.

use super::validate::check;
use super::{Metadata, MetadataProvider, Provided, Source, FIELDS};

pub struct RequestMetadata<'a> {
    pub title: &'a str,
    pub metadata: Option<&'a Metadata>,
}

impl RequestMetadata<'_> {
    /// Every value checked, or the first error (`metadata.language: …`).
    pub fn checked(&self) -> Result<Metadata, String> {
        let mut checked = Metadata::default();
        if let Some(given) = self.metadata {
            for field in FIELDS {
                if let Some(value) = given.get(field) {
                    checked.set(field, check(field, value).map_err(|e| format!("metadata.{e}"))?);
                }
            }
        }
        // The request's own title is its title; `metadata.title` may not say otherwise.
        checked.title = Some(check("title", self.title)?);
        Ok(checked)
    }
}

impl MetadataProvider for RequestMetadata<'_> {
    fn source(&self) -> Source {
        Source::Request
    }

    fn provide(&self) -> Provided {
        match self.checked() {
            Ok(metadata) => Provided { metadata, ignored: Vec::new() },
            Err(e) => Provided { metadata: Metadata::default(), ignored: vec![e] },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_checked_field_by_field_and_its_title_wins() {
        let given = Metadata { title: Some("Other".into()), language: Some(" pt-BR ".into()), ..Default::default() };
        let checked = RequestMetadata { title: "Launch", metadata: Some(&given) }.checked().unwrap();
        assert_eq!((checked.title.as_deref(), checked.language.as_deref()), (Some("Launch"), Some("pt-BR")));
        let bad = Metadata { date: Some("last week".into()), ..Default::default() };
        let err = RequestMetadata { title: "Launch", metadata: Some(&bad) }.checked().unwrap_err();
        assert!(err.starts_with("metadata.date:"), "{err}");
    }
}
