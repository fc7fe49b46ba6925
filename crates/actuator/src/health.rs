//! The health model of `/actuator/health`, as Spring Boot Actuator shapes it: each component has
//! a status and details, the overall status is the worst component's, and the HTTP status is 503
//! whenever the overall status is not `UP` (so a load balancer or Kubernetes probe needs no JSON).

use serde_json::{Map, Value, json};

/// A health status, in Spring Boot's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Working. Sorted last: the overall status is the first (worst) of its components'.
    Up,
    /// Deliberately not serving (shutting down).
    OutOfService,
    /// Not working.
    Down,
}

impl Status {
    /// `UP`, `OUT_OF_SERVICE` or `DOWN`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Up => "UP",
            Status::OutOfService => "OUT_OF_SERVICE",
            Status::Down => "DOWN",
        }
    }

    /// The HTTP status Spring Boot answers with: 200 for `UP`, 503 otherwise.
    pub fn http_code(self) -> u16 {
        match self {
            Status::Up => 200,
            Status::OutOfService | Status::Down => 503,
        }
    }
}

/// One component of the health report: `{"status":"UP","details":{…}}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// This component's status.
    pub status: Status,
    /// What an operator needs to see why (counts, addresses, the last error); never secrets.
    pub details: Map<String, Value>,
}

impl Component {
    /// A component with this status and no details yet.
    pub fn new(status: Status) -> Self {
        Self {
            status,
            details: Map::new(),
        }
    }

    /// `UP` when `up`, else `DOWN`.
    pub fn up_if(up: bool) -> Self {
        Self::new(if up { Status::Up } else { Status::Down })
    }

    /// Adds a detail.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The component as JSON.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("status".to_owned(), self.status.name().into());
        if !self.details.is_empty() {
            object.insert("details".to_owned(), Value::Object(self.details.clone()));
        }
        Value::Object(object)
    }
}

/// The overall status of named components (the worst; `UP` when there are none) and the report.
pub fn aggregate(components: &[(String, Component)]) -> (Status, Value) {
    let status = components
        .iter()
        .map(|(_, component)| component.status)
        .max()
        .unwrap_or(Status::Up);
    let mut map = Map::new();
    for (name, component) in components {
        map.insert(name.clone(), component.to_json());
    }
    (
        status,
        json!({"status": status.name(), "components": Value::Object(map)}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_component_decides_and_down_is_503() {
        let (status, report) = aggregate(&[
            (
                "grpc".to_owned(),
                Component::new(Status::Up).with("port", 8531),
            ),
            (
                "registration".to_owned(),
                Component::up_if(false).with("dpmUrl", "localhost:8531"),
            ),
        ]);
        assert_eq!(status, Status::Down);
        assert_eq!(status.http_code(), 503);
        assert_eq!(
            report,
            json!({"status": "DOWN", "components": {
                "grpc": {"status": "UP", "details": {"port": 8531}},
                "registration": {"status": "DOWN", "details": {"dpmUrl": "localhost:8531"}},
            }})
        );
        let (status, _) = aggregate(&[("grpc".to_owned(), Component::up_if(true))]);
        assert_eq!((status, status.http_code()), (Status::Up, 200));
        assert_eq!(
            aggregate(&[
                ("a".to_owned(), Component::new(Status::OutOfService)),
                ("b".to_owned(), Component::up_if(true)),
            ])
            .0,
            Status::OutOfService
        );
    }
}
