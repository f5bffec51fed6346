//! What the server-drawn SVGs share: scales, tick values and time labels,
//! and the response with the SVG content type.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::Markup;

/// An SVG document (or fragment for inline use) as a response.
pub fn response(markup: Markup) -> Response {
    let mut response = markup.into_string().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A linear map from `[domain_min, domain_max]` onto `[range_min, range_max]`.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub domain_min: f64,
    pub domain_max: f64,
    pub range_min: f64,
    pub range_max: f64,
}

impl Scale {
    pub fn at(&self, value: f64) -> f64 {
        let span = self.domain_max - self.domain_min;
        if span <= 0.0 {
            return self.range_min;
        }
        self.range_min + (value - self.domain_min) / span * (self.range_max - self.range_min)
    }
}

/// Microseconds since the epoch, as the chart's x domain.
pub fn micros(at: DateTime<Utc>) -> f64 {
    at.timestamp_micros() as f64
}

/// Up to about `count` round tick values covering `0..=max`.
pub fn value_ticks(max: i64, count: i64) -> Vec<i64> {
    let max = max.max(1);
    let raw = (max as f64 / count.max(1) as f64).max(1.0);
    let magnitude = 10f64.powi(raw.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0) as i64;
    (0..=max / step + 1).map(|index| index * step).collect()
}

/// A time label that says as much as the span needs, in UTC.
pub fn time_label(at: DateTime<Utc>, span_seconds: f64) -> String {
    let format = if span_seconds < 60.0 {
        "%H:%M:%S%.3f"
    } else if span_seconds < 86_400.0 {
        "%H:%M:%S"
    } else {
        "%m-%d %H:%M"
    };
    at.format(format).to_string()
}

/// A duration between two hops, short: `850 µs`, `12 ms`, `3.4 s`, `5 min`.
pub fn short_duration(seconds: f64) -> String {
    if seconds < 0.001 {
        format!("{:.0} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.0} ms", seconds * 1e3)
    } else if seconds < 120.0 {
        format!("{seconds:.1} s")
    } else if seconds < 7200.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// RFC 3339 with microseconds: the precision of the log, and what the
/// API's `?at=` takes.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_ticks_are_round_and_cover_the_maximum() {
        assert_eq!(value_ticks(10, 5), vec![0, 2, 4, 6, 8, 10, 12]);
        let ticks = value_ticks(937, 5);
        assert_eq!(ticks[1], 200);
        assert!(*ticks.last().expect("ticks") >= 937);
        assert_eq!(value_ticks(0, 5), vec![0, 1, 2]);
    }

    #[test]
    fn short_durations_pick_their_unit() {
        assert_eq!(short_duration(0.000_85), "850 µs");
        assert_eq!(short_duration(0.012), "12 ms");
        assert_eq!(short_duration(3.44), "3.4 s");
        assert_eq!(short_duration(300.0), "5 min");
    }

    #[test]
    fn a_scale_maps_its_domain_onto_its_range() {
        let scale = Scale {
            domain_min: 0.0,
            domain_max: 10.0,
            range_min: 100.0,
            range_max: 0.0,
        };
        assert_eq!(scale.at(0.0), 100.0);
        assert_eq!(scale.at(10.0), 0.0);
        assert_eq!(scale.at(5.0), 50.0);
    }
}
