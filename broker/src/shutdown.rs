//! The node's shutdown signal: set once when a stop begins; tasks that must finish their
//! current work (connections answering the request in hand) watch it instead of being
//! aborted mid-request.

use tokio::sync::watch;

/// Owned by the node; [`Shutdown::begin`] starts the stop.
#[derive(Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

/// A task's view of the signal.
#[derive(Debug, Clone)]
pub struct Closing {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// Not shutting down.
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// Starts the stop: every [`Closing`] sees it.
    pub fn begin(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the stop has begun.
    pub fn is_closing(&self) -> bool {
        *self.tx.borrow()
    }

    /// A handle for a task.
    pub fn watch(&self) -> Closing {
        Closing {
            rx: self.tx.subscribe(),
        }
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Closing {
    /// Whether the stop has begun.
    pub fn is_closing(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the stop has begun (at once if it has).
    pub async fn closed(&mut self) {
        // The sender lives as long as the node; if it is gone, the node is gone too.
        let _ = self.rx.wait_for(|c| *c).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_watcher_sees_the_stop() {
        let s = Shutdown::new();
        let mut a = s.watch();
        let b = s.watch();
        assert!(!a.is_closing() && !s.is_closing());
        let waiter = tokio::spawn(async move { a.closed().await });
        s.begin();
        waiter.await.unwrap();
        assert!(b.is_closing() && s.is_closing());
    }
}
