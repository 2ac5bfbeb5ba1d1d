//! The forms of an HTML page, as a browser would submit them.
//!
//! A small tag scanner rather than an HTML5 parser: the generator shares the machine with
//! the server it measures, and the pages it reads (the hub's picker, the demo IdP's and
//! `oidc-provider`'s interaction pages) are plain server-rendered forms.

/// A `<form>`: where it posts and its controls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Form {
    pub(crate) action: String,
    pub(crate) controls: Vec<Control>,
}

/// An `<input>` or `<button>` with a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Control {
    /// `button` for a `<button>`; an input's `type` (default `text`).
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) checked: bool,
}

impl Form {
    /// The first form whose action contains `needle`.
    pub(crate) fn find(page: &str, needle: &str) -> Option<Form> {
        forms(page).into_iter().find(|f| f.action.contains(needle))
    }

    /// What a browser submits: text and hidden inputs, checked radios and checkboxes, then
    /// `chosen` in place of any field of the same name (a submit button is one of them).
    pub(crate) fn fields(&self, chosen: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = self
            .controls
            .iter()
            .filter(|c| match c.kind.as_str() {
                "radio" | "checkbox" => c.checked,
                "submit" | "button" | "image" | "reset" => false,
                _ => true,
            })
            .filter(|c| !chosen.iter().any(|(name, _)| *name == c.name))
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect();
        fields.extend(
            chosen
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        fields
    }

    /// The values offered for `name` (radio choices, submit buttons).
    pub(crate) fn offers(&self, name: &str, value: &str) -> bool {
        self.controls
            .iter()
            .any(|c| c.name == name && c.value == value)
    }
}

/// Every form of `page`, in document order.
pub(crate) fn forms(page: &str) -> Vec<Form> {
    let mut forms = Vec::new();
    let mut current: Option<Form> = None;
    let mut rest = page;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if let Some(comment) = rest.strip_prefix("!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let (tag, after) = read_tag(rest);
        rest = after;
        match tag.name.as_str() {
            "form" => {
                if let Some(done) = current.take() {
                    forms.push(done);
                }
                current = Some(Form {
                    action: tag.attribute("action").unwrap_or_default(),
                    controls: Vec::new(),
                });
            }
            "/form" => {
                if let Some(done) = current.take() {
                    forms.push(done);
                }
            }
            "input" | "button" => {
                let (Some(form), Some(name)) = (current.as_mut(), tag.attribute("name")) else {
                    continue;
                };
                let kind = if tag.name == "button" {
                    "button".to_owned()
                } else {
                    tag.attribute("type")
                        .unwrap_or_else(|| "text".to_owned())
                        .to_ascii_lowercase()
                };
                form.controls.push(Control {
                    kind,
                    name,
                    value: tag.attribute("value").unwrap_or_default(),
                    checked: tag.attribute("checked").is_some(),
                });
            }
            "script" | "style" => {
                let close = format!("</{}", tag.name);
                rest = rest.find(&close).map_or("", |end| &rest[end..]);
            }
            _ => {}
        }
    }
    if let Some(done) = current {
        forms.push(done);
    }
    forms
}

struct Tag {
    /// Lower case; `/form` for an end tag.
    name: String,
    attributes: Vec<(String, String)>,
}

impl Tag {
    fn attribute(&self, name: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Reads a tag from just after its `<` up to and including its `>`; returns what follows.
fn read_tag(text: &str) -> (Tag, &str) {
    let name_end = text
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || (c == '/' && !text.starts_with('/')))
        .unwrap_or(text.len());
    let name = text[..name_end].to_ascii_lowercase();
    let mut rest = &text[name_end..];
    let mut attributes = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            break;
        }
        if let Some(after) = rest.strip_prefix('>') {
            rest = after;
            break;
        }
        let key_end = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let value = if let Some(after_eq) = rest.strip_prefix('=') {
            let after_eq = after_eq.trim_start();
            let (raw, after) = match after_eq.chars().next() {
                Some(quote @ ('"' | '\'')) => {
                    let body = &after_eq[1..];
                    match body.find(quote) {
                        Some(end) => (&body[..end], &body[end + 1..]),
                        None => (body, ""),
                    }
                }
                _ => {
                    let end = after_eq
                        .find(|c: char| c.is_ascii_whitespace() || c == '>')
                        .unwrap_or(after_eq.len());
                    (&after_eq[..end], &after_eq[end..])
                }
            };
            rest = after;
            decode_entities(raw)
        } else {
            String::new()
        };
        if key.is_empty() {
            // Not an attribute (stray character): skip it.
            let mut chars = rest.chars();
            chars.next();
            rest = chars.as_str();
            continue;
        }
        attributes.push((key, value));
    }
    (Tag { name, attributes }, rest)
}

