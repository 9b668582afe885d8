//! The engine component as other hosts see it.

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
