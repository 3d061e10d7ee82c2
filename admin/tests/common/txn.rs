//! A transaction no coordinator knows, for the transaction tests of `rill transactions` and
//! the console.

use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use rill_client::{Connection, ConnectionConfig};

use super::BrokerProc;

/// Opens a transaction in `topic`-0 that no coordinator knows: an idempotent producer id and a
/// transactional batch sent without a transactional id, stamped 30 minutes ago. Returns the
/// producer id and epoch.
pub fn hang(b: &BrokerProc, topic: &str) -> (i64, i16) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut c = Connection::connect(&b.bootstrap, ConnectionConfig::default())
            .await
            .expect("connect");
        let init = c
            .send(
                InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )
            .await
            .expect("InitProducerId");
        assert_eq!(init.error_code, 0);
        let (pid, epoch) = (init.producer_id.0, init.producer_epoch);
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64
            - 30 * 60_000;
        let batch = super::batches::txn_batch(pid, epoch, 3, ts, "stuck");
        let r = c
            .send(
                ProduceRequest::default()
                    .with_transactional_id(None)
                    .with_acks(-1)
                    .with_timeout_ms(10_000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch))])]),
            )
            .await
            .expect("Produce");
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        (pid, epoch)
    })
}
