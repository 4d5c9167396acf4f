//! `tern`: one binary, a subcommand per component.

use std::process::ExitCode;

mod api;
mod dkim;
mod ingress;
mod operator;
mod probe;
mod serve;
mod token;
mod user;
mod worker;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tern_api::config::ApiArgs;
use tern_common::config::{ConfigError, DatabaseArgs, EXIT_CONFIG, LogArgs};
use tern_common::queue;
use tern_ingress::IngressArgs;
use tern_operator::OperatorArgs;
use tern_worker::WorkerArgs;

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
    /// Deliver queued mail: claim recipient jobs, route, send, retry, bounce.
    Worker {
        #[command(flatten)]
        args: Box<WorkerArgs>,
        /// Validate the configuration and exit (0 when valid, 64 when not).
        #[arg(long)]
        check_config: bool,
    },
    /// Serve the admin REST API: the control plane and the queue.
    Api {
        #[command(flatten)]
        args: Box<ApiArgs>,
        /// Validate the configuration and exit (0 when valid, 64 when not).
        #[arg(long)]
        check_config: bool,
    },
    /// Run the Kubernetes operator: MailDomain, MailUser, MailBlocklist and MailCertificate
    /// resources into the control plane.
    Operator {
        #[command(flatten)]
        args: Box<OperatorArgs>,
        /// Validate the configuration and exit (0 when valid, 64 when not).
        #[arg(long)]
        check_config: bool,
    },
    /// Manage admin API tokens.
    Token {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Manage DKIM signing keys (made by Tern; prints the DNS record to publish).
    Dkim {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: dkim::DkimCommand,
    },
    /// Manage the users who may authenticate with SMTP AUTH.
    User {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: user::UserCommand,
    },
    /// Print the admin API's OpenAPI document (committed as docs/openapi.json).
    Openapi,
    /// Write the operator's CustomResourceDefinitions as YAML, one file per kind, into `--out`
    /// (committed as deploy/crds/), or print them all.
    Crdgen {
        /// The directory to write into; unset: standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Ask a Tern process's probe URL (`/readyz`, `/healthz`) and exit 0 when it answers 2xx:
    /// the healthcheck of an image that has no shell.
    Probe {
        /// The URL to ask, e.g. http://127.0.0.1:9100/readyz (plain HTTP).
        url: probe::ProbeUrl,
        /// How long to wait for the answer.
        #[arg(long, default_value = "3s", value_parser = tern_common::config::parse_duration)]
        timeout: std::time::Duration,
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
            let config = match validated("ingress", args.validate(), check_config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let telemetry = tern_common::telemetry::init(&args.log, &config.telemetry)?;
            let result = ingress::run(config).await;
            // Spans still batched leave before the process does.
            telemetry.shutdown().await;
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { args, check_config } => {
            let config = match validated("worker", args.validate(), check_config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let telemetry = tern_common::telemetry::init(&args.log, &config.telemetry)?;
            let result = worker::run(config).await;
            telemetry.shutdown().await;
            result?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Api { args, check_config } => {
            let config = match validated("api", args.validate(), check_config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            tern_common::telemetry::init_logs(&args.log);
            api::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Operator { args, check_config } => {
            let config = match validated("operator", args.validate(), check_config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            tern_common::telemetry::init_logs(&args.log);
            operator::run(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Probe { url, timeout } => Ok(probe::run(&url, timeout).await),
        Command::Openapi => {
            println!("{}", tern_api::openapi());
            Ok(ExitCode::SUCCESS)
        }
        Command::Crdgen { out } => {
            for definition in tern_operator::crd::definitions() {
                let (file, yaml) =
                    tern_operator::crd::yaml_file(&definition).map_err(anyhow::Error::msg)?;
                match &out {
                    Some(dir) => std::fs::write(dir.join(&file), yaml)
                        .with_context(|| format!("writing {}", dir.join(&file).display()))?,
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { database, command } => {
            let config = match database.validate() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tern token: {error}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            token::run(&config, command).await
        }
        Command::Dkim { database, command } => {
            let config = match database.validate() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tern dkim: {error}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            dkim::run(&config, command).await
        }
        Command::User { database, command } => {
            let config = match database.validate() {
                Ok(config) => config,
                Err(error) => {
                    eprintln!("tern user: {error}");
                    return Ok(ExitCode::from(EXIT_CONFIG as u8));
                }
            };
            user::run(&config, command).await
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
            let pool = queue::connect_pool(&config).context("database URL")?;
            queue::migrate(&pool).await.context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A valid configuration to run with, or the exit code: 64 naming the bad setting, or 0 after
/// `--check-config`.
fn validated<C>(
    command: &str,
    config: Result<C, ConfigError>,
    check_only: bool,
) -> Result<C, ExitCode> {
    match config {
        Err(error) => {
            eprintln!("tern {command}: {error}");
            Err(ExitCode::from(EXIT_CONFIG as u8))
        }
        Ok(_) if check_only => {
            println!("tern {command}: configuration is valid");
            Err(ExitCode::SUCCESS)
        }
        Ok(config) => Ok(config),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every environment variable any subcommand reads, from the arguments themselves.
    fn variables(command: &clap::Command, out: &mut Vec<String>) {
        for arg in command.get_arguments() {
            if let Some(name) = arg.get_env() {
                out.push(name.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            variables(sub, out);
        }
    }

    /// The README's tables hold the settings; tracing's live in the observability guide.
    #[test]
    fn the_docs_list_every_setting() {
        let docs = [
            include_str!("../../README.md"),
            include_str!("../../docs/observability.md"),
        ];
        let mut names = Vec::new();
        variables(&Cli::command(), &mut names);
        names.sort();
        names.dedup();
        assert!(names.len() > 40, "only {} settings found", names.len());
        let missing: Vec<&String> = names
            .iter()
            .filter(|name| {
                !docs
                    .iter()
                    .any(|doc| doc.contains(&format!("| `{name}` |")))
            })
            .collect();
        assert!(missing.is_empty(), "no table row documents {missing:?}");
    }
}
