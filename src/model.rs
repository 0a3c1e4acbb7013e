//! Data shared by the server and the islands (serialized into island props and server function
//! results). Plain data, no server types.

use serde::{Deserialize, Serialize};

/// One key of the session, its value shown as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The session key (e.g. `name`, or an internal one such as `_session_expiry`).
    pub key: String,
    /// The value as JSON text.
    pub json: String,
}

/// What the session looks like now: the decoded data and its expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// Every key, in insertion order (internal keys included, as Django's `items()`).
    pub items: Vec<Item>,
    /// `get_expiry_age()`: seconds left.
    pub expiry_age: i64,
    /// `get_expiry_date()`, formatted for people (UTC).
    pub expiry_date: String,
    /// `get_expire_at_browser_close()`.
    pub browser_close: bool,
    /// The raw `_session_expiry` value, if set (`None` = the global policy).
    pub stored_expiry: Option<String>,
    /// Whether the session has been saved under a key (the browser has a `sessionid`).
    pub saved: bool,
}

// The panels render the table and the expiry facts as HTML strings (`inner_html`) rather than
// as view trees: one string builder is much less wasm than a reactive list of rows with
// buttons, and these parts are replaced wholesale after every change anyway. Everything from
// the session is escaped.
impl SessionView {
    /// The decoded data as an HTML table. Keys a visitor may change get a delete button that
    /// submits the form with id `delete_form` (a `form` attribute, so it works without
    /// JavaScript too).
    pub fn table_html(&self, delete_form: &str) -> String {
        if self.items.is_empty() {
            return r#"<p class="muted" data-testid="session-empty">The session is empty.</p>"#.to_string();
        }
        let mut html = String::from(
            r#"<table class="kv" data-testid="session-table"><thead><tr><th>key</th><th>value (JSON)</th><th></th></tr></thead><tbody>"#,
        );
        for item in &self.items {
            let (key, json) = (escape(&item.key), escape(&item.json));
            let internal = item.key.starts_with('_');
            html.push_str(&format!(
                r#"<tr{} data-key="{key}"><td><code>{key}</code></td><td><code>{json}</code></td><td>"#,
                if internal { r#" class="internal""# } else { "" },
            ));
            if !internal {
                html.push_str(&format!(
                    r#"<button type="submit" form="{delete_form}" name="key" value="{key}" class="button small danger" data-testid="delete-{key}">Delete</button>"#
                ));
            }
            html.push_str("</td></tr>");
        }
        html.push_str("</tbody></table>");
        html
    }

    /// `get_expiry_age`, `get_expiry_date`, `get_expire_at_browser_close`, `_session_expiry`.
    pub fn expiry_html(&self) -> String {
        format!(
            r#"<dl class="facts" data-testid="expiry-facts"><dt>get_expiry_age()</dt><dd data-testid="expiry-age">{} seconds</dd><dt>get_expiry_date()</dt><dd data-testid="expiry-date">{}</dd><dt>get_expire_at_browser_close()</dt><dd data-testid="browser-close">{}</dd><dt>_session_expiry</dt><dd data-testid="stored-expiry">{}</dd></dl>"#,
            self.expiry_age,
            escape(&self.expiry_date),
            if self.browser_close { "True" } else { "False" },
            escape(self.stored_expiry.as_deref().unwrap_or("(not set: global policy)")),
        )
    }
}

/// Escape text for HTML content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A flash message (Django's `messages` framework).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashMessage {
    /// Django's level: 10 debug, 20 info, 25 success, 30 warning, 40 error.
    pub level: u8,
    /// The text (never treated as HTML).
    pub text: String,
}

impl FlashMessage {
    /// Django's default level tag, used as the CSS class.
    pub fn tag(&self) -> &'static str {
        match self.level {
            0..=10 => "debug",
            11..=20 => "info",
            21..=25 => "success",
            26..=30 => "warning",
            _ => "error",
        }
    }
}

/// A panel's answer after a change: the new state and what happened. Sent as text
/// ([`PanelEncoding`]), not JSON: decoding it in the browser then costs no serde code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanelResult {
    /// The session after the change.
    pub view: SessionView,
    /// One sentence for the visitor.
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_round_trips() {
        use leptos::server_fn::{Decodes, Encodes};
        let view = SessionView {
            items: vec![
                Item { key: "a\tb%0A\n".into(), json: "\"x\\ty\"".into() },
                Item { key: "n".into(), json: "{\"k\":[1,2]}".into() },
            ],
            expiry_age: 300,
            expiry_date: "2026-01-01 00:00:00 UTC".into(),
            browser_close: true,
            stored_expiry: Some("300".into()),
            saved: true,
        };
        assert_eq!(SessionView::decode(&view.encode()), Some(view.clone()));
        let empty = SessionView::default();
        assert_eq!(SessionView::decode(&empty.encode()), Some(empty));
        let r = PanelResult { view, note: "Added “x”\n = 1%.".into() };
        let bytes = PanelEncoding::encode(&r).unwrap();
        assert_eq!(PanelEncoding::decode(bytes).unwrap(), r);
    }

    #[test]
    fn table_escapes_everything_from_the_session() {
        let view = SessionView {
            items: vec![Item { key: "<b>\"k\"".into(), json: "\"<script>alert(1)</script>\"".into() }],
            ..SessionView::default()
        };
        let html = view.table_html("f");
        assert!(!html.contains("<script>") && !html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;") && html.contains(r#"value="&lt;b&gt;&quot;k&quot;""#));
    }
}

