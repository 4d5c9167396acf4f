use super::*;

fn reply(code: u16, status: Option<&str>, text: &str) -> Result<RemoteReply, DeliveryError> {
    Ok(RemoteReply::new(code, status, text))
}

#[test]
fn every_reply_class_maps_to_one_outcome_and_a_status_of_the_same_class() {
    use Outcome::*;
    let table: Vec<(u16, Option<&str>, Outcome, &str)> = vec![
        (250, Some("2.0.0"), Delivered, "2.0.0"),
        (250, Some("2.6.0"), Delivered, "2.6.0"),
        (250, None, Delivered, "2.0.0"),
        (251, None, Delivered, "2.0.0"),
        (299, Some("2.1.5"), Delivered, "2.1.5"),
        (421, Some("4.3.2"), Deferred, "4.3.2"),
        (450, Some("4.2.1"), Deferred, "4.2.1"),
        (451, None, Deferred, "4.0.0"),
        (452, Some("4.5.3"), Deferred, "4.5.3"),
        (499, None, Deferred, "4.0.0"),
        (550, Some("5.1.1"), Bounced, "5.1.1"),
        (550, None, Bounced, "5.0.0"),
        (552, Some("5.3.4"), Bounced, "5.3.4"),
        (554, Some("5.7.1"), Bounced, "5.7.1"),
        (550, Some("5.1.10"), Bounced, "5.1.10"),
        (550, Some("5.100.999"), Bounced, "5.100.999"),
        (599, None, Bounced, "5.0.0"),
    ];
    for (code, status, outcome, expected) in table {
        let verdict = classify(&reply(code, status, "text"));
        assert_eq!(verdict.outcome, outcome, "{code} {status:?}");
        assert_eq!(verdict.status, expected, "{code} {status:?}");
    }
}

#[test]
fn a_status_of_the_wrong_class_is_corrected_to_the_class_of_the_reply_code() {
    let table: Vec<(u16, &str, Outcome, &str)> = vec![
        (550, "4.1.1", Outcome::Bounced, "5.1.1"),
        (550, "2.1.1", Outcome::Bounced, "5.1.1"),
        (450, "5.7.1", Outcome::Deferred, "4.7.1"),
        (250, "5.0.0", Outcome::Delivered, "2.0.0"),
        (250, "4.2.2", Outcome::Delivered, "2.2.2"),
    ];
    for (code, status, outcome, expected) in table {
        let verdict = classify(&reply(code, Some(status), "text"));
        assert_eq!(
            (verdict.outcome, verdict.status.as_str()),
            (outcome, expected),
            "{code} {status}"
        );
    }
}

#[test]
fn a_malformed_status_is_replaced_by_the_bare_class_of_the_code() {
    for status in [
        "", "5", "5.1", "5.1.1.1", "3.1.1", "6.1.1", "x.1.1", "5.a.1", "5.1.", "5..1", "5.1000.1",
        "5.1.1000", "05.1.1", " 5.1.1", "5.1.1 ", "5.-1.1", "５.1.1",
    ] {
        let verdict = classify(&reply(550, Some(status), "text"));
        assert_eq!(verdict.outcome, Outcome::Bounced, "{status:?}");
        assert_eq!(verdict.status, "5.0.0", "{status:?}");
    }
}

#[test]
fn a_code_outside_2xx_4xx_5xx_is_a_broken_server_and_deferred_with_4_5_0() {
    for (code, status) in [
        (0, None),
        (199, None),
        (300, None),
        (354, None),
        (354, Some("5.1.1")),
        (600, Some("5.0.0")),
        (999, None),
    ] {
        let verdict = classify(&reply(code, status, "odd"));
        assert_eq!(verdict.outcome, Outcome::Deferred, "{code}");
        assert_eq!(verdict.status, "4.5.0", "{code}");
        assert!(verdict.remote.is_some(), "{code}");
    }
}

