//! rustls and quinn configuration: TLS 1.3 only, mutual authentication against the cluster CA, ring only.

use std::sync::Arc;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

use crate::certs::Credentials;
use crate::config::TransportConfig;
use crate::error::EndpointError;

/// ALPN protocol of node-to-node links.
pub const PEER_ALPN: &[u8] = b"raft-peer/1";
/// ALPN protocol of client connections.
pub const CLIENT_ALPN: &[u8] = b"raft-client/1";

/// The one crypto provider, passed explicitly so nothing depends on a process-level default.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(credentials: &Credentials) -> Result<Arc<RootCertStore>, EndpointError> {
    let mut roots = RootCertStore::empty();
    roots.add(credentials.ca().clone())?;
    Ok(Arc::new(roots))
}

/// Server side of a node: requires a client certificate signed by the cluster CA; offers both ALPN protocols.
pub(crate) fn server_config(
    credentials: &Credentials,
    config: &TransportConfig,
) -> Result<quinn::ServerConfig, EndpointError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(roots(credentials)?, provider.clone())
            .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(credentials.chain().to_vec(), credentials.key().clone_key())?;
    tls.alpn_protocols = vec![PEER_ALPN.to_vec(), CLIENT_ALPN.to_vec()];
    // No 0-RTT: early data can be replayed, and a replayed request would break the client's outcome model.
    tls.max_early_data_size = 0;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    // Peer connections use one stream; client connections one per request in flight.
    server.transport_config(config.quinn_transport(config.requests_per_connection_max));
    Ok(server)
}

/// Client side (a node dialling a peer, or a client dialling a node): verifies that the server's certificate is
/// signed by the cluster CA and names the node dialled (`node-<id>` as server name), presents our certificate.
pub(crate) fn client_config(
    credentials: &Credentials,
    alpn: &[u8],
    config: &TransportConfig,
) -> Result<quinn::ClientConfig, EndpointError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(credentials)?)
        .with_client_auth_cert(credentials.chain().to_vec(), credentials.key().clone_key())?;
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls.enable_early_data = false;
    let mut client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    // We accept no streams from the server; it may accept as many as it allows us.
    client.transport_config(config.quinn_transport(0));
    Ok(client)
}

/// Endpoint configuration whose stateless-reset key and connection-id key are derived from our private key.
///
/// A node restarted on the same address with the same key recognises the connection ids of its previous
/// incarnation and answers packets for them with a QUIC stateless reset that its peers can verify: they learn at
/// once that the old connection is gone and reconnect, instead of waiting for the idle timeout.
pub(crate) fn endpoint_config(credentials: &Credentials) -> quinn::EndpointConfig {
    let reset_secret = derive_secret(credentials, b"raft-transport stateless reset key v1");
    let cid_secret = derive_secret(credentials, b"raft-transport connection id key v1");
    let mut cid_key = [0_u8; 8];
    cid_key.copy_from_slice(&cid_secret[..8]);
    let cid_key = u64::from_le_bytes(cid_key);
    let reset_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset_secret);
    let mut config = quinn::EndpointConfig::new(Arc::new(reset_key));
    config.cid_generator(move || {
        Box::new(quinn_proto::HashedConnectionIdGenerator::from_key(cid_key))
    });
    config
}

/// SHA-256 of a domain label and our private key: a secret only this node (in any incarnation) can compute.
fn derive_secret(credentials: &Credentials, label: &[u8]) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(label);
    context.update(&[0]);
    context.update(credentials.key().secret_der());
    let mut secret = [0_u8; 32];
    secret.copy_from_slice(context.finish().as_ref());
    secret
}

#[cfg(test)]
mod tests {
    /// The build has exactly one rustls provider: with none or two, rustls cannot pick a process default and
    /// these builders panic ("Could not automatically determine the process-level CryptoProvider"). The crate
    /// passes ring explicitly anyway; this guards the feature choices in the workspace manifest.
    #[test]
    fn exactly_one_crypto_provider_is_compiled_in() {
        let _ = rustls::ClientConfig::builder();
        let provider =
            rustls::crypto::CryptoProvider::get_default().expect("a process default was installed");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(provider.cipher_suites.len(), ring.cipher_suites.len());
    }
}
