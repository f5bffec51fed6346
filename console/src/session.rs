//! Console sessions: the admin token, given once at log-in, is kept on the
//! server and named by an HTTP-only, `SameSite=Strict` cookie.
//!
//! Why a cookie and not sessionStorage: a script on the page (an injected
//! one included) can read sessionStorage but never an HTTP-only cookie, so
//! the token cannot leak from the page; and `EventSource`, which carries
//! the live updates, cannot send an `Authorization` header but does send
//! cookies. The price of ambient credentials is cross-site request
//! forgery, closed twice: the browser does not send a `Strict` cookie on
//! any cross-site request, and every state-changing request must also
//! carry the session's CSRF token in a header, which a cross-site page can
//! neither read nor send without a CORS preflight this server never
//! grants.
//!
//! Sessions live in this process's memory: they end with it, and behind a
//! load balancer several API processes need sticky sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::error::ConsoleError;

pub const COOKIE: &str = "orderstream_console";
pub const CSRF_HEADER: &str = "x-console-csrf";
/// A session ends this long after log-in, whatever its use.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; the oldest goes first.
const MAX_SESSIONS: usize = 1024;

#[derive(Clone)]
pub struct Session {
    /// Sent as `Authorization: Bearer` on every call to the API.
    pub token: Arc<str>,
    pub csrf: Arc<str>,
    started: Instant,
}

#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Session>>>,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Sessions {
    /// Opens a session for a token the API accepted; returns its id.
    pub fn open(&self, token: &str) -> (String, Session) {
        let id = random_hex();
        let session = Session {
            token: token.into(),
            csrf: random_hex().into(),
            started: Instant::now(),
        };
        let mut sessions = self.lock();
        sessions.retain(|_, session| session.started.elapsed() < LIFETIME);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.started)
                .map(|(id, _)| id.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The session the request's cookie names, if it is still open.
    pub fn of(&self, headers: &HeaderMap) -> Result<(String, Session), ConsoleError> {
        let id = cookie_value(headers).ok_or(ConsoleError::NoSession)?;
        self.of_id(&id)
    }

    /// The open session `id`.
    pub fn of_id(&self, id: &str) -> Result<(String, Session), ConsoleError> {
        self.lock()
            .get(id)
            .filter(|session| session.started.elapsed() < LIFETIME)
            .cloned()
            .map(|session| (id.to_owned(), session))
            .ok_or(ConsoleError::NoSession)
    }

    /// The session, for a request that changes state: it must carry the
    /// session's CSRF token too.
    pub fn of_state_changing(&self, headers: &HeaderMap) -> Result<Session, ConsoleError> {
        let (_, session) = self.of(headers)?;
        check_csrf(&session, headers)?;
        Ok(session)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves the map consistent (every
        // change is one call), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub fn check_csrf(session: &Session, headers: &HeaderMap) -> Result<(), ConsoleError> {
    let given = headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if bool::from(given.ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(format!(
            "a console request that changes state must carry the session's CSRF token in \
             {CSRF_HEADER}"
        )))
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// `Set-Cookie` for a new session (or, with `None`, one that removes it).
pub fn set_cookie(id: Option<&str>) -> HeaderValue {
    let mut cookie = Cookie::build((COOKIE, id.unwrap_or("").to_owned()))
        .path("/console")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(match id {
            Some(_) => LIFETIME.as_secs() as i64,
            None => 0,
        }))
        .build();
    if id.is_none() {
        cookie.make_removal();
    }
    // The cookie's text is ours: a hex id and fixed attributes.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {COOKIE}={id}")).expect("header"),
        );
        headers
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_gone_after_closing() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open("s3cret");
        let (found, found_session) = sessions.of(&with_cookie(&id)).expect("open session");
        assert_eq!(found, id);
        assert_eq!(&*found_session.token, "s3cret");
        assert_eq!(found_session.csrf, session.csrf);
        sessions.close(&id);
        assert!(matches!(
            sessions.of(&with_cookie(&id)),
            Err(ConsoleError::NoSession)
        ));
        assert!(matches!(
            sessions.of(&with_cookie("not-a-session")),
            Err(ConsoleError::NoSession)
        ));
    }

    #[test]
    fn a_state_changing_request_needs_the_csrf_token() {
        let sessions = Sessions::default();
        let (id, session) = sessions.open("s3cret");
        let mut headers = with_cookie(&id);
        assert!(matches!(
            sessions.of_state_changing(&headers),
            Err(ConsoleError::Forbidden(_))
        ));
        headers.insert(CSRF_HEADER, HeaderValue::from_static("wrong"));
        assert!(sessions.of_state_changing(&headers).is_err());
        headers.insert(
            CSRF_HEADER,
            HeaderValue::from_str(&session.csrf).expect("header"),
        );
        assert!(sessions.of_state_changing(&headers).is_ok());
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_console() {
        let text = set_cookie(Some("abc")).to_str().expect("text").to_owned();
        assert!(text.starts_with(&format!("{COOKIE}=abc")), "{text}");
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=28800",
        ] {
            assert!(text.contains(attribute), "{attribute} in {text}");
        }
        let removal = set_cookie(None).to_str().expect("text").to_owned();
        assert!(removal.contains("Max-Age=0"), "{removal}");
    }
}
