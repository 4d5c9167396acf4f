//! Asking the sites: all at once, under one deadline, with a cache of recent reports so a client
//! that reconnects costs no queries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::join_all;

use super::{Report, Site, SiteResult};
use crate::dns::{Ipv4Answer, Resolver};

/// Reports kept at most; past this, expired ones go, and if none had expired, all of them.
const CACHE_CAPACITY: usize = 100_000;

/// The sites, the resolver that asks them, and the reports of recent clients.
pub struct Dnsbl {
    sites: Vec<Site>,
    /// A score at or above this refuses the client.
    pub threshold: i32,
    deadline: Duration,
    cache_ttl: Duration,
    resolver: Resolver,
    cache: Mutex<HashMap<IpAddr, (Instant, Arc<Report>)>>,
}

impl std::fmt::Debug for Dnsbl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dnsbl")
            .field("sites", &self.sites)
            .field("threshold", &self.threshold)
            .field("deadline", &self.deadline)
            .field("cache_ttl", &self.cache_ttl)
            .finish_non_exhaustive()
    }
}

impl Dnsbl {
    pub fn new(
        sites: Vec<Site>,
        threshold: i32,
        deadline: Duration,
        cache_ttl: Duration,
        resolver: Resolver,
    ) -> Self {
        Self {
            sites,
            threshold,
            deadline,
            cache_ttl,
            resolver,
            cache: Mutex::default(),
        }
    }

    /// Every site's word on `client`, from the cache when a recent complete report exists.
    pub async fn check(&self, client: IpAddr) -> Arc<Report> {
        let client = crate::policy::canonical(client);
        if let Some(report) = self.cached(client) {
            return report;
        }
        let queries = self.sites.iter().map(|site| self.ask(site, client));
        let results = join_all(queries).await;
        let report = Arc::new(Report {
            results: self.sites.iter().cloned().zip(results).collect(),
        });
        // A report with an error is not the list's answer: ask again next time.
        if !report.has_errors() && !self.cache_ttl.is_zero() {
            self.remember(client, Arc::clone(&report));
        }
        report
    }

    async fn ask(&self, site: &Site, client: IpAddr) -> SiteResult {
        let name = site.query_name(client);
        match tokio::time::timeout(self.deadline, self.resolver.ipv4(&name)).await {
            Err(_) => SiteResult::Error(format!("no answer within {:?}", self.deadline)),
            Ok(Ipv4Answer::None) => SiteResult::NotListed,
            Ok(Ipv4Answer::Found(answers)) => site.judge(&answers),
            Ok(Ipv4Answer::Failed(reason)) => SiteResult::Error(reason),
        }
    }

    fn cached(&self, client: IpAddr) -> Option<Arc<Report>> {
        let cache = self.lock();
        let (at, report) = cache.get(&client)?;
        (at.elapsed() < self.cache_ttl).then(|| Arc::clone(report))
    }

    fn remember(&self, client: IpAddr, report: Arc<Report>) {
        let mut cache = self.lock();
        if cache.len() >= CACHE_CAPACITY {
            let ttl = self.cache_ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(client, (Instant::now(), report));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, (Instant, Arc<Report>)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
