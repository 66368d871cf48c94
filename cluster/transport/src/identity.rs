//! Who is on the other end of a connection, as named by its verified certificate.
//!
//! Node certificates name `node-<id>` (DNS SAN and CN), client certificates `client-<name>`. The identity is read
//! only from certificates that rustls has already verified against the cluster CA.

use std::fmt;

use quinn::Connection;
use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::error::IdentityError;
use crate::NodeId;

/// Prefix of the DNS SAN and CN of node certificates.
pub const NODE_NAME_PREFIX: &str = "node-";
/// Prefix of the DNS SAN and CN of client certificates.
pub const CLIENT_NAME_PREFIX: &str = "client-";
/// Longest client name accepted (so `client-<name>` stays a short DNS label).
pub const CLIENT_NAME_BYTES_MAX: usize = 40;

/// The authenticated identity of a connection's remote side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerIdentity {
    /// A cluster node, by id.
    Node(NodeId),
    /// A client, by name (without the `client-` prefix).
    Client(String),
}

impl PeerIdentity {
    /// The DNS name that carries this identity in a certificate: `node-<id>` or `client-<name>`.
    pub fn dns_name(&self) -> String {
        match self {
            PeerIdentity::Node(id) => format!("{NODE_NAME_PREFIX}{}", id.0),
            PeerIdentity::Client(name) => format!("{CLIENT_NAME_PREFIX}{name}"),
        }
    }

    /// Parses `node-<id>` or `client-<name>`; anything else (including `node-007`) is `None`.
    pub fn from_dns_name(name: &str) -> Option<PeerIdentity> {
        if let Some(digits) = name.strip_prefix(NODE_NAME_PREFIX) {
            let id: u64 = digits.parse().ok()?;
            // One spelling per id: no leading zeros or signs.
            return (id.to_string() == digits).then_some(PeerIdentity::Node(NodeId(id)));
        }
        let client = name.strip_prefix(CLIENT_NAME_PREFIX)?;
        is_valid_client_name(client).then(|| PeerIdentity::Client(client.to_string()))
    }

    /// Reads the identity from a DER certificate: DNS SANs first, then the CN, all of which must agree.
    pub fn from_certificate(der: &CertificateDer<'_>) -> Result<PeerIdentity, IdentityError> {
        let (_rest, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| IdentityError::Parse(e.to_string()))?;
        let mut names: Vec<PeerIdentity> = Vec::new();
        let san = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Parse(e.to_string()))?;
        if let Some(san) = san {
            for general_name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = general_name {
                    names.extend(PeerIdentity::from_dns_name(dns));
                }
            }
        }
        for cn in cert.subject().iter_common_name() {
            if let Some(identity) = cn.as_str().ok().and_then(PeerIdentity::from_dns_name) {
                names.push(identity);
            }
        }
        let mut names = names.into_iter();
        let first = names.next().ok_or(IdentityError::Missing)?;
        if let Some(second) = names.find(|n| *n != first) {
            return Err(IdentityError::Ambiguous { first, second });
        }
        Ok(first)
    }

    /// The identity of the remote side of an established connection, from its verified certificate chain.
    pub fn of_connection(connection: &Connection) -> Result<PeerIdentity, IdentityError> {
        let chain = connection
            .peer_identity()
            .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
            .ok_or(IdentityError::NoCertificate)?;
        let leaf = chain.first().ok_or(IdentityError::NoCertificate)?;
        PeerIdentity::from_certificate(leaf)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerIdentity::Node(id) => write!(f, "node {}", id.0),
            PeerIdentity::Client(name) => write!(f, "client {name:?}"),
        }
    }
}

/// Client names are 1 to 40 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn is_valid_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= CLIENT_NAME_BYTES_MAX
        && !name.starts_with('-')
        && !name.ends_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_parse_canonical_forms_only() {
        let cases: &[(&str, Option<PeerIdentity>)] = &[
            ("node-1", Some(PeerIdentity::Node(NodeId(1)))),
            ("node-0", Some(PeerIdentity::Node(NodeId(0)))),
            (
                "node-18446744073709551615",
                Some(PeerIdentity::Node(NodeId(u64::MAX))),
            ),
            ("node-18446744073709551616", None),
            ("node-007", None),
            ("node-+7", None),
            ("node-", None),
            ("node-x", None),
            ("client-alice", Some(PeerIdentity::Client("alice".into()))),
            ("client-w-3", Some(PeerIdentity::Client("w-3".into()))),
            ("client-", None),
            ("client--x", None),
            ("client-Alice", None),
            ("client-a.b", None),
            ("localhost", None),
        ];
        for (name, expected) in cases {
            assert_eq!(&PeerIdentity::from_dns_name(name), expected, "{name}");
        }
    }

    #[test]
    fn dns_name_round_trips() {
        for identity in [
            PeerIdentity::Node(NodeId(42)),
            PeerIdentity::Client("bench-7".into()),
        ] {
            assert_eq!(
                PeerIdentity::from_dns_name(&identity.dns_name()),
                Some(identity)
            );
        }
    }

    fn cert_with(cn: Option<&str>, dns_sans: &[&str]) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(
            dns_sans.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().clone()
    }

    #[test]
    fn certificate_identity_comes_from_sans_and_cn() {
        let node = cert_with(Some("node-3"), &["node-3"]);
        assert_eq!(
            PeerIdentity::from_certificate(&node).unwrap(),
            PeerIdentity::Node(NodeId(3))
        );
        let san_only = cert_with(None, &["localhost", "client-bob"]);
        assert_eq!(
            PeerIdentity::from_certificate(&san_only).unwrap(),
            PeerIdentity::Client("bob".into())
        );
        let cn_only = cert_with(Some("node-9"), &[]);
        assert_eq!(
            PeerIdentity::from_certificate(&cn_only).unwrap(),
            PeerIdentity::Node(NodeId(9))
        );
    }

    #[test]
    fn certificate_without_or_with_conflicting_identities_is_rejected() {
        let none = cert_with(Some("something"), &["localhost"]);
        assert!(matches!(
            PeerIdentity::from_certificate(&none),
            Err(IdentityError::Missing)
        ));
        let two = cert_with(Some("node-1"), &["node-2"]);
        assert!(matches!(
            PeerIdentity::from_certificate(&two),
            Err(IdentityError::Ambiguous { .. })
        ));
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(matches!(
            PeerIdentity::from_certificate(&garbage),
            Err(IdentityError::Parse(_))
        ));
    }
}
