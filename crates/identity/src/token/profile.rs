//! Token profiles (docs/wire.md): how tokens to and from one peer are shaped.
//!
//! The product's own modules do not speak the strict profile: its Java modules mint tokens
//! without `aud` and never check it, and its Python module refuses every token that carries `aud`.
//! So the profile is chosen per peer (`…deployments.<name>.security.token-profile`), never
//! globally: a peer marked `product` gets audience-less tokens and may send them; every other peer
//! keeps the strict profile.

use std::fmt;
use std::str::FromStr;

/// How tokens to and from one peer are shaped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TokenProfile {
    /// The default: tokens we send name the receiver's module type in `aud`, and the
    /// peer's tokens must name ours (unless `require-audience=false`).
    #[default]
    Strict,
    /// The peer is a product module: its tokens are accepted without `aud` (one that carries
    /// `aud` must still name us), and the tokens we send it carry no `aud`. Every other check of
    /// the validation policy still applies.
    Product,
}

impl TokenProfile {
    /// Every profile, in the order the docs list them.
    pub const ALL: [TokenProfile; 2] = [TokenProfile::Strict, TokenProfile::Product];

    /// The property value naming this profile: `strict` or `product`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenProfile::Strict => "strict",
            TokenProfile::Product => "product",
        }
    }

    /// Whether tokens minted for a peer of this profile carry `aud`.
    pub fn sends_audience(self) -> bool {
        self == TokenProfile::Strict
    }

    /// Whether this profile by itself requires a peer's tokens to carry `aud`. A strict peer may
    /// still be let off by `require-audience=false` ([`crate::token::VerifyPolicy`]).
    pub fn requires_audience(self) -> bool {
        self == TokenProfile::Strict
    }
}

impl fmt::Display for TokenProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that names no [`TokenProfile`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a token profile (use strict or product)")]
pub struct UnknownTokenProfile;

impl FromStr for TokenProfile {
    type Err = UnknownTokenProfile;

    /// `strict` or `product`, in any ASCII case (Spring binds enum values leniently), no
    /// surrounding spaces.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        TokenProfile::ALL
            .into_iter()
            .find(|profile| value.eq_ignore_ascii_case(profile.as_str()))
            .ok_or(UnknownTokenProfile)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_print_as_their_property_values() {
        for profile in TokenProfile::ALL {
            assert_eq!(profile.as_str().parse::<TokenProfile>(), Ok(profile));
            assert_eq!(profile.to_string(), profile.as_str());
        }
        assert_eq!("PRODUCT".parse::<TokenProfile>(), Ok(TokenProfile::Product));
        assert_eq!(TokenProfile::default(), TokenProfile::Strict);
        for bad in ["", "prod", "strict ", "none", "product\0"] {
            assert_eq!(
                bad.parse::<TokenProfile>(),
                Err(UnknownTokenProfile),
                "{bad:?}"
            );
        }
    }
}
