//! `tern user add|passwd|del|list|disable|enable|senders`: the users who may authenticate with
//! SMTP AUTH.
//!
//! Passwords never come from the command line (it is visible in `ps` and shell history): they
//! are read from standard input with `--password-stdin`, from a file with `--password-file` (a
//! mounted Secret, where the image has no shell to pipe with), or prompted for without echo on a
//! terminal.

use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;

use clap::Subcommand;
use tern_common::config::{DatabaseConfig, EXIT_CONFIG};
use tern_common::queue;
use tern_common::users::{LockoutPolicy, SenderRule, UserStore, UsersError};
use zeroize::Zeroizing;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user. A login that is an email address may always send as that address.
    Add {
        /// Login, usually an email address; case-insensitive.
        login: String,
        /// Another envelope sender the user may use: `bob@example.org` (one address) or
        /// `@example.com` (a whole domain). Repeatable.
        #[arg(long = "sender", value_name = "ADDRESS_OR_@DOMAIN")]
        senders: Vec<String>,
        #[command(flatten)]
        password: PasswordSource,
        /// Succeed without a change when the login exists already (for a setup step that runs
        /// at every start).
        #[arg(long)]
        if_missing: bool,
    },
    /// Change a user's password.
    Passwd {
        login: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete a user and its senders.
    Del { login: String },
    /// Keep a user but refuse its AUTH (535, like a wrong password) until `enable`.
    Disable { login: String },
    /// Let a disabled user authenticate again.
    Enable { login: String },
    /// Replace a user's extra senders (none given: only the login address remains).
    Senders {
        login: String,
        /// `bob@example.org` or `@example.com`. Repeatable.
        #[arg(long = "sender", value_name = "ADDRESS_OR_@DOMAIN")]
        senders: Vec<String>,
    },
    /// List users: login, whether disabled, and extra senders.
    List,
}

/// Where a password comes from when not from a prompt.
#[derive(clap::Args)]
pub struct PasswordSource {
    /// Read the password from standard input (up to the first line break).
    #[arg(long, conflicts_with = "password_file")]
    password_stdin: bool,
    /// Read the password from this file (up to the first line break).
    #[arg(long, value_name = "PATH")]
    password_file: Option<std::path::PathBuf>,
}

/// Runs one user command; `Err` only when the database cannot be used.
pub async fn run(database: &DatabaseConfig, command: UserCommand) -> anyhow::Result<ExitCode> {
    let pool = queue::connect_pool(database)?;
    // The lockout policy only matters to `authenticate`, which these commands never call.
    let users = UserStore::new(pool, LockoutPolicy::default());
    let result = match command {
        UserCommand::Add {
            login,
            senders,
            password,
            if_missing,
        } => {
            // Check everything that needs no database before asking for a password.
            let senders = match checked(&login, &senders) {
                Ok(senders) => senders,
                Err(error) => return Ok(report(&error)),
            };
            match read_password(&password) {
                Ok(password) => match users.add(&login, &password, &senders).await {
                    Ok(user) => {
                        println!("added {}", user.login);
                        Ok(())
                    }
                    Err(UsersError::Exists(login)) if if_missing => {
                        println!("{login} exists; left as it is");
                        Ok(())
                    }
                    Err(error) => Err(error),
                },
                Err(code) => return Ok(code),
            }
        }
        UserCommand::Passwd { login, password } => match read_password(&password) {
            Ok(password) => users
                .set_password(&login, &password)
                .await
                .map(|()| println!("password changed for {}", login.to_lowercase())),
            Err(code) => return Ok(code),
        },
        UserCommand::Del { login } => users
            .delete(&login)
            .await
            .map(|()| println!("deleted {}", login.to_lowercase())),
        UserCommand::Disable { login } => users
            .set_disabled(&login, true)
            .await
            .map(|()| println!("disabled {}", login.to_lowercase())),
        UserCommand::Enable { login } => users
            .set_disabled(&login, false)
            .await
            .map(|()| println!("enabled {}", login.to_lowercase())),
        UserCommand::Senders { login, senders } => match checked(&login, &senders) {
            Ok(senders) => users
                .set_senders(&login, &senders)
                .await
                .map(|()| println!("senders set for {}", login.to_lowercase())),
            Err(error) => return Ok(report(&error)),
        },
        UserCommand::List => list(&users).await,
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(UsersError::Database(error)) => Err(error.into()),
        Err(UsersError::Hashing(error)) => Err(anyhow::anyhow!("password hashing: {error}")),
        Err(error) => Ok(report(&error)),
    }
}

/// Prints the error; 1 for a user that exists or does not, 64 for input that can never work.
fn report(error: &UsersError) -> ExitCode {
    eprintln!("tern user: {error}");
    match error {
        UsersError::Exists(_) | UsersError::NotFound(_) | UsersError::OwnedBy { .. } => {
            ExitCode::FAILURE
        }
        _ => ExitCode::from(EXIT_CONFIG as u8),
    }
}

fn checked(login: &str, senders: &[String]) -> Result<Vec<SenderRule>, UsersError> {
    tern_common::users::normalize_login(login)?;
    senders.iter().map(|s| SenderRule::parse(s)).collect()
}

async fn list(users: &UserStore) -> Result<(), UsersError> {
    println!("LOGIN\tDISABLED\tSENDERS");
    for user in users.list().await? {
        let senders: Vec<String> = user.senders.iter().map(ToString::to_string).collect();
        let disabled = if user.disabled { "yes" } else { "no" };
        println!("{}\t{disabled}\t{}", user.login, senders.join(","));
    }
    Ok(())
}

/// The password from standard input, a file or a no-echo prompt; the exit code when there is
/// none.
fn read_password(source: &PasswordSource) -> Result<Zeroizing<String>, ExitCode> {
    let usage = || ExitCode::from(EXIT_CONFIG as u8);
    if let Some(path) = &source.password_file {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Zeroizing::new(text),
            Err(error) => {
                eprintln!(
                    "tern user: cannot read the password from {}: {error}",
                    path.display()
                );
                return Err(usage());
            }
        };
        let line = text.split(['\r', '\n']).next().unwrap_or_default();
        return Ok(Zeroizing::new(line.to_owned()));
    }
    if source.password_stdin {
        let mut input = Zeroizing::new(String::new());
        if let Err(error) = std::io::stdin().read_to_string(&mut input) {
            eprintln!("tern user: cannot read the password from standard input: {error}");
            return Err(usage());
        }
        let line = input.split(['\r', '\n']).next().unwrap_or_default();
        return Ok(Zeroizing::new(line.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        eprintln!(
            "tern user: no terminal to ask for a password on; use --password-stdin or --password-file"
        );
        return Err(usage());
    }
    let prompt = |text: &str| match rpassword::prompt_password(text) {
        Ok(password) => Ok(Zeroizing::new(password)),
        Err(error) => {
            eprintln!("tern user: cannot read the password: {error}");
            Err(usage())
        }
    };
    let password = prompt("Password: ")?;
    let again = prompt("Password again: ")?;
    if password != again {
        eprintln!("tern user: the passwords do not match");
        return Err(usage());
    }
    Ok(password)
}
