//! Operations (admin): subscription status, parked events, replay, reset
//! and projection rebuild. Every handler takes [`Admin`], the bearer-token
//! check.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use projections::operations::{self, RequestStatus};
use projections::runtime::RequestOutcome;

use super::accepted;
use super::paging::{
    decode_log_cursor, encode_log_cursor, limit, more_follow, next_link, Paged, DEFAULT_LIMIT,
};
use crate::dto::{
    AcceptedBody, PageQuery, ParkedEventBody, RequestAcceptedBody, RequestStatusBody, ResetRequest,
    SubscriptionBody,
};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::openapi::responses::{
    BadRequest, Forbidden, PayloadTooLarge, Unauthorized, Unavailable, Unprocessable,
};
use crate::AppState;

/// Proof that the request carries the admin token.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.admin_token() else {
            return Err(ApiError::Forbidden(
                "admin endpoints are disabled: set ORDERSTREAM_ADMIN_TOKEN to a secret when \
                 starting the server, then send it as `Authorization: Bearer <token>`"
                    .into(),
            ));
        };
        let Some(given) = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
        else {
            return Err(ApiError::Unauthorized);
        };
        if expected.matches(given) {
            Ok(Admin)
        } else {
            Err(ApiError::Forbidden(
                "the bearer token is not the admin token".into(),
            ))
        }
    }
}

