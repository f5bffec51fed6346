//! A database connection string with its secrets replaced, for logs and
//! error messages. PostgreSQL takes secrets in three places: the password
//! of a URL's userinfo, a URL query parameter (`?password=`), and a
//! `key=value` pair of the keyword/value form (`host=db password=...`).

const HIDDEN: &str = "***";

/// `connection` with every password (and other secret parameter) hidden.
/// Something that parses as neither form is not shown at all.
pub fn connection_string(connection: &str) -> String {
    let trimmed = connection.trim();
    if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        redact_url(trimmed).unwrap_or_else(|| "<unparseable database URL>".to_owned())
    } else {
        redact_keywords(trimmed).unwrap_or_else(|| "<unparseable connection string>".to_owned())
    }
}

/// Parameter names whose values are secrets (`password`, `sslpassword`,
/// and anything else naming a password or a secret).
/// An AMQP broker URL with its password hidden.
pub fn broker_url(url: &str) -> String {
    redact_url(url.trim()).unwrap_or_else(|| "<unparseable broker URL>".to_owned())
}

fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret")
}

fn redact_url(connection: &str) -> Option<String> {
    let mut url = url::Url::parse(connection).ok()?;
    if url.password().is_some() {
        url.set_password(Some(HIDDEN)).ok()?;
    }
    if url.query_pairs().any(|(key, _)| is_secret(&key)) {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(key, value)| {
                let value = if is_secret(&key) {
                    HIDDEN.to_owned()
                } else {
                    value.into_owned()
                };
                (key.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // `***` would be percent-encoded in the query; show it as written.
    Some(url.to_string().replace("%2A%2A%2A", HIDDEN))
}

/// The keyword/value form: `key = value` pairs separated by spaces, a value
/// optionally in single quotes with `\'` and `\\` escapes.
fn redact_keywords(connection: &str) -> Option<String> {
    let mut out = Vec::new();
    let mut chars = connection.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next()? {
                    '\\' => value.push(chars.next()?),
                    '\'' => break,
                    c => value.push(c),
                }
            }
            value = format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                value.push(c);
            }
        }
        if is_secret(&key) {
            value = HIDDEN.to_owned();
        }
        out.push(format!("{key}={value}"));
    }
    Some(out.join(" "))
}

#[cfg(test)]
mod tests {
    use super::connection_string;

    #[test]
    fn the_password_of_a_url_is_hidden() {
        assert_eq!(
            connection_string("postgres://app:s3cr%40t@db.example:5432/orders"),
            "postgres://app:***@db.example:5432/orders"
        );
        assert_eq!(
            connection_string("postgresql://app:hunter2@db/orders?sslmode=require"),
            "postgresql://app:***@db/orders?sslmode=require"
        );
    }

    #[test]
    fn a_password_in_the_query_is_hidden() {
        let redacted =
            connection_string("postgres://app@db/orders?sslmode=require&password=hunter2");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert_eq!(
            redacted,
            "postgres://app@db/orders?sslmode=require&password=***"
        );
        let both = connection_string("postgres://app:one@db/orders?sslpassword=two&password=three");
        for secret in ["one", "two", "three"] {
            assert!(!both.contains(secret), "{both}");
        }
    }

    #[test]
    fn a_password_in_the_keyword_form_is_hidden() {
        assert_eq!(
            connection_string("host=db port=5432 user=app password=hunter2 dbname=orders"),
            "host=db port=5432 user=app password=*** dbname=orders"
        );
        let quoted = connection_string("host=db password = 'hunt er\\'2' dbname=orders");
        assert_eq!(quoted, "host=db password=*** dbname=orders");
    }

    #[test]
    fn a_url_without_secrets_is_shown_whole() {
        assert_eq!(
            connection_string("postgres://app@localhost/orders?host=/run/pg&port=5432"),
            "postgres://app@localhost/orders?host=/run/pg&port=5432"
        );
    }

    #[test]
    fn something_unparseable_is_not_shown() {
        let redacted = connection_string("postgres://app:hunter2@[bad");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        let redacted = connection_string("password='unterminated hunter2");
        assert!(!redacted.contains("hunter2"), "{redacted}");
    }
}
