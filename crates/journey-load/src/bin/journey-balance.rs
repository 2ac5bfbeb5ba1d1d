//! `journey-balance`: a round-robin TCP balancer in front of several hub instances, for the
//! `production-3` scenario of scripts/bench-journeys.sh.
//!
//! ```text
//! journey-balance --listen 127.0.0.1:18180 --to 127.0.0.1:18191 --to 127.0.0.1:18192
//! ```
//!
//! Prints `listening on ADDR` once it accepts connections; on SIGINT or SIGTERM it prints
//! how many connections each backend was given and exits.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use journey_load::balancer::Balancer;

/// Round-robin TCP balancer: each connection goes to the next backend in turn.
#[derive(Debug, Parser)]
#[command(name = "journey-balance", version)]
struct Cli {
    /// Address to accept connections on.
    #[arg(long)]
    listen: SocketAddr,
    /// A backend (repeatable, at least one).
    #[arg(long = "to", required = true)]
    to: Vec<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let balancer = Balancer::new(cli.to).context("no backends")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("listening on {}", cli.listen))?;
    println!("listening on {}", listener.local_addr()?);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("SIGTERM handler")?;
    tokio::select! {
        served = std::sync::Arc::clone(&balancer).serve(listener) => served.context("accepting")?,
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    for (backend, n) in balancer.connections() {
        eprintln!("journey-balance: {backend}: {n} connections");
    }
    if balancer.failed() > 0 {
        eprintln!(
            "journey-balance: {} connections found no backend",
            balancer.failed()
        );
    }
    Ok(())
}
