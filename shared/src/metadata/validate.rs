//! The checks every metadata value passes, whoever provides it: length, characters, and the
//! shape of dates and language tags. A value is trimmed first; the error says what is wrong.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The most characters each field may have.
pub fn max_chars(field: &str) -> usize {
    match field {
        "description" => 5000,
        "language" => 35,
        "date" | "creation_time" => 40,
        _ => 200,
    }
}

/// Characters that reorder how text displays (bidirectional overrides and isolates): they make
/// a title read as something else in a listing, so no field may carry them.
fn reorders_text(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

fn is_date(text: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = text.split('-').collect();
    let shaped = match parts.as_slice() {
        [y] => digits(y, 4),
        [y, m] => digits(y, 4) && digits(m, 2) && (1..=12).contains(&m.parse::<u8>().unwrap_or(0)),
        [y, m, d] => {
            digits(y, 4)
                && digits(m, 2)
                && digits(d, 2)
                && time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
        }
        _ => false,
    };
    shaped || OffsetDateTime::parse(text, &Rfc3339).is_ok()
}

/// `en`, `pt-BR`, `zh-Hant-TW`, `eng`: a primary tag of 2 or 3 letters and subtags of 1 to 8
/// letters or digits.
fn is_language(text: &str) -> bool {
    let mut parts = text.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The value to store for `field`, or why it cannot be.
pub fn check(field: &str, value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{field}: must not be empty (leave it out instead)"));
    }
    let max = max_chars(field);
    if value.chars().count() > max {
        return Err(format!("{field}: must be at most {max} characters"));
    }
    let multiline = field == "description";
    if value.chars().any(|c| (c.is_control() && !(multiline && matches!(c, '\n' | '\t'))) || reorders_text(c)) {
        return Err(format!(
            "{field}: must not contain control characters{} or text-direction overrides",
            if multiline { " (other than line breaks and tabs)" } else { "" }
        ));
    }
    match field {
        "date" if !is_date(value) => Err(format!("{field}: {value:?} is not YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 time")),
        "creation_time" if OffsetDateTime::parse(value, &Rfc3339).is_err() => {
            Err(format!("{field}: {value:?} is not an RFC 3339 time such as 2026-11-23T10:00:00Z"))
        }
        "language" if !is_language(value) => Err(format!("{field}: {value:?} is not a language tag such as en, pt-BR or eng")),
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_trimmed_and_checked_by_field() {
        assert_eq!(check("title", "  Launch  ").unwrap(), "Launch");
        assert!(check("title", "").is_err());
        assert!(check("title", &"x".repeat(201)).unwrap_err().contains("at most 200"));
        assert!(check("title", "a\u{0}b").is_err());
        assert!(check("artist", "evil\u{202E}gnp.exe").unwrap_err().contains("direction"));
        assert!(check("description", "line one\nline two\tend").is_ok());
        assert!(check("description", "bell\u{7}").is_err());
        assert!(check("description", &"é".repeat(5000)).is_ok());
        for good in ["2024", "2024-02", "2024-02-29", "2024-02-29T10:00:00Z", "2024-02-29T10:00:00.123+02:00"] {
            assert!(check("date", good).is_ok(), "{good}");
        }
        for bad in ["24", "2024-13", "2023-02-29", "yesterday", "2024/02/01"] {
            assert!(check("date", bad).is_err(), "{bad}");
        }
        assert!(check("creation_time", "2024-05-01T12:00:00.000000Z").is_ok());
        assert!(check("creation_time", "2024-05-01").is_err());
        for good in ["en", "eng", "pt-BR", "zh-Hant-TW"] {
            assert!(check("language", good).is_ok(), "{good}");
        }
        for bad in ["english language", "e", "en_US", "12"] {
            assert!(check("language", bad).is_err(), "{bad}");
        }
    }
}
