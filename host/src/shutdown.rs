//! SIGINT and SIGTERM: a sync stops between pages, its sync log row says `interrupted`,
//! and the lock is released.

use tokio::signal::unix::{SignalKind, signal};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Resolves at the first SIGINT or SIGTERM. If a handler cannot be installed, that
/// signal keeps its default action.
pub async fn signalled() -> Signal {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Signal::Interrupt,
            Err(_) => std::future::pending().await,
        }
    };
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
                Signal::Terminate
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        signal = interrupt => signal,
        signal = terminate => signal,
    }
}
