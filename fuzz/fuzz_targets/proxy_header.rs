//! The PROXY header parser over arbitrary bytes fed in arbitrary pieces, as the ingress feeds it.
//!
//! The first input byte seeds where the pieces end; the rest is the connection's first bytes.
//! Checked: no panic, never more consumed than given, the same answer however the bytes arrive,
//! and a `NeedMore(n)` never asks for bytes beyond the header it ends up accepting.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::proxy::{Parse, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, input)) = data.split_first() else {
        return;
    };
    let whole = parse(input);
    assert_eq!(whole, parse(input), "deterministic");
    if let Parse::Header(header) = whole {
        assert!(header.consumed >= 1 && header.consumed <= input.len());
    }

    // Every prefix agrees with the whole input.
    let mut step = usize::from(seed % 23) + 1;
    let mut end = 0;
    while end <= input.len() {
        match parse(&input[..end]) {
            Parse::Header(header) => {
                assert!(header.consumed <= end);
                assert_eq!(
                    Parse::Header(header),
                    whole,
                    "a longer input changed the header"
                );
            }
            Parse::Invalid(_) => {
                assert!(
                    matches!(whole, Parse::Invalid(_)),
                    "more bytes made it valid"
                );
            }
            Parse::NeedMore(n) => {
                assert!(n >= 1);
                if let Parse::Header(header) = whole {
                    assert!(
                        end + n <= header.consumed,
                        "asked for bytes past the header"
                    );
                }
            }
        }
        end += step;
        step = (step * 7 + usize::from(seed)) % 31 + 1;
    }

    // The ingress's way: read exactly what the parser asks for.
    let mut have = 0;
    loop {
        match parse(&input[..have]) {
            Parse::NeedMore(n) if have + n <= input.len() => have += n,
            Parse::NeedMore(_) => {
                assert!(matches!(whole, Parse::NeedMore(_) | Parse::Invalid(_)));
                break;
            }
            // Which reason an invalid header gets may depend on how much of it was seen.
            Parse::Invalid(_) => {
                assert!(
                    matches!(whole, Parse::Invalid(_)),
                    "invalid only when read exactly"
                );
                break;
            }
            header => {
                assert_eq!(header, whole);
                break;
            }
        }
    }
});
