//! The cluster's certificate authority and join tokens. `swarm init` makes a root CA; every
//! node proves who it is with a certificate the CA signed, naming its node ID (CN), its role
//! (OU `swarm-manager` or `swarm-worker`) and the cluster (O), as swarmkit's do. A joining node
//! makes its own key and sends a CSR, so private keys never cross the network.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// The OU of manager certificates.
pub const MANAGER_OU: &str = "swarm-manager";
/// The OU of worker certificates.
pub const WORKER_OU: &str = "swarm-worker";
const TOKEN_PREFIX: &str = "SWMTKN-1-";
const DIGEST_CHARS: usize = 50;

/// Certificate and token errors.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// rcgen refused the parameters or the CSR.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// A PEM or DER blob could not be read.
    #[error("invalid certificate: {0}")]
    Parse(String),
    /// A join token is malformed.
    #[error("invalid join token")]
    BadToken,
}

/// The role a certificate grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A manager: takes part in Raft and serves the swarm API.
    Manager,
    /// A worker: only runs tasks.
    Worker,
}

impl Role {
    /// The certificate OU of this role.
    pub fn ou(self) -> &'static str {
        match self {
            Role::Manager => MANAGER_OU,
            Role::Worker => WORKER_OU,
        }
    }

    /// Docker's name for the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}

/// A root CA: certificate and key in PEM.
#[derive(Debug, Clone)]
pub struct RootCa {
    /// The CA certificate.
    pub cert_pem: String,
    /// The CA key.
    pub key_pem: String,
}

/// A certificate with its private key, both PEM.
#[derive(Debug, Clone)]
pub struct KeyedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its key.
    pub key_pem: String,
}

fn ca_name(cluster_id: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "swarm-ca");
    dn.push(DnType::OrganizationName, cluster_id);
    dn
}

impl RootCa {
    /// A new root CA for `cluster_id`.
    pub fn generate(cluster_id: &str) -> Result<Self, CaError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = ca_name(cluster_id);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_after = rcgen::date_time_ymd(2046, 1, 1);
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let ca = CertifiedIssuer::self_signed(params, key)?;
        Ok(Self {
            cert_pem: ca.pem(),
            key_pem,
        })
    }

    /// sha256 of the CA certificate's DER, the value a join token pins.
    pub fn digest(&self) -> Result<[u8; 32], CaError> {
        cert_digest(&self.cert_pem)
    }

    /// Signs `csr_pem` for a node: CN node ID, OU role, O cluster, SANs for its addresses.
    pub fn sign(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: Role,
        cluster_id: &str,
        addrs: &[IpAddr],
    ) -> Result<String, CaError> {
        let key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, key)?;
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let mut params = CertificateParams::new(vec![node_id.to_string(), role.ou().to_string()])?;
        params
            .subject_alt_names
            .extend(addrs.iter().map(|ip| SanType::IpAddress(*ip)));
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_id);
        dn.push(DnType::OrganizationalUnitName, role.ou());
        dn.push(DnType::OrganizationName, cluster_id);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_after = rcgen::date_time_ymd(2046, 1, 1);
        csr.params = params;
        Ok(csr.signed_by(&issuer)?.pem())
    }

    /// Makes a key and a certificate for a node in one step (the node that runs `swarm init`).
    pub fn issue(
        &self,
        node_id: &str,
        role: Role,
        cluster_id: &str,
        addrs: &[IpAddr],
    ) -> Result<KeyedCert, CaError> {
        let (csr, key_pem) = new_csr()?;
        let cert_pem = self.sign(&csr, node_id, role, cluster_id, addrs)?;
        Ok(KeyedCert { cert_pem, key_pem })
    }
}

/// A fresh key and a CSR for it (PEM, PEM); the joining node keeps the key.
pub fn new_csr() -> Result<(String, String), CaError> {
    let key = KeyPair::generate()?;
    let params = CertificateParams::new(Vec::<String>::new())?;
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

/// sha256 of the first certificate in `pem`.
pub fn cert_digest(pem: &str) -> Result<[u8; 32], CaError> {
    let der = first_der(pem)?;
    Ok(Sha256::digest(der).into())
}

fn first_der(pem: &str) -> Result<Vec<u8>, CaError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let cert = CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| CaError::Parse("no certificate in PEM".into()))?
        .map_err(|e| CaError::Parse(e.to_string()))?;
    Ok(cert.to_vec())
}

