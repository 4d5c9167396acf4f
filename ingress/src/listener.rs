//! The roles a listener plays.

/// Which role a listener plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Port 25: MX and relay, STARTTLS offered.
    Smtp,
    /// Port 587: STARTTLS offered.
    Submission,
    /// Port 465: TLS from the first byte.
    Submissions,
}

impl ListenerKind {
    pub fn label(self) -> &'static str {
        match self {
            ListenerKind::Smtp => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
        }
    }
}
