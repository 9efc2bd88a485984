//! Wall-clock time as the rules use it: whole seconds since the Unix epoch.

pub fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// RFC 3339 in UTC with milliseconds (`2026-11-22T01:02:03.456Z`): sortable as text.
pub fn now_rfc3339() -> String {
    crate::audit::ledger::now_rfc3339_millis().0
}
