//! TLS for broker connections: rustls (ring crypto provider) over tokio.
//!
//! Trust: the system store (rustls-native-certs) unless a CA is given as a
//! PEM file, a directory of PEM files, inline PEM or a PKCS#12 truststore.
//! Hostname verification is on unless `ssl.endpoint.identification.algorithm`
//! is `none` (or empty, Java's way of turning it off). Client certificates:
//! PEM (files or inline; PKCS#8, PKCS#1 or SEC1 keys, encrypted PKCS#8 with
//! `ssl.key.password`) or a PKCS#12 keystore.
//!
//! The ring provider needs only a C compiler to build (aws-lc-rs also needs
//! cmake, and on some targets NASM), so kp builds on a fresh machine with the
//! packages it already needs.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring as provider, CryptoProvider};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The TLS settings, as read from the configuration (both naming styles are
/// folded into these by the registry's aliases).
#[derive(Default, Clone)]
pub struct TlsSettings {
    pub ca_location: Option<String>,
    pub ca_pem: Option<String>,
    /// pem or pkcs12 (jks is refused with advice).
    pub truststore_type: String,
    pub truststore_password: Option<String>,
    pub cert_location: Option<String>,
    pub cert_pem: Option<String>,
    pub key_location: Option<String>,
    pub key_pem: Option<String>,
    pub key_password: Option<String>,
    pub keystore_location: Option<String>,
    pub keystore_type: String,
    pub keystore_password: Option<String>,
    pub verify_certificates: bool,
    pub verify_hostname: bool,
}

/// A ready TLS client configuration.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn read_file(what: &str, path: &str) -> Result<Vec<u8>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{what}: cannot read \"{path}\": {e}"))?;
    if data.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) {
        return Err(format!(
            "{what}: \"{path}\" is a Java KeyStore (JKS), which kp does not read; convert it to \
             PKCS12 (keytool -importkeystore -srcstoretype JKS -deststoretype PKCS12) or to PEM"
        ));
    }
    Ok(data)
}

fn refuse_jks(what: &str, store_type: &str) -> Result<(), String> {
    if store_type.eq_ignore_ascii_case("jks") {
        return Err(format!(
            "{what}: JKS stores are not supported; convert the store to PKCS12 \
             (keytool -importkeystore -srcstoretype JKS -deststoretype PKCS12) or to PEM"
        ));
    }
    Ok(())
}

fn pem_certs(what: &str, data: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(data)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

/// Certificates and (if present) the private key of a PKCS#12 file.
type Pkcs12Contents = (Vec<CertificateDer<'static>>, Option<PrivateKeyDer<'static>>);

fn pkcs12(what: &str, data: &[u8], password: Option<&str>) -> Result<Pkcs12Contents, String> {
    let a =
        p12_keystore::Pkcs12Archive::from_pkcs12(data, password.unwrap_or("")).map_err(|e| {
            format!("{what}: cannot open PKCS#12 (wrong password or not PKCS#12?): {e}")
        })?;
    // Leaf first: the certificate that shares the key's local key id.
    let key = a.keys.first();
    let mut certs: Vec<(bool, CertificateDer<'static>)> = a
        .certs
        .iter()
        .map(|c| {
            let leaf = match (key.and_then(|k| k.local_key_id.as_ref()), &c.local_key_id) {
                (Some(k), Some(id)) => k.0 == *id,
                _ => false,
            };
            (leaf, CertificateDer::from(c.cert.as_der().to_vec()))
        })
        .collect();
    certs.sort_by_key(|c| !c.0);
    let key = key.map(|k| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.key.as_der().to_vec())));
    Ok((certs.into_iter().map(|c| c.1).collect(), key))
}

