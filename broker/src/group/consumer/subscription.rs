//! What a consumer group subscribes to: names, and regexes matched against the topics off the
//! heartbeat path (at the coordinator's tick, as Kafka 4 resolves them asynchronously), and
//! the checks on a subscription a heartbeat brings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;

use super::assignor::Assignor;
use super::{refuse, ConsumerGroup, Heartbeat, Refusal, Settings, SubscribedTopic, TopicSource};

/// Longest subscription regex accepted, in bytes; a compiled regex is also capped at
/// [`MAX_REGEX_PROGRAM_BYTES`].
pub const MAX_REGEX_BYTES: usize = 1024;
/// Compiled-size cap for a subscription regex (the `regex` crate's size limit).
pub const MAX_REGEX_PROGRAM_BYTES: usize = 1 << 20;
/// How often the topics are matched again against the subscription regexes in use when the
/// metadata changed (a regex new to the group is matched at the next coordinator tick).
/// Matching is off the heartbeat path, as Kafka 4 resolves regexes asynchronously: a
/// heartbeat never walks every topic.
pub const REGEX_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Most topic names one member may subscribe to by name.
pub const MAX_SUBSCRIBED_TOPICS: usize = 10_000;

impl ConsumerGroup {
    /// Resolves what the members subscribe to against the topics; a change (a topic created,
    /// grown, deleted or newly matched) bumps the group epoch.
    pub(super) fn refresh_subscriptions(&mut self, topics: &dyn TopicSource, force: bool) {
        if !force && self.resolved_at == Some(topics.version()) {
            return;
        }
        self.resolved_at = Some(topics.version());
        let subscribed = self.resolve_subscribed(topics);
        if subscribed != self.subscribed {
            self.subscribed = subscribed;
            self.bump();
        }
    }

    /// Every topic some member subscribes to, as it is now.
    pub(super) fn resolve_subscribed(
        &self,
        topics: &dyn TopicSource,
    ) -> BTreeMap<String, SubscribedTopic> {
        let mut subscribed = BTreeMap::new();
        for names in self.resolve_all().values() {
            for n in names {
                if let Some(t) = topics.topic(n) {
                    subscribed.insert(n.clone(), t);
                }
            }
        }
        subscribed
    }

    /// Each member's subscribed topic names, with what its regex matched when last resolved.
    pub(super) fn resolve_all(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.members
            .iter()
            .map(|(id, m)| {
                let mut names: BTreeSet<String> =
                    m.subscribed_topic_names.iter().cloned().collect();
                if let Some(re) = m.subscribed_topic_regex.as_deref() {
                    if let Some(found) = self.regex_matches.get(re) {
                        names.extend(found.iter().cloned());
                    }
                }
                (id.clone(), names)
            })
            .collect()
    }

    /// Forgets the matches of regexes no member uses any more: subscribing to one again
    /// matches it afresh, as Kafka drops a regex's resolution with its last user.
    pub(super) fn prune_regexes(&mut self) {
        if self.regex_matches.is_empty() {
            return;
        }
        let in_use: BTreeSet<&str> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_deref())
            .collect();
        let before = self.regex_matches.len();
        self.regex_matches
            .retain(|re, _| in_use.contains(re.as_str()));
        if self.regex_matches.len() != before {
            self.dirty = true;
        }
    }

    /// Matches the topics against the subscription regexes in use: at once for a regex new
    /// to the group, else at most every [`REGEX_REFRESH_INTERVAL`] after the metadata changed.
    /// A change of what they match bumps the group epoch. True when the group changed.
    pub fn refresh_regexes(&mut self, topics: &dyn TopicSource, now: Instant) -> bool {
        self.bumped = false;
        let in_use: BTreeSet<&str> = self
            .members
            .values()
            .filter_map(|m| m.subscribed_topic_regex.as_deref())
            .collect();
        if in_use.is_empty() && self.regex_matches.is_empty() {
            return false;
        }
        let unresolved = in_use.iter().any(|r| !self.regex_matches.contains_key(*r));
        let stale = self.regexes_at.is_none_or(|(version, at)| {
            version != topics.version() && now.duration_since(at) >= REGEX_REFRESH_INTERVAL
        });
        if !unresolved && !stale {
            return false;
        }
        let mut matches = BTreeMap::new();
        for re in &in_use {
            let mut found = BTreeSet::new();
            if let Ok(r) = compile(re) {
                topics.for_each_name(&mut |n| {
                    if r.is_match(n) {
                        found.insert(n.to_string());
                    }
                });
            }
            matches.insert(re.to_string(), found);
        }
        self.regexes_at = Some((topics.version(), now));
        if matches == self.regex_matches {
            return false;
        }
        self.regex_matches = matches;
        self.dirty = true;
        let epoch = self.group_epoch;
        self.refresh_subscriptions(topics, true);
        self.group_epoch != epoch
    }
}

/// A subscription regex as Kafka applies it (RE2/J, the whole name must match), bounded.
pub fn compile(re: &str) -> Result<regex::Regex, String> {
    if re.len() > MAX_REGEX_BYTES {
        return Err(format!("the regex is longer than {MAX_REGEX_BYTES} bytes"));
    }
    regex::RegexBuilder::new(&format!("^(?:{re})$"))
        .size_limit(MAX_REGEX_PROGRAM_BYTES)
        .build()
        .map_err(|e| e.to_string())
}

pub(super) struct ValidSubscription {
    pub(super) names: Option<Vec<String>>,
    pub(super) regex: Option<Option<String>>,
    pub(super) assignor: Option<String>,
}

pub(super) fn validate_subscription(
    hb: &Heartbeat,
    settings: &Settings,
) -> Result<ValidSubscription, Refusal> {
    let names = match &hb.subscribed_topic_names {
        Some(n) if n.len() > MAX_SUBSCRIBED_TOPICS => {
            return Err(refuse(
                ResponseError::InvalidRequest,
                format!("at most {MAX_SUBSCRIBED_TOPICS} topics may be subscribed by name"),
            ))
        }
        Some(n) => {
            let mut v = n.clone();
            v.sort();
            v.dedup();
            Some(v)
        }
        None => None,
    };
    let regex = match &hb.subscribed_topic_regex {
        None => None,
        Some(r) if r.is_empty() => Some(None),
        Some(r) => {
            compile(r).map_err(|e| {
                refuse(
                    ResponseError::InvalidRegularExpression,
                    format!(
                        "SubscribedTopicRegex `{}` is not a valid regular expression: {e}",
                        clip(r, 100)
                    ),
                )
            })?;
            Some(Some(r.clone()))
        }
    };
    let assignor = match &hb.server_assignor {
        None => None,
        Some(a) => {
            let known = Assignor::parse(a).filter(|x| settings.assignors.contains(x));
            match known {
                Some(x) => Some(x.name().to_string()),
                None => {
                    return Err(refuse(
                        ResponseError::UnsupportedAssignor,
                        format!(
                            "ServerAssignor {} is not supported. Supported assignors: {}.",
                            clip(a, 100),
                            settings
                                .assignors
                                .iter()
                                .map(|a| a.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
    };
    Ok(ValidSubscription {
        names,
        regex,
        assignor,
    })
}

/// At most `max` bytes of `s` (on a char boundary), for messages quoting what a client sent.
fn clip(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
