//! The engine component as other hosts see it.

use std::path::{Path, PathBuf};

use testio_sync::runtime::ENGINE_WASM;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

#[test]
fn the_component_imports_only_testio_sync_interfaces() {
    let engine = Engine::new(&Config::new()).unwrap();
    let component = Component::new(&engine, ENGINE_WASM).unwrap();
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(&engine).map(|(name, _)| name.to_string()).collect();
    assert!(!imports.is_empty());
    let foreign: Vec<&String> = imports.iter().filter(|name| !name.starts_with("testio:sync/")).collect();
    assert!(foreign.is_empty(), "imports outside testio:sync: {foreign:?}");
    let exports: Vec<String> = ty.exports(&engine).map(|(name, _)| name.to_string()).collect();
    assert_eq!(exports, ["testio:sync/engine@0.1.0"]);
}

fn cached_engines(cache: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(cache.join("testio-sync")) else { return Vec::new() };
    dir.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compiled_engine_is_cached_and_a_damaged_cache_is_rebuilt() {
    let account = crate::support::Account::start(1, 1, 3).await;
    let cache = tempfile::tempdir().unwrap();
    let env = [("XDG_CACHE_HOME", cache.path().to_str().unwrap())];
    let db = account.db();
    let args = ["sync", "--db", db.to_str().unwrap()];
    account.run_with(&args, account.sim.token(), &env).await.expect(0);
    let cached = cached_engines(cache.path());
    assert_eq!(cached.len(), 1, "one compiled engine in the cache");

    std::fs::write(&cached[0], b"not compiled code").unwrap();
    account.run_with(&args, account.sim.token(), &env).await.expect(0);
    assert!(std::fs::read(&cached[0]).unwrap().len() > 1000, "the damaged cache entry was rewritten");
}
