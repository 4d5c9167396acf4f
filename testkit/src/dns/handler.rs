//! The catch-all request handler behind [`super::TestDns`].

use std::future::Future;
use std::pin::Pin;

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::SOA;
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::{Records, Shared, lock};

pub struct Handler {
    records: Shared,
    /// Sent with negative answers, as an authoritative server does; its minimum of 0 keeps
    /// resolvers from caching "no such name" across a test that adds the name later.
    soa: Record,
}

impl Handler {
    pub(super) fn new(records: Shared) -> Self {
        let soa = SOA::new(
            Name::from_ascii("ns.test.").unwrap_or_else(|_| Name::root()),
            Name::from_ascii("hostmaster.test.").unwrap_or_else(|_| Name::root()),
            1,
            3600,
            600,
            86400,
            0,
        );
        Self {
            records,
            soa: Record::from_rdata(Name::root(), 0, RData::SOA(soa)),
        }
    }

    async fn respond<R: ResponseHandler>(&self, request: &Request, mut handle: R) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let (code, answers) = match request.request_info() {
            Ok(info) if request.metadata.op_code == OpCode::Query => {
                // Cloned out so the lock is never held across the send below.
                answer(
                    &lock(&self.records),
                    info.query.name(),
                    info.query.query_type(),
                )
            }
            Ok(_) => (ResponseCode::NotImp, Vec::new()),
            Err(_) => (ResponseCode::FormErr, Vec::new()),
        };
        metadata.authoritative = code != ResponseCode::ServFail;
        metadata.response_code = code;
        let negative =
            answers.is_empty() && matches!(code, ResponseCode::NoError | ResponseCode::NXDomain);
        let soa = negative.then_some(&self.soa);
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            std::iter::empty(),
            soa,
            std::iter::empty(),
        );
        match handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => {
                // The client is gone; report what we meant to say.
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// What the table says about one question: SERVFAIL when the name is marked, its records of
/// the type asked (maybe none: NODATA) when the name exists, NXDOMAIN otherwise. A name with no
/// records of its own but records below it exists (an empty non-terminal, RFC 8020).
fn answer(records: &Records, name: &LowerName, kind: RecordType) -> (ResponseCode, Vec<Record>) {
    if records.servfail.contains(name) {
        return (ResponseCode::ServFail, Vec::new());
    }
    if let Some(own) = records.by_name.get(name) {
        let matching = own
            .iter()
            .filter(|record| kind == RecordType::ANY || record.record_type() == kind)
            .cloned()
            .collect();
        return (ResponseCode::NoError, matching);
    }
    if records.by_name.keys().any(|owner| name.zone_of(owner)) {
        return (ResponseCode::NoError, Vec::new());
    }
    (ResponseCode::NXDomain, Vec::new())
}

// Written out rather than with `#[async_trait]` (the trait's own macro) so testkit needs no
// extra dependency; the signature is what that macro generates.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}
