//! `wasm-test-runner`: the cargo runner for `--target wasm32-wasip2`.
//!
//! Cargo runs `wasm-test-runner <test.wasm> <libtest args...>` from the package
//! directory. The test binary is a WASI command component, but it also imports
//! the engine's own interfaces (`testio:sync/*`), because the crate under test
//! binds them. Unit tests must not reach those imports, yet a component cannot
//! be instantiated until every import is defined, so this runner supplies WASI
//! and fills everything else with stubs that trap when called.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail, ensure};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceTable, ResourceType};
use wasmtime::{Config, Engine, Store, Trap};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxView, WasiView};

/// libtest's exit code for failed tests. A trap gets it too: in wasm a failing
/// test's panic aborts, which surfaces here as a trap rather than an exit.
const TESTS_FAILED: u8 = 101;

/// libtest's switch for `--nocapture`, read from the guest's environment.
const NOCAPTURE: &str = "RUST_TEST_NOCAPTURE";

const USAGE: &str = "usage: wasm-test-runner <test.wasm> [libtest args...]\n\
    (cargo calls this as the runner for `cargo test --target wasm32-wasip2`)";

/// Per-store state: just what WASI needs.
struct State {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` rather than `{:?}`: the cause chain on one line, without
            // the host backtrace that RUST_BACKTRACE (meant for the tests) adds.
            eprintln!("wasm-test-runner: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<ExitCode> {
    let (wasm, test_args) = parse_args()?;
    let engine = Engine::new(&Config::new())?;
    let component = load_component(&engine, &wasm)?;
    let linker = build_linker(&engine, &component)?;
    let state = State { wasi: wasi_ctx(&wasm, &test_args)?, table: ResourceTable::new() };
    let mut store = Store::new(&engine, state);
    let command = Command::instantiate_async(&mut store, &component, &linker)
        .await
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot instantiate {}", wasm.display()))?;
    let outcome = command.wasi_cli_run().call_run(&mut store).await;
    Ok(exit_code(outcome))
}

/// Splits the command line into the test binary and the arguments meant for libtest.
fn parse_args() -> anyhow::Result<(PathBuf, Vec<String>)> {
    let mut args = std::env::args_os().skip(1);
    let wasm = args.next().ok_or_else(|| anyhow!("no test binary given\n{USAGE}"))?;
    // WASI arguments are strings, so a non-UTF-8 one cannot be passed on.
    let test_args = args
        .map(|arg| arg.into_string().map_err(|arg| anyhow!("argument {arg:?} is not valid UTF-8")))
        .collect::<anyhow::Result<_>>()?;
    Ok((PathBuf::from(wasm), test_args))
}

fn load_component(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the test binary {}", path.display()))?;
    check_is_component(&bytes).with_context(|| format!("{} is not a wasm component", path.display()))?;
    Component::new(engine, &bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile {}", path.display()))
}

/// Looks at the 8-byte header first, so that a core module (say, a wasm32-wasip1
/// build) gets an error that says so rather than a parser message.
fn check_is_component(bytes: &[u8]) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\0asm";
    // After the magic come a 2-byte version and a 2-byte layer: 0 for a core
    // module, 1 for a component.
    const COMPONENT_LAYER: &[u8] = &[1, 0];
    let Some(header) = bytes.get(..8) else {
        bail!("it is too short to be wasm");
    };
    ensure!(header.starts_with(MAGIC), "it does not start with the wasm magic number");
    ensure!(&header[6..] == COMPONENT_LAYER, "it is a core wasm module; build the tests for wasm32-wasip2");
    Ok(())
}

/// WASI plus a trapping stub for every import outside `wasi:`.
///
/// Not `Linker::define_unknown_imports_as_traps`: in wasmtime 48 it stubs WASI too. The test
/// binary imports `wasi:*@0.2.6` and wasmtime-wasi defines 0.2.12; instantiation accepts
/// that, but the stubbing looks names up exactly and shadows WASI with traps (wasmtime#10663).
fn build_linker(engine: &Engine, component: &Component) -> anyhow::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let component_type = component.component_type();
    for (name, import) in component_type.imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        stub_item(&mut linker.root(), engine, None, name, &import.ty)
            .with_context(|| format!("cannot stub the import `{name}`"))?;
    }
    Ok(linker)
}

/// Defines `name` in `linker` as a stub of the right kind. `interface` is the
/// enclosing import's name, used to name functions in trap messages.
fn stub_item(
    linker: &mut LinkerInstance<'_, State>,
    engine: &Engine,
    interface: Option<&str>,
    name: &str,
    item: &ComponentItem,
) -> anyhow::Result<()> {
    match item {
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = linker.instance(name)?;
            for (export, export_item) in instance.exports(engine) {
                stub_item(&mut inner, engine, Some(name), export, &export_item.ty)?;
            }
        }
        ComponentItem::ComponentFunc(_) => {
            let qualified = match interface {
                Some(interface) => format!("{interface}#{name}"),
                None => name.to_owned(),
            };
            stub_func(linker, name, qualified)?;
        }
        // All stubbed resources share one host type. No value of it can exist,
        // since every constructor traps, and a resource re-exported through
        // `use` must compare equal to the original, which sharing guarantees.
        ComponentItem::Resource(_) => {
            linker.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
        }
        // Records, enums, variants and the like need no definition.
        ComponentItem::Type(_) => {}
        ComponentItem::CoreFunc(_) | ComponentItem::Module(_) | ComponentItem::Component(_) => {
            bail!("`{name}` is a core function, module or component, which cannot be stubbed")
        }
    }
    Ok(())
}

fn stub_func(linker: &mut LinkerInstance<'_, State>, name: &str, qualified: String) -> anyhow::Result<()> {
    let message = format!(
        "{qualified} called from a unit test: \
         the engine's imports are not available inside the test runner"
    );
    linker.func_new(name, move |_, _, _, _| Err(wasmtime::Error::msg(message.clone())))?;
    Ok(())
}

/// Inherits stdio, passes the libtest arguments and the `RUST_*` variables
/// (RUST_BACKTRACE, RUST_TEST_THREADS, ...), and preopens the package
/// directory so tests can read fixtures by relative path.
fn wasi_ctx(wasm: &Path, test_args: &[String]) -> anyhow::Result<WasiCtx> {
    let mut builder = WasiCtx::builder();
    builder.inherit_stdio().arg(program_name(wasm)).args(test_args);
    for (key, value) in rust_env_vars() {
        builder.env(key, value);
    }
    // libtest captures a test's output and prints it only once the test has
    // failed, but in wasm the failing test's panic aborts the run before that,
    // and the panic message would be lost. Setting RUST_TEST_NOCAPTURE=0
    // restores capturing.
    if std::env::var_os(NOCAPTURE).is_none() {
        builder.env(NOCAPTURE, "1");
    }
    builder
        .preopened_dir(".", ".", FsPerms::ReadWrite)
        .map_err(anyhow::Error::from)
        .context("cannot preopen the current directory")?;
    Ok(builder.build())
}

/// argv[0] for the guest: the test binary's file name, which libtest shows in its usage text.
fn program_name(wasm: &Path) -> String {
    let name = wasm.file_name().unwrap_or(wasm.as_os_str());
    name.to_string_lossy().into_owned()
}

/// The host's `RUST_*` variables; ones that are not UTF-8 are skipped, as WASI cannot carry them.
fn rust_env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| key.starts_with("RUST_"))
}

fn exit_code(outcome: wasmtime::Result<Result<(), ()>>) -> ExitCode {
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(())) => ExitCode::FAILURE,
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => exit_status(*code),
            None => {
                report_trap(&err);
                ExitCode::from(TESTS_FAILED)
            }
        },
    }
}

/// Leads with the cause (a stub's message, say), then the wasm backtrace that
/// shows where it came from. An `unreachable` trap is how a panic's abort ends
/// up here: its message and backtrace were already printed by the guest, so
/// this only explains why the run stopped early.
fn report_trap(err: &wasmtime::Error) {
    eprintln!("wasm-test-runner: the test binary trapped: {}", err.root_cause());
    if let Some(Trap::UnreachableCodeReached) = err.downcast_ref::<Trap>() {
        eprintln!(
            "wasm-test-runner: a panic aborts in wasm, so the run stopped at the first \
             failing test and the tests after it did not run"
        );
    } else {
        eprintln!("{err:?}");
    }
}

/// An explicit exit status from the guest. One that does not fit a process exit
/// status becomes 1 rather than being truncated, which could turn it into 0.
fn exit_status(code: i32) -> ExitCode {
    u8::try_from(code).map_or(ExitCode::FAILURE, ExitCode::from)
}
