//! `rill-broker`: one node of a Rill cluster. It speaks the Kafka wire protocol (through the
//! `kafka-protocol` crate), stores partitions in Kafka's segmented log layout, and serves an
//! HTTP admin/metrics API. See ARCHITECTURE.md for the map.

pub mod api;
pub mod config;
pub mod context;
pub mod controller;
pub mod error;
pub mod group;
pub mod http;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod node;
pub mod quota;
pub mod repeated;
pub mod replica;
pub mod resources;
pub mod security;
pub mod server;
pub mod shutdown;
pub mod time;
pub mod txn;
pub mod types;
