//! `rill quorum describe --status | --replication`: the metadata quorum as its leader sees it,
//! in kafka-metadata-quorum.sh's shape (`--status`: ClusterId, LeaderId, LeaderEpoch,
//! HighWatermark, MaxFollowerLag, MaxFollowerLagTimeMs, CurrentVoters, CurrentObservers;
//! `--replication`: one row per member with its log end, lag, last fetch and last caught-up
//! times and status). What the leader does not know is printed as `unknown`, never as 0.
//! Adding and removing controllers at run time (KIP-853) is not offered: the quorum's voters
//! are fixed when the cluster is formed.

use clap::{ArgGroup, Args, Subcommand};
use rill_client::quorum::{QuorumInfo, QuorumReplica};
use serde_json::json;

use crate::cli::{print_json, Change, CliError, ConnectArgs, Output, Table};

/// Arguments of `rill quorum`.
#[derive(Args, Debug)]
pub struct QuorumArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(subcommand)]
    verb: Verb,
}

/// kafka-metadata-quorum.sh's commands.
#[derive(Subcommand, Debug)]
enum Verb {
    /// Describe the metadata quorum.
    #[command(group(ArgGroup::new("what").required(true).args(["status", "replication"])))]
    Describe {
        /// The leader, epoch, high watermark and the largest follower lag.
        #[arg(long)]
        status: bool,
        /// Each voter's and observer's log end, lag and last fetch.
        #[arg(long)]
        replication: bool,
    },
    /// Add a running controller to the quorum's voters.
    AddController {
        /// The new controller's node id.
        #[arg(long = "controller-id", value_name = "ID")]
        controller_id: i32,
        /// Its CONTROLLER listener, `host:port`.
        #[arg(long = "controller-endpoint", value_name = "HOST:PORT")]
        controller_endpoint: String,
        /// The listener's name.
        #[arg(long = "listener-name", default_value = "CONTROLLER")]
        listener_name: String,
        /// How long the leader may take to catch it up, in ms.
        #[arg(long = "catch-up-timeout", value_name = "MS", default_value_t = 60_000,
              value_parser = clap::value_parser!(i32).range(1..=300_000))]
        catch_up_timeout: i32,
    },
    /// Remove a controller from the quorum's voters (a failed one, or one being retired).
    RemoveController {
        /// The controller's node id.
        #[arg(long = "controller-id", value_name = "ID")]
        controller_id: i32,
    },
}

impl QuorumArgs {
    /// The change this command attempts, if any (for the audit trail).
    pub fn change(&self) -> Option<Change> {
        match &self.verb {
            Verb::Describe { .. } => None,
            Verb::AddController { controller_id, .. } => Some(Change::new(
                "add-controller",
                format!("node {controller_id}"),
                &self.connect,
            )),
            Verb::RemoveController { controller_id } => Some(Change::new(
                "remove-controller",
                format!("node {controller_id}"),
                &self.connect,
            )),
        }
    }
}

/// The largest lag of a follower and how long ago the laggiest was last caught up; `None`
/// where a member's progress is unknown.
fn max_lag(q: &QuorumInfo, now_ms: i64) -> (Option<i64>, Option<i64>) {
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.node_id == q.leader_id)
        .and_then(|v| v.log_end_offset);
    let followers: Vec<&QuorumReplica> = q
        .voters
        .iter()
        .chain(&q.observers)
        .filter(|r| r.node_id != q.leader_id)
        .collect();
    let lags: Option<Vec<i64>> = followers
        .iter()
        .map(|r| Some(leader_end? - r.log_end_offset?))
        .collect();
    let caught: Option<Vec<i64>> = followers
        .iter()
        .map(|r| Some(now_ms - r.last_caught_up_timestamp?))
        .collect();
    (
        lags.map(|l| l.into_iter().max().unwrap_or(0)),
        caught.map(|c| c.into_iter().max().unwrap_or(0).max(0)),
    )
}

