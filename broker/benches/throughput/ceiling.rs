// The client-bound ceiling: a trivial server that only acknowledges Produce requests. Included into main.rs (one bench crate, split only for reading).

#[derive(Default)]
struct FakeStats {
    produce_requests: AtomicU64,
    produce_version: AtomicI64,
    next_offset: AtomicI64,
}

struct FakeServer {
    addr: String,
    /// `/proc/PID/task/TID/stat` of the server's only thread.
    stat_path: String,
    stats: Arc<FakeStats>,
}

impl FakeServer {
    /// Serves on one thread (a current-thread tokio runtime) for the rest of the process.
    fn start() -> FakeServer {
        let stats = Arc::new(FakeStats::default());
        let (tx, rx) = mpsc::channel();
        let st = stats.clone();
        std::thread::Builder::new()
            .name("ack-only-server".into())
            .spawn(move || {
                let me = std::fs::read_link("/proc/thread-self")
                    .expect("cannot resolve /proc/thread-self");
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind the ack-only server");
                    let port = listener.local_addr().expect("local addr").port();
                    let stat = Path::new("/proc").join(me).join("stat");
                    let _ = tx.send((port, stat.display().to_string()));
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let st = st.clone();
                        tokio::spawn(async move {
                            if let Err(e) = fake_connection(stream, port, &st).await {
                                progress(&format!("ack-only server: connection error: {e}"));
                            }
                        });
                    }
                });
            })
            .expect("spawn the ack-only server thread");
        let (port, stat_path) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the ack-only server did not start");
        FakeServer {
            addr: format!("127.0.0.1:{port}"),
            stat_path,
            stats,
        }
    }
}

async fn fake_connection(
    stream: tokio::net::TcpStream,
    port: u16,
    st: &FakeStats,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(1 << 20, rd);
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let size = match rd.read_i32().await {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let size = usize::try_from(size).map_err(|_| bad("negative frame size"))?;
        let mut buf = Vec::with_capacity(size);
        (&mut rd).take(size as u64).read_to_end(&mut buf).await?;
        if buf.len() != size || size < 8 {
            return Ok(());
        }
        let mut frame = Bytes::from(buf);
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let Ok(api) = ApiKey::try_from(key) else {
            return Ok(());
        };
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if api == ApiKey::ApiVersions && version > 4 {
            // KIP-511: answer v0 with UNSUPPORTED_VERSION and our list; the client retries.
            let resp = fake_api_versions().with_error_code(35);
            encode_response(&mut out, correlation_id, api, 0, &resp)?;
            wr.write_all(&out).await?;
            continue;
        }
        RequestHeader::decode(&mut frame, api.request_header_version(version))
            .map_err(|e| bad(&format!("request header: {e}")))?;
        match api {
            ApiKey::ApiVersions => {
                encode_response(&mut out, correlation_id, api, version, &fake_api_versions())?
            }
            ApiKey::Metadata => {
                let req = MetadataRequest::decode(&mut frame, version)
                    .map_err(|e| bad(&format!("metadata: {e}")))?;
                encode_response(
                    &mut out,
                    correlation_id,
                    api,
                    version,
                    &fake_metadata(req, version, port),
                )?
            }
            ApiKey::Produce => {
                let req = ProduceRequest::decode(&mut frame, version)
                    .map_err(|e| bad(&format!("produce: {e}")))?;
                st.produce_requests.fetch_add(1, Ordering::Relaxed);
                st.produce_version.store(version.into(), Ordering::Relaxed);
                let acks = req.acks;
                let resp = fake_produce(req, st);
                if acks == 0 {
                    continue;
                }
                encode_response(&mut out, correlation_id, api, version, &resp)?
            }
            _ => return Ok(()),
        }
        wr.write_all(&out).await?;
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn encode_response<R: Encodable>(
    out: &mut BytesMut,
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: &R,
) -> std::io::Result<()> {
    out.clear();
    out.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, api.response_header_version(version))
        .map_err(|e| bad(&format!("encode header: {e}")))?;
    body.encode(out, version)
        .map_err(|e| bad(&format!("encode {api:?}: {e}")))?;
    let len = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn fake_api_versions() -> ApiVersionsResponse {
    let v = |k: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(k as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    ApiVersionsResponse::default().with_api_keys(vec![
        v(ApiKey::Produce, 0, 11),
        v(ApiKey::Metadata, 0, 12),
        v(ApiKey::ApiVersions, 0, 4),
    ])
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// One broker (itself, node 1); every topic asked for exists with one partition led by it.
fn fake_metadata(req: MetadataRequest, version: i16, port: u16) -> MetadataResponse {
    let names: Vec<String> = match req.topics {
        Some(list) if !list.is_empty() => list
            .into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect(),
        _ => vec![TOPIC.to_string()],
    };
    let topics = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(sb(name))))
                .with_topic_id(if version >= 10 {
                    uuid::Uuid::from_u128(0x5249_4c4c_0000_0000 + i as u128 + 1)
                } else {
                    uuid::Uuid::nil()
                })
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(1))
                    .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                    .with_replica_nodes(vec![BrokerId(1)])
                    .with_isr_nodes(vec![BrokerId(1)])])
                .with_topic_authorized_operations(i32::MIN)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(1))
            .with_host(sb("127.0.0.1"))
            .with_port(port.into())])
        .with_cluster_id((version >= 2).then(|| sb("ack-only")))
        .with_controller_id(BrokerId(if version >= 1 { 1 } else { -1 }))
        .with_topics(topics)
}

/// Acknowledges every partition: error 0, base offsets increasing by the record count.
fn fake_produce(req: ProduceRequest, st: &FakeStats) -> ProduceResponse {
    let responses = req
        .topic_data
        .into_iter()
        .map(|t| {
            let parts = t
                .partition_data
                .iter()
                .map(|p| {
                    let n = p.records.as_deref().map_or(0, count_records);
                    let base = st.next_offset.fetch_add(n, Ordering::Relaxed);
                    PartitionProduceResponse::default()
                        .with_index(p.index)
                        .with_base_offset(base)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(0)
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_partition_responses(parts)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

/// Records in a v2 record set: sum of lastOffsetDelta + 1 over its batch headers.
fn count_records(mut b: &[u8]) -> i64 {
    let mut n = 0;
    while b.len() >= 61 {
        let len = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        let delta = i32::from_be_bytes([b[23], b[24], b[25], b[26]]);
        n += i64::from(delta) + 1;
        let total = 12 + len.max(0) as usize;
        if total > b.len() {
            break;
        }
        b = &b[total..];
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Report text
