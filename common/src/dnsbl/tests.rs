use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn ip(text: &str) -> Ipv4Addr {
    text.parse().expect("an IPv4 address")
}

#[test]
fn sites_parse_as_postscreen_writes_them() {
    let site = Site::parse("zen.spamhaus.org*3").expect("valid");
    assert_eq!(
        (site.zone.as_str(), site.weight, &site.filter),
        ("zen.spamhaus.org", 3, &None)
    );
    let site = Site::parse("list.dnswl.org=127.0.[0..255].[1..3]*-2").expect("valid");
    assert_eq!(site.weight, -2);
    assert!(site.filter.is_some());
    assert_eq!(
        Site::parse("BL.Example.").expect("valid").zone,
        "bl.example"
    );
    assert_eq!(Site::parse("bl.example").expect("valid").weight, 1);
    for bad in [
        "",
        "bl.example*x",
        "bl.example*0",
        "bl..example",
        "bl.example=127.0.0",
        "bl.example=127.0.0.[5..2]",
        "bl.example=127.0.0.300",
        "bl.example=127.0.0.[2;x]",
    ] {
        assert!(Site::parse(bad).is_err(), "{bad:?} must be refused");
    }
    assert_eq!(
        parse_sites("a.example, b.example*2").expect("valid").len(),
        2
    );
}

#[test]
fn query_names_reverse_the_address() {
    let site = Site::parse("bl.example").expect("valid");
    assert_eq!(
        site.query_name("192.0.2.99".parse().expect("ip")),
        "99.2.0.192.bl.example"
    );
    // An IPv4 client seen through an IPv6 socket is asked about as IPv4.
    assert_eq!(
        site.query_name("::ffff:192.0.2.99".parse().expect("ip")),
        "99.2.0.192.bl.example"
    );
    let v6: IpAddr = "2001:db8::1".parse().expect("ip");
    assert_eq!(
        site.query_name(v6),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example"
    );
}

#[test]
fn answers_are_judged_by_the_filter_and_error_codes_are_never_listings() {
    let any = Site::parse("bl.example").expect("valid");
    let narrow = Site::parse("bl.example=127.0.0.[2;4..7]").expect("valid");
    let table: [(&Site, &[&str], &str); 9] = [
        (&any, &[], "not_listed"),
        (&any, &["127.0.0.2"], "listed"),
        (&any, &["127.0.0.10"], "listed"),
        // Spamhaus: query refused through a public resolver, typing error.
        (&any, &["127.255.255.254"], "error"),
        (&any, &["127.255.255.252"], "error"),
        // Outside 127/8: a wildcarded or hijacked zone, not a listing.
        (&any, &["198.51.100.1"], "error"),
        (&narrow, &["127.0.0.3"], "not_listed"),
        (&narrow, &["127.0.0.5"], "listed"),
        (&narrow, &["127.0.0.3", "127.0.0.4"], "listed"),
    ];
    for (site, answers, expected) in table {
        let answers: Vec<Ipv4Addr> = answers.iter().map(|a| ip(a)).collect();
        assert_eq!(site.judge(&answers).label(), expected, "{site} {answers:?}");
    }
    assert_eq!(
        narrow.judge(&[ip("127.0.0.3"), ip("127.0.0.4")]),
        SiteResult::Listed(vec![ip("127.0.0.4")])
    );
}

#[test]
fn the_score_sums_listings_and_an_allowlist_offsets_them() {
    let bl = Site::parse("bl.example*2").expect("valid");
    let small = Site::parse("small.example").expect("valid");
    let wl = Site::parse("wl.example*-3").expect("valid");
    let listed = || SiteResult::Listed(vec![ip("127.0.0.2")]);
    let report = Report {
        results: vec![
            (bl.clone(), listed()),
            (small.clone(), listed()),
            (wl.clone(), SiteResult::NotListed),
        ],
    };
    assert_eq!(report.score(), 3);
    assert_eq!(report.listed_by(), ["bl.example", "small.example"]);
    assert!(!report.has_errors());
    let report = Report {
        results: vec![
            (bl.clone(), listed()),
            (small, SiteResult::Error("timeout".into())),
            (wl, listed()),
        ],
    };
    assert_eq!(report.score(), -1, "errors add nothing");
    assert_eq!(report.listed_by(), ["bl.example"]);
    assert!(report.has_errors());
}
