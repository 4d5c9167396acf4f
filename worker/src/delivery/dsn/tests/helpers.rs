//! The pieces every part is written with: cleaning, folding, wrapping, dates, the report kind.

use super::super::fields::{clean, date, field, wrap};
use super::*;

#[test]
fn cleaning_turns_breaks_into_spaces_and_other_controls_into_question_marks() {
    let table: Vec<(&str, bool, &str)> = vec![
        ("plain text", false, "plain text"),
        ("a\r\nb", false, "a  b"),
        ("a\nb\rc", true, "a b c"),
        ("tab\there", false, "tab here"),
        ("\u{0}\u{1b}\u{7f}", false, "???"),
        ("\u{85}\u{9b}", true, "??"),
        ("café", false, "caf?"),
        ("café", true, "café"),
        ("用户@例子.广告", false, "??@??.??"),
        ("用户@例子.广告", true, "用户@例子.广告"),
    ];
    for (text, utf8, expected) in table {
        assert_eq!(clean(text, utf8), expected, "{text:?} utf8={utf8}");
    }
}

#[test]
fn a_short_field_is_one_line() {
    let mut out = String::new();
    field(&mut out, "Action", "failed");
    field(&mut out, "Status", "5.1.1");
    assert_eq!(out, "Action: failed\r\nStatus: 5.1.1\r\n");
}

/// `name: value` as a reader gets it back: CRLF removed before the folding white space.
fn unfold(folded: &str) -> String {
    folded
        .strip_suffix("\r\n")
        .expect("a field ends in CRLF")
        .replace("\r\n", "")
}

#[test]
fn folding_keeps_lines_short_and_unfolds_to_the_same_value() {
    for seed in 0..200 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let value: Vec<String> = (0..rng.usize(1..60))
            .map(|_| {
                let spaces = if rng.u8(..10) == 0 { "  " } else { " " };
                let word = "w".repeat(rng.usize(0..40));
                format!("{word}{spaces}")
            })
            .collect();
        let value = value.concat();
        let mut out = String::new();
        field(&mut out, "Diagnostic-Code", &value);
        assert_eq!(
            unfold(&out),
            format!("Diagnostic-Code: {value}"),
            "seed {seed}"
        );
        for line in out.split("\r\n") {
            // Runs of spaces are never folded before, so only they may reach past 78.
            assert!(line.trim_end().len() <= 78, "seed {seed}: {line:?}");
            assert!(
                !line.trim().is_empty() || line.is_empty(),
                "seed {seed}: blank line"
            );
        }
    }
}

#[test]
fn a_word_too_long_for_a_line_is_cut_within_the_998_octet_limit() {
    let table: Vec<String> = vec![
        "x".repeat(5000),
        format!("smtp; {}", "é".repeat(2000)),
        format!("a{}b", " ".repeat(3000)),
    ];
    for value in table {
        let mut out = String::new();
        field(&mut out, "Diagnostic-Code", &value);
        for line in out.split("\r\n") {
            assert!(line.len() <= 998, "{} octets", line.len());
        }
        let unfolded = unfold(&out);
        let strip = |text: &str| text.replace(' ', "");
        assert_eq!(strip(&unfolded), strip(&format!("Diagnostic-Code:{value}")));
    }
}

#[test]
fn wrapped_text_keeps_its_words_and_indent() {
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(12);
    let mut out = String::new();
    wrap(&mut out, &text, "    ");
    let lines: Vec<&str> = out
        .strip_suffix("\r\n")
        .expect("CRLF")
        .split("\r\n")
        .collect();
    assert!(lines.len() > 5);
    for line in &lines {
        assert!(line.starts_with("    ") && line.len() <= 78, "{line:?}");
    }
    let words: Vec<&str> = lines
        .iter()
        .flat_map(|line| line.split_whitespace())
        .collect();
    assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
}

#[test]
fn dates_are_rfc_5322_date_times_in_their_own_offset() {
    let table = [
        (
            datetime!(2026-03-03 9:06 UTC),
            "Tue, 03 Mar 2026 09:06:00 +0000",
        ),
        (
            datetime!(2026-03-08 9:00 UTC),
            "Sun, 08 Mar 2026 09:00:00 +0000",
        ),
        (
            datetime!(2024-02-29 23:59:59 -05:30),
            "Thu, 29 Feb 2024 23:59:59 -0530",
        ),
        (
            datetime!(2026-01-01 0:00 -00:45),
            "Thu, 01 Jan 2026 00:00:00 -0045",
        ),
        (
            datetime!(1899-12-31 0:00 +01:00),
            "Sun, 31 Dec 1899 00:00:00 +0100",
        ),
    ];
    for (at, expected) in table {
        assert_eq!(date(at), expected);
    }
}

#[test]
fn the_report_kind_is_the_most_serious_action() {
    let table: Vec<(Vec<Action>, Kind)> = vec![
        (vec![Action::Failed], Kind::Failure),
        (vec![Action::Delivered, Action::Failed], Kind::Failure),
        (vec![Action::Delayed, Action::Failed], Kind::Failure),
        (vec![Action::Delayed], Kind::Delay),
        (vec![Action::Relayed, Action::Delayed], Kind::Delay),
        (vec![Action::Delivered], Kind::Success),
        (vec![Action::Relayed, Action::Expanded], Kind::Success),
        (vec![], Kind::Success),
    ];
    for (actions, kind) in table {
        let recipients: Vec<DsnRecipient<'static>> = actions
            .iter()
            .map(|&action| DsnRecipient {
                action,
                ..failed("bob@example.com")
            })
            .collect();
        assert_eq!(Kind::of(&recipients), kind, "{actions:?}");
    }
}

#[test]
fn only_a_letter_led_name_before_a_semicolon_is_a_type() {
    use super::super::report::split_type;
    let table: Vec<(&str, Option<(&str, &str)>)> = vec![
        ("smtp; 550 5.1.1 gone", Some(("smtp", "550 5.1.1 gone"))),
        ("x-tern;refused", Some(("x-tern", "refused"))),
        ("dns; mx.example.com", Some(("dns", "mx.example.com"))),
        ("550 5.1.1 a; b", None),
        ("550;x", None),
        ("; x", None),
        ("mx.example.com", None),
        ("two words; x", None),
    ];
    for (value, expected) in table {
        assert_eq!(split_type(value), expected, "{value:?}");
    }
}
