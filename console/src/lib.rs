//! The operator console: a browser UI served under `/console` by the same
//! binary as the API.
//!
//! The page is static HTML, CSS and JavaScript embedded in the binary
//! (`assets.rs`; no CDN, no build step). It logs in with the admin token
//! (`login.rs`, `session.rs`), then reaches the API through
//! `/console/api/...` (`proxy.rs`), which hands each request to the API's
//! own router with the session's token: every action is an API call, the
//! console adds no privilege. Live updates come as server-sent events
//! driven by the log's wake-ups (`live.rs`). Pictures are SVG drawn on the
//! server: the order's state machine and swimlanes (`order_views.rs`,
//! `swimlanes.rs`) and a SKU's stock over time (`stock_chart.rs`). The log
//! browser and the lookups the API has no endpoint for read the store
//! directly, read-only (`browse.rs`). The overview's Finance row asks
//! Finance's own HTTP (`finance.rs`).
//!
//! Start at [`router`].

mod api_client;
mod assets;
mod browse;
mod error;
mod finance;
mod integration;
mod live;
mod login;
mod order_views;
mod overview;
mod proxy;
mod session;
mod stock_chart;
mod stock_series;
mod svg;
mod swimlanes;
#[cfg(test)]
mod tests;

use axum::routing::{any, get};
use axum::Router;
use event_store::EventStore;

pub use error::ConsoleError;
pub use session::{COOKIE, CSRF_HEADER};

use api_client::ApiClient;

/// What every console handler shares. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ConsoleState {
    api: ApiClient,
    store: EventStore,
    sessions: session::Sessions,
    live: live::Live,
    finance: finance::FinanceProbe,
}

/// The console's routes, to be nested under `/console`. `api` is the API's
/// router (with its state, without the console), which the console calls
/// in process; `store` the same store the API uses; `finance_url` where
/// Finance serves its HTTP (`ORDERSTREAM_FINANCE_URL`), for the overview's
/// Finance row.
pub fn router(api: Router, store: EventStore, finance_url: Option<String>) -> Router {
    let state = ConsoleState {
        api: ApiClient::new(api),
        finance: finance::FinanceProbe::new(finance_url),
        live: live::Live::new(store.clone()),
        store,
        sessions: session::Sessions::default(),
    };
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .route(
            "/session",
            get(login::current)
                .post(login::log_in)
                .delete(login::log_out),
        )
        .route("/api/{*path}", any(proxy::forward))
        .route("/live", get(live::stream))
        .route("/data/find", get(browse::find))
        .route("/data/log", get(browse::log))
        .route("/data/orders/{order_id}/states", get(order_views::states))
        .route(
            "/data/orders/{order_id}/swimlanes",
            get(order_views::swimlanes),
        )
        .route("/data/sku/{sku}/series", get(stock_chart::series))
        .route("/data/sku/{sku}/chart", get(stock_chart::chart))
        .fallback(assets::not_found)
        .with_state(state)
}
