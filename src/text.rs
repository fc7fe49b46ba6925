//! Constraints in the product's log form, as DPM's `registerEngine` event shows them:
//! `(requirements: { … } capabilities: { … } priorities: [ … ])`, maps sorted by key.
//!
//! The product prints its own Java objects there; its exact rendering of each variant is not
//! part of any contract, so this one aims at being unambiguous for a person reading a log:
//!
//! | variant | rendered |
//! |---|---|
//! | `value`, `digest` | `"text"`, `digest "text"` (quoted, escaped) |
//! | `pattern` | `pattern "regex"`, with ` flags=N` when flags are set |
//! | `int`, `long`, `float`, `double`, `boolean` | the number or `true`/`false` |
//! | `enumeration` | `[a, b]` |
//! | intervals | `[1, 5)`: `[`/`]` closed, `(`/`)` open, a missing bound `-inf`/`+inf` |
//! | `any` | `any <type url> (<n> bytes)` |
//! | `and`, `or`, `not` | `and(r1, r2)`, `or(…)`, `not(r)` |
//! | `capability_containing`, `capability_referring` | `containing(cap, r)`, `referring("key", r)` |
//! | `unsatisfiable` | `unsatisfiable` |
//! | a priority component | `key extractor=<type> comparator=<type> weight=<w>` |
//!
//! Every piece of text that came from the wire is written with Rust's `{:?}` escaping, so a
//! hostile engine cannot forge log structure with quotes or line breaks.

use std::collections::HashMap;
use std::fmt::{self, Write as _};

use crate::pb::constraint::constraints::priority::Component;
use crate::pb::constraint::constraints::{Capability, Requirement, capability, requirement};
use crate::pb::constraint::range::BoundType;
use crate::pb::constraint::{Constraints, range};

/// The product's log form of `constraints`.
pub fn constraints(constraints: &Constraints) -> String {
    let mut out = String::from("(requirements: ");
    map(&mut out, &constraints.requirements, requirement_text);
    out.push_str(" capabilities: ");
    map(&mut out, &constraints.capabilities, capability_text);
    out.push_str(" priorities: [");
    for (i, priority) in constraints.priorities.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('[');
        for (j, component) in priority.components.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            component_text(&mut out, component);
        }
        out.push(']');
    }
    out.push_str("])");
    out
}

/// One capability in the log form (the listing prints capabilities one by one).
pub fn capability(capability: &Capability) -> String {
    let mut out = String::new();
    capability_text(&mut out, capability);
    out
}

fn map<T>(out: &mut String, entries: &HashMap<String, T>, item: fn(&mut String, &T)) {
    if entries.is_empty() {
        out.push_str("{}");
        return;
    }
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    out.push_str("{ ");
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}: ", Key(key));
        item(out, value);
    }
    out.push_str(" }");
}

/// A map key: bare when it is a plain dotted name, quoted otherwise.
struct Key<'a>(&'a str);

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = !self.0.is_empty()
            && self
                .0
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if plain {
            f.write_str(self.0)
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

fn capability_text(out: &mut String, capability: &Capability) {
    use capability::CapabilityType as C;
    let Some(kind) = &capability.capability_type else {
        out.push_str("unset");
        return;
    };
    match kind {
        C::Enumeration(e) => {
            out.push('[');
            for (i, c) in e.capabilities.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                capability_text(out, c);
            }
            out.push(']');
        }
        C::Pattern(p) => pattern(out, &p.regex, p.flags),
        C::Value(v) => {
            let _ = write!(out, "{v:?}");
        }
        C::Float(v) => {
            let _ = write!(out, "{v}");
        }
        C::Double(v) => {
            let _ = write!(out, "{v}");
        }
        C::Int(v) => {
            let _ = write!(out, "{v}");
        }
        C::Long(v) => {
            let _ = write!(out, "{v}");
        }
        C::Boolean(v) => {
            let _ = write!(out, "{v}");
        }
        C::Any(any) => any_text(out, any),
        C::IntInterval(i) => interval(out, i.range.as_ref().map(int_bounds)),
        C::LongInterval(i) => interval(out, i.range.as_ref().map(long_bounds)),
        C::FloatInterval(i) => interval(out, i.range.as_ref().map(float_bounds)),
        C::DoubleInterval(i) => interval(out, i.range.as_ref().map(double_bounds)),
        C::AnyInterval(i) => any_interval(out, i.range.as_ref(), i.discrete_domain.as_ref()),
        C::Digest(d) => {
            let _ = write!(out, "digest {d:?}");
        }
    }
}

