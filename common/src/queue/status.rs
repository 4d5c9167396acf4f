//! A recipient job's status, typed: the `jobs.status` column's words.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobStatus {
    Queued,
    Leased,
    Deferred,
    /// Kept from every worker by an operator until released.
    Held,
    Delivered,
    Bounced,
    Expired,
}

impl JobStatus {
    pub const ALL: &'static [JobStatus] = &[
        JobStatus::Queued,
        JobStatus::Leased,
        JobStatus::Deferred,
        JobStatus::Held,
        JobStatus::Delivered,
        JobStatus::Bounced,
        JobStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Leased => "leased",
            JobStatus::Deferred => "deferred",
            JobStatus::Held => "held",
            JobStatus::Delivered => "delivered",
            JobStatus::Bounced => "bounced",
            JobStatus::Expired => "expired",
        }
    }

    /// The job's outcome is recorded for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobStatus::Delivered | JobStatus::Bounced | JobStatus::Expired
        )
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        JobStatus::ALL
            .iter()
            .copied()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| {
                let words: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("'{text}' is not one of {}", words.join(", "))
            })
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
