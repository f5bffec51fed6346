//! `/console/session`: log in with the admin token, ask whether logged in,
//! log out.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::ConsoleError;
use crate::session::set_cookie;
use crate::ConsoleState;

#[derive(Deserialize)]
pub struct LogIn {
    token: String,
}

#[derive(Serialize)]
pub struct SessionBody {
    /// Send as `X-Console-Csrf` with every request that changes state.
    csrf: String,
}

/// Checks the token against an admin endpoint of the API, so the console
/// accepts exactly the tokens the API accepts, with the API's refusals.
pub async fn log_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ConsoleError> {
    // A JSON body cannot come from a cross-site form without a CORS
    // preflight: nobody can log a victim's browser in to their own session.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !is_json {
        return Err(ConsoleError::BadRequest(
            "log in with a JSON body {\"token\": \"...\"}".into(),
        ));
    }
    let LogIn { token } = serde_json::from_slice(&body).map_err(|error| {
        ConsoleError::BadRequest(format!("log in with {{\"token\": \"...\"}}: {error}"))
    })?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ConsoleError::BadRequest("the token is empty".into()));
    }
    state.api.get("/subscriptions", Some(token)).await?.ok()?;
    let (id, session) = state.sessions.open(token);
    let mut response = (
        StatusCode::CREATED,
        Json(SessionBody {
            csrf: session.csrf.to_string(),
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(Some(&id)));
    Ok(response)
}

/// The session's CSRF token, or 401 when there is no session.
pub async fn current(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Json<SessionBody>, ConsoleError> {
    let (_, session) = state.sessions.of(&headers)?;
    Ok(Json(SessionBody {
        csrf: session.csrf.to_string(),
    }))
}

pub async fn log_out(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let (id, session) = state.sessions.of(&headers)?;
    crate::session::check_csrf(&session, &headers)?;
    state.sessions.close(&id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(None));
    Ok(response)
}
