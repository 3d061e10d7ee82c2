//! The fuzz engine shared by the CI fuzz test (`tests/fuzz.rs`) and the long run
//! (`benches/fuzz.rs`): a corpus of real client frames (`tests/fuzz-corpus/`, recorded by
//! `cargo run -p rill-broker --example record_fuzz_corpus`), frames re-encoded for every
//! version this broker advertises, deterministic mutations of them, and the targets: the
//! server's decode step, the client-side response decoders, and record-batch validation and
//! decompression. Every input is a pure function of (seed, index), so a failure is replayed
//! with `RILL_FUZZ_SEED` and `RILL_FUZZ_INDEX`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Where the recorded corpus lives.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

/// splitmix64: small, fast, and the same stream for the same seed everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// True with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

/// One recorded exchange: a request frame (without its size prefix) and, when recorded, the
/// broker's response frame to it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The file it came from (for messages).
    pub name: String,
    /// The API and version of the request.
    pub api: ApiKey,
    /// The request's version.
    pub version: i16,
    /// Request frame: header and body.
    pub request: Bytes,
    /// Response frame: header and body.
    pub response: Option<Bytes>,
}

/// Loads the recorded corpus: files `<client>-<n>-<api key>-v<version>.req` with an optional
/// `.resp` beside each.
pub fn load_corpus() -> Vec<Exchange> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(corpus_dir()) else {
        return out;
    };
    let mut names: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for path in names {
        if path.extension().and_then(|e| e.to_str()) != Some("req") {
            continue;
        }
        let Ok(request) = std::fs::read(&path) else {
            continue;
        };
        if request.len() < 4 {
            continue;
        }
        let key = i16::from_be_bytes([request[0], request[1]]);
        let version = i16::from_be_bytes([request[2], request[3]]);
        let Ok(api) = ApiKey::try_from(key) else {
            continue;
        };
        let response = std::fs::read(path.with_extension("resp"))
            .ok()
            .map(Bytes::from);
        out.push(Exchange {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            api,
            version,
            request: Bytes::from(request),
            response,
        });
    }
    out
}

/// A request frame: header (correlation id 7, client id "fuzz") and body at `version`.
pub fn encode_request(api: ApiKey, version: i16, body: &RequestKind) -> Option<Bytes> {
    let mut b = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(kafka_protocol::protocol::StrBytes::from_static_str(
            "fuzz",
        )))
        .encode(&mut b, api.request_header_version(version))
        .ok()?;
    body.encode(&mut b, version).ok()?;
    Some(b.freeze())
}

/// The seed frames: every recorded request, plus each recorded request re-encoded at every
/// version the broker advertises for its API (so every advertised ApiKey and version has
/// well-formed frames to mutate from), by API and version.
pub fn seeds(corpus: &[Exchange]) -> BTreeMap<(i16, i16), Vec<Bytes>> {
    let mut out: BTreeMap<(i16, i16), Vec<Bytes>> = BTreeMap::new();
    for e in corpus {
        out.entry((e.api as i16, e.version))
            .or_default()
            .push(e.request.clone());
        let mut frame = e.request.clone();
        let Ok(header) = RequestHeader::decode(&mut frame, e.api.request_header_version(e.version))
        else {
            continue;
        };
        let _ = header;
        let Ok(body) = RequestKind::decode(e.api, &mut frame, e.version) else {
            continue;
        };
        let Some(range) = rill_broker::api::versions::advertised(e.api) else {
            continue;
        };
        for v in range.min..=range.max {
            if v == e.version {
                continue;
            }
            if let Some(f) = encode_request(e.api, v, &body) {
                out.entry((e.api as i16, v)).or_default().push(f);
            }
        }
    }
    for (api, body) in default_requests() {
        let Some(range) = rill_broker::api::versions::advertised(api) else {
            continue;
        };
        for v in range.min..=range.max {
            // A version the crate cannot encode gets a header-only frame to grow from.
            let f = encode_request(api, v, &body).unwrap_or_else(|| {
                let mut b = Vec::new();
                b.extend_from_slice(&(api as i16).to_be_bytes());
                b.extend_from_slice(&v.to_be_bytes());
                b.extend_from_slice(&7i32.to_be_bytes());
                b.extend_from_slice(&(-1i16).to_be_bytes());
                Bytes::from(b)
            });
            out.entry((api as i16, v)).or_default().push(f);
        }
    }
    out
}

