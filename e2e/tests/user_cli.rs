//! `tern user` on the built binary against a real database: what it prints, its exit codes, and
//! that a user it adds can then authenticate with the password it was given on standard input.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Stdio;

use tern_common::users::{AuthOutcome, LockoutPolicy, UserStore};
use tern_e2e::tern_binary;
use tern_testkit::TestDatabase;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `tern user <args>` with `stdin` piped in (or an empty, non-terminal standard input).
async fn tern_user(database_url: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(tern_binary())
        .arg("user")
        .args(args)
        .env("TERN_DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tern user");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.expect("write stdin");
    }
    drop(pipe);
    let output = child.wait_with_output().await.expect("tern user");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn authenticates(db: &TestDatabase, login: &str, password: &str) -> bool {
    let users = UserStore::new(db.pool.clone(), LockoutPolicy::default());
    let from = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    match users.authenticate(login, password, from).await {
        Ok(AuthOutcome::Authenticated(_)) => true,
        Ok(AuthOutcome::BadCredentials) => false,
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test]
async fn add_list_passwd_and_del() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();

    let run = tern_user(
        url,
        &[
            "add",
            "Alice@Example.com",
            "--sender",
            "@example.org",
            "--sender",
            "bob@example.net",
            "--password-stdin",
        ],
        Some("first passphrase\n"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("added alice@example.com"),
        "{}",
        run.stdout
    );
    assert!(authenticates(&db, "alice@example.com", "first passphrase").await);
    assert!(!authenticates(&db, "alice@example.com", "first passphrase\n").await);

    let run = tern_user(
        url,
        &["add", "alice@EXAMPLE.com", "--password-stdin"],
        Some("another one\n"),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);

    let run = tern_user(
        url,
        &["add", "app", "--password-stdin"],
        Some("app passphrase"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let run = tern_user(url, &["list"], None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "LOGIN\tDISABLED\tSENDERS",
            "alice@example.com\tno\tbob@example.net,@example.org",
            "app\tno\t",
        ]
    );
    assert!(!run.stdout.contains("argon2"), "hashes are never listed");

    let run = tern_user(
        url,
        &["passwd", "ALICE@example.com", "--password-stdin"],
        Some("second passphrase\r\n"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(authenticates(&db, "alice@example.com", "second passphrase").await);
    assert!(!authenticates(&db, "alice@example.com", "first passphrase").await);

    let run = tern_user(
        url,
        &["passwd", "nobody@example.com", "--password-stdin"],
        Some("whatever pass\n"),
    )
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no user nobody@example.com"),
        "{}",
        run.stderr
    );

    let run = tern_user(url, &["del", "alice@example.com"], None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!authenticates(&db, "alice@example.com", "second passphrase").await);
    let run = tern_user(url, &["del", "alice@example.com"], None).await;
    assert_eq!(run.code, Some(1));
    let run = tern_user(url, &["list"], None).await;
    assert!(!run.stdout.contains("alice"), "{}", run.stdout);
}

#[tokio::test]
async fn disable_enable_and_senders() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let run = tern_user(
        url,
        &["add", "carol@example.com", "--password-stdin"],
        Some("carol passphrase\n"),
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let run = tern_user(url, &["disable", "Carol@example.com"], None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!authenticates(&db, "carol@example.com", "carol passphrase").await);
    let run = tern_user(url, &["list"], None).await;
    assert!(
        run.stdout.contains("carol@example.com\tyes\t"),
        "{}",
        run.stdout
    );
    let run = tern_user(url, &["enable", "carol@example.com"], None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(authenticates(&db, "carol@example.com", "carol passphrase").await);

    let run = tern_user(
        url,
        &["senders", "carol@example.com", "--sender", "@carol.example"],
        None,
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = tern_user(url, &["list"], None).await;
    assert!(
        run.stdout.contains("carol@example.com\tno\t@carol.example"),
        "{}",
        run.stdout
    );
    let run = tern_user(
        url,
        &["senders", "carol@example.com", "--sender", "not an address"],
        None,
    )
    .await;
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    for command in ["disable", "enable", "senders"] {
        let run = tern_user(url, &[command, "nobody@example.com"], None).await;
        assert_eq!(run.code, Some(1), "{command}: {}", run.stderr);
    }
}

#[tokio::test]
async fn usage_errors_exit_64_and_change_nothing() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        // No terminal to prompt on and no --password-stdin.
        (&["add", "carol@example.com"], None, "--password-stdin"),
        // A password is never an argument.
        (
            &["add", "carol@example.com", "--password", "hunter22"],
            None,
            "--password",
        ),
        (
            &["add", "carol@example.com", "--password-stdin"],
            Some("short\n"),
            "invalid password",
        ),
        (
            &["add", "carol@example.com", "--password-stdin"],
            Some("\n"),
            "invalid password",
        ),
        (
            &[
                "add",
                "carol@example.com",
                "--sender",
                "not an address",
                "--password-stdin",
            ],
            Some("long enough pass\n"),
            "invalid sender",
        ),
        (
            &["add", "carol @example.com", "--password-stdin"],
            Some("long enough pass\n"),
            "invalid login",
        ),
        (&["frobnicate"], None, "frobnicate"),
        (&["add"], None, "LOGIN"),
    ];
    for (args, stdin, message) in cases {
        let run = tern_user(url, args, *stdin).await;
        assert_eq!(run.code, Some(64), "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let run = tern_user("mysql://localhost/tern", &["list"], None).await;
    assert_eq!(run.code, Some(64), "{}", run.stderr);

    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_password_from_a_file_and_an_add_that_may_find_the_user() {
    let db = TestDatabase::create().await;
    let url = db.url.as_str();
    let file = std::env::temp_dir().join(format!("tern-password-{}", std::process::id()));
    std::fs::write(&file, "from a mounted secret\nnot this line\n").expect("write");
    let path = file.display().to_string();

    let add = [
        "add",
        "carol@example.org",
        "--password-file",
        &path,
        "--if-missing",
    ];
    let run = tern_user(url, &add, None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), "added carol@example.org");
    assert!(authenticates(&db, "carol@example.org", "from a mounted secret").await);

    // Again, as a setup step does at every start: no error, and the password stays.
    std::fs::write(&file, "another password entirely\n").expect("write");
    let run = tern_user(url, &add, None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("exists"), "{}", run.stdout);
    assert!(authenticates(&db, "carol@example.org", "from a mounted secret").await);

    // Without --if-missing an existing login is still an error.
    let run = tern_user(
        url,
        &["add", "carol@example.org", "--password-file", &path],
        None,
    )
    .await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    // A file that cannot be read is a usage error, and both sources at once are refused.
    let run = tern_user(
        url,
        &[
            "passwd",
            "carol@example.org",
            "--password-file",
            "/nonexistent/tern",
        ],
        None,
    )
    .await;
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    let run = tern_user(
        url,
        &[
            "passwd",
            "carol@example.org",
            "--password-file",
            &path,
            "--password-stdin",
        ],
        Some("x\n"),
    )
    .await;
    assert_ne!(run.code, Some(0), "{}", run.stdout);
    std::fs::remove_file(&file).expect("remove");
}
