//! TLS to the target (`tls=1` verifies against the Mozilla roots and any configured extra
//! roots; `tls=insecure` accepts any certificate but still reports whether it would have
//! verified), and the certificate details sent in `connected`, with a verdict in the words a
//! listing reviewer uses (verified, self-signed, expired, not yet valid, wrong name, unknown
//! issuer, unverified) and a sentence instead of a library's error text.

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
    /// Why it did not verify (only with `tls=insecure`): the verdict's sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    /// What the certificate check says.
    pub verdict: Verdict,
    /// The verdict as a sentence, e.g. "The certificate is self-signed (CN=localhost)."
    pub verdict_text: String,
    /// The certificate's subject alternative names (DNS names and IP addresses).
    pub alt_names: Vec<String>,
}

/// What the certificate check says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The chain verifies against the trusted roots for the scanned name.
    Verified,
    /// The certificate signs itself (issuer = subject) and is not a trusted root.
    SelfSigned,
    /// Its validity ended.
    Expired,
    /// Its validity has not begun.
    NotYetValid,
    /// It is not for the scanned name.
    WrongName,
    /// Its issuer is no trusted authority (and it is not self-signed).
    UnknownIssuer,
    /// It does not verify for another reason (or the server sent none).
    Unverified,
}

impl Verdict {
    /// `self_signed`, …: the JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::SelfSigned => "self_signed",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not_yet_valid",
            Verdict::WrongName => "wrong_name",
            Verdict::UnknownIssuer => "unknown_issuer",
            Verdict::Unverified => "unverified",
        }
    }
}

/// What the verdict needs to know about the certificate.
struct CertFacts {
    subject_cn: Option<String>,
    issuer_cn: Option<String>,
    self_issued: bool,
    not_before: i64,
    not_after: i64,
    alt_names: Vec<String>,
}

/// At most this many alternative names are kept (a certificate may list thousands).
const MAX_ALT_NAMES: usize = 32;
/// Names from a certificate are cut to this many characters in sentences.
const MAX_NAME_CHARS: usize = 80;

fn cut(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect();
    if s.chars().count() > MAX_NAME_CHARS {
        out.push('…');
    }
    out
}

fn cert_facts(cert: &x509_parser::certificate::X509Certificate<'_>) -> CertFacts {
    use x509_parser::extensions::GeneralName;
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(cut)
    };
    let mut alt_names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in san.value.general_names.iter().take(MAX_ALT_NAMES) {
            match n {
                GeneralName::DNSName(d) => alt_names.push(cut(d)),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => alt_names.push(
                        std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())
                            .to_string(),
                    ),
                    16 => alt_names.push(
                        std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())
                            .to_string(),
                    ),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    CertFacts {
        subject_cn: cn(cert.subject()),
        issuer_cn: cn(cert.issuer()),
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        alt_names,
    }
}

/// The verdict and its sentence, from the verifier's answer and the certificate.
fn verdict(
    check: &Result<(), rustls::Error>,
    facts: &CertFacts,
    host: &str,
    now: i64,
) -> (Verdict, String) {
    use rustls::CertificateError as E;
    let date = |t: i64| rfc3339(t).replace('T', " ").replace('Z', " UTC");
    let subject = facts
        .subject_cn
        .as_ref()
        .map(|cn| format!(" (CN={cn})"))
        .unwrap_or_default();
    let Err(err) = check else {
        let by = facts
            .issuer_cn
            .as_ref()
            .map(|cn| format!(", issued by {cn}"))
            .unwrap_or_default();
        return (
            Verdict::Verified,
            format!(
                "The certificate is valid for {host}{by}, until {}.",
                date(facts.not_after)
            ),
        );
    };
    let cert_err = match err {
        rustls::Error::InvalidCertificate(e) => Some(e),
        _ => None,
    };
    if facts.self_issued {
        let mut text = format!("The certificate is self-signed{subject}.");
        if now > facts.not_after {
            text.push_str(&format!(" It also expired on {}.", date(facts.not_after)));
        }
        return (Verdict::SelfSigned, text);
    }
    match cert_err {
        Some(E::Expired | E::ExpiredContext { .. }) => (
            Verdict::Expired,
            format!(
                "The certificate{subject} expired on {}.",
                date(facts.not_after)
            ),
        ),
        Some(E::NotValidYet | E::NotValidYetContext { .. }) => (
            Verdict::NotYetValid,
            format!(
                "The certificate{subject} is not valid until {}.",
                date(facts.not_before)
            ),
        ),
        Some(E::NotValidForName | E::NotValidForNameContext { .. }) => {
            let names = if facts.alt_names.is_empty() {
                facts.subject_cn.clone().unwrap_or_else(|| "no name".into())
            } else {
                facts.alt_names.join(", ")
            };
            (
                Verdict::WrongName,
                format!("The certificate is for {names}, not {host}."),
            )
        }
        Some(E::UnknownIssuer) => (
            Verdict::UnknownIssuer,
            format!(
                "The certificate{subject} is issued by {}, which is not a trusted authority.",
                facts.issuer_cn.as_deref().unwrap_or("an unnamed issuer")
            ),
        ),
        other => {
            let why = match other {
                Some(E::BadSignature) => "its signature is invalid",
                Some(E::Revoked) => "it was revoked",
                Some(E::InvalidPurpose | E::InvalidPurposeContext { .. }) => {
                    "it is not meant for servers"
                }
                Some(E::BadEncoding) => "it is malformed",
                _ => "its chain does not verify",
            };
            (
                Verdict::Unverified,
                format!("The certificate{subject} could not be verified: {why}."),
            )
        }
    }
}

