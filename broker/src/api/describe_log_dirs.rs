//! DescribeLogDirs: each log dir with the partitions it holds and their sizes, and (v4) the
//! size and free space of its file system (what kafka-log-dirs.sh and the consoles show).

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::sb;
use crate::context::Broker;

/// Handles DescribeLogDirs.
pub async fn handle(
    b: &Broker,
    req: DescribeLogDirsRequest,
    version: i16,
    ctx: &super::Ctx<'_>,
) -> DescribeLogDirsResponse {
    // DESCRIBE on the cluster (v3+ carries the error; older versions get nothing).
    if !ctx
        .authz
        .cluster(crate::metadata::acl::AclOperation::Describe)
    {
        let r = DescribeLogDirsResponse::default();
        return if version >= 3 {
            r.with_error_code(
                kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
            )
        } else {
            r
        };
    }
    let wanted = |topic: &str, partition: i32| match &req.topics {
        None => true,
        Some(ts) => ts
            .iter()
            .any(|t| t.topic.0.as_str() == topic && t.partitions.contains(&partition)),
    };
    let partitions = b.replicas.all();
    let results = b
        .config
        .log_dirs
        .iter()
        .map(|dir| {
            let mut topics: std::collections::BTreeMap<String, Vec<DescribeLogDirsPartition>> =
                Default::default();
            for p in &partitions {
                if !wanted(&p.tp.topic, p.tp.partition) {
                    continue;
                }
                let in_dir = p
                    .with_log(|l| Ok(l.dir().starts_with(dir)))
                    .unwrap_or(false);
                if in_dir {
                    topics.entry(p.tp.topic.clone()).or_default().push(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(p.tp.partition)
                            .with_partition_size(p.size_bytes() as i64)
                            // How far this replica trails the high watermark it knows of.
                            .with_offset_lag((p.high_watermark().0 - p.log_end_offset().0).max(0)),
                    );
                }
            }
            // -1 (unknown) when the file system cannot be asked.
            let space = crate::resources::disk_space(dir);
            let bytes = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            DescribeLogDirsResult::default()
                .with_log_dir(sb(dir.display().to_string()))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(sb(t)))
                                .with_partitions(ps)
                        })
                        .collect(),
                )
                .with_total_bytes(space.map_or(-1, |s| bytes(s.total_bytes)))
                .with_usable_bytes(space.map_or(-1, |s| bytes(s.usable_bytes)))
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
