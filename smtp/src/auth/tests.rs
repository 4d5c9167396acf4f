use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;
use crate::testing::XorShift;

fn b64(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

fn wire(reply: &Reply) -> String {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    String::from_utf8(out).expect("replies are ASCII")
}

fn done(progress: Result<Progress, AuthError>) -> Credentials {
    match progress {
        Ok(Progress::Done(credentials)) => credentials,
        other => panic!("expected credentials, got {other:?}"),
    }
}

fn challenged(progress: Result<Progress, AuthError>) -> (SaslExchange, String) {
    match progress {
        Ok(Progress::Challenge { exchange, reply }) => (exchange, wire(&reply)),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn plain_initial_responses() {
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"\0alice@example.com\0secret",
            "alice@example.com",
            "secret",
        ),
        (
            b"alice@example.com\0alice@example.com\0secret",
            "alice@example.com",
            "secret",
        ),
        (
            b"ALICE@example.com\0alice@example.com\0pw",
            "alice@example.com",
            "pw",
        ),
        (b"\0bob\0p\xc3\xa4ss w\xc3\xb6rd", "bob", "päss wörd"),
        (
            b"\0\xc3\xa9l\xc3\xa8ve@exemple.fr\0x",
            "élève@exemple.fr",
            "x",
        ),
    ];
    for (message, login, password) in cases {
        for mechanism in ["PLAIN", "plain", "Plain"] {
            let credentials = done(start(&format!("{mechanism} {}", b64(message))));
            assert_eq!(credentials.login(), *login);
            assert_eq!(credentials.password(), *password);
        }
    }
}

#[test]
fn plain_without_initial_response_gets_an_empty_challenge() {
    let (exchange, reply) = challenged(start("PLAIN"));
    assert_eq!(reply, "334 \r\n");
    assert_eq!(exchange.mechanism(), Mechanism::Plain);
    let credentials = done(exchange.respond(b64(b"\0carol\0hunter2").as_bytes()));
    assert_eq!(credentials.login(), "carol");
    assert_eq!(credentials.password(), "hunter2");
}

#[test]
fn login_asks_for_username_then_password() {
    let (exchange, reply) = challenged(start("login"));
    assert_eq!(reply, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(exchange.mechanism(), Mechanism::Login);
    let (exchange, reply) = challenged(exchange.respond(b64(b"dave@example.org").as_bytes()));
    assert_eq!(reply, "334 UGFzc3dvcmQ6\r\n");
    let credentials = done(exchange.respond(b64(b"correct horse").as_bytes()));
    assert_eq!(credentials.login(), "dave@example.org");
    assert_eq!(credentials.password(), "correct horse");
}

#[test]
fn login_with_the_username_up_front() {
    let (exchange, reply) = challenged(start(&format!("LOGIN {}", b64(b"erin"))));
    assert_eq!(reply, "334 UGFzc3dvcmQ6\r\n");
    let credentials = done(exchange.respond(b64(b"pw").as_bytes()));
    assert_eq!(credentials.login(), "erin");
}

#[test]
fn errors_and_their_replies() {
    let long_login = vec![b'a'; MAX_LOGIN + 1];
    let long_password = vec![b'p'; MAX_PASSWORD + 1];
    let mut too_long_login = b"\0".to_vec();
    too_long_login.extend_from_slice(&long_login);
    too_long_login.extend_from_slice(b"\0pw");
    let mut too_long_password = b"\0alice\0".to_vec();
    too_long_password.extend_from_slice(&long_password);
    let cases: Vec<(String, AuthError, &str)> = vec![
        ("".into(), AuthError::Syntax, "501 5.5.4"),
        (" PLAIN".into(), AuthError::Syntax, "501 5.5.4"),
        ("PLAIN ".into(), AuthError::Syntax, "501 5.5.4"),
        ("PLAIN a b".into(), AuthError::Syntax, "501 5.5.4"),
        ("CRAM-MD5".into(), AuthError::UnknownMechanism, "504 5.5.4"),
        (
            "XOAUTH2 abc=".into(),
            AuthError::UnknownMechanism,
            "504 5.5.4",
        ),
        ("PLAINX".into(), AuthError::UnknownMechanism, "504 5.5.4"),
        ("PLAIN *".into(), AuthError::MalformedBase64, "501 5.5.2"),
        (
            "PLAIN AGFsaWNlAHB3dw".into(),
            AuthError::MalformedBase64,
            "501 5.5.2",
        ),
        (
            "PLAIN AGFsaWNlAHB3Z".into(),
            AuthError::MalformedBase64,
            "501 5.5.2",
        ),
        ("PLAIN AGFs aWNl".into(), AuthError::Syntax, "501 5.5.4"),
        (
            "PLAIN AGFsaWNl\tAHB3".into(),
            AuthError::MalformedBase64,
            "501 5.5.2",
        ),
        (
            "PLAIN =".into(),
            AuthError::MalformedResponse("PLAIN needs exactly two NULs"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"alice\0pw")),
            AuthError::MalformedResponse("PLAIN needs exactly two NULs"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0alice\0pw\0")),
            AuthError::MalformedResponse("PLAIN needs exactly two NULs"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0\0pw")),
            AuthError::MalformedResponse("empty login"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0alice\0")),
            AuthError::MalformedResponse("empty password"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0al\xffce\0pw")),
            AuthError::MalformedResponse("login is not UTF-8"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0alice\0p\xffw")),
            AuthError::MalformedResponse("password is not UTF-8"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"\0ali\r\nce\0pw")),
            AuthError::MalformedResponse("control character in login"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(&too_long_login)),
            AuthError::MalformedResponse("login too long"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(&too_long_password)),
            AuthError::MalformedResponse("password too long"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", "QUFB".repeat(1000)),
            AuthError::MalformedResponse("response too long"),
            "501 5.5.2",
        ),
        (
            format!("PLAIN {}", b64(b"mallory\0alice\0pw")),
            AuthError::ForeignAuthzid,
            "535 5.7.8",
        ),
        (
            "LOGIN =".into(),
            AuthError::MalformedResponse("empty login"),
            "501 5.5.2",
        ),
    ];
    for (argument, error, reply) in cases {
        let got = start(&argument);
        assert!(
            matches!(&got, Err(e) if *e == error),
            "AUTH {argument:?}: expected {error:?}, got {got:?}"
        );
        assert!(wire(&error.reply()).starts_with(reply), "{error:?}");
    }
}

#[test]
fn responses_to_challenges() {
    let cases: &[(&str, &[u8], AuthError)] = &[
        ("PLAIN", b"*", AuthError::Cancelled),
        ("LOGIN", b"*", AuthError::Cancelled),
        (
            "PLAIN",
            b"",
            AuthError::MalformedResponse("PLAIN needs exactly two NULs"),
        ),
        ("LOGIN", b"", AuthError::MalformedResponse("empty login")),
        ("PLAIN", b"not base64!", AuthError::MalformedBase64),
        ("LOGIN", b"YWxpY2U", AuthError::MalformedBase64),
        ("LOGIN", b"YWxp Y2U=", AuthError::MalformedBase64),
        ("LOGIN", b"\xff\xfe", AuthError::MalformedBase64),
        ("PLAIN", b"** ", AuthError::MalformedBase64),
    ];
    for (mechanism, line, error) in cases {
        let (exchange, _) = challenged(start(mechanism));
        let got = exchange.respond(line);
        assert!(
            matches!(&got, Err(e) if e == error),
            "{mechanism} {line:?}: expected {error:?}, got {got:?}"
        );
    }
    let (exchange, _) = challenged(start("LOGIN"));
    let (exchange, _) = challenged(exchange.respond(b64(b"alice").as_bytes()));
    assert_eq!(exchange.respond(b"*").err(), Some(AuthError::Cancelled));
    assert_eq!(
        wire(&AuthError::Cancelled.reply()),
        "501 5.0.0 Authentication cancelled\r\n"
    );
}

#[test]
fn the_replies_the_session_sends() {
    let cases = [
        (Reply::auth_succeeded(), "235 2.7.0 "),
        (
            Reply::auth_challenge("VXNlcm5hbWU6"),
            "334 VXNlcm5hbWU6\r\n",
        ),
        (Reply::auth_malformed(), "501 5.5.2 "),
        (Reply::auth_cancelled(), "501 5.0.0 "),
        (Reply::auth_unknown_mechanism(), "504 5.5.4 "),
        (Reply::auth_failed(), "535 5.7.8 "),
        (Reply::auth_requires_tls(), "538 5.7.11 "),
        (Reply::auth_required(), "530 5.7.0 "),
        (Reply::auth_already_done(), "503 5.5.1 "),
        (Reply::auth_in_transaction(), "503 5.5.1 "),
        (Reply::auth_temporary_failure(), "454 4.7.0 "),
        (
            Reply::sender_not_owned("eve@example.net"),
            "553 5.7.1 <eve@example.net>",
        ),
    ];
    for (reply, prefix) in cases {
        let text = wire(&reply);
        assert!(
            text.starts_with(prefix),
            "{text:?} should start with {prefix:?}"
        );
        assert!(text.ends_with("\r\n") && text.matches("\r\n").count() == 1);
    }
    // A sender is client input: it cannot forge a second reply line.
    assert_eq!(
        wire(&Reply::sender_not_owned("a\r\n250 ok"))
            .matches("\r\n")
            .count(),
        1
    );
}

#[test]
fn debug_never_shows_the_password() {
    let credentials = done(start(&format!("PLAIN {}", b64(b"\0alice\0s3cr3t-pa55"))));
    let debug = format!("{credentials:?}");
    assert!(debug.contains("alice"), "{debug}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    let (exchange, _) = challenged(start("LOGIN"));
    let (exchange, _) = challenged(exchange.respond(b64(b"alice").as_bytes()));
    assert!(!format!("{exchange:?}").contains("s3cr3t"));
}

#[test]
fn mechanism_names_round_trip() {
    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        assert_eq!(Mechanism::parse(mechanism.name()), Ok(mechanism));
        assert_eq!(
            Mechanism::parse(&mechanism.name().to_lowercase()),
            Ok(mechanism)
        );
        assert!(EHLO_KEYWORD.split(' ').any(|w| w == mechanism.name()));
    }
}

/// Random arguments and responses, some base64 of random bytes (so decoding succeeds and the
/// PLAIN/LOGIN parsers see arbitrary input): never a panic, always a reply with a sane code.
#[test]
fn random_input_never_panics() {
    let mut rng = XorShift::new(0x5a51_a17e);
    let alphabet = b"PLAINLOGINplain =*+/AZaz09\0\r\n\xff";
    for _ in 0..20_000 {
        let len = rng.below(64);
        let raw: Vec<u8> = (0..len).map(|_| (rng.next() & 0xff) as u8).collect();
        let noise: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.below(alphabet.len())])
            .collect();
        let argument = match rng.below(4) {
            0 => String::from_utf8_lossy(&noise).into_owned(),
            1 => format!("PLAIN {}", b64(&raw)),
            2 => format!("LOGIN {}", b64(&raw)),
            _ => ["PLAIN", "LOGIN"][rng.below(2)].to_owned(),
        };
        let mut progress = start(&argument);
        for _ in 0..3 {
            match progress {
                Ok(Progress::Challenge { exchange, reply }) => {
                    assert_eq!(reply.code, 334);
                    let line = if rng.below(2) == 0 {
                        b64(&raw).into_bytes()
                    } else {
                        noise.clone()
                    };
                    progress = exchange.respond(&line);
                }
                Ok(Progress::Done(credentials)) => {
                    assert!(!credentials.login().is_empty() && !credentials.password().is_empty());
                    break;
                }
                Err(error) => {
                    assert!(matches!(error.reply().code, 501 | 504 | 535));
                    break;
                }
            }
        }
    }
}
