//! The engine component as other hosts see it.

use std::path::{Path, PathBuf};

use testio_sync::runtime::ENGINE_WASM;
use wasmtime::component::Component;
use wasmtime::{Config, Engine};
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{Resolve, WorldId, WorldItem};

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
    assert_eq!(exports, ["testio:sync/engine@0.2.0", "testio:sync/policy@0.2.0"]);
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

/// What a host sees of a world: its imports and exports, then each interface's types and
/// functions. Items are sorted and docs left out, since a decoded component keeps neither
/// the source order nor the docs.
fn contract(mut resolve: Resolve, world: WorldId) -> String {
    for (_, interface) in resolve.interfaces.iter_mut() {
        interface.types.sort_keys();
        interface.functions.sort_keys();
    }
    let world = &resolve.worlds[world];
    let directions = [("import", &world.imports), ("export", &world.exports)];
    let mut items: Vec<String> = directions
        .into_iter()
        .flat_map(|(direction, items)| items.iter().map(move |(key, item)| (direction, key, item)))
        .map(|(direction, key, item)| {
            let name = resolve.name_world_key(key);
            let WorldItem::Interface { id, .. } = item else {
                return format!("{direction} {name}: not an interface");
            };
            let mut printer = WitPrinter::default();
            printer.emit_docs(false);
            printer.print_interface(&resolve, *id).expect("a resolved interface prints");
            format!("{direction} {name} {{\n{}\n}}", printer.output)
        })
        .collect();
    items.sort();
    items.join("\n")
}

#[test]
fn the_built_component_has_the_world_in_wit() {
    let wit_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
    let mut declared = Resolve::default();
    let (package, _) = declared.push_dir(&wit_dir).unwrap();
    assert_eq!(declared.packages[package].name.to_string(), "testio:sync@0.2.0");
    let world = declared.select_world(&[package], Some("sync-engine")).unwrap();
    let declared = contract(declared, world);

    let DecodedWasm::Component(built, world) = wit_component::decode(ENGINE_WASM).unwrap() else {
        panic!("the engine is not a component")
    };
    let built = contract(built, world);
    assert!(built.contains("export testio:sync/engine@0.2.0 {"), "{built}");
    assert!(built.contains("export testio:sync/policy@0.2.0 {"), "{built}");
    let only_in = |a: &str, b: &str| -> Vec<String> {
        a.lines().filter(|line| !b.lines().any(|other| other == *line)).map(str::to_string).collect()
    };
    assert!(
        built == declared,
        "the built component's world differs from wit/ (an import the engine never calls is left out of the \
         component, so the engine must use every function in wit/)\nonly in wit/: {:#?}\nonly in the component: {:#?}",
        only_in(&declared, &built),
        only_in(&built, &declared),
    );
}

#[tokio::test]
async fn the_component_command_writes_the_embedded_engine_or_says_where_it_could_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("engine.wasm");
    let run = crate::support::run_offline(&["component", "--out", out.to_str().unwrap()]).await.expect(0);
    assert_eq!(std::fs::read(&out).unwrap(), ENGINE_WASM);
    assert!(run.stderr.contains(&format!("{} bytes", ENGINE_WASM.len())), "{}", run.stderr);

    let missing = dir.path().join("no-such-dir/engine.wasm");
    let run = crate::support::run_offline(&["component", "--out", missing.to_str().unwrap()]).await.expect(1);
    assert!(
        run.stderr.contains("could not write the engine component to") && run.stderr.contains("no-such-dir"),
        "{}",
        run.stderr
    );
}
