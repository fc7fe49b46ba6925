//! The deployments: the table of configured peers (`ataccama.one.platform.deployments.*`) and
//! their token keys, indexed by fingerprint.
//!
//! Vocabulary: *deployments* is this table, everywhere in svcid's code (the config crate binds it,
//! the verifier holds it, `deploymentsReloaded` logs its changes); *registry* is only DPM's engine
//! registry, never this table.
//!
//! Built once per configuration load from [`Deployment`] values the config crate produced, then
//! immutable; a reload builds new deployments and swaps them in whole (see
//! [`crate::TokenVerifier::replace_deployments`]). Building checks what only the whole set can show
//! (a fingerprint used twice, a deployment named twice) and prepares one OpenSSL-backed ES256
//! verifier per key, so verifying a token never parses a key. Lookups match a token's `kid` against
//! configured fingerprints exactly: no case folding, trimming or other normalisation. Whether a
//! fingerprint equals the `kid` inside its content is the configuration checker's business.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::es256::Es256Verifier;
use crate::jwk::PublicKey;
use crate::printable::{EXCERPT_CHARS, excerpt};
use crate::token::TokenProfile;

/// A configured peer: `ataccama.one.platform.deployments.<name>.*`.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// The `<name>` segment (`dpe-dev`): the identity's `id`.
    pub name: String,
    /// The peer's module type (`dpe`): what authorization and audience decisions use.
    pub module: String,
    /// Informational environment name (`dev`), for logs.
    pub environment: Option<String>,
    /// Informational address of the peer, for logs.
    pub uri: Option<String>,
    /// Roles granted to the peer here (e.g. `IMPERSONATION`); never taken from tokens.
    pub roles: Vec<String>,
    /// The peer's token keys; several during a rotation.
    pub keys: Vec<DeploymentKey>,
    /// `security.token-profile`: whether the peer is a product module, whose tokens are accepted
    /// without `aud` and to which tokens are sent without `aud` (docs/wire.md).
    pub token_profile: TokenProfile,
}

/// One of a peer's keys: `…security.jwt-keys.<key>.*`.
#[derive(Clone, Debug)]
pub struct DeploymentKey {
    /// The `<key>` segment (`key1`), to name the key in logs and diffs.
    pub name: String,
    /// The `kid` this peer puts in its token headers; matched exactly.
    pub fingerprint: String,
    /// The peer's public key from `content`.
    pub public: PublicKey,
    /// `is-revoked`: tokens under this key are refused, without restarting.
    pub revoked: bool,
}

/// Why a set of deployments cannot form a [`Deployments`] table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeploymentsError {
    /// Two keys share a fingerprint, so a token's `kid` could not name one peer (docs/security.md C6).
    #[error("fingerprint {fingerprint} is configured for both {first} and {second}")]
    DuplicateFingerprint {
        /// The shared fingerprint (shortened).
        fingerprint: String,
        /// The first key holding it, as `deployment/key`.
        first: String,
        /// The other key holding it, as `deployment/key`.
        second: String,
    },
    /// A key with an empty fingerprint could never match, which is certainly a mistake.
    #[error("key {key} has an empty fingerprint")]
    EmptyFingerprint {
        /// The key, as `deployment/key`.
        key: String,
    },
    /// The same deployment name twice: identities would be ambiguous.
    #[error("deployment {name} is defined twice")]
    DuplicateDeployment {
        /// The repeated name.
        name: String,
    },
    /// OpenSSL refused a key that passed validation (not expected in practice).
    #[error("key {key} could not be prepared for verification: {detail}")]
    Verifier {
        /// The key, as `deployment/key`.
        key: String,
        /// OpenSSL's description.
        detail: String,
    },
}

/// Where a fingerprint points, with its verifier ready.
struct KeySlot {
    /// Index into `deployments`.
    deployment: usize,
    /// Index into that deployment's `keys`.
    key: usize,
    /// Prepared once here so verification never parses or converts a key.
    verifier: Es256Verifier,
}

/// The immutable table of configured peers, indexed by exact fingerprint.
pub struct Deployments {
    /// The deployments in configuration order.
    deployments: Vec<Deployment>,
    /// Fingerprint → key; exact `String` equality, no normalisation.
    by_fingerprint: HashMap<String, KeySlot>,
    /// Deployment name → index in `deployments` (DPM looks up the profile of an engine's
    /// deployment before every status check).
    by_name: HashMap<String, usize>,
}

