//! TLS to the target (`tls=1` verifies against the Mozilla roots and any configured extra
//! roots; `tls=insecure` accepts any certificate but still reports whether it would have
//! verified), and the certificate details sent in `connected`.

use super::policy::Host;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS details for the `connected` message.
#[derive(Clone, Debug, Serialize)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    /// The negotiated cipher suite.
    pub cipher: String,
    /// The server certificate's subject (RFC 4514 style).
    pub subject: String,
    /// The server certificate's issuer.
    pub issuer: String,
    /// Start of validity, RFC 3339 UTC.
    pub not_before: String,
    /// End of validity, RFC 3339 UTC.
    pub not_after: String,
    /// Whether the chain verified against the trusted roots for this host name.
    pub verified: bool,
    /// Why it did not verify (only with `tls=insecure`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
}

/// The two client configurations, built once.
#[derive(Debug)]
pub struct Tls {
    verifying: Arc<ClientConfig>,
    insecure: Arc<ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
}

#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    // Signatures are still checked: the peer must hold the certificate's key.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Tls {
    /// Builds the configurations; `extra_roots` is a PEM file of additional trust anchors.
    pub fn new(extra_roots: Option<&Path>) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = extra_roots {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read TLS roots {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("TLS roots {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("TLS roots {}: {e}", path.display()))?;
            }
        }
        let roots = Arc::new(roots);
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| format!("TLS verifier: {e}"))?;
        let builder = || {
            ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS configuration: {e}"))
        };
        let verifying = builder()?
            .with_webpki_verifier(Arc::clone(&verifier))
            .with_no_client_auth();
        let insecure = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(Arc::clone(&provider))))
            .with_no_client_auth();
        Ok(Tls {
            verifying: Arc::new(verifying),
            insecure: Arc::new(insecure),
            verifier,
        })
    }

    /// The client configuration: verifying against the roots, or accepting any certificate
    /// (signatures still checked). `iacscope scan --tls[-no-verify]` uses these too.
    pub fn client_config(&self, insecure: bool) -> Arc<ClientConfig> {
        if insecure {
            Arc::clone(&self.insecure)
        } else {
            Arc::clone(&self.verifying)
        }
    }

    /// Runs the handshake over `tcp` for `host`.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        host: &Host,
        insecure: bool,
    ) -> Result<(TlsStream<TcpStream>, TlsInfo), String> {
        let name: ServerName<'static> = match host {
            Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
            Host::Name(n) => ServerName::try_from(n.clone())
                .map_err(|_| format!("`{n}` is not a valid TLS server name"))?,
        };
        let config = if insecure {
            &self.insecure
        } else {
            &self.verifying
        };
        let stream = TlsConnector::from(Arc::clone(config))
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
        let conn = stream.get_ref().1;
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(v) => format!("{v:?}"),
            None => "unknown".to_owned(),
        };
        let cipher = conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let certs = conn.peer_certificates().unwrap_or_default();
        let mut info = TlsInfo {
            protocol,
            cipher,
            subject: String::new(),
            issuer: String::new(),
            not_before: String::new(),
            not_after: String::new(),
            verified: !insecure,
            verify_error: None,
        };
        if let Some((ee, rest)) = certs.split_first() {
            match x509_parser::parse_x509_certificate(ee) {
                Ok((_, cert)) => {
                    info.subject = cert.subject().to_string();
                    info.issuer = cert.issuer().to_string();
                    info.not_before = rfc3339(cert.validity().not_before.timestamp());
                    info.not_after = rfc3339(cert.validity().not_after.timestamp());
                }
                Err(e) => info.subject = format!("(unparsable certificate: {e})"),
            }
            if insecure {
                let verdict =
                    self.verifier
                        .verify_server_cert(ee, rest, &name, &[], UnixTime::now());
                info.verified = verdict.is_ok();
                info.verify_error = verdict.err().map(|e| e.to_string());
            }
        } else if insecure {
            info.verify_error = Some("the server sent no certificate".into());
        }
        Ok((stream, info))
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (Howard Hinnant's civil-from-days).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
