//! Sans-IO SMTP server protocol for Tern.
//!
//! The crate turns the bytes a client sends into [`Step`]s for an IO driver
//! and never touches a socket, a clock or a queue itself.
//!
//! Modules:
//! - [`auth`]: SMTP AUTH: the SASL PLAIN and LOGIN exchanges and their replies.
//! - `session`: the state machine ([`Session`], [`SessionConfig`], [`Step`],
//!   [`Verdict`]).
//! - `command`: verbs and the MAIL/RCPT/BDAT argument grammar.
//! - `address`: envelope paths ([`Mailbox`], [`Domain`], [`ReversePath`],
//!   [`ForwardPath`]) per RFC 5321 and RFC 6531.
//! - `params`: ESMTP parameters ([`MailParams`], [`RcptParams`] and friends,
//!   xtext).
//! - `line`: command-line framing with bounded buffering.
//! - `data`: DATA framing, dot-unstuffing and the SMTP-smuggling defences.
//! - `body`: the size-bounded message buffer shared by DATA and BDAT.
//! - `envelope`: what a finished transaction hands over ([`Transaction`],
//!   [`Envelope`], [`Recipient`]).
//! - [`header`]: one field of a message's header section (the `Message-ID` for logs).
//! - `reply`: [`Reply`] and its wire form.
//! - [`proxy`]: the HAProxy PROXY protocol header (v1 and v2), parsed incrementally.
//! - [`client`]: the client side for delivery: reply parsing, EHLO capabilities, commands.
//! - `testing` (tests only): a recording driver and a pseudo-random source.

mod address;
pub mod auth;
mod body;
pub mod client;
mod command;
mod data;
mod envelope;
pub mod header;
mod line;
mod params;
pub mod proxy;
mod reply;
mod session;
#[cfg(test)]
mod testing;

pub use address::{Domain, ForwardPath, Mailbox, ReversePath, helo_is_valid};
pub use command::Verb;
pub use envelope::{Envelope, Recipient, Transaction};
pub use params::{Body, MailParams, Notify, Orcpt, RcptParams, Ret, UnknownValue};
pub use reply::{Refusal, Reply};
pub use session::{AuthPolicy, Session, SessionConfig, Step, TlsState, Verdict};
