//! SMTP AUTH (RFC 4954) without IO: the `AUTH` argument, the SASL PLAIN (RFC 4616) and LOGIN
//! (draft-murchison-sasl-login) exchanges, and the replies they produce.
//!
//! The session feeds the `AUTH` command's argument to [`start`] and every following client line to
//! [`SaslExchange::respond`] until it gets [`Progress::Done`] with [`Credentials`]; checking them
//! is someone else's job. Every [`AuthError`] has exactly one reply ([`AuthError::reply`]).
//!
//! Whether AUTH is allowed at all (TLS, already authenticated, in a transaction) is the session's
//! decision; the replies for those cases are here so all AUTH wording lives in one place.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use zeroize::Zeroizing;

use crate::reply::{Refusal, Reply};

#[cfg(test)]
mod tests;

/// The EHLO keyword line (without the `AUTH` verb's own 250 prefix): `AUTH PLAIN LOGIN`.
pub const EHLO_KEYWORD: &str = "AUTH PLAIN LOGIN";

/// Longest accepted login (authentication identity) and authorization identity, in octets: an
/// email address is at most 254.
pub const MAX_LOGIN: usize = 255;
/// Longest accepted password, in octets. Generous for passphrases; keeps hashing input bounded.
pub const MAX_PASSWORD: usize = 1024;

/// A SASL mechanism Tern offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Login,
}

impl Mechanism {
    /// The mechanism named by an `AUTH` argument, case-insensitively (RFC 4954 section 4).
    pub fn parse(name: &str) -> Result<Self, AuthError> {
        if name.eq_ignore_ascii_case("PLAIN") {
            Ok(Mechanism::Plain)
        } else if name.eq_ignore_ascii_case("LOGIN") {
            Ok(Mechanism::Login)
        } else {
            Err(AuthError::UnknownMechanism)
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
        }
    }
}

/// What a client proved it knows: a login and a password. The password never appears in `Debug`
/// and its memory is wiped when the value is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    login: String,
    password: Zeroizing<String>,
}

impl Credentials {
    pub fn new(login: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            login: login.into(),
            password: Zeroizing::new(password.into()),
        }
    }

    /// The authentication identity as the client sent it (not case-folded).
    pub fn login(&self) -> &str {
        &self.login
    }

    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Why an AUTH exchange ended without credentials. Each maps to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `AUTH` with no mechanism, or with more than a mechanism and an initial response.
    #[error("AUTH syntax error")]
    Syntax,
    #[error("unknown SASL mechanism")]
    UnknownMechanism,
    /// The client answered a challenge with `*` (RFC 4954 section 4).
    #[error("client cancelled the exchange")]
    Cancelled,
    /// Not strict base64 (RFC 4648 with padding, no whitespace).
    #[error("response is not valid base64")]
    MalformedBase64,
    /// Decoded, but not a well-formed PLAIN message or LOGIN answer: wrong number of NULs, not
    /// UTF-8, an empty login or password, a control character in the login, or too long.
    #[error("malformed SASL response: {0}")]
    MalformedResponse(&'static str),
    /// PLAIN with an authorization identity other than the login: acting for another user is
    /// not supported, so the attempt fails like bad credentials.
    #[error("authorization identity differs from the login")]
    ForeignAuthzid,
}

impl AuthError {
    /// The one reply for this error.
    pub fn reply(&self) -> Reply {
        match self {
            AuthError::Syntax => {
                Reply::new(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]")
                    .because(Refusal::Syntax)
            }
            AuthError::UnknownMechanism => Reply::auth_unknown_mechanism(),
            AuthError::Cancelled => Reply::auth_cancelled(),
            AuthError::MalformedBase64 | AuthError::MalformedResponse(_) => Reply::auth_malformed(),
            AuthError::ForeignAuthzid => Reply::auth_failed(),
        }
    }
}

/// Where an exchange stands after a client line.
#[derive(Debug)]
pub enum Progress {
    /// Send `reply` (a `334` challenge) and feed the client's next line to `exchange`.
    Challenge {
        exchange: SaslExchange,
        reply: Reply,
    },
    /// The client has sent everything; verify these.
    Done(Credentials),
}

/// An exchange waiting for the client's next line.
#[derive(Debug)]
pub struct SaslExchange {
    state: State,
}