/// A default (empty) request of every API the broker serves, so each advertised version has a
/// well-formed seed even where no recorded client used the API.
pub fn default_requests() -> Vec<(ApiKey, RequestKind)> {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    vec![
        (ApiKey::Produce, RequestKind::Produce(Default::default())),
        (ApiKey::Fetch, RequestKind::Fetch(Default::default())),
        (
            ApiKey::ListOffsets,
            RequestKind::ListOffsets(Default::default()),
        ),
        (ApiKey::Metadata, RequestKind::Metadata(Default::default())),
        (
            ApiKey::OffsetCommit,
            RequestKind::OffsetCommit(Default::default()),
        ),
        (
            ApiKey::OffsetFetch,
            RequestKind::OffsetFetch(Default::default()),
        ),
        (
            ApiKey::TxnOffsetCommit,
            RequestKind::TxnOffsetCommit(Default::default()),
        ),
        (
            ApiKey::AddPartitionsToTxn,
            RequestKind::AddPartitionsToTxn(Default::default()),
        ),
        (
            ApiKey::AddOffsetsToTxn,
            RequestKind::AddOffsetsToTxn(Default::default()),
        ),
        (ApiKey::EndTxn, RequestKind::EndTxn(Default::default())),
        (
            ApiKey::WriteTxnMarkers,
            RequestKind::WriteTxnMarkers(Default::default()),
        ),
        (
            ApiKey::DescribeProducers,
            RequestKind::DescribeProducers(Default::default()),
        ),
        (
            ApiKey::DescribeQuorum,
            RequestKind::DescribeQuorum(Default::default()),
        ),
        // A cluster id no broker has: a mutation must not change the fuzzed broker's voters.
        (
            ApiKey::AddRaftVoter,
            RequestKind::AddRaftVoter(AddRaftVoterRequest::default().with_cluster_id(Some(
                kafka_protocol::protocol::StrBytes::from_static_str("fuzz-not-this-cluster"),
            ))),
        ),
        (
            ApiKey::RemoveRaftVoter,
            RequestKind::RemoveRaftVoter(RemoveRaftVoterRequest::default().with_cluster_id(Some(
                kafka_protocol::protocol::StrBytes::from_static_str("fuzz-not-this-cluster"),
            ))),
        ),
        (
            ApiKey::ConsumerGroupHeartbeat,
            // A member joining with names, a regex and (empty) owned partitions: every
            // nullable field present, so mutations reach each.
            RequestKind::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatRequest::default()
                    .with_group_id(GroupId(StrBytes::from_static_str("fuzz-group")))
                    .with_member_id(StrBytes::from_static_str("fuzz-member"))
                    .with_member_epoch(0)
                    .with_instance_id(Some(StrBytes::from_static_str("fuzz-instance")))
                    .with_rack_id(Some(StrBytes::from_static_str("rack-a")))
                    .with_rebalance_timeout_ms(30_000)
                    .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str(
                        "fuzz-topic",
                    ))]))
                    .with_subscribed_topic_regex(Some(StrBytes::from_static_str("^fuzz-.*")))
                    .with_server_assignor(Some(StrBytes::from_static_str("uniform")))
                    .with_topic_partitions(Some(vec![
                        consumer_group_heartbeat_request::TopicPartitions::default()
                            .with_topic_id(uuid::Uuid::from_u128(7))
                            .with_partitions(vec![0, 1, 2]),
                    ])),
            ),
        ),
        (
            ApiKey::ConsumerGroupDescribe,
            RequestKind::ConsumerGroupDescribe(
                ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![GroupId(StrBytes::from_static_str("fuzz-group"))])
                    .with_include_authorized_operations(true),
            ),
        ),
        (
            ApiKey::DescribeClientQuotas,
            RequestKind::DescribeClientQuotas(Default::default()),
        ),
        (
            ApiKey::AlterClientQuotas,
            RequestKind::AlterClientQuotas(
                // validate_only: a mutation must not leave quotas that slow the fuzzer.
                AlterClientQuotasRequest::default()
                    .with_validate_only(true)
                    .with_entries(vec![alter_client_quotas_request::EntryData::default()
                        .with_entity(vec![alter_client_quotas_request::EntityData::default()
                            .with_entity_type(kafka_protocol::protocol::StrBytes::from_static_str(
                                "client-id",
                            ))
                            .with_entity_name(Some(
                                kafka_protocol::protocol::StrBytes::from_static_str("fuzz"),
                            ))])
                        .with_ops(vec![alter_client_quotas_request::OpData::default()
                            .with_key(kafka_protocol::protocol::StrBytes::from_static_str(
                                "request_percentage",
                            ))
                            .with_value(1e6)])]),
            ),
        ),
        (
            ApiKey::DescribeTransactions,
            RequestKind::DescribeTransactions(Default::default()),
        ),
        (
            ApiKey::ListTransactions,
            RequestKind::ListTransactions(Default::default()),
        ),
        (
            ApiKey::FindCoordinator,
            RequestKind::FindCoordinator(Default::default()),
        ),
        (
            ApiKey::JoinGroup,
            RequestKind::JoinGroup(Default::default()),
        ),
        (
            ApiKey::Heartbeat,
            RequestKind::Heartbeat(Default::default()),
        ),
        (
            ApiKey::LeaveGroup,
            RequestKind::LeaveGroup(Default::default()),
        ),
        (
            ApiKey::SyncGroup,
            RequestKind::SyncGroup(Default::default()),
        ),
        (
            ApiKey::DescribeGroups,
            RequestKind::DescribeGroups(Default::default()),
        ),
        (
            ApiKey::ListGroups,
            RequestKind::ListGroups(Default::default()),
        ),
        (
            ApiKey::ApiVersions,
            RequestKind::ApiVersions(Default::default()),
        ),
        (
            ApiKey::CreateTopics,
            RequestKind::CreateTopics(Default::default()),
        ),
        (
            ApiKey::DeleteTopics,
            RequestKind::DeleteTopics(Default::default()),
        ),
        (
            ApiKey::DeleteRecords,
            RequestKind::DeleteRecords(Default::default()),
        ),
        (
            ApiKey::InitProducerId,
            RequestKind::InitProducerId(Default::default()),
        ),
        (
            ApiKey::OffsetForLeaderEpoch,
            RequestKind::OffsetForLeaderEpoch(Default::default()),
        ),
        (
            ApiKey::DescribeConfigs,
            RequestKind::DescribeConfigs(Default::default()),
        ),
        (
            ApiKey::AlterConfigs,
            RequestKind::AlterConfigs(Default::default()),
        ),
        (
            ApiKey::DescribeLogDirs,
            RequestKind::DescribeLogDirs(Default::default()),
        ),
        (
            ApiKey::CreatePartitions,
            RequestKind::CreatePartitions(Default::default()),
        ),
        (
            ApiKey::DeleteGroups,
            RequestKind::DeleteGroups(Default::default()),
        ),
        (
            ApiKey::ElectLeaders,
            RequestKind::ElectLeaders(Default::default()),
        ),
        (
            ApiKey::IncrementalAlterConfigs,
            RequestKind::IncrementalAlterConfigs(Default::default()),
        ),
        (
            ApiKey::AlterPartitionReassignments,
            RequestKind::AlterPartitionReassignments(Default::default()),
        ),
        (
            ApiKey::ListPartitionReassignments,
            RequestKind::ListPartitionReassignments(Default::default()),
        ),
        (
            ApiKey::OffsetDelete,
            RequestKind::OffsetDelete(Default::default()),
        ),
        (
            ApiKey::DescribeCluster,
            RequestKind::DescribeCluster(Default::default()),
        ),
        (
            ApiKey::SaslHandshake,
            RequestKind::SaslHandshake(SaslHandshakeRequest::default().with_mechanism(
                kafka_protocol::protocol::StrBytes::from_static_str("SCRAM-SHA-512"),
            )),
        ),
        (
            ApiKey::SaslAuthenticate,
            RequestKind::SaslAuthenticate(
                SaslAuthenticateRequest::default()
                    .with_auth_bytes(Bytes::from_static(b"n,,n=alice,r=abcdefgh")),
            ),
        ),
        (
            ApiKey::DescribeUserScramCredentials,
            RequestKind::DescribeUserScramCredentials(Default::default()),
        ),
        (
            ApiKey::AlterUserScramCredentials,
            RequestKind::AlterUserScramCredentials(Default::default()),
        ),
        (
            ApiKey::CreateAcls,
            RequestKind::CreateAcls(Default::default()),
        ),
        (
            ApiKey::DescribeAcls,
            RequestKind::DescribeAcls(Default::default()),
        ),
        (
            ApiKey::DeleteAcls,
            RequestKind::DeleteAcls(Default::default()),
        ),
        (
            ApiKey::DescribeTopicPartitions,
            RequestKind::DescribeTopicPartitions(
                DescribeTopicPartitionsRequest::default().with_response_partition_limit(2000),
            ),
        ),
    ]
}