// ---------------------------------------------------------------------------------------------
// A small text format for `SessionView` and `PanelResult`, used for the panel island's props and
// for `session_action`'s answer. Lines separated by `\n`, fields by `\t`; `%`, tab, CR and LF
// inside fields are percent-escaped. Hand-written because the serde_json code to decode these
// structs in the browser costs more wasm than this does.
//
// line 1: expiry_age, expiry_date, browser_close (0/1), saved (0/1), stored_expiry ("-" = none,
//         else "+" followed by the value)
// lines 2..: key, JSON value

fn esc(s: &str) -> String {
    s.replace('%', "%25").replace('\t', "%09").replace('\n', "%0A").replace('\r', "%0D")
}

fn unesc(s: &str) -> String {
    s.replace("%0D", "\r").replace("%0A", "\n").replace("%09", "\t").replace("%25", "%")
}

impl SessionView {
    /// Encode in the panel text format.
    pub fn encode(&self) -> String {
        let stored = match &self.stored_expiry {
            None => "-".to_string(),
            Some(v) => format!("+{}", esc(v)),
        };
        let mut out = format!(
            "{}\t{}\t{}\t{}\t{}",
            self.expiry_age,
            esc(&self.expiry_date),
            u8::from(self.browser_close),
            u8::from(self.saved),
            stored
        );
        for item in &self.items {
            out.push('\n');
            out.push_str(&esc(&item.key));
            out.push('\t');
            out.push_str(&esc(&item.json));
        }
        out
    }

    /// Decode the panel text format; `None` if it is not one.
    pub fn decode(text: &str) -> Option<SessionView> {
        let mut lines = text.split('\n');
        let mut head = lines.next()?.split('\t');
        let expiry_age = head.next()?.parse().ok()?;
        let expiry_date = unesc(head.next()?);
        let browser_close = head.next()? == "1";
        let saved = head.next()? == "1";
        let stored = head.next()?;
        let stored_expiry = stored.strip_prefix('+').map(unesc);
        let items = lines
            .map(|line| {
                let (key, json) = line.split_once('\t')?;
                Some(Item { key: unesc(key), json: unesc(json) })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(SessionView { items, expiry_age, expiry_date, browser_close, stored_expiry, saved })
    }
}

/// `session_action`'s output encoding: the note on the first line, then the [`SessionView`].
pub struct PanelEncoding;

/// Output codec for server functions answering a [`PanelResult`].
pub type PanelText = leptos::server_fn::codec::Post<PanelEncoding>;

impl leptos::server_fn::ContentType for PanelEncoding {
    const CONTENT_TYPE: &'static str = "text/plain; charset=utf-8";
}

impl leptos::server_fn::FormatType for PanelEncoding {
    const FORMAT_TYPE: leptos::server_fn::Format = leptos::server_fn::Format::Text;
}

impl leptos::server_fn::Encodes<PanelResult> for PanelEncoding {
    type Error = std::convert::Infallible;

    fn encode(r: &PanelResult) -> Result<leptos::server_fn::Bytes, Self::Error> {
        Ok(format!("{}\n{}", esc(&r.note), r.view.encode()).into())
    }
}

impl leptos::server_fn::Decodes<PanelResult> for PanelEncoding {
    type Error = &'static str;

    fn decode(bytes: leptos::server_fn::Bytes) -> Result<PanelResult, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(|_| "not UTF-8")?;
        let (note, view) = text.split_once('\n').ok_or("no session view")?;
        let view = SessionView::decode(view).ok_or("bad session view")?;
        Ok(PanelResult { view, note: unesc(note) })
    }
}

/// Plain-text answers for server functions that return `()` or `bool` (`""`, `"true"`,
/// `"false"`): no serde_json decoding in the browser for them.
pub struct PlainEncoding;

/// Output codec for server functions answering `()` or `bool`.
pub type PlainText = leptos::server_fn::codec::Post<PlainEncoding>;

impl leptos::server_fn::ContentType for PlainEncoding {
    const CONTENT_TYPE: &'static str = "text/plain; charset=utf-8";
}

impl leptos::server_fn::FormatType for PlainEncoding {
    const FORMAT_TYPE: leptos::server_fn::Format = leptos::server_fn::Format::Text;
}

impl leptos::server_fn::Encodes<bool> for PlainEncoding {
    type Error = std::convert::Infallible;

    fn encode(b: &bool) -> Result<leptos::server_fn::Bytes, Self::Error> {
        Ok(leptos::server_fn::Bytes::from_static(if *b { b"true" } else { b"false" }))
    }
}

impl leptos::server_fn::Decodes<bool> for PlainEncoding {
    type Error = &'static str;

    fn decode(bytes: leptos::server_fn::Bytes) -> Result<bool, Self::Error> {
        match &bytes[..] {
            b"true" => Ok(true),
            b"false" => Ok(false),
            _ => Err("expected true or false"),
        }
    }
}

impl leptos::server_fn::Encodes<()> for PlainEncoding {
    type Error = std::convert::Infallible;

    fn encode(_: &()) -> Result<leptos::server_fn::Bytes, Self::Error> {
        Ok(leptos::server_fn::Bytes::new())
    }
}

impl leptos::server_fn::Decodes<()> for PlainEncoding {
    type Error = std::convert::Infallible;

    fn decode(_: leptos::server_fn::Bytes) -> Result<(), Self::Error> {
        Ok(())
    }
}
