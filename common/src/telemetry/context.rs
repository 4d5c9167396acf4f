//! W3C Trace Context (`traceparent`, `tracestate`) as Tern carries it: stored with a message,
//! sent in JetStream notice headers, and read back by the worker that delivers the message, so
//! every attempt joins the trace of the transaction that accepted it.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::names;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// One span's identity in W3C form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context of `span`, or `None` when it is not traced (tracing off, span disabled).
    /// Unsampled spans have a context too: their `traceparent` says so, and parent-based
    /// samplers downstream keep the decision.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        if span.is_disabled() {
            return None;
        }
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Self::from_headers(|name| carrier.get(name).map(String::as_str))
    }

    /// Reads a context from headers by name (`traceparent`, `tracestate`); `None` when the
    /// `traceparent` is missing or malformed.
    pub fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Option<Self> {
        let traceparent = get(TRACEPARENT)?.trim();
        let context = Self {
            traceparent: traceparent.to_owned(),
            tracestate: get(TRACESTATE)
                .map(str::trim)
                .filter(|state| !state.is_empty())
                .map(str::to_owned),
        };
        context.is_valid().then_some(context)
    }

    /// As stored in `messages.trace_context`: the `traceparent`, then on a second line the
    /// `tracestate` if there is one.
    pub fn to_stored(&self) -> String {
        match &self.tracestate {
            Some(state) => format!("{}\n{state}", self.traceparent),
            None => self.traceparent.clone(),
        }
    }

    /// The inverse of [`TraceContext::to_stored`]; `None` for anything malformed.
    pub fn from_stored(text: &str) -> Option<Self> {
        let (traceparent, tracestate) = match text.split_once('\n') {
            Some((parent, state)) => (parent, Some(state)),
            None => (text, None),
        };
        Self::from_headers(|name| match name {
            TRACEPARENT => Some(traceparent),
            TRACESTATE => tracestate,
            _ => None,
        })
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or("")
    }

    fn otel_context(&self) -> opentelemetry::Context {
        let mut carrier = HashMap::from([(TRACEPARENT.to_owned(), self.traceparent.clone())]);
        if let Some(state) = &self.tracestate {
            carrier.insert(TRACESTATE.to_owned(), state.clone());
        }
        TraceContextPropagator::new().extract(&carrier)
    }

    fn is_valid(&self) -> bool {
        self.otel_context().span().span_context().is_valid()
    }

    /// Makes `span` a child of this context. Call before the span is entered; a span already
    /// started keeps its parent (and this returns `false`).
    pub fn adopt(&self, span: &tracing::Span) -> bool {
        !span.is_disabled() && span.set_parent(self.otel_context()).is_ok()
    }
}

/// Records the trace id of `span` in its `trace_id` field when the span is sampled, so the JSON
/// log lines written inside it name the trace.
pub fn record_trace_id(span: &tracing::Span) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() && span_context.is_sampled() {
        span.record(names::TRACE_ID, span_context.trace_id().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn stored_contexts_round_trip_with_and_without_tracestate() {
        for tracestate in [None, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")] {
            let context = TraceContext {
                traceparent: PARENT.to_owned(),
                tracestate: tracestate.map(str::to_owned),
            };
            let stored = context.to_stored();
            assert_eq!(TraceContext::from_stored(&stored), Some(context.clone()));
            assert_eq!(context.trace_id(), "0af7651916cd43dd8448eb211c80319c");
        }
    }

    #[test]
    fn malformed_contexts_are_refused() {
        for text in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "xx-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "not a trace context at all",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01\nstate=1",
        ] {
            assert_eq!(TraceContext::from_stored(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_disabled_span_has_no_context() {
        assert_eq!(TraceContext::of_span(&tracing::Span::none()), None);
    }
}
