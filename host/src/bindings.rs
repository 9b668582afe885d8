//! Host-side bindings for the `sync-engine` world in `wit/`.

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
    exports: { default: async },
    with: {
        "testio:sync/customer-api.payload": crate::api::Payload,
    },
});

pub use exports::testio::sync::engine;
pub use testio::sync::{clock, customer_api, events, store, sync_lock, types};
