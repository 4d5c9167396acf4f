use super::*;

#[test]
fn senders_are_normalised_so_retries_look_alike() {
    let table = [
        ("Alice@Example.ORG", "alice@example.org"),
        ("prvs=1234abcdef=alice@example.org", "alice@example.org"),
        (
            "SRS0=HHH=TT=example.org=alice@forwarder.example",
            "alice@example.org",
        ),
        (
            "SRS1=HHH=forwarder.example==HHH=TT=example.org=alice@second.example",
            "alice@example.org",
        ),
        ("bounce-12345-67@lists.example", "bounce-#-#@lists.example"),
        ("", ""),
        ("postmaster", "postmaster"),
    ];
    for (sender, normal) in table {
        assert_eq!(normalise_sender(sender), normal, "{sender}");
    }
}

#[test]
fn triplets_take_the_client_network_not_the_address() {
    let a = Triplet::new(
        "192.0.2.10".parse().expect("ip"),
        "A@x.example",
        "Bob@Tern.test",
    );
    let b = Triplet::new(
        "::ffff:192.0.2.200".parse().expect("ip"),
        "a@x.example",
        "bob@tern.test",
    );
    assert_eq!(a, b);
    assert_eq!(a.client_net.to_string(), "192.0.2.0/24");
    let v6 = Triplet::new("2001:db8:1:2:3::9".parse().expect("ip"), "", "x@tern.test");
    assert_eq!(v6.client_net.to_string(), "2001:db8:1:2::/64");
}