/// Every (API key, version) the broker advertises in ApiVersions.
pub fn advertised() -> Vec<(ApiKey, i16)> {
    let mut out = Vec::new();
    for key in 0..=i16::MAX {
        let Ok(api) = ApiKey::try_from(key) else {
            if key > 2000 {
                break;
            }
            continue;
        };
        if let Some(r) = rill_broker::api::versions::advertised(api) {
            for v in r.min..=r.max {
                out.push((api, v));
            }
        }
    }
    out
}

/// Integers that break decoders: boundaries and the values counts and lengths take.
const INTERESTING: &[i64] = &[
    -1,
    0,
    1,
    2,
    7,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    -0x8000_0000,
    0x1_0000,
    1 << 20,
    i64::MAX,
];

/// A mutation of `seed`, drawing a second frame from `others` for splices.
pub fn mutate(rng: &mut Rng, seed: &[u8], others: &[&[u8]]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        // Leave the API key and version (the first 4 bytes) alone most of the time, so the
        // mutations reach the body decoders of the intended API.
        let from = if rng.one_in(10) || b.len() <= 4 { 0 } else { 4 };
        let at = from + rng.below(b.len().saturating_sub(from).max(1));
        match rng.below(10) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = rng.next() as u8;
            }
            2 | 3 => {
                // An interesting integer, big-endian, of 1, 2, 4 or 8 bytes.
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1usize, 2, 4, 8][rng.below(4)];
                let bytes = v.to_be_bytes();
                for (k, byte) in bytes[8 - width..].iter().enumerate() {
                    if let Some(slot) = b.get_mut(at + k) {
                        *slot = *byte;
                    }
                }
            }
            4 => {
                // An unsigned varint (compact counts and lengths) at `at`.
                let v = INTERESTING[rng.below(INTERESTING.len())] as u64 & 0xffff_ffff;
                let mut enc = Vec::new();
                let mut x = v;
                loop {
                    if x < 0x80 {
                        enc.push(x as u8);
                        break;
                    }
                    enc.push((x as u8 & 0x7f) | 0x80);
                    x >>= 7;
                }
                let at = at.min(b.len());
                let end = (at + 1).min(b.len());
                b.splice(at..end, enc);
            }
            5 => b.truncate(at),
            6 if at < b.len() => {
                let len = 1 + rng.below(16.min(b.len() - at));
                b.drain(at..at + len);
            }
            7 => {
                let n = 1 + rng.below(32);
                let at = at.min(b.len());
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, junk);
            }
            8 if !others.is_empty() => {
                // Splice: our head, another frame's tail.
                let o = others[rng.below(others.len())];
                let cut = rng.below(o.len().max(1));
                b.truncate(at.min(b.len()));
                b.extend_from_slice(&o[cut.min(o.len())..]);
            }
            _ if at < b.len() => {
                // Duplicate a region (repeated array elements).
                let len = 1 + rng.below(64.min(b.len() - at));
                let region = b[at..at + len].to_vec();
                b.splice(at..at, region);
            }
            _ => {}
        }
    }
    b
}

