//! The API versions this broker implements: exactly what ApiVersions advertises. Produce
//! v0-2 are advertised and answered, each partition with UNSUPPORTED_VERSION (as Kafka 4.0
//! does: librdkafka < 2.11.1 turns compression off when Produce v0 is missing, KAFKA-18659,
//! and an answer tells an old client why where a closed connection would not). Any other
//! version outside these ranges closes the connection, as Kafka's request parsing does; an
//! ApiVersions newer than ours gets KIP-511's v0 answer listing what we serve.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

const fn r(min: i16, max: i16) -> VersionRange {
    VersionRange { min, max }
}

/// The versions served for an API, or `None` when the API is not implemented.
pub fn supported(api: ApiKey) -> Option<VersionRange> {
    use ApiKey::*;
    Some(match api {
        // v0-2 answer UNSUPPORTED_VERSION (`produce::FIRST_SERVED_VERSION`).
        Produce => r(0, 12),
        Fetch => r(4, 17),
        ListOffsets => r(1, 9),
        Metadata => r(0, 12),
        ApiVersions => r(0, 4),
        CreateTopics => r(2, 7),
        DeleteTopics => r(1, 6),
        DeleteRecords => r(0, 2),
        InitProducerId => r(0, 5),
        OffsetForLeaderEpoch => r(2, 4),
        DescribeConfigs => r(1, 4),
        AlterConfigs => r(0, 2),
        CreatePartitions => r(0, 3),
        IncrementalAlterConfigs => r(0, 1),
        DescribeCluster => r(0, 2),
        FindCoordinator => r(0, 6),
        JoinGroup => r(0, 9),
        SyncGroup => r(0, 5),
        Heartbeat => r(0, 4),
        LeaveGroup => r(0, 5),
        // v10 of both moves to topic ids; not yet.
        OffsetCommit => r(2, 9),
        OffsetFetch => r(1, 9),
        // v5 is transactions v2: the group coordinator adds its partition implicitly.
        TxnOffsetCommit => r(0, 5),
        ListGroups => r(0, 5),
        DescribeGroups => r(0, 6),
        DeleteGroups => r(0, 2),
        // KIP-848; v1 is KIP-1082 (clients name themselves) with server-side regexes.
        ConsumerGroupHeartbeat => r(0, 1),
        // v1 adds each member's type (classic or consumer).
        ConsumerGroupDescribe => r(0, 1),
        OffsetDelete => r(0, 0),
        DescribeLogDirs => r(1, 4),
        AlterPartitionReassignments => r(0, 1),
        ListPartitionReassignments => r(0, 0),
        ElectLeaders => r(0, 2),
        SaslHandshake => r(0, 1),
        SaslAuthenticate => r(0, 2),
        DescribeUserScramCredentials => r(0, 0),
        AlterUserScramCredentials => r(0, 0),
        DescribeAcls => r(1, 3),
        CreateAcls => r(1, 3),
        DeleteAcls => r(1, 3),
        // v4+ is KIP-890's broker-to-broker form (verify, or add for transactions v2); v5
        // adds TRANSACTION_ABORTABLE.
        AddPartitionsToTxn => r(0, 5),
        AddOffsetsToTxn => r(0, 4),
        // v5 is KIP-890 part 2: an epoch bump per transaction, the next epoch in the answer.
        EndTxn => r(0, 5),
        WriteTxnMarkers => r(1, 1),
        DescribeProducers => r(0, 0),
        // KIP-546; v1 is the flexible form.
        DescribeClientQuotas => r(0, 1),
        AlterClientQuotas => r(0, 1),
        // KIP-595; v2 carries KIP-853's nodes.
        DescribeQuorum => r(0, 2),
        // KIP-853: voters changed at run time.
        AddRaftVoter => r(0, 0),
        RemoveRaftVoter => r(0, 0),
        DescribeTransactions => r(0, 0),
        // KIP-966: the Java admin client's describeTopics, paged.
        DescribeTopicPartitions => r(0, 0),
        // v1 is KIP-994's duration filter; v2 (KIP-1152's id pattern) not yet.
        ListTransactions => r(0, 1),
        _ => return None,
    })
}

/// The range put in the ApiVersions response: the served one.
pub fn advertised(api: ApiKey) -> Option<VersionRange> {
    supported(api)
}

/// The name Kafka's request metrics use for an API (`Produce`, `FetchConsumer` aside).
pub fn name(api: ApiKey) -> &'static str {
    use ApiKey::*;
    match api {
        Produce => "Produce",
        Fetch => "Fetch",
        ListOffsets => "ListOffsets",
        Metadata => "Metadata",
        ApiVersions => "ApiVersions",
        CreateTopics => "CreateTopics",
        DeleteTopics => "DeleteTopics",
        DeleteRecords => "DeleteRecords",
        InitProducerId => "InitProducerId",
        OffsetForLeaderEpoch => "OffsetForLeaderEpoch",
        DescribeConfigs => "DescribeConfigs",
        AlterConfigs => "AlterConfigs",
        CreatePartitions => "CreatePartitions",
        IncrementalAlterConfigs => "IncrementalAlterConfigs",
        DescribeCluster => "DescribeCluster",
        FindCoordinator => "FindCoordinator",
        JoinGroup => "JoinGroup",
        SyncGroup => "SyncGroup",
        Heartbeat => "Heartbeat",
        LeaveGroup => "LeaveGroup",
        OffsetCommit => "OffsetCommit",
        OffsetFetch => "OffsetFetch",
        TxnOffsetCommit => "TxnOffsetCommit",
        ListGroups => "ListGroups",
        DescribeGroups => "DescribeGroups",
        DeleteGroups => "DeleteGroups",
        ConsumerGroupHeartbeat => "ConsumerGroupHeartbeat",
        ConsumerGroupDescribe => "ConsumerGroupDescribe",
        OffsetDelete => "OffsetDelete",
        DescribeLogDirs => "DescribeLogDirs",
        AlterPartitionReassignments => "AlterPartitionReassignments",
        ListPartitionReassignments => "ListPartitionReassignments",
        ElectLeaders => "ElectLeaders",
        SaslHandshake => "SaslHandshake",
        SaslAuthenticate => "SaslAuthenticate",
        DescribeUserScramCredentials => "DescribeUserScramCredentials",
        AlterUserScramCredentials => "AlterUserScramCredentials",
        DescribeAcls => "DescribeAcls",
        CreateAcls => "CreateAcls",
        DeleteAcls => "DeleteAcls",
        AddPartitionsToTxn => "AddPartitionsToTxn",
        AddOffsetsToTxn => "AddOffsetsToTxn",
        EndTxn => "EndTxn",
        WriteTxnMarkers => "WriteTxnMarkers",
        DescribeProducers => "DescribeProducers",
        DescribeClientQuotas => "DescribeClientQuotas",
        AlterClientQuotas => "AlterClientQuotas",
        DescribeQuorum => "DescribeQuorum",
        AddRaftVoter => "AddRaftVoter",
        RemoveRaftVoter => "RemoveRaftVoter",
        DescribeTransactions => "DescribeTransactions",
        DescribeTopicPartitions => "DescribeTopicPartitions",
        ListTransactions => "ListTransactions",
        _ => "Other",
    }
}
