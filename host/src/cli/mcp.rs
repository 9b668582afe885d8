//! `testio-sync mcp`: the MCP server on stdin/stdout, with the background scheduler in
//! the same process unless TESTIO_REFRESH_INTERVAL_SECONDS is 0. Logs go to stderr:
//! stdout carries the protocol.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rmcp::ServiceExt;

use super::Exit;
use super::daemon::Schedule;
use super::sync::Target;
use crate::mcp::{SyncServer, stdio};
use crate::shutdown;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    schedule: Schedule,
    #[command(flatten)]
    target: Target,
}

/// How long a stopping server waits for its syncs to record that they stopped.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How long a client that closed stdin may wait for the answers to what it sent.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let fleet = Arc::new(tokio::task::block_in_place(|| args.schedule.fleet(&args.target))?);
    let server = SyncServer::new(fleet.clone());
    let scheduled: Vec<String> = fleet
        .members()
        .iter()
        .map(|m| match &m.scheduler {
            Some(s) => format!("{} every {}s", m.name(), s.status().interval_seconds),
            None => format!("{} off", m.name()),
        })
        .collect();
    tracing::info!("MCP server on stdio, scheduler: {}", scheduled.join(", "));
    // The reason is set before rmcp sees the end of stdin and cancels the calls in flight.
    let disconnected = {
        let fleet = fleet.clone();
        move || fleet.stop("the MCP client disconnected")
    };
    let (transport, written) = stdio::start(disconnected)?;
    // The scheduler runs from the start, not only once a client has said hello.
    let session = async {
        let ended = serve(server.clone(), transport).await;
        // Stopping syncs say why; at the end of stdin this was said first.
        fleet.stop("the MCP session ended");
        ended
    };
    let background = fleet.run_schedulers();
    let signalled = async {
        let signal = shutdown::signalled().await;
        fleet.stop(&format!("interrupted by {}", signal.name()));
        signal
    };
    // Whatever ends the server, syncs still under way are interrupted (their rows say
    // why) and the lock is released as their futures are dropped: the scheduler's here,
    // the calls' as the dropped session cancels them.
    let ended = tokio::select! {
        // In this order: the signal handlers are installed (on the first poll) before rmcp
        // can answer the client, who may signal as soon as it has an answer.
        biased;
        signal = signalled => Ended::Signal(signal),
        ended = session => Ended::Session(ended),
        never = background => match never {},
    };
    if tokio::time::timeout(STOP_WAIT, server.idle()).await.is_err() {
        tracing::warn!("a sync did not stop within {}s; exiting anyway", STOP_WAIT.as_secs());
    }
    match ended {
        Ended::Session(session) => {
            session?;
            written.wait(FLUSH_WAIT).await;
            tracing::info!("MCP client disconnected; server stopped");
        }
        Ended::Signal(signal) => tracing::info!("MCP server stopped by {}", signal.name()),
    }
    Ok(Exit::Success)
}

enum Ended {
    /// The client closed stdin, or the session failed.
    Session(anyhow::Result<()>),
    Signal(shutdown::Signal),
}

async fn serve(server: SyncServer, transport: tokio::io::DuplexStream) -> anyhow::Result<()> {
    let session = server.serve(transport).await.context("the MCP session did not start")?;
    session.waiting().await.context("the MCP session failed")?;
    Ok(())
}