fn requirement_text(out: &mut String, requirement: &Requirement) {
    use requirement::RequirementType as R;
    let Some(kind) = &requirement.requirement_type else {
        out.push_str("unset");
        return;
    };
    let list = |out: &mut String, name: &str, items: &[Requirement]| {
        out.push_str(name);
        out.push('(');
        for (i, r) in items.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            requirement_text(out, r);
        }
        out.push(')');
    };
    let boxed = |out: &mut String, r: Option<&Requirement>| match r {
        Some(r) => requirement_text(out, r),
        None => out.push_str("unset"),
    };
    match kind {
        R::And(a) => list(out, "and", &a.requirements),
        R::Or(o) => list(out, "or", &o.requirements),
        R::Not(n) => {
            out.push_str("not(");
            boxed(out, n.requirement.as_deref());
            out.push(')');
        }
        R::Pattern(p) => pattern(out, &p.regex, p.flags),
        R::Value(v) => {
            let _ = write!(out, "{v:?}");
        }
        R::Float(v) => {
            let _ = write!(out, "{v}");
        }
        R::Double(v) => {
            let _ = write!(out, "{v}");
        }
        R::Int(v) => {
            let _ = write!(out, "{v}");
        }
        R::Long(v) => {
            let _ = write!(out, "{v}");
        }
        R::Boolean(v) => {
            let _ = write!(out, "{v}");
        }
        R::Any(any) => any_text(out, any),
        R::IntInterval(i) => interval(out, i.range.as_ref().map(int_bounds)),
        R::LongInterval(i) => interval(out, i.range.as_ref().map(long_bounds)),
        R::FloatInterval(i) => interval(out, i.range.as_ref().map(float_bounds)),
        R::DoubleInterval(i) => interval(out, i.range.as_ref().map(double_bounds)),
        R::AnyInterval(i) => any_interval(out, i.range.as_ref(), i.discrete_domain.as_ref()),
        R::CapabilityContaining(c) => {
            out.push_str("containing(");
            match &c.capability {
                Some(capability) => capability_text(out, capability),
                None => out.push_str("unset"),
            }
            out.push_str(", ");
            boxed(out, c.requirement.as_deref());
            out.push(')');
        }
        R::CapabilityReferring(c) => {
            let _ = write!(out, "referring({:?}, ", c.key);
            boxed(out, c.requirement.as_deref());
            out.push(')');
        }
        R::Unsatisfiable(_) => out.push_str("unsatisfiable"),
        R::Digest(d) => {
            let _ = write!(out, "digest {d:?}");
        }
    }
}

fn component_text(out: &mut String, component: &Component) {
    let _ = write!(out, "{}", Key(&component.capability_key));
    if let Some(extractor) = &component.extractor {
        let _ = write!(out, " extractor={}", short_type(&extractor.type_url));
    }
    if let Some(comparator) = &component.comparator {
        let _ = write!(out, " comparator={}", short_type(&comparator.type_url));
    }
    if let Some(weight) = component.weight {
        let _ = write!(out, " weight={weight}");
    }
}

/// `type.googleapis.com/a.b.LongValueKeyExtractor` → `LongValueKeyExtractor` (escaped when odd).
fn short_type(type_url: &str) -> String {
    let name = type_url.rsplit(['/', '.']).next().unwrap_or(type_url);
    format!("{}", Key(name))
}

fn pattern(out: &mut String, regex: &str, flags: i32) {
    let _ = write!(out, "pattern {regex:?}");
    if flags != 0 {
        let _ = write!(out, " flags={flags}");
    }
}

fn any_text(out: &mut String, any: &prost_types::Any) {
    let _ = write!(out, "any {:?} ({} bytes)", any.type_url, any.value.len());
}

/// Lower bound, its type, upper bound, its type, as text.
type Bounds = (Option<String>, i32, Option<String>, i32);

fn int_bounds(r: &range::IntRange) -> Bounds {
    let s = |v: Option<i32>| v.map(|v| v.to_string());
    (
        s(r.lower_bound),
        r.lower_bound_type,
        s(r.upper_bound),
        r.upper_bound_type,
    )
}