#[test]
fn a_reply_is_kept_whole_and_its_text_is_the_wire_form() {
    let verdict = classify(&reply(550, Some("5.1.1"), "no such user"));
    assert_eq!(verdict.text, "550 5.1.1 no such user");
    assert_eq!(
        verdict.remote,
        Some(RemoteReply::new(550, Some("5.1.1"), "no such user"))
    );

    let verdict = classify(&reply(451, None, "try later"));
    assert_eq!(verdict.text, "451 try later");
}

#[test]
fn a_verdict_displays_as_a_typed_diagnostic_telling_remote_words_from_ours() {
    let table: Vec<(Result<RemoteReply, DeliveryError>, &str)> = vec![
        (
            reply(550, Some("5.1.1"), "no such user"),
            "smtp; 550 5.1.1 no such user",
        ),
        (reply(421, None, ""), "smtp; 421"),
        (reply(354, None, "go on"), "smtp; 354 go on"),
        (
            Err(DeliveryError::NoSuchDomain("example.invalid".into())),
            "x-tern; no such domain example.invalid",
        ),
        (
            Err(DeliveryError::Timeout {
                host: "mx.example.com".into(),
                stage: "DATA end",
            }),
            "x-tern; timed out waiting for the DATA end reply from mx.example.com",
        ),
    ];
    for (result, expected) in table {
        assert_eq!(classify(&result).to_string(), expected);
    }
}

#[test]
fn every_delivery_error_has_its_outcome_and_status_and_no_remote_reply() {
    use Outcome::*;
    let host = || "mx.example.com".to_owned();
    let reason = || "reason".to_owned();
    let table: Vec<(DeliveryError, Outcome, &str)> = vec![
        (
            DeliveryError::NoSuchDomain("example.invalid".into()),
            Bounced,
            "5.1.2",
        ),
        (
            DeliveryError::NullMx("example.com".into()),
            Bounced,
            "5.1.10",
        ),
        (
            DeliveryError::NoAddress("example.com".into()),
            Bounced,
            "5.4.4",
        ),
        (
            DeliveryError::DnsTemporary {
                domain: "example.com".into(),
                reason: reason(),
            },
            Deferred,
            "4.4.3",
        ),
        (
            DeliveryError::Connect {
                host: host(),
                reason: reason(),
            },
            Deferred,
            "4.4.1",
        ),
        (
            DeliveryError::Timeout {
                host: host(),
                stage: "greeting",
            },
            Deferred,
            "4.4.2",
        ),
        (
            DeliveryError::ConnectionLost {
                host: host(),
                reason: reason(),
            },
            Deferred,
            "4.4.2",
        ),
        (
            DeliveryError::Tls {
                host: host(),
                reason: reason(),
            },
            Deferred,
            "4.7.5",
        ),
        (
            DeliveryError::Protocol {
                host: host(),
                reason: reason(),
            },
            Deferred,
            "4.5.0",
        ),
    ];
    for (error, outcome, status) in table {
        let verdict = classify(&Err(error.clone()));
        assert_eq!(verdict.outcome, outcome, "{error:?}");
        assert_eq!(verdict.status, status, "{error:?}");
        assert_eq!(verdict.remote, None, "{error:?}");
        assert_eq!(verdict.text, error.to_string());
    }
}

#[test]
fn the_status_class_always_agrees_with_the_outcome() {
    let class = |outcome| match outcome {
        Outcome::Delivered => '2',
        Outcome::Deferred => '4',
        Outcome::Bounced => '5',
    };
    for code in 0..=1000u16 {
        for status in [
            None,
            Some("2.1.1"),
            Some("4.4.4"),
            Some("5.7.1"),
            Some("junk"),
        ] {
            let verdict = classify(&reply(code, status, ""));
            assert!(
                verdict.status.starts_with(class(verdict.outcome)),
                "{code} {status:?} -> {verdict:?}"
            );
        }
    }
}
