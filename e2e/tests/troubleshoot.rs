//! `POST /v1/troubleshoot/policy` across processes: `tern api` asks a running `tern ingress` over
//! NATS what its checks would decide, and the answer shows every step with what DNS said
//! (a DNSBL listing, an SPF fail, a relay refusal, a greylist deferral) while nothing is
//! recorded; without an ingress pod the API answers 503.

use std::net::Ipv4Addr;

use tern_e2e::cluster::{Api, Nats};
use tern_e2e::{Tern, free_port};
use tern_testkit::TestDatabase;
use tern_testkit::dns::TestDns;

#[tokio::test]
async fn an_ingress_pod_says_what_every_check_would_decide() {
    let db = TestDatabase::create().await;
    tern_e2e::migrate(&db.url).await;
    let nats = Nats::start();
    let dns = TestDns::start().await;
    dns.add_txt("fail.example", "v=spf1 ip4:198.51.100.0/24 -all");
    // 192.0.2.1 is listed.
    dns.add_a("1.2.0.192.bl.test", Ipv4Addr::new(127, 0, 0, 2));
    let nameserver = dns.addr().to_string();
    let ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            nats.env()[0].clone(),
            nats.env()[1].clone(),
            (
                "TERN_INGRESS_SMTP_LISTEN",
                format!("127.0.0.1:{}", free_port()),
            ),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_LOCAL_DOMAINS", "tern.test".to_owned()),
            ("TERN_INGRESS_NAMESERVER", nameserver.clone()),
            ("TERN_INGRESS_SPF", "reject".to_owned()),
            ("TERN_INGRESS_DNSBL_SITES", "bl.test*2".to_owned()),
            ("TERN_INGRESS_DNSBL_NAMESERVER", nameserver.clone()),
            ("TERN_INGRESS_GREYLIST", "true".to_owned()),
        ],
    )
    .await;
    let api = Api::with_nats(&db.url, &nats).await;

    let question = r#"{"client": "192.0.2.1", "helo": "mail.fail.example",
        "sender": "mallory@fail.example", "recipients": ["x@tern.test", "y@elsewhere.test"]}"#;
    let (status, body) = api
        .call("POST", "/v1/troubleshoot/policy", Some(question))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["outcome"], "reject", "{answer:#}");
    let step = |check: &str| {
        answer["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|step| step["check"] == check)
            .unwrap_or_else(|| panic!("no {check} step in {answer:#}"))
            .clone()
    };
    let dnsbl = step("dnsbl");
    assert_eq!(dnsbl["result"], "listed");
    assert!(
        dnsbl["detail"]
            .as_str()
            .expect("detail")
            .contains("1.2.0.192.bl.test listed (127.0.0.2)"),
        "{dnsbl}"
    );
    assert!(
        dnsbl["reply"]
            .as_str()
            .expect("reply")
            .starts_with("554 5.7.1"),
        "{dnsbl}"
    );
    let spf = step("spf");
    assert_eq!(spf["result"], "fail", "{spf}");
    assert!(
        spf["reply"]
            .as_str()
            .expect("reply")
            .starts_with("550 5.7.23"),
        "{spf}"
    );
    let relays: Vec<_> = answer["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|step| step["check"] == "relay")
        .map(|step| step["result"].as_str().expect("result").to_owned())
        .collect();
    assert_eq!(relays, ["local", "denied"]);
    let grey = step("greylist");
    assert_eq!(grey["result"], "deferred", "{grey}");

    // A dry run: the greylist recorded nothing.
    let triplets: i64 = sqlx::query_scalar("SELECT count(*) FROM greylist")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(triplets, 0);

    // The same client on the submission listener: no reputation check runs there by default,
    // and without AUTH its MAIL is refused.
    let on_submission = question.replace('{', r#"{"listener": "submission", "#);
    let (status, body) = api
        .call("POST", "/v1/troubleshoot/policy", Some(&on_submission))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
    let checks: Vec<&str> = answer["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["check"].as_str().expect("check"))
        .collect();
    assert!(
        !checks.contains(&"dnsbl") && !checks.contains(&"spf") && !checks.contains(&"greylist"),
        "{answer:#}"
    );
    assert!(checks.contains(&"auth"), "{answer:#}");
    assert_eq!(answer["outcome"], "reject", "{answer:#}");

    // A sender that does not parse names the field; no pod, no answer.
    let (status, body) = api
        .call(
            "POST",
            "/v1/troubleshoot/policy",
            Some(r#"{"client": "192.0.2.1", "helo": "h", "sender": "not an address", "recipients": []}"#),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"field\":\"sender\""), "{body}");
    ingress.signal("KILL").await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, body) = api
        .call("POST", "/v1/troubleshoot/policy", Some(question))
        .await;
    assert_eq!(status, 503, "{body}");
}

type EventLines = tokio::io::Lines<tokio::io::BufReader<tokio::net::TcpStream>>;

/// Reads server-sent events from `lines` until `until` holds for one, or `within` passes; the
/// data of every `line` event, parsed.
async fn read_events(
    lines: &mut EventLines,
    within: std::time::Duration,
    mut until: impl FnMut(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(Some(line))) = tokio::time::timeout_at(deadline, lines.next_line()).await {
        if let Some(data) = line.strip_prefix("data: ") {
            let event: serde_json::Value = serde_json::from_str(data).expect("json data");
            let done = until(&event);
            events.push(event);
            if done {
                break;
            }
        }
    }
    events
}

#[tokio::test]
async fn sessions_from_a_watched_network_stream_live_with_content_withheld() {
    use std::time::Duration;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    let db = TestDatabase::create().await;
    tern_e2e::migrate(&db.url).await;
    let nats = Nats::start();
    let smtp = free_port();
    let _ingress = Tern::start(
        "ingress",
        &db.url,
        &[
            nats.env()[0].clone(),
            nats.env()[1].clone(),
            ("TERN_INGRESS_SMTP_LISTEN", format!("127.0.0.1:{smtp}")),
            ("TERN_INGRESS_SUBMISSION_LISTEN", String::new()),
            ("TERN_INGRESS_LOCAL_DOMAINS", "tern.test".to_owned()),
        ],
    )
    .await;
    let api = Api::with_nats(&db.url, &nats).await;

    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", api.port))
        .await
        .expect("connect to the API");
    let request = format!(
        "GET /v1/troubleshoot/smtp?client=127.0.0.1/32 HTTP/1.0\r\nAuthorization: Bearer {}\r\n\r\n",
        tern_e2e::cluster::TOKEN
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut lines = tokio::io::BufReader::new(stream).lines();

    // The watch travels to the pod over NATS with no acknowledgement, so a probe session from
    // the watched network goes first, again and again, until one is streamed.
    let mut watching = false;
    for _ in 0..30 {
        tern_e2e::swaks(smtp, &["--quit-after", "EHLO"]).await;
        let probe = read_events(&mut lines, Duration::from_secs(1), |event| {
            event["text"] == "session closed"
        })
        .await;
        if probe.iter().any(|event| event["text"] == "session closed") {
            watching = true;
            break;
        }
    }
    assert!(watching, "no probe session was streamed within 30 tries");

    // A session from another loopback address is not in the watched network.
    let other = tern_e2e::swaks(
        smtp,
        &[
            "--local-interface",
            "127.0.0.2",
            "--from",
            "other@example.org",
            "--to",
            "x@tern.test",
        ],
    );
    let watched = tern_e2e::swaks(
        smtp,
        &[
            "--from",
            "a@example.org",
            "--to",
            "x@tern.test",
            "--body",
            "the secret body",
        ],
    );
    let (_, _) = tokio::join!(other, watched);
    // A late probe's lines may come first; the read ends when the watched session closes.
    let mut watched_session = None;
    let events = read_events(&mut lines, Duration::from_secs(15), |event| {
        if event["text"] == "MAIL FROM:<a@example.org>" {
            watched_session = Some(event["session"].clone());
        }
        event["text"] == "session closed" && Some(&event["session"]) == watched_session.as_ref()
    })
    .await;
    let texts: Vec<String> = events
        .iter()
        .map(|event| {
            format!(
                "{} {}",
                event["direction"].as_str().unwrap_or(""),
                event["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    let all = texts.join("\n");
    assert!(all.contains("client MAIL FROM:<a@example.org>"), "{all}");
    assert!(all.contains("server 354 "), "{all}");
    assert!(all.contains("octets withheld"), "{all}");
    assert!(!all.contains("secret"), "{all}");
    assert!(all.contains("note session closed"), "{all}");
    assert!(
        events.iter().all(|event| event["client"] == "127.0.0.1"),
        "{events:?}"
    );
}
