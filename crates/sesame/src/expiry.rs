//! Django's expiry rules (`set_expiry`, `get_expiry_age`, `get_expiry_date`,
//! `get_expire_at_browser_close`), over the `_session_expiry` key of the session map.
//!
//! The key holds an integer (seconds of inactivity; `0` = until the browser closes) or, since
//! Django 4, an ISO-8601 string for a fixed date. Its absence means the global policy:
//! `SESSION_COOKIE_AGE` and `SESSION_EXPIRE_AT_BROWSER_CLOSE`.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

use crate::Data;

/// The key Django keeps a per-session expiry under.
pub const EXPIRY_KEY: &str = "_session_expiry";

/// An argument to [`Session::set_expiry`](crate::Session::set_expiry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Expire after this many seconds of inactivity; `0` means at browser close.
    Seconds(i64),
    /// Expire at this moment (stored as an ISO string, as Django 5 does).
    At(DateTime<Utc>),
    /// Expire this long from now (Django's `timedelta`: becomes a fixed date).
    In(std::time::Duration),
    /// Expire when the browser closes (`set_expiry(0)`).
    BrowserClose,
    /// Back to the global policy (`set_expiry(None)`).
    Default,
}

/// The JSON value `set_expiry` stores, or `None` to remove the key.
pub(crate) fn stored_value(expiry: Expiry, now: DateTime<Utc>) -> Option<Value> {
    match expiry {
        Expiry::Seconds(s) => Some(Value::from(s)),
        Expiry::BrowserClose => Some(Value::from(0)),
        Expiry::At(at) => Some(Value::String(iso_format(at))),
        Expiry::In(d) => {
            let delta = TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
            Some(Value::String(iso_format(now.checked_add_signed(delta).unwrap_or(now))))
        }
        Expiry::Default => None,
    }
}

/// Python's `datetime.isoformat()` for an aware UTC datetime: microseconds only when non-zero.
pub fn iso_format(dt: DateTime<Utc>) -> String {
    if dt.timestamp_subsec_micros() == 0 {
        dt.to_rfc3339_opts(SecondsFormat::Secs, false)
    } else {
        dt.to_rfc3339_opts(SecondsFormat::Micros, false)
    }
}

/// Parse what Python's `datetime.fromisoformat` accepts in practice; a naive value is UTC.
pub fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%:z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(naive.and_utc());
        }
    }
    None
}

/// What the stored value means.
enum Stored {
    Absent,
    Seconds(i64),
    At(DateTime<Utc>),
}

fn stored(data: &Data) -> Stored {
    match data.get(EXPIRY_KEY) {
        None | Some(Value::Null) => Stored::Absent,
        Some(Value::Number(n)) => match n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)) {
            Some(s) => Stored::Seconds(s),
            None => Stored::Absent,
        },
        Some(Value::String(s)) => match parse_iso(s) {
            Some(at) => Stored::At(at),
            None => {
                tracing::warn!(value = %s, "ignoring unparseable _session_expiry");
                Stored::Absent
            }
        },
        Some(_) => Stored::Absent,
    }
}

/// `get_expiry_age`: seconds until expiry, counted from `now`.
pub(crate) fn age(data: &Data, cookie_age: i64, now: DateTime<Utc>) -> i64 {
    match stored(data) {
        // Django: `if not expiry` covers both a missing key and 0.
        Stored::Absent | Stored::Seconds(0) => cookie_age,
        Stored::Seconds(s) => s,
        // timedelta.days * 86400 + timedelta.seconds: whole seconds, rounded down.
        Stored::At(at) => {
            (at - now).num_microseconds().map_or_else(|| (at - now).num_seconds(), |us| us.div_euclid(1_000_000))
        }
    }
}

/// `get_expiry_date`: the moment the session expires, counted from `now`.
pub(crate) fn date(data: &Data, cookie_age: i64, now: DateTime<Utc>) -> DateTime<Utc> {
    let seconds = match stored(data) {
        Stored::At(at) => return at,
        Stored::Absent | Stored::Seconds(0) => cookie_age,
        Stored::Seconds(s) => s,
    };
    now.checked_add_signed(TimeDelta::seconds(seconds)).unwrap_or(now)
}

/// `get_expire_at_browser_close`.
pub(crate) fn at_browser_close(data: &Data, global: bool) -> bool {
    match data.get(EXPIRY_KEY) {
        None | Some(Value::Null) => global,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
    }

    fn with(v: Value) -> Data {
        let mut d = Data::new();
        d.insert(EXPIRY_KEY.into(), v);
        d
    }

    #[test]
    fn global_policy_when_absent() {
        let d = Data::new();
        assert_eq!(age(&d, 1_209_600, now()), 1_209_600);
        assert_eq!(date(&d, 100, now()), now() + TimeDelta::seconds(100));
        assert!(!at_browser_close(&d, false));
        assert!(at_browser_close(&d, true));
    }

    #[test]
    fn seconds_and_zero() {
        assert_eq!(age(&with(json!(300)), 1000, now()), 300);
        assert_eq!(age(&with(json!(0)), 1000, now()), 1000);
        assert!(at_browser_close(&with(json!(0)), false));
        assert!(!at_browser_close(&with(json!(300)), true));
    }

    #[test]
    fn fixed_dates_round_trip_as_python_iso_strings() {
        let at = now() + TimeDelta::seconds(90) + TimeDelta::microseconds(500);
        let v = stored_value(Expiry::At(at), now()).unwrap();
        assert_eq!(v, json!("2026-11-26T12:01:30.000500+00:00"));
        let d = with(v);
        assert_eq!(age(&d, 1000, now()), 90);
        assert_eq!(date(&d, 1000, now()), at);
        assert_eq!(iso_format(now()), "2026-11-26T12:00:00+00:00");
        assert_eq!(parse_iso("2026-11-26T12:00:00"), Some(now()));
        assert_eq!(parse_iso("2026-11-26 12:00:00.000000+00:00"), Some(now()));
    }

    #[test]
    fn past_dates_give_negative_ages_rounded_down() {
        let at = now() - TimeDelta::milliseconds(1500);
        assert_eq!(age(&with(json!(iso_format(at))), 1000, now()), -2);
    }

    #[test]
    fn durations_become_dates() {
        let v = stored_value(Expiry::In(std::time::Duration::from_secs(60)), now()).unwrap();
        assert_eq!(v, json!("2026-11-26T12:01:00+00:00"));
        assert_eq!(stored_value(Expiry::Default, now()), None);
        assert_eq!(stored_value(Expiry::BrowserClose, now()), Some(json!(0)));
    }
}
