//! An in-process authoritative DNS server for tests that route mail by MX.
//!
//! One catch-all handler answers for every name from a record table the test edits while the
//! server runs: a name with records answers them (or NODATA for other types), a name without
//! records answers NXDOMAIN, and a name marked with [`TestDns::servfail`] answers SERVFAIL. There
//! are no zones to declare, so a test can invent `example.test` and its MX hosts on the spot.
//!
//! Every answer carries TTL 0, so a record changed in the middle of a test is seen by the next
//! query even through a caching resolver (the worker's resolver keeps its own cache).
//!
//! Avoid names under `localhost`, `local`, `invalid` and `onion`: resolvers answer those
//! themselves (RFC 6761) and never ask this server.

mod handler;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, AAAA, MX, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use tokio::net::{TcpListener, UdpSocket};

use handler::Handler;

/// The table the handler answers from, shared with the test that edits it.
#[derive(Debug, Default)]
struct Records {
    by_name: HashMap<LowerName, Vec<Record>>,
    servfail: HashSet<LowerName>,
}

type Shared = Arc<Mutex<Records>>;

/// A DNS server on `127.0.0.1` (UDP and TCP on the same random port). Stops when dropped.
pub struct TestDns {
    addr: SocketAddr,
    records: Shared,
    // Dropping the server drops its task set, which aborts the UDP and TCP tasks.
    _server: Server<Handler>,
}

/// Binding UDP first and TCP on the same port can lose a race with another process; a few fresh
/// ports make that vanishingly rare without hiding a real failure.
const BIND_ATTEMPTS: usize = 10;

/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE: Duration = Duration::from_secs(10);

impl TestDns {
    /// Starts the server. Panics when no port can be bound.
    pub async fn start() -> Self {
        let records = Shared::default();
        let mut last_error = None;
        for _ in 0..BIND_ATTEMPTS {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .unwrap_or_else(|error| panic!("bind a UDP socket for the test DNS: {error}"));
            let addr = udp.local_addr().expect("local address of a bound socket");
            match TcpListener::bind(addr).await {
                Ok(tcp) => {
                    let mut server = Server::new(Handler::new(records.clone()));
                    server.register_socket(udp);
                    server.register_listener(tcp, TCP_IDLE, 64);
                    return Self {
                        addr,
                        records,
                        _server: server,
                    };
                }
                Err(error) => last_error = Some(error),
            }
        }
        panic!("bind UDP and TCP on one port for the test DNS: {last_error:?}");
    }

    /// Where to send queries: give this to the resolver under test.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds `domain MX preference exchange`.
    pub fn add_mx(&self, domain: &str, preference: u16, exchange: &str) {
        self.add(domain, RData::MX(MX::new(preference, name(exchange))));
    }

    /// Adds the RFC 7505 null MX, `domain MX 0 .`: the domain accepts no mail.
    pub fn add_null_mx(&self, domain: &str) {
        self.add(domain, RData::MX(MX::new(0, Name::root())));
    }

    pub fn add_a(&self, name: &str, address: Ipv4Addr) {
        self.add(name, RData::A(A(address)));
    }

    pub fn add_aaaa(&self, name: &str, address: Ipv6Addr) {
        self.add(name, RData::AAAA(AAAA(address)));
    }

    /// Adds a TXT record (SPF, DMARC and DKIM tests), split into character strings of at most
    /// 255 octets as DNS requires (a DKIM key is longer); readers join them again.
    pub fn add_txt(&self, name: &str, text: &str) {
        let strings = text
            .as_bytes()
            .chunks(255)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect();
        self.add(name, RData::TXT(TXT::new(strings)));
    }

    /// Makes every query for `name` answer SERVFAIL, whatever records it has, until
    /// [`TestDns::remove`] is called for it.
    pub fn servfail(&self, name: &str) {
        self.lock().servfail.insert(lower(name));
    }

    /// Forgets every record of `name` and its SERVFAIL mark: it answers NXDOMAIN again.
    pub fn remove(&self, name: &str) {
        let key = lower(name);
        let mut records = self.lock();
        records.by_name.remove(&key);
        records.servfail.remove(&key);
    }

    fn add(&self, owner: &str, data: RData) {
        let owner = name(owner);
        let record = Record::from_rdata(owner.clone(), 0, data);
        self.lock()
            .by_name
            .entry(LowerName::new(&owner))
            .or_default()
            .push(record);
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        lock(&self.records)
    }
}

/// A panic in a test holding the lock must not hide every later answer behind a poison error.
fn lock(records: &Shared) -> MutexGuard<'_, Records> {
    records
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Parses a test's name as absolute, with or without its trailing dot.
fn name(text: &str) -> Name {
    let absolute = if text.ends_with('.') {
        text.to_owned()
    } else {
        format!("{text}.")
    };
    Name::from_utf8(&absolute).unwrap_or_else(|error| panic!("bad DNS name {text:?}: {error}"))
}

fn lower(text: &str) -> LowerName {
    LowerName::new(&name(text))
}
