//! Users against a real PostgreSQL: passwords, disabled and unknown users, sender rules, and a
//! lockout by login and by client address that two separate pools (two ingress pods) share.

use std::net::IpAddr;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use tern_common::users::{AuthOutcome, LockoutPolicy, SenderRule, UserStore, UsersError};
use tern_smtp::{Domain, Mailbox, ReversePath};
use tern_testkit::TestDatabase;
use tern_testkit::wait::eventually;

const PASSWORD: &str = "correct horse battery";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn policy(max_per_login: u32, max_per_ip: u32, window: Duration) -> LockoutPolicy {
    LockoutPolicy {
        max_per_login,
        max_per_ip,
        window,
    }
}

fn lenient() -> LockoutPolicy {
    policy(1000, 1000, Duration::from_secs(900))
}

fn sender(address: &str) -> ReversePath {
    let (local, domain) = address.rsplit_once('@').expect("an address");
    ReversePath::Mailbox(Mailbox {
        local: local.to_owned(),
        domain: Domain::Name(domain.to_owned()),
    })
}

fn label(outcome: &AuthOutcome) -> &'static str {
    match outcome {
        AuthOutcome::Authenticated(_) => "authenticated",
        AuthOutcome::BadCredentials => "bad credentials",
        AuthOutcome::LockedOut => "locked out",
    }
}

async fn attempt(store: &UserStore, login: &str, password: &str, from: &str) -> &'static str {
    let outcome = store
        .authenticate(login, password, ip(from))
        .await
        .expect("database reachable");
    label(&outcome)
}

/// A second pool on the same database, as another ingress process would have.
async fn second_store(db: &TestDatabase, lockout: LockoutPolicy) -> UserStore {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .connect(&db.url)
        .await
        .expect("second pool");
    UserStore::new(pool, lockout)
}

