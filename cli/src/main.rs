//! `tern`: one binary, a subcommand per component.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tern_common::admin;
use tern_common::bus::Bus;
use tern_common::config::{DatabaseArgs, EXIT_CONFIG, LogArgs};
use tern_common::store::{self, PgQueueStore};
use tern_ingress::{Ingress, IngressArgs};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "tern",
    version,
    about = "Tern: a Kubernetes-native mail transfer agent"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive mail over SMTP and commit it to the queue.
    Ingress {
        #[command(flatten)]
        args: Box<IngressArgs>,
        /// Validate the configuration and exit (0 when valid, 64 when not).
        #[arg(long)]
        check_config: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        log: LogArgs,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                EXIT_CONFIG as u8
            } else {
                0
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tern: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("tern: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Ingress { args, check_config } => {
            let config = match args.validate() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tern ingress: {error}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            if check_config {
                println!("tern ingress: configuration is valid");
                return Ok(ExitCode::SUCCESS);
            }
            tern_common::telemetry::init_logs(&args.log);
            run_ingress(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { database, log } => {
            let config = match database.validate() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tern migrate: {error}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            tern_common::telemetry::init_logs(&log);
            let pool = store::connect_pool(&config).context("database URL")?;
            store::migrate(&pool).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_ingress(config: tern_ingress::IngressConfig) -> anyhow::Result<()> {
    let metrics = admin::install_metrics_recorder().context("installing the metrics recorder")?;
    let shutdown = tern_common::shutdown::on_signal();

    let pool = store::connect_pool(&config.database).context("database URL")?;
    let bus = Bus::connect(&config.nats).await.context("NATS")?;
    let stream_bus = bus.clone();
    tokio::spawn(async move { ensure_stream_until_ok(stream_bus).await });

    let mut listeners = Vec::new();
    for (address, kind) in &config.listeners {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("binding {} listener on {address}", kind.label()))?;
        listeners.push((listener, *kind));
    }
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("binding the admin listener on {}", config.admin_listen))?;

    let readiness_pool = pool.clone();
    let readiness_bus = bus.clone();
    let readiness: admin::ReadinessCheck = std::sync::Arc::new(move || {
        let pool = readiness_pool.clone();
        let bus = readiness_bus.clone();
        Box::pin(async move {
            let ping = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                sqlx::query("SELECT 1").execute(&pool),
            );
            match ping.await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(format!("PostgreSQL: {error}")),
                Err(_) => return Err("PostgreSQL: timed out".to_owned()),
            }
            if !bus.is_connected() {
                return Err("NATS: not connected".to_owned());
            }
            Ok(())
        })
    });
    let admin_stop = tokio_util::sync::CancellationToken::new();
    let admin_router = admin::router(Some(metrics), readiness, shutdown.clone());
    let admin_task = tokio::spawn(admin::serve(
        admin_listener,
        admin_router,
        admin_stop.clone(),
    ));

    let store = PgQueueStore::new(pool.clone(), config.database.commit_timeout);
    tern_ingress::run(
        Ingress::new(&config, store, Some(bus.clone())),
        listeners,
        shutdown,
    )
    .await;

    let _ = bus.client().flush().await;
    admin_stop.cancel();
    let _ = admin_task.await;
    pool.close().await;
    Ok(())
}

/// The stream may not exist yet (fresh NATS) or NATS may be down at start: keep trying in the
/// background; until then notices fail, are counted, and workers poll.
async fn ensure_stream_until_ok(bus: Bus) {
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match bus.ensure_stream().await {
            Ok(()) => {
                tracing::info!(stream = %bus.names().stream, "JetStream work-queue stream ready");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "JetStream stream not ready; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        }
    }
}