/// Every subscription with its checkpoint, lag and parked events.
#[utoipa::path(
    get, path = "/subscriptions", tag = "operations",
    security(("admin" = [])),
    responses(
        (status = 200, body = [SubscriptionBody]),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_subscriptions(
    _: Admin,
    State(state): State<AppState>,
) -> Result<Json<Vec<SubscriptionBody>>, ApiError> {
    let statuses = operations::subscription_statuses(state.store()).await?;
    Ok(Json(
        statuses
            .into_iter()
            .map(|status| SubscriptionBody {
                name: status.name,
                position: status.position,
                head: status.head,
                lag: status.lag,
                parked: status.parked,
                state: status.state.to_string(),
                owner: status.owner,
            })
            .collect(),
    ))
}

/// The events a subscription parked, with their error and attempts, in log
/// order, a page at a time.
#[utoipa::path(
    get, path = "/subscriptions/{name}/parked", tag = "operations",
    security(("admin" = [])),
    params(
        ("name" = String, Path),
        ("after" = Option<String>, Query, description = "the opaque cursor of a `Link: rel=\"next\"` URL"),
        ("limit" = Option<i64>, Query, description = "1-1000, default 1000"),
    ),
    responses(
        (status = 200, body = [ParkedEventBody], headers(("Link" = String, description = "rel=\"next\": the next page, when more parked events follow"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(subscription = %name))]
pub async fn list_parked(
    _: Admin,
    State(state): State<AppState>,
    uri: Uri,
    PathParams(name): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Paged<Vec<ParkedEventBody>>, ApiError> {
    let limit = limit(query.limit, DEFAULT_LIMIT)?;
    let after = decode_log_cursor(query.after.as_deref())?;
    let mut parked = operations::parked_events(state.store(), &name, after, limit + 1).await?;
    let more = more_follow(&mut parked, limit);
    let next = parked
        .last()
        .filter(|_| more)
        .and_then(|last| next_link(&uri, "after", &encode_log_cursor(last.cursor())));
    Ok(Paged {
        body: parked
            .into_iter()
            .map(|event| ParkedEventBody {
                position: event.position,
                event_id: event.event_id,
                stream_id: event.stream_id,
                stream_version: event.stream_version,
                event_type: event.event_type,
                attempts: event.attempts,
                error: event.last_error,
                blocked_by: event.blocked_by,
                parked_at: event.parked_at,
            })
            .collect(),
        next,
    })
}

/// Replay a subscription's parked events (carried out by its owner).
#[utoipa::path(
    post, path = "/subscriptions/{name}/parked/replay", tag = "operations",
    security(("admin" = [])),
    params(("name" = String, Path)),
    responses(
        (status = 202, body = AcceptedBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(subscription = %name))]
pub async fn replay_parked(
    _: Admin,
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<(StatusCode, Json<AcceptedBody>), ApiError> {
    operations::request_replay_parked(state.store(), &name).await?;
    Ok(accepted(format!(
        "the parked events of {name} will be replayed by its owner"
    )))
}

/// Replay one parked event, by its position (carried out by the
/// subscription's owner). Only the first parked event of its stream can be
/// replayed alone: the subscriber sees a stream's events in order.
#[utoipa::path(
    post, path = "/subscriptions/{name}/parked/{position}/replay", tag = "operations",
    security(("admin" = [])),
    params(
        ("name" = String, Path),
        ("position" = i64, Path, description = "the parked event's `position`"),
    ),
    responses(
        (status = 202, body = RequestAcceptedBody, headers(("Location" = String, description = "`/subscriptions/{name}/requests/{id}`: the request's outcome"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such subscription, or nothing parked at this position", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Earlier events of the same stream are parked: replay the first of them (the detail names it), or replay all", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(subscription = %name, position))]
pub async fn replay_parked_event(
    _: Admin,
    State(state): State<AppState>,
    uri: Uri,
    PathParams((name, position)): PathParams<(String, i64)>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("position", position);
    let request = operations::request_replay_parked_event(state.store(), &name, position).await?;
    let mut response = (
        StatusCode::ACCEPTED,
        Json(RequestAcceptedBody {
            accepted: true,
            detail: format!(
                "the event {name} parked at position {position} will be replayed by its owner"
            ),
            request,
        }),
    )
        .into_response();
    // The request's own path up to the subscription, still percent-encoded
    // as the client sent it.
    if let Some(location) = uri.path().rfind("/parked/").and_then(|end| {
        HeaderValue::from_str(&format!("{}/requests/{request}", &uri.path()[..end])).ok()
    }) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Where an operator request stands: `pending` until the subscription's
/// owner has carried it out, then `done` or `failed` with its outcome.
#[utoipa::path(
    get, path = "/subscriptions/{name}/requests/{id}", tag = "operations",
    security(("admin" = [])),
    params(("name" = String, Path), ("id" = i64, Path)),
    responses(
        (status = 200, body = RequestStatusBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, description = "No such subscription, or no such request of it", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(subscription = %name, request = id))]
pub async fn request_status(
    _: Admin,
    State(state): State<AppState>,
    PathParams((name, id)): PathParams<(String, i64)>,
) -> Result<Json<RequestStatusBody>, ApiError> {
    let (status, outcome) = match operations::request_status(state.store(), &name, id).await? {
        RequestStatus::Pending => ("pending", None),
        RequestStatus::Finished(RequestOutcome::Done(outcome)) => ("done", Some(outcome)),
        RequestStatus::Finished(RequestOutcome::Failed(reason)) => ("failed", Some(reason)),
    };
    Ok(Json(RequestStatusBody {
        id,
        status: status.to_owned(),
        outcome,
    }))
}

/// Move a subscription's checkpoint: it re-delivers every event after
/// `position`.
#[utoipa::path(
    post, path = "/subscriptions/{name}/reset", tag = "operations",
    security(("admin" = [])),
    params(("name" = String, Path)),
    request_body = ResetRequest,
    responses(
        (status = 202, body = AcceptedBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, response = Unprocessable),
        (status = 413, response = PayloadTooLarge),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(subscription = %name))]
pub async fn reset_subscription(
    _: Admin,
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
    JsonBody(body): JsonBody<ResetRequest>,
) -> Result<(StatusCode, Json<AcceptedBody>), ApiError> {
    if body.position < 0 {
        return Err(ApiError::Unprocessable(
            "position must not be negative".into(),
        ));
    }
    operations::request_reset(state.store(), &name, body.position).await?;
    Ok(accepted(format!(
        "{name} will re-deliver the events after position {}",
        body.position
    )))
}

/// Rebuild a read model from the log into fresh tables, swapped in when
/// done; the old one keeps serving meanwhile.
#[utoipa::path(
    post, path = "/projections/{name}/rebuild", tag = "operations",
    security(("admin" = [])),
    params(("name" = String, Path, description = "orders, stock or payments")),
    responses(
        (status = 202, body = AcceptedBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, response = Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(projection = %name))]
pub async fn rebuild_projection(
    _: Admin,
    State(state): State<AppState>,
    PathParams(name): PathParams<String>,
) -> Result<(StatusCode, Json<AcceptedBody>), ApiError> {
    operations::request_rebuild(state.store(), &name).await?;
    Ok(accepted(format!("the {name} read model will be rebuilt")))
}
