//! Header-field text: cleaning values that came from outside, folding, and dates.

use time::OffsetDateTime;

/// Lines are folded before this many octets when a space allows it (RFC 5322 2.1.1).
const SOFT_LIMIT: usize = 78;
/// A run of text without spaces is cut into pieces of at most this many octets, so a line stays
/// within RFC 5322's 998 even after a field name or an indent.
const CHUNK: usize = 900;

/// `text` made safe for a header field or a line of the report: line breaks and tabs become
/// spaces, other control characters `?`, and so does any non-ASCII character unless `utf8`
/// (RFC 6532 header fields, only in an internationalised report). Addresses, ENVIDs and remote
/// replies all come from outside; a CR or LF left in them would start a header of their choosing.
pub(super) fn clean(text: &str, utf8: bool) -> String {
    text.chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '?',
            c if !c.is_ascii() && !utf8 => '?',
            c => c,
        })
        .collect()
}

/// Appends `name: value` and CRLF, folded at spaces. `value` must already be clean. Spaces are
/// kept as they are, so unfolding gives the value back, except where a run of more than
/// [`CHUNK`] octets without a space had to be cut (a space appears) or hundreds of spaces in a
/// row had to be shortened.
pub(super) fn field(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    let mut first = true;
    for word in words(value) {
        // Folding before an empty word would leave a line of nothing but white space, so a
        // run of spaces long enough to threaten the line limit is shortened instead.
        if word.is_empty() && line >= CHUNK {
            continue;
        }
        let wraps = !word.is_empty() && !first && line + 1 + word.len() > SOFT_LIMIT;
        if wraps {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(word);
        line += 1 + word.len();
        first = false;
    }
    out.push_str("\r\n");
}

/// Appends `text` as lines starting with `indent`, wrapped at spaces, each ending in CRLF.
pub(super) fn wrap(out: &mut String, text: &str, indent: &str) {
    out.push_str(indent);
    let mut line = indent.len();
    let mut first = true;
    for word in words(text).filter(|word| !word.is_empty()) {
        if !first && line + 1 + word.len() > SOFT_LIMIT {
            out.push_str("\r\n");
            out.push_str(indent);
            line = indent.len();
        } else if !first {
            out.push(' ');
            line += 1;
        }
        out.push_str(word);
        line += word.len();
        first = false;
    }
    out.push_str("\r\n");
}

/// The words of `text` between single spaces (empty between two spaces), with any word longer
/// than [`CHUNK`] cut at character boundaries.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(' ').flat_map(chunks)
}

/// `word` in pieces of at most [`CHUNK`] octets, cut at character boundaries; an empty word is
/// one empty piece.
fn chunks(word: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(word);
    std::iter::from_fn(move || {
        let text = rest?;
        if text.len() <= CHUNK {
            rest = None;
            return Some(text);
        }
        let mut cut = CHUNK;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, tail) = text.split_at(cut);
        rest = Some(tail);
        Some(piece)
    })
}

/// An RFC 5322 3.3 date-time: `Tue, 03 Mar 2026 09:05:00 +0100`. Written out here rather than
/// with `time`'s RFC 2822 format, which fails for years before 1900 and would need a made-up
/// fallback.
pub(super) fn date(at: OffsetDateTime) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let day = DAYS[usize::from(at.weekday().number_days_from_monday())];
    let month = MONTHS[usize::from(u8::from(at.month()) - 1)];
    let offset = at.offset();
    let sign = if offset.is_negative() { '-' } else { '+' };
    let (hours, minutes, _) = offset.as_hms();
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        at.day(),
        at.year(),
        at.hour(),
        at.minute(),
        at.second(),
        hours.unsigned_abs(),
        minutes.unsigned_abs(),
    )
}
