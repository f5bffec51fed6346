//! problem+json (RFC 9457) responses, in either of the two styles the
//! services use.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// How a service names its problem types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemTypes {
    /// `about:blank` for every problem, the title saying what went wrong.
    AboutBlank,
    /// One type per status, `<base><reason-phrase-slug>` (e.g.
    /// `…/service-unavailable`), titled with the status's reason phrase so
    /// that a type always has the same title.
    PerStatus { base: &'static str },
}

impl ProblemTypes {
    fn type_and_title(self, status: StatusCode, title: &str) -> (String, String) {
        match self {
            ProblemTypes::AboutBlank => ("about:blank".to_owned(), title.to_owned()),
            ProblemTypes::PerStatus { base } => {
                let reason = status.canonical_reason().unwrap_or("Error");
                let slug = reason.to_ascii_lowercase().replace(' ', "-");
                (format!("{base}{slug}"), reason.to_owned())
            }
        }
    }
}

/// The problem+json response for `status`. `title` is used where the style
/// takes one ([`ProblemTypes::AboutBlank`]).
pub fn problem(
    types: ProblemTypes,
    status: StatusCode,
    title: &str,
    detail: impl Into<String>,
) -> Response {
    let (problem_type, title) = types.type_and_title(status, title);
    let body = json!({
        "type": problem_type,
        "title": title,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    let mut response = (status, body.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_status_types_carry_the_reason_phrase_as_title() {
        let types = ProblemTypes::PerStatus {
            base: "https://example.test/problems/",
        };
        let (problem_type, title) =
            types.type_and_title(StatusCode::SERVICE_UNAVAILABLE, "ignored");
        assert_eq!(
            problem_type,
            "https://example.test/problems/service-unavailable"
        );
        assert_eq!(title, "Service Unavailable");
    }

    #[test]
    fn about_blank_keeps_the_given_title() {
        let (problem_type, title) =
            ProblemTypes::AboutBlank.type_and_title(StatusCode::PAYLOAD_TOO_LARGE, "Too big");
        assert_eq!(problem_type, "about:blank");
        assert_eq!(title, "Too big");
    }
}