/// The client configuration (any certificate, signatures checked) and the verifier run
/// right after the handshake, built once.
#[derive(Debug)]
pub struct Tls {
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
        let insecure = builder()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(Arc::clone(&provider))))
            .with_no_client_auth();
        Ok(Tls {
            insecure: Arc::new(insecure),
            verifier,
        })
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
        // The handshake accepts any certificate (signatures still checked); verification
        // runs right after it, before a byte of data is read or written, so a refusal can
        // say why in words and the insecure mode can report the same verdict.
        let stream = TlsConnector::from(Arc::clone(&self.insecure))
            .connect(name.clone(), tcp)
            .await
            .map_err(|e| format!("The TLS handshake failed: {}", handshake_reason(&e)))?;
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
            verified: false,
            verify_error: None,
            verdict: Verdict::Unverified,
            verdict_text: "The server sent no certificate.".into(),
            alt_names: Vec::new(),
        };
        if let Some((ee, rest)) = certs.split_first() {
            let now = UnixTime::now();
            let check = self
                .verifier
                .verify_server_cert(ee, rest, &name, &[], now)
                .map(|_| ());
            let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            match x509_parser::parse_x509_certificate(ee) {
                Ok((_, cert)) => {
                    info.subject = cert.subject().to_string();
                    info.issuer = cert.issuer().to_string();
                    info.not_before = rfc3339(cert.validity().not_before.timestamp());
                    info.not_after = rfc3339(cert.validity().not_after.timestamp());
                    let facts = cert_facts(&cert);
                    (info.verdict, info.verdict_text) =
                        verdict(&check, &facts, &host.to_string(), now);
                    info.alt_names = facts.alt_names;
                }
                Err(_) => {
                    info.subject = "(a certificate that cannot be parsed)".into();
                    info.verdict_text = "The certificate cannot be parsed.".into();
                }
            }
            info.verified = check.is_ok();
            if info.verified {
                info.verdict = Verdict::Verified;
            }
        }
        if !info.verified {
            if !insecure {
                return Err(format!(
                    "{} Scan again without verification to see the server anyway.",
                    info.verdict_text
                ));
            }
            info.verify_error = Some(info.verdict_text.clone());
        }
        Ok((stream, info))
    }
}

