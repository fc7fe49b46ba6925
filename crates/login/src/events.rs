//! The log event ids of the HTTP port's access rules and the console login (docs/operations.md).

/// A person logged in to the console (INFO).
pub const CONSOLE_LOGIN: &str = "consoleLogin";
/// A console login was refused (WARN), with its reason code.
pub const CONSOLE_LOGIN_FAILED: &str = "consoleLoginFailed";
/// A person logged out of the console (INFO).
pub const CONSOLE_LOGOUT: &str = "consoleLogout";
/// A console session's tokens were renewed with its refresh token, or could not be (DEBUG/INFO).
pub const CONSOLE_SESSION_RENEWED: &str = "consoleSessionRenewed";
/// A request to the HTTP port was answered `401` or `403` (DEBUG).
pub const HTTP_ACCESS_DENIED: &str = "httpAccessDenied";
