//! A minimal MIME reader for checking reports: splits header from body, unfolds fields and
//! cuts a multipart at its boundary. Deliberately independent of the builder's helpers.

#[derive(Debug)]
pub(super) struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    /// A header section and a body, split at the first empty line.
    pub fn parse(bytes: &[u8]) -> Part {
        let (head, body) = if bytes.starts_with(b"\r\n") {
            (&b""[..], &bytes[2..])
        } else {
            match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
                Some(at) => (&bytes[..at + 2], &bytes[at + 4..]),
                None => (bytes, &b""[..]),
            }
        };
        Part {
            headers: fields(head),
            body: body.to_vec(),
        }
    }

    /// The first field of that name (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// `type/subtype` of Content-Type, lowercased.
    pub fn media_type(&self) -> String {
        let value = self.header("Content-Type").unwrap_or("text/plain");
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// A Content-Type parameter, unquoted.
    pub fn param(&self, name: &str) -> Option<String> {
        let value = self.header("Content-Type")?;
        value.split(';').skip(1).find_map(|param| {
            let (key, value) = param.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().trim_matches('"').to_owned())
        })
    }

    /// The body parts of a multipart, without preamble and epilogue.
    pub fn parts(&self) -> Vec<Part> {
        let boundary = self.param("boundary").expect("a boundary parameter");
        let delimiter = format!("\r\n--{boundary}");
        let mut body = b"\r\n".to_vec();
        body.extend_from_slice(&self.body);
        let mut parts = Vec::new();
        let mut segments = split(&body, delimiter.as_bytes()).into_iter().skip(1);
        for segment in segments.by_ref() {
            if segment.starts_with(b"--") {
                return parts;
            }
            let segment = segment
                .strip_prefix(b"\r\n")
                .expect("CRLF after a delimiter");
            parts.push(Part::parse(segment));
        }
        panic!("no close delimiter");
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }
}

/// The blocks of a delivery-status body, each a list of fields.
pub(super) fn blocks(body: &[u8]) -> Vec<Part> {
    split(body, b"\r\n\r\n")
        .into_iter()
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut head = block.to_vec();
            if !head.ends_with(b"\r\n") {
                head.extend_from_slice(b"\r\n");
            }
            Part {
                headers: fields(&head),
                body: Vec::new(),
            }
        })
        .collect()
}

fn fields(head: &[u8]) -> Vec<(String, String)> {
    let head = String::from_utf8_lossy(head);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n").filter(|line| !line.is_empty()) {
        if line.starts_with([' ', '\t']) {
            let (_, value) = fields.last_mut().expect("a field before a continuation");
            value.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("a colon in a field");
            fields.push((name.to_owned(), value.trim_start().to_owned()));
        }
    }
    fields
}

fn split<'a>(bytes: &'a [u8], separator: &[u8]) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + separator.len() <= bytes.len() {
        if &bytes[at..at + separator.len()] == separator {
            pieces.push(&bytes[start..at]);
            at += separator.len();
            start = at;
        } else {
            at += 1;
        }
    }
    pieces.push(&bytes[start..]);
    pieces
}
