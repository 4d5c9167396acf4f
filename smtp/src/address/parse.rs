//! The path grammar of RFC 5321 4.1.2 with the RFC 6531 UTF-8 extensions.

use super::domain::{is_utf8_non_ascii, parse_domain, parse_name};
use super::{AddressError, ForwardPath, MAX_LOCAL, MAX_PATH, Mailbox, ReversePath};

/// Splits `<path> rest` at the `>` that closes the path. A `>` inside a
/// quoted local part does not count, so `<"a>b"@c>` stays whole.
pub(crate) fn split_path(s: &str) -> Result<(&str, &str), AddressError> {
    if !s.starts_with('<') {
        return Err(AddressError::NotBracketed);
    }
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '>' if !in_quotes => return Ok((&s[..=i], &s[i + 1..])),
            _ => {}
        }
    }
    Err(AddressError::NotBracketed)
}

/// Parses a MAIL FROM path including its angle brackets.
pub(crate) fn parse_reverse_path(path: &str) -> Result<ReversePath, AddressError> {
    if path == "<>" {
        return Ok(ReversePath::Null);
    }
    parse_path(path).map(ReversePath::Mailbox)
}

/// Parses a RCPT TO path including its angle brackets.
pub(crate) fn parse_forward_path(path: &str) -> Result<ForwardPath, AddressError> {
    if path == "<>" {
        return Err(AddressError::NullNotAllowed);
    }
    let inner = path.strip_prefix('<').and_then(|p| p.strip_suffix('>'));
    if inner.is_some_and(|p| p.eq_ignore_ascii_case("postmaster")) {
        return Ok(ForwardPath::Postmaster);
    }
    parse_path(path).map(ForwardPath::Mailbox)
}

fn parse_path(path: &str) -> Result<Mailbox, AddressError> {
    if path.len() > MAX_PATH {
        return Err(AddressError::PathTooLong);
    }
    let inner = path
        .strip_prefix('<')
        .and_then(|p| p.strip_suffix('>'))
        .ok_or(AddressError::NotBracketed)?;
    parse_mailbox(strip_route(inner)?)
}

/// Drops an `@a.example,@b.example:` source route. RFC 5321 4.1.2 says
/// servers must accept and should ignore it; it is never used for routing.
fn strip_route(inner: &str) -> Result<&str, AddressError> {
    if !inner.starts_with('@') {
        return Ok(inner);
    }
    let (route, rest) = inner.split_once(':').ok_or(AddressError::BadRoute)?;
    for hop in route.split(',') {
        let name = hop.strip_prefix('@').ok_or(AddressError::BadRoute)?;
        parse_name(name).map_err(|_| AddressError::BadRoute)?;
    }
    Ok(rest)
}

fn parse_mailbox(s: &str) -> Result<Mailbox, AddressError> {
    let (local, rest) = if s.starts_with('"') {
        parse_quoted(s)?
    } else {
        let at = s.find('@').ok_or(AddressError::MissingDomain)?;
        let local = &s[..at];
        if !is_dot_string(local) {
            return Err(AddressError::BadLocal);
        }
        (local.to_string(), &s[at..])
    };
    // The limit applies to the local part as written, quotes and all.
    if s.len() - rest.len() > MAX_LOCAL {
        return Err(AddressError::LocalTooLong);
    }
    let domain = rest.strip_prefix('@').ok_or(AddressError::MissingDomain)?;
    Ok(Mailbox {
        local,
        domain: parse_domain(domain)?,
    })
}

/// Decodes a quoted-string local part; returns the content and what follows
/// the closing quote.
fn parse_quoted(s: &str) -> Result<(String, &str), AddressError> {
    let mut content = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((content, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, escaped)) if (' '..='~').contains(&escaped) => content.push(escaped),
                _ => return Err(AddressError::BadLocal),
            },
            c if is_qtext(c) => content.push(c),
            _ => return Err(AddressError::BadLocal),
        }
    }
    Err(AddressError::BadLocal)
}

/// `Atom *("." Atom)`: the unquoted local-part form.
pub(super) fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || is_utf8_non_ascii(c)
}

/// qtextSMTP: printable ASCII except `"` and `\`, plus space.
fn is_qtext(c: char) -> bool {
    matches!(c, ' '..='!' | '#'..='[' | ']'..='~') || is_utf8_non_ascii(c)
}
