//! Host-side bindings for the `sync-engine` world in `wit/`. Only `capabilities` and the
//! wasmtime embedding (`runtime`) use them: they convert to and from the host's own types
//! (`model`, and the types of `api`, `db` and `lock`) at that edge.

wasmtime::component::bindgen!({
    world: "sync-engine",
    path: "../wit",
    imports: {
        "testio:sync/customer-api": async | trappable,
        "testio:sync/sync-lock.acquire": async | trappable,
        "testio:sync/sync-lock.wait-for-release": async | trappable,
        "testio:sync/store": async | trappable,
        "testio:sync/events.sync-started": async | trappable,
        "testio:sync/events.sync-finished": async | trappable,
        default: trappable,
    },
    // The policy functions are pure and answer at once: called synchronously, on an
    // instance whose imports trap.
    exports: { "testio:sync/engine.execute-sync": async },
    with: {
        "testio:sync/customer-api.payload": crate::api::Payload,
    },
});

pub use exports::testio::sync::{engine, policy};
pub use testio::sync::{clock, customer_api, events, store, sync_lock, types};
