//! The SMTP AUTH decoder over arbitrary client input: the first line is the `AUTH` argument, each
//! further line answers the last challenge.
//!
//! Checked: no panic; every error has its reply; challenges are 334; credentials stay within the
//! advertised bounds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tern_smtp::auth::{self, MAX_LOGIN, MAX_PASSWORD, Progress};

fuzz_target!(|data: &[u8]| {
    let mut lines = data
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    let Some(argument) = lines.next() else {
        return;
    };
    let mut progress = auth::start(&String::from_utf8_lossy(argument));
    loop {
        match progress {
            Err(error) => {
                let reply = error.reply();
                assert!(reply.code >= 400, "{error:?}");
                return;
            }
            Ok(Progress::Done(credentials)) => {
                assert!(credentials.login().len() <= MAX_LOGIN);
                assert!(credentials.password().len() <= MAX_PASSWORD);
                return;
            }
            Ok(Progress::Challenge { exchange, reply }) => {
                assert_eq!(reply.code, 334);
                let Some(line) = lines.next() else { return };
                progress = exchange.respond(line);
            }
        }
    }
});
