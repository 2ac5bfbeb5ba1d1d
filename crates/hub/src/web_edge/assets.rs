//! The pages' static files, built into the binary: GOV.UK Frontend's precompiled CSS,
//! JavaScript, fonts and images (`assets/govuk-frontend`, vendored by
//! `scripts/update-govuk-frontend.sh`) and the hub's own few (`assets/hub`).
//!
//! Pages link each file with its content hash (`?v=`), so browsers may keep it for a year
//! and still fetch the new one after a deploy; fonts carry their hash in their name.

use std::collections::HashMap;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

#[derive(rust_embed::Embed)]
#[folder = "assets/"]
struct Files;

/// A file as served: where it is embedded, its type and its content hash.
#[derive(Debug)]
struct Asset {
    embedded: String,
    content_type: &'static str,
    /// The first 16 hex digits of its SHA-256.
    version: String,
}

/// `/assets/<name>` for every file: GOV.UK Frontend's at the paths its CSS names
/// (`/assets/fonts/..`, `/assets/images/..`), the hub's beside them.
fn assets() -> &'static HashMap<String, Asset> {
    static ASSETS: OnceLock<HashMap<String, Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        Files::iter()
            .filter_map(|embedded| {
                let name = public_name(&embedded)?;
                let file = Files::get(&embedded)?;
                let hash = file.metadata.sha256_hash();
                let version = hash[..8].iter().map(|b| format!("{b:02x}")).collect();
                let content_type = content_type(&name)?;
                let embedded = embedded.into_owned();
                Some((
                    name,
                    Asset {
                        embedded,
                        content_type,
                        version,
                    },
                ))
            })
            .collect()
    })
}

/// The public name of an embedded file, or `None` for files not served (licence notes).
fn public_name(embedded: &str) -> Option<String> {
    if let Some(rest) = embedded.strip_prefix("govuk-frontend/assets/") {
        return Some(rest.to_owned());
    }
    if let Some(rest) = embedded.strip_prefix("govuk-frontend/") {
        return rest
            .starts_with("govuk-frontend.min.")
            .then(|| rest.to_owned());
    }
    embedded.strip_prefix("hub/").map(str::to_owned)
}

fn content_type(name: &str) -> Option<&'static str> {
    let extension = name.rsplit('.').next()?;
    Some(match extension {
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/manifest+json",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => return None,
    })
}

/// `/assets/<name>?v=<hash>`: the URL pages link `name` by.
pub(crate) fn url(name: &str) -> String {
    match assets().get(name) {
        Some(asset) => format!("/assets/{name}?v={}", asset.version),
        None => format!("/assets/{name}"),
    }
}

/// GET /assets/{name}: a year's caching when asked for by the current hash (or for a
/// font, whose name holds its hash), a day's for images, else five minutes'.
pub(crate) async fn serve(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let Some(asset) = assets().get(name.as_str()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Not found");
    };
    let Some(file) = Files::get(&asset.embedded) else {
        return HttpResponse::NotFound().finish();
    };
    let etag = format!("\"{}\"", asset.version);
    let current = req.query_string() == format!("v={}", asset.version);
    let cache = if current || name.starts_with("fonts/") {
        "public, max-age=31536000, immutable"
    } else if name.starts_with("images/") {
        // Named by GOV.UK Frontend's CSS without a hash; they change rarely.
        "public, max-age=86400"
    } else {
        // Another version's URL, or none: not pinned, so a deploy shows within minutes.
        "public, max-age=300"
    };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((header::ETAG, etag));
    if unchanged {
        return response.finish();
    }
    response
        .content_type(asset.content_type)
        .body(file.data.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn govuk_frontend_is_served_where_its_css_looks() {
        let css = Files::get("govuk-frontend/govuk-frontend.min.css").expect("vendored css");
        let css = String::from_utf8_lossy(&css.data).into_owned();
        let mut referenced = 0;
        for part in css.split("url(").skip(1) {
            let target = part.split(')').next().unwrap_or_default().trim_matches('"');
            if let Some(name) = target.strip_prefix("/assets/") {
                assert!(assets().contains_key(name), "{target} is not served");
                referenced += 1;
            }
        }
        assert!(referenced >= 4, "fonts and the crest");
    }

    #[test]
    fn urls_carry_the_content_hash() {
        let url = url("govuk-frontend.min.css");
        assert!(
            url.starts_with("/assets/govuk-frontend.min.css?v="),
            "{url}"
        );
        assert_eq!(url.len(), "/assets/govuk-frontend.min.css?v=".len() + 16);
        assert!(assets().contains_key("hub.mjs"));
        assert!(!assets().contains_key("LICENSE.txt"));
    }
}
