//! The cluster CA, node and client certificates, and loading them as TLS credentials.
//!
//! Layout of a certificate folder made by [`generate_cluster_certs`]:
//! `ca.pem`, `ca.key`, `node-<id>.pem`, `node-<id>.key`, `client-<name>.pem`, `client-<name>.key`.
//! Keys are written with mode 0600 and existing files are never overwritten.
//!
//! A node certificate names `node-<id>` (CN and DNS SAN) and carries the node's IP addresses as IP SANs; it is
//! valid for both TLS server and client authentication because a node dials its peers too. A client certificate
//! names `client-<name>` and is valid for client authentication only.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::CertError;
use crate::identity::{is_valid_client_name, PeerIdentity};
use crate::NodeId;

/// File mode of private keys.
pub const KEY_FILE_MODE: u32 = 0o600;
/// File mode of certificates.
pub const CERT_FILE_MODE: u32 = 0o644;
/// Default validity starts this long before "now", to tolerate modest clock differences between machines.
pub const VALIDITY_BACKDATE_DEFAULT: Duration = Duration::from_secs(3600);
/// Default validity lasts this long after "now".
pub const VALIDITY_LIFETIME_DEFAULT: Duration = Duration::from_secs(365 * 24 * 3600);

/// The window in which certificates are valid. A clock moved outside it makes TLS refuse the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertValidity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl CertValidity {
    /// A window from `not_before` to `not_after`, which must be later.
    pub fn new(not_before: SystemTime, not_after: SystemTime) -> Result<CertValidity, CertError> {
        if not_before >= not_after {
            return Err(CertError::InvalidValidity);
        }
        Ok(CertValidity {
            not_before,
            not_after,
        })
    }

    /// The default window around `now`: one hour before it to one year after it.
    pub fn around(now: SystemTime) -> CertValidity {
        CertValidity {
            not_before: now
                .checked_sub(VALIDITY_BACKDATE_DEFAULT)
                .unwrap_or(SystemTime::UNIX_EPOCH),
            not_after: now + VALIDITY_LIFETIME_DEFAULT,
        }
    }

    /// Start of the window.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the window.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = time::OffsetDateTime::from(self.not_before);
        params.not_after = time::OffsetDateTime::from(self.not_after);
    }
}

/// A node to make a certificate for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// Node id, named in the certificate as `node-<id>`.
    pub id: NodeId,
    /// The node's IP addresses, written as IP SANs.
    pub addrs: Vec<IpAddr>,
}

/// Everything [`generate_cluster_certs`] makes.
#[derive(Debug, Clone)]
pub struct ClusterCertSpec {
    /// Common name of the CA, e.g. `raft-node cluster CA (run 2024-05-01)`.
    pub ca_name: String,
    /// Nodes, one certificate each.
    pub nodes: Vec<NodeSpec>,
    /// Client names, one certificate each as `client-<name>`.
    pub clients: Vec<String>,
    /// Validity window of every certificate, the CA's included.
    pub validity: CertValidity,
}

/// A certificate with its private key, in PEM.
pub struct IssuedCert {
    /// Identity the certificate names.
    pub identity: PeerIdentity,
    /// Certificate in PEM.
    pub cert_pem: String,
    /// Private key in PEM (PKCS#8).
    pub key_pem: String,
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedCert")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl IssuedCert {
    /// Writes `<dns-name>.pem` and `<dns-name>.key` (mode 0600) into `dir`; returns both paths.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
        let stem = self.identity.dns_name();
        let cert_path = dir.join(format!("{stem}.pem"));
        let key_path = dir.join(format!("{stem}.key"));
        write_new_file(&cert_path, self.cert_pem.as_bytes(), CERT_FILE_MODE)?;
        write_new_file(&key_path, self.key_pem.as_bytes(), KEY_FILE_MODE)?;
        Ok((cert_path, key_path))
    }
}

/// The cluster's certificate authority: signs node and client certificates.
pub struct CertAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").finish_non_exhaustive()
    }
}

