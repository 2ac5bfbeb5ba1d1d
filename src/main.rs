//! The `hub` binary: serve, migrate, keys, audit, records import, matching-service, match
//! batch and evaluate. The demo is another binary (`hub-demo`, in `devkit`), so this one
//! links no demo code.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hub::{Application, Settings};

mod audit_command;
mod registry_command;

/// mimalloc instead of the system allocator: a journey makes thousands of small,
/// short-lived allocations (JSON, headers, SQL rows), and glibc's malloc and free were
/// about a tenth of the hub's CPU (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "hub", version, about = "Identity assurance hub")]
struct Cli {
    /// Configuration file layered over config/default.toml (env: HUB_CONFIG).
    #[arg(long, short, global = true, env = "HUB_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines (for production log pipelines).
    #[arg(long, global = true, env = "HUB_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the hub.
    Serve,
    /// Apply database migrations.
    Migrate,
    /// The verification log.
    Audit {
        #[command(subcommand)]
        command: audit_command::AuditCommand,
    },
    /// Signing key and pairwise secret.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Department records.
    Records {
        #[command(subcommand)]
        command: RecordsCommand,
    },
    /// Run the standalone matching service ([matching_service] section) that a department
    /// runs next to its own records (docs/matching-service.md).
    MatchingService,
    /// The matching engine, offline.
    Match {
        #[command(subcommand)]
        command: MatchCommand,
    },
    /// Relying parties in the registry of a running deployment, through its admin API.
    Rp {
        #[command(subcommand)]
        command: registry_command::RegistryCommand,
        #[command(flatten)]
        connection: registry_command::Connection,
    },
    /// Identity providers in the registry of a running deployment, through its admin API.
    Idp {
        #[command(subcommand)]
        command: registry_command::RegistryCommand,
        #[command(flatten)]
        connection: registry_command::Connection,
    },
}

