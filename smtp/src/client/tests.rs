//! Table tests for the client side: replies fed whole, split at every byte and byte by byte;
//! EHLO keywords; command bytes; and dot-stuffing checked against the server's own unstuffing.

mod capabilities;
mod command;
mod dot_stuff;
mod reply;

use super::*;

/// `input` whole, in two pieces split at every position, and one byte at a time.
fn splits(input: &[u8]) -> Vec<Vec<&[u8]>> {
    let mut ways = vec![vec![input]];
    for at in 1..input.len() {
        let (a, b) = input.split_at(at);
        ways.push(vec![a, b]);
    }
    ways.push(input.chunks(1).collect());
    ways
}
