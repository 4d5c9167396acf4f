//! Connection limits: in total and per client IP, checked before a session starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Which limit refused a connection (a bounded metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LimitExceeded {
    Total,
    PerIp,
}

impl LimitExceeded {
    pub(crate) fn label(self) -> &'static str {
        match self {
            LimitExceeded::Total => "max_connections",
            LimitExceeded::PerIp => "max_connections_per_ip",
        }
    }
}

/// Holds one connection's place; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct ConnectionPermit {
    limits: Arc<ConnectionLimits>,
    ip: IpAddr,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            state: Mutex::new(Counts::default()),
        })
    }

    pub(crate) fn try_acquire(
        self: &Arc<Self>,
        ip: IpAddr,
    ) -> Result<ConnectionPermit, LimitExceeded> {
        // The lock is held for a few instructions and never across an await.
        let mut counts = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(LimitExceeded::Total);
        }
        let per_ip = counts.per_ip.entry(ip).or_insert(0);
        if *per_ip >= self.max_per_ip {
            return Err(LimitExceeded::PerIp);
        }
        *per_ip += 1;
        counts.total += 1;
        Ok(ConnectionPermit {
            limits: Arc::clone(self),
            ip,
        })
    }

    #[cfg(test)]
    pub(crate) fn active(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self
            .limits
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(per_ip) = counts.per_ip.get_mut(&self.ip) {
            *per_ip -= 1;
            if *per_ip == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn per_ip_limit_refuses_the_next_connection_from_that_ip_only() {
        let limits = ConnectionLimits::new(10, 2);
        let _a = limits.try_acquire(ip("192.0.2.1")).expect("first");
        let _b = limits.try_acquire(ip("192.0.2.1")).expect("second");
        assert_eq!(
            limits
                .try_acquire(ip("192.0.2.1"))
                .expect_err("third from one ip"),
            LimitExceeded::PerIp
        );
        assert!(limits.try_acquire(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn total_limit_refuses_everyone_and_dropping_a_permit_frees_a_place() {
        let limits = ConnectionLimits::new(2, 10);
        let a = limits.try_acquire(ip("192.0.2.1")).expect("first");
        let _b = limits.try_acquire(ip("192.0.2.2")).expect("second");
        assert_eq!(
            limits
                .try_acquire(ip("192.0.2.3"))
                .expect_err("third in total"),
            LimitExceeded::Total
        );
        drop(a);
        assert_eq!(limits.active(), 1);
        assert!(limits.try_acquire(ip("192.0.2.3")).is_ok());
    }
}