#[derive(Subcommand, Debug)]
enum MatchCommand {
    /// Match one dataset per line (JSON lines) against the local database with the
    /// relying party's policy; write one decision per line.
    Batch {
        /// The relying party's client id (whose records and policy).
        #[arg(long)]
        rp: String,
        /// JSON lines of matching datasets.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the decisions (JSON lines).
        #[arg(long)]
        output: PathBuf,
    },
    /// Precision and recall of cycle 1 at thresholds from 10 to 50 bits (and the relying
    /// party's own), from queries whose right record the department knows.
    Evaluate {
        /// The relying party's client id (whose records and policy).
        #[arg(long)]
        rp: String,
        /// JSON lines of matching datasets, each with an `id`.
        #[arg(long)]
        input: PathBuf,
        /// JSON lines `{"id": "q-1", "record_id": "D42"}`, `record_id` null when the
        /// person has no record.
        #[arg(long)]
        truth: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create the keys under data.dir/keys if missing (before starting several instances):
    /// the current and next signing keys, the pairwise secret and the log's note key.
    Init,
    /// Rotate the signing keys: previous := current, current := next (published since it
    /// was created), next := a new key. Running instances pick it up when restarted
    /// (docs/operations.md, "Signing keys and rotation").
    Rotate {
        /// Promote the next key even if it was created less than an hour ago (relying
        /// parties may not have fetched it yet).
        #[arg(long)]
        force: bool,
    },
    /// Stop publishing the previous signing key (e.g. it leaked), so tokens it signed stop
    /// verifying once relying parties' JWKS caches expire.
    RetirePrevious,
}

#[derive(Subcommand, Debug)]
enum RecordsCommand {
    /// Load a CSV (or .jsonl) file of department records for a relying party.
    Import {
        /// The relying party's client id.
        #[arg(long)]
        rp: String,
        file: PathBuf,
    },
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
    let settings = Settings::load(cli.config.as_deref()).context("loading configuration")?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let db = store::Database::open(&settings.database.url).await?;
            db.migrate().await?;
            println!(
                "database at {} is migrated",
                store::redact_url(&settings.database.url)
            );
            Ok(())
        }
        Command::Audit { command } => audit_command::run(command, &settings).await,
        Command::Keys {
            command: KeysCommand::Init,
        } => {
            let (keys, log_note) = hub::app::init_keys(&settings)?;
            println!(
                "keys ready under {} (signing key kid {}, next key kid {}, log note key {})",
                hub::app::keys_dir(&settings).display(),
                keys.current().kid(),
                keys.next().map_or("-", |k| k.kid()),
                log_note.verifier_key()
            );
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Rotate { force },
        } => {
            let min_age = if force {
                std::time::Duration::ZERO
            } else {
                hub::app::MIN_NEXT_KEY_AGE
            };
            let reload = reload_note(&settings);
            match hub::app::rotate_keys(&settings, min_age)? {
                token::Rotation::NextStaged { next } => println!(
                    "there was no next key to promote; created next key {next}. Running \
                     instances publish it {reload}; wait, then rotate again"
                ),
                token::Rotation::Rotated {
                    retired,
                    previous,
                    current,
                    next,
                } => {
                    println!(
                        "signing key is now {current}; {previous} is kept as previous; new next \
                         key {next}"
                    );
                    if let Some(retired) = retired {
                        println!("no longer published: {retired}");
                    }
                    println!("running instances sign with {current} {reload}");
                }
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::RetirePrevious,
        } => {
            match hub::app::retire_previous_key(&settings)? {
                Some(kid) => println!(
                    "no longer published: {kid}; running instances stop serving it {}",
                    reload_note(&settings)
                ),
                None => println!("there is no previous key"),
            }
            Ok(())
        }
        Command::Records {
            command: RecordsCommand::Import { rp, file },
        } => import(settings, &rp, &file).await,
        Command::MatchingService => matching_service(settings).await,
        Command::Match {
            command: MatchCommand::Batch { rp, input, output },
        } => match_batch(settings, &rp, &input, &output).await,
        Command::Match {
            command:
                MatchCommand::Evaluate {
                    rp,
                    input,
                    truth,
                    json,
                },
        } => match_evaluate(settings, &rp, &input, &truth, json).await,
        Command::Rp {
            command,
            connection,
        } => registry_command::run("relying-parties", command, connection, &settings).await,
        Command::Idp {
            command,
            connection,
        } => registry_command::run("identity-providers", command, connection, &settings).await,
    }
}

async fn matching_service(settings: Settings) -> anyhow::Result<()> {
    let Some(config) = settings.matching_service_config() else {
        bail!("the configuration has no [matching_service] section");
    };
    let bind = config.service.bind.clone();
    let identifier = config.service.identifier();
    let listener = TcpListener::bind(&bind).with_context(|| format!("listening on {bind}"))?;
    let app = matching_service::ServiceApp::build(&config, listener).await?;
    tracing::info!(%bind, service = %identifier, "matching service listening");
    app.run_until_stopped().await?;
    Ok(())
}

async fn match_batch(
    settings: Settings,
    rp: &str,
    input: &std::path::Path,
    output: &std::path::Path,
) -> anyhow::Result<()> {
    let Some(batch_rp) = settings.batch_rp(rp) else {
        bail!("relying party {rp:?} is not configured");
    };
    let db = store::Database::open(&settings.database.url).await?;
    db.require_current_schema().await?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(input).with_context(|| format!("opening {}", input.display()))?,
    );
    let writer = std::io::BufWriter::new(
        std::fs::File::create(output).with_context(|| format!("creating {}", output.display()))?,
    );
    let summary = matching_service::batch::run(&db, &batch_rp, reader, writer).await?;
    println!("lines: {}", summary.lines);
    for outcome in ["match", "no_match", "ambiguous"] {
        println!(
            "{outcome}: {}",
            summary.outcomes.get(outcome).copied().unwrap_or(0)
        );
    }
    println!("error: {}", summary.errors);
    println!("decided at cycle 3: {}", summary.cycle3);
    Ok(())
}

