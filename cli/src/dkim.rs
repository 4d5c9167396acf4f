//! `tern dkim create|list|signing|delete`: DKIM signing keys, for those who manage Tern without
//! the admin API. Tern makes each key pair; `create` prints the DNS record to publish, and
//! nothing prints the private key. The writes are the API's (owner `api`).

use std::process::ExitCode;

use clap::Subcommand;
use tern_common::config::DatabaseConfig;
use tern_common::control::{
    ControlError, DkimAlgorithm, DkimKeySummary, NewDkimKey, Owner, PgControlStore,
};
use tern_common::queue;

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Make a key pair for a domain's new selector and print the record to publish.
    Create {
        domain: String,
        selector: String,
        /// `rsa-sha256` (2048 bits) or `ed25519-sha256`.
        #[arg(long, default_value = "rsa-sha256")]
        algorithm: String,
        /// Make it without signing with it yet (publish the record first, then `signing on`).
        #[arg(long)]
        no_signing: bool,
    },
    /// List keys: domain, selector, algorithm, whether it signs, owner.
    List { domain: Option<String> },
    /// Start (`on`) or stop (`off`) a key signing.
    Signing {
        domain: String,
        selector: String,
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
    /// Delete a key (withdraw its DNS record afterwards).
    Delete { domain: String, selector: String },
}

fn record(key: &DkimKeySummary) -> String {
    format!("{}. IN TXT \"{}\"", key.dns_name(), key.dns_txt())
}

pub async fn run(database: &DatabaseConfig, command: DkimCommand) -> anyhow::Result<ExitCode> {
    // Pods find the change by their poll (30 s by default) when no notice goes out.
    let store = PgControlStore::new(queue::connect_pool(database)?, None);
    let result = match command {
        DkimCommand::Create {
            domain,
            selector,
            algorithm,
            no_signing,
        } => match algorithm.parse::<DkimAlgorithm>() {
            Ok(algorithm) => {
                let new = NewDkimKey {
                    domain,
                    selector,
                    algorithm,
                    signing: !no_signing,
                };
                store
                    .generate_dkim_key(Owner::Api, &new)
                    .await
                    .map(|key| println!("{}", record(&key)))
            }
            Err(error) => Err(ControlError::Invalid(error)),
        },
        DkimCommand::List { domain } => store.dkim_keys(domain.as_deref()).await.map(|keys| {
            for key in keys {
                let signing = if key.signing { "signing" } else { "published" };
                println!(
                    "{}\t{}\t{}\t{signing}\t{}",
                    key.domain, key.selector, key.algorithm, key.owner
                );
            }
        }),
        DkimCommand::Signing {
            domain,
            selector,
            state,
        } => store
            .set_dkim_signing(Owner::Api, &domain, &selector, state == "on")
            .await
            .map(|_| ()),
        DkimCommand::Delete { domain, selector } => {
            store.delete_dkim_key(Owner::Api, &domain, &selector).await
        }
    };
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(
            error @ (ControlError::Exists(_) | ControlError::NotFound | ControlError::OwnedBy(_)),
        ) => {
            eprintln!("tern dkim: {error}");
            Ok(ExitCode::from(1))
        }
        Err(ControlError::Invalid(error)) => {
            eprintln!("tern dkim: {}: {}", error.field, error.reason);
            Ok(ExitCode::from(64))
        }
        Err(error) => Err(anyhow::anyhow!("tern dkim: {error}")),
    }
}
