//! `berth tls init`: a CA, a server certificate and a client certificate, in the files
//! docker expects (`ca.pem`, `ca-key.pem`, `server-cert.pem`, `server-key.pem`, `cert.pem`,
//! `key.pem`), replacing the openssl steps of Docker's guide.

use crate::error::{ClientError, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn cert_err(e: rcgen::Error) -> ClientError {
    ClientError::Tls(format!("certificate generation: {e}"))
}

fn write(dir: &Path, name: &str, data: &str, mode: u32) -> Result<PathBuf> {
    let path = dir.join(name);
    let io = |source| ClientError::Io {
        op: "write",
        path: path.clone(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .map_err(io)?;
    std::io::Write::write_all(&mut f, data.as_bytes()).map_err(io)?;
    Ok(path)
}

/// The files written by [`generate`].
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// `ca.pem`.
    pub ca: PathBuf,
    /// `server-cert.pem`.
    pub server_cert: PathBuf,
    /// `server-key.pem`.
    pub server_key: PathBuf,
    /// `cert.pem` (client).
    pub cert: PathBuf,
    /// `key.pem` (client).
    pub key: PathBuf,
}

/// Makes the CA, a server certificate for `hostnames` and `ips` (localhost and 127.0.0.1 when
/// both are empty), and a client certificate, under `dir`. Keys are written mode 0600.
pub fn generate(dir: &Path, hostnames: &[String], ips: &[IpAddr]) -> Result<CertFiles> {
    std::fs::create_dir_all(dir).map_err(|source| ClientError::Io {
        op: "create",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Berth CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().map_err(cert_err)?;
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(cert_err)?;

    let (mut names, mut addrs) = (hostnames.to_vec(), ips.to_vec());
    if names.is_empty() && addrs.is_empty() {
        names.push("localhost".into());
        addrs.push(IpAddr::from([127, 0, 0, 1]));
    }
    let mut sp = CertificateParams::new(names.clone()).map_err(cert_err)?;
    sp.subject_alt_names
        .extend(addrs.iter().map(|ip| SanType::IpAddress(*ip)));
    let cn = names
        .first()
        .cloned()
        .or_else(|| addrs.first().map(IpAddr::to_string))
        .unwrap_or_default();
    sp.distinguished_name.push(DnType::CommonName, cn);
    sp.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(cert_err)?;
    let server = sp.signed_by(&server_key, &ca).map_err(cert_err)?;

    let mut cp = CertificateParams::new(Vec::<String>::new()).map_err(cert_err)?;
    cp.distinguished_name.push(DnType::CommonName, "client");
    cp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(cert_err)?;
    let client = cp.signed_by(&client_key, &ca).map_err(cert_err)?;

    write(dir, "ca-key.pem", &ca_key_pem, 0o600)?;
    Ok(CertFiles {
        ca: write(dir, "ca.pem", &ca.pem(), 0o644)?,
        server_cert: write(dir, "server-cert.pem", &server.pem(), 0o644)?,
        server_key: write(dir, "server-key.pem", &server_key.serialize_pem(), 0o600)?,
        cert: write(dir, "cert.pem", &client.pem(), 0o644)?,
        key: write(dir, "key.pem", &client_key.serialize_pem(), 0o600)?,
    })
}