impl fmt::Debug for Deployments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deployments")
            .field("deployments", &self.deployments.len())
            .field("keys", &self.by_fingerprint.len())
            .finish()
    }
}

impl Deployments {
    /// Indexes `deployments` and prepares a verifier per key. Every problem is reported, not only the
    /// first: duplicate fingerprints (across or within deployments), empty fingerprints, duplicate
    /// deployment names.
    pub fn new(deployments: Vec<Deployment>) -> Result<Deployments, Vec<DeploymentsError>> {
        let mut errors = Vec::new();
        let mut by_fingerprint: HashMap<String, KeySlot> = HashMap::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (d, deployment) in deployments.iter().enumerate() {
            if by_name.insert(deployment.name.clone(), d).is_some() {
                errors.push(DeploymentsError::DuplicateDeployment {
                    name: deployment.name.clone(),
                });
            }
            for (k, key) in deployment.keys.iter().enumerate() {
                let label = format!("{}/{}", deployment.name, key.name);
                if key.fingerprint.is_empty() {
                    errors.push(DeploymentsError::EmptyFingerprint { key: label });
                    continue;
                }
                if let Some(existing) = by_fingerprint.get(&key.fingerprint) {
                    let holder = &deployments[existing.deployment];
                    errors.push(DeploymentsError::DuplicateFingerprint {
                        fingerprint: excerpt(&key.fingerprint, EXCERPT_CHARS),
                        first: format!("{}/{}", holder.name, holder.keys[existing.key].name),
                        second: label,
                    });
                    continue;
                }
                match verifier_for(&key.public) {
                    Ok(verifier) => {
                        by_fingerprint.insert(
                            key.fingerprint.clone(),
                            KeySlot {
                                deployment: d,
                                key: k,
                                verifier,
                            },
                        );
                    }
                    Err(detail) => errors.push(DeploymentsError::Verifier { key: label, detail }),
                }
            }
        }
        if errors.is_empty() {
            Ok(Deployments {
                deployments,
                by_fingerprint,
                by_name,
            })
        } else {
            Err(errors)
        }
    }

    /// A table with no peers: every token is refused with an unknown kid.
    pub fn empty() -> Deployments {
        Deployments {
            deployments: Vec::new(),
            by_fingerprint: HashMap::new(),
            by_name: HashMap::new(),
        }
    }

    /// The deployments in configuration order.
    pub fn deployments(&self) -> &[Deployment] {
        &self.deployments
    }

    /// The deployment named `name` (exactly, as configured).
    pub fn deployment(&self, name: &str) -> Option<&Deployment> {
        self.by_name.get(name).map(|&d| &self.deployments[d])
    }

    /// The token profile of the deployment named `name`; `None` when there is no such deployment.
    /// A DPM asks this for the deployment that registered an engine (the `id` of the engine's
    /// [`ServiceIdentity`](crate::identity::ServiceIdentity)) before calling that engine.
    pub fn token_profile(&self, name: &str) -> Option<TokenProfile> {
        self.deployment(name)
            .map(|deployment| deployment.token_profile)
    }

    /// The token profile for calls to peers of module type `module` when the caller does not know
    /// which deployment it is calling (a DPE calling its DPM): `product` only when there is at
    /// least one deployment of that type and all of them are `product`; otherwise `strict`, the
    /// default profile. Deployments of one type that disagree are a configuration mistake
    /// the caller cannot resolve, so the default profile is used.
    pub fn token_profile_for_module(&self, module: &str) -> TokenProfile {
        let mut of_module = self
            .deployments
            .iter()
            .filter(|deployment| deployment.module == module)
            .peekable();
        if of_module.peek().is_some()
            && of_module.all(|deployment| deployment.token_profile == TokenProfile::Product)
        {
            TokenProfile::Product
        } else {
            TokenProfile::Strict
        }
    }

    /// The deployment and key whose fingerprint is exactly `kid` (revoked keys included).
    pub fn lookup(&self, kid: &str) -> Option<(&Deployment, &DeploymentKey)> {
        self.slot(kid).map(|(deployment, key, _)| (deployment, key))
    }

    /// Like [`Deployments::lookup`], with the key's prepared verifier.
    pub(crate) fn slot(&self, kid: &str) -> Option<(&Deployment, &DeploymentKey, &Es256Verifier)> {
        let slot = self.by_fingerprint.get(kid)?;
        let deployment = self.deployments.get(slot.deployment)?;
        let key = deployment.keys.get(slot.key)?;
        Some((deployment, key, &slot.verifier))
    }

