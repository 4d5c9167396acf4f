//! Where a destination's mail goes: its route (the control plane's domain row, else the
//! configured routes and smarthost, else MX), the hosts that route resolves to in the order to
//! try, and how to speak to them.

use std::net::SocketAddr;

use crate::delivery::route::RouteTable;
use tern_common::control::ControlWatch;
use tern_common::dns::{Resolver, ResolverError};

use crate::delivery::DeliveryError;
use crate::delivery::client::{Protocol, TlsMode};
use crate::delivery::mx::{MxResolver, TargetHost};
use crate::delivery::myself::Myself;
use crate::delivery::route::Route;
use crate::delivery::tls_policy::TlsPolicy;
use crate::throttle::Site;

/// Where a group goes: resolved hosts in the order to try, and how to speak to them.
pub(crate) struct Plan {
    /// The connection cache's and the concurrency limit's key: the MX domain, or the relay.
    pub(crate) key: String,
    /// Where the mail goes as the destination limits see it: the MX host set, or the relay.
    pub(crate) site: Site,
    pub(crate) protocol: Protocol,
    pub(crate) tls: TlsMode,
    pub(crate) hosts: Vec<TargetHost>,
}

/// What routing needs, and nothing else of the worker.
pub(crate) struct Planner {
    control: ControlWatch,
    routes: RouteTable,
    tls_policy: TlsPolicy,
    myself: Myself,
    smtp_port: u16,
    resolver: MxResolver,
}

impl Planner {
    /// `nameserver`: ask this server instead of the system's (tests serve their own zones).
    pub(crate) fn new(
        control: ControlWatch,
        routes: RouteTable,
        tls_policy: TlsPolicy,
        myself: Myself,
        smtp_port: u16,
        nameserver: Option<SocketAddr>,
    ) -> Result<Self, ResolverError> {
        let resolver = MxResolver::new(&Resolver::new(nameserver)?);
        Ok(Self {
            control,
            routes,
            tls_policy,
            myself,
            smtp_port,
            resolver,
        })
    }

    /// A domain's route: its control-plane row's, else the static routes and smarthost, else MX.
    fn route(&self, domain: &str) -> Route {
        let plane = self.control.current();
        let from_row = plane
            .domain(domain)
            .and_then(|row| row.route.as_deref())
            .and_then(|spec| {
                Route::for_domain(domain, spec)
                    .inspect_err(|error| tracing::warn!(domain, spec, %error, "unusable route in the control plane; using the configured one"))
                    .ok()
            });
        from_row.unwrap_or_else(|| self.routes.lookup(domain))
    }

    pub(crate) async fn plan(&self, domain: &str) -> Result<Plan, DeliveryError> {
        let resolver = &self.resolver;
        match self.route(domain) {
            Route::Mx { domain } => {
                let hosts = resolver.resolve(&domain, self.smtp_port).await?;
                let hosts = self.myself.drop_from(&domain, hosts)?;
                Ok(Plan {
                    site: Site::of(hosts.iter().map(|host| host.name.as_str())),
                    hosts,
                    tls: self.tls_policy.mode(&domain),
                    key: domain,
                    protocol: Protocol::Smtp,
                })
            }
            Route::Relay {
                protocol,
                host,
                port,
                mx_lookup,
            } => {
                let hosts = if mx_lookup {
                    let hosts = resolver.resolve(&host, port).await?;
                    self.myself.drop_from(&host, hosts)?
                } else {
                    resolver.resolve_host(&host, port).await?
                };
                let tls = self.tls_policy.mode(domain);
                // Domains with different TLS policies may share a relay; their connections must
                // not be shared.
                let key = match tls {
                    TlsMode::Verified => format!("{host}:{port} verified"),
                    _ => format!("{host}:{port}"),
                };
                Ok(Plan {
                    key,
                    site: Site::of([host.as_str()]),
                    protocol,
                    tls,
                    hosts,
                })
            }
        }
    }
}