/// Why a handshake failed, in words (the library's error names what, not why).
fn handshake_reason(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::AlertReceived(a)) => format!("the server refused it ({a:?})"),
        Some(rustls::Error::PeerIncompatible(_)) => {
            "the server offers no protocol version or cipher iacscope accepts".into()
        }
        Some(rustls::Error::InvalidMessage(_))
        | Some(rustls::Error::InappropriateMessage { .. }) => {
            "the server does not speak TLS on this port".into()
        }
        Some(_) => "the server broke the TLS protocol".into(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during it".into()
        }
        None => format!("the connection failed ({})", e.kind()),
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
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    /// A TLS server on 127.0.0.1 presenting `chain` (leaf first); answers nothing.
    async fn serve(chain: Vec<Vec<u8>>, key: &KeyPair) -> u16 {
        let chain = chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut s) = acceptor.accept(tcp).await {
                        let _ = tokio::io::AsyncReadExt::read(&mut s, &mut [0u8; 16]).await;
                    }
                });
            }
        });
        port
    }

    /// A CA (trusted through a roots file) and a leaf it signs for `names`.
    fn ca_and_leaf(names: &[&str], past: bool) -> (std::path::PathBuf, Vec<u8>, KeyPair) {
        let ca_key = KeyPair::generate().expect("key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "iacscope test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("ca");
        let leaf_key = KeyPair::generate().expect("key");
        let mut leaf =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        leaf.distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        if past {
            leaf.not_before = rcgen::date_time_ymd(2001, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).expect("leaf");
        let roots = std::env::temp_dir().join(format!(
            "iacscope-tls-test-{}-{}.pem",
            std::process::id(),
            names[0]
        ));
        std::fs::write(&roots, ca_cert.pem()).expect("roots");
        (roots, leaf_cert.der().to_vec(), leaf_key)
    }

    async fn try_connect(tls: &Tls, port: u16, insecure: bool) -> Result<TlsInfo, String> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp");
        let host = Host::Ip([127, 0, 0, 1].into());
        tls.connect(tcp, &host, insecure)
            .await
            .map(|(_, info)| info)
    }

    #[tokio::test]
    async fn verdicts_are_sentences_not_library_errors() {
        // Self-signed: refused in words when verifying, reported when not.
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let port = serve(vec![ck.cert.der().to_vec()], &ck.key_pair).await;
        let tls = Tls::new(None).expect("tls");
        let err = try_connect(&tls, port, false).await.expect_err("refused");
        assert_eq!(
            err,
            "The certificate is self-signed (CN=rcgen self signed cert). Scan again without \
             verification to see the server anyway."
        );
        let info = try_connect(&tls, port, true)
            .await
            .expect("insecure connects");
        assert_eq!(info.verdict, Verdict::SelfSigned);
        assert!(!info.verified);
        assert_eq!(info.alt_names, vec!["localhost".to_owned()]);

        // Signed by a trusted CA for another name.
        let (roots, leaf, key) = ca_and_leaf(&["other.example", "10.9.8.7"], false);
        let port = serve(vec![leaf], &key).await;
        let tls = Tls::new(Some(&roots)).expect("tls");
        let info = try_connect(&tls, port, true).await.expect("insecure");
        assert_eq!(info.verdict, Verdict::WrongName, "{}", info.verdict_text);
        assert_eq!(
            info.verdict_text,
            "The certificate is for other.example, 10.9.8.7, not 127.0.0.1."
        );

        // Trusted CA, right name, expired in 2002.
        let (roots, leaf, key) = ca_and_leaf(&["127.0.0.1"], true);
        let port = serve(vec![leaf], &key).await;
        let tls = Tls::new(Some(&roots)).expect("tls");
        let err = try_connect(&tls, port, false).await.expect_err("expired");
        assert!(
            err.starts_with("The certificate (CN=127.0.0.1) expired on 2002-01-01 00:00:00 UTC."),
            "{err}"
        );

        // The same CA, unexpired: verified.
        let (roots, leaf, key) = ca_and_leaf(&["127.0.0.1"], false);
        let port = serve(vec![leaf], &key).await;
        let tls = Tls::new(Some(&roots)).expect("tls");
        let info = try_connect(&tls, port, false).await.expect("verified");
        assert_eq!(info.verdict, Verdict::Verified);
        assert!(
            info.verdict_text
                .starts_with("The certificate is valid for 127.0.0.1, issued by iacscope test CA"),
            "{}",
            info.verdict_text
        );

        // Signed by a CA nobody trusts.
        let (_, leaf, key) = ca_and_leaf(&["127.0.0.1"], false);
        let port = serve(vec![leaf], &key).await;
        let info = try_connect(&Tls::new(None).expect("tls"), port, true)
            .await
            .expect("insecure");
        assert_eq!(
            info.verdict,
            Verdict::UnknownIssuer,
            "{}",
            info.verdict_text
        );
        assert!(info
            .verdict_text
            .contains("iacscope test CA, which is not a trusted authority"));
    }

    #[test]
    fn odd_certificate_names_become_plain_bounded_text() {
        let facts = CertFacts {
            subject_cn: Some(cut("evil\x1b[31m\u{7}name")),
            issuer_cn: Some(cut(&"x".repeat(5000))),
            self_issued: false,
            not_before: 0,
            not_after: 10,
            alt_names: vec![cut("a\r\nb.example")],
        };
        let wrong = Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ));
        let (v, text) = verdict(&wrong, &facts, "mud.example", 100);
        assert_eq!(v, Verdict::WrongName);
        assert_eq!(text, "The certificate is for ab.example, not mud.example.");
        let unknown = Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let (v, text) = verdict(&unknown, &facts, "mud.example", 100);
        assert_eq!(v, Verdict::UnknownIssuer);
        assert!(
            text.starts_with("The certificate (CN=evil[31mname) is issued by xxx"),
            "{text}"
        );
        assert!(text.chars().count() < 200, "{text}");
        let other = Err(rustls::Error::General("boom".into()));
        let (v, text) = verdict(&other, &facts, "mud.example", 100);
        assert_eq!(v, Verdict::Unverified);
        assert!(!text.contains("boom"), "no library text: {text}");
    }

    #[tokio::test]
    async fn a_port_without_tls_is_named_in_words() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.expect("accept");
            let _ = tokio::io::AsyncWriteExt::write_all(&mut tcp, b"Welcome to the MUD!\r\n").await;
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        });
        let err = try_connect(&Tls::new(None).expect("tls"), port, false)
            .await
            .expect_err("not TLS");
        assert!(err.starts_with("The TLS handshake failed: "), "{err}");
        assert!(!err.contains("InvalidMessage"), "{err}");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
