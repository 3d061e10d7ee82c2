//! Principals: who a connection is. Kafka's `KafkaPrincipal` as text (`User:alice`), and
//! `ssl.principal.mapping.rules` (Kafka's `SslPrincipalMapper`): from a client certificate's
//! distinguished name to the name in `User:<name>`.
//!
//! Rules are `RULE:<regex>/<replacement>/[L|U]` or `DEFAULT`, separated by commas or newlines,
//! tried in order; the first whose regex matches the *whole* DN gives the name (lower- or
//! upper-cased with `L`/`U`), `DEFAULT` gives the DN itself. A DN no rule matches is refused
//! (Kafka fails the handshake's principal building the same way). The DN is RFC 4514 text,
//! most specific first (`CN=alice,OU=eng,O=Acme`), as Java's `X500Principal.getName()` prints.

use std::fmt;

use regex::Regex;

/// The most rules a mapping may hold: a config value, but bounded like everything else.
pub const MAX_MAPPING_RULES: usize = 64;

/// A principal, `Type:name` (Kafka's `KafkaPrincipal.toString()`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// `User:ANONYMOUS`: a PLAINTEXT connection, or TLS without a client certificate.
    pub fn anonymous() -> Principal {
        Principal("User:ANONYMOUS".into())
    }

    /// `User:<name>`.
    pub fn user(name: &str) -> Principal {
        Principal(format!("User:{name}"))
    }

    /// The principal as Kafka prints it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name after the type.
    pub fn name(&self) -> &str {
        self.0.split_once(':').map_or(&self.0, |(_, n)| n)
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Case change applied to a rule's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Map {
        /// Anchored: the rule applies only when the whole DN matches (Java's `matches()`).
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

/// Parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl PrincipalMapper {
    /// Parses the rules; the error says which rule is wrong and why.
    pub fn parse(text: &str) -> Result<PrincipalMapper, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if rules.len() == MAX_MAPPING_RULES {
                return Err(format!("more than {MAX_MAPPING_RULES} rules"));
            }
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?}: expected RULE:pattern/replacement/"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("rule {rest:?}: expected RULE:pattern/replacement/"))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let compiled =
                    Regex::new(&pattern).map_err(|e| format!("rule pattern {pattern:?}: {e}"))?;
                let whole = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("rule pattern {pattern:?}: {e}"))?;
                rules.push(Rule::Map {
                    whole,
                    pattern: compiled,
                    // Java's `$1` group references are the regex crate's too; `${1}` keeps
                    // a following letter from being read as part of the group name.
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "unexpected {rest:?}: each rule is DEFAULT or RULE:pattern/replacement/[LU]"
                ));
            }
            rest = rest.trim_start();
            match rest.chars().next() {
                None => {}
                Some(',') | Some('\n') => rest = rest[1..].trim_start(),
                Some(_) => return Err(format!("unexpected {rest:?} after a rule")),
            }
        }
        if rules.is_empty() {
            return Err("no rules (use DEFAULT)".into());
        }
        Ok(PrincipalMapper { rules })
    }

    /// The principal name for a distinguished name, or `None` when no rule matches.
    pub fn map(&self, dn: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Map {
                    whole,
                    pattern,
                    replacement,
                    case,
                } => {
                    if !whole.is_match(dn) {
                        continue;
                    }
                    let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Some(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        None
    }
}

/// Reads up to the next unescaped `/`; `\/` stands for a slash.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &s[i + 1..])),
            _ => out.push(c),
        }
    }
    None
}

/// Java replacement text to the regex crate's: `$1` becomes `${1}`, `\$` a literal `$$`.
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DN: &str = "CN=Duke,OU=ServiceUsers,O=Org,C=US";

    #[test]
    fn default_is_the_whole_dn() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(m.map(DN).unwrap(), DN);
    }

    #[test]
    fn kafka_documented_rules() {
        // The examples of Kafka's ssl.principal.mapping.rules documentation.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\nRULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\nDEFAULT",
        )
        .unwrap();
        assert_eq!(m.map(DN).unwrap(), "Duke");
        assert_eq!(
            m.map("CN=Admin,OU=Admin,O=Org,L=Lo,ST=St,C=US").unwrap(),
            "admin@admin"
        );
        assert_eq!(m.map("cn=Bob,O=x").unwrap(), "bob");
        assert_eq!(m.map("O=NoCn").unwrap(), "O=NoCn");
        let upper = PrincipalMapper::parse("RULE:^CN=([^,]*).*$/$1/U").unwrap();
        assert_eq!(upper.map(DN).unwrap(), "DUKE");
        // No DEFAULT and no match: refused.
        assert_eq!(upper.map("O=x"), None);
    }

    #[test]
    fn escaped_slash_and_bad_rules() {
        let m = PrincipalMapper::parse(r"RULE:^CN=(.*)\/x$/$1/").unwrap();
        assert_eq!(m.map("CN=a/x").unwrap(), "a");
        for bad in ["", "RULE:abc", "RULE:(/x/", "NOPE", "DEFAULT DEFAULT"] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad:?}");
        }
        let many = vec!["DEFAULT"; MAX_MAPPING_RULES + 1].join(",");
        assert!(PrincipalMapper::parse(&many).is_err());
    }

    #[test]
    fn principal_text() {
        assert_eq!(Principal::anonymous().as_str(), "User:ANONYMOUS");
        assert_eq!(Principal::user("alice").name(), "alice");
    }
}
