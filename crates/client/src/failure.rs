//! A failed outbound call in words an operator can act on.

/// The status message followed by the causes tonic keeps out of [`tonic::Status::message`] (a
/// transport error says only "transport error"; the reason, such as an untrusted certificate or
/// a refused connection, is in its sources). Each cause appears once.
pub fn failure_reason(status: &tonic::Status) -> String {
    let mut reason = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        let text = error.to_string();
        if !reason.contains(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = error.source();
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_without_sources_is_its_message() {
        let status = tonic::Status::unavailable("connection refused");
        assert_eq!(failure_reason(&status), "connection refused");
    }
}
