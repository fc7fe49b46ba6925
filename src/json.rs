//! Constraints as JSON for scripts (`svcid engines --json`), in the shape of protobuf's canonical
//! JSON mapping: lowerCamelCase field names, a oneof as its one set member, 64-bit integers as
//! strings, enums by name, `Any` as `{"@type": <type url>, "value": <base64 of its bytes>}`
//! (svcid cannot know every packed type, so the payload stays opaque and exact).

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::pb::constraint::constraints::priority::Component;
use crate::pb::constraint::constraints::{Capability, Requirement, capability, requirement};
use crate::pb::constraint::range::BoundType;
use crate::pb::constraint::{Constraints, range};

/// `constraints` as JSON.
pub fn constraints(constraints: &Constraints) -> Value {
    let map = |entries: Vec<(&String, Value)>| {
        let mut sorted = entries;
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
    };
    json!({
        "requirements": map(constraints.requirements.iter().map(|(k, r)| (k, requirement_json(r))).collect()),
        "capabilities": map(constraints.capabilities.iter().map(|(k, c)| (k, capability_json(c))).collect()),
        "priorities": constraints.priorities.iter().map(|p| {
            json!({"components": p.components.iter().map(component).collect::<Vec<_>>()})
        }).collect::<Vec<_>>(),
    })
}

fn one(name: &str, value: Value) -> Value {
    let mut object = Map::new();
    object.insert(name.to_owned(), value);
    Value::Object(object)
}

fn capability_json(c: &Capability) -> Value {
    use capability::CapabilityType as C;
    let Some(kind) = &c.capability_type else {
        return json!({});
    };
    match kind {
        C::Enumeration(e) => one(
            "enumeration",
            json!({"capabilities": e.capabilities.iter().map(capability_json).collect::<Vec<_>>()}),
        ),
        C::Pattern(p) => one("pattern", json!({"regex": p.regex, "flags": p.flags})),
        C::Value(v) => one("value", json!(v)),
        C::Float(v) => one("float", float(f64::from(*v))),
        C::Double(v) => one("double", float(*v)),
        C::Int(v) => one("int", json!(v)),
        C::Long(v) => one("long", json!(v.to_string())),
        C::Boolean(v) => one("boolean", json!(v)),
        C::Any(a) => one("any", any(a)),
        C::IntInterval(i) => one("intInterval", interval(i.range.as_ref().map(int_range))),
        C::LongInterval(i) => one("longInterval", interval(i.range.as_ref().map(long_range))),
        C::FloatInterval(i) => one("floatInterval", interval(i.range.as_ref().map(float_range))),
        C::DoubleInterval(i) => one(
            "doubleInterval",
            interval(i.range.as_ref().map(double_range)),
        ),
        C::AnyInterval(i) => one(
            "anyInterval",
            any_interval(i.range.as_ref(), i.discrete_domain.as_ref()),
        ),
        C::Digest(d) => one("digest", json!(d)),
    }
}

fn requirement_json(r: &Requirement) -> Value {
    use requirement::RequirementType as R;
    let Some(kind) = &r.requirement_type else {
        return json!({});
    };
    let list = |items: &[Requirement]| json!({"requirements": items.iter().map(requirement_json).collect::<Vec<_>>()});
    let boxed = |r: Option<&Requirement>| r.map_or(Value::Null, requirement_json);
    match kind {
        R::And(a) => one("and", list(&a.requirements)),
        R::Or(o) => one("or", list(&o.requirements)),
        R::Not(n) => one(
            "not",
            json!({"requirement": boxed(n.requirement.as_deref())}),
        ),
        R::Pattern(p) => one("pattern", json!({"regex": p.regex, "flags": p.flags})),
        R::Value(v) => one("value", json!(v)),
        R::Float(v) => one("float", float(f64::from(*v))),
        R::Double(v) => one("double", float(*v)),
        R::Int(v) => one("int", json!(v)),
        R::Long(v) => one("long", json!(v.to_string())),
        R::Boolean(v) => one("boolean", json!(v)),
        R::Any(a) => one("any", any(a)),
        R::IntInterval(i) => one("intInterval", interval(i.range.as_ref().map(int_range))),
        R::LongInterval(i) => one("longInterval", interval(i.range.as_ref().map(long_range))),
        R::FloatInterval(i) => one("floatInterval", interval(i.range.as_ref().map(float_range))),
        R::DoubleInterval(i) => one(
            "doubleInterval",
            interval(i.range.as_ref().map(double_range)),
        ),
        R::AnyInterval(i) => one(
            "anyInterval",
            any_interval(i.range.as_ref(), i.discrete_domain.as_ref()),
        ),
        R::CapabilityContaining(c) => one(
            "capabilityContaining",
            json!({
                "capability": c.capability.as_ref().map_or(Value::Null, capability_json),
                "requirement": boxed(c.requirement.as_deref()),
            }),
        ),
        R::CapabilityReferring(c) => one(
            "capabilityReferring",
            json!({"key": c.key, "requirement": boxed(c.requirement.as_deref())}),
        ),
        R::Unsatisfiable(_) => one("unsatisfiable", json!({})),
        R::Digest(d) => one("digest", json!(d)),
    }
}

