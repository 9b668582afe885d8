//! `testio-sync customer remove NAME`: takes a customer out of the registry. Its synced rows
//! stay, for `customer add NAME --customer-id ID` to take back, unless --purge deletes them.

use crate::db::Location;
use std::time::Duration;

use anyhow::bail;
use tokio::task::block_in_place;

use super::Database;
use crate::cli::{Exit, output};
use crate::lock::{AcquireError, HolderRecord, SyncLock};
use crate::model::Trigger;
use crate::tokens::{KEYRING_SERVICE, Keyring};

/// How often the purge's hold on the sync lock says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(30);

#[derive(clap::Args)]
pub struct Args {
    /// The customer's name
    name: String,
    /// Also delete every row synced for it, in every table, the sync log included
    #[arg(long)]
    purge: bool,
    /// Go ahead without asking (needed without a terminal)
    #[arg(long)]
    yes: bool,
    #[command(flatten)]
    database: Database,
}

pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let name = &args.name;
    // The registry's reads and writes block (a PostgreSQL client must not run on an async thread).
    let (db, customer, rows) = block_in_place(|| {
        let (db, mut registry) = args.database.registry_for(name)?;
        let customer = registry.check_removal(name)?;
        let rows = registry.rows_of(customer.customer_id)?;
        anyhow::Ok((db.location(), customer, rows))
    })?;
    let id = customer.customer_id;
    let fate = if args.purge {
        format!("its {rows} synced rows (local id {id}), the sync log included, are deleted")
    } else {
        format!(
            "its {rows} synced rows (local id {id}) are kept; `testio-sync customer add {name} --customer-id {id}` takes them back"
        )
    };
    output::note(format_args!("Removing customer {name} from {db}: {fate}."));
    if !args.yes {
        output::confirm(&format!("removing customer {name}"), "Nothing was removed")?;
    }
    // A purge must not race a sync of this customer, which would write rows back.
    let _held = if args.purge { Some(hold_sync_lock(&db, id).await?) } else { None };
    block_in_place(|| args.database.registry_for(name)?.1.remove(name, args.purge))?;
    let done = if args.purge { "deleted" } else { "kept" };
    output::line(format_args!("Removed customer {name}; its {rows} synced rows (local id {id}) were {done}."))?;
    forget_token(name);
    Ok(Exit::Success)
}

/// The sync lock, taken without waiting: a running sync is a reason to stop, not to wait.
async fn hold_sync_lock(db: &Location, customer_id: i64) -> anyhow::Result<SyncLock> {
    let mut held = db.sync_lock(customer_id, Duration::ZERO);
    match held.acquire(Trigger::Cli, HEARTBEAT).await {
        Ok(_) => Ok(held),
        Err(AcquireError::Held(facts)) => {
            let holder = match facts.holder {
                HolderRecord::Written(h) => format!("PID {}, {}", h.pid, h.command),
                _ => "holder unknown".to_string(),
            };
            bail!("a sync holds the lock of {db} ({holder}); try again once it ends. Nothing was removed")
        }
        Err(AcquireError::Unavailable(why)) => bail!("{why}. Nothing was removed"),
    }
}

/// Deletes the customer's token from the OS keyring, if there is one to ask; a refusal is
/// said, not an error: the customer is gone either way.
fn forget_token(name: &str) {
    let keyring = Keyring::system();
    if keyring.usable().is_err() {
        return;
    }
    match keyring.delete(name) {
        Ok(true) => output::note(format_args!("Deleted {name}'s token from the OS keyring.")),
        Ok(false) => {}
        Err(why) => output::note(format_args!(
            "warning: {name}'s token may still be in the OS keyring ({why}); delete it there (service \
             {KEYRING_SERVICE}, user {name})"
        )),
    }
}
