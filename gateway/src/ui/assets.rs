//! The UI's static assets, embedded in the binary: one stylesheet (light and dark, phone
//! widths) and one small progressive-enhancement script. Public (no subject needed); each is
//! linked with its content hash in the query (`?v=`), so it is cached for a year and a new
//! build's asset is fetched anew.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// An embedded file: its name under `/ui/assets/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 2] = [
    Asset { name: "ui.css", content_type: "text/css; charset=utf-8", bytes: include_bytes!("assets/ui.css") },
    Asset { name: "ui.js", content_type: "text/javascript; charset=utf-8", bytes: include_bytes!("assets/ui.js") },
];

/// The first 12 hex digits of each asset's SHA-256, by position in [`ASSETS`].
static VERSIONS: LazyLock<Vec<String>> =
    LazyLock::new(|| ASSETS.iter().map(|a| hex::encode(Sha256::digest(a.bytes))[..12].to_string()).collect());

/// The URL pages link `name` with (`/ui/assets/<name>?v=<hash>`).
pub fn url(name: &str) -> String {
    match ASSETS.iter().position(|a| a.name == name) {
        Some(i) => format!("/ui/assets/{name}?v={}", VERSIONS[i]),
        None => format!("/ui/assets/{name}"),
    }
}

/// `GET /ui/assets/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut resp = a.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    resp
}
