//! DKIM verification at the end of data, on messages signed by an independent signer (dkimpy,
//! from PyPI, installed by scripts/dkimpy.sh) with a key published by an in-process DNS server:
//! a good signature, a body changed after signing, and an unsigned message, each recorded in
//! the stored message's `Authentication-Results:`.

use std::process::Command;

use tern_testkit::dns::TestDns;

use crate::harness::TestIngress;

/// The python of dkimpy's virtualenv (installed on first use).
pub(crate) fn dkimpy() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/dkimpy.sh");
    let output = Command::new("bash")
        .args([script, "python"])
        .output()
        .expect("run scripts/dkimpy.sh");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A fresh RSA key: the private key's PEM path and the public key for the DNS record.
fn rsa_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let private = dir.join("dkim.pem");
    let status = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048")
        .output()
        .expect("openssl genrsa");
    assert!(status.status.success());
    let public = Command::new("openssl")
        .args(["rsa", "-pubout", "-outform", "DER", "-in"])
        .arg(&private)
        .output()
        .expect("openssl rsa -pubout");
    assert!(public.status.success());
    use base64::Engine as _;
    let p = base64::engine::general_purpose::STANDARD.encode(public.stdout);
    (private, p)
}

/// `message` signed by dkimpy for `d=signed.example; s=sel` (dkimpy's default canonicalisation,
/// relaxed/simple).
fn sign(python: &str, key: &std::path::Path, message: &[u8]) -> Vec<u8> {
    sign_with(python, key, message, "relaxed", "simple")
}

/// `message` signed by dkimpy with the header and body canonicalisation named.
fn sign_with(
    python: &str,
    key: &std::path::Path,
    message: &[u8],
    header: &str,
    body: &str,
) -> Vec<u8> {
    let code = "import dkim,sys\n\
        m=open(sys.argv[1],'rb').read(); k=open(sys.argv[2],'rb').read()\n\
        c=(sys.argv[3].encode(),sys.argv[4].encode())\n\
        s=dkim.sign(m,b'sel',b'signed.example',k,include_headers=[b'from',b'subject',b'date'],canonicalize=c)\n\
        sys.stdout.buffer.write(s+m)\n";
    run_dkimpy(python, code, key, message, &[header, body])
}

