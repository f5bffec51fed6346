//! Durations on the command line and in the environment: `30s`, `500ms`,
//! `15m`, `24h`, `7d`, or a bare number of seconds.

use std::time::Duration;

/// The longest duration accepted: a century, far above any sensible
/// setting and well inside what PostgreSQL's intervals and timeouts take.
const MAX: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30s, 500ms, 15m, 24h or 7d"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
            ))
        }
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .filter(|duration| *duration <= MAX)
        .ok_or_else(|| format!("{text:?} is longer than a century"))
}

/// A duration above zero (a timeout of zero would refuse everything).
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    parse(text).and_then(|duration| {
        if duration.is_zero() {
            Err(format!("{text:?} must be longer than zero"))
        } else {
            Ok(duration)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit_or_as_seconds() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn anything_else_is_refused_with_a_message() {
        for bad in ["", "s", "-1s", "1.5h", "10 years", "99999999999999999999d"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
