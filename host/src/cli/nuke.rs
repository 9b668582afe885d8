//! `sync --nuke`: shows what will be deleted, asks (or needs `--yes`), and deletes it
//! under the sync lock, before the sync that fetches it all again.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, bail};

use super::Exit;
use crate::db::Store;
use crate::lock::{AcquireError, SyncLock, path_beside};
use crate::model::Trigger;
use crate::service::SyncService;

/// The delete holds the lock for a moment, far below any staleness limit.
const HOLD_HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);

/// Deletes the customer's rows in scope. `Ok(None)` when they are gone; `Ok(Some(exit))`
/// when the lock is busy.
pub async fn clear(service: &SyncService, product_ids: Option<&[u64]>, yes: bool) -> anyhow::Result<Option<Exit>> {
    let settings = service.settings();
    let mut lock = SyncLock::new(path_beside(&settings.db_path), settings.lock_timeout);
    loop {
        match lock.acquire(Trigger::Cli, HOLD_HEARTBEAT).await {
            Ok(_) => break,
            Err(AcquireError::Held(facts)) if !lock.wait_for_release().await => {
                let now = chrono::Utc::now().timestamp_millis();
                let lock = service.runtime().describe_lock(true, &facts, now)?;
                eprintln!("error: sync lock busy ({lock}); nothing was deleted");
                return Ok(Some(Exit::LockBusy));
            }
            Err(AcquireError::Held(_)) => {}
            Err(AcquireError::Unavailable(e)) => bail!("{e}; nothing was deleted"),
        }
    }
    let deleted = delete_confirmed(settings, product_ids, yes);
    lock.release();
    deleted.map(|()| None)
}

fn delete_confirmed(settings: &crate::service::Settings, product_ids: Option<&[u64]>, yes: bool) -> anyhow::Result<()> {
    let mut store = Store::open(&settings.db_path, settings.customer_id)?;
    let counts = store.nuke_counts(product_ids).context("could not count the rows to delete")?;
    let whose = match product_ids {
        Some(ids) => format!("products {}", ids.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
        None => "all products".to_string(),
    };
    eprintln!(
        "--nuke deletes these rows of customer {} ({whose}) from {}:",
        settings.customer_id,
        settings.db_path.display()
    );
    for (table, count) in &counts {
        eprintln!("  {table:<16} {count:>9}");
    }
    if !yes {
        confirm()?;
    }
    let deleted: i64 =
        store.nuke(product_ids).context("could not delete the rows; nothing was deleted")?.iter().map(|(_, n)| n).sum();
    eprintln!("Deleted {deleted} rows; syncing them again");
    Ok(())
}

/// Asks on a terminal; without one, refuses, since nobody could have seen the counts.
fn confirm() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "--nuke deletes data and there is no terminal to confirm on; pass --yes to go ahead. Nothing was deleted"
        );
    }
    eprint!("Type 'yes' to delete them: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}
