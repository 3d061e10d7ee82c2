//! Prometheus metrics, named as the JMX exporter names Kafka's MBeans in Strimzi's setup, so
//! existing dashboards and alert rules query a Rill broker unchanged. The controller gauges
//! (offline partitions, preferred-replica imbalance, global counts, fenced and active
//! brokers) are reported by the active controller only, so a sum over brokers counts each
//! once; unclean elections are counted on the broker that became leader from outside the
//! ISR. Follower traffic is `replicationbytes{in,out}`, kept out of `bytes{in,out}` as in
//! Kafka. `rill_*` names are Rill's own (limits, log dir errors, request latency).

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// The broker's metric handles.
pub struct Metrics {
    /// The registry `/metrics` renders.
    pub registry: Registry,
    /// `kafka_server_brokertopicmetrics_bytesin_total{topic}`.
    pub bytes_in: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_bytesout_total{topic}`.
    pub bytes_out: IntCounterVec,
    /// `rill_consumer_fetch_bytes_total{replica,rack}`: consumer bytes this broker sent, by
    /// whether it served them as the partition's leader or as a follower (KIP-392) and whether
    /// the client named this broker's rack (`same`, `other`, `unknown`): follower bytes to the
    /// same rack are the cross-rack traffic follower fetching saved.
    pub consumer_fetch_bytes: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_messagesin_total{topic}`.
    pub messages_in: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_totalproducerequests_total{topic}`.
    pub produce_requests: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_failedproducerequests_total{topic}`.
    pub failed_produce_requests: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_totalfetchrequests_total{topic}`.
    pub fetch_requests: IntCounterVec,
    /// `kafka_server_brokertopicmetrics_failedfetchrequests_total{topic}`.
    pub failed_fetch_requests: IntCounterVec,
    /// `kafka_network_requestmetrics_requests_total{request,version}`.
    pub requests: IntCounterVec,
    /// `kafka_network_requestmetrics_totaltimems{request}` as a histogram in seconds:
    /// `rill_request_duration_seconds{request}`.
    pub request_latency: HistogramVec,
    /// `kafka_server_replicamanager_partitioncount`.
    pub partition_count: IntGauge,
    /// `kafka_server_replicamanager_leadercount`.
    pub leader_count: IntGauge,
    /// `kafka_server_replicamanager_underreplicatedpartitions`.
    pub under_replicated: IntGauge,
    /// `kafka_server_replicamanager_underminisrpartitioncount`.
    pub under_min_isr: IntGauge,
    /// `kafka_server_replicamanager_atminisrpartitioncount`.
    pub at_min_isr: IntGauge,
    /// `kafka_server_replicamanager_isrshrinks_total`: committed ISR shrinks of partitions
    /// this broker leads (its own lag-based ones and the controller's removal of fenced
    /// followers).
    pub isr_shrinks: IntCounter,
    /// `kafka_server_replicamanager_isrexpands_total`: committed ISR expansions of partitions
    /// this broker leads.
    pub isr_expands: IntCounter,
    /// `kafka_server_brokertopicmetrics_replicationbytesin_total`: bytes this broker appended
    /// as a follower.
    pub replication_bytes_in: IntCounter,
    /// `kafka_server_brokertopicmetrics_replicationbytesout_total`: bytes this broker sent to
    /// followers (not counted in `bytesout`, as in Kafka).
    pub replication_bytes_out: IntCounter,
    /// `kafka_controller_controllerstats_uncleanleaderelections_total`: counted on the broker
    /// that became leader from outside the ISR, so the sum over brokers is the cluster's count.
    pub unclean_elections: IntCounter,
    /// `kafka_controller_kafkacontroller_activecontrollercount`.
    pub active_controller: IntGauge,
    /// `kafka_controller_kafkacontroller_offlinepartitionscount`.
    pub offline_partitions: IntGauge,
    /// `kafka_controller_kafkacontroller_preferredreplicaimbalancecount`: partitions not led by
    /// their preferred replica (this and the next four: on the active controller only).
    pub preferred_imbalance: IntGauge,
    /// `kafka_controller_kafkacontroller_globalpartitioncount`.
    pub global_partitions: IntGauge,
    /// `kafka_controller_kafkacontroller_globaltopiccount`.
    pub global_topics: IntGauge,
    /// `kafka_controller_kafkacontroller_fencedbrokercount`.
    pub fenced_brokers: IntGauge,
    /// `kafka_controller_kafkacontroller_activebrokercount`: registered, unfenced brokers.
    pub active_brokers: IntGauge,
    /// `kafka_log_log_size{topic,partition}`.
    pub log_size: IntGaugeVec,
    /// `kafka_log_log_logendoffset{topic,partition}`.
    pub log_end_offset: IntGaugeVec,
    /// `kafka_log_log_logstartoffset{topic,partition}`.
    pub log_start_offset: IntGaugeVec,
    /// `kafka_log_log_numlogsegments{topic,partition}`.
    pub log_segments: IntGaugeVec,
    /// `kafka_server_socket_server_metrics_connection_count`.
    pub connections: IntGauge,
    /// `rill_connections_refused_total{reason}`: connections closed at accept (`per_ip`:
    /// `max.connections.per.ip` reached).
    pub connections_refused: IntCounterVec,
    /// `rill_connections_closed_total{reason}`: connections the broker closed (`idle`,
    /// `slow_request`, `oversized_frame`, `malformed`, `tls_handshake`, `authentication`).
    pub connections_closed: IntCounterVec,
    /// `rill_authentications_total{listener,mechanism,result}`: SASL authentications by
    /// outcome (`success`, `failure`), Kafka's successful/failed-authentication-total.
    pub authentications: IntCounterVec,
    /// `rill_request_bytes_queued`: request bytes held in memory now (bounded by
    /// `queued.max.request.bytes`).
    pub request_bytes_queued: IntGauge,
    /// `rill_open_file_descriptors` (refreshed at scrape time).
    pub open_fds: IntGauge,
    /// `rill_max_file_descriptors`: the process's limit.
    pub max_fds: IntGauge,
    /// `rill_log_open_files`: segment and index files the log file cache holds open
    /// (refreshed at scrape time).
    pub log_open_files: IntGauge,
    /// `rill_log_max_open_files`: the cache's bound (`log.max.open.files`).
    pub log_max_open_files: IntGauge,
    /// `rill_log_file_opens_total`: files the cache opened (misses), refreshed at scrape time.
    pub log_file_opens: IntCounter,
    /// `rill_log_file_evictions_total`: descriptors the cache closed to make room.
    pub log_file_evictions: IntCounter,
    /// `rill_max_broker_partitions`: the partition replicas this node hosts at most, -1 when
    /// unbounded.
    pub max_partitions: IntGauge,
    /// `kafka_log_logmanager_offlinelogdirectorycount`: log dirs taken offline by a storage
    /// error (Kafka's OfflineLogDirectoryCount).
    pub offline_log_dirs: IntGauge,
    /// `rill_log_dir_errors_total{dir,kind}`: storage errors by log dir and kind (`no_space`,
    /// `io`, ...), every occurrence, logged or not.
    pub log_dir_errors: IntCounterVec,
    /// Transactional ids this node coordinates, by Kafka's state name (Kafka has no JMX
    /// metric for it: `rill_` name).
    pub txn_ids: IntGaugeVec,
    /// Transactions this node coordinates that are open (Ongoing or ending) for longer than
    /// their `transaction.timeout.ms`: the timeout abort should have ended them.
    pub txn_open_past_timeout: IntGauge,
    /// High watermark minus last stable offset of each led partition: how far an open (or
    /// not yet marked) transaction holds read_committed consumers back.
    pub lso_lag: IntGaugeVec,
    /// `kafka_server_group_coordinator_metrics_group_count{protocol}`: groups this node
    /// coordinates, by protocol (`classic`, `consumer`), as Kafka 4's group coordinator.
    pub group_count: IntGaugeVec,
    /// `kafka_server_group_coordinator_metrics_consumer_group_count{state}`: consumer
    /// groups (KIP-848) by state (`empty`, `assigning`, `reconciling`, `stable`).
    pub consumer_group_count: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let topic_counter = |name: &str, help: &str| -> prometheus::Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), &["topic"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> prometheus::Result<IntGauge> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let counter = |name: &str, help: &str| -> prometheus::Result<IntCounter> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let partition_gauge = |name: &str, help: &str| -> prometheus::Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), &["topic", "partition"])?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let labelled_counter =
            |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<IntCounterVec> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let requests = IntCounterVec::new(
            Opts::new(
                "kafka_network_requestmetrics_requests_total",
                "Requests received, by API and version.",
            ),
            &["request", "version"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let request_latency = HistogramVec::new(
            HistogramOpts::new(
                "rill_request_duration_seconds",
                "Time from a request's arrival to its response being queued, by API.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["request"],
        )?;
        registry.register(Box::new(request_latency.clone()))?;
        Ok(Metrics {
            bytes_in: topic_counter(
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes appended by producers.",
            )?,
            bytes_out: topic_counter(
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Bytes sent to fetchers.",
            )?,
            consumer_fetch_bytes: labelled_counter(
                "rill_consumer_fetch_bytes_total",
                "Consumer bytes sent, by the replica serving them (leader or follower, KIP-392) and whether the client is in this broker's rack (same, other, unknown).",
                &["replica", "rack"],
            )?,
            messages_in: topic_counter(
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended by producers.",
            )?,
            produce_requests: topic_counter(
                "kafka_server_brokertopicmetrics_totalproducerequests_total",
                "Produce requests per topic.",
            )?,
            failed_produce_requests: topic_counter(
                "kafka_server_brokertopicmetrics_failedproducerequests_total",
                "Failed produce requests per topic.",
            )?,
            fetch_requests: topic_counter(
                "kafka_server_brokertopicmetrics_totalfetchrequests_total",
                "Fetch requests per topic.",
            )?,
            failed_fetch_requests: topic_counter(
                "kafka_server_brokertopicmetrics_failedfetchrequests_total",
                "Failed fetch requests per topic.",
            )?,
            requests,
            request_latency,
            partition_count: gauge(
                "kafka_server_replicamanager_partitioncount",
                "Partitions hosted by this broker.",
            )?,
            leader_count: gauge(
                "kafka_server_replicamanager_leadercount",
                "Partitions this broker leads.",
            )?,
            under_replicated: gauge(
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Led partitions whose ISR is smaller than the replica set.",
            )?,
            under_min_isr: gauge(
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Led partitions whose ISR is below min.insync.replicas.",
            )?,
            at_min_isr: gauge(
                "kafka_server_replicamanager_atminisrpartitioncount",
                "Led partitions whose ISR is exactly min.insync.replicas.",
            )?,
            isr_shrinks: counter(
                "kafka_server_replicamanager_isrshrinks_total",
                "ISR shrinks of partitions this broker leads.",
            )?,
            isr_expands: counter(
                "kafka_server_replicamanager_isrexpands_total",
                "ISR expansions of partitions this broker leads.",
            )?,
            replication_bytes_in: counter(
                "kafka_server_brokertopicmetrics_replicationbytesin_total",
                "Bytes appended from leaders as a follower.",
            )?,
            replication_bytes_out: counter(
                "kafka_server_brokertopicmetrics_replicationbytesout_total",
                "Bytes sent to followers.",
            )?,
            unclean_elections: counter(
                "kafka_controller_controllerstats_uncleanleaderelections_total",
                "Times this broker became leader from outside the ISR (unclean elections).",
            )?,
            active_controller: gauge(
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the active controller.",
            )?,
            offline_partitions: gauge(
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a leader (reported by the active controller only, so a sum over brokers counts each once).",
            )?,
            preferred_imbalance: gauge(
                "kafka_controller_kafkacontroller_preferredreplicaimbalancecount",
                "Partitions not led by their preferred replica (active controller only).",
            )?,
            global_partitions: gauge(
                "kafka_controller_kafkacontroller_globalpartitioncount",
                "Partitions in the cluster (active controller only).",
            )?,
            global_topics: gauge(
                "kafka_controller_kafkacontroller_globaltopiccount",
                "Topics in the cluster (active controller only).",
            )?,
            fenced_brokers: gauge(
                "kafka_controller_kafkacontroller_fencedbrokercount",
                "Registered brokers that are fenced (active controller only).",
            )?,
            active_brokers: gauge(
                "kafka_controller_kafkacontroller_activebrokercount",
                "Registered brokers that are not fenced (active controller only).",
            )?,
            log_size: partition_gauge("kafka_log_log_size", "Bytes on disk of a partition's log.")?,
            log_end_offset: partition_gauge(
                "kafka_log_log_logendoffset",
                "Log end offset of a partition.",
            )?,
            log_start_offset: partition_gauge(
                "kafka_log_log_logstartoffset",
                "Log start offset of a partition.",
            )?,
            log_segments: partition_gauge(
                "kafka_log_log_numlogsegments",
                "Segments in a partition's log.",
            )?,
            connections: gauge(
                "kafka_server_socket_server_metrics_connection_count",
                "Open client connections.",
            )?,
            connections_refused: labelled_counter(
                "rill_connections_refused_total",
                "Connections closed at accept, by reason (per_ip: max.connections.per.ip reached).",
                &["reason"],
            )?,
            connections_closed: labelled_counter(
                "rill_connections_closed_total",
                "Connections closed by the broker, by reason (idle, slow_request, oversized_frame, malformed, tls_handshake, authentication).",
                &["reason"],
            )?,
            authentications: labelled_counter(
                "rill_authentications_total",
                "SASL authentications by listener, mechanism and result (success, failure).",
                &["listener", "mechanism", "result"],
            )?,
            request_bytes_queued: gauge(
                "rill_request_bytes_queued",
                "Request bytes held in memory (bounded by queued.max.request.bytes).",
            )?,
            open_fds: gauge(
                "rill_open_file_descriptors",
                "File descriptors this process has open.",
            )?,
            log_open_files: gauge(
                "rill_log_open_files",
                "Segment and index files the log file cache holds open.",
            )?,
            log_max_open_files: gauge(
                "rill_log_max_open_files",
                "The most segment and index files the log file cache holds open (log.max.open.files).",
            )?,
            log_file_opens: counter(
                "rill_log_file_opens_total",
                "Segment and index files opened by the log file cache (misses).",
            )?,
            log_file_evictions: counter(
                "rill_log_file_evictions_total",
                "Descriptors the log file cache closed to make room for others.",
            )?,
            max_fds: gauge(
                "rill_max_file_descriptors",
                "The process's file-descriptor limit.",
            )?,
            max_partitions: gauge(
                "rill_max_broker_partitions",
                "Partition replicas this node hosts at most (max.broker.partitions); -1 when unbounded.",
            )?,
            offline_log_dirs: gauge(
                "kafka_log_logmanager_offlinelogdirectorycount",
                "Log dirs taken offline by a storage error.",
            )?,
            log_dir_errors: labelled_counter(
                "rill_log_dir_errors_total",
                "Storage errors by log dir and kind (no_space, io, read_only, ...).",
                &["dir", "kind"],
            )?,
            txn_ids: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "rill_transaction_coordinator_transactional_ids",
                        "Transactional ids this node coordinates, by state (Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead, PrepareEpochFence).",
                    ),
                    &["state"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            group_count: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "kafka_server_group_coordinator_metrics_group_count",
                        "Groups this node coordinates, by protocol (classic, consumer).",
                    ),
                    &["protocol"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            consumer_group_count: {
                let g = IntGaugeVec::new(
                    Opts::new(
                        "kafka_server_group_coordinator_metrics_consumer_group_count",
                        "Consumer groups (KIP-848 protocol) this node coordinates, by state (empty, assigning, reconciling, stable).",
                    ),
                    &["state"],
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            txn_open_past_timeout: gauge(
                "rill_transaction_coordinator_open_past_timeout",
                "Transactions this node coordinates that are open for longer than their transaction.timeout.ms.",
            )?,
            lso_lag: partition_gauge(
                "rill_log_last_stable_offset_lag",
                "High watermark minus last stable offset of a partition this node leads (records read_committed consumers cannot read yet).",
            )?,
            registry,
        })
    }
}
