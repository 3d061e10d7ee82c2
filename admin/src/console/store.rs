//! The console's database: offset and lag samples for history charts and time lag, the
//! audit log, and the operator's status thresholds.
//!
//! One code path for SQLite and PostgreSQL through `sqlx::Any`: the queries use only what
//! both dialects share (`$N` placeholders, `BIGINT`/`DOUBLE PRECISION`, `ON CONFLICT`
//! upserts, ms timestamps), so two pools behind a trait would only duplicate every query.
//! The schemas differ in one place (auto-increment ids), hence one migration directory
//! per backend under `migrations/`, embedded in the binary.
//!
//! Samples are downsampled as they are written: each cycle writes a group-offset row per
//! tier (every cycle, kept 70 min; the last sample of each 5 minutes, kept 25 h; the last
//! of each 30 minutes, kept `--retention`) with an upsert on the tier's bucket, and
//! `expire` deletes each tier past its age, so the store stays bounded. Partition end
//! offsets are kept only in the first tier (they warm the time-lag tables at start).

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{AnyPool, Row};

use super::lag::Thresholds;
use super::snapshot::Snapshot;
use crate::clock::now_ms;
use rill_client::TopicPartition;

/// Tier 1 bucket width (the 24 h chart: 288 points).
const TIER1_MS: i64 = 300_000;
/// Tier 2 bucket width (the 7 d chart: 336 points).
const TIER2_MS: i64 = 1_800_000;
/// Tier 0 (every cycle) is kept this long: the 1 h chart and the time-lag warm-up.
const TIER0_KEEP_MS: i64 = 70 * 60_000;
/// Tier 1 is kept this long: the 24 h chart.
const TIER1_KEEP_MS: i64 = 25 * 3_600_000;
/// The group id holding the default thresholds.
pub const DEFAULT_THRESHOLDS: &str = "*";

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no supported backend.
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://...")]
    BadUrl(String),
    /// Connecting failed.
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    /// Applying the migrations failed.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// Which SQL dialect the store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When, ms since the epoch.
    pub ts_ms: i64,
    /// Who (the console user, `anonymous` without auth).
    pub user: String,
    /// What (`create-topic`, `alter-configs`, ...).
    pub action: String,
    /// On what (a topic, a group, ...).
    pub target: String,
    /// The request as JSON.
    pub request: String,
    /// The outcome: `ok` or the error message.
    pub result: String,
    /// True when it succeeded.
    pub ok: bool,
    /// Where the change was made: `console` or `cli` (imported from `__rill_audit`).
    pub via: String,
}

/// How long samples are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Age after which the coarsest tier (10-minute samples) is deleted.
    pub max_age: Duration,
}

/// One partition's offsets at one time: a row of the every-cycle tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetSample {
    /// The partition.
    pub tp: TopicPartition,
    /// When (ms since the epoch): the snapshot's time.
    pub ts_ms: i64,
    /// Log start offset.
    pub earliest: i64,
    /// High watermark.
    pub latest: i64,
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// The embedded migrations of one backend.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> Pin<
        Box<
            dyn Future<Output = Result<Vec<Migration>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 's,
        >,
    > {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, d, sql)| {
                    Migration::new(
                        *v,
                        Cow::Borrowed(*d),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "console",
        include_str!("../../../migrations/sqlite/0001_console.sql"),
    ),
    (
        2,
        "cli audit",
        include_str!("../../../migrations/sqlite/0002_cli_audit.sql"),
    ),
];
const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "console",
        include_str!("../../../migrations/postgres/0001_console.sql"),
    ),
    (
        2,
        "cli audit",
        include_str!("../../../migrations/postgres/0002_cli_audit.sql"),
    ),
];

/// `sqlite://...`/`postgres://...` as given; a bare path becomes an SQLite file URL that
/// is created when missing.
pub fn normalize_url(url: &str) -> Result<(String, Backend), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((url.to_string(), Backend::Postgres));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let with_mode = if rest.contains("mode=") {
            url.to_string()
        } else if rest.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        return Ok((with_mode, Backend::Sqlite));
    }
    if url.contains("://") || url.is_empty() {
        return Err(StoreError::BadUrl(url.to_string()));
    }
    Ok((format!("sqlite://{url}?mode=rwc"), Backend::Sqlite))
}

