//! `traceparent`: a caller that traces its requests (W3C trace context)
//! gets the request's span, and through event metadata all the work the
//! request causes, in its own trace. A request without one starts a new
//! trace. An invalid value, or the header given more than once, is ignored
//! as the W3C recommendation says: tracing never fails a request.

use axum::http::{HeaderMap, HeaderName};
use event_store::Traceparent;

pub const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static(event_store::TRACEPARENT);

/// Makes `span` (the request's, not yet entered) a child of the caller's
/// trace context, when the request carries exactly one valid one.
pub(crate) fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if let Some(traceparent) = incoming(headers) {
        traceparent.make_parent_of(span);
    }
}

fn incoming(headers: &HeaderMap) -> Option<Traceparent> {
    let mut values = headers.get_all(&TRACEPARENT_HEADER).iter();
    let (first, second) = (values.next(), values.next());
    match (first, second) {
        (Some(value), None) => Traceparent::parse(value.to_str().ok()?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                TRACEPARENT_HEADER,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        headers
    }

    #[test]
    fn one_valid_traceparent_is_taken() {
        assert_eq!(
            incoming(&headers(&[VALID.as_bytes()])),
            Traceparent::parse(VALID).ok()
        );
    }

    #[test]
    fn absent_invalid_or_repeated_values_are_ignored() {
        assert_eq!(incoming(&headers(&[])), None);
        for invalid in [
            &b""[..],
            b"garbage",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-0000000000000000-01",
            b"caf\xc3\xa9",
        ] {
            assert_eq!(incoming(&headers(&[invalid])), None, "{invalid:?}");
        }
        assert_eq!(
            incoming(&headers(&[VALID.as_bytes(), VALID.as_bytes()])),
            None
        );
    }
}
