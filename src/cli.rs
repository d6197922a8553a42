//! Command line: `serve` (default), `migrate`, `backup`, `restore`, `user add`, `check-config`,
//! `intents check|eval`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{thresholds, AppState};
use crate::chat::{catalog, eval, Engine};
use crate::config::{Config, LogFormat};
use crate::staff::auth::{self, Role};
use crate::store::{backup, Store};

#[derive(Parser)]
#[command(
    name = "ventanilla",
    version,
    about = "Digital front desk of a Chilean municipality"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (the default).
    Serve {
        /// On a database without staff users, add demo users (password "demo-ventanilla"),
        /// a few cases and six weeks of chat interactions. For trying the product only.
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite store to PATH, a new file, while the service
    /// runs. (PostgreSQL: pg_dump.)
    Backup { path: PathBuf },
    /// Put the backup at PATH in place of the SQLite store named by DATABASE_URL. Stop the
    /// service first. (PostgreSQL: pg_restore.)
    Restore {
        path: PathBuf,
        /// Replace a store that already holds cases, staff users or chat interactions (it is
        /// moved aside, not deleted).
        #[arg(long)]
        force: bool,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Open311 GeoReport v2: the keys apps file reports with.
    Open311 {
        #[command(subcommand)]
        command: Open311Command,
    },
    /// Print the effective configuration (secrets redacted) and exit non-zero if invalid.
    CheckConfig,
    /// Validate or evaluate the intent catalog.
    Intents {
        #[command(subcommand)]
        command: IntentsCommand,
    },
    /// Write the monthly report of YYYY-MM.
    Report {
        month: String,
        /// html, csv or json.
        #[arg(long, default_value = "html")]
        format: String,
        /// Output file (standard output when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Analytics maintenance.
    Analytics {
        #[command(subcommand)]
        command: AnalyticsCommand,
    },
}

#[derive(Subcommand)]
enum AnalyticsCommand {
    /// Import historical button clicks from CSV (timestamp, button, sub-option).
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum Open311Command {
    /// Manage the keys apps file reports with.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Issue a key for an app; prints it once (only its digest is kept).
    Add {
        /// Who will use it (the app or organisation).
        #[arg(long)]
        name: String,
    },
    /// Revoke a key at once.
    Revoke {
        #[arg(long)]
        id: i64,
    },
    /// List the keys (never the keys themselves).
    List,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a staff user; the password is read from standard input (or prompted on a terminal).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        department: Option<String>,
        /// Where notices reach the user (administrators: support summaries).
        #[arg(long)]
        email: Option<String>,
    },
    /// Remove a user's second factor and recovery codes and end their sessions (a locked-out
    /// user enrols again at the next login); audited.
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        #[arg(long)]
        username: String,
    },
}

#[derive(Subcommand)]
enum IntentsCommand {
    /// Check the catalog: unknown topics, duplicate ids or examples, missing answers,
    /// uncovered topics, broken placeholders and buttons.
    Check {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Write the catalog review's overlay (examples and new intents taught in the console)
    /// in the catalog's file format, for the repository to absorb.
    Export {
        /// Folder to write to (created if missing).
        #[arg(long, default_value = "revision")]
        out: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Show how the assistant reads one message: candidates, probabilities, decision.
    Explain {
        message: String,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Evaluate the assistant on a labelled TSV: messages (question<TAB>topic, `_fallback` =
    /// out of scope), follow-ups (first<TAB>followup<TAB>topic) or filing offers
    /// (message<TAB>type<TAB>topic), told apart by the header line.
    Eval {
        file: PathBuf,
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Bars that turn the evaluation into a gate (exit 1 when missed).
        #[arg(long)]
        min_answer_rate: Option<f64>,
        #[arg(long)]
        min_precision: Option<f64>,
        #[arg(long)]
        min_offered: Option<f64>,
        #[arg(long)]
        max_false_fallback: Option<f64>,
        #[arg(long)]
        min_oos_fallback: Option<f64>,
        #[arg(long)]
        max_oos_answered: Option<f64>,
        /// For follow-up and filing files: the share handled right.
        #[arg(long)]
        min_right: Option<f64>,
        /// List every miss.
        #[arg(long)]
        misses: bool,
        /// Print every line with its decision and confidence, lowest first.
        #[arg(long)]
        dump: bool,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_format);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(
        cli.command.unwrap_or(Command::Serve { demo: false }),
        config,
    )) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VENTANILLA_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tantivy=warn"));
    // Colours only on a terminal: a log file or journal gets no escape codes, and each
    // request's span is formatted without them.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { demo } => {
            let mut config = config;
            if demo && !config.require_2fa.is_empty() {
                // The demo users share a published password; a second factor would only stop
                // someone trying the product. Production never runs --demo.
                tracing::warn!(
                    roles = ?config.require_2fa,
                    "demo: the second factor is not required on this instance (VENTANILLA_REQUIRE_2FA ignored)"
                );
                config.require_2fa.clear();
            }
            let listener = tokio::net::TcpListener::bind(&config.listen).await?;
            tracing::info!(database = %config.database_url_redacted(), "starting");
            let state = AppState::build(config).await?;
            if demo && crate::demo::seed(&state).await? {
                tracing::warn!(
                    users = ?crate::demo::DEMO_USERS.iter().map(|u| u.0).collect::<Vec<_>>(),
                    password = crate::demo::DEMO_PASSWORD,
                    "demo data loaded: staff users with a known password; never use --demo in production"
                );
            }
            spawn_reload_on_sighup(state.clone());
            let background = state.start_background()?;
            crate::http::serve(state, listener).await?;
            for h in background {
                h.abort();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            println!(
                "migrations applied: {:?}",
                store.applied_migrations().await?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { path } => match backup::backup(&config.database_url, &path).await {
            Ok(w) => {
                println!(
                    "backup written to {} ({} cases, {} bytes)",
                    w.path.display(),
                    w.cases,
                    w.bytes
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("backup not written: {e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Restore { path, force } => {
            match backup::restore(&config.database_url, &path, force).await {
                Ok(w) => {
                    if let Some(aside) = &w.replaced {
                        println!("the previous store was moved to {}", aside.display());
                    }
                    println!(
                        "restored {} into {} ({} cases); start the service",
                        path.display(),
                        w.path.display(),
                        w.cases
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("nothing restored: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::CheckConfig => {
            println!("{}", serde_json::to_string_pretty(&config)?);
            let problems = catalog::load_with_findings(&config.intents_dir).1;
            if !problems.is_empty() {
                eprintln!("catalog in {}:", config.intents_dir.display());
                for p in &problems {
                    eprintln!("  {p}");
                }
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    department,
                    email,
                },
        } => {
            let Some(role) = Role::parse(&role) else {
                eprintln!("--role must be admin, coordinator, department, analyst or support");
                return Ok(ExitCode::from(2));
            };
            let email = match crate::staff::users::check_email(email.as_deref().unwrap_or("")) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("email: {}", e.message);
                    return Ok(ExitCode::from(2));
                }
            };
            let password = read_password()?;
            if let Err((field, message)) = crate::staff::users::check_user(
                &username,
                role,
                department.as_deref(),
                Some(&password),
            ) {
                eprintln!("{field}: {message}");
                return Ok(ExitCode::from(2));
            }
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
                .await?
                .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            match auth::add_user(&store, &username, &hash, role, department.as_deref()).await {
                Ok(id) => {
                    if let Some(email) = &email {
                        crate::staff::users::set_email(&store, id, email).await?;
                    }
                    println!("user {username} added (id {id}, role {})", role.as_str());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if e.violates(&crate::store::USERS_USERNAME) => {
                    eprintln!("a user named {username} already exists");
                    Ok(ExitCode::FAILURE)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::User {
            command: UserCommand::ResetTwoFactor { username },
        } => {
            let store = Store::connect(&config.database_url).await?;
            store.migrate().await?;
            if crate::staff::second_factor::reset(&store, &username).await? {
                println!(
                    "second factor of {username} removed; they enrol again at their next login"
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no user named {username}");
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Open311 {
            command: Open311Command::Key { command },
        } => open311_key(command, &config).await,
        Command::Report { month, format, out } => {
            if !["html", "csv", "json"].contains(&format.as_str()) {
                eprintln!("--format must be html, csv or json");
                return Ok(ExitCode::from(2));
            }
            let state = AppState::build(config).await?;
            let report = crate::analytics::routes::build_report(&state, &month)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let Some(report) = report else {
                eprintln!("the month must look like 2026-04");
                return Ok(ExitCode::from(2));
            };
            let (_, body) = crate::analytics::routes::render_report(&report, &format, state.tz)
                .map_err(|e| anyhow::anyhow!("{}", e.message))?;
            match out {
                Some(path) => std::fs::write(&path, body)?,
                None => print!("{body}"),
            }
            state.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Analytics {
            command: AnalyticsCommand::Import { file },
        } => {
            let src = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let state = AppState::build(config).await?;
            let engine = state.chat.engine();
            let n = crate::analytics::import::import_csv(
                &state.store,
                state.tz,
                &engine.catalog.botonera,
                &src,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("imported {n} interactions from {}", file.display());
            state.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Intents {
            command: IntentsCommand::Explain { message, dir },
        } => {
            let dir = dir.unwrap_or(config.intents_dir.clone());
            let engine = Engine::load(&dir, thresholds(&config))?;
            let today = chrono::Utc::now().with_timezone(&config.tz()?).date_naive();
            print!("{}", engine.explain(&message, today));
            Ok(ExitCode::SUCCESS)
        }
        Command::Intents {
            command: IntentsCommand::Export { out, dir },
        } => {
            let dir = dir.unwrap_or(config.intents_dir.clone());
            let files = catalog::load(&dir).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let ov = overlay_of(&config.database_url).await?;
            let written = crate::chat::overlay::export(&files, &ov);
            if written.is_empty() {
                println!("nothing to export: no examples or new intents were taught");
                return Ok(ExitCode::SUCCESS);
            }
            std::fs::create_dir_all(&out)?;
            for (name, text) in written {
                let path = out.join(name);
                std::fs::write(&path, text)?;
                println!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Intents {
            command: IntentsCommand::Check { dir },
        } => {
            let dir = dir.unwrap_or(config.intents_dir.clone());
            let (cat, mut findings) = catalog::load_with_findings(&dir);
            // The overlay, when this configuration has a database to read it from.
            if let Some(files) = cat
                .as_ref()
                .filter(|_| database_present(&config.database_url))
            {
                match overlay_of(&config.database_url).await {
                    Ok(ov) => {
                        findings.extend(crate::chat::overlay::apply(files, &ov).findings);
                        println!(
                            "overlay: {} taught example(s), {} new intent(s)",
                            ov.examples.len(),
                            ov.intents.len()
                        );
                    }
                    Err(e) => println!("overlay not checked: {e}"),
                }
            }
            for f in &findings {
                println!("{f}");
            }
            match cat {
                Some(c) if findings.is_empty() => {
                    let examples: usize = c.intents.iter().map(|i| i.examples.len()).sum();
                    println!(
                        "catalog OK: {} intents, {} topics, {} examples, {} buttons",
                        c.intents.len(),
                        c.topics.len(),
                        examples,
                        c.botonera.buttons.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    println!("catalog has {} problem(s)", findings.len());
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Command::Intents {
            command:
                IntentsCommand::Eval {
                    file,
                    dir,
                    min_answer_rate,
                    min_precision,
                    min_offered,
                    max_false_fallback,
                    min_oos_fallback,
                    max_oos_answered,
                    min_right,
                    misses,
                    dump,
                },
        } => {
            let dir = dir.unwrap_or(config.intents_dir.clone());
            let engine = Engine::load(&dir, thresholds(&config))?;
            let src = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let bad = |e: eval::EvalError| anyhow::anyhow!("{}: {e}", file.display());
            let today = chrono::Utc::now().with_timezone(&config.tz()?).date_naive();
            let header = src.lines().next().unwrap_or("");
            let mut checks: Vec<(&str, f64, Option<f64>, bool)> = Vec::new();
            if header.starts_with("first\t") || header.starts_with("message\t") {
                let lines = eval::parse_columns(&src, 3).map_err(bad)?;
                let (what, report) = if header.starts_with("first\t") {
                    (
                        "follow-ups answered in context",
                        eval::evaluate_followups(&engine, &lines, today),
                    )
                } else {
                    (
                        "filing offers with the right type and topic",
                        eval::evaluate_filing(&engine, &lines, today),
                    )
                };
                print!("{}", report.render(what, misses));
                checks.push(("right", report.accuracy(), min_right, true));
            } else {
                let cases = eval::parse_tsv(&src).map_err(bad)?;
                let report = eval::evaluate(&engine, &cases, today);
                if dump {
                    print!("{}", report.dump());
                }
                print!("{}", report.render(misses));
                checks.extend([
                    ("answer rate", report.answer_rate(), min_answer_rate, true),
                    (
                        "answer precision",
                        report.answer_precision(),
                        min_precision,
                        true,
                    ),
                    (
                        "right topic offered",
                        report.offered_accuracy(),
                        min_offered,
                        true,
                    ),
                    (
                        "false fallbacks",
                        report.false_fallback_rate(),
                        max_false_fallback,
                        false,
                    ),
                    (
                        "out-of-scope fallback",
                        report.oos_fallback_rate(),
                        min_oos_fallback,
                        true,
                    ),
                    (
                        "out-of-scope answered",
                        report.oos_answered_rate(),
                        max_oos_answered,
                        false,
                    ),
                ]);
            }
            let failed: Vec<String> = checks
                .into_iter()
                .filter_map(|(name, value, bound, is_min)| {
                    let b = bound?;
                    ((is_min && value < b) || (!is_min && value > b))
                        .then(|| format!("{name} {value:.3} (bound {b})"))
                })
                .collect();
            if failed.is_empty() {
                Ok(ExitCode::SUCCESS)
            } else {
                println!("FAILED: {}", failed.join(", "));
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let p = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(p == again, "the passwords do not match");
        Ok(p)
    } else {
        let mut s = String::new();
        stdin.lock().read_to_string(&mut s)?;
        Ok(s.trim_end_matches(['\n', '\r']).to_string())
    }
}

#[cfg(unix)]
fn spawn_reload_on_sighup(state: AppState) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = state.reload_catalog().await {
                tracing::warn!(error = %e, "catalog reload on SIGHUP rejected; previous catalog stays");
            }
        }
    });
}

#[cfg(not(unix))]
fn spawn_reload_on_sighup(_state: AppState) {}

/// Whether the configured database exists (PostgreSQL is assumed to; a SQLite file must be
/// there already, so a check never creates one).
fn database_present(url: &str) -> bool {
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(rest) => {
            let path = rest.split('?').next().unwrap_or_default();
            !path.is_empty() && !path.contains(":memory:") && std::path::Path::new(path).exists()
        }
        None => true,
    }
}

/// The catalog review's overlay stored in the database at `url` (migrated first).
async fn overlay_of(url: &str) -> anyhow::Result<crate::chat::overlay::Overlay> {
    let store = Store::connect(url).await?;
    store.migrate().await?;
    let ov = crate::chat::overlay::load(&store).await?;
    store.close().await;
    Ok(ov)
}

async fn open311_key(command: KeyCommand, config: &Config) -> anyhow::Result<ExitCode> {
    use crate::open311::keys;
    let by = keys::Issuer {
        user_id: None,
        username: "cli",
    };
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    match command {
        KeyCommand::Add { name } => {
            let name = match keys::parse_name(&name) {
                Ok(n) => n,
                Err(message) => {
                    eprintln!("--name: {message}");
                    return Ok(ExitCode::from(2));
                }
            };
            let issued = keys::issue(&store, &name, &by).await?;
            println!(
                "key {} issued for {}; give it to the app (it is not shown again):",
                issued.info.id, issued.info.name
            );
            println!("{}", issued.api_key);
        }
        KeyCommand::Revoke { id } => match keys::revoke(&store, id, &by).await? {
            Some(k) => println!("key {} ({}) revoked", k.id, k.name),
            None => {
                eprintln!("there is no key {id}");
                return Ok(ExitCode::FAILURE);
            }
        },
        KeyCommand::List => {
            for k in keys::list(&store).await? {
                let state = match k.revoked_at {
                    Some(t) => format!("revoked {}", t.to_rfc3339()),
                    None => "active".to_string(),
                };
                println!(
                    "{}\t{}\tissued {} by {}\t{state}",
                    k.id,
                    k.name,
                    k.created_at.to_rfc3339(),
                    k.created_by
                );
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
