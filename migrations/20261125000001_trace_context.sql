-- The W3C trace context of the SMTP transaction that accepted a message (its `traceparent`, then
-- on a second line its `tracestate` if any), so every delivery attempt, on any worker and however
-- late, joins the message's trace. NULL when tracing was off. A notification Tern generates gets
-- the context of the message it reports on.
ALTER TABLE messages ADD COLUMN trace_context text;