/// Who a peer certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The node ID (CN).
    pub node_id: String,
    /// The role (OU).
    pub role: Role,
    /// The cluster ID (O).
    pub cluster_id: String,
}

/// Reads node ID, role and cluster from a certificate the TLS layer already verified.
pub fn identity_of(der: &[u8]) -> Result<PeerIdentity, CaError> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| CaError::Parse(e.to_string()))?;
    let subject = cert.subject();
    let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
        it.next().and_then(|a| a.as_str().ok()).map(str::to_string)
    };
    let node_id = first(&mut subject.iter_common_name())
        .ok_or_else(|| CaError::Parse("certificate has no CN".into()))?;
    let ou = first(&mut subject.iter_organizational_unit()).unwrap_or_default();
    let cluster_id = first(&mut subject.iter_organization()).unwrap_or_default();
    let role = match ou.as_str() {
        MANAGER_OU => Role::Manager,
        WORKER_OU => Role::Worker,
        _ => {
            return Err(CaError::Parse(format!(
                "certificate has no swarm role (OU {ou:?})"
            )));
        }
    };
    Ok(PeerIdentity {
        node_id,
        role,
        cluster_id,
    })
}

fn base36(digest: &[u8]) -> String {
    // Big-endian base conversion of the 256-bit digest, then left-padded like swarmkit's token.
    let mut num: Vec<u8> = digest.to_vec();
    let mut out = Vec::new();
    while num.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let cur = (rem << 8) | *b as u32;
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[rem as usize]);
    }
    while out.len() < DIGEST_CHARS {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// A join token: `SWMTKN-1-<CA digest, base 36>-<secret>`.
pub fn join_token(ca_digest: &[u8; 32], secret: &str) -> String {
    format!("{TOKEN_PREFIX}{}-{secret}", base36(ca_digest))
}

/// The parts of a join token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedToken {
    /// The pinned CA digest, base 36.
    pub ca_digest: String,
    /// The secret that selects the role.
    pub secret: String,
}

impl ParsedToken {
    /// True when `ca_pem` is the CA this token pins.
    pub fn pins(&self, ca_pem: &str) -> bool {
        cert_digest(ca_pem).is_ok_and(|d| base36(&d) == self.ca_digest)
    }
}

/// Splits and checks a join token's shape.
pub fn parse_token(token: &str) -> Result<ParsedToken, CaError> {
    let rest = token
        .trim()
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(CaError::BadToken)?;
    let (digest, secret) = rest.split_once('-').ok_or(CaError::BadToken)?;
    let ok = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    };
    if digest.len() != DIGEST_CHARS || secret.len() != 25 || !ok(digest) || !ok(secret) {
        return Err(CaError::BadToken);
    }
    Ok(ParsedToken {
        ca_digest: digest.to_string(),
        secret: secret.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_node_certificate_names_node_role_and_cluster() {
        let ca = RootCa::generate("cluster1").unwrap();
        let cert = ca
            .issue(
                "node1",
                Role::Manager,
                "cluster1",
                &["10.0.0.1".parse().unwrap()],
            )
            .unwrap();
        let der = first_der(&cert.cert_pem).unwrap();
        let id = identity_of(&der).unwrap();
        assert_eq!(
            id,
            PeerIdentity {
                node_id: "node1".into(),
                role: Role::Manager,
                cluster_id: "cluster1".into()
            }
        );
    }

    #[test]
    fn token_round_trip_pins_the_ca() {
        let ca = RootCa::generate("c").unwrap();
        let other = RootCa::generate("c").unwrap();
        let secret = crate::swarm::ids::random_base36(25);
        let token = join_token(&ca.digest().unwrap(), &secret);
        assert!(token.starts_with("SWMTKN-1-"));
        let parsed = parse_token(&token).unwrap();
        assert_eq!(parsed.secret, secret);
        assert!(parsed.pins(&ca.cert_pem));
        assert!(!parsed.pins(&other.cert_pem));
        assert!(parse_token("SWMTKN-1-abc-def").is_err());
        assert!(parse_token("garbage").is_err());
    }
}
