//! A byte buffer that refuses to grow past the message size limit.

/// Message content collected so far. Once the limit would be exceeded the
/// content is dropped and only the fact is remembered, so a client cannot
/// make us hold more than `limit` bytes however much it sends.
#[derive(Debug, Default)]
pub(crate) struct BoundedBody {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
}

impl BoundedBody {
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            bytes: Vec::new(),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            overflowed: false,
        }
    }

    pub(crate) fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Whether `n` more bytes would go over the limit.
    pub(crate) fn would_overflow(&self, n: u64) -> bool {
        self.overflowed
            || usize::try_from(n)
                .ok()
                .and_then(|n| self.bytes.len().checked_add(n))
                .is_none_or(|total| total > self.limit)
    }

    /// Marks the content as too large and frees it.
    pub(crate) fn overflow(&mut self) {
        self.overflowed = true;
        self.bytes = Vec::new();
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.overflowed {
            return;
        }
        let needed = self.bytes.len() + data.len();
        if needed > self.limit {
            self.overflow();
            return;
        }
        if needed > self.bytes.capacity() {
            // Grow geometrically, but never reserve past the limit.
            let target = self
                .bytes
                .capacity()
                .saturating_mul(2)
                .clamp(needed, self.limit);
            self.bytes.reserve_exact(target - self.bytes.len());
        }
        self.bytes.extend_from_slice(data);
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_never_holds_more_than_the_limit() {
        let mut body = BoundedBody::new(10);
        body.push(b"0123456789");
        assert!(!body.overflowed());
        assert!(body.bytes.capacity() <= 10);
        body.push(b"x");
        assert!(body.overflowed());
        assert!(body.into_bytes().is_empty());
    }

    #[test]
    fn would_overflow_looks_ahead_without_storing() {
        let mut body = BoundedBody::new(10);
        body.push(b"12345");
        assert!(!body.would_overflow(5));
        assert!(body.would_overflow(6));
        assert!(body.would_overflow(u64::MAX));
    }
}
