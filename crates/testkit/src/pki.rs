//! A test certificate authority made at run time (nothing is committed): a self-signed CA and the
//! certificates it issues, EC P-256 keys, built with OpenSSL's X509 builder. Used for the
//! database server's TLS and client certificates in the registry tests.

use anyhow::Context;
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509, X509Builder, X509Name, X509NameBuilder};

/// A certificate and its private key, PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: Vec<u8>,
    /// Its private key (PKCS#8), PEM.
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued(<certificate and key>)")
    }
}

/// A CA valid from yesterday for a year.
pub struct TestCa {
    cert: X509,
    key: PKey<Private>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

fn ec_key() -> anyhow::Result<PKey<Private>> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

/// A builder with a random serial, subject `CN=<cn>`, valid from yesterday for a year.
fn builder(cn: &str, key: &PKey<Private>) -> anyhow::Result<(X509Builder, X509Name)> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", cn)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_pubkey(key)?;
    let (from, until) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(365)?);
    b.set_not_before(&from)?;
    b.set_not_after(&until)?;
    Ok((b, name))
}

impl TestCa {
    /// A new CA named `CN=<cn>`.
    pub fn new(cn: &str) -> anyhow::Result<TestCa> {
        let key = ec_key()?;
        let (mut b, subject) = builder(cn, &key)?;
        b.set_issuer_name(&subject)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(TestCa {
            cert: b.build(),
            key,
        })
    }

    /// The CA's certificate, PEM (what `sslrootcert` or `ssl_ca_file` names).
    pub fn cert_pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap_or_default()
    }

    /// A certificate for `CN=<cn>` with the subjectAltNames `hosts` (IP addresses as IP names,
    /// the others as DNS names); none for a client certificate.
    pub fn issue(&self, cn: &str, hosts: &[&str]) -> anyhow::Result<Issued> {
        let key = ec_key()?;
        let (mut b, _) = builder(cn, &key)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.append_extension(BasicConstraints::new().build()?)?;
        if !hosts.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for host in hosts {
                if host.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(host);
                } else {
                    san.dns(host);
                }
            }
            let san = san.build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(san)?;
        }
        b.sign(&self.key, MessageDigest::sha256())
            .context("signing a certificate")?;
        Ok(Issued {
            cert_pem: b.build().to_pem()?,
            key_pem: key.private_key_to_pem_pkcs8()?,
        })
    }
}