fn generate_error(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> CertError {
    let what = what.into();
    move |source| CertError::Generate { what, source }
}

impl CertAuthority {
    /// Makes a new CA with a fresh key.
    pub fn generate(common_name: &str, validity: CertValidity) -> Result<CertAuthority, CertError> {
        let key = KeyPair::generate().map_err(generate_error("CA key"))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity.apply(&mut params);
        let cert = params
            .self_signed(&key)
            .map_err(generate_error("CA certificate"))?;
        Ok(CertAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads the CA from `ca.pem` and `ca.key` in `dir`, to issue more certificates.
    pub fn load(dir: &Path) -> Result<CertAuthority, CertError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let cert_pem = read_text(&cert_path)?;
        let key_pem = read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CertError::Pem {
            path: key_path.clone(),
            detail: format!("not a usable private key: {e}"),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| CertError::Pem {
            path: cert_path.clone(),
            detail: format!("not a usable CA certificate: {e}"),
        })?;
        Ok(CertAuthority { issuer, cert_pem })
    }

    /// The CA certificate in PEM (public: every node and client trusts it).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Writes `ca.pem` and `ca.key` (mode 0600) into `dir`.
    pub fn write(&self, dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        write_new_file(&cert_path, self.cert_pem.as_bytes(), CERT_FILE_MODE)?;
        write_new_file(
            &key_path,
            self.issuer.key().serialize_pem().as_bytes(),
            KEY_FILE_MODE,
        )?;
        Ok((cert_path, key_path))
    }

    /// Issues a certificate for a node: `node-<id>` as CN and DNS SAN, its addresses as IP SANs.
    pub fn issue_node(
        &self,
        node: &NodeSpec,
        validity: CertValidity,
    ) -> Result<IssuedCert, CertError> {
        let identity = PeerIdentity::Node(node.id);
        let mut params = leaf_params(&identity, validity)?;
        params
            .subject_alt_names
            .extend(node.addrs.iter().map(|ip| SanType::IpAddress(*ip)));
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        self.sign(identity, params)
    }

    /// Issues a client certificate naming `client-<name>`.
    pub fn issue_client(
        &self,
        name: &str,
        validity: CertValidity,
    ) -> Result<IssuedCert, CertError> {
        if !is_valid_client_name(name) {
            return Err(CertError::InvalidClientName {
                name: name.to_string(),
            });
        }
        let identity = PeerIdentity::Client(name.to_string());
        let mut params = leaf_params(&identity, validity)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(identity, params)
    }

    fn sign(
        &self,
        identity: PeerIdentity,
        params: CertificateParams,
    ) -> Result<IssuedCert, CertError> {
        let what = format!("certificate for {identity}");
        let key = KeyPair::generate().map_err(generate_error(what.clone()))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate_error(what))?;
        Ok(IssuedCert {
            identity,
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn leaf_params(
    identity: &PeerIdentity,
    validity: CertValidity,
) -> Result<CertificateParams, CertError> {
    let name = identity.dns_name();
    let mut params = CertificateParams::new(vec![name.clone()])
        .map_err(generate_error(format!("parameters for {identity}")))?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params);
    Ok(params)
}

/// Paths of the files written by [`generate_cluster_certs`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// `ca.pem`.
    pub ca_cert: PathBuf,
    /// `ca.key`.
    pub ca_key: PathBuf,
    /// Per node: id, certificate, key.
    pub nodes: Vec<(NodeId, PathBuf, PathBuf)>,
    /// Per client: name, certificate, key.
    pub clients: Vec<(String, PathBuf, PathBuf)>,
}

/// Makes a CA and certificates for every node and client of `spec` into `dir` (created if missing).
///
/// Fails without writing anything if the spec is invalid, and refuses to overwrite existing files.
pub fn generate_cluster_certs(dir: &Path, spec: &ClusterCertSpec) -> Result<CertFiles, CertError> {
    let mut ids = BTreeSet::new();
    for node in &spec.nodes {
        if !ids.insert(node.id) {
            return Err(CertError::DuplicateNode(node.id));
        }
    }
    let mut names = BTreeSet::new();
    for name in &spec.clients {
        if !is_valid_client_name(name) {
            return Err(CertError::InvalidClientName { name: name.clone() });
        }
        if !names.insert(name.as_str()) {
            return Err(CertError::DuplicateClient(name.clone()));
        }
    }
    let ca = CertAuthority::generate(&spec.ca_name, spec.validity)?;
    let nodes: Vec<IssuedCert> = spec
        .nodes
        .iter()
        .map(|node| ca.issue_node(node, spec.validity))
        .collect::<Result<_, _>>()?;
    let clients: Vec<IssuedCert> = spec
        .clients
        .iter()
        .map(|name| ca.issue_client(name, spec.validity))
        .collect::<Result<_, _>>()?;

    fs::create_dir_all(dir).map_err(|source| CertError::Io {
        action: "creating directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let (ca_cert, ca_key) = ca.write(dir)?;
    let mut files = CertFiles {
        ca_cert,
        ca_key,
        nodes: Vec::new(),
        clients: Vec::new(),
    };
    for (node, issued) in spec.nodes.iter().zip(&nodes) {
        let (cert, key) = issued.write(dir)?;
        files.nodes.push((node.id, cert, key));
    }
    for (name, issued) in spec.clients.iter().zip(&clients) {
        let (cert, key) = issued.write(dir)?;
        files.clients.push((name.clone(), cert, key));
    }
    Ok(files)
}

/// What a node or client presents and trusts: the cluster CA, its own certificate and its private key.
pub struct Credentials {
    identity: PeerIdentity,
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for Credentials {
    fn clone(&self) -> Self {
        Credentials {
            identity: self.identity.clone(),
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Credentials")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Loads the credentials of `identity` from a folder made by [`generate_cluster_certs`].
    pub fn load(dir: &Path, identity: &PeerIdentity) -> Result<Credentials, CertError> {
        let stem = identity.dns_name();
        let cert_path = dir.join(format!("{stem}.pem"));
        let credentials = Credentials::load_files(
            &dir.join("ca.pem"),
            &cert_path,
            &dir.join(format!("{stem}.key")),
        )?;
        if credentials.identity != *identity {
            return Err(CertError::WrongIdentity {
                path: cert_path,
                found: credentials.identity,
                expected: identity.clone(),
            });
        }
        Ok(credentials)
    }

    /// Loads credentials from explicit PEM files: the CA to trust, our certificate chain, our private key.
    pub fn load_files(
        ca_path: &Path,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Credentials, CertError> {
        let ca_pem = read_text(ca_path)?;
        let cert_pem = read_text(cert_path)?;
        let key_pem = read_text(key_path)?;
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| CertError::Pem {
            path: ca_path.to_path_buf(),
            detail: format!("no CA certificate: {e}"),
        })?;
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::Pem {
                path: cert_path.to_path_buf(),
                detail: format!("bad certificate: {e}"),
            })?;
        let leaf = chain.first().ok_or_else(|| CertError::Pem {
            path: cert_path.to_path_buf(),
            detail: "no certificate found".to_string(),
        })?;
        let identity =
            PeerIdentity::from_certificate(leaf).map_err(|source| CertError::Identity {
                path: cert_path.to_path_buf(),
                source,
            })?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::Pem {
                path: key_path.to_path_buf(),
                detail: format!("no private key: {e}"),
            })?;
        Ok(Credentials {
            identity,
            ca,
            chain,
            key,
        })
    }

    /// Credentials from an issued certificate and the CA certificate PEM, without touching files.
    pub fn from_issued(ca_cert_pem: &str, issued: &IssuedCert) -> Result<Credentials, CertError> {
        let in_memory = |what: &str| PathBuf::from(format!("<in-memory {what}>"));
        let ca =
            CertificateDer::from_pem_slice(ca_cert_pem.as_bytes()).map_err(|e| CertError::Pem {
                path: in_memory("CA"),
                detail: e.to_string(),
            })?;
        let leaf = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).map_err(|e| {
            CertError::Pem {
                path: in_memory("certificate"),
                detail: e.to_string(),
            }
        })?;
        let identity =
            PeerIdentity::from_certificate(&leaf).map_err(|source| CertError::Identity {
                path: in_memory("certificate"),
                source,
            })?;
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).map_err(|e| {
            CertError::Pem {
                path: in_memory("key"),
                detail: e.to_string(),
            }
        })?;
        Ok(Credentials {
            identity,
            ca,
            chain: vec![leaf],
            key,
        })
    }

    /// The identity our certificate names.
    pub fn identity(&self) -> &PeerIdentity {
        &self.identity
    }

    pub(crate) fn ca(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    pub(crate) fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub(crate) fn key(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }
}

fn read_text(path: &Path) -> Result<String, CertError> {
    fs::read_to_string(path).map_err(|source| CertError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    })
}

/// Creates `path` (which must not exist) with `mode`, writes `contents` and syncs it.
fn write_new_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let io_error = |source| CertError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    };
    let mut file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CertError::AlreadyExists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(io_error(e)),
    };
    // The umask can only remove bits from `mode`; set it exactly so certificates stay readable as intended.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_error)?;
    file.write_all(contents).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn spec(validity: CertValidity) -> ClusterCertSpec {
        ClusterCertSpec {
            ca_name: "test CA".into(),
            nodes: vec![
                NodeSpec {
                    id: NodeId(1),
                    addrs: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))],
                },
                NodeSpec {
                    id: NodeId(2),
                    addrs: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
                },
            ],
            clients: vec!["alice".into(), "7".into()],
            validity,
        }
    }

    #[test]
    fn generated_folder_has_expected_files_modes_and_identities() {
        let dir = tempfile::tempdir().unwrap();
        let files =
            generate_cluster_certs(dir.path(), &spec(CertValidity::around(SystemTime::now())))
                .unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.ca_key), 0o600);
        assert_eq!(mode(&files.ca_cert), 0o644);
        for name in ["node-1", "node-2", "client-alice", "client-7"] {
            assert_eq!(
                mode(&dir.path().join(format!("{name}.key"))),
                0o600,
                "{name}.key"
            );
            assert_eq!(
                mode(&dir.path().join(format!("{name}.pem"))),
                0o644,
                "{name}.pem"
            );
        }
        let node = Credentials::load(dir.path(), &PeerIdentity::Node(NodeId(2))).unwrap();
        assert_eq!(node.identity(), &PeerIdentity::Node(NodeId(2)));
        let client = Credentials::load(dir.path(), &PeerIdentity::Client("alice".into())).unwrap();
        assert_eq!(client.identity(), &PeerIdentity::Client("alice".into()));
    }

    #[test]
    fn existing_files_are_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let validity = CertValidity::around(SystemTime::now());
        generate_cluster_certs(dir.path(), &spec(validity)).unwrap();
        let before = fs::read(dir.path().join("ca.key")).unwrap();
        let err = generate_cluster_certs(dir.path(), &spec(validity)).unwrap_err();
        assert!(matches!(err, CertError::AlreadyExists { .. }), "{err}");
        assert_eq!(fs::read(dir.path().join("ca.key")).unwrap(), before);
    }

    #[test]
    fn loaded_ca_issues_certificates_that_chain_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let validity = CertValidity::around(SystemTime::now());
        generate_cluster_certs(dir.path(), &spec(validity)).unwrap();
        let ca = CertAuthority::load(dir.path()).unwrap();
        let issued = ca
            .issue_node(
                &NodeSpec {
                    id: NodeId(3),
                    addrs: vec![],
                },
                validity,
            )
            .unwrap();
        issued.write(dir.path()).unwrap();
        let node3 = Credentials::load(dir.path(), &PeerIdentity::Node(NodeId(3))).unwrap();
        let node1 = Credentials::load(dir.path(), &PeerIdentity::Node(NodeId(1))).unwrap();
        assert_eq!(node3.ca(), node1.ca());
    }

    #[test]
    fn validity_window_is_written_into_the_certificate() {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let not_before = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let not_after = not_before + Duration::from_secs(86_400);
        let validity = CertValidity::new(not_before, not_after).unwrap();
        let ca = CertAuthority::generate("window CA", validity).unwrap();
        let issued = ca.issue_client("w", validity).unwrap();
        let credentials = Credentials::from_issued(ca.cert_pem(), &issued).unwrap();
        let (_, cert) = X509Certificate::from_der(credentials.chain()[0].as_ref()).unwrap();
        assert_eq!(cert.validity().not_before.timestamp(), 1_700_000_000);
        assert_eq!(cert.validity().not_after.timestamp(), 1_700_086_400);
        assert!(matches!(
            CertValidity::new(not_after, not_before),
            Err(CertError::InvalidValidity)
        ));
    }

    #[test]
    fn bad_specs_are_rejected_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let validity = CertValidity::around(SystemTime::now());
        let mut dup = spec(validity);
        dup.nodes.push(NodeSpec {
            id: NodeId(1),
            addrs: vec![],
        });
        assert!(matches!(
            generate_cluster_certs(dir.path(), &dup),
            Err(CertError::DuplicateNode(NodeId(1)))
        ));
        let mut bad_name = spec(validity);
        bad_name.clients.push("Not Valid".into());
        assert!(matches!(
            generate_cluster_certs(dir.path(), &bad_name),
            Err(CertError::InvalidClientName { .. })
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn loading_the_wrong_identity_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        generate_cluster_certs(dir.path(), &spec(CertValidity::around(SystemTime::now()))).unwrap();
        fs::copy(dir.path().join("node-1.pem"), dir.path().join("node-5.pem")).unwrap();
        fs::copy(dir.path().join("node-1.key"), dir.path().join("node-5.key")).unwrap();
        let err = Credentials::load(dir.path(), &PeerIdentity::Node(NodeId(5))).unwrap_err();
        assert!(matches!(err, CertError::WrongIdentity { .. }), "{err}");
    }
}
