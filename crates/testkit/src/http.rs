//! One plain HTTP/1.1 request to a daemon's HTTP port (the actuator and the console), over a
//! fresh connection that the request closes: what `curl` would show an operator.

use std::io::{self, Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read may wait for the answer.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A complete answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    /// The status code.
    pub code: u16,
    /// The status line as sent (`HTTP/1.1 200 OK`).
    pub status_line: String,
    /// The status line and the headers, in lower case.
    pub head: String,
    /// The status line and the headers as sent.
    pub raw_head: String,
    /// The body.
    pub body: String,
}

impl HttpAnswer {
    /// The value of header `name` (lower case), as sent; the first when there are several.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers(name).into_iter().next()
    }

    /// Every value of header `name` (lower case), in order.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.raw_head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// The body of a `200` answer; any other status is an error naming `path` and the status line.
    pub fn ok_body(self, path: &str) -> io::Result<String> {
        if self.code == 200 {
            Ok(self.body)
        } else {
            Err(io::Error::other(format!("{path}: {}", self.status_line)))
        }
    }
}

/// `METHOD path` on `127.0.0.1:port`, without a body.
pub fn request(port: u16, method: &str, path: &str) -> io::Result<HttpAnswer> {
    request_with(port, method, path, &[])
}

/// `METHOD path` on `127.0.0.1:port` with `headers` (`Host: localhost` unless they name one),
/// without a body.
pub fn request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpAnswer> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .map_err(|e| io::Error::new(e.kind(), format!("connecting to 127.0.0.1:{port}: {e}")))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        head.push_str("Host: localhost\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    parse(&answer).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{method} {path}: not a complete HTTP answer: {answer:?}"),
        )
    })
}

/// `GET path` on `127.0.0.1:port`.
pub fn get(port: u16, path: &str) -> io::Result<HttpAnswer> {
    request(port, "GET", path)
}

/// Splits an answer into its status, head and body; `None` when it is not HTTP.
fn parse(answer: &str) -> Option<HttpAnswer> {
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status_line = head.lines().next().unwrap_or_default();
    let code = status_line.split(' ').nth(1)?.parse().ok()?;
    Some(HttpAnswer {
        code,
        status_line: status_line.to_owned(),
        head: head.to_ascii_lowercase(),
        raw_head: head.to_owned(),
        body: body.to_owned(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_split_into_status_head_and_body() {
        let answer =
            parse("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope").unwrap();
        assert_eq!(answer.code, 404);
        assert_eq!(answer.status_line, "HTTP/1.1 404 Not Found");
        assert!(answer.head.contains("content-type: text/plain"));
        assert_eq!(answer.body, "nope");
        assert!(answer.ok_body("/x").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\n").is_none());
    }
}