fn long_bounds(r: &range::LongRange) -> Bounds {
    let s = |v: Option<i64>| v.map(|v| v.to_string());
    (
        s(r.lower_bound),
        r.lower_bound_type,
        s(r.upper_bound),
        r.upper_bound_type,
    )
}

fn float_bounds(r: &range::FloatRange) -> Bounds {
    let s = |v: Option<f32>| v.map(|v| v.to_string());
    (
        s(r.lower_bound),
        r.lower_bound_type,
        s(r.upper_bound),
        r.upper_bound_type,
    )
}

fn double_bounds(r: &range::DoubleRange) -> Bounds {
    let s = |v: Option<f64>| v.map(|v| v.to_string());
    (
        s(r.lower_bound),
        r.lower_bound_type,
        s(r.upper_bound),
        r.upper_bound_type,
    )
}

fn interval(out: &mut String, bounds: Option<Bounds>) {
    let Some((lower, lower_type, upper, upper_type)) = bounds else {
        out.push_str("(-inf, +inf)");
        return;
    };
    let closed = |t: i32| t == BoundType::Closed as i32;
    out.push(if closed(lower_type) { '[' } else { '(' });
    out.push_str(lower.as_deref().unwrap_or("-inf"));
    out.push_str(", ");
    out.push_str(upper.as_deref().unwrap_or("+inf"));
    out.push(if closed(upper_type) { ']' } else { ')' });
}

fn any_interval(
    out: &mut String,
    range: Option<&range::AnyRange>,
    domain: Option<&prost_types::Any>,
) {
    let text = |v: Option<&prost_types::Any>| {
        v.map(|any| {
            let mut s = String::new();
            any_text(&mut s, any);
            s
        })
    };
    interval(
        out,
        range.map(|r| {
            (
                text(r.lower_bound.as_ref()),
                r.lower_bound_type,
                text(r.upper_bound.as_ref()),
                r.upper_bound_type,
            )
        }),
    );
    if let Some(domain) = domain {
        out.push_str(" in ");
        any_text(out, domain);
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pb::constraint::constraints::{Priority, capability::Enumeration};

    fn cap(kind: capability::CapabilityType) -> Capability {
        Capability {
            capability_type: Some(kind),
        }
    }

    #[test]
    fn empty_constraints_render_like_the_product() {
        assert_eq!(
            constraints(&Constraints::default()),
            "(requirements: {} capabilities: {} priorities: [])"
        );
    }

    #[test]
    fn every_kind_renders_sorted_and_escaped() {
        use capability::CapabilityType as C;
        let mut c = Constraints::default();
        c.capabilities.insert("b.long".into(), cap(C::Long(4)));
        c.capabilities.insert(
            "a.enum".into(),
            cap(C::Enumeration(Enumeration {
                capabilities: vec![cap(C::Value("x\"y".into())), cap(C::Boolean(true))],
            })),
        );
        c.capabilities.insert(
            "c.range".into(),
            cap(C::IntInterval(capability::IntInterval {
                range: Some(range::IntRange {
                    lower_bound: Some(1),
                    lower_bound_type: BoundType::Closed as i32,
                    upper_bound: None,
                    upper_bound_type: BoundType::Open as i32,
                }),
            })),
        );
        c.capabilities
            .insert("<script>".into(), cap(C::Value("\n".into())));
        c.requirements.insert(
            "r".into(),
            Requirement {
                requirement_type: Some(requirement::RequirementType::Not(Box::new(
                    requirement::Not {
                        requirement: Some(Box::new(Requirement {
                            requirement_type: Some(requirement::RequirementType::Unsatisfiable(
                                requirement::Unsatisfiable {},
                            )),
                        })),
                    },
                ))),
            },
        );
        c.priorities.push(Priority {
            components: vec![Component {
                capability_key: "b.long".into(),
                extractor: Some(prost_types::Any {
                    type_url: "type.googleapis.com/ataccama.dppapi.constraint.standard.LongValueKeyExtractor".into(),
                    value: Vec::new(),
                }),
                comparator: None,
                weight: Some(0.5),
            }],
        });
        assert_eq!(
            constraints(&c),
            "(requirements: { r: not(unsatisfiable) } capabilities: { \"<script>\": \"\\n\", \
             a.enum: [\"x\\\"y\", true], b.long: 4, c.range: [1, +inf) } priorities: \
             [[b.long extractor=LongValueKeyExtractor weight=0.5]])"
        );
    }
}