impl Store {
    /// Connects and applies the migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalize_url(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                // One writer at a time anyway; a few readers for pages.
                Backend::Sqlite => 4,
                Backend::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(StoreError::Connect)?;
        if backend == Backend::Sqlite {
            // WAL lets pages read while the collector writes; it persists in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        let source = match backend {
            Backend::Sqlite => Embedded(SQLITE_MIGRATIONS),
            Backend::Postgres => Embedded(POSTGRES_MIGRATIONS),
        };
        Migrator::new(source).await?.run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Appends one cycle's partition offsets (`offsets`: the collector's choice of which,
    /// see `collector/samples.rs`) and group offsets, in every tier.
    pub async fn record_cycle(
        &self,
        snap: &Snapshot,
        offsets: &[OffsetSample],
    ) -> Result<(), StoreError> {
        let ts = snap.taken_at_ms;
        let tiers = [
            (0_i64, ts),
            (1, ts - ts.rem_euclid(TIER1_MS)),
            (2, ts - ts.rem_euclid(TIER2_MS)),
        ];
        let mut tx = self.pool.begin().await?;
        // Only the every-cycle tier: it warms the time-lag tables after a restart; nothing
        // charts partition offsets over longer spans.
        let rows: Vec<_> = offsets
            .iter()
            .map(|o| {
                [
                    Arg::Str(o.tp.topic.as_str()),
                    Arg::Int(i64::from(o.tp.partition)),
                    Arg::Int(0),
                    Arg::Int(o.ts_ms),
                    Arg::Int(o.earliest),
                    Arg::Int(o.latest),
                ]
            })
            .collect();
        upsert(
            &mut tx,
            "INSERT INTO partition_offsets (topic, partition_id, tier, ts, earliest, latest) VALUES ",
            " ON CONFLICT (topic, partition_id, tier, ts) \
              DO UPDATE SET earliest = excluded.earliest, latest = excluded.latest",
            &rows,
        )
        .await?;
        // Only what this cycle measured: a group with any partition not measured gets no
        // row (its total would be too low), so its history shows a gap, never a false zero.
        let rows: Vec<_> = snap
            .groups
            .iter()
            .filter(|g| {
                g.error.is_none() && !g.partitions.iter().any(|p| p.is_stale() || p.lag < 0)
            })
            .flat_map(|g| g.partitions.iter().map(move |p| (g, p)))
            .flat_map(|(g, p)| {
                tiers.map(|(tier, bucket)| {
                    [
                        Arg::Str(g.group_id.as_str()),
                        Arg::Str(p.topic.as_str()),
                        Arg::Int(i64::from(p.partition)),
                        Arg::Int(tier),
                        Arg::Int(bucket),
                        Arg::Int(p.committed),
                        Arg::Int(p.end),
                        Arg::Int(p.lag),
                    ]
                })
            })
            .collect();
        upsert(
            &mut tx,
            "INSERT INTO group_offsets (group_id, topic, partition_id, tier, ts, committed, end_offset, lag) VALUES ",
            " ON CONFLICT (group_id, tier, ts, topic, partition_id) \
              DO UPDATE SET committed = excluded.committed, end_offset = excluded.end_offset, lag = excluded.lag",
            &rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Deletes samples past each tier's age. Returns the rows deleted.
    pub async fn expire(&self, now_ms: i64, retention: Retention) -> Result<u64, StoreError> {
        let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
        let mut deleted = 0;
        for (tier, keep) in [
            (0_i64, TIER0_KEEP_MS.min(max_age)),
            (1, TIER1_KEEP_MS.min(max_age)),
            (2, max_age),
        ] {
            let cutoff = now_ms.saturating_sub(keep);
            for table in ["partition_offsets", "group_offsets"] {
                deleted += sqlx::query(&format!("DELETE FROM {table} WHERE tier = $1 AND ts < $2"))
                    .bind(tier)
                    .bind(cutoff)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            }
        }
        Ok(deleted)
    }

    /// Total lag of `group` over time since `since_ms`, at the tier suited to the span:
    /// (ts ms, Σ lag over its partitions, counted from the log start where nothing was
    /// committed). Cycles that did not measure the group have no row.
    pub async fn lag_history(
        &self,
        group: &str,
        since_ms: i64,
        tier: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT ts, CAST(SUM(CASE WHEN lag > 0 THEN lag ELSE 0 END) AS BIGINT) \
             FROM group_offsets WHERE group_id = $1 AND tier = $2 AND ts >= $3 \
             GROUP BY ts ORDER BY ts",
        )
        .bind(group)
        .bind(tier)
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<i64, _>(1)?)))
            .collect()
    }

    /// Every-cycle end offsets since `since_ms`, oldest first, to warm the time-lag tables
    /// after a restart: (topic, partition, ts ms, latest).
    pub async fn recent_end_offsets(
        &self,
        since_ms: i64,
    ) -> Result<Vec<(String, i32, i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT topic, partition_id, ts, latest FROM partition_offsets \
             WHERE tier = 0 AND ts >= $1 ORDER BY ts",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r: &AnyRow| {
                let partition: i64 = r.try_get(1)?;
                Ok((
                    r.try_get(0)?,
                    i32::try_from(partition).unwrap_or(-1),
                    r.try_get(2)?,
                    r.try_get(3)?,
                ))
            })
            .collect()
    }

    /// Appends an audit entry.
    pub async fn audit(
        &self,
        user: &str,
        action: &str,
        target: &str,
        request: &str,
        result: Result<(), &str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (ts, user_name, action, target, request, result, ok) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now_ms())
        .bind(user)
        .bind(action)
        .bind(target)
        .bind(request)
        .bind(result.err().unwrap_or("ok"))
        .bind(i64::from(result.is_ok()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Imports one CLI change read from partition `partition`, offset `offset` of
    /// `__rill_audit`; importing the same record twice keeps one row.
    pub async fn import_cli_audit(
        &self,
        partition: i32,
        offset: i64,
        record: &crate::ops::audit::AuditRecord,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (ts, user_name, action, target, request, result, ok, via, \
             source_partition, source_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, 'cli', $8, $9) \
             ON CONFLICT (source_partition, source_offset) DO NOTHING",
        )
        .bind(record.ts_ms)
        .bind(&record.user)
        .bind(&record.action)
        .bind(&record.target)
        .bind(record.request_json())
        .bind(&record.result)
        .bind(i64::from(record.ok))
        .bind(i64::from(partition))
        .bind(offset)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The offset after the last CLI change imported from `partition` of `__rill_audit`
    /// (0 when none was).
    pub async fn cli_audit_next_offset(&self, partition: i32) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT MAX(source_offset) FROM audit_log WHERE source_partition = $1")
                .bind(i64::from(partition))
                .fetch_one(&self.pool)
                .await?;
        let last: Option<i64> = row.try_get(0)?;
        Ok(last.map_or(0, |o| o + 1))
    }

    /// The newest `limit` audit entries, newest first (by the time of the change: CLI
    /// changes are imported a collection cycle after they happen).
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, ts, user_name, action, target, request, result, ok, via \
             FROM audit_log ORDER BY ts DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get(0)?,
                    ts_ms: r.try_get(1)?,
                    user: r.try_get(2)?,
                    action: r.try_get(3)?,
                    target: r.try_get(4)?,
                    request: r.try_get(5)?,
                    result: r.try_get(6)?,
                    ok: r.try_get::<i64, _>(7)? != 0,
                    via: r.try_get(8)?,
                })
            })
            .collect()
    }

    /// Every stored threshold set, by group id (`*` = the defaults).
    pub async fn thresholds(&self) -> Result<HashMap<String, Thresholds>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_id, max_lag, max_lag_seconds, stall_seconds FROM lag_thresholds",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    Thresholds {
                        max_lag: r.try_get(1)?,
                        max_lag_seconds: r.try_get(2)?,
                        stall_seconds: r.try_get(3)?,
                    },
                ))
            })
            .collect()
    }

    /// Sets the thresholds of `group` (`*` for the defaults).
    pub async fn set_thresholds(&self, group: &str, t: &Thresholds) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lag_thresholds (group_id, max_lag, max_lag_seconds, stall_seconds) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (group_id) DO UPDATE SET \
             max_lag = excluded.max_lag, max_lag_seconds = excluded.max_lag_seconds, \
             stall_seconds = excluded.stall_seconds",
        )
        .bind(group)
        .bind(t.max_lag)
        .bind(t.max_lag_seconds)
        .bind(t.stall_seconds)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// A bound value of a multi-row statement.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Str(&'a str),
    Int(i64),
}

