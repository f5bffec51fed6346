//! Finance's own HTTP: the journal and the trial balance (read-only), and
//! the dead letters behind a bearer admin token.
//!
//! | method | path | |
//! |---|---|---|
//! | GET | /finance/health | the process is up |
//! | GET | /finance/ready | 200 once the consumer consumes and the database answers; 503 while not |
//! | GET | /finance/journal?after=&limit= | entries oldest first, keyset paged (`next_after`) |
//! | GET | /finance/trial-balance | per currency and account; debits = credits |
//! | GET | /finance/metrics | Prometheus text (see `metrics`) |
//! | GET | /finance/admin/dead-letters?limit= | dead letters, left in the queue (admin) |
//! | POST | /finance/admin/dead-letters/{message_id}/replay | replay one (admin) |
//! | POST | /finance/admin/dead-letters/replay | replay all (admin) |

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_hardening::{Hardening, HttpLimits, Policy, ProblemTypes};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::dead_letters::{self, Replay};
use crate::ledger;
use crate::status::ConsumerStatus;
use crate::topology::{self, Topology};

/// How long readiness waits for the database: a probe must answer within
/// its own timeout (1 s by default in Kubernetes; orchestrators vary).
const READY_DATABASE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct FinanceHttp {
    pub pool: PgPool,
    pub amqp_url: String,
    pub topology: Topology,
    /// None: the admin endpoints answer 403.
    pub admin_token: Option<String>,
    /// The consumer's, for readiness and lag.
    pub status: ConsumerStatus,
    pub limits: HttpLimits,
}

pub fn router(state: FinanceHttp) -> Router {
    // Installs the recorder now: counts made before the first scrape stay.
    let metrics = crate::metrics::handle();
    let hardening = Hardening::new(
        state.limits.clone(),
        Policy {
            problem_types: ProblemTypes::AboutBlank,
            unlimited_paths: UNLIMITED_PATHS,
            timeout_advice: "a replay may or may not have taken effect (list the dead letters \
                             before retrying it)",
            rejected_counter: None,
        },
    );
    let routes = Router::new()
        .route("/finance/health", get(health))
        .route("/finance/ready", get(ready))
        .route(
            "/finance/metrics",
            get(move |State(state): State<FinanceHttp>| async move {
                crate::metrics::refresh_broker_gauges(
                    &state.amqp_url,
                    &state.topology,
                    &state.status,
                )
                .await;
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    metrics.render(),
                )
            }),
        )
        .route("/finance/journal", get(journal))
        .route("/finance/trial-balance", get(trial_balance))
        .route("/finance/admin/dead-letters", get(list_dead_letters))
        .route("/finance/admin/dead-letters/replay", post(replay_all))
        .route(
            "/finance/admin/dead-letters/{message_id}/replay",
            post(replay_one),
        )
        .fallback(not_found);
    hardening.apply(routes).with_state(state)
}

/// Answered whatever the load: probes and scrapes must see an overloaded
/// Finance as alive, and they are cheap.
const UNLIMITED_PATHS: &[&str] = &["/finance/health", "/finance/ready", "/finance/metrics"];

async fn not_found() -> Problem {
    Problem::new(StatusCode::NOT_FOUND, "Not found", "no such endpoint")
}

/// The process is up (liveness): nothing else is checked, so that an
/// orchestrator never restarts Finance for a broker outage.
async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// Ready to take messages: the consumer has declared its topology and the
/// broker delivers to it, and the database answers. A relay publishing
/// with `mandatory` before Finance is ready would see its messages
/// returned for want of a bound queue.
async fn ready(State(state): State<FinanceHttp>) -> Result<Response, Problem> {
    if !state.status.is_consuming() {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Not ready",
            format!(
                "not consuming from {} yet: the broker is unreachable or the consumer is \
                 reconnecting",
                state.topology.queue
            ),
        ));
    }
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    match tokio::time::timeout(READY_DATABASE_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(Json(json!({ "status": "ready" })).into_response()),
        Ok(Err(error)) => Err(error.into()),
        Err(_) => Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "the finance database did not answer in time",
        )),
    }
}

/// problem+json (RFC 9457), like the orderstream API.
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    title: &'static str,
    detail: String,
}

impl Problem {
    pub(crate) fn new(
        status: StatusCode,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            status,
            title,
            detail: detail.into(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        http_hardening::problem(
            ProblemTypes::AboutBlank,
            self.status,
            self.title,
            self.detail,
        )
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Problem {
        tracing::error!(%error, "finance: database error");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Database unavailable",
            "the finance database did not answer; retry later",
        )
    }
}

impl From<dead_letters::DeadLetterError> for Problem {
    fn from(error: dead_letters::DeadLetterError) -> Problem {
        tracing::error!(%error, "finance: broker error");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Broker unavailable",
            format!("the message broker did not answer: {error}"),
        )
    }
}

impl From<lapin::Error> for Problem {
    fn from(error: lapin::Error) -> Problem {
        dead_letters::DeadLetterError::from(error).into()
    }
}

#[derive(Debug, Deserialize)]
struct JournalQuery {
    #[serde(default)]
    after: i64,
    limit: Option<i64>,
}

async fn journal(
    State(state): State<FinanceHttp>,
    query: Result<Query<JournalQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Invalid query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=ledger::MAX_PAGE).contains(&limit) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "Invalid query",
            format!("limit must be between 1 and {}", ledger::MAX_PAGE),
        ));
    }
    let page = ledger::journal_page(&state.pool, query.after, limit).await?;
    Ok(Json(page).into_response())
}

async fn trial_balance(State(state): State<FinanceHttp>) -> Result<Response, Problem> {
    Ok(Json(ledger::trial_balance(&state.pool).await?).into_response())
}

fn authorise(state: &FinanceHttp, headers: &HeaderMap) -> Result<(), Problem> {
    let Some(expected) = state.admin_token.as_deref() else {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "Admin disabled",
            "set ORDERSTREAM_FINANCE_ADMIN_TOKEN to enable the admin endpoints",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "a valid admin bearer token is required",
        ))
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list_dead_letters(
    State(state): State<FinanceHttp>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    authorise(&state, &headers)?;
    let Query(query) =
        query.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "Invalid query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let connection = topology::connect(&state.amqp_url).await?;
    let letters = dead_letters::list(&connection, &state.topology, limit).await?;
    Ok(Json(json!({ "dead_letters": letters })).into_response())
}

async fn replay_one(
    State(state): State<FinanceHttp>,
    headers: HeaderMap,
    Path(message_id): Path<String>,
) -> Result<Response, Problem> {
    authorise(&state, &headers)?;
    replay(&state, Replay::MessageId(message_id)).await
}

async fn replay_all(
    State(state): State<FinanceHttp>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    authorise(&state, &headers)?;
    replay(&state, Replay::All).await
}

async fn replay(state: &FinanceHttp, which: Replay) -> Result<Response, Problem> {
    let connection = topology::connect(&state.amqp_url).await?;
    let replayed = dead_letters::replay(&connection, &state.topology, &which).await?;
    if replayed.replayed == 0 {
        if let Replay::MessageId(id) = which {
            return Err(Problem::new(
                StatusCode::NOT_FOUND,
                "Not found",
                format!("no dead letter with message_id {id}"),
            ));
        }
    }
    Ok(Json(replayed).into_response())
}
