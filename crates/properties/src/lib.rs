//! Java `.properties` parsing with provenance, Spring Boot relaxed binding and property sources.
//!
//! This is the lowest layer of svcid and depends on no other svcid crate. It turns the text of
//! `etc/application.properties`, the environment and `--name=value` arguments into one
//! [`PropertySet`] in which every [`Value`] remembers its [`Origin`], so that higher layers can
//! bind typed settings and report every mistake as a [`Problem`] naming file, line and property.
//! It knows nothing about which properties exist: that is the business of the `config` crate.
//!
//! - `syntax` (private) reads Java `.properties` text exactly as `java.util.Properties.load` does.
//! - `name` (private) implements Spring's relaxed names: uniform segments, list indices, and the
//!   environment-variable mapping.
//! - [`PropertySet`] layers the sources (file, then environment, then arguments; later wins).
//! - [`parse_duration`] and [`parse_bool`] are Spring's conversions for the two value types that
//!   every module reads; [`did_you_mean`] supports unknown-property diagnostics.
//! - [`codes`] names the problems this crate reports itself (file syntax, arguments).

pub mod codes;
mod name;
#[cfg(test)]
mod noise;
mod problem;
mod set;
mod suggest;
mod syntax;
mod value;

pub use name::uniform;
pub use problem::{Origin, Problem, ProblemCode, Severity};
pub use set::{PropertySet, Value};
pub use suggest::did_you_mean;
pub use value::{DurationUnit, ValueError, parse_bool, parse_duration};
