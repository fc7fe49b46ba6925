//! What this engine advertises to DPM, in the product's typed form (docs/configuration.md): each
//! `constraints.<key>` property becomes capability `<key>` (one element: that capability; several
//! or none: an `Enumeration`), and `ataccama.one.dpe.environment` becomes capability
//! `environment` unless a `constraints.environment` property says otherwise.
//!
//! The environments were priorities in svcid's own protocol; the product's priorities are
//! extractor/comparator pairs with no place for a list of names, so they are advertised as a
//! capability a job's requirements can match (docs/configuration.md, DPE only).

use svcid_config::{Capability as Configured, CapabilityValue, DpeSettings};
use svcid_proto::pb::constraint::Constraints;
use svcid_proto::pb::constraint::constraints::Capability;
use svcid_proto::pb::constraint::constraints::capability::{CapabilityType, Enumeration, Pattern};

/// The capability key the environments are advertised under.
pub const ENVIRONMENT_CAPABILITY: &str = "environment";

/// The constraints a DPE with `settings` registers with and reports in status checks.
pub fn advertised(settings: &DpeSettings) -> Constraints {
    let mut constraints = Constraints::default();
    for (key, configured) in &settings.constraints {
        constraints
            .capabilities
            .insert(key.clone(), capability(configured));
    }
    if !settings.environments.is_empty() {
        let values = settings
            .environments
            .iter()
            .map(|e| CapabilityValue::Value(e.clone()))
            .collect();
        let environments = match settings.environments.len() {
            1 => Configured::One(CapabilityValue::Value(settings.environments[0].clone())),
            _ => Configured::Enumeration(values),
        };
        constraints
            .capabilities
            .entry(ENVIRONMENT_CAPABILITY.to_owned())
            .or_insert_with(|| capability(&environments));
    }
    constraints
}

/// One configured capability in the product's form.
pub fn capability(configured: &Configured) -> Capability {
    match configured {
        Configured::One(value) => element(value),
        Configured::Enumeration(values) => Capability {
            capability_type: Some(CapabilityType::Enumeration(Enumeration {
                capabilities: values.iter().map(element).collect(),
            })),
        },
    }
}

fn element(value: &CapabilityValue) -> Capability {
    let kind = match value {
        CapabilityValue::Value(text) => CapabilityType::Value(text.clone()),
        CapabilityValue::Pattern(regex) => CapabilityType::Pattern(Pattern {
            regex: regex.clone(),
            flags: 0,
        }),
        CapabilityValue::Long(v) => CapabilityType::Long(*v),
        CapabilityValue::Int(v) => CapabilityType::Int(*v),
        CapabilityValue::Double(v) => CapabilityType::Double(*v),
        CapabilityValue::Float(v) => CapabilityType::Float(*v),
        CapabilityValue::Boolean(v) => CapabilityType::Boolean(*v),
    };
    Capability {
        capability_type: Some(kind),
    }
}

#[cfg(test)]
// Tests may unwrap: a panic is how they report a failure.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kind(c: &Capability) -> &CapabilityType {
        c.capability_type.as_ref().unwrap()
    }

    #[test]
    fn every_configured_type_maps_to_its_product_variant() {
        let one = |v| capability(&Configured::One(v));
        assert_eq!(
            kind(&one(CapabilityValue::Value("x".into()))),
            &CapabilityType::Value("x".into())
        );
        assert_eq!(
            kind(&one(CapabilityValue::Pattern("jdbc:.*".into()))),
            &CapabilityType::Pattern(Pattern {
                regex: "jdbc:.*".into(),
                flags: 0
            })
        );
        assert_eq!(
            kind(&one(CapabilityValue::Long(4))),
            &CapabilityType::Long(4)
        );
        assert_eq!(kind(&one(CapabilityValue::Int(4))), &CapabilityType::Int(4));
        assert_eq!(
            kind(&one(CapabilityValue::Double(0.5))),
            &CapabilityType::Double(0.5)
        );
        assert_eq!(
            kind(&one(CapabilityValue::Float(0.5))),
            &CapabilityType::Float(0.5)
        );
        assert_eq!(
            kind(&one(CapabilityValue::Boolean(true))),
            &CapabilityType::Boolean(true)
        );
        let several = capability(&Configured::Enumeration(vec![
            CapabilityValue::Long(1),
            CapabilityValue::Long(2),
        ]));
        let CapabilityType::Enumeration(e) = kind(&several) else {
            panic!("{several:?}");
        };
        assert_eq!(e.capabilities.len(), 2);
        let none = capability(&Configured::Enumeration(Vec::new()));
        assert_eq!(
            kind(&none),
            &CapabilityType::Enumeration(Enumeration {
                capabilities: Vec::new()
            })
        );
    }
}