/// A frame with a valid request header prefix for `api`/`version` and random bytes after it.
pub fn random_frame(rng: &mut Rng, api: ApiKey, version: i16) -> Vec<u8> {
    let mut b = Vec::with_capacity(64);
    b.extend_from_slice(&(api as i16).to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&7i32.to_be_bytes());
    let n = rng.below(96);
    b.extend((0..n).map(|_| rng.next() as u8));
    b
}

/// Decodes a response frame as the client does: header, then the body of `api`/`version`.
pub fn decode_response(api: ApiKey, version: i16, frame: &[u8]) -> bool {
    let mut b = Bytes::copy_from_slice(frame);
    if ResponseHeader::decode(&mut b, api.response_header_version(version)).is_err() {
        return false;
    }
    ResponseKind::decode(api, &mut b, version).is_ok()
}

/// Runs the record-batch code every produce reaches: structure and CRC validation, then the
/// streaming record walk and the bounded whole-batch decode of each batch.
pub fn exercise_batches(records: &[u8]) {
    if let Ok(batches) = rill_broker::log::batch::validate(records) {
        for b in batches {
            let Some(bytes) = records.get(b.position..b.position + b.header.total_size()) else {
                continue;
            };
            let _ = rill_client::records::walk(bytes, |_| true);
            let _ = rill_client::records::decode_batch(bytes);
        }
    }
    // Also without the CRC gate, as stored data (a follower's fetch) is walked.
    let _ = rill_client::records::walk(records, |_| true);
}

