//! DKIM verification at the end of data, on messages signed by an independent signer (dkimpy,
//! from PyPI, installed by scripts/dkimpy.sh) with a key published by an in-process DNS server:
//! a good signature, a body changed after signing, and an unsigned message, each recorded in
//! the stored message's `Authentication-Results:`.

use std::process::Command;

use tern_testkit::dns::TestDns;

use crate::harness::TestIngress;

/// The python of dkimpy's virtualenv (installed on first use).
fn dkimpy() -> String {
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

/// `message` signed by dkimpy for `d=signed.example; s=sel`.
fn sign(python: &str, key: &std::path::Path, message: &[u8]) -> Vec<u8> {
    let dir = key.parent().expect("key dir");
    let input = dir.join("message.eml");
    std::fs::write(&input, message).expect("write the message");
    let code = "import dkim,sys\n\
        m=open(sys.argv[1],'rb').read(); k=open(sys.argv[2],'rb').read()\n\
        s=dkim.sign(m,b'sel',b'signed.example',k,include_headers=[b'from',b'subject',b'date'])\n\
        sys.stdout.buffer.write(s+m)\n";
    let output = Command::new(python)
        .args(["-c", code])
        .arg(&input)
        .arg(key)
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
    let (mut client, _) = ingress.client().await;
    assert_eq!(
        client
            .command("MAIL FROM:<alice@signed.example>")
            .await
            .code,
        250
    );
    assert_eq!(client.command("RCPT TO:<bob@tern.test>").await.code, 250);
    assert_eq!(client.command("DATA").await.code, 354);
    let mut data = message.to_vec();
    data.extend_from_slice(b".\r\n");
    client.send(&data).await;
    assert_eq!(client.reply().await.code, 250);
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
    let dir = tempfile_dir();
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
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory of its own for this test's files, under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tern-dkim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}