/// Rows per multi-row statement: SQLite before 3.32 allows 999 parameters, and a row has at
/// most 8. One statement per row made a cycle's store write cost about 60 µs a row (2 s
/// for 1,000 groups of 10 partitions in three tiers).
const ROWS_PER_STATEMENT: usize = 100;

/// Runs `head (..), (..), ... tail` over `rows`, [`ROWS_PER_STATEMENT`] at a time. No two
/// rows may share a conflict key (PostgreSQL refuses to update one row twice in a statement).
async fn upsert<const N: usize>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    head: &str,
    tail: &str,
    rows: &[[Arg<'_>; N]],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut sql = String::with_capacity(head.len() + tail.len() + chunk.len() * N * 5);
        sql.push_str(head);
        let mut n = 0;
        for (r, _) in chunk.iter().enumerate() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for c in 0..N {
                n += 1;
                if c > 0 {
                    sql.push_str(", ");
                }
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            sql.push(')');
        }
        sql.push_str(tail);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for a in row {
                q = match *a {
                    Arg::Str(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                };
            }
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::snapshot::{
        Forecast, GroupInfo, GroupStatus, LagBasis, PartitionInfo, PartitionLag, TopicInfo,
    };

    fn snap(ts: i64, lag: i64) -> Snapshot {
        Snapshot {
            taken_at_ms: ts,
            topics: vec![TopicInfo {
                name: "t".into(),
                internal: false,
                partitions: vec![PartitionInfo {
                    partition: 0,
                    leader: 1,
                    replicas: vec![1],
                    isr: vec![1],
                    earliest: 0,
                    latest: 100 + lag,
                    size: None,
                }],
                min_insync_replicas: None,
                cleanup_policy: None,
            }],
            groups: vec![GroupInfo {
                group_id: "g".into(),
                state: "Empty".into(),
                protocol_type: "consumer".into(),
                group_type: "classic".into(),
                epochs: None,
                protocol: String::new(),
                coordinator: 1,
                members: vec![],
                partitions: vec![PartitionLag {
                    topic: "t".into(),
                    partition: 0,
                    committed: 100,
                    end: 100 + lag,
                    log_start: 0,
                    lag,
                    stable_end: 100 + lag,
                    stable_lag: lag,
                    basis: LagBasis::Committed,
                    lag_seconds: None,
                    lag_seconds_method: None,
                    status: GroupStatus::Ok,
                    status_reason: String::new(),
                    measured_at_ms: ts,
                    error: None,
                    owner: None,
                }],
                status: GroupStatus::Ok,
                status_reason: String::new(),
                forecast: Forecast::Unknown,
                error: None,
            }],
            ..Snapshot::default()
        }
    }

    /// Every measured partition's offsets (what the collector writes when all changed).
    fn every_offset(s: &Snapshot) -> Vec<OffsetSample> {
        s.topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.latest >= 0)
                    .map(|p| OffsetSample {
                        tp: TopicPartition::new(t.name.as_str(), p.partition),
                        ts_ms: s.taken_at_ms,
                        earliest: p.earliest,
                        latest: p.latest,
                    })
            })
            .collect()
    }

    #[tokio::test]
    async fn samples_are_downsampled_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db").to_str().unwrap())
            .await
            .unwrap();
        let base = 1_700_000_000_000_i64 - 1_700_000_000_000 % TIER2_MS;
        // Six cycles 100 s apart: 6 raw points, two 5-minute buckets, one 30-minute bucket.
        for i in 0..6 {
            store
                .record_cycle(
                    &snap(base + i * 100_000, i),
                    &every_offset(&snap(base + i * 100_000, i)),
                )
                .await
                .unwrap();
        }
        assert_eq!(store.lag_history("g", 0, 0).await.unwrap().len(), 6);
        // A cycle that could not measure the partition stores nothing for the group: the
        // history has a gap there, not a zero.
        let mut unmeasured = snap(base + 550_000, 0);
        unmeasured.groups[0].partitions[0].error = Some("ListOffsets failed".into());
        unmeasured.groups[0].partitions[0].lag = 3;
        store
            .record_cycle(&unmeasured, &every_offset(&unmeasured))
            .await
            .unwrap();
        assert_eq!(store.lag_history("g", 0, 0).await.unwrap().len(), 6);
        let minutes = store.lag_history("g", 0, 1).await.unwrap();
        assert_eq!(
            minutes,
            vec![(base, 2), (base + TIER1_MS, 5)],
            "last sample per bucket"
        );
        assert_eq!(store.lag_history("g", 0, 2).await.unwrap(), vec![(base, 5)]);
        // The topic's end offsets were measured in that cycle: they are stored.
        assert_eq!(store.recent_end_offsets(0).await.unwrap().len(), 7);
        // Three hours later raw samples are gone, the coarser buckets stay.
        let r = Retention {
            max_age: Duration::from_secs(86_400),
        };
        store.expire(base + 3 * 3_600_000, r).await.unwrap();
        assert!(store.lag_history("g", 0, 0).await.unwrap().is_empty());
        assert_eq!(store.lag_history("g", 0, 1).await.unwrap().len(), 2);
        // Past the retention everything is gone.
        store.expire(base + 2 * 86_400_000, r).await.unwrap();
        assert!(store.lag_history("g", 0, 2).await.unwrap().is_empty());
        assert!(store.recent_end_offsets(0).await.unwrap().is_empty());
        // Audit and thresholds round-trip.
        store.audit("u", "a", "t", "{}", Err("boom")).await.unwrap();
        let log = store.audit_log(10).await.unwrap();
        assert_eq!((log[0].ok, log[0].result.as_str()), (false, "boom"));
        assert_eq!(log[0].via, "console");
        // CLI changes import once per (partition, offset), in time order with the rest.
        assert_eq!(store.cli_audit_next_offset(0).await.unwrap(), 0);
        let mut cli = crate::ops::audit::AuditRecord::new("delete-topic", "t", Ok(()));
        cli.ts_ms = 1;
        for _ in 0..2 {
            store.import_cli_audit(0, 5, &cli).await.unwrap();
        }
        assert_eq!(store.cli_audit_next_offset(0).await.unwrap(), 6);
        assert_eq!(store.cli_audit_next_offset(1).await.unwrap(), 0);
        let log = store.audit_log(10).await.unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[1].via.as_str(), log[1].action.as_str()),
            ("cli", "delete-topic")
        );
        assert!(log[1].request.contains("rill CLI"), "{}", log[1].request);
        let t = Thresholds {
            max_lag: 5,
            max_lag_seconds: 1.5,
            stall_seconds: 9,
        };
        store.set_thresholds("g", &t).await.unwrap();
        assert_eq!(store.thresholds().await.unwrap().get("g"), Some(&t));
    }

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            normalize_url("postgres://u@h/db").unwrap().1,
            Backend::Postgres
        );
        assert_eq!(
            normalize_url("sqlite:///tmp/x.db").unwrap().0,
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert_eq!(
            normalize_url("console.db").unwrap().0,
            "sqlite://console.db?mode=rwc"
        );
        assert!(normalize_url("mysql://x").is_err());
        assert!(normalize_url("").is_err());
    }
}