/// The record sets carried by a Produce request frame (for the batch targets).
pub fn produce_records(frame: &[u8]) -> Vec<Bytes> {
    match rill_broker::api::decode::decode(Bytes::copy_from_slice(frame)) {
        Ok(rill_broker::api::decode::Decoded::Request {
            body: RequestKind::Produce(p),
            ..
        }) => p
            .topic_data
            .into_iter()
            .flat_map(|t| t.partition_data.into_iter().filter_map(|pd| pd.records))
            .collect(),
        _ => Vec::new(),
    }
}

/// Allocation allowed per input: this many bytes per input byte, plus [`ALLOC_SLACK`].
pub const ALLOC_PER_BYTE: usize = 64;
/// See [`ALLOC_PER_BYTE`].
pub const ALLOC_SLACK: usize = 1 << 20;

/// What one input exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The server's decode step.
    Request,
    /// The client's response decoders.
    Response,
    /// Record-batch validation, walk and bounded decode.
    Batches,
    /// The controller RPC parser.
    Rpc,
    /// SASL tokens: the SCRAM server's two steps and PLAIN's parser.
    Sasl,
}

/// Well-formed SASL tokens to mutate: SCRAM client-first and client-final, PLAIN.
const SASL_SEEDS: &[&[u8]] = &[
    b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL",
    b"n,a=alice,n=alice,r=abc,ext=1",
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    b"\0bob\0bob-secret",
];

/// The seeds and how input `i` of a stream is made from them.
pub struct Inputs {
    /// Well-formed request frames, by (API key, version).
    pub seeds: Vec<((i16, i16), Vec<Bytes>)>,
    /// Every advertised (API, version).
    pub advertised: Vec<(ApiKey, i16)>,
    /// Recorded responses.
    pub responses: Vec<(ApiKey, i16, Bytes)>,
    /// Record sets from recorded Produce requests.
    pub batches: Vec<Bytes>,
    /// Controller RPC frames.
    pub rpc: Vec<Vec<u8>>,
}

impl Inputs {
    /// Loads the corpus and builds the seeds.
    pub fn load() -> Inputs {
        let corpus = load_corpus();
        let seeds = seeds(&corpus);
        let batches = corpus
            .iter()
            .filter(|e| e.api == ApiKey::Produce)
            .flat_map(|e| produce_records(&e.request))
            .collect();
        Inputs {
            advertised: advertised(),
            responses: corpus
                .iter()
                .filter_map(|e| Some((e.api, e.version, e.response.clone()?)))
                .collect(),
            seeds: seeds.into_iter().collect(),
            batches,
            rpc: rill_broker::controller::raft::network::sample_requests(),
        }
    }

