//! The Finance consumer's row of the overview: Finance runs in its own
//! process (`orderstream finance serve`), so the console asks it over HTTP,
//! server-side, at `ORDERSTREAM_FINANCE_URL`: `/finance/ready` (up or not)
//! and `/finance/metrics` (lag in seconds, dead-letter depth).
//!
//! The answer is kept a few seconds: the overview is sent every tenth of a
//! second during a rebuild, to every open page, and each scrape of
//! Finance's metrics opens a connection to the broker.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Longest Finance may take to answer: a slow Finance must not hold the
/// overview up for long. (A scrape reads the broker, up to 5 s when the
/// broker hangs; past this, Finance is shown unreachable.)
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer is shown before Finance is asked again.
const FRESH: Duration = Duration::from_secs(2);

/// The metric names of `finance/src/metrics.rs` (not a dependency: the
/// console talks to Finance as any scraper would).
const LAG_SECONDS: &str = "finance_consumer_lag_seconds";
const CONSUMING: &str = "finance_consumer_up";
const DEAD_LETTERS: &str = "finance_dead_letters";

/// What the overview shows of Finance.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum FinanceView {
    /// `ORDERSTREAM_FINANCE_URL` is unset.
    NotConfigured,
    /// Neither endpoint answered (refused, timed out, not HTTP).
    Unreachable { url: String, error: String },
    /// Finance answered; `ready` is `/finance/ready`'s 200. A figure its
    /// metrics do not (yet) carry is `None`.
    Reachable {
        url: String,
        ready: bool,
        consuming: Option<bool>,
        lag_seconds: Option<f64>,
        dead_letters: Option<f64>,
    },
}

/// Asks Finance, at most every [`FRESH`]. Cheap to clone.
#[derive(Clone)]
pub struct FinanceProbe {
    target: Option<Target>,
    last: Arc<Mutex<Option<(Instant, FinanceView)>>>,
}

#[derive(Clone)]
struct Target {
    base: String,
    client: reqwest::Client,
}

impl FinanceProbe {
    /// `url`: where Finance serves (`http://host:port`); `None`: not
    /// configured. The URL was checked at start-up.
    pub fn new(url: Option<String>) -> FinanceProbe {
        let target = url.map(|url| Target {
            base: url.trim_end_matches('/').to_owned(),
            // Bounded by `TIMEOUT` in `get`, which covers the body too.
            client: reqwest::Client::new(),
        });
        FinanceProbe {
            target,
            last: Arc::new(Mutex::new(None)),
        }
    }

    pub async fn view(&self) -> FinanceView {
        let Some(target) = &self.target else {
            return FinanceView::NotConfigured;
        };
        // Held while asking: pages opened at once share one probe.
        let mut last = self.last.lock().await;
        if let Some((at, view)) = last.as_ref() {
            if at.elapsed() < FRESH {
                return view.clone();
            }
        }
        let view = target.probe().await;
        *last = Some((Instant::now(), view.clone()));
        view
    }
}

impl Target {
    async fn probe(&self) -> FinanceView {
        let (ready, metrics) =
            tokio::join!(self.get("/finance/ready"), self.get("/finance/metrics"));
        let metrics = match metrics {
            Ok((status, body)) if status.is_success() => Some(body),
            _ => None,
        };
        match (ready, metrics) {
            (Err(error), None) => FinanceView::Unreachable {
                url: self.base.clone(),
                error,
            },
            (ready, metrics) => {
                let figures = metrics.as_deref().map(parse_metrics).unwrap_or_default();
                FinanceView::Reachable {
                    url: self.base.clone(),
                    ready: matches!(ready, Ok((status, _)) if status.is_success()),
                    consuming: figures.consuming,
                    lag_seconds: figures.lag_seconds,
                    dead_letters: figures.dead_letters,
                }
            }
        }
    }

    async fn get(&self, path: &str) -> Result<(reqwest::StatusCode, String), String> {
        let answer = tokio::time::timeout(TIMEOUT, async {
            let response = self
                .client
                .get(format!("{}{path}", self.base))
                .send()
                .await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.text().await?))
        })
        .await;
        match answer {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => Err(describe(&error)),
            Err(_) => Err(format!("no answer within {TIMEOUT:?}")),
        }
    }
}

