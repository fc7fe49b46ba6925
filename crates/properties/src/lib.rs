//! Java .properties parsing with provenance, Spring relaxed binding and property sources.