/// A private key from PEM: plain PKCS#8/PKCS#1/SEC1, or encrypted PKCS#8.
fn pem_key(
    what: &str,
    data: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(data);
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(format!(
            "{what}: legacy OpenSSL-encrypted PEM keys are not supported; convert to encrypted \
             PKCS#8 with: openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key"
        ));
    }
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    if let (Some(s), Some(e)) = (text.find(BEGIN), text.find(END)) {
        let Some(pw) = password else {
            return Err(format!("{what}: the key is encrypted but ssl.key.password is not set"));
        };
        let block = &text[s..e + END.len()];
        let (_, der) = pkcs8::der::pem::decode_vec(block.as_bytes())
            .map_err(|e| format!("{what}: bad encrypted key PEM: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| format!("{what}: bad encrypted PKCS#8 key: {e}"))?;
        let plain = info.decrypt(pw).map_err(|_| {
            format!("{what}: cannot decrypt the key (wrong ssl.key.password or unsupported cipher)")
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(plain.as_bytes().to_vec())));
    }
    PrivateKeyDer::from_pem_slice(data).map_err(|e| format!("{what}: no usable private key: {e}"))
}

/// The PEM inline value: librdkafka and Java users both paste PEM, sometimes
/// with literal "\n" for newlines (Java properties style).
fn inline_pem(s: &str) -> Vec<u8> {
    if s.contains("\\n") && !s.contains('\n') {
        s.replace("\\n", "\n").into_bytes()
    } else {
        s.as_bytes().to_vec()
    }
}

fn roots(s: &TlsSettings) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let mut add = |certs: Vec<CertificateDer<'static>>, what: &str| -> Result<(), String> {
        for c in certs {
            store.add(c).map_err(|e| format!("{what}: unusable CA certificate: {e}"))?;
        }
        Ok(())
    };
    if let Some(pem) = &s.ca_pem {
        add(pem_certs("ssl.ca.pem", &inline_pem(pem))?, "ssl.ca.pem")?;
    }
    if let Some(loc) = &s.ca_location {
        let what = "ssl.ca.location";
        refuse_jks(what, &s.truststore_type)?;
        let p = Path::new(loc);
        if p.is_dir() {
            let mut found = 0;
            let entries =
                std::fs::read_dir(p).map_err(|e| format!("{what}: cannot list \"{loc}\": {e}"))?;
            for e in entries.flatten() {
                let path = e.path();
                if !path.is_file() {
                    continue;
                }
                let data = std::fs::read(&path).unwrap_or_default();
                // Directories (e.g. /etc/ssl/certs) hold other files too: skip non-PEM.
                if let Ok(certs) = pem_certs(what, &data) {
                    found += certs.len();
                    add(certs, what)?;
                }
            }
            if found == 0 {
                return Err(format!("{what}: no PEM certificate in directory \"{loc}\""));
            }
        } else {
            let data = read_file(what, loc)?;
            let certs = if s.truststore_type.eq_ignore_ascii_case("pkcs12") {
                pkcs12(what, &data, s.truststore_password.as_deref())?.0
            } else {
                pem_certs(what, &data)?
            };
            add(certs, what)?;
        }
    }
    if s.ca_pem.is_none() && s.ca_location.is_none() {
        let found = rustls_native_certs::load_native_certs();
        for c in found.certs {
            let _ = store.add(c);
        }
        if store.is_empty() {
            return Err("TLS: no CA certificates found in the system trust store; set \
                 ssl.ca.location or ssl.ca.pem"
                .into());
        }
    }
    Ok(store)
}

type ClientIdentity = Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>;

fn identity(s: &TlsSettings) -> Result<ClientIdentity, String> {
    if let Some(loc) = &s.keystore_location {
        let what = "ssl.keystore.location";
        refuse_jks(what, &s.keystore_type)?;
        let data = read_file(what, loc)?;
        if s.keystore_type.eq_ignore_ascii_case("pem") {
            let certs = pem_certs(what, &data)?;
            let pw = s.key_password.as_deref().or(s.keystore_password.as_deref());
            return Ok(Some((certs, pem_key(what, &data, pw)?)));
        }
        let (certs, key) = pkcs12(what, &data, s.keystore_password.as_deref())?;
        let key = key.ok_or_else(|| format!("{what}: the PKCS#12 file holds no private key"))?;
        if certs.is_empty() {
            return Err(format!("{what}: the PKCS#12 file holds no certificate"));
        }
        return Ok(Some((certs, key)));
    }
    let certs = match (&s.cert_pem, &s.cert_location) {
        (Some(p), _) => Some(pem_certs("ssl.certificate.pem", &inline_pem(p))?),
        (None, Some(l)) => {
            Some(pem_certs("ssl.certificate.location", &read_file("ssl.certificate.location", l)?)?)
        }
        (None, None) => None,
    };
    let pw = s.key_password.as_deref();
    let key = match (&s.key_pem, &s.key_location) {
        (Some(p), _) => Some(pem_key("ssl.key.pem", &inline_pem(p), pw)?),
        (None, Some(l)) => {
            Some(pem_key("ssl.key.location", &read_file("ssl.key.location", l)?, pw)?)
        }
        (None, None) => None,
    };
    match (certs, key) {
        (Some(c), Some(k)) => Ok(Some((c, k))),
        (None, None) => Ok(None),
        (Some(_), None) => Err("a client certificate is set but no private key \
             (ssl.key.location / ssl.key.pem / ssl.keystore.key)"
            .into()),
        (None, Some(_)) => Err("a client private key is set but no certificate \
             (ssl.certificate.location / ssl.certificate.pem / ssl.keystore.certificate.chain)"
            .into()),
    }
}