#[derive(Debug)]
enum State {
    /// PLAIN sent without an initial response: waiting for the whole message.
    PlainMessage,
    LoginUsername,
    LoginPassword {
        login: String,
    },
}

/// Starts an exchange from the `AUTH` command's argument (everything after `AUTH `):
/// `mechanism [SP initial-response]`, where an initial response of `=` is an empty one.
pub fn start(argument: &str) -> Result<Progress, AuthError> {
    let mut words = argument.split(' ');
    let mechanism = match words.next() {
        Some(name) if !name.is_empty() => Mechanism::parse(name)?,
        _ => return Err(AuthError::Syntax),
    };
    let initial = words.next();
    if words.next().is_some() || initial == Some("") {
        return Err(AuthError::Syntax);
    }
    let initial = match initial {
        None => None,
        Some("=") => Some(Zeroizing::new(Vec::new())),
        Some(encoded) => Some(decode(encoded)?),
    };
    match (mechanism, initial) {
        (Mechanism::Plain, None) => Ok(challenge(State::PlainMessage, "")),
        (Mechanism::Plain, Some(message)) => plain(&message).map(Progress::Done),
        (Mechanism::Login, None) => Ok(challenge(State::LoginUsername, USERNAME_PROMPT)),
        // Not in the LOGIN draft, but sent by common clients: the user name up front.
        (Mechanism::Login, Some(login)) => login_username(&login),
    }
}

/// `Username:` and `Password:` in base64, as LOGIN clients expect them.
const USERNAME_PROMPT: &str = "VXNlcm5hbWU6";
const PASSWORD_PROMPT: &str = "UGFzc3dvcmQ6";

impl SaslExchange {
    /// The client's answer to the last challenge: one line without its CRLF.
    pub fn respond(self, line: &[u8]) -> Result<Progress, AuthError> {
        let text = std::str::from_utf8(line).map_err(|_| AuthError::MalformedBase64)?;
        if text == "*" {
            return Err(AuthError::Cancelled);
        }
        let decoded = decode(text)?;
        match self.state {
            State::PlainMessage => plain(&decoded).map(Progress::Done),
            State::LoginUsername => login_username(&decoded),
            State::LoginPassword { login } => {
                let password = password(&decoded)?;
                Ok(Progress::Done(Credentials::new(login, password)))
            }
        }
    }

    /// The mechanism this exchange speaks.
    pub fn mechanism(&self) -> Mechanism {
        match self.state {
            State::PlainMessage => Mechanism::Plain,
            State::LoginUsername | State::LoginPassword { .. } => Mechanism::Login,
        }
    }
}

fn challenge(state: State, text: &str) -> Progress {
    Progress::Challenge {
        exchange: SaslExchange { state },
        reply: Reply::auth_challenge(text),
    }
}

fn decode(encoded: &str) -> Result<Zeroizing<Vec<u8>>, AuthError> {
    // Anything longer cannot hold a bounded PLAIN message; refuse before allocating.
    const MAX_ENCODED: usize = (2 * MAX_LOGIN + MAX_PASSWORD + 2).div_ceil(3) * 4;
    if encoded.len() > MAX_ENCODED {
        return Err(AuthError::MalformedResponse("response too long"));
    }
    BASE64
        .decode(encoded)
        .map(Zeroizing::new)
        .map_err(|_| AuthError::MalformedBase64)
}

/// RFC 4616: `[authzid] NUL authcid NUL passwd`.
fn plain(message: &[u8]) -> Result<Credentials, AuthError> {
    let mut parts = message.split(|&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedResponse("PLAIN needs exactly two NULs"));
    };
    let login = login(authcid)?;
    if !authzid.is_empty() {
        let authzid = std::str::from_utf8(authzid)
            .map_err(|_| AuthError::MalformedResponse("authorization identity is not UTF-8"))?;
        if authzid.len() > MAX_LOGIN {
            return Err(AuthError::MalformedResponse(
                "authorization identity too long",
            ));
        }
        if !authzid.eq_ignore_ascii_case(&login) {
            return Err(AuthError::ForeignAuthzid);
        }
    }
    Ok(Credentials::new(login, password(passwd)?))
}

fn login_username(decoded: &[u8]) -> Result<Progress, AuthError> {
    let login = login(decoded)?;
    Ok(challenge(State::LoginPassword { login }, PASSWORD_PROMPT))
}

