//! ESMTP parameters on MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID) and RCPT
//! (NOTIFY, ORCPT).

#[cfg(test)]
mod tests;
mod text;
mod xtext;

pub use text::UnknownValue;

/// Longest ENVID, in characters of its xtext form (RFC 3461 4.4).
const MAX_ENVID: usize = 100;
/// Longest ORCPT value (RFC 3461 4.2).
const MAX_ORCPT: usize = 500;

/// Why a parameter list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParamError {
    #[error("malformed parameter {0:?}")]
    Syntax(String),
    #[error("duplicate parameter {0}")]
    Duplicate(String),
    #[error("unsupported parameter {0}")]
    Unsupported(String),
    #[error("invalid value for {0}")]
    BadValue(&'static str),
}

/// MAIL FROM parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// The client's size estimate (RFC 1870).
    pub size: Option<u64>,
    pub body: Body,
    pub smtputf8: bool,
    pub ret: Option<Ret>,
    /// Decoded from xtext.
    pub envid: Option<String>,
}

/// BODY= (RFC 6152).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Body {
    #[default]
    SevenBit,
    EightBitMime,
}

/// RET= (RFC 3461 4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

/// RCPT TO parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    pub notify: Option<Notify>,
    pub orcpt: Option<Orcpt>,
}

/// NOTIFY= (RFC 3461 4.1). `never` is exclusive of the other three.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Notify {
    pub never: bool,
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// ORCPT= (RFC 3461 4.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orcpt {
    /// Lowercased, e.g. `rfc822`.
    pub addr_type: String,
    /// Decoded from xtext.
    pub addr: String,
}

/// Parses the words after a MAIL FROM path. `esmtp` is false after HELO,
/// where no parameter at all is allowed.
pub(crate) fn parse_mail_params(words: &str, esmtp: bool) -> Result<MailParams, ParamError> {
    let mut params = MailParams::default();
    for (key, value) in split(words, esmtp, &["SIZE", "BODY", "SMTPUTF8", "RET", "ENVID"])? {
        match key {
            "SIZE" => params.size = Some(parse_size(required(key, value)?)?),
            "BODY" => {
                let value = required(key, value)?;
                params.body = value.parse().map_err(|_| ParamError::BadValue("BODY"))?;
            }
            "SMTPUTF8" => {
                if value.is_some() {
                    return Err(ParamError::BadValue("SMTPUTF8"));
                }
                params.smtputf8 = true;
            }
            "RET" => {
                let value = required(key, value)?;
                params.ret = Some(value.parse().map_err(|_| ParamError::BadValue("RET"))?);
            }
            _ => {
                let value = required(key, value)?;
                if value.len() > MAX_ENVID {
                    return Err(ParamError::BadValue("ENVID"));
                }
                let envid = xtext::decode(value).map_err(|_| ParamError::BadValue("ENVID"))?;
                params.envid = Some(envid);
            }
        }
    }
    Ok(params)
}

/// Parses the words after a RCPT TO path.
pub(crate) fn parse_rcpt_params(words: &str, esmtp: bool) -> Result<RcptParams, ParamError> {
    let mut params = RcptParams::default();
    for (key, value) in split(words, esmtp, &["NOTIFY", "ORCPT"])? {
        let value = required(key, value)?;
        if key == "NOTIFY" {
            params.notify = Some(value.parse().map_err(|_| ParamError::BadValue("NOTIFY"))?);
        } else {
            params.orcpt = Some(parse_orcpt(value)?);
        }
    }
    Ok(params)
}

/// Splits `KEY[=VALUE]` words, checking keyword syntax, support and
/// duplicates. Returned keys are the canonical (uppercase) names from `known`.
fn split<'a>(
    words: &'a str,
    esmtp: bool,
    known: &[&'static str],
) -> Result<Vec<(&'static str, Option<&'a str>)>, ParamError> {
    let mut out: Vec<(&'static str, Option<&'a str>)> = Vec::new();
    for word in words.split(' ').filter(|w| !w.is_empty()) {
        let (key, value) = match word.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (word, None),
        };
        if !is_keyword(key) || value.is_some_and(|v| !is_value(v)) {
            return Err(ParamError::Syntax(word.to_string()));
        }
        let canonical = known.iter().find(|k| k.eq_ignore_ascii_case(key));
        let Some(&canonical) = canonical.filter(|_| esmtp) else {
            return Err(ParamError::Unsupported(key.to_ascii_uppercase()));
        };
        if out.iter().any(|(seen, _)| *seen == canonical) {
            return Err(ParamError::Duplicate(canonical.to_string()));
        }
        out.push((canonical, value));
    }
    Ok(out)
}

/// esmtp-keyword: `(ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
fn is_keyword(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// esmtp-value: one or more printable characters other than `=`, UTF-8
/// allowed (RFC 6531).
fn is_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| matches!(c, '!'..='<' | '>'..='~') || (!c.is_ascii() && !c.is_control()))
}

fn required<'a>(key: &'static str, value: Option<&'a str>) -> Result<&'a str, ParamError> {
    value.ok_or(ParamError::BadValue(key))
}

/// Digits only. A number too big for u64 is certainly over any limit, so it
/// saturates rather than failing as a syntax error.
fn parse_size(value: &str) -> Result<u64, ParamError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParamError::BadValue("SIZE"));
    }
    Ok(value.parse().unwrap_or(u64::MAX))
}

fn parse_orcpt(value: &str) -> Result<Orcpt, ParamError> {
    let bad = ParamError::BadValue("ORCPT");
    if value.len() > MAX_ORCPT {
        return Err(bad);
    }
    let (addr_type, addr) = value.split_once(';').ok_or(bad.clone())?;
    // addr-type is an atom (RFC 3461 4.2).
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    if addr_type.is_empty() || !addr_type.chars().all(atom_char) || addr.is_empty() {
        return Err(bad);
    }
    Ok(Orcpt {
        addr_type: addr_type.to_ascii_lowercase(),
        addr: xtext::decode(addr).map_err(|_| bad)?,
    })
}