    /// Input `i` of stream `seed`: its target and bytes.
    pub fn input(&self, seed: u64, i: u64) -> (Target, Vec<u8>) {
        let mut rng = Rng::new(seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407));
        let roll = rng.below(100);
        if roll < 60 {
            if rng.one_in(5) {
                let (api, v) = self.advertised[rng.below(self.advertised.len())];
                return (Target::Request, random_frame(&mut rng, api, v));
            }
            let (_, frames) = &self.seeds[rng.below(self.seeds.len())];
            let seed_frame = &frames[rng.below(frames.len())];
            let (_, other) = &self.seeds[rng.below(self.seeds.len())];
            let others: Vec<&[u8]> = other.iter().map(|b| &b[..]).collect();
            (Target::Request, mutate(&mut rng, seed_frame, &others))
        } else if roll < 80 {
            let (api, v, r) = &self.responses[rng.below(self.responses.len())];
            let mut b = (*api as i16).to_be_bytes().to_vec();
            b.extend_from_slice(&v.to_be_bytes());
            b.extend(mutate(&mut rng, r, &[]));
            (Target::Response, b)
        } else if roll < 95 {
            let batch = &self.batches[rng.below(self.batches.len())];
            let others: Vec<&[u8]> = self.batches.iter().map(|b| &b[..]).collect();
            (Target::Batches, mutate(&mut rng, batch, &others))
        } else if roll < 98 {
            let r = &self.rpc[rng.below(self.rpc.len())];
            (Target::Rpc, mutate(&mut rng, r, &[]))
        } else {
            let t = SASL_SEEDS[rng.below(SASL_SEEDS.len())];
            (Target::Sasl, mutate(&mut rng, t, SASL_SEEDS))
        }
    }
}

/// Feeds `bytes` to `target`.
pub fn run(target: Target, bytes: &[u8]) {
    match target {
        Target::Request => {
            let _ = rill_broker::api::decode::decode(Bytes::copy_from_slice(bytes));
        }
        Target::Response => {
            if bytes.len() >= 4 {
                let key = i16::from_be_bytes([bytes[0], bytes[1]]);
                let version = i16::from_be_bytes([bytes[2], bytes[3]]);
                if let Ok(api) = ApiKey::try_from(key) {
                    decode_response(api, version, &bytes[4..]);
                }
            }
        }
        Target::Batches => exercise_batches(bytes),
        Target::Rpc => {
            let _ = rill_broker::controller::raft::network::parse_request(bytes);
            let _ = rill_broker::controller::raft::network::parse_reply(bytes);
        }
        Target::Sasl => {
            use rill_broker::security::sasl::{parse_plain, ScramMechanism, ScramServer};
            // As a client-first, then (after a valid first) as a client-final.
            let mut s = ScramServer::new(ScramMechanism::Sha256);
            let _ = s.step(bytes, |_| None);
            let mut s = ScramServer::new(ScramMechanism::Sha512);
            if s.step(b"n,,n=alice,r=fyko", |_| None).is_ok() {
                let _ = s.step(bytes, |_| None);
            }
            let _ = parse_plain(bytes);
        }
    }
}

/// Runs one input under the panic and allocation oracles (`allocated` reads the binary's
/// counting allocator: bytes allocated so far, freed ones included): the bytes it allocated,
/// or which oracle it broke.
pub fn check(target: Target, bytes: &[u8], allocated: impl Fn() -> usize) -> Result<usize, String> {
    let before = allocated();
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| run(target, bytes)));
    let used = allocated() - before;
    if let Err(p) = r {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        return Err(format!("{target:?} panicked: {msg}"));
    }
    if used > ALLOC_PER_BYTE * bytes.len() + ALLOC_SLACK {
        return Err(format!(
            "{target:?} allocated {used} bytes for a {}-byte input",
            bytes.len()
        ));
    }
    Ok(used)
}