/// A relaxed server check: with `chain`, the chain is verified against the
/// roots but any name is accepted (ssl.endpoint.identification.algorithm=none);
/// without, any certificate is accepted (enable.ssl.certificate.verification
/// =false). Handshake signatures are always checked.
#[derive(Debug)]
struct Relaxed {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(v) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        match v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            r => r,
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            m,
            c,
            d,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl Tls {
    /// Loads every file and builds the client configuration; errors name the
    /// setting at fault (never a password or key).
    pub fn new(s: &TlsSettings) -> Result<Tls, String> {
        let provider = Arc::new(provider::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = if !s.verify_certificates {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed { chain: None, provider }))
        } else {
            let roots = Arc::new(roots(s)?);
            if s.verify_hostname {
                builder.with_root_certificates(roots)
            } else {
                let v = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                    .build()
                    .map_err(|e| format!("TLS: {e}"))?;
                builder.dangerous().with_custom_certificate_verifier(Arc::new(Relaxed {
                    chain: Some(v),
                    provider,
                }))
            }
        };
        let config = match identity(s)? {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("TLS client certificate: {e}"))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Tls { connector: TlsConnector::from(Arc::new(config)) })
    }

    /// The TLS handshake on a connected socket. `host` is what the
    /// certificate is checked against (and the SNI name when it is a DNS name).
    pub async fn handshake(
        &self,
        host: &str,
        tcp: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid TLS server name \"{host}\""),
            )
        })?;
        self.connector.connect(name, tcp).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jks_is_refused_with_advice() {
        let dir = std::env::temp_dir().join(format!("kp-tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("store.jks");
        std::fs::write(&f, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let s = TlsSettings {
            ca_location: Some(f.to_string_lossy().into()),
            truststore_type: "pem".into(),
            verify_certificates: true,
            verify_hostname: true,
            ..Default::default()
        };
        let e = Tls::new(&s).unwrap_err();
        assert!(e.contains("JKS") && e.contains("PKCS12"), "{e}");
        let s = TlsSettings { truststore_type: "JKS".into(), ..s };
        assert!(Tls::new(&s).unwrap_err().contains("JKS"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_files_and_half_identities_are_named() {
        let s = TlsSettings {
            ca_location: Some("/nonexistent/ca.pem".into()),
            verify_certificates: true,
            verify_hostname: true,
            ..Default::default()
        };
        let e = Tls::new(&s).unwrap_err();
        assert!(e.contains("ssl.ca.location") && e.contains("/nonexistent/ca.pem"), "{e}");
        let s = TlsSettings {
            cert_location: Some("/dev/null".into()),
            verify_certificates: false,
            ..Default::default()
        };
        assert!(Tls::new(&s).unwrap_err().contains("ssl.certificate.location"));
        let s = TlsSettings {
            key_pem: Some("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n".into()),
            cert_pem: None,
            verify_certificates: false,
            ..Default::default()
        };
        assert!(Tls::new(&s).unwrap_err().contains("ssl.key.password"));
    }

    #[test]
    fn inline_pem_accepts_escaped_newlines() {
        assert_eq!(inline_pem("a\\nb"), b"a\nb");
        assert_eq!(inline_pem("a\nb"), b"a\nb");
    }
}
