//! A feed item's own description (RSS 2.0, Atom, Media RSS), as feed import reads it: its title,
//! its summary (or Media RSS description) and its publication date. Feeds are other people's
//! documents: a value that fails the checks is reported and left out; feed import refuses an item
//! whose title does not pass, since a title is what a creator finds it by.

use super::validate::check;
use super::{Metadata, MetadataProvider, Provided, Source};

/// What a feed item says, as parsed (feed-rs's entry, reduced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedItem {
    pub title: Option<String>,
    pub description: Option<String>,
    /// RFC 3339.
    pub published: Option<String>,
}

/// Collapses runs of white space (feeds wrap titles over lines) and trims.
fn tidy(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl MetadataProvider for FeedItem {
    fn source(&self) -> Source {
        Source::Feed
    }

    fn provide(&self) -> Provided {
        let mut provided = Provided::default();
        let fields = [
            ("title", self.title.as_deref().map(tidy)),
            // A description keeps its line breaks; only the ends are trimmed.
            ("description", self.description.as_deref().map(|d| d.trim().to_string())),
            ("date", self.published.clone()),
        ];
        for (field, value) in fields {
            let Some(value) = value.filter(|v| !v.trim().is_empty()) else { continue };
            match check(field, &value) {
                Ok(checked) => provided.metadata.set(field, checked),
                Err(e) => provided.ignored.push(e),
            }
        }
        provided
    }
}

impl FeedItem {
    /// The item's metadata, or why it cannot be imported (its title fails the checks or is
    /// missing); other fields that fail are left out.
    pub fn checked(&self) -> Result<(Metadata, Vec<String>), String> {
        let provided = self.provide();
        if provided.metadata.title.is_none() {
            let why = provided.ignored.iter().find(|e| e.starts_with("title")).cloned();
            return Err(why.unwrap_or_else(|| "the item has no title".to_string()));
        }
        Ok((provided.metadata, provided.ignored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_lends_its_title_description_and_date_and_a_bad_title_refuses_it() {
        let item = FeedItem {
            title: Some("  Episode 12:\n  the   launch ".into()),
            description: Some("Line one\nLine two".into()),
            published: Some("2026-11-20T08:00:00+00:00".into()),
        };
        let (metadata, ignored) = item.checked().unwrap();
        assert_eq!(metadata.title.as_deref(), Some("Episode 12: the launch"));
        assert_eq!(metadata.description.as_deref(), Some("Line one\nLine two"));
        assert_eq!(metadata.date.as_deref(), Some("2026-11-20T08:00:00+00:00"));
        assert!(ignored.is_empty());
        assert_eq!(item.source(), Source::Feed);

        let long = FeedItem { title: Some("x".repeat(201)), ..Default::default() };
        assert!(long.checked().unwrap_err().starts_with("title"), "{:?}", long.checked());
        let spoofed = FeedItem { title: Some("evil\u{202E}txt.exe".into()), ..Default::default() };
        assert!(spoofed.checked().is_err());
        assert_eq!(FeedItem::default().checked().unwrap_err(), "the item has no title");
        let bad_date = FeedItem { title: Some("Ok".into()), published: Some("last week".into()), ..Default::default() };
        let (metadata, ignored) = bad_date.checked().unwrap();
        assert_eq!((metadata.date, ignored.len()), (None, 1));
    }
}
