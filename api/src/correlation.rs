//! `X-Correlation-Id`: the caller's id for a flow, kept exactly as sent
//! when it has the shape of one (1 to 128 visible ASCII characters, see
//! [`event_store::CorrelationId`]): echoed in the response and stored in
//! the metadata of every event the request causes. Anything else (empty,
//! too long, spaces or other invisible bytes, the header given twice) is
//! replaced by a generated UUID, and the response says so in
//! `X-Correlation-Id-Replaced: <reason>`. Without the header, an id is
//! generated and nothing is said: nothing was replaced.

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

use crate::error::ApiError;

pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");
pub const REPLACED_HEADER: HeaderName = HeaderName::from_static("x-correlation-id-replaced");

/// The request's correlation id, for handlers. The observing middleware
/// sets it (see [`Correlation::take`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub event_store::CorrelationId);

impl<S: Send + Sync> FromRequestParts<S> for CorrelationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // A router used without the middleware still gets a fresh id
        // rather than an error.
        Ok(parts
            .extensions
            .get::<CorrelationId>()
            .cloned()
            .unwrap_or_else(|| CorrelationId(event_store::CorrelationId::generate())))
    }
}

/// What the middleware decided for one request.
#[derive(Debug, Clone)]
pub struct Correlation {
    pub id: event_store::CorrelationId,
    /// Why the caller's value was not kept, when it was not.
    pub replaced: Option<&'static str>,
}

impl Correlation {
    /// The request's id from its header (or a generated one), recorded in
    /// the request for the handlers.
    pub fn take(request: &mut Request) -> Correlation {
        let correlation = Correlation::of(request.headers().get_all(&CORRELATION_HEADER));
        request
            .extensions_mut()
            .insert(CorrelationId(correlation.id.clone()));
        correlation
    }

    fn of(values: axum::http::header::GetAll<'_, HeaderValue>) -> Correlation {
        let mut values = values.iter();
        let (first, second) = (values.next(), values.next());
        let outcome = match (first, second) {
            (None, _) => return Correlation::generated(None),
            (Some(_), Some(_)) => Err("repeated"),
            (Some(value), None) => event_store::CorrelationId::from_bytes(value.as_bytes())
                .map_err(|invalid| invalid.reason()),
        };
        match outcome {
            Ok(id) => Correlation { id, replaced: None },
            Err(reason) => Correlation::generated(Some(reason)),
        }
    }

    fn generated(replaced: Option<&'static str>) -> Correlation {
        Correlation {
            id: event_store::CorrelationId::generate(),
            replaced,
        }
    }

    /// Echoes the id in the response, and why it is not the caller's.
    pub fn answer(&self, response: &mut Response) {
        let headers = response.headers_mut();
        // Visible ASCII is always a valid header value.
        if let Ok(value) = HeaderValue::from_str(self.id.as_str()) {
            headers.insert(CORRELATION_HEADER, value);
        }
        if let Some(reason) = self.replaced {
            headers.insert(REPLACED_HEADER, HeaderValue::from_static(reason));
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn correlation(values: &[&[u8]]) -> Correlation {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                CORRELATION_HEADER,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
        }
        Correlation::of(headers.get_all(CORRELATION_HEADER))
    }

    #[test]
    fn a_visible_ascii_id_is_kept_exactly_as_sent() {
        let kept = correlation(&[b"order-import-42/abc"]);
        assert_eq!(kept.id.as_str(), "order-import-42/abc");
        assert_eq!(kept.replaced, None);
    }

    #[test]
    fn other_values_are_replaced_by_a_uuid_with_the_reason() {
        let long = [b'x'; 129];
        for (value, reason) in [
            (&b""[..], "empty"),
            (&long[..], "too-long"),
            (b"two words", "not-visible-ascii"),
            (b"caf\xc3\xa9", "not-visible-ascii"),
        ] {
            let replaced = correlation(&[value]);
            assert_eq!(replaced.replaced, Some(reason), "{value:?}");
            assert!(replaced.id.as_uuid().is_some());
        }
        assert_eq!(correlation(&[b"a", b"b"]).replaced, Some("repeated"));
    }

    #[test]
    fn without_the_header_an_id_is_generated_and_nothing_is_said() {
        let generated = correlation(&[]);
        assert_eq!(generated.replaced, None);
        assert!(generated.id.as_uuid().is_some());
    }
}
