//! Reading one field of a message's header section (RFC 5322 2.2), for logs: the `Message-ID`
//! an operator searches for. Only the header section is looked at, folded lines are unfolded,
//! and nothing here ever fails: a field that is absent or unreadable is `None`.

/// The unfolded, trimmed value of the first field called `name` (case-insensitive), if the
/// header section has one and it is valid UTF-8. The header section ends at the first empty line
/// or at the first line that is neither a field nor a continuation.
pub fn field(message: &[u8], name: &str) -> Option<String> {
    let mut value: Option<Vec<u8>> = None;
    for line in lines(message) {
        if is_continuation(line) {
            if let Some(value) = value.as_mut() {
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        let (field_name, field_value) = split_field(line)?;
        if field_name.eq_ignore_ascii_case(name.as_bytes()) {
            value = Some(field_value.trim_ascii().to_vec());
        }
    }
    String::from_utf8(value?.trim_ascii().to_vec()).ok()
}

/// Every field of the header section as `(name, unfolded value)`, in order; values that are not
/// UTF-8 are shown with replacement characters.
pub fn fields(message: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in lines(message) {
        if is_continuation(line) {
            if let Some((_, value)) = out.last_mut() {
                value.push(' ');
                value.push_str(String::from_utf8_lossy(line.trim_ascii()).as_ref());
            }
            continue;
        }
        let Some((name, value)) = split_field(line) else {
            break;
        };
        out.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value.trim_ascii()).into_owned(),
        ));
    }
    out
}

/// How many fields of the header section are called `name` (case-insensitive).
pub fn count(message: &[u8], name: &str) -> usize {
    names(message)
        .filter(|field| field.eq_ignore_ascii_case(name.as_bytes()))
        .count()
}

/// The name of every field of the header section, in order (same section rules as [`field`]).
pub fn names(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    lines(message)
        .filter(|line| !is_continuation(line))
        .map_while(|line| split_field(line).map(|(name, _)| name))
}

/// The message without the header fields `drop(name, unfolded value)` picks (their folded lines
/// too), or `None` when it picks none, so that the usual case copies nothing.
pub fn without_fields(message: &[u8], drop: impl Fn(&[u8], &[u8]) -> bool) -> Option<Vec<u8>> {
    // Byte ranges of whole fields, first line to last continuation, line ends included.
    let mut fields: Vec<(usize, usize, &[u8], Vec<u8>)> = Vec::new();
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| start + i + 1);
        let raw = &message[start..end];
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if is_continuation(line) {
            let Some(field) = fields.last_mut() else {
                break;
            };
            field.1 = end;
            field.3.push(b' ');
            field.3.extend_from_slice(line.trim_ascii());
        } else {
            let Some((name, value)) = split_field(line) else {
                break;
            };
            fields.push((start, end, name, value.trim_ascii().to_vec()));
        }
        start = end;
    }
    let dropped: Vec<(usize, usize)> = fields
        .iter()
        .filter(|(_, _, name, value)| drop(name, value))
        .map(|(start, end, _, _)| (*start, *end))
        .collect();
    if dropped.is_empty() {
        return None;
    }
    let mut kept = Vec::with_capacity(message.len());
    let mut at = 0;
    for (start, end) in dropped {
        kept.extend_from_slice(&message[at..start]);
        at = end;
    }
    kept.extend_from_slice(&message[at..]);
    Some(kept)
}

fn lines(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
}

/// A folded continuation belongs to the field above it.
fn is_continuation(line: &[u8]) -> bool {
    line.starts_with(b" ") || line.starts_with(b"\t")
}

/// `name` and `value` of a `name: value` line (RFC 5322 2.2, with the obsolete spaces before the
/// colon); `None` for the empty line that ends the header section or anything else that is no
/// field.
fn split_field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii_end();
    let printable = |b: &u8| (33..=126).contains(b);
    (!name.is_empty() && name.iter().all(printable)).then_some((name, &line[colon + 1..]))
}

#[cfg(test)]
mod tests {
    use super::{count, field, fields, names, without_fields};

    #[test]
    fn drops_the_chosen_fields_whole_and_nothing_in_the_body() {
        let message = b"A: 1\r\nAuthentication-Results: mx.test;\r\n spf=pass\r\nB: 2\r\n\r\nAuthentication-Results: mx.test; body\r\n";
        let ours = |name: &[u8], value: &[u8]| {
            name.eq_ignore_ascii_case(b"Authentication-Results") && value.starts_with(b"mx.test")
        };
        assert_eq!(
            without_fields(message, ours).as_deref(),
            Some(&b"A: 1\r\nB: 2\r\n\r\nAuthentication-Results: mx.test; body\r\n"[..])
        );
        assert_eq!(without_fields(b"A: 1\r\n\r\nbody", ours), None);
        assert_eq!(without_fields(b"", ours), None);
        // A field that is the last line, without a line end, goes too.
        assert_eq!(
            without_fields(b"A: 1\nAuthentication-Results: mx.test; x", ours).as_deref(),
            Some(&b"A: 1\n"[..])
        );
    }

    #[test]
    fn lists_every_field_unfolded_until_the_body() {
        let message = b"Received: a\r\n  b\r\nSubject: hi\r\n\r\nX: body\r\n";
        assert_eq!(
            fields(message),
            [
                ("Received".to_owned(), "a b".to_owned()),
                ("Subject".to_owned(), "hi".to_owned())
            ]
        );
    }

    #[test]
    fn counts_fields_of_one_name_in_the_header_section() {
        let message =
            b"Received: a\r\nreceived: b\r\n c\r\nX-Received: d\r\n\r\nReceived: body\r\n";
        assert_eq!(count(message, "Received"), 2);
        assert_eq!(count(message, "Subject"), 0);
        assert_eq!(count(b"", "Received"), 0);
    }

    #[test]
    fn finds_folded_fields_in_the_header_section_only() {
        let message = b"Subject: hi\r\nmessage-id:\r\n  <a@b.example>\r\nX: y\r\n\r\nMessage-ID: <body@x>\r\n";
        assert_eq!(
            field(message, "Message-ID").as_deref(),
            Some("<a@b.example>")
        );
        assert_eq!(field(message, "Date"), None);
        assert_eq!(field(b"Subject: x\r\n\r\nDate: now\r\n", "Date"), None);
        assert_eq!(field(b"not a header\r\nDate: x\r\n", "Date"), None);
        assert_eq!(field(b"", "Date"), None);
        assert_eq!(field(b"Date: \xff\r\n", "Date"), None);
        let listed: Vec<&[u8]> = names(message).collect();
        assert_eq!(listed, [&b"Subject"[..], b"message-id", b"X"]);
    }
}
