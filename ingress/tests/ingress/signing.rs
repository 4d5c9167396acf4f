//! DKIM signing with the control plane's keys: mail submitted by an authenticated user (swaks on
//! 587) or relayed for a trusted network is signed by every key of its author's domain set to
//! sign, and an independent verifier (dkimpy) accepts each signature, over bodies shaped to
//! catch relaxed canonicalisation mistakes; a stranger's mail, or a domain's key once switched
//! off, signs nothing.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use tern_common::control::{DkimAlgorithm, DkimKeySummary, NewDkimKey, Owner, PgControlStore};
use tern_ingress::ListenerKind;

use crate::auth::{LOGIN, PASSWORD, add_alice};
use crate::dkim::dkimpy;
use crate::harness::{TestIngress, queue_id};
use crate::tls::{start_tls_ingress, stored_body, swaks_verified};

/// Every signature of `message`, verified by dkimpy against `records` (name → TXT): one line
/// per signature, `d=<domain> s=<selector> <pass|fail>`, in header order.
fn dkimpy_verify(message: &[u8], records: &HashMap<String, String>) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("tern-signing-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (eml, zone) = (dir.join("message.eml"), dir.join("records.tsv"));
    std::fs::write(&eml, message).expect("write the message");
    let lines: String = records
        .iter()
        .map(|(name, txt)| format!("{name}\t{txt}\n"))
        .collect();
    std::fs::write(&zone, lines).expect("write the records");
    let code = "import dkim,sys,re\n\
        m=open(sys.argv[1],'rb').read()\n\
        records=dict(line.rstrip('\\n').split('\\t',1) for line in open(sys.argv[2]))\n\
        def dns(name, timeout=5):\n\
        \x20   return records.get(name.decode().rstrip('.'), '').encode() or None\n\
        d=dkim.DKIM(m)\n\
        sigs=[v for (k,v) in d.headers if k.lower()==b'dkim-signature']\n\
        for i,v in enumerate(sigs):\n\
        \x20   tags=dict(re.findall(rb'(\\w+)=([^;]*)', re.sub(rb'\\s',b'',v)))\n\
        \x20   try:\n\
        \x20       ok=dkim.DKIM(m).verify(idx=i, dnsfunc=dns)\n\
        \x20   except dkim.ValidationError:\n\
        \x20       ok=False\n\
        \x20   print('d=%s s=%s %s' % (tags[b'd'].decode(), tags[b's'].decode(), 'pass' if ok else 'fail'))\n";
    let output = Command::new(dkimpy())
        .args(["-c", code])
        .arg(&eml)
        .arg(&zone)
        .output()
        .expect("run dkimpy");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn make_key(
    ingress: &TestIngress,
    domain: &str,
    selector: &str,
    algorithm: DkimAlgorithm,
) -> DkimKeySummary {
    PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()))
        .generate_dkim_key(
            Owner::Api,
            &NewDkimKey {
                domain: domain.into(),
                selector: selector.into(),
                algorithm,
                signing: true,
            },
        )
        .await
        .expect("make the key")
}

fn records(keys: &[&DkimKeySummary]) -> HashMap<String, String> {
    keys.iter()
        .map(|key| (key.dns_name(), key.dns_txt()))
        .collect()
}

async fn body_of(ingress: &TestIngress, id: &str) -> Vec<u8> {
    stored_body(ingress, id).await.into_bytes()
}

