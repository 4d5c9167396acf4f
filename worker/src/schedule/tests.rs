use super::*;

use time::macros::datetime;

const MIN: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

fn steady(schedule: RetrySchedule) -> RetrySchedule {
    RetrySchedule {
        jitter: 0.0,
        ..schedule
    }
}

fn rng() -> fastrand::Rng {
    fastrand::Rng::with_seed(7)
}

#[test]
fn without_jitter_the_delay_doubles_from_five_minutes_up_to_four_hours() {
    let schedule = steady(RetrySchedule::default());
    let table: Vec<(u32, Duration)> = vec![
        (0, 5 * MIN),
        (1, 5 * MIN),
        (2, 10 * MIN),
        (3, 20 * MIN),
        (4, 40 * MIN),
        (5, 80 * MIN),
        (6, 160 * MIN),
        (7, 4 * HOUR),
        (8, 4 * HOUR),
        (33, 4 * HOUR),
        (64, 4 * HOUR),
        (1000, 4 * HOUR),
        (u32::MAX, 4 * HOUR),
    ];
    for (attempts, expected) in table {
        assert_eq!(
            schedule.next_delay(attempts, &mut rng()),
            expected,
            "{attempts}"
        );
    }
}

#[test]
fn other_factors_grow_accordingly_and_zero_counts_as_one() {
    let base = steady(RetrySchedule::default());
    let table: Vec<(u32, u32, Duration)> = vec![
        (1, 1, 5 * MIN),
        (1, 50, 5 * MIN),
        (0, 1, 5 * MIN),
        (0, 9, 5 * MIN),
        (3, 2, 15 * MIN),
        (3, 3, 45 * MIN),
        (3, 5, 4 * HOUR),
        (10, 3, 4 * HOUR),
        (u32::MAX, 2, 4 * HOUR),
        (u32::MAX, u32::MAX, 4 * HOUR),
    ];
    for (factor, attempts, expected) in table {
        let schedule = RetrySchedule { factor, ..base };
        assert_eq!(
            schedule.next_delay(attempts, &mut rng()),
            expected,
            "factor {factor}, attempt {attempts}"
        );
    }
}

#[test]
fn extreme_durations_saturate_instead_of_panicking() {
    let schedule = RetrySchedule {
        first: Duration::MAX,
        factor: u32::MAX,
        max: Duration::MAX,
        jitter: 1.0,
        lifetime: Duration::MAX,
    };
    let now = datetime!(2026-01-01 0:00 UTC);
    for attempts in [0, 1, 2, 40, u32::MAX] {
        let delay = schedule.next_delay(attempts, &mut rng());
        assert!(delay > Duration::ZERO);
        assert!(matches!(
            schedule.after_failure(now, now, attempts, &mut rng()),
            Next::Retry(at) if at > now
        ));
    }
    let late = time::PrimitiveDateTime::MAX.assume_utc();
    assert_eq!(
        schedule.after_failure(late, late, 3, &mut rng()),
        Next::Retry(late)
    );
}

#[test]
fn jittered_delays_stay_within_the_fraction_for_every_attempt_and_seed() {
    for jitter in [0.0, 0.1, 0.5, 1.0] {
        let schedule = RetrySchedule {
            jitter,
            ..RetrySchedule::default()
        };
        for seed in 0..200 {
            let mut rng = fastrand::Rng::with_seed(seed);
            for attempts in 0..50 {
                let base = steady(schedule)
                    .next_delay(attempts, &mut rng)
                    .as_secs_f64();
                let delay = schedule.next_delay(attempts, &mut rng).as_secs_f64();
                let (low, high) = (base * (1.0 - jitter), base * (1.0 + jitter));
                assert!(
                    delay >= low - 1e-6 && delay <= high + 1e-6,
                    "jitter {jitter}, seed {seed}, attempt {attempts}: {delay} not in {low}..={high}"
                );
            }
        }
    }
}

#[test]
fn jitter_spreads_delays_and_is_repeatable_with_the_same_seed() {
    let schedule = RetrySchedule::default();
    let delays: Vec<Duration> = (0..100)
        .map(|seed| schedule.next_delay(3, &mut fastrand::Rng::with_seed(seed)))
        .collect();
    let distinct: std::collections::BTreeSet<_> = delays.iter().collect();
    assert!(
        distinct.len() > 90,
        "only {} distinct delays",
        distinct.len()
    );
    assert!(delays.iter().any(|d| *d < 20 * MIN));
    assert!(delays.iter().any(|d| *d > 20 * MIN));

    let again: Vec<Duration> = (0..100)
        .map(|seed| schedule.next_delay(3, &mut fastrand::Rng::with_seed(seed)))
        .collect();
    assert_eq!(delays, again);
}

#[test]
fn an_out_of_range_jitter_is_clamped_or_ignored() {
    let base = RetrySchedule::default();
    let table: Vec<(f64, Duration, Duration)> = vec![
        (-0.5, 5 * MIN, 5 * MIN),
        (f64::NAN, 5 * MIN, 5 * MIN),
        (f64::INFINITY, 5 * MIN, 5 * MIN),
        (7.0, Duration::ZERO, 10 * MIN),
    ];
    for (jitter, low, high) in table {
        let schedule = RetrySchedule { jitter, ..base };
        for seed in 0..100 {
            let delay = schedule.next_delay(1, &mut fastrand::Rng::with_seed(seed));
            assert!(delay >= low && delay <= high, "{jitter}: {delay:?}");
        }
    }
}

#[test]
fn after_failure_retries_after_the_delay_and_expires_at_the_end_of_the_lifetime() {
    let schedule = steady(RetrySchedule::default());
    let received = datetime!(2026-03-01 12:00 UTC);
    let expires = received + time::Duration::days(5);
    let table: Vec<(OffsetDateTime, u32, Next)> = vec![
        (
            received,
            1,
            Next::Retry(received + time::Duration::minutes(5)),
        ),
        (
            received + time::Duration::hours(1),
            4,
            Next::Retry(received + time::Duration::minutes(100)),
        ),
        (
            received + time::Duration::days(2),
            20,
            Next::Retry(received + time::Duration::hours(52)),
        ),
        // The next try would fall after expiry: it is moved to expiry itself.
        (expires - time::Duration::hours(1), 30, Next::Retry(expires)),
        (
            expires - time::Duration::seconds(1),
            30,
            Next::Retry(expires),
        ),
        (expires, 31, Next::Expired),
        (expires + time::Duration::days(1), 40, Next::Expired),
    ];
    for (now, attempts, expected) in table {
        assert_eq!(
            schedule.after_failure(received, now, attempts, &mut rng()),
            expected,
            "{now} after {attempts}"
        );
    }
}

#[test]
fn a_whole_lifetime_of_failures_ends_with_a_try_at_expiry_then_expiry_for_every_seed() {
    let schedule = RetrySchedule::default();
    let received = datetime!(2026-03-01 12:00 UTC);
    let expires = received + time::Duration::days(5);
    for seed in 0..100 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut now, mut attempts) = (received, 1u32);
        while let Next::Retry(at) = schedule.after_failure(received, now, attempts, &mut rng) {
            assert!(at > now && at <= expires, "seed {seed}: {at} after {now}");
            now = at;
            attempts += 1;
        }
        assert_eq!(now, expires, "seed {seed}: the last try is at expiry");
        assert!(
            (30..=40).contains(&attempts),
            "seed {seed}: {attempts} attempts"
        );
    }
}
