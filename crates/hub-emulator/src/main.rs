//! `hub-emulator`: a local Hugging Face Hub for tests, demos and benchmarks.
//! See `hub-emulator --help` and the crate docs (`hub_emulator`).

use std::io::IsTerminal;

use clap::Parser;
use hub_emulator::cli::Args;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    // xet-client's reqwest is built without a TLS provider of its own (no C build): ring is
    // installed first thing, before anything could build an HTTP client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(
                // xet-core logs every stored object at info.
                "info,xet_client=warn,xet_data=warn,xet_core_structures=warn,xet_runtime=warn",
            )
        }))
        .init();
    let cfg = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hub-emulator: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hub-emulator: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(hub_emulator::run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hub-emulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