    /// What changed from `old` to `self`, for reload logs. Keys are identified by deployment, key
    /// name and fingerprint together, so a key whose fingerprint changed shows as removed + added.
    pub fn diff(&self, old: &Deployments) -> DeploymentsDiff {
        let before = old.key_states();
        let after = self.key_states();
        let mut diff = DeploymentsDiff::default();
        for (label, revoked) in &after {
            match before.get(label) {
                None => diff.added.push(label.clone()),
                Some(false) if *revoked => diff.revoked.push(label.clone()),
                Some(true) if !*revoked => diff.reinstated.push(label.clone()),
                Some(_) => {}
            }
        }
        diff.removed = before
            .keys()
            .filter(|label| !after.contains_key(*label))
            .cloned()
            .collect();
        diff.token_profiles = self
            .deployments
            .iter()
            .filter_map(|deployment| {
                let was = old.token_profile(&deployment.name)?;
                (was != deployment.token_profile)
                    .then(|| format!("{}:{was}->{}", deployment.name, deployment.token_profile))
            })
            .collect();
        diff
    }

    /// `"deployment/key (fingerprint)"` → revoked, sorted so diffs are deterministic.
    fn key_states(&self) -> BTreeMap<String, bool> {
        self.deployments
            .iter()
            .flat_map(|deployment| {
                deployment.keys.iter().map(move |key| {
                    (
                        format!(
                            "{}/{} ({})",
                            deployment.name,
                            key.name,
                            excerpt(&key.fingerprint, EXCERPT_CHARS)
                        ),
                        key.revoked,
                    )
                })
            })
            .collect()
    }
}

fn verifier_for(public: &PublicKey) -> Result<Es256Verifier, String> {
    Es256Verifier::new(public.point())
}

/// How reloaded deployments differ from the previous one; key entries read
/// `dpe-dev/key1 (<fingerprint>)`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeploymentsDiff {
    /// Keys present now and not before.
    pub added: Vec<String>,
    /// Keys present before and not now.
    pub removed: Vec<String>,
    /// Keys present in both whose `is-revoked` went from false to true.
    pub revoked: Vec<String>,
    /// Keys present in both whose `is-revoked` went from true to false.
    pub reinstated: Vec<String>,
    /// Deployments present in both whose token profile changed, as `dpe-dev:strict->product`.
    pub token_profiles: Vec<String>,
}

impl DeploymentsDiff {
    /// True when the reload changed no key and no token profile.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.revoked.is_empty()
            && self.reinstated.is_empty()
            && self.token_profiles.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
pub(crate) mod tests {
    use super::*;
    use crate::jwk::GeneratorKey;

    pub(crate) fn deployment(name: &str, module: &str, keys: Vec<DeploymentKey>) -> Deployment {
        Deployment {
            name: name.into(),
            module: module.into(),
            environment: Some("dev".into()),
            uri: None,
            roles: vec![],
            keys,
            token_profile: TokenProfile::Strict,
        }
    }

    pub(crate) fn key(name: &str, generator: &GeneratorKey, revoked: bool) -> DeploymentKey {
        DeploymentKey {
            name: name.into(),
            fingerprint: generator.kid().into(),
            public: generator.public_key(),
            revoked,
        }
    }

    #[test]
    fn lookup_is_exact() {
        let a = GeneratorKey::generate();
        let table = Deployments::new(vec![deployment(
            "dpe-dev",
            "dpe",
            vec![key("key1", &a, false)],
        )])
        .unwrap();
        let (deployment, found) = table.lookup(a.kid()).unwrap();
        assert_eq!(deployment.name, "dpe-dev");
        assert_eq!(found.name, "key1");
        for variant in [
            a.kid().to_uppercase(),
            a.kid().to_lowercase(),
            format!(" {}", a.kid()),
            format!("{}\0", a.kid()),
            format!("../{}", a.kid()),
            a.kid()[1..].to_owned(),
        ] {
            if variant != a.kid() {
                assert!(table.lookup(&variant).is_none(), "{variant}");
            }
        }
        assert!(Deployments::empty().lookup(a.kid()).is_none());
    }

