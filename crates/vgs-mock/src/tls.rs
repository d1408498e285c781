//! The outbound proxy's TLS interception, as VGS's: a certificate authority the mock
//! generates at start (clients trust its certificate, as they trust VGS's
//! `sandbox.pem`), and a leaf certificate per host it is asked to CONNECT to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::lock;

/// A certificate authority of the mock's own. Its certificate (PEM) is what a client
/// of the outbound proxy must trust; it also issues certificates for test servers
/// (a stand-in processor on `https://127.0.0.1`).
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    certificate_pem: String,
    certificate_der: CertificateDer<'static>,
    /// Server configs by host, made on first CONNECT.
    configs: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// A certificate issued by a [`CertificateAuthority`] and its private key, both PEM.
/// `Debug` hides the key.
pub struct IssuedCertificate {
    /// The certificate, then the authority's (the chain a server presents).
    pub chain_pem: String,
    /// The private key (PKCS #8).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

impl CertificateAuthority {
    /// A new authority, its key generated now (never written anywhere).
    pub fn generate(name: &str) -> Result<Self, String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
        let mut params = CertificateParams::new(Vec::new())
            .map_err(|e| format!("cannot make the CA certificate: {e}"))?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "vgs-mock");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let certificate = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the CA certificate: {e}"))?;
        Ok(Self {
            certificate_pem: certificate.pem(),
            certificate_der: certificate.der().clone(),
            issuer: Issuer::new(params, key),
            configs: Mutex::new(HashMap::new()),
        })
    }

    /// The authority's certificate, PEM: what clients trust.
    pub fn certificate_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// A certificate for `host` (a DNS name or an IP address), signed by this authority.
    pub fn issue(&self, host: &str) -> Result<IssuedCertificate, String> {
        let (leaf, key) = self.leaf(host)?;
        Ok(IssuedCertificate {
            chain_pem: format!("{}{}", leaf.pem(), self.certificate_pem),
            key_pem: key.serialize_pem(),
        })
    }

    fn leaf(&self, host: &str) -> Result<(rcgen::Certificate, KeyPair), String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
        let mut params = CertificateParams::new(vec![host.to_owned()])
            .map_err(|e| format!("`{host}` cannot name a certificate: {e}"))?;
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        let certificate = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("cannot sign a certificate for `{host}`: {e}"))?;
        Ok((certificate, key))
    }

    /// The TLS server config that presents a certificate for `host` (made once per host).
    pub(crate) fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        if let Some(config) = lock(&self.configs).get(host) {
            return Ok(Arc::clone(config));
        }
        let (leaf, key) = self.leaf(host)?;
        let chain = vec![leaf.der().clone(), self.certificate_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = server_config(chain, key)?;
        lock(&self.configs).insert(host.to_owned(), Arc::clone(&config));
        Ok(config)
    }
}

/// A TLS server config on ring (the provider rustls already uses for reqwest).
pub(crate) fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, String> {
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS versions: {e}"))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| format!("the certificate is not usable: {e}"))?;
    Ok(Arc::new(config))
}
