use super::*;

#[test]
fn limits_parse_and_space_their_events() {
    let limit: Limit = "100/1h".parse().expect("valid");
    assert_eq!(limit.count, 100);
    assert_eq!(limit.interval(), Duration::from_secs(36));
    assert_eq!(limit.tolerance(), Duration::from_secs(3600 - 36));
    let one: Limit = "1/10s".parse().expect("valid");
    assert_eq!(one.tolerance(), Duration::ZERO, "one per period: no burst");
    for bad in ["", "100", "0/1h", "10/0s", "x/1h", "10/forever"] {
        assert!(bad.parse::<Limit>().is_err(), "{bad:?}");
    }
}
