//! Many callers in one process (what the scheduler and the MCP server do): one shared
//! `SyncService`, the real engine, the simulator and a real database file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testio_sim::SimConfig;
use testio_sync::model::{Options, Scope, SyncRequest, Trigger};
use testio_sync::observe::TracingObserver;
use testio_sync::runtime::EngineRuntime;
use testio_sync::service::{Settings, SyncService};

use crate::support::{Account, count};

fn call(product_ids: Option<Vec<u64>>, force: bool) -> SyncRequest {
    let scope = Scope { product_ids, ..Scope::default() };
    SyncRequest::default_phases(scope, Options { force_refresh: force, ..Options::default() }, Trigger::Mcp)
}

/// The ticker's period: it counts how often the runtime was free to wake it.
const TICK: Duration = Duration::from_millis(10);

/// A current-thread runtime: if any caller blocked it, the ticker would starve.
#[tokio::test(flavor = "current_thread")]
async fn twenty_concurrent_requests_share_syncs_and_never_block_the_runtime() {
    let account = Account::with(SimConfig {
        products: 3,
        features: 3,
        tests: 120,
        latency: Duration::from_millis(20),
        ..SimConfig::default()
    })
    .await;
    let settings = Settings {
        base_url: account.sim.base_url(),
        token: account.sim.token().to_string(),
        token_from: testio_sync::api::TOKEN_VAR.to_string(),
        location: testio_sync::db::Location::Sqlite(account.db()),
        customer_id: 1,
        in_flight: testio_sync::api::request_limit(10),
        lock_timeout: Duration::ZERO,
        request_timeout: Duration::from_secs(30),
    };
    let service = Arc::new(SyncService::new(Arc::new(EngineRuntime::load().unwrap()), settings));

    // Ticks every TICK while the runtime is free; returns the ticks and the time they span.
    let syncing = Arc::new(AtomicBool::new(true));
    let ticker = tokio::spawn({
        let syncing = syncing.clone();
        async move {
            let started = Instant::now();
            let mut ticks = 0u32;
            while syncing.load(Ordering::SeqCst) {
                tokio::time::sleep(TICK).await;
                ticks += 1;
            }
            (ticks, started.elapsed())
        }
    });

    // 18 plain requests (some for one product, which a full sync covers) and 2 forced ones,
    // which no plain sync covers: they share one sync of their own, after the first.
    let requests: Vec<SyncRequest> = (0..20)
        .map(|i| match i {
            5 | 15 => call(None, true),
            i if i % 2 == 0 => call(Some(vec![1 + i % 3]), false),
            _ => call(None, false),
        })
        .collect();
    let plain_first = call(None, false);
    let mut tasks = vec![tokio::spawn({
        let service = service.clone();
        async move { service.sync(plain_first, Box::new(TracingObserver::default())).await }
    })];
    for request in requests {
        let service = service.clone();
        tasks.push(tokio::spawn(async move { service.sync(request, Box::new(TracingObserver::default())).await }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    syncing.store(false, Ordering::SeqCst);
    let (ticks, elapsed) = ticker.await.unwrap();

    let db = account.db();
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events"), 2, "one plain sync and one forced sync ran");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sync_events WHERE status = 'success'"), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM tests"), 360);
    let overlapping = count(
        &db,
        "SELECT COUNT(*) FROM sync_events a JOIN sync_events b ON a.id < b.id
         WHERE b.started_at < a.completed_at",
    );
    assert_eq!(overlapping, 0, "the syncs overlapped");

    let plain = &results[0];
    let forced = &results[6];
    for (i, result) in results.iter().enumerate() {
        let expected = if i == 6 || i == 16 { forced } else { plain };
        assert!(Arc::ptr_eq(result, expected), "request {i} did not get the result of the sync that covered it");
    }
    let Ok(Ok(plain)) = plain.as_ref() else { panic!("the plain sync failed: {plain:?}") };
    let Ok(Ok(forced)) = forced.as_ref() else { panic!("the forced sync failed: {forced:?}") };
    assert_eq!(plain.tests_discovered, 360);
    assert_eq!(forced.tests_updated, 360, "the forced sync ran after the plain one and saw every test again");
    // A free runtime ticks about every TICK; one blocked for half the time or more falls short.
    let possible = elapsed.as_secs_f64() / TICK.as_secs_f64();
    assert!(
        f64::from(ticks) >= possible / 2.0,
        "the runtime was blocked during the syncs: {ticks} ticks of {TICK:?} in {elapsed:?}"
    );
}
