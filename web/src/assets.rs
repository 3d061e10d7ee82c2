//! Static files (CSS, JS) compiled into the binary.

use std::borrow::Cow;

use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Files;

/// The file at `path` (e.g. `console.css`) with its content type.
pub fn get(path: &str) -> Option<(Cow<'static, [u8]>, &'static str)> {
    let file = Files::get(path)?;
    let mime = match path.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    };
    Some((file.data, mime))
}