fn shown(v: Option<i64>) -> String {
    v.map_or_else(|| "unknown".to_string(), |v| v.to_string())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `rill quorum`.
pub async fn run(args: QuorumArgs) -> Result<(), CliError> {
    let (status, replication) = match &args.verb {
        Verb::Describe {
            status,
            replication,
        } => (*status, *replication),
        Verb::AddController {
            controller_id,
            controller_endpoint,
            listener_name,
            catch_up_timeout,
        } => {
            let (host, port) = controller_endpoint
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
                .filter(|(h, _)| !h.is_empty())
                .ok_or_else(|| {
                    CliError::Usage(format!(
                        "--controller-endpoint {controller_endpoint}: expected HOST:PORT"
                    ))
                })?;
            let cluster = args.connect.connect().await?;
            cluster
                .add_quorum_voter(*controller_id, listener_name, host, port, *catch_up_timeout)
                .await
                .map_err(|e| CliError::client(format!("adding controller {controller_id}"), e))?;
            println!(
                "Added controller {controller_id} ({controller_endpoint}) to the quorum's voters."
            );
            return Ok(());
        }
        Verb::RemoveController { controller_id } => {
            let cluster = args.connect.connect().await?;
            cluster
                .remove_quorum_voter(*controller_id)
                .await
                .map_err(|e| CliError::client(format!("removing controller {controller_id}"), e))?;
            println!("Removed controller {controller_id} from the quorum's voters.");
            return Ok(());
        }
    };
    let cluster = args.connect.connect().await?;
    let q = cluster
        .describe_quorum()
        .await
        .map_err(|e| CliError::client("describing the metadata quorum", e))?;
    let (lag, lag_ms) = max_lag(&q, now_ms());
    let cluster_id = cluster.cluster_id().unwrap_or_default();
    if status {
        let ids = |rs: &[QuorumReplica]| rs.iter().map(|r| r.node_id).collect::<Vec<_>>();
        match args.connect.output {
            Output::Json => print_json(&json!({
                "cluster_id": cluster_id,
                "leader_id": q.leader_id,
                "leader_epoch": q.leader_epoch,
                "high_watermark": q.high_watermark,
                "max_follower_lag": lag,
                "max_follower_lag_time_ms": lag_ms,
                "current_voters": ids(&q.voters),
                "current_observers": ids(&q.observers),
            })),
            Output::Table => {
                println!("ClusterId:              {cluster_id}");
                println!("LeaderId:               {}", q.leader_id);
                println!("LeaderEpoch:            {}", q.leader_epoch);
                println!("HighWatermark:          {}", q.high_watermark);
                println!("MaxFollowerLag:         {}", shown(lag));
                println!("MaxFollowerLagTimeMs:   {}", shown(lag_ms));
                println!("CurrentVoters:          {:?}", ids(&q.voters));
                println!("CurrentObservers:       {:?}", ids(&q.observers));
            }
        }
    }
    if replication {
        let leader_end = q
            .voters
            .iter()
            .find(|v| v.node_id == q.leader_id)
            .and_then(|v| v.log_end_offset);
        let rows: Vec<(&QuorumReplica, &str)> = q
            .voters
            .iter()
            .map(|v| {
                (
                    v,
                    if v.node_id == q.leader_id {
                        "Leader"
                    } else {
                        "Follower"
                    },
                )
            })
            .chain(q.observers.iter().map(|o| (o, "Observer")))
            .collect();
        match args.connect.output {
            Output::Json => print_json(&json!({
                "replicas": rows
                    .iter()
                    .map(|(r, st)| json!({
                        "node_id": r.node_id,
                        "log_end_offset": r.log_end_offset,
                        "lag": leader_end.zip(r.log_end_offset).map(|(l, e)| l - e),
                        "last_fetch_timestamp": r.last_fetch_timestamp,
                        "last_caught_up_timestamp": r.last_caught_up_timestamp,
                        "status": st,
                    }))
                    .collect::<Vec<_>>(),
            })),
            Output::Table => {
                let mut t = Table::new(&[
                    "NodeId",
                    "LogEndOffset",
                    "Lag",
                    "LastFetchTimestamp",
                    "LastCaughtUpTimestamp",
                    "Status",
                ]);
                for (r, st) in rows {
                    t.row(vec![
                        r.node_id.to_string(),
                        shown(r.log_end_offset),
                        shown(leader_end.zip(r.log_end_offset).map(|(l, e)| l - e)),
                        shown(r.last_fetch_timestamp),
                        shown(r.last_caught_up_timestamp),
                        st.to_string(),
                    ]);
                }
                print!("{}", t.render(""));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: i32, end: Option<i64>, caught: Option<i64>) -> QuorumReplica {
        QuorumReplica {
            node_id: id,
            log_end_offset: end,
            last_fetch_timestamp: caught,
            last_caught_up_timestamp: caught,
        }
    }

    #[test]
    fn lag_is_unknown_when_a_follower_is_not_known() {
        let q = |voters| QuorumInfo {
            leader_id: 1,
            leader_epoch: 3,
            high_watermark: 100,
            voters,
            observers: vec![],
        };
        let known = q(vec![
            r(1, Some(100), Some(1000)),
            r(2, Some(97), Some(900)),
            r(3, Some(100), Some(990)),
        ]);
        assert_eq!(max_lag(&known, 1000), (Some(3), Some(100)));
        let unknown = q(vec![r(1, Some(100), Some(1000)), r(2, None, None)]);
        assert_eq!(max_lag(&unknown, 1000), (None, None));
        assert_eq!(
            max_lag(&q(vec![r(1, Some(5), Some(1))]), 1),
            (Some(0), Some(0))
        );
    }
}
