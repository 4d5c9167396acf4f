//! [`QueueId`]: a message's identity in the queue, from the ingress's `250 … queued as` to the
//! API's `/v1/messages/{queue_id}`.
//!
//! A UUIDv7, so ids sort by the time the message arrived and a page of messages is a range of
//! the primary key. Everyone outside sees it in one form, 32 lowercase hex digits (what Postfix
//! users grep logs for); that form is written here and nowhere else.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type)]
#[sqlx(transparent)]
pub struct QueueId(Uuid);

/// Text that is not a queue id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a queue id (32 hex digits)")]
pub struct InvalidQueueId(pub String);

impl QueueId {
    /// A fresh id for a message arriving now.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Before every id: where a listing that starts at the beginning starts.
    pub const MIN: QueueId = QueueId(Uuid::nil());

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for QueueId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for QueueId {
    fn from(uuid: Uuid) -> Self {
        Self(uuid)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl fmt::Debug for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for QueueId {
    type Err = InvalidQueueId;

    /// The 32-digit form; the hyphenated UUID form is taken too, for ids pasted from `psql`.
    fn from_str(text: &str) -> Result<Self, InvalidQueueId> {
        Uuid::try_parse(text)
            .map(Self)
            .map_err(|_| InvalidQueueId(text.to_owned()))
    }
}

impl serde::Serialize for QueueId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_sorts_by_arrival() {
        let first = QueueId::new();
        let second = QueueId::new();
        assert!(first < second);
        let text = first.to_string();
        assert_eq!(text.len(), 32);
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(text.parse::<QueueId>(), Ok(first));
        let hyphenated = first.as_uuid().hyphenated().to_string();
        assert_eq!(hyphenated.parse::<QueueId>(), Ok(first));
        assert_eq!(
            "not-an-id".parse::<QueueId>(),
            Err(InvalidQueueId("not-an-id".into()))
        );
        assert_eq!(
            serde_json::to_string(&first).ok(),
            Some(format!("\"{text}\""))
        );
    }
}
