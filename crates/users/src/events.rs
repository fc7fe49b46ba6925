//! The log event ids this crate emits, defined once (docs/operations.md documents each).

/// INFO: an issuer's keys were fetched from its URL and are in use; carries the issuer, the URL
/// (without credentials or query), the keys kept and skipped, the TTL and where it came from, and
/// why the fetch was made.
pub const USER_KEYS_FETCHED: &str = "userKeysFetched";
/// WARN: fetching an issuer's keys failed; carries the issuer, the URL, the reason, and whether
/// the last good keys stay in use (and their age) or the issuer's tokens are refused meanwhile.
pub const USER_KEYS_FETCH_FAILED: &str = "userKeysFetchFailed";
/// WARN, once per issuer: its `https://` key URL is fetched trusting any server certificate (the
/// module's client TLS has `trust-all=true`).
pub const USER_KEYS_TRUST_ALL: &str = "userKeysTrustAll";
