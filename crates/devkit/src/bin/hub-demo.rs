//! `hub-demo`: the hub with the demo identity provider and the demo relying party, for a
//! first look (`make run`) and for benchmarks (`--peers-only` beside `hub serve`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hub::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "hub-demo",
    version,
    about = "The identity hub with a demo identity provider and a demo government service"
)]
struct Cli {
    /// Configuration file layered over config/default.toml (env: HUB_CONFIG).
    #[arg(long, short, env = "HUB_CONFIG", default_value = "config/demo.toml")]
    config: PathBuf,
    /// Log as JSON lines.
    #[arg(long, env = "HUB_LOG_JSON")]
    log_json: bool,
    /// Run only the demo IdP and RP, for a hub started separately with `hub serve` (so
    /// that benchmarks can measure the hub's process alone).
    #[arg(long)]
    peers_only: bool,
}

fn main() -> ExitCode {
    match actix_web::rt::System::new().block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Held to the end of `run`, so queued log lines are written before the process exits.
    let _logs = hub::telemetry::init(cli.log_json);
    let settings = Settings::load(Some(&cli.config)).context("loading configuration")?;
    let demo = if cli.peers_only {
        devkit::demo::start_peers(&settings)?
    } else {
        devkit::demo::start(settings).await?
    };
    println!();
    println!("  Identity hub demo is running.");
    println!("  Open {} and press \"Prove your identity\".", demo.rp_url);
    println!(
        "  (hub {}, demo identity provider {})",
        demo.hub_url, demo.idp_url
    );
    println!("  Press Ctrl+C to stop.");
    println!();
    // Each server stops itself on a signal, but the process must stop them all.
    let handles: Vec<_> = demo.servers.iter().map(|s| s.handle()).collect();
    tokio::spawn(async move {
        shutdown_signal().await;
        for handle in handles {
            handle.stop(true).await;
        }
    });
    let running: Vec<_> = demo.servers.into_iter().map(tokio::spawn).collect();
    for server in running {
        server.await.context("a server task failed")??;
    }
    Ok(())
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
