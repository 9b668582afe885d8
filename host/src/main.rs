fn main() -> std::process::ExitCode {
    testio_sync::cli::main()
}
