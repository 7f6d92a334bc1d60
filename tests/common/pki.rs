//! A test certificate authority: a CA and a server certificate it signed for `127.0.0.1` and `localhost`,
//! written as PEM files into a directory (rcgen, ECDSA P-256).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct Pki {
    /// The CA certificate a client trusts.
    pub ca: PathBuf,
    /// The server's certificate and its private key (PKCS#8).
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    /// A fresh CA named `name` and a server certificate it signed, into `dir`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server_params.distinguished_name.push(DnType::CommonName, "localhost");
        let server_key = KeyPair::generate().unwrap();
        let server = server_params.signed_by(&server_key, &ca).unwrap();
        let write = |file: &str, pem: String| {
            let path = dir.join(format!("{name}-{file}"));
            std::fs::write(&path, pem).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            cert: write("cert.pem", server.pem()),
            key: write("key.pem", server_key.serialize_pem()),
        }
    }
}