fn login(bytes: &[u8]) -> Result<String, AuthError> {
    let login = std::str::from_utf8(bytes)
        .map_err(|_| AuthError::MalformedResponse("login is not UTF-8"))?;
    if login.is_empty() {
        return Err(AuthError::MalformedResponse("empty login"));
    }
    if login.len() > MAX_LOGIN {
        return Err(AuthError::MalformedResponse("login too long"));
    }
    // Logins end up in logs and SQL parameters; control characters have no business there.
    if login.chars().any(char::is_control) {
        return Err(AuthError::MalformedResponse("control character in login"));
    }
    Ok(login.to_owned())
}

fn password(bytes: &[u8]) -> Result<String, AuthError> {
    let password = std::str::from_utf8(bytes)
        .map_err(|_| AuthError::MalformedResponse("password is not UTF-8"))?;
    if password.is_empty() {
        return Err(AuthError::MalformedResponse("empty password"));
    }
    if password.len() > MAX_PASSWORD {
        return Err(AuthError::MalformedResponse("password too long"));
    }
    if password.contains('\0') {
        return Err(AuthError::MalformedResponse("NUL in password"));
    }
    Ok(password.to_owned())
}

/// The AUTH replies. The session picks among them; wording lives here only.
impl Reply {
    /// `235 2.7.0`: the credentials were accepted.
    pub fn auth_succeeded() -> Self {
        Reply::new(235, "2.7.0", "Authentication successful")
    }

    /// `334 <base64>`: a server challenge; no enhanced status code (RFC 4954 section 4).
    pub fn auth_challenge(base64: &str) -> Self {
        Reply::plain(334, base64)
    }

    /// `501 5.5.2`: the response could not be decoded.
    pub fn auth_malformed() -> Self {
        Reply::new(501, "5.5.2", "Cannot decode the authentication response")
            .because(Refusal::Syntax)
    }

    /// `501 5.0.0`: the client cancelled with `*`.
    pub fn auth_cancelled() -> Self {
        Reply::new(501, "5.0.0", "Authentication cancelled").because(Refusal::AuthFailed)
    }

    /// `504 5.5.4`: a mechanism Tern does not offer.
    pub fn auth_unknown_mechanism() -> Self {
        Reply::new(504, "5.5.4", "Unrecognized authentication mechanism").because(Refusal::Syntax)
    }

    /// `535 5.7.8`: wrong login or password (never says which).
    pub fn auth_failed() -> Self {
        Reply::new(535, "5.7.8", "Authentication credentials invalid").because(Refusal::AuthFailed)
    }

    /// `538 5.7.11`: AUTH before TLS.
    pub fn auth_requires_tls() -> Self {
        Reply::new(
            538,
            "5.7.11",
            "Encryption required for requested authentication mechanism",
        )
        .because(Refusal::TlsRequired)
    }

    /// `530 5.7.0`: MAIL on a submission port before AUTH.
    pub fn auth_required() -> Self {
        Reply::new(530, "5.7.0", "Authentication required").because(Refusal::AuthRequired)
    }

    /// `503 5.5.1`: a second successful AUTH in one session.
    pub fn auth_already_done() -> Self {
        Reply::new(503, "5.5.1", "Already authenticated").because(Refusal::BadSequence)
    }

    /// `503 5.5.1`: AUTH between MAIL and the end of the transaction.
    pub fn auth_in_transaction() -> Self {
        Reply::new(503, "5.5.1", "AUTH not permitted during a mail transaction")
            .because(Refusal::BadSequence)
    }

    /// `454 4.7.0`: the credentials could not be checked now (locked out, database down); the
    /// same words for both, so a lockout does not tell a guesser that the limit was reached.
    pub fn auth_temporary_failure() -> Self {
        Reply::new(
            454,
            "4.7.0",
            "Temporary authentication failure, try again later",
        )
        .because(Refusal::AuthUnavailable)
    }

    /// `553 5.7.1`: the envelope sender is not one the authenticated user may use.
    pub fn sender_not_owned(sender: &str) -> Self {
        Reply::new(
            553,
            "5.7.1",
            format!("<{sender}>: Sender address not owned by the authenticated user"),
        )
        .because(Refusal::SenderNotOwned)
    }
}
