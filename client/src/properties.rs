//! Java properties text, as `server.properties` and Kafka's client config files are written:
//! `key=value` or `key: value`, `#`/`!` comments, `\` continuations. One parser for the
//! broker's config and the tools' `--command-config`.

use std::collections::BTreeMap;

/// Parses properties text; `Err` carries the first entry that is not `key=value`.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let idx = entry.find(['=', ':']).ok_or_else(|| entry.clone())?;
        out.insert(
            entry[..idx].trim().to_string(),
            entry[idx + 1..].trim().to_string(),
        );
    }
    Ok(out)
}