#[tokio::test]
async fn a_submission_is_signed_by_every_key_of_its_domain_and_verifies_independently() {
    let (ingress, mount, _) = start_tls_ingress(&[]).await;
    add_alice(&ingress).await;
    let rsa = make_key(&ingress, "example.org", "rsa2026", DkimAlgorithm::RsaSha256).await;
    let ed = make_key(
        &ingress,
        "example.org",
        "ed2026",
        DkimAlgorithm::Ed25519Sha256,
    )
    .await;
    let other = make_key(&ingress, "other.example", "s", DkimAlgorithm::RsaSha256).await;
    let ca = mount.cert().display().to_string();
    let submit = || async {
        let transcript = swaks_verified(
            ingress.addr_of(ListenerKind::Submission),
            "--tls",
            &ca,
            &[
                "--auth",
                "PLAIN",
                "--auth-user",
                LOGIN,
                "--auth-password",
                PASSWORD,
                "--from",
                LOGIN,
                "--to",
                "bob@elsewhere.example",
                "--header",
                "Subject: signed on the way out",
                "--body",
                "Hello Bob,\r\n\r\nthree lines, one folded  \r\n  and the last blank\r\n \r\n",
            ],
        )
        .await;
        let id = transcript
            .split("Ok: queued as ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("queued")
            .to_owned();
        body_of(&ingress, &id).await
    };
    // The snapshot holding the keys reaches the ingress by notice: the first messages may miss it.
    let mut stored = Vec::new();
    for _ in 0..50 {
        stored = submit().await;
        if String::from_utf8_lossy(&stored).contains("DKIM-Signature") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let verdicts = dkimpy_verify(&stored, &records(&[&rsa, &ed, &other]));
    let mut verdicts = verdicts;
    verdicts.sort();
    assert_eq!(
        verdicts,
        [
            "d=example.org s=ed2026 pass",
            "d=example.org s=rsa2026 pass"
        ],
        "{}",
        String::from_utf8_lossy(&stored)
    );
    // Date and Message-ID, which Tern added to the submission, are signed too.
    let text = String::from_utf8_lossy(&stored);
    let signature = text.split("DKIM-Signature:").nth(1).expect("a signature");
    let h = signature
        .split("h=")
        .nth(1)
        .expect("h=")
        .split(';')
        .next()
        .expect("tag");
    let h = h.replace([' ', '\t', '\r', '\n'], "").to_ascii_lowercase();
    for field in ["from", "subject", "date", "message-id", "to"] {
        assert!(h.split(':').any(|f| f == field), "{field} not in h={h}");
    }
}

/// Sends `message` from `from` over a plain session and returns what was stored.
async fn relay(ingress: &TestIngress, from: &str, message: &[u8]) -> Vec<u8> {
    let (mut client, _) = ingress.client().await;
    assert_eq!(client.command("EHLO client.example").await.code, 250);
    assert_eq!(
        client.command(&format!("MAIL FROM:<{from}>")).await.code,
        250
    );
    assert_eq!(
        client.command("RCPT TO:<bob@elsewhere.example>").await.code,
        250
    );
    assert_eq!(client.command("DATA").await.code, 354);
    let mut data = message.to_vec();
    data.extend_from_slice(b".\r\n");
    client.send(&data).await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 250, "{reply:?}");
    body_of(ingress, &queue_id(&reply)).await
}

fn signatures(stored: &[u8]) -> usize {
    String::from_utf8_lossy(stored)
        .matches("DKIM-Signature:")
        .count()
}

/// Bodies that relaxed canonicalisation (RFC 6376 3.4.4) must treat with care: trailing
/// whitespace on lines, whitespace-only lines at the end, empty lines at the end, no body, a
/// body without a final line break's worth of content, 8-bit text, and folded header fields.
const SHAPES: &[&[u8]] = &[
    b"From: <a@example.org>\r\nSubject: plain\r\n\r\nHello\r\n",
    b"From: <a@example.org>\r\nSubject: trailing blanks\r\n\r\nHello \t \r\nworld\t\r\n",
    b"From: <a@example.org>\r\nSubject: ends in whitespace-only lines\r\n\r\nHello\r\n \r\n\t\r\n  \r\n",
    b"From: <a@example.org>\r\nSubject: only whitespace\r\n\r\n \r\n\t \r\n",
    b"From: <a@example.org>\r\nSubject: ends in empty lines\r\n\r\nHello\r\n\r\n\r\n",
    b"From: <a@example.org>\r\nSubject: no body\r\n\r\n",
    b"From: <a@example.org>\r\nSubject: inner runs\r\n\r\na  \t b\r\n\r\n c \r\n",
    b"From: Alice\r\n <a@example.org>\r\nSubject: folded\r\n  across lines\r\nTo: b@elsewhere.example,\r\n\tc@elsewhere.example\r\n\r\ncaf\xc3\xa9 8-bit\r\n",
];

#[tokio::test]
async fn mail_relayed_for_a_trusted_network_is_signed_in_every_body_shape() {
    let ingress = TestIngress::start_with(&["--trusted-networks", "127.0.0.0/8"]).await;
    let rsa = make_key(&ingress, "example.org", "r", DkimAlgorithm::RsaSha256).await;
    let ed = make_key(&ingress, "example.org", "e", DkimAlgorithm::Ed25519Sha256).await;
    let zone = records(&[&rsa, &ed]);
    // The first message after the keys were written may precede the snapshot that holds them.
    for _ in 0..50 {
        if signatures(&relay(&ingress, "a@example.org", SHAPES[0]).await) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for shape in SHAPES {
        let stored = relay(&ingress, "a@example.org", shape).await;
        let mut verdicts = dkimpy_verify(&stored, &zone);
        verdicts.sort();
        assert_eq!(
            verdicts,
            ["d=example.org s=e pass", "d=example.org s=r pass"],
            "{}",
            String::from_utf8_lossy(&stored)
        );
    }

    // No key for the author's domain: the envelope sender's domain signs when it has one.
    let stored = relay(
        &ingress,
        "bounces@example.org",
        b"From: <news@unkeyed.example>\r\nSubject: s\r\n\r\nbody\r\n",
    )
    .await;
    assert_eq!(dkimpy_verify(&stored, &zone).len(), 2);
    // Neither has a key: unsigned.
    let stored = relay(
        &ingress,
        "x@unkeyed.example",
        b"From: <news@unkeyed.example>\r\nSubject: s\r\n\r\nbody\r\n",
    )
    .await;
    assert_eq!(signatures(&stored), 0);

    // A key switched off stops signing once the ingress has the change.
    PgControlStore::new(ingress.db.pool.clone(), Some(ingress.bus.clone()))
        .set_dkim_signing(Owner::Api, "example.org", "r", false)
        .await
        .expect("switch off");
    let mut last = Vec::new();
    for _ in 0..50 {
        last = relay(&ingress, "a@example.org", SHAPES[0]).await;
        if signatures(&last) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dkimpy_verify(&last, &zone), ["d=example.org s=e pass"]);
}

#[tokio::test]
async fn a_strangers_mail_is_not_signed() {
    let ingress = TestIngress::start().await;
    make_key(&ingress, "example.org", "r", DkimAlgorithm::Ed25519Sha256).await;
    // Give the snapshot time to arrive, so that "unsigned" is not just "too early".
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut client, _) = ingress.client().await;
    client.command("EHLO stranger.example").await;
    client.command("MAIL FROM:<a@example.org>").await;
    assert_eq!(client.command("RCPT TO:<x@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    client
        .send(b"From: <a@example.org>\r\nSubject: s\r\n\r\nbody\r\n.\r\n")
        .await;
    let reply = client.reply().await;
    assert_eq!(reply.code, 250, "{reply:?}");
    assert_eq!(signatures(&body_of(&ingress, &queue_id(&reply)).await), 0);
}