    #[test]
    fn duplicate_fingerprints_are_refused_across_and_within_deployments() {
        let a = GeneratorKey::generate();
        let b = GeneratorKey::generate();
        let errors = Deployments::new(vec![
            deployment("dpe-dev", "dpe", vec![key("key1", &a, false)]),
            deployment("dpe-prod", "dpe", vec![key("key1", &a, false)]),
            deployment(
                "dpm-dev",
                "dpm",
                vec![key("key1", &b, false), key("key2", &b, true)],
            ),
        ])
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                DeploymentsError::DuplicateFingerprint {
                    fingerprint: a.kid().into(),
                    first: "dpe-dev/key1".into(),
                    second: "dpe-prod/key1".into(),
                },
                DeploymentsError::DuplicateFingerprint {
                    fingerprint: b.kid().into(),
                    first: "dpm-dev/key1".into(),
                    second: "dpm-dev/key2".into(),
                },
            ]
        );
    }

    #[test]
    fn duplicate_names_and_empty_fingerprints_are_refused() {
        let a = GeneratorKey::generate();
        let mut empty = key("key2", &a, false);
        empty.fingerprint.clear();
        let errors = Deployments::new(vec![
            deployment("dpe-dev", "dpe", vec![key("key1", &a, false), empty]),
            deployment("dpe-dev", "dpe", vec![]),
        ])
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                DeploymentsError::EmptyFingerprint {
                    key: "dpe-dev/key2".into()
                },
                DeploymentsError::DuplicateDeployment {
                    name: "dpe-dev".into()
                },
            ]
        );
    }

    #[test]
    fn diff_reports_added_removed_revoked_and_reinstated() {
        let (a, b, c, d) = (
            GeneratorKey::generate(),
            GeneratorKey::generate(),
            GeneratorKey::generate(),
            GeneratorKey::generate(),
        );
        let old = Deployments::new(vec![deployment(
            "dpe-dev",
            "dpe",
            vec![
                key("key1", &a, false),
                key("key2", &b, true),
                key("key3", &c, false),
            ],
        )])
        .unwrap();
        let new = Deployments::new(vec![deployment(
            "dpe-dev",
            "dpe",
            vec![
                key("key1", &a, true),
                key("key2", &b, false),
                key("key4", &d, false),
            ],
        )])
        .unwrap();
        let diff = new.diff(&old);
        assert_eq!(diff.added, [format!("dpe-dev/key4 ({})", d.kid())]);
        assert_eq!(diff.removed, [format!("dpe-dev/key3 ({})", c.kid())]);
        assert_eq!(diff.revoked, [format!("dpe-dev/key1 ({})", a.kid())]);
        assert_eq!(diff.reinstated, [format!("dpe-dev/key2 ({})", b.kid())]);
        assert!(!diff.is_empty());
        assert!(diff.token_profiles.is_empty());
        assert!(new.diff(&new).is_empty());
    }

    fn with_profile(mut deployment: Deployment, profile: TokenProfile) -> Deployment {
        deployment.token_profile = profile;
        deployment
    }

    #[test]
    fn profiles_by_deployment_by_module_and_in_the_diff() {
        let (a, b, c) = (
            GeneratorKey::generate(),
            GeneratorKey::generate(),
            GeneratorKey::generate(),
        );
        let table = Deployments::new(vec![
            with_profile(
                deployment("dpe-product", "dpe", vec![key("key1", &a, false)]),
                TokenProfile::Product,
            ),
            deployment("dpe-dev", "dpe", vec![key("key1", &b, false)]),
            with_profile(
                deployment("dpm-prod", "dpm", vec![key("key1", &c, false)]),
                TokenProfile::Product,
            ),
        ])
        .unwrap();
        assert_eq!(
            table.token_profile("dpe-product"),
            Some(TokenProfile::Product)
        );
        assert_eq!(table.token_profile("dpe-dev"), Some(TokenProfile::Strict));
        assert_eq!(table.token_profile("DPE-DEV"), None);
        // All dpm deployments are product; the dpe ones disagree; there is no ai module.
        assert_eq!(table.token_profile_for_module("dpm"), TokenProfile::Product);
        assert_eq!(table.token_profile_for_module("dpe"), TokenProfile::Strict);
        assert_eq!(table.token_profile_for_module("ai"), TokenProfile::Strict);

        let flipped = Deployments::new(vec![
            deployment("dpe-product", "dpe", vec![key("key1", &a, false)]),
            deployment("dpe-dev", "dpe", vec![key("key1", &b, false)]),
        ])
        .unwrap();
        let diff = flipped.diff(&table);
        assert_eq!(diff.token_profiles, ["dpe-product:product->strict"]);
        assert!(diff.added.is_empty() && diff.revoked.is_empty());
        assert!(!diff.is_empty());
    }
}
