//! Console login sessions, held in the module's memory only: a random id in the browser's cookie,
//! the person's tokens here. Bounded in number (the oldest ends first) and in age (a session ends
//! at `svcid.console.session.max-age` however often it was renewed). A restart ends them all.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use svcid_identity::user::UserIdentity;

/// The tokens a session holds; never logged, never shown.
pub struct Tokens {
    /// The verified access token; its roles are the session's.
    pub access: String,
    /// When it expires (Unix seconds).
    pub access_exp: u64,
    /// Renews `access`, when the provider gave one.
    pub refresh: Option<String>,
    /// The ID token, sent back as `id_token_hint` at logout.
    pub id_token: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_exp", &self.access_exp)
            .field("refresh", &self.refresh.is_some())
            .finish_non_exhaustive()
    }
}

/// One person logged in to the console.
#[derive(Debug)]
pub struct Session {
    /// Who, as the access token says (renewed with it).
    pub user: UserIdentity,
    /// Their tokens.
    pub tokens: Tokens,
}

/// A session shared between the requests of its browser; renewals lock it.
pub type Shared = Arc<tokio::sync::Mutex<Session>>;

/// The sessions of one module.
pub struct Sessions {
    by_id: Mutex<HashMap<String, (Instant, Shared)>>,
    max: usize,
    max_age: Duration,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("live", &self.len())
            .field("max", &self.max)
            .field("max_age", &self.max_age)
            .finish()
    }
}

impl Sessions {
    /// At most `max` sessions at once, each at most `max_age` old.
    pub fn new(max: usize, max_age: Duration) -> Self {
        Sessions {
            by_id: Mutex::new(HashMap::new()),
            max: max.max(1),
            max_age,
        }
    }

    /// Starts a session for `session` under a new random id, which it returns. The oldest session
    /// ends when `max` are live.
    pub fn start(&self, session: Session) -> String {
        let id = crate::flow::random_token();
        let mut by_id = self.lock();
        let max_age = self.max_age;
        by_id.retain(|_, (created, _)| created.elapsed() < max_age);
        while by_id.len() >= self.max {
            let Some(oldest) = by_id
                .iter()
                .min_by_key(|(_, (created, _))| *created)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            by_id.remove(&oldest);
        }
        by_id.insert(
            id.clone(),
            (Instant::now(), Arc::new(tokio::sync::Mutex::new(session))),
        );
        id
    }

    /// The live session `id`; one past its age is ended here.
    pub fn get(&self, id: &str) -> Option<Shared> {
        let mut by_id = self.lock();
        let (created, session) = by_id.get(id)?;
        if created.elapsed() >= self.max_age {
            by_id.remove(id);
            return None;
        }
        Some(Arc::clone(session))
    }

    /// Ends session `id`, returning it if it was live.
    pub fn end(&self, id: &str) -> Option<Shared> {
        self.lock().remove(id).map(|(_, session)| session)
    }

    /// Live sessions (some may be past their age until next touched).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Shared)>> {
        self.by_id
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn session(name: &str) -> Session {
        Session {
            user: UserIdentity {
                id: name.into(),
                username: name.into(),
                roles: vec!["admin".into()],
            },
            tokens: Tokens {
                access: "secret-access".into(),
                access_exp: 0,
                refresh: Some("secret-refresh".into()),
                id_token: None,
            },
        }
    }

    #[test]
    fn sessions_are_bounded_in_number_and_end_on_request() {
        let sessions = Sessions::new(2, Duration::from_secs(60));
        let a = sessions.start(session("a"));
        std::thread::sleep(Duration::from_millis(2));
        let b = sessions.start(session("b"));
        std::thread::sleep(Duration::from_millis(2));
        let c = sessions.start(session("c"));
        assert!(sessions.get(&a).is_none(), "the oldest ended");
        assert!(sessions.get(&b).is_some());
        assert!(sessions.end(&c).is_some());
        assert!(sessions.get(&c).is_none());
        assert_eq!(sessions.len(), 1);
        let shown = format!("{sessions:?} {:?}", session("x"));
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn a_session_ends_at_its_age() {
        let sessions = Sessions::new(10, Duration::from_millis(20));
        let id = sessions.start(session("a"));
        assert!(sessions.get(&id).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(sessions.get(&id).is_none());
    }
}
