//! The pure parts of the sink: matching rules, parsing command arguments, formatting replies.

/// Whether a rule pattern applies to an address: `local@` by local part, `@domain` by domain,
/// otherwise the whole address; case-insensitive.
pub(super) fn matches(pattern: &str, address: &str) -> bool {
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    if let Some(wanted) = pattern.strip_suffix('@') {
        local.eq_ignore_ascii_case(wanted)
    } else if let Some(wanted) = pattern.strip_prefix('@') {
        domain.eq_ignore_ascii_case(wanted)
    } else {
        address.eq_ignore_ascii_case(pattern)
    }
}

/// The reply of the first rule matching `address`.
pub(super) fn pick<'a>(rules: &'a [(String, String)], address: &str) -> Option<&'a str> {
    rules
        .iter()
        .find(|(pattern, _)| matches(pattern, address))
        .map(|(_, reply)| reply.as_str())
}

/// Wire form of a reply text: `\n` separates lines, all but the last get `-` after the code.
pub(super) fn format_reply(text: &str) -> Vec<u8> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let last = index + 1 == lines.len();
        match (line.get(..3), line.get(4..)) {
            (Some(code), rest) if !last => {
                out.extend_from_slice(format!("{code}-{}\r\n", rest.unwrap_or("")).as_bytes());
            }
            _ => out.extend_from_slice(format!("{line}\r\n").as_bytes()),
        }
    }
    out
}

/// Whether a reply text means success.
pub(super) fn is_positive(reply: &str) -> bool {
    reply.starts_with('2')
}

/// Splits `FROM:<a@b> SIZE=10` (after the verb) into the path and its parameters. `keyword` is
/// `FROM:` or `TO:`; a space after the colon is tolerated, the angle brackets are required.
pub(super) fn path_and_params(argument: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    let params = inner[end + 1..]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    Some((inner[..end].to_owned(), params))
}

/// The value of `key` among `KEY=value` parameters, case-insensitive on the key.
pub(super) fn param<'a>(params: &'a [String], key: &str) -> Option<&'a str> {
    params.iter().find_map(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p.as_str(), ""));
        name.eq_ignore_ascii_case(key).then_some(value)
    })
}

/// The first parameter whose keyword is not in `allowed`, if any.
pub(super) fn unexpected<'a>(params: &'a [String], allowed: &[&str]) -> Option<&'a str> {
    params.iter().map(String::as_str).find(|p| {
        let name = p.split_once('=').map_or(*p, |(name, _)| name);
        !allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_local_part_domain_or_whole_address() {
        let cases = [
            ("defer@", "Defer@example.test", true),
            ("defer@", "deferred@example.test", false),
            ("@example.test", "a@EXAMPLE.test", true),
            ("@example.test", "a@sub.example.test", false),
            ("a@example.test", "A@example.test", true),
            ("a@example.test", "b@example.test", false),
        ];
        for (pattern, address, expected) in cases {
            assert_eq!(
                matches(pattern, address),
                expected,
                "{pattern} vs {address}"
            );
        }
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = vec![
            ("x@".to_owned(), "550 first".to_owned()),
            ("@example.test".to_owned(), "451 second".to_owned()),
        ];
        assert_eq!(pick(&rules, "x@example.test"), Some("550 first"));
        assert_eq!(pick(&rules, "y@example.test"), Some("451 second"));
        assert_eq!(pick(&rules, "y@other.test"), None);
    }

    #[test]
    fn multi_line_replies_get_continuation_marks() {
        assert_eq!(format_reply("250 ok"), b"250 ok\r\n");
        assert_eq!(
            format_reply("451 4.3.0 a\n451 4.3.0 b"),
            b"451-4.3.0 a\r\n451 4.3.0 b\r\n"
        );
    }

    #[test]
    fn paths_and_parameters_are_split() {
        assert_eq!(
            path_and_params("FROM:<a@b.test> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some((
                "a@b.test".to_owned(),
                vec!["SIZE=10".to_owned(), "BODY=8BITMIME".to_owned()]
            ))
        );
        assert_eq!(
            path_and_params("to: <>", "TO:"),
            Some((String::new(), vec![]))
        );
        assert_eq!(path_and_params("TO:a@b.test", "TO:"), None);
        assert_eq!(path_and_params("FROM:<a@b.test>", "TO:"), None);
    }

    #[test]
    fn parameters_are_found_by_keyword() {
        let params = vec!["RET=HDRS".to_owned(), "SMTPUTF8".to_owned()];
        assert_eq!(param(&params, "ret"), Some("HDRS"));
        assert_eq!(param(&params, "SMTPUTF8"), Some(""));
        assert_eq!(param(&params, "ENVID"), None);
        assert_eq!(unexpected(&params, &["RET"]), Some("SMTPUTF8"));
        assert_eq!(unexpected(&params, &["ret", "smtputf8"]), None);
    }
}