#[tokio::test]
async fn passwords_unknown_and_disabled_users() {
    let db = TestDatabase::create().await;
    let users = UserStore::new(db.pool.clone(), lenient());
    let alice = users
        .add("Alice@Example.com", PASSWORD, &[])
        .await
        .expect("add");
    assert_eq!(alice.login, "alice@example.com");
    assert!(!alice.disabled);

    let from = "192.0.2.10";
    assert_eq!(
        attempt(&users, "alice@example.com", PASSWORD, from).await,
        "authenticated"
    );
    assert_eq!(
        attempt(&users, "ALICE@EXAMPLE.COM", PASSWORD, from).await,
        "authenticated"
    );
    assert_eq!(
        attempt(&users, "alice@example.com", "wrong password", from).await,
        "bad credentials"
    );
    assert_eq!(
        attempt(&users, "alice@example.com", &PASSWORD.to_uppercase(), from).await,
        "bad credentials"
    );
    assert_eq!(
        attempt(&users, "nobody@example.com", PASSWORD, from).await,
        "bad credentials"
    );

    match users
        .authenticate("alice@example.com", PASSWORD, ip(from))
        .await
    {
        Ok(AuthOutcome::Authenticated(user)) => assert_eq!(user.id, alice.id),
        other => panic!("expected alice, got {other:?}"),
    }

    assert!(matches!(
        users
            .add("alice@EXAMPLE.com", "another password", &[])
            .await,
        Err(UsersError::Exists(_))
    ));
    assert!(matches!(
        users.add("bob@example.com", "short", &[]).await,
        Err(UsersError::InvalidPassword(_))
    ));

    users
        .set_password("alice@example.com", "a new passphrase")
        .await
        .expect("passwd");
    assert_eq!(
        attempt(&users, "alice@example.com", PASSWORD, from).await,
        "bad credentials"
    );
    assert_eq!(
        attempt(&users, "alice@example.com", "a new passphrase", from).await,
        "authenticated"
    );

    users
        .set_disabled("alice@example.com", true)
        .await
        .expect("disable");
    assert_eq!(
        attempt(&users, "alice@example.com", "a new passphrase", from).await,
        "bad credentials"
    );
    users
        .set_disabled("alice@example.com", false)
        .await
        .expect("enable");
    assert_eq!(
        attempt(&users, "alice@example.com", "a new passphrase", from).await,
        "authenticated"
    );

    users.delete("ALICE@example.com").await.expect("delete");
    assert!(
        users
            .find("alice@example.com")
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(
        attempt(&users, "alice@example.com", "a new passphrase", from).await,
        "bad credentials"
    );
    assert!(matches!(
        users.delete("alice@example.com").await,
        Err(UsersError::NotFound(_))
    ));
    assert!(matches!(
        users.set_password("alice@example.com", PASSWORD).await,
        Err(UsersError::NotFound(_))
    ));

    // The hash is an argon2id PHC string, never the password.
    users
        .add("carol@example.com", PASSWORD, &[])
        .await
        .expect("add");
    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE login = 'carol@example.com'")
            .fetch_one(&db.pool)
            .await
            .expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
}

#[tokio::test]
async fn senders_are_stored_and_checked() {
    let db = TestDatabase::create().await;
    let users = UserStore::new(db.pool.clone(), lenient());
    let rules = [
        SenderRule::parse("@Example.org").expect("rule"),
        SenderRule::parse("bob@example.net").expect("rule"),
    ];
    users
        .add("alice@example.com", PASSWORD, &rules)
        .await
        .expect("add");
    users.add("app", PASSWORD, &[]).await.expect("add");
    let listed = users.list().await.expect("list");
    let logins: Vec<&str> = listed.iter().map(|u| u.login.as_str()).collect();
    assert_eq!(logins, ["alice@example.com", "app"]);
    let alice = &listed[0];
    let stored: Vec<String> = alice.senders.iter().map(ToString::to_string).collect();
    assert_eq!(stored, ["bob@example.net", "@example.org"]);

    for (address, allowed) in [
        ("alice@example.com", true),
        ("anyone@example.org", true),
        ("bob@example.net", true),
        ("carol@example.net", false),
        ("alice@example.net", false),
    ] {
        assert_eq!(alice.may_send_as(&sender(address)), allowed, "{address}");
    }
    assert!(alice.may_send_as(&ReversePath::Null));
    assert!(!listed[1].may_send_as(&sender("app@example.com")));

    users
        .set_senders("app", &[SenderRule::parse("example.com").expect("rule")])
        .await
        .expect("set senders");
    let app = users.find("APP").await.expect("find").expect("app exists");
    assert!(app.may_send_as(&sender("noreply@example.com")));
    assert!(matches!(
        users.set_senders("nobody", &[]).await,
        Err(UsersError::NotFound(_))
    ));

    users.delete("alice@example.com").await.expect("delete");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM user_senders")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(left, 1, "deleting a user deletes its senders");
}

#[tokio::test]
async fn too_many_failures_lock_the_login_out_even_with_the_right_password() {
    let db = TestDatabase::create().await;
    let users = UserStore::new(db.pool.clone(), policy(3, 1000, Duration::from_secs(900)));
    users
        .add("alice@example.com", PASSWORD, &[])
        .await
        .expect("add");
    users
        .add("bob@example.com", PASSWORD, &[])
        .await
        .expect("add");

    // Two failures, then a success, clears the login's count.
    for _ in 0..2 {
        assert_eq!(
            attempt(&users, "alice@example.com", "guess", "192.0.2.1").await,
            "bad credentials"
        );
    }
    assert_eq!(
        attempt(&users, "alice@example.com", PASSWORD, "192.0.2.1").await,
        "authenticated"
    );

    // Failures from several addresses count against the login together.
    for from in ["192.0.2.1", "198.51.100.2", "2001:db8::3"] {
        assert_eq!(
            attempt(&users, "ALICE@example.com", "guess", from).await,
            "bad credentials"
        );
    }
    for from in ["192.0.2.1", "203.0.113.9"] {
        assert_eq!(
            attempt(&users, "alice@example.com", PASSWORD, from).await,
            "locked out"
        );
    }
    // Another login from the same address is unaffected.
    assert_eq!(
        attempt(&users, "bob@example.com", PASSWORD, "192.0.2.1").await,
        "authenticated"
    );
    // Unknown logins are limited too, so they cannot be probed without limit.
    for _ in 0..3 {
        assert_eq!(
            attempt(&users, "ghost@example.com", "guess", "192.0.2.7").await,
            "bad credentials"
        );
    }
    assert_eq!(
        attempt(&users, "ghost@example.com", "guess", "192.0.2.7").await,
        "locked out"
    );
}

#[tokio::test]
async fn too_many_failures_lock_the_client_address_out() {
    let db = TestDatabase::create().await;
    let users = UserStore::new(db.pool.clone(), policy(1000, 4, Duration::from_secs(900)));
    users
        .add("alice@example.com", PASSWORD, &[])
        .await
        .expect("add");

    // Successes do not use up the address's allowance.
    for _ in 0..6 {
        assert_eq!(
            attempt(&users, "alice@example.com", PASSWORD, "192.0.2.50").await,
            "authenticated"
        );
    }
    for n in 0..4 {
        let login = format!("user{n}@example.com");
        assert_eq!(
            attempt(&users, &login, "guess", "2001:db8:0:1::5").await,
            "bad credentials"
        );
    }
    // The same /64, another interface identifier: still locked.
    assert_eq!(
        attempt(
            &users,
            "alice@example.com",
            PASSWORD,
            "2001:db8:0:1:ffff::9"
        )
        .await,
        "locked out"
    );
    // Another address is fine.
    assert_eq!(
        attempt(&users, "alice@example.com", PASSWORD, "2001:db8:0:2::5").await,
        "authenticated"
    );
}

/// Two pools, as two ingress pods: failures through either count for both, and concurrent
/// attempts never check more passwords than the limit allows.
#[tokio::test]
async fn lockout_is_shared_between_pools_and_exact_under_concurrency() {
    let db = TestDatabase::create().await;
    let lockout = policy(5, 1000, Duration::from_secs(900));
    let pod_a = UserStore::new(db.pool.clone(), lockout);
    let pod_b = second_store(&db, lockout).await;
    pod_a
        .add("alice@example.com", PASSWORD, &[])
        .await
        .expect("add");
    pod_a
        .add("bob@example.com", PASSWORD, &[])
        .await
        .expect("add");

    assert_eq!(
        attempt(&pod_a, "alice@example.com", "guess", "192.0.2.1").await,
        "bad credentials"
    );
    assert_eq!(
        attempt(&pod_b, "alice@example.com", "guess", "192.0.2.2").await,
        "bad credentials"
    );
    assert_eq!(
        attempt(&pod_a, "alice@example.com", PASSWORD, "192.0.2.1").await,
        "authenticated"
    );

    let mut tasks = Vec::new();
    for n in 0..24 {
        let store = if n % 2 == 0 {
            pod_a.clone()
        } else {
            pod_b.clone()
        };
        tasks.push(tokio::spawn(async move {
            attempt(
                &store,
                "bob@example.com",
                "guess",
                &format!("198.51.100.{n}"),
            )
            .await
        }));
    }
    let mut bad = 0;
    let mut locked = 0;
    for task in tasks {
        match task.await.expect("task") {
            "bad credentials" => bad += 1,
            "locked out" => locked += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((bad, locked), (5, 19));
    assert_eq!(
        attempt(&pod_a, "bob@example.com", PASSWORD, "203.0.113.1").await,
        "locked out"
    );
    assert_eq!(
        attempt(&pod_b, "bob@example.com", PASSWORD, "203.0.113.2").await,
        "locked out"
    );
}

#[tokio::test]
async fn a_lockout_lifts_when_its_window_has_passed() {
    let db = TestDatabase::create().await;
    // The window is read when an attempt is counted, so a pod with a long window makes the
    // lockout certain and one with a short window watches it lift, without racing the clock.
    let long = UserStore::new(db.pool.clone(), policy(2, 1000, Duration::from_secs(900)));
    let short = UserStore::new(db.pool.clone(), policy(2, 1000, Duration::from_millis(300)));
    long.add("alice@example.com", PASSWORD, &[])
        .await
        .expect("add");
    for _ in 0..2 {
        attempt(&long, "alice@example.com", "guess", "192.0.2.1").await;
    }
    assert_eq!(
        attempt(&long, "alice@example.com", PASSWORD, "192.0.2.1").await,
        "locked out"
    );

    eventually("the lockout to lift", Duration::from_secs(30), || async {
        (attempt(&short, "alice@example.com", PASSWORD, "192.0.2.1").await == "authenticated")
            .then_some(())
    })
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_failures WHERE scope = 'login'")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(rows, 0, "a success clears the login's counter");

    // Counters whose window has passed are pruned; live ones are kept.
    attempt(&long, "nobody@example.com", "guess", "192.0.2.9").await;
    assert_eq!(long.prune_failures().await.expect("prune"), 0);
    eventually(
        "expired counters to be pruned",
        Duration::from_secs(30),
        || async {
            short.prune_failures().await.expect("prune");
            let left: i64 = sqlx::query_scalar("SELECT count(*) FROM auth_failures")
                .fetch_one(&db.pool)
                .await
                .expect("count");
            (left == 0).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_writer_keeps_its_own_users_and_leaves_the_others_alone() {
    let db = TestDatabase::create().await;
    let store = UserStore::new(db.pool.clone(), lenient());
    let crd = tern_common::control::Owner::Crd;

    // Made by the operator: it needs a password to exist.
    let missing = store
        .put_owned(crd, "op@example.org", None, false, &[])
        .await;
    assert!(
        matches!(missing, Err(UsersError::PasswordNeeded(_))),
        "{missing:?}"
    );
    let user = store
        .put_owned(
            crd,
            "Op@Example.org",
            Some(PASSWORD),
            false,
            &[SenderRule::parse("@example.org").expect("rule")],
        )
        .await
        .expect("made");
    assert_eq!(user.login, "op@example.org");
    assert_eq!(
        store
            .owner("op@example.org")
            .await
            .expect("owner")
            .as_deref(),
        Some("crd")
    );
    assert_eq!(
        attempt(&store, "op@example.org", PASSWORD, "192.0.2.1").await,
        "authenticated"
    );

    // Without a password the one stored stays; disabling and senders still apply.
    let user = store
        .put_owned(crd, "op@example.org", None, true, &[])
        .await
        .expect("updated");
    assert!(user.disabled && user.senders.is_empty());
    assert_eq!(
        attempt(&store, "op@example.org", PASSWORD, "192.0.2.1").await,
        "bad credentials"
    );
    store
        .put_owned(
            crd,
            "op@example.org",
            Some("a new password here"),
            false,
            &[],
        )
        .await
        .expect("new password");
    assert_eq!(
        attempt(&store, "op@example.org", "a new password here", "192.0.2.1").await,
        "authenticated"
    );

    // A user made with `tern user` or the API is not the operator's to change or remove.
    store
        .add("api@example.org", PASSWORD, &[])
        .await
        .expect("added");
    let refused = store
        .put_owned(
            crd,
            "api@example.org",
            Some("x".repeat(12).as_str()),
            true,
            &[],
        )
        .await;
    assert!(
        matches!(&refused, Err(UsersError::OwnedBy { owner, .. }) if owner == "api"),
        "{refused:?}"
    );
    let refused = store.delete_owned(crd, "api@example.org").await;
    assert!(
        matches!(refused, Err(UsersError::OwnedBy { .. })),
        "{refused:?}"
    );
    assert_eq!(
        attempt(&store, "api@example.org", PASSWORD, "192.0.2.1").await,
        "authenticated"
    );

    // Deleting twice is no error (a finalizer may run again).
    store
        .delete_owned(crd, "op@example.org")
        .await
        .expect("deleted");
    store
        .delete_owned(crd, "op@example.org")
        .await
        .expect("already gone");
    assert!(store.find("op@example.org").await.expect("find").is_none());
}
