//! Transaction coordinator settings (`transaction.*`, `transactional.id.*`), Kafka's names and
//! defaults. Parsed here with the rest of the broker's properties; the coordinator in `txn/`
//! reads them.

use std::collections::BTreeMap;

use super::{get_bool, get_num, invalid, ConfigError};
use crate::types::TxnVersion;

/// The transaction coordinator's broker settings, with Kafka's names and defaults
/// (Kafka's `TransactionStateManagerConfig` and `TransactionLogConfig`), read by [`txn_config`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms` (900000, 15 min): the largest `transaction.timeout.ms` a
    /// producer may ask for; a larger one gets INVALID_TRANSACTION_TIMEOUT, so a client cannot
    /// pin the last stable offset of its partitions for longer than the operator allows.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms` (604800000, 7 days): an id idle this long (Empty,
    /// CompleteCommit or CompleteAbort, no update since) is removed with a tombstone.
    pub id_expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms` (10000): how often open
    /// transactions are checked against their timeout and aborted.
    pub abort_timed_out_interval_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms` (3600000, 1 h): how often
    /// idle ids are checked for expiry.
    pub remove_expired_interval_ms: i64,
    /// `transaction.state.log.num.partitions` (50): partitions of `__transaction_state`; an id
    /// lives in [`store::partition_for`] of it, so it must not change once the topic exists.
    pub log_num_partitions: i32,
    /// `transaction.state.log.replication.factor` (3; capped at the live brokers when the topic
    /// is created, as for `__consumer_offsets`).
    pub log_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2): the topic's `min.insync.replicas`.
    pub log_min_isr: i32,
    /// `transaction.state.log.segment.bytes` (104857600, 100 MiB): the topic's `segment.bytes`
    /// (small, so compaction keeps replay on leadership short).
    pub log_segment_bytes: i32,
    /// `transaction.partition.verification.enable` (true): a partition leader checks with the
    /// coordinator that a producer's first transactional batch belongs to a partition added
    /// to its transaction (KIP-890), so no transaction can hang on a partition the
    /// coordinator does not know about. Off only to reproduce old brokers' behaviour.
    pub partition_verification: bool,
    /// `transaction.version` (2): the level of Kafka's `transaction.version` feature this
    /// broker finalizes in ApiVersions (Kafka sets it cluster-wide with `kafka-features.sh`;
    /// Rill reads it from each broker's properties, so give every broker the same value).
    /// At 2 the Java client (4.0+) uses transactions v2 (KIP-890 part 2: an epoch bump per
    /// transaction, partitions added by their leaders); 0 keeps every client on v1. From 1,
    /// `__transaction_state` values are written flexible (v1), as Kafka 4 does. Requests of
    /// the v2 versions are served whatever the level, as in Kafka.
    pub version: TxnVersion,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            abort_timed_out_interval_ms: 10_000,
            remove_expired_interval_ms: 3_600_000,
            log_num_partitions: 50,
            log_replication_factor: 3,
            log_min_isr: 2,
            log_segment_bytes: 100 * 1024 * 1024,
            partition_verification: true,
            version: TxnVersion::LATEST,
        }
    }
}

pub(super) fn txn_config(raw: &BTreeMap<String, String>) -> Result<TxnConfig, ConfigError> {
    let d = TxnConfig::default();
    Ok(TxnConfig {
        max_timeout_ms: get_num(raw, "transaction.max.timeout.ms", d.max_timeout_ms, 1)?,
        id_expiration_ms: get_num(raw, "transactional.id.expiration.ms", d.id_expiration_ms, 1)?,
        abort_timed_out_interval_ms: get_num(
            raw,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            d.abort_timed_out_interval_ms,
            1,
        )?,
        remove_expired_interval_ms: get_num(
            raw,
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            d.remove_expired_interval_ms,
            1,
        )?,
        log_num_partitions: get_num(
            raw,
            "transaction.state.log.num.partitions",
            d.log_num_partitions,
            1,
        )?,
        log_replication_factor: get_num(
            raw,
            "transaction.state.log.replication.factor",
            d.log_replication_factor,
            1,
        )?,
        log_min_isr: get_num(raw, "transaction.state.log.min.isr", d.log_min_isr, 1)?,
        log_segment_bytes: get_num(
            raw,
            "transaction.state.log.segment.bytes",
            d.log_segment_bytes,
            1,
        )?,
        partition_verification: get_bool(
            raw,
            "transaction.partition.verification.enable",
            d.partition_verification,
        )?,
        version: {
            let level: i16 = get_num(raw, "transaction.version", d.version.0, 0)?;
            if level > TxnVersion::LATEST.0 {
                return Err(invalid(
                    "transaction.version",
                    &level.to_string(),
                    "the highest level this broker implements is 2",
                ));
            }
            TxnVersion(level)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas() {
        let c = txn_config(&BTreeMap::new()).expect("defaults");
        assert_eq!(c, TxnConfig::default());
        assert_eq!(c.max_timeout_ms, 900000);
        assert_eq!(c.id_expiration_ms, 604800000);
        assert_eq!(c.abort_timed_out_interval_ms, 10000);
        assert_eq!(c.remove_expired_interval_ms, 3600000);
        assert_eq!(c.log_num_partitions, 50);
        assert_eq!(c.log_replication_factor, 3);
        assert_eq!(c.log_min_isr, 2);
        assert_eq!(c.log_segment_bytes, 104857600);
        assert!(c.partition_verification);
        assert_eq!(c.version, TxnVersion::TV2);
    }

    #[test]
    fn transaction_version_is_a_level_up_to_2() {
        let at = |v: &str| txn_config(&[("transaction.version".to_string(), v.to_string())].into());
        assert_eq!(at("0").expect("0").version, TxnVersion::TV0);
        assert_eq!(at("1").expect("1").version, TxnVersion::TV1);
        for bad in ["3", "-1", "two"] {
            let e = at(bad).expect_err(bad);
            assert!(e.to_string().contains("transaction.version"), "{e}");
        }
    }

    #[test]
    fn keys_are_read_and_checked() {
        let raw: BTreeMap<String, String> = [
            ("transaction.max.timeout.ms", "60000"),
            ("transaction.state.log.num.partitions", "3"),
            ("transaction.state.log.replication.factor", "1"),
            ("transaction.state.log.min.isr", "1"),
            (
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                "500",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let c = txn_config(&raw).expect("valid");
        assert_eq!(c.max_timeout_ms, 60000);
        assert_eq!(c.log_num_partitions, 3);
        assert_eq!(c.log_replication_factor, 1);
        assert_eq!(c.log_min_isr, 1);
        assert_eq!(c.abort_timed_out_interval_ms, 500);
        let bad: BTreeMap<String, String> = [(
            "transaction.state.log.num.partitions".to_string(),
            "0".to_string(),
        )]
        .into();
        let e = txn_config(&bad).expect_err("0 partitions");
        assert!(
            e.to_string()
                .contains("transaction.state.log.num.partitions"),
            "{e}"
        );
    }
}