fn component(c: &Component) -> Value {
    let mut object = Map::new();
    object.insert("capabilityKey".into(), json!(c.capability_key));
    if let Some(e) = &c.extractor {
        object.insert("extractor".into(), any(e));
    }
    if let Some(e) = &c.comparator {
        object.insert("comparator".into(), any(e));
    }
    if let Some(w) = c.weight {
        object.insert("weight".into(), float(w));
    }
    Value::Object(object)
}

/// A float as JSON; the mapping's strings for the values JSON numbers cannot hold.
fn float(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v.is_infinite() {
        json!(if v > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(v)
    }
}

fn any(a: &prost_types::Any) -> Value {
    json!({
        "@type": a.type_url,
        "value": base64::engine::general_purpose::STANDARD.encode(&a.value),
    })
}

fn bound_type(t: i32) -> Value {
    match BoundType::try_from(t) {
        Ok(t) => json!(t.as_str_name()),
        Err(_) => json!(t),
    }
}

/// A range's members: lower bound, its type, upper bound, its type.
type Members = (Option<Value>, i32, Option<Value>, i32);

fn int_range(r: &range::IntRange) -> Members {
    (
        r.lower_bound.map(|v| json!(v)),
        r.lower_bound_type,
        r.upper_bound.map(|v| json!(v)),
        r.upper_bound_type,
    )
}

fn long_range(r: &range::LongRange) -> Members {
    let s = |v: i64| json!(v.to_string());
    (
        r.lower_bound.map(s),
        r.lower_bound_type,
        r.upper_bound.map(s),
        r.upper_bound_type,
    )
}

fn float_range(r: &range::FloatRange) -> Members {
    let f = |v: f32| float(f64::from(v));
    (
        r.lower_bound.map(f),
        r.lower_bound_type,
        r.upper_bound.map(f),
        r.upper_bound_type,
    )
}

fn double_range(r: &range::DoubleRange) -> Members {
    (
        r.lower_bound.map(float),
        r.lower_bound_type,
        r.upper_bound.map(float),
        r.upper_bound_type,
    )
}

fn interval(members: Option<Members>) -> Value {
    let Some((lower, lower_type, upper, upper_type)) = members else {
        return json!({});
    };
    let mut range = Map::new();
    if let Some(lower) = lower {
        range.insert("lowerBound".into(), lower);
    }
    range.insert("lowerBoundType".into(), bound_type(lower_type));
    if let Some(upper) = upper {
        range.insert("upperBound".into(), upper);
    }
    range.insert("upperBoundType".into(), bound_type(upper_type));
    json!({"range": Value::Object(range)})
}

fn any_interval(range: Option<&range::AnyRange>, domain: Option<&prost_types::Any>) -> Value {
    let mut object = match interval(range.map(|r| {
        (
            r.lower_bound.as_ref().map(any),
            r.lower_bound_type,
            r.upper_bound.as_ref().map(any),
            r.upper_bound_type,
        )
    })) {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    if let Some(domain) = domain {
        object.insert("discreteDomain".into(), any(domain));
    }
    Value::Object(object)
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn variants_follow_the_canonical_mapping() {
        use capability::CapabilityType as C;
        let mut c = Constraints::default();
        let cap = |k| Capability {
            capability_type: Some(k),
        };
        c.capabilities
            .insert("spark".into(), cap(C::Value("true".into())));
        c.capabilities.insert("cores".into(), cap(C::Long(8)));
        c.capabilities.insert(
            "mem".into(),
            cap(C::IntInterval(capability::IntInterval {
                range: Some(range::IntRange {
                    lower_bound: Some(1),
                    lower_bound_type: BoundType::Closed as i32,
                    upper_bound: None,
                    upper_bound_type: BoundType::Open as i32,
                }),
            })),
        );
        let value = constraints(&c);
        assert_eq!(value["capabilities"]["spark"], json!({"value": "true"}));
        assert_eq!(value["capabilities"]["cores"], json!({"long": "8"}));
        assert_eq!(
            value["capabilities"]["mem"],
            json!({"intInterval": {"range": {"lowerBound": 1, "lowerBoundType": "CLOSED", "upperBoundType": "OPEN"}}})
        );
        assert_eq!(value["requirements"], json!({}));
        assert_eq!(value["priorities"], json!([]));
    }
}
