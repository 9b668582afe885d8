//! `testio-sync mcp`: the MCP server on stdin/stdout, with the background scheduler in
//! the same process unless TESTIO_REFRESH_INTERVAL_SECONDS is 0. Logs go to stderr:
//! stdout carries the protocol.

use std::sync::Arc;

use anyhow::Context;
use rmcp::ServiceExt;

use super::Exit;
use super::daemon::Schedule;
use super::sync::Target;
use crate::config;
use crate::mcp::SyncServer;
use crate::runtime::EngineRuntime;
use crate::scheduler::Scheduler;
use crate::service::SyncService;
use crate::shutdown;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    schedule: Schedule,
    #[command(flatten)]
    target: Target,
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let token = config::token_from_env()?;
    let service = Arc::new(SyncService::new(EngineRuntime::load()?, args.target.settings(token)?));
    let scheduler = args.schedule.plan().map(|plan| Arc::new(Scheduler::new(service.clone(), plan)));
    let server = SyncServer::new(service.clone(), scheduler.clone(), args.schedule.selection());
    tracing::info!(
        "MCP server on stdio{}",
        scheduler
            .as_ref()
            .map_or(", scheduler off".to_string(), |s| format!(", scheduler every {}s", s.status().interval_seconds))
    );
    // The scheduler runs from the start, not only once a client has said hello.
    let session = async {
        let session = server.serve(rmcp::transport::stdio()).await.context("the MCP session did not start")?;
        session.waiting().await.context("the MCP session failed")
    };
    let background = async {
        match &scheduler {
            Some(scheduler) => match scheduler.run().await {},
            None => std::future::pending().await,
        }
    };
    // Whatever ends the server, syncs still under way are interrupted (their rows say
    // why) and the lock is released as their futures are dropped.
    let signalled = async {
        let signal = shutdown::signalled().await;
        service.stop(format!("interrupted by {}", signal.name()));
        signal
    };
    tokio::select! {
        ended = session => {
            service.stop("the MCP client disconnected".to_string());
            ended?;
            tracing::info!("MCP client disconnected; server stopped");
        }
        never = background => match never {},
        signal = signalled => tracing::info!("MCP server stopped by {}", signal.name()),
    }
    Ok(Exit::Success)
}