async fn match_evaluate(
    settings: Settings,
    rp: &str,
    input: &std::path::Path,
    truth: &std::path::Path,
    json: bool,
) -> anyhow::Result<()> {
    let Some(batch_rp) = settings.batch_rp(rp) else {
        bail!("relying party {rp:?} is not configured");
    };
    let db = store::Database::open(&settings.database.url).await?;
    db.require_current_schema().await?;
    let open = |p: &std::path::Path| {
        std::fs::File::open(p)
            .map(std::io::BufReader::new)
            .with_context(|| format!("opening {}", p.display()))
    };
    let thresholds = matching_service::evaluate::default_thresholds();
    let evaluation = matching_service::evaluate::evaluate(
        &db,
        &batch_rp,
        open(input)?,
        open(truth)?,
        &thresholds,
    )
    .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
    } else {
        print!("{}", matching_service::evaluate::table(&evaluation));
    }
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.server.bind.clone();
    let listener = TcpListener::bind(&bind).with_context(|| format!("listening on {bind}"))?;
    let public = settings.server.public_url.clone();
    let app = Application::build(settings, listener).await?;
    tracing::info!(%bind, issuer = %public, "hub listening");
    app.run_until_stopped().await?;
    Ok(())
}

async fn import(settings: Settings, rp: &str, file: &std::path::Path) -> anyhow::Result<()> {
    let db = store::Database::open(&settings.database.url).await?;
    db.migrate().await?;
    if !settings.knows_relying_party(rp) && !hub::holds_relying_party(&db, rp).await? {
        bail!("relying party {rp:?} is neither configured nor in the registry");
    }
    let started = std::time::Instant::now();
    let bar = import_progress_bar(file);
    let mut last = hub::records::ImportProgress::default();
    let outcome = hub::records::import_file_with_progress(&db, rp, file, |p| {
        if let Some(bar) = &bar {
            bar.set_length(p.total_bytes);
            bar.set_position(p.bytes_read);
            bar.set_message(format!("{} records, {} rejected", p.imported, p.rejected));
        }
        last = *p;
    })
    .await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let report = match outcome {
        Ok(report) => report,
        Err(hub::records::ImportError::NothingImported { why, rejected }) => {
            for e in &rejected {
                eprintln!("line {}: {}", e.line, e.message);
            }
            bail!(
                "nothing imported for relying party {rp} from {}: {why}",
                file.display()
            );
        }
        Err(e) => {
            // Every batch before the failure is stored: say how far it got.
            println!(
                "imported {} records, rejected {} rows before the import stopped",
                last.imported, last.rejected
            );
            return Err(e.into());
        }
    };
    for e in &report.rejected {
        eprintln!("line {}: {}", e.line, e.message);
    }
    println!(
        "imported {} records, rejected {} rows (relying party {rp}, {seconds:.1} s, {:.0} records/s)",
        report.imported,
        report.rejected.len(),
        report.imported as f64 / seconds.max(1e-9)
    );
    if report.invalid_date_of_birth > 0 {
        println!(
            "{} of them without a valid date of birth (missing or not a real YYYY-MM-DD date): \
             stored, but never found by date of birth",
            report.invalid_date_of_birth
        );
    }
    Ok(())
}

/// A progress bar on stderr, by bytes of the file read, or `None` when
/// stderr is not a terminal (logs and pipes get only the summary line).
fn import_progress_bar(file: &std::path::Path) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(4),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{elapsed_precise} [{wide_bar}] {bytes}/{total_bytes} ({eta} left) {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
}

/// When running instances take a change of the key files: within their reload interval,
/// or (with reloading off) at their next restart.
fn reload_note(settings: &hub::Settings) -> String {
    match settings.keys.reload_interval_secs {
        0 => "once restarted (keys.reload_interval_secs is 0)".to_owned(),
        secs => format!("within {secs} s (keys.reload_interval_secs), without a restart"),
    }
}
