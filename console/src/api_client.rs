//! Calls from the console to the API's own router, in process: what the
//! console shows and does goes through the same handlers, checks and
//! problem answers as any other client's request.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, Method, Request, Response, StatusCode};
use axum::Router;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::error::ConsoleError;

/// Bodies read from the API are bounded like requests to it.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// `/metrics` and a page of 1000 events are larger than a request may be.
const ANSWER_LIMIT: usize = 64 * 1024 * 1024;

#[derive(Clone)]
pub struct ApiClient {
    router: Router,
}

/// An answer of the API, its body read.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Bytes,
}

impl ApiClient {
    pub fn new(router: Router) -> Self {
        ApiClient { router }
    }

    /// Sends `request` to the API with `token` as its bearer token.
    pub async fn send(
        &self,
        mut request: Request<Body>,
        token: Option<&str>,
    ) -> Result<Response<Body>, ConsoleError> {
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ConsoleError::Forbidden("the token is not a valid header".into()))?;
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        // The router's error type is Infallible.
        Ok(self
            .router
            .clone()
            .oneshot(request)
            .await
            .unwrap_or_else(|never| match never {}))
    }

    /// `GET path_and_query` with its body read.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Answer, ConsoleError> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(Body::empty())
            .map_err(|_| ConsoleError::BadRequest(format!("not a valid path: {path:?}")))?;
        let response = self.send(request, token).await?;
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, ANSWER_LIMIT)
            .await
            .map_err(|_| ConsoleError::Api {
                status: StatusCode::BAD_GATEWAY,
                detail: format!("the answer of {path} could not be read"),
            })?;
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    /// `GET path` as JSON of type `T`; an error status becomes
    /// [`ConsoleError::Api`] with the API's problem detail.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<(T, Option<String>), ConsoleError> {
        let answer = self.get(path, token).await?;
        answer.ok()?;
        let next = answer.next_link();
        let value = serde_json::from_slice(&answer.body).map_err(|source| {
            ConsoleError::UnexpectedAnswer {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok((value, next))
    }
}

impl Answer {
    /// Ok for a 2xx, else the API's problem as a [`ConsoleError::Api`].
    pub fn ok(&self) -> Result<(), ConsoleError> {
        if self.status.is_success() {
            return Ok(());
        }
        let detail = serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|problem| problem["detail"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("status {}", self.status));
        Err(ConsoleError::Api {
            status: self.status,
            detail,
        })
    }

    /// The URL of a `Link: <...>; rel="next"` header.
    pub fn next_link(&self) -> Option<String> {
        let link = self.headers.get(header::LINK)?.to_str().ok()?;
        let (url, rest) = link.trim().strip_prefix('<')?.split_once('>')?;
        rest.contains("rel=\"next\"").then(|| url.to_owned())
    }
}
