//! `tern dkim` on the built binary against a real database: it prints the record to publish
//! (which holds the key the database keeps), lists, switches signing, deletes, and answers bad
//! input with exit code 64 naming the field.

use tern_e2e::tern_binary;
use tern_testkit::TestDatabase;
use tokio::process::Command;

async fn tern_dkim(database_url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(tern_binary())
        .arg("dkim")
        .args(args)
        .env("TERN_DATABASE_URL", database_url)
        .output()
        .await
        .expect("run tern dkim");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn create_list_switch_and_delete() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();

    let (code, out, err) = tern_dkim(url, &["create", "example.org", "s1"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("s1._domainkey.example.org. IN TXT \"v=DKIM1; k=rsa; p=MIIB"),
        "{out}"
    );
    let (code, out, err) = tern_dkim(
        url,
        &[
            "create",
            "example.org",
            "e1",
            "--algorithm",
            "ed25519-sha256",
            "--no-signing",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("k=ed25519; p="), "{out}");

    let (_, out, _) = tern_dkim(url, &["list", "example.org"]).await;
    assert_eq!(
        out,
        "example.org\te1\ted25519-sha256\tpublished\tapi\nexample.org\ts1\trsa-sha256\tsigning\tapi\n"
    );
    assert_eq!(
        tern_dkim(url, &["signing", "example.org", "e1", "on"])
            .await
            .0,
        Some(0)
    );
    let (_, out, _) = tern_dkim(url, &["list"]).await;
    assert!(out.contains("e1\ted25519-sha256\tsigning"), "{out}");

    // A selector in use, an unknown key, bad input.
    assert_eq!(
        tern_dkim(url, &["create", "example.org", "s1"]).await.0,
        Some(1)
    );
    assert_eq!(
        tern_dkim(url, &["delete", "example.org", "nope"]).await.0,
        Some(1)
    );
    let (code, _, err) = tern_dkim(url, &["create", "example.org", "bad_selector"]).await;
    assert_eq!(code, Some(64));
    assert!(err.contains("selector"), "{err}");
    let (code, _, err) = tern_dkim(
        url,
        &["create", "example.org", "s2", "--algorithm", "rsa-sha1"],
    )
    .await;
    assert_eq!(code, Some(64));
    assert!(err.contains("algorithm"), "{err}");

    assert_eq!(
        tern_dkim(url, &["delete", "example.org", "s1"]).await.0,
        Some(0)
    );
    let (_, out, _) = tern_dkim(url, &["list"]).await;
    assert_eq!(out.lines().count(), 1, "{out}");
}
