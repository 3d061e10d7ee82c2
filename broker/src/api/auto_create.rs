//! Auto-creation of topics (`auto.create.topics.enable`), Kafka's policy: a Metadata request
//! that allows it creates a missing topic with the broker's defaults; internal topics are
//! made with their own settings, never the user defaults.

use crate::context::Broker;
use crate::controller::TopicCreation;
use crate::error::KafkaError;

/// Creates `name` on first use.
pub async fn auto_create(b: &Broker, name: &str) -> Result<(), KafkaError> {
    if name == crate::group::store::OFFSETS_TOPIC {
        return b
            .groups
            .ensure_offsets_topic()
            .await
            .map_err(|e| KafkaError::Unknown(format!("cannot create {name}: {e}")));
    }
    if name == "__transaction_state" {
        return Err(KafkaError::UnknownTopicOrPartition(
            "transactions are not available on this cluster yet".into(),
        ));
    }
    let t = TopicCreation {
        name: name.to_string(),
        partitions: b.config.num_partitions,
        replication_factor: b
            .config
            .default_replication_factor
            .min(b.controller.image().brokers.len() as i16)
            .max(1),
        assignment: None,
        configs: Default::default(),
    };
    match b.controller.create_topic(t, false).await {
        Ok(_) => {
            tracing::info!(topic = name, "auto-created topic");
            Ok(())
        }
        // Another connection won the race: fine.
        Err(KafkaError::TopicAlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
