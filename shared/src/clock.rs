//! Wall-clock time as the rules use it: whole seconds since the Unix epoch, and RFC 3339 text.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Milliseconds since the epoch (EMF timestamps).
pub fn now_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// RFC 3339 in UTC with milliseconds (`2026-11-22T01:02:03.456Z`): sortable as text.
pub fn now_rfc3339() -> String {
    now_with_day().0
}

/// Now as RFC 3339 with milliseconds, and its day as `YYYY-MM-DD`, both UTC.
pub fn now_with_day() -> (String, String) {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(now.millisecond() as u32 * 1_000_000).unwrap_or(now);
    let time = now.format(&Rfc3339).unwrap_or_else(|_| now.unix_timestamp().to_string());
    let day = format!("{:04}-{:02}-{:02}", now.year(), now.month() as u8, now.day());
    (time, day)
}
