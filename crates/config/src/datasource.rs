//! `spring.datasource.*`: where DPM keeps its engine registry outside memory (docs/postgres.md).
//!
//! The URL is taken as the product writes it (`jdbc:postgresql://host:port/db`) or as PostgreSQL
//! does (`postgresql://…`, `postgres://…`). The password is a [`DatabasePassword`]: its `Debug`
//! hides it, and what is shown of a URL ([`Datasource::shown_url`]) never carries one, so neither
//! a log line, `/actuator/info` nor an error message can echo it.

use crate::bind::Binder;
use crate::{codes, names};

/// The PostgreSQL port when the URL names none.
pub const DEFAULT_POSTGRES_PORT: u16 = 5432;

/// Where the registry's database is and how DPM logs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datasource {
    /// Server host name or address.
    pub host: String,
    /// Server port (5432 when the URL names none).
    pub port: u16,
    /// Database name.
    pub database: String,
    /// `spring.datasource.username` (or the URL's user); `None` leaves it to the server's default.
    pub username: Option<String>,
    /// `spring.datasource.password` (or the URL's); never shown.
    pub password: Option<DatabasePassword>,
}

impl Datasource {
    /// The URL for people: `postgresql://user@host:port/db`, never with a password.
    pub fn shown_url(&self) -> String {
        let user = self
            .username
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!(
            "postgresql://{user}{}:{}/{}",
            self.host, self.port, self.database
        )
    }
}

/// A database password: only [`DatabasePassword::expose`] gives it out, for the connection.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabasePassword(String);

impl DatabasePassword {
    /// The password, for the database client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabasePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabasePassword(<redacted>)")
    }
}

impl Drop for DatabasePassword {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// The parts of a datasource URL.
#[derive(Debug, PartialEq, Eq)]
struct UrlParts {
    host: String,
    port: u16,
    database: String,
    user: Option<String>,
    password: Option<String>,
}

/// Parses `jdbc:postgresql://[user[:password]@]host[:port]/database` (and the `postgresql://`,
/// `postgres://` forms). Errors never quote the value: it may hold a password.
fn parse_url(raw: &str) -> Result<UrlParts, String> {
    let rest = ["jdbc:postgresql://", "postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| raw.strip_prefix(scheme))
        .ok_or("the URL must start with jdbc:postgresql:// (or postgresql://)")?;
    if rest.contains('?') {
        return Err(
            "query parameters are not supported; set spring.datasource.username and spring.datasource.password instead"
                .to_owned(),
        );
    }
    let (authority, database) = rest
        .split_once('/')
        .ok_or("the URL names no database (…/<database>)")?;
    if database.is_empty() || database.contains('/') {
        return Err("the URL must end with /<database>".to_owned());
    }
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((u, p)) => (Some(u.to_owned()), Some(p.to_owned())),
            None => (Some(info.to_owned()), None),
        },
    };
    // `[::1]:5432` for IPv6 literals, `host:5432` otherwise; the port is optional.
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6
                .split_once(']')
                .ok_or("the URL's host is not closed by ]")?;
            (host, rest.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        },
    };
    let port = match port {
        None => DEFAULT_POSTGRES_PORT,
        Some(port) => port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the URL's port is not a port number")?,
    };
    if host.is_empty() || host.contains(',') {
        return Err("the URL must name one host".to_owned());
    }
    Ok(UrlParts {
        host: host.to_owned(),
        port,
        database: database.to_owned(),
        user: user.filter(|u| !u.is_empty()),
        password: password.filter(|p| !p.is_empty()),
    })
}

/// Binds `spring.datasource.*`; `None` (the registry in memory) when no URL is set.
pub(crate) fn bind_datasource(b: &mut Binder<'_>) -> Option<Datasource> {
    let (raw, value) = b.string(names::DATASOURCE_URL)?;
    if raw.is_empty() {
        return None;
    }
    let parts = match parse_url(&raw) {
        Ok(parts) => parts,
        Err(why) => {
            b.error_at(
                codes::DATASOURCE_URL_INVALID,
                value,
                why,
                "write it as jdbc:postgresql://host:5432/database",
            );
            return None;
        }
    };
    let username = b
        .string(names::DATASOURCE_USERNAME)
        .map(|(u, _)| u)
        .filter(|u| !u.is_empty())
        .or(parts.user);
    // Not trimmed: a password is whatever the file holds after the separator.
    let password = b
        .props
        .get(names::DATASOURCE_PASSWORD)
        .map(|v| v.raw.clone())
        .filter(|p| !p.is_empty())
        .or(parts.password)
        .map(DatabasePassword);
    Some(Datasource {
        host: parts.host,
        port: parts.port,
        database: parts.database,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_postgres_forms_parse() {
        let jdbc = parse_url("jdbc:postgresql://localhost:5431/dpm").expect("jdbc form");
        assert_eq!(
            (jdbc.host.as_str(), jdbc.port, jdbc.database.as_str()),
            ("localhost", 5431, "dpm")
        );
        let plain = parse_url("postgresql://one:secret@db.example:6000/reg").expect("plain");
        assert_eq!(plain.user.as_deref(), Some("one"));
        assert_eq!(plain.password.as_deref(), Some("secret"));
        assert_eq!(plain.port, 6000);
        assert_eq!(
            parse_url("postgres://127.0.0.1/x").map(|p| p.port),
            Ok(DEFAULT_POSTGRES_PORT)
        );
    }

    #[test]
    fn bad_urls_are_refused_without_quoting_them() {
        for bad in [
            "mysql://h/db",
            "jdbc:postgresql://h:99999/db",
            "jdbc:postgresql://h:5432",
            "jdbc:postgresql://u:hunter2@h:5432/db?ssl=true",
        ] {
            let why = parse_url(bad).expect_err(bad);
            assert!(!why.contains("hunter2"), "{why}");
        }
    }

    #[test]
    fn the_password_is_never_shown() {
        let source = Datasource {
            host: "h".into(),
            port: 5432,
            database: "dpm".into(),
            username: Some("one".into()),
            password: Some(DatabasePassword("hunter2".into())),
        };
        assert_eq!(source.shown_url(), "postgresql://one@h:5432/dpm");
        assert!(!format!("{source:?}").contains("hunter2"));
    }
}
