//! What a server announced in its EHLO (or LHLO) reply.

/// The service extensions a delivery cares about. A server greeted with HELO has none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// RFC 2920.
    pub pipelining: bool,
    /// RFC 1870 limit; `None` when absent or announced as `SIZE 0` ("no fixed limit").
    pub size: Option<u64>,
    /// RFC 6152.
    pub eightbitmime: bool,
    /// RFC 6531.
    pub smtputf8: bool,
    /// RFC 3461.
    pub dsn: bool,
    /// RFC 3207.
    pub starttls: bool,
    /// RFC 3030.
    pub chunking: bool,
    /// RFC 2034.
    pub enhancedstatuscodes: bool,
}

impl Capabilities {
    /// Reads the lines of a positive EHLO reply as
    /// [`ReplyParser::next_reply_lines`](super::ReplyParser::next_reply_lines) returns them. The
    /// first line is the server's name and greeting, never a keyword; keywords are
    /// case-insensitive and unknown ones are ignored.
    pub fn from_ehlo<S: AsRef<str>>(lines: &[S]) -> Self {
        let mut caps = Capabilities::default();
        for line in lines.iter().skip(1) {
            let mut words = line.as_ref().split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => caps.pipelining = true,
                // A malformed limit is treated as none rather than refusing the server: it will
                // still say 552 if the message is too large.
                "SIZE" => {
                    caps.size = words.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
                }
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "STARTTLS" => caps.starttls = true,
                "CHUNKING" => caps.chunking = true,
                "ENHANCEDSTATUSCODES" => caps.enhancedstatuscodes = true,
                _ => {}
            }
        }
        caps
    }
}