/// reqwest's top-level message ("error sending request for url ...") says
/// little; the innermost cause ("Connection refused") says why.
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return format!("no answer within {TIMEOUT:?}");
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[derive(Debug, Default, PartialEq)]
struct Figures {
    consuming: Option<bool>,
    lag_seconds: Option<f64>,
    dead_letters: Option<f64>,
}

/// The three gauges of Finance's Prometheus text (unlabelled, one sample
/// each).
fn parse_metrics(text: &str) -> Figures {
    let mut figures = Figures::default();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((name, value)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        match name {
            LAG_SECONDS => figures.lag_seconds = Some(value),
            CONSUMING => figures.consuming = Some(value > 0.0),
            DEAD_LETTERS => figures.dead_letters = Some(value),
            _ => {}
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gauges_are_read_from_finances_prometheus_text() {
        let text = "# TYPE finance_consumer_lag_seconds gauge\n\
                    finance_consumer_lag_seconds 12\n\
                    # TYPE finance_consumer_up gauge\n\
                    finance_consumer_up 1\n\
                    finance_dead_letters 3\n\
                    finance_dead_letters_total 99\n\
                    finance_messages_total{outcome=\"booked\"} 7\n";
        assert_eq!(
            parse_metrics(text),
            Figures {
                consuming: Some(true),
                lag_seconds: Some(12.0),
                dead_letters: Some(3.0),
            }
        );
        assert_eq!(
            parse_metrics("finance_consumer_up 0\n"),
            Figures {
                consuming: Some(false),
                ..Figures::default()
            }
        );
    }

    #[test]
    fn the_view_serialises_with_its_status() {
        let json = serde_json::to_value(FinanceView::NotConfigured).expect("json");
        assert_eq!(json, serde_json::json!({"status": "not_configured"}));
        let json = serde_json::to_value(FinanceView::Reachable {
            url: "http://f".into(),
            ready: true,
            consuming: Some(true),
            lag_seconds: None,
            dead_letters: Some(0.0),
        })
        .expect("json");
        assert_eq!(json["status"], "reachable");
        assert_eq!(json["dead_letters"], 0.0);
        assert!(json["lag_seconds"].is_null());
    }

    /// A stand-in Finance on a free port answering `ready` and `metrics`.
    async fn stand_in(ready: axum::http::StatusCode, metrics: &'static str) -> String {
        use axum::routing::get;
        let app = axum::Router::new()
            .route("/finance/ready", get(move || async move { ready }))
            .route("/finance/metrics", get(move || async move { metrics }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn a_ready_finance_is_shown_with_its_lag_and_dead_letters() {
        let url = stand_in(
            axum::http::StatusCode::OK,
            "finance_consumer_up 1\nfinance_consumer_lag_seconds 4\nfinance_dead_letters 2\n",
        )
        .await;
        assert_eq!(
            FinanceProbe::new(Some(url.clone())).view().await,
            FinanceView::Reachable {
                url,
                ready: true,
                consuming: Some(true),
                lag_seconds: Some(4.0),
                dead_letters: Some(2.0),
            }
        );
        let url = stand_in(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "finance_consumer_up 0\n",
        )
        .await;
        assert_eq!(
            FinanceProbe::new(Some(url.clone())).view().await,
            FinanceView::Reachable {
                url,
                ready: false,
                consuming: Some(false),
                lag_seconds: None,
                dead_letters: None,
            }
        );
    }

    #[tokio::test]
    async fn a_finance_nobody_listens_for_is_unreachable() {
        // Bound, then dropped: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let probe = FinanceProbe::new(Some(format!("http://127.0.0.1:{port}/")));
        match probe.view().await {
            FinanceView::Unreachable { url, error } => {
                assert_eq!(url, format!("http://127.0.0.1:{port}"));
                assert!(!error.is_empty());
            }
            other => panic!("expected unreachable, got {other:?}"),
        }
        assert_eq!(
            FinanceProbe::new(None).view().await,
            FinanceView::NotConfigured
        );
    }
}
