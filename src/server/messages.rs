//! Django's messages framework, session storage: the messages live in the session under
//! `_messages` as a JSON *string* (`[["__json_message",0,40,"Error wrong username/password"]]`),
//! so a Django app sharing the session store shows Sesame's messages and the other way round.
//!
//! Django's `MessageEncoder` writes `[marker, is_safe, level, message]` plus `extra_tags` when it
//! is not `None`; the decoder here accepts both forms and ignores entries it does not know.

use serde_json::Value;
use sesame::Session;

use crate::error::AppError;
use crate::model::FlashMessage;

/// Session key of Django's `SessionStorage`.
pub const MESSAGES_KEY: &str = "_messages";
const MESSAGE_MARKER: &str = "__json_message";

/// Django's `messages.ERROR`.
pub const ERROR: u8 = 40;
/// Django's `messages.SUCCESS`.
pub const SUCCESS: u8 = 25;
/// Django's `messages.INFO`.
pub const INFO: u8 = 20;

/// Queue a message for the next page this browser renders.
pub async fn add(session: &Session, level: u8, text: &str) -> Result<(), AppError> {
    let mut queued = match session.get_value(MESSAGES_KEY).await? {
        Some(Value::String(s)) => decode(&s),
        _ => Vec::new(),
    };
    queued.push(FlashMessage { level, text: text.to_string() });
    session.insert_value(MESSAGES_KEY, Value::String(encode(&queued))).await?;
    Ok(())
}

/// Take the queued messages (they are shown once). Touches nothing when there are none.
pub async fn take(session: &Session) -> Result<Vec<FlashMessage>, AppError> {
    if !session.contains_key(MESSAGES_KEY).await? {
        return Ok(Vec::new());
    }
    Ok(match session.remove(MESSAGES_KEY).await? {
        Some(Value::String(s)) => decode(&s),
        _ => Vec::new(),
    })
}

/// Encode as Django's `MessageEncoder` would (compact separators, `is_safe` 0, no extra tags).
pub fn encode(messages: &[FlashMessage]) -> String {
    let list: Vec<Value> = messages
        .iter()
        .map(|m| {
            Value::Array(vec![
                Value::from(MESSAGE_MARKER),
                Value::from(0),
                Value::from(m.level),
                Value::from(m.text.clone()),
            ])
        })
        .collect();
    Value::Array(list).to_string()
}

/// Decode Django's format; anything unreadable is dropped, never an error page.
pub fn decode(s: &str) -> Vec<FlashMessage> {
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(s) else {
        tracing::warn!("unreadable _messages in session; dropping them");
        return Vec::new();
    };
    list.into_iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else { return None };
            if parts.first().and_then(Value::as_str) != Some(MESSAGE_MARKER) {
                return None;
            }
            let level = parts.get(2)?.as_u64()?;
            let text = parts.get(3)?.as_str()?.to_string();
            Some(FlashMessage { level: u8::try_from(level).unwrap_or(ERROR), text })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_django() {
        let m = [FlashMessage { level: ERROR, text: "Error wrong username/password".into() }];
        assert_eq!(encode(&m), r#"[["__json_message",0,40,"Error wrong username/password"]]"#);
    }

    #[test]
    fn decodes_django_with_spaces_and_extra_tags() {
        let s = r#"[["__json_message", 0, 25, "Saved", ""], ["__json_message", 1, 40, "<b>x</b>"]]"#;
        let got = decode(s);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], FlashMessage { level: 25, text: "Saved".into() });
        assert_eq!(got[1].tag(), "error");
    }

    #[test]
    fn garbage_is_dropped() {
        assert!(decode("not json").is_empty());
        assert!(decode(r#"[["other",0,40,"x"]]"#).is_empty());
    }
}