/// Decodes the character references templates write in attribute values.
fn decode_entities(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, semi))
        });
        match decoded {
            Some((c, semi)) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PICKER: &str = r#"<!doctype html><html><head><link rel="stylesheet" href="/assets/hub.css">
<style>form > p { color: red }</style></head><body>
<!-- <form action="/commented-out"> -->
<form method="post" action="/journey/idp">
<input type="hidden" name="journey" value="j-1&amp;2">
<input type="hidden" name="csrf" value="c&#x2f;s&#47;rf">
<fieldset>
<label><input type="radio" name="idp" value="idp-main" checked> Main</label>
<label><input type="radio" name="idp" value="idp-basic" > Basic</label>
</fieldset>
<button type="submit">Continue</button>
</form>
<form method="post" action='/journey/cancel'><input type=hidden name=journey value=j-1><button type="submit">Cancel</button></form>
</body></html>"#;

    #[test]
    fn reads_the_pickers_forms() {
        let all = forms(PICKER);
        assert_eq!(all.len(), 2);
        let picker = Form::find(PICKER, "/journey/idp").unwrap();
        assert_eq!(
            picker.fields(&[("idp", "idp-basic")]),
            vec![
                ("journey".to_owned(), "j-1&2".to_owned()),
                ("csrf".to_owned(), "c/s/rf".to_owned()),
                ("idp".to_owned(), "idp-basic".to_owned()),
            ]
        );
        assert!(picker.offers("idp", "idp-main"));
        assert!(!picker.offers("idp", "idp-down"));
        let cancel = Form::find(PICKER, "cancel").unwrap();
        assert_eq!(cancel.fields(&[]), vec![("journey".into(), "j-1".into())]);
        assert!(Form::find(PICKER, "/commented-out").is_none());
    }

    #[test]
    fn reads_checked_radios_and_named_buttons() {
        let login = r#"<form method="post" action="http://127.0.0.1:8081/login">
<input type="hidden" name="request_id" value="abc">
<input type="radio" id="s-n" name="simulate" value="normal" checked>
<input type="radio" id="s-c" name="simulate" value="cancel">
<button type="submit" name="subject" value="alice">Log in as Alice</button>
</form>"#;
        let form = Form::find(login, "/login").unwrap();
        assert_eq!(form.action, "http://127.0.0.1:8081/login");
        assert!(form.offers("subject", "alice"));
        assert_eq!(
            form.fields(&[("subject", "alice")]),
            vec![
                ("request_id".to_owned(), "abc".to_owned()),
                ("simulate".to_owned(), "normal".to_owned()),
                ("subject".to_owned(), "alice".to_owned()),
            ]
        );
    }

    #[test]
    fn survives_truncated_markup() {
        assert!(forms("<form action=\"/x").len() == 1);
        assert!(forms("<").is_empty());
        assert!(forms("<input name=").is_empty());
        assert_eq!(
            decode_entities("a &bogus; & b &#xZZ;"),
            "a &bogus; & b &#xZZ;"
        );
    }
}
