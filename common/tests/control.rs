//! The control plane against a real PostgreSQL and NATS: owner-checked writes that bump one
//! revision, the environment's rows kept in step, and a pod's snapshot swapped by a notice or,
//! with no notice, by the poll.

use std::time::Duration;

use tern_common::bus::Bus;
use tern_common::config::NatsConfig;
use tern_common::control::{
    BlockAction, BlockKind, ConfigRows, ControlError, ControlWatch, Domain, DomainKind,
    NewBlockEntry, Owner, PgControlStore, Suspension,
};
use tern_testkit::{TestDatabase, services};
use tokio_util::sync::CancellationToken;

fn domain(name: &str, kind: DomainKind) -> Domain {
    Domain {
        name: name.to_owned(),
        kind,
        route: None,
        owner: Owner::Api,
    }
}

#[tokio::test]
async fn writes_bump_the_revision_and_another_owners_rows_are_read_only() {
    let db = TestDatabase::create().await;
    let store = PgControlStore::new(db.pool.clone(), None);
    let start = store.revision().await.expect("revision");

    store
        .put_domain(Owner::Api, &domain("Mail.Example.", DomainKind::Local))
        .await
        .expect("put");
    assert_eq!(store.revision().await.expect("revision"), start + 1);
    let refused = store
        .put_domain(Owner::Crd, &domain("mail.example", DomainKind::Relay))
        .await
        .expect_err("another owner's row");
    assert!(
        matches!(refused, ControlError::OwnedBy(Owner::Api)),
        "{refused:?}"
    );
    assert!(matches!(
        store.delete_domain(Owner::Crd, "mail.example").await,
        Err(ControlError::OwnedBy(Owner::Api))
    ));
    assert_eq!(
        store.revision().await.expect("revision"),
        start + 1,
        "a refused write changes nothing"
    );
    let bad = store
        .put_domain(Owner::Api, &domain("not a domain", DomainKind::Local))
        .await
        .expect_err("invalid");
    assert!(
        matches!(bad, ControlError::Invalid(ref e) if e.field == "name"),
        "{bad:?}"
    );

    let entry = NewBlockEntry::new(
        BlockKind::Cidr,
        "192.0.2.9/24",
        BlockAction::Reject,
        "spam",
        None,
    )
    .expect("entry");
    let added = store.add_block(Owner::Api, &entry).await.expect("add");
    assert!(matches!(
        store.add_block(Owner::Crd, &entry).await,
        Err(ControlError::Exists(Owner::Api))
    ));
    let network = store
        .add_network(Owner::Api, "10.1.0.0/16".parse().expect("net"), "office")
        .await
        .expect("network");
    store
        .put_suspension(
            Owner::Api,
            &Suspension {
                domain: "slow.example".into(),
                until: time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                reason: "maintenance".into(),
                owner: Owner::Api,
            },
        )
        .await
        .expect("suspend");

    let plane = store.load().await.expect("load");
    assert_eq!(plane.revision, start + 4);
    assert_eq!(
        plane.domain("mail.example").map(|d| d.kind),
        Some(DomainKind::Local)
    );
    assert_eq!(plane.trusted_networks(), [network.network]);
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        plane
            .check_client("192.0.2.200".parse().expect("ip"), now)
            .map(|b| b.reason),
        Some("spam".to_owned())
    );
    assert!(plane.suspension("slow.example", now).is_some());

    store
        .delete_block(Owner::Api, added.id)
        .await
        .expect("delete");
    assert!(matches!(
        store.delete_block(Owner::Api, added.id).await,
        Err(ControlError::NotFound)
    ));
    store
        .delete_suspension(Owner::Api, "slow.example")
        .await
        .expect("lift");
    let plane = store.load().await.expect("load");
    assert_eq!(plane.blocklist_len(), 0);
    assert!(plane.suspension("slow.example", now).is_none());
}

#[tokio::test]
async fn the_environment_is_mirrored_as_config_rows_and_leaves_other_rows_alone() {
    let db = TestDatabase::create().await;
    let store = PgControlStore::new(db.pool.clone(), None);
    store
        .put_domain(Owner::Api, &domain("api.example", DomainKind::Relay))
        .await
        .expect("put");
    let rows = ConfigRows {
        local_domains: vec!["one.example".into(), "api.example".into()],
        trusted_networks: vec!["10.0.0.0/8".parse().expect("net")],
    };
    assert!(store.sync_config(&rows).await.expect("sync"));
    let revision = store.revision().await.expect("revision");
    assert!(
        !store.sync_config(&rows).await.expect("sync"),
        "nothing changed"
    );
    assert_eq!(store.revision().await.expect("revision"), revision);

    let owners: Vec<(String, Owner)> = store
        .domains()
        .await
        .expect("domains")
        .into_iter()
        .map(|d| (d.name, d.owner))
        .collect();
    assert_eq!(
        owners,
        [
            ("api.example".into(), Owner::Api),
            ("one.example".into(), Owner::Config)
        ]
    );
    assert!(matches!(
        store.delete_domain(Owner::Api, "one.example").await,
        Err(ControlError::OwnedBy(Owner::Config))
    ));

    let fewer = ConfigRows::default();
    assert!(store.sync_config(&fewer).await.expect("sync"));
    let plane = store.load().await.expect("load");
    assert!(plane.domain("one.example").is_none());
    assert!(plane.domain("api.example").is_some());
    assert!(plane.trusted_networks().is_empty());
}

