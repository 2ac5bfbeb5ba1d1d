//! Event times as the log stores and searches them: normalised RFC 3339 UTC
//! text with milliseconds (comparing the text compares the instants), and the
//! head's time bookkeeping that turns a time range into a seq range.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};

use crate::error::StoreError;

/// `event.time` as stored in `audit_events.time` (UTC, milliseconds,
/// truncated), and as milliseconds since the epoch.
pub(crate) fn event_time(raw: &str) -> Result<(String, i64), String> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| format!("time is not RFC 3339 ({e})"))?
        .with_timezone(&Utc);
    Ok((
        t.to_rfc3339_opts(SecondsFormat::Millis, true),
        t.timestamp_millis(),
    ))
}

/// A stored (normalised) time in milliseconds since the epoch.
pub(crate) fn stored_millis(stored: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(stored)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// The stored form of `millis` (inverse of [`stored_millis`]); `None` past
/// year 9999, where the text would stop sorting as time.
fn millis_time(millis: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .filter(|t| (0..=9999).contains(&t.year()))
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A filter bound in the stored form, rounded up to the millisecond: stored
/// times have millisecond precision, so `t >= bound` and `t < bound` keep
/// their meaning for the exact instant.
pub(crate) fn bound_time(what: &str, raw: &str) -> Result<TimeBound, StoreError> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map_err(|e| StoreError::InvalidInput(format!("{what} is not RFC 3339 ({e})")))?
        .with_timezone(&Utc);
    let sub_milli = t.nanosecond() % 1_000_000;
    let t = if sub_milli == 0 {
        t
    } else {
        t + chrono::Duration::nanoseconds(i64::from(1_000_000 - sub_milli))
    };
    Ok(TimeBound {
        text: t.to_rfc3339_opts(SecondsFormat::Millis, true),
        millis: t.timestamp_millis(),
    })
}

/// A time filter bound, in the stored form and in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeBound {
    pub(crate) text: String,
    pub(crate) millis: i64,
}

impl TimeBound {
    /// The `max_time` every event before this bound stays under: the bound
    /// plus the largest lag of any event (see `audit_head.max_lag_ms`).
    /// `None` when that is beyond the representable range (no bound then).
    pub(crate) fn plus_lag(&self, lag_ms: i64) -> Option<String> {
        self.millis.checked_add(lag_ms).and_then(millis_time)
    }
}

/// `audit_head`'s time bookkeeping: the latest event time so far and the
/// largest lag of an event behind it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TimeMark {
    /// `(millis, stored text)` of the latest event time; `None` while empty.
    pub(crate) max: Option<(i64, String)>,
    pub(crate) max_lag_ms: i64,
}

impl TimeMark {
    /// From `audit_head.max_time` and `max_lag_ms`.
    pub(crate) fn stored(max_time: Option<String>, max_lag_ms: i64) -> Result<Self, StoreError> {
        let max = match max_time {
            None => None,
            Some(text) => Some((
                stored_millis(&text).ok_or_else(|| {
                    StoreError::Corrupt("audit_head max_time is not a time".into())
                })?,
                text,
            )),
        };
        Ok(Self { max, max_lag_ms })
    }

    /// Advances past an event at `millis` (stored text `time`); returns the
    /// event's `max_time`.
    pub(crate) fn advance(&mut self, millis: i64, time: &str) -> String {
        match &self.max {
            Some((max, _)) if *max >= millis => {
                self.max_lag_ms = self.max_lag_ms.max(max - millis);
            }
            _ => self.max = Some((millis, time.to_owned())),
        }
        self.max
            .as_ref()
            .map_or_else(|| time.to_owned(), |m| m.1.clone())
    }

    /// The latest event time, as stored; `None` while the log is empty.
    pub(crate) fn max_time(&self) -> Option<&str> {
        self.max.as_ref().map(|m| m.1.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_normalise_to_utc_millis() {
        assert_eq!(
            event_time("2026-11-22T10:00:00Z").unwrap().0,
            "2026-11-22T10:00:00.000Z"
        );
        let (text, millis) = event_time("2026-11-22T11:00:00.1234+01:00").unwrap();
        assert_eq!(text, "2026-11-22T10:00:00.123Z");
        assert_eq!(stored_millis(&text), Some(millis));
        let from = bound_time("from", "2026-11-22T10:00:00.1231Z").unwrap();
        assert_eq!(from.text, "2026-11-22T10:00:00.124Z");
        assert_eq!(from.plus_lag(2_000).unwrap(), "2026-11-22T10:00:02.124Z");
        assert_eq!(
            bound_time("to", "2026-11-22T10:00:00Z").unwrap().text,
            "2026-11-22T10:00:00.000Z"
        );
        let end = bound_time("to", "9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(end.plus_lag(1), None, "would not sort as text");
        assert!(bound_time("from", "yesterday").is_err());
    }

    #[test]
    fn time_mark_tracks_the_latest_time_and_the_largest_lag() {
        let mut mark = TimeMark::default();
        let t = |s: &str| event_time(s).unwrap();
        let mut step = |s: &str| {
            let (text, millis) = t(s);
            mark.advance(millis, &text)
        };
        assert_eq!(step("2026-01-01T00:00:10Z"), "2026-01-01T00:00:10.000Z");
        assert_eq!(step("2026-01-01T00:00:07Z"), "2026-01-01T00:00:10.000Z");
        assert_eq!(step("2026-01-01T00:00:12Z"), "2026-01-01T00:00:12.000Z");
        assert_eq!(step("2026-01-01T00:00:11.5Z"), "2026-01-01T00:00:12.000Z");
        assert_eq!(mark.max_lag_ms, 3_000);
        assert_eq!(mark.max_time(), Some("2026-01-01T00:00:12.000Z"));
    }
}
