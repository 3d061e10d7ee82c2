//! The node's shared context: the components request handlers and the HTTP API reach,
//! assembled by `server::start`. It holds handles only, no policy and no handler's private
//! state (those live with their handler in `api/`), and sits below `net`, `api` and `http`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::config::BrokerConfig;
use crate::controller::Controller;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::replica::ReplicaManager;
use crate::shutdown::Shutdown;
use crate::txn::TxnCoordinator;

/// Everything a request handler can reach.
pub struct Broker {
    /// Static configuration.
    pub config: Arc<BrokerConfig>,
    /// The metadata writer and image.
    pub controller: Arc<Controller>,
    /// Hosted partitions.
    pub replicas: Arc<ReplicaManager>,
    /// Metric handles.
    pub metrics: Arc<Metrics>,
    /// Consumer groups coordinated here.
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids coordinated here.
    pub txns: Arc<TxnCoordinator>,
    /// True once every hosted partition is loaded and the listeners are up.
    pub ready: AtomicBool,
    /// Begun at shutdown: connections stop taking requests before logs are closed.
    pub shutdown: Shutdown,
    /// Client quota sensors.
    pub quotas: crate::quota::QuotaManager,
    /// ACL checks, when `authorizer.class.name` names the standard authorizer.
    pub authorizer: Option<crate::security::authorizer::Authorizer>,
}
