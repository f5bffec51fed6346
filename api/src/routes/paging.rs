//! Paging, the same on every endpoint that lists: `limit` (1-1000) and,
//! when more rows follow, an RFC 8288 `Link: <...>; rel="next"` header
//! whose URL is this request's with the cursor of the next page. Cursors
//! are keyset cursors (the key of the last row returned), never offsets, so
//! rows written meanwhile neither shift nor repeat a page.

use axum::http::{header, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use event_store::LogCursor;
use serde::Serialize;

use crate::error::ApiError;

/// The most rows one request returns (API.md: "Lists are bounded").
pub(crate) const MAX_LIMIT: i64 = 1000;
/// Rows returned when the request does not say (API.md).
pub(crate) const DEFAULT_LIMIT: i64 = 1000;

/// The requested `limit`, or `default`; outside 1..=[`MAX_LIMIT`] is a 400
/// that names the bounds (a silent clamp would hide a client's bug).
pub(crate) fn limit(requested: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match requested {
        None => Ok(default),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        ))),
    }
}

/// What `after` accepts where it is a log cursor (`/orders/{id}/timeline`,
/// `/subscriptions/{name}/parked`): two integers of 1-18 digits.
pub(crate) const LOG_CURSOR_PATTERN: &str = r"^[0-9]{1,18}_[0-9]{1,18}$";
/// `after` of `/inventory/{sku}/history`: the instant in microseconds (signed,
/// at most 16 digits: before the year 2286), then a log cursor.
pub(crate) const HISTORY_AFTER_PATTERN: &str = r"^-?[0-9]{1,16}_[0-9]{1,18}_[0-9]{1,18}$";
/// `after` of `/events`: a position, or the `next` of a page (a log cursor).
pub(crate) const EVENTS_AFTER_PATTERN: &str = r"^([0-9]{1,18}|[0-9]{1,18}_[0-9]{1,18})$";
/// Most digits of an integer in a cursor or position: every such number
/// fits an `i64`.
const MAX_DIGITS: usize = 18;

/// A non-negative integer written as 1-18 ASCII digits, and nothing else
/// (no sign, no spaces): what the patterns above say.
pub(crate) fn digits(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > MAX_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The opaque form of a cursor: its integers joined by `_` (URL-safe, and
/// never mistaken for a bare number). Clients pass it back as they got it.
pub(crate) fn encode(parts: &[i64]) -> String {
    parts
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join("_")
}

/// The integers of a cursor made by [`encode`], if it has `N` of them, each
/// non-negative.
pub(crate) fn decode<const N: usize>(token: &str) -> Option<[i64; N]> {
    let mut parts = [0; N];
    let mut split = token.split('_');
    for part in &mut parts {
        *part = digits(split.next()?)?;
    }
    split.next().is_none().then_some(parts)
}

/// A log cursor as `after` carries it (`/orders/{id}/timeline`,
/// `/subscriptions/{name}/parked`).
pub(crate) fn encode_log_cursor(cursor: LogCursor) -> String {
    encode(&[cursor.transaction_id, cursor.position])
}

pub(crate) fn decode_log_cursor(after: Option<&str>) -> Result<LogCursor, ApiError> {
    let Some(token) = after else {
        return Ok(LogCursor::START);
    };
    match decode::<2>(token) {
        Some([transaction_id, position]) if transaction_id >= 0 && position >= 0 => Ok(LogCursor {
            transaction_id,
            position,
        }),
        _ => Err(ApiError::BadRequest(format!(
            "after must be the cursor of a `Link: rel=\"next\"` URL, got {token:?}"
        ))),
    }
}

/// A page of rows: the body as it always was, plus a `Link` header to the
/// next page when more rows follow.
pub(crate) struct Paged<T> {
    pub body: T,
    pub next: Option<HeaderValue>,
}

impl<T: Serialize> IntoResponse for Paged<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.body).into_response();
        if let Some(link) = self.next {
            response.headers_mut().insert(header::LINK, link);
        }
        response
    }
}

/// `Link: <uri with key=value>; rel="next"`: the request's own path and
/// query, with `key` set to `value` (every other parameter kept as sent).
pub(crate) fn next_link(uri: &Uri, key: &str, value: &str) -> Option<HeaderValue> {
    let mut query: Vec<String> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(key))
        .map(str::to_owned)
        .collect();
    // Cursor values are digits, `_` and `-`: nothing to escape.
    query.push(format!("{key}={value}"));
    HeaderValue::from_str(&format!(
        "<{}?{}>; rel=\"next\"",
        uri.path(),
        query.join("&")
    ))
    .ok()
}

/// Splits one extra row fetched beyond `limit` off `rows`: whether more
/// rows follow this page.
pub(crate) fn more_follow<T>(rows: &mut Vec<T>, limit: i64) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_it_was_written() {
        let token = encode(&[42, 7, 3]);
        assert_eq!(token, "42_7_3");
        assert_eq!(decode::<3>(&token), Some([42, 7, 3]));
        assert_eq!(decode::<2>(&token), None);
        assert_eq!(decode::<3>("42_7"), None);
        assert_eq!(decode::<1>("x"), None);
    }

    #[test]
    fn cursors_and_positions_are_exactly_what_the_documented_patterns_allow() {
        // What the OpenAPI patterns exclude, the server refuses too.
        for refused in [
            "-3",
            "+3",
            " 3",
            "3 ",
            "",
            "1234567890123456789",
            "3_-1",
            "3__1",
        ] {
            assert_eq!(decode::<2>(&format!("1_{refused}")), None, "{refused:?}");
            assert_eq!(digits(refused), None, "{refused:?}");
        }
        assert_eq!(digits("000000000000000007"), Some(7));
        assert_eq!(digits("999999999999999999"), Some(999_999_999_999_999_999));
    }

    #[test]
    fn the_next_link_keeps_the_other_parameters_and_replaces_the_cursor() {
        let uri: Uri = "/inventory/A/history?from=2026-01-01T00%3A00%3A00Z&after=1_2_3&limit=5"
            .parse()
            .expect("uri");
        let link = next_link(&uri, "after", "4_5_6").expect("link");
        assert_eq!(
            link,
            "</inventory/A/history?from=2026-01-01T00%3A00%3A00Z&limit=5&after=4_5_6>; rel=\"next\""
        );
    }

    #[test]
    fn a_limit_outside_its_bounds_is_refused_with_them() {
        assert_eq!(limit(None, 100).ok(), Some(100));
        assert_eq!(limit(Some(1000), 100).ok(), Some(1000));
        for wrong in [0, -1, 1001] {
            let Err(ApiError::BadRequest(detail)) = limit(Some(wrong), 100) else {
                panic!("limit {wrong} accepted");
            };
            assert!(detail.contains("1000"), "{detail}");
        }
    }
}
