//! The time as the hub's protocol logic reads it: Unix seconds, taken once at the edge of
//! each request and passed in where the logic can take it as an argument.

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `secs` (Unix seconds) as a UTC time, for comparing with the registry's dates.
pub(crate) fn utc(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
}