#[tokio::test]
async fn a_snapshot_follows_a_change_by_notice_at_once_and_by_poll_without_nats() {
    let db = TestDatabase::create().await;
    let nats = NatsConfig {
        url: services::nats_url(),
        prefix: services::unique_nats_prefix(),
    };
    let bus = Bus::connect(&nats).await.expect("nats");
    let writer = PgControlStore::new(db.pool.clone(), Some(bus.clone()));
    let stop = CancellationToken::new();
    // A poll this long never fires within the test: only the notice can deliver the change.
    let mut noticed = ControlWatch::spawn(
        PgControlStore::new(db.pool.clone(), None),
        Some(bus),
        Duration::from_secs(3600),
        stop.clone(),
    );
    let mut polled = ControlWatch::spawn(
        PgControlStore::new(db.pool.clone(), None),
        None,
        Duration::from_millis(200),
        stop.clone(),
    );
    let first = writer.revision().await.expect("revision");
    tokio::time::timeout(Duration::from_secs(10), noticed.reached(first))
        .await
        .expect("the first read");
    tokio::time::timeout(Duration::from_secs(10), polled.reached(first))
        .await
        .expect("the first read");

    writer
        .put_domain(Owner::Api, &domain("new.example", DomainKind::Local))
        .await
        .expect("put");
    for watch in [&mut noticed, &mut polled] {
        tokio::time::timeout(Duration::from_secs(5), watch.reached(first + 1))
            .await
            .expect("the change to arrive");
        assert!(watch.current().domain("new.example").is_some());
    }
    stop.cancel();
}

#[tokio::test]
async fn a_sources_blocklist_entries_are_replaced_as_a_set() {
    let db = TestDatabase::create().await;
    let store = PgControlStore::new(db.pool.clone(), None);
    let entry = |kind, value: &str, action| {
        NewBlockEntry::new(kind, value, action, "", None).expect("a valid entry")
    };
    let api_entry = entry(BlockKind::Ip, "192.0.2.9", BlockAction::Reject);
    store
        .add_block(Owner::Api, &api_entry)
        .await
        .expect("the API's entry");

    let first = [
        entry(BlockKind::Cidr, "198.51.100.0/24", BlockAction::Reject),
        entry(
            BlockKind::SenderDomain,
            "spam.example",
            BlockAction::Tempfail,
        ),
        // The API has this one: it is left out and reported.
        entry(BlockKind::Ip, "192.0.2.9", BlockAction::Allow),
    ];
    let replaced = store
        .replace_blocks(Owner::Crd, "mail/abuse", &first)
        .await
        .expect("replaced");
    assert_eq!(
        (replaced.applied, replaced.taken.len(), replaced.changed),
        (2, 1, true)
    );
    let revision = store.revision().await.expect("revision");

    // The same set again writes nothing.
    let again = store
        .replace_blocks(Owner::Crd, "mail/abuse", &first[..2])
        .await
        .expect("again");
    assert!(!again.changed);
    assert_eq!(store.revision().await.expect("revision"), revision);

    // Another source's set, and a smaller one for the first: each keeps to its own.
    store
        .replace_blocks(
            Owner::Crd,
            "mail/other",
            &[entry(BlockKind::Helo, "bad.example", BlockAction::Reject)],
        )
        .await
        .expect("other source");
    store
        .replace_blocks(Owner::Crd, "mail/abuse", &first[1..2])
        .await
        .expect("smaller");
    let mut values: Vec<(String, Owner)> = store
        .blocklist()
        .await
        .expect("list")
        .into_iter()
        .map(|entry| (entry.value, entry.owner))
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            ("192.0.2.9".to_owned(), Owner::Api),
            ("bad.example".to_owned(), Owner::Crd),
            ("spam.example".to_owned(), Owner::Crd),
        ]
    );

    // Emptied (the resource deleted): only that source's entries go.
    store
        .replace_blocks(Owner::Crd, "mail/abuse", &[])
        .await
        .expect("emptied");
    assert_eq!(store.blocklist().await.expect("list").len(), 2);
}
