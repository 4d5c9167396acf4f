//! Where the shared test services are.

/// URL of the maintenance database of the shared test PostgreSQL.
pub fn database_url() -> String {
    required("TERN_TEST_DATABASE_URL")
}

/// URL of the shared test NATS (JetStream enabled).
pub fn nats_url() -> String {
    required("TERN_TEST_NATS_URL")
}

/// A NATS prefix no other test uses, so tests share one server without seeing each other.
pub fn unique_nats_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn required(variable: &str) -> String {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{variable} is not set: this test needs the local PostgreSQL and NATS. \
             Run the suite with `make test`, or start them with `scripts/services.sh up` and \
             `eval \"$(scripts/services.sh env)\"`."
        ),
    }
}