/// Runs `code` with dkimpy's python on `message` (argv 1, a file beside `key`), `key` (argv 2)
/// and `args`; what it prints, the message it made.
fn run_dkimpy(
    python: &str,
    code: &str,
    key: &std::path::Path,
    message: &[u8],
    args: &[&str],
) -> Vec<u8> {
    let input = key.parent().expect("key dir").join("message.eml");
    std::fs::write(&input, message).expect("write the message");
    let output = Command::new(python)
        .args(["-c", code])
        .arg(&input)
        .arg(key)
        .args(args)
        .output()
        .expect("run dkimpy");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

async fn stored_header(ingress: &TestIngress, message: &[u8]) -> String {
    let code = send(ingress, "alice@signed.example", message).await;
    assert_eq!(code, 250);
    newest_header(ingress).await
}

/// The reply code to the end of `message`'s data, sent from `from`.
async fn send(ingress: &TestIngress, from: &str, message: &[u8]) -> u16 {
    let (mut client, _) = ingress.client().await;
    assert_eq!(
        client.command(&format!("MAIL FROM:<{from}>")).await.code,
        250
    );
    assert_eq!(client.command("RCPT TO:<bob@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    let mut data = message.to_vec();
    data.extend_from_slice(b".\r\n");
    client.send(&data).await;
    client.reply().await.code
}

/// The header section of the message stored last.
async fn newest_header(ingress: &TestIngress) -> String {
    let body: Vec<u8> =
        sqlx::query_scalar("SELECT body FROM messages ORDER BY received_at DESC LIMIT 1")
            .fetch_one(&ingress.db.pool)
            .await
            .expect("the stored message");
    let text = String::from_utf8_lossy(&body).to_string();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn signatures_from_an_independent_signer_are_verified_and_recorded() {
    let python = dkimpy();
    let dir = tempfile_dir("verify");
    let (key, public) = rsa_key(&dir);
    let dns = TestDns::start().await;
    dns.add_txt(
        "sel._domainkey.signed.example",
        &format!("v=DKIM1; k=rsa; p={public}"),
    );
    let nameserver = dns.addr().to_string();
    let ingress =
        TestIngress::start_with(&["--dkim-verify", "true", "--nameserver", nameserver.as_str()])
            .await;

    let message = b"From: Alice <alice@signed.example>\r\nSubject: signed\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nHello,\r\n  folded and 8-bit: caf\xc3\xa9\r\n";
    let signed = sign(&python, &key, message);
    let head = stored_header(&ingress, &signed).await;
    assert!(
        head.contains("dkim=pass header.d=signed.example header.s=sel"),
        "{head}"
    );

    // The body changed after signing: the signature no longer holds.
    let mut tampered = signed.clone();
    let at = tampered.len() - 3;
    tampered[at] = b'X';
    let head = stored_header(&ingress, &tampered).await;
    assert!(head.contains("dkim=fail header.d=signed.example"), "{head}");

    let head = stored_header(&ingress, message).await;
    assert!(head.contains("dkim=none"), "{head}");

    // A body ending in whitespace-only lines, which relaxed canonicalisation ignores (RFC 6376
    // 3.4.4) and the DKIM library alone would hash as empty lines.
    let trailing = b"From: <alice@signed.example>\r\nSubject: s\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nHello \r\n \r\n\t\r\n";
    let signed = sign_with(&python, &key, trailing, "relaxed", "relaxed");
    let head = stored_header(&ingress, &signed).await;
    assert!(head.contains("dkim=pass header.d=signed.example"), "{head}");
    // Under simple canonicalisation those lines count: one added after signing breaks it.
    let mut padded = sign_with(&python, &key, trailing, "relaxed", "simple");
    padded.extend_from_slice(b" \r\n");
    let head = stored_header(&ingress, &padded).await;
    assert!(head.contains("dkim=fail header.d=signed.example"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn dmarc_refuses_p_reject_marks_p_quarantine_and_lets_aligned_dkim_pass() {
    let python = dkimpy();
    let dir = tempfile_dir("dmarc");
    let (key, public) = rsa_key(&dir);
    let dns = TestDns::start().await;
    // SPF fails for all three (the client is 127.0.0.1); only DKIM can align.
    for domain in ["reject.example", "quar.example", "signed.example"] {
        dns.add_txt(domain, "v=spf1 ip4:192.0.2.0/24 -all");
    }
    dns.add_txt("_dmarc.reject.example", "v=DMARC1; p=reject");
    dns.add_txt("_dmarc.quar.example", "v=DMARC1; p=quarantine");
    dns.add_txt("_dmarc.signed.example", "v=DMARC1; p=reject");
    dns.add_txt(
        "sel._domainkey.signed.example",
        &format!("v=DKIM1; k=rsa; p={public}"),
    );
    let nameserver = dns.addr().to_string();
    // DMARC alone: it turns SPF (record) and DKIM verification on itself.
    let ingress =
        TestIngress::start_with(&["--dmarc", "reject", "--nameserver", nameserver.as_str()]).await;

    let forged = b"From: <ceo@reject.example>\r\nSubject: pay\r\n\r\nnow\r\n";
    assert_eq!(send(&ingress, "ceo@reject.example", forged).await, 550);
    assert_eq!(ingress.count("SELECT count(*) FROM messages").await, 0);

    let doubtful = b"From: <news@quar.example>\r\nSubject: hi\r\n\r\nhi\r\n";
    assert_eq!(send(&ingress, "news@quar.example", doubtful).await, 250);
    let head = newest_header(&ingress).await;
    assert!(
        head.contains("X-Tern-Quarantine: DMARC p=quarantine of quar.example failed"),
        "{head}"
    );
    assert!(
        head.contains("dmarc=fail (p=quarantine) header.from=quar.example"),
        "{head}"
    );
    assert!(
        head.contains("spf=fail smtp.mailfrom=news@quar.example"),
        "{head}"
    );

    let message = b"From: Alice <alice@signed.example>\r\nSubject: signed\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nHello\r\n";
    let signed = sign(&python, &key, message);
    assert_eq!(send(&ingress, "alice@signed.example", &signed).await, 250);
    let head = newest_header(&ingress).await;
    assert!(
        head.contains("dmarc=pass (p=reject) header.from=signed.example"),
        "{head}"
    );
    assert!(!head.contains("X-Tern-Quarantine"), "{head}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `message` sealed by dkimpy for a forwarder, `d=forwarder.example; s=arc`, as a mailing list
/// would after checking it (the message carries the forwarder's `Authentication-Results:`).
fn arc_seal(python: &str, key: &std::path::Path, message: &[u8]) -> Vec<u8> {
    let code = "import dkim,sys\n\
        m=open(sys.argv[1],'rb').read(); k=open(sys.argv[2],'rb').read()\n\
        h=dkim.arc_sign(m,b'arc',b'forwarder.example',k,b'forwarder.example')\n\
        sys.stdout.buffer.write(b''.join(h)+m)\n";
    run_dkimpy(python, code, key, message, &[])
}

#[tokio::test]
async fn an_arc_chain_sealed_by_a_forwarder_is_verified_and_a_broken_one_fails() {
    let python = dkimpy();
    let dir = tempfile_dir("arc");
    let (key, public) = rsa_key(&dir);
    let dns = TestDns::start().await;
    dns.add_txt(
        "arc._domainkey.forwarder.example",
        &format!("v=DKIM1; k=rsa; p={public}"),
    );
    let nameserver = dns.addr().to_string();
    let ingress =
        TestIngress::start_with(&["--dkim-verify", "true", "--nameserver", nameserver.as_str()])
            .await;

    let message = b"Authentication-Results: forwarder.example; spf=pass smtp.mailfrom=a@origin.example\r\nFrom: <a@origin.example>\r\nSubject: via the list\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nForwarded\r\n";
    let sealed = arc_seal(&python, &key, message);
    assert_eq!(send(&ingress, "list@forwarder.example", &sealed).await, 250);
    let head = newest_header(&ingress).await;
    assert!(head.contains("arc=pass"), "{head}");
    // The forwarder's own results are not ours: they stay.
    assert!(
        head.contains("Authentication-Results: forwarder.example;"),
        "{head}"
    );

    let mut broken = sealed.clone();
    let at = broken.len() - 3;
    broken[at] = b'X';
    assert_eq!(send(&ingress, "list@forwarder.example", &broken).await, 250);
    let head = newest_header(&ingress).await;
    assert!(head.contains("arc=fail"), "{head}");

    // A body ending in whitespace-only lines: the seal's relaxed body hash ignores them.
    let trailing = b"Authentication-Results: forwarder.example; spf=pass smtp.mailfrom=a@origin.example\r\nFrom: <a@origin.example>\r\nSubject: via the list\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nForwarded \r\n \r\n\t\r\n";
    let sealed = arc_seal(&python, &key, trailing);
    assert_eq!(send(&ingress, "list@forwarder.example", &sealed).await, 250);
    let head = newest_header(&ingress).await;
    assert!(head.contains("arc=pass"), "{head}");

    // No seal, no ARC result.
    assert_eq!(send(&ingress, "a@origin.example", message).await, 250);
    assert!(!newest_header(&ingress).await.contains("arc="));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of the test's own (`name`), under the system's temporary directory: tests run in
/// parallel, and each removes its directory when done.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-dkim-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

#[tokio::test]
async fn with_dns_gone_nothing_is_refused_for_good() {
    let python = dkimpy();
    let dir = tempfile_dir("dns-gone");
    let (key, _public) = rsa_key(&dir);
    let dns = TestDns::start().await;
    let nameserver = dns.addr().to_string();
    let every_check = [
        "--spf",
        "reject",
        "--dmarc",
        "reject",
        "--nameserver",
        nameserver.as_str(),
        "--dnsbl-sites",
        "bl.test",
        "--dnsbl-nameserver",
        nameserver.as_str(),
        "--dnsbl-timeout",
        "300ms",
        // Shorter than one resolver timeout: the checks' own deadline answers.
        "--policy-dns-timeout",
        "1s",
    ];
    let strict = TestIngress::start_with(&every_check).await;
    let mut lenient_args = every_check.to_vec();
    lenient_args[1] = "record";
    let lenient = TestIngress::start_with(&lenient_args).await;
    drop(dns);

    // SPF in reject mode cannot check: the sender is deferred, never refused.
    let (mut client, greeting) = strict.client().await;
    assert_eq!(greeting.code, 250, "{greeting:?}");
    let mail = client.command("MAIL FROM:<alice@signed.example>").await;
    assert_eq!(mail.code, 451, "{mail:?}");

    // SPF recording only: DKIM and DMARC cannot check either, and the message is taken.
    let message = b"From: <alice@signed.example>\r\nSubject: s\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nbody\r\n";
    let signed = sign(&python, &key, message);
    assert_eq!(send(&lenient, "alice@signed.example", &signed).await, 250);
    let head = newest_header(&lenient).await;
    assert!(head.contains("spf=temperror"), "{head}");
    assert!(
        head.contains("dkim=temperror (no DNS answer in time)"),
        "{head}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_trusted_forwarders_arc_seal_overrides_a_dmarc_failure() {
    let python = dkimpy();
    let dir = tempfile_dir("arc-override");
    let (key, public) = rsa_key(&dir);
    let dns = TestDns::start().await;
    dns.add_txt(
        "arc._domainkey.forwarder.example",
        &format!("v=DKIM1; k=rsa; p={public}"),
    );
    // Forwarded, the author's mail fails SPF here and carries no DKIM signature of its own.
    dns.add_txt("strict.example", "v=spf1 ip4:192.0.2.0/24 -all");
    dns.add_txt("_dmarc.strict.example", "v=DMARC1; p=reject");
    let nameserver = dns.addr().to_string();
    let untrusting =
        TestIngress::start_with(&["--dmarc", "reject", "--nameserver", nameserver.as_str()]).await;
    let trusting = TestIngress::start_with(&[
        "--dmarc",
        "reject",
        "--nameserver",
        nameserver.as_str(),
        "--arc-trusted-sealers",
        "Forwarder.example",
    ])
    .await;

    let passed_there = b"Authentication-Results: forwarder.example; dmarc=pass header.from=strict.example\r\nFrom: <ceo@strict.example>\r\nSubject: via the list\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nForwarded\r\n";
    let sealed = arc_seal(&python, &key, passed_there);
    assert_eq!(
        send(&untrusting, "list@forwarder.example", &sealed).await,
        550
    );
    assert_eq!(
        send(&trusting, "list@forwarder.example", &sealed).await,
        250
    );
    let head = newest_header(&trusting).await;
    assert!(
        head.contains("dmarc=fail (p=reject) header.from=strict.example (policy overridden: trusted_forwarder, ARC sealed by forwarder.example)"),
        "{head}"
    );

    // The forwarder saw DMARC fail itself: nothing to vouch for.
    let failed_there = b"Authentication-Results: forwarder.example; dmarc=fail header.from=strict.example\r\nFrom: <ceo@strict.example>\r\nSubject: via the list\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n\r\nForwarded\r\n";
    let sealed = arc_seal(&python, &key, failed_there);
    assert_eq!(
        send(&trusting, "list@forwarder.example", &sealed).await,
        550
    );
    // A broken chain vouches for nothing either.
    let mut broken = arc_seal(&python, &key, passed_there);
    let at = broken.len() - 3;
    broken[at] = b'X';
    assert_eq!(
        send(&trusting, "list@forwarder.example", &broken).await,
        550
    );
    let _ = std::fs::remove_dir_all(&dir);
}
