//! TLS to PostgreSQL through rustls (the ring provider), with libpq's
//! `sslmode` values and `sslrootcert` in the database URL.
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | no |
//! | `prefer` (default) | when the server offers it | no (like libpq: as `verify-ca` when `sslrootcert` is given) |
//! | `require` | always | no (as `verify-ca` when `sslrootcert` is given) |
//! | `verify-ca` | always | chain to a trusted CA |
//! | `verify-full` | always | chain, and the host name (or IP address) in the URL |
//!
//! Trusted CAs are the PEM file `sslrootcert` names, or the system's
//! (`/etc/ssl/certs`) without one. The driver knows neither `verify-*` nor
//! `sslrootcert`: both are taken out of the URL here and the driver is told
//! only whether TLS is required.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{StoreError, StoreResult};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// The TLS part of a database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` off a `postgres://` URL's query: the
/// URL the driver gets, and the TLS options.
pub fn split_url(url: &str) -> StoreResult<(String, TlsOptions)> {
    let mut opts = TlsOptions {
        mode: SslMode::Prefer,
        root_cert: None,
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), opts));
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            form_decode(value).ok_or_else(|| {
                StoreError::internal(format!("the database URL's {key} is not valid UTF-8"))
            })
        };
        match key {
            "sslmode" => {
                let v = decoded()?;
                opts.mode = SslMode::parse(&v).ok_or_else(|| {
                    StoreError::internal(format!(
                        "the database URL's sslmode is {v:?}; use disable, prefer, require, verify-ca or verify-full"
                    ))
                })?;
            }
            "sslrootcert" => opts.root_cert = Some(PathBuf::from(decoded()?)),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, opts))
}

/// Percent-decoding of a URL query value.
fn form_decode(v: &str) -> Option<String> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The driver's own `sslmode` for ours: it only needs to know whether TLS
/// may be skipped.
pub fn driver_mode(mode: SslMode) -> postgres::config::SslMode {
    match mode {
        SslMode::Disable => postgres::config::SslMode::Disable,
        SslMode::Prefer => postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            postgres::config::SslMode::Require
        }
    }
}

impl fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RustlsConnect(sslmode={})", self.mode)
    }
}

/// What checks the server's certificate, per `sslmode` and `sslrootcert`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    None,
    Chain,
    ChainAndName,
}

/// The connector the pool's connections are made with.
#[derive(Clone)]
pub struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    mode: SslMode,
}

impl RustlsConnect {
    /// A connector for these options; reads `sslrootcert` (or the system's
    /// CAs) when certificates are checked.
    pub fn new(opts: &TlsOptions) -> StoreResult<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let check = match (opts.mode, &opts.root_cert) {
            (SslMode::VerifyFull, _) => Check::ChainAndName,
            (SslMode::VerifyCa, _) | (_, Some(_)) => Check::Chain,
            _ => Check::None,
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::internal_from("TLS for PostgreSQL", e))?;
        let config = match check {
            Check::None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                    provider.signature_verification_algorithms,
                )))
                .with_no_client_auth(),
            Check::Chain | Check::ChainAndName => {
                let roots = Arc::new(roots(opts)?);
                let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                    .build()
                    .map_err(|e| StoreError::internal_from("TLS for PostgreSQL", e))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Verifier {
                        webpki,
                        check_name: check == Check::ChainAndName,
                    }))
                    .with_no_client_auth()
            }
        };
        Ok(RustlsConnect {
            config: Arc::new(config),
            mode: opts.mode,
        })
    }
}

/// The CAs a certificate must chain to.
fn roots(opts: &TlsOptions) -> StoreResult<RootCertStore> {
    let mut store = RootCertStore::empty();
    match &opts.root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::internal(format!(
                        "sslrootcert {}: cannot read PEM certificates ({e})",
                        path.display()
                    ))
                })?;
            for cert in certs {
                store.add(cert).map_err(|e| {
                    StoreError::internal(format!("sslrootcert {}: {e}", path.display()))
                })?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // One unreadable system certificate does not spoil the rest.
                let _ = store.add(cert);
            }
        }
    }
    if store.is_empty() {
        return Err(StoreError::internal(format!(
            "sslmode={} checks the server's certificate, but no trusted CA was found; \
             name the CA's PEM file with sslrootcert=PATH in the database URL",
            opts.mode
        )));
    }
    Ok(store)
}

/// `verify-ca` and `verify-full`: webpki's chain check; the name check only
/// for `verify-full`.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encrypted, but any
/// certificate is taken (libpq's meaning; it stops eavesdropping, not a
/// server in the middle). The handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnectOne;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnectOne> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{domain:?} is not a host name TLS can check: {e}"),
            )
        })?;
        Ok(RustlsConnectOne {
            config: self.config.clone(),
            mode: self.mode,
            name,
        })
    }
}

/// The connector of one connection, to one host.
pub struct RustlsConnectOne {
    config: Arc<rustls::ClientConfig>,
    mode: SslMode,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnectOne
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let host = self.name.to_str().into_owned();
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await
                .map(RustlsStream)
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "TLS with PostgreSQL at {host} failed (sslmode={}): {e}",
                            self.mode
                        ),
                    )
                })
        })
    }
}

/// A TLS connection to PostgreSQL.
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM's channel binding is optional in the driver (`prefer`).
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    use roster_scim::schema::SchemaRegistry;
    use std::time::Duration;

    /// A CA: what signs, and its certificate in PEM.
    fn ca(name: &str) -> (Issuer<'static, KeyPair>, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        (Issuer::new(params, key), cert.pem())
    }

    /// A server certificate for `host`, and its key, in PEM.
    fn server_cert(issuer: &Issuer<'static, KeyPair>, host: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec![host.to_owned()]).unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Whether a connection to `url` is encrypted, or why none was made.
    fn encrypted(url: &str) -> Result<bool, String> {
        let (url, opts) = split_url(url).map_err(|e| e.to_string())?;
        let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        config.ssl_mode(driver_mode(opts.mode));
        config.connect_timeout(Duration::from_secs(5));
        let query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
        let mut client = match opts.mode {
            SslMode::Disable => config.connect(postgres::NoTls),
            _ => config.connect(RustlsConnect::new(&opts).map_err(|e| e.to_string())?),
        }
        .map_err(|e| format!("{e}"))?;
        let row = client.query_one(query, &[]).map_err(|e| format!("{e}"))?;
        Ok(row.get(0))
    }

    /// Opens the store itself at `url`: the error text an operator reads.
    fn open_store(url: &str) -> Result<(), String> {
        let mut options = crate::PgOptions::new(url);
        options.pool_size = 1;
        options.acquire_timeout = Duration::from_secs(3);
        crate::PgStore::open(options, std::sync::Arc::new(SchemaRegistry::core()))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_postgres_with_tls_is_reached_as_each_sslmode_says() {
        let (issuer, ca_pem) = ca("Roster test CA");
        let (_, other_ca_pem) = ca("Some other CA");
        let (cert, key) = server_cert(&issuer, "localhost");
        let Some(cluster) = roster_testkit::pg::TlsCluster::start(&cert, &key) else {
            // No PostgreSQL server binaries on this machine (CI has them).
            assert!(
                std::env::var_os("CI").is_none(),
                "CI needs initdb and pg_ctl"
            );
            return;
        };
        let cluster = cluster.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        let other_file = dir.path().join("other.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();
        std::fs::write(&other_file, &other_ca_pem).unwrap();
        let port = cluster.port();
        let url =
            |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");
        let ca = ca_file.display().to_string();
        let other = other_file.display().to_string();

        // verify-full: the CA and the name; the whole store opens that way.
        let full = url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        );
        assert_eq!(encrypted(&full), Ok(true));
        open_store(&full).unwrap();
        // verify-ca checks the chain only; require and prefer encrypt.
        let by_ip = url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
        assert_eq!(encrypted(&by_ip), Ok(true));
        assert_eq!(encrypted(&url("127.0.0.1", "sslmode=require")), Ok(true));
        assert_eq!(encrypted(&url("127.0.0.1", "sslmode=prefer")), Ok(true));
        assert_eq!(encrypted(&url("127.0.0.1", "sslmode=disable")), Ok(false));

        // A name the certificate does not carry.
        let wrong_host = url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        );
        let e = open_store(&wrong_host).unwrap_err();
        assert!(
            e.contains("sslmode=verify-full") && e.contains("not valid for name \"127.0.0.1\""),
            "{e}"
        );
        // A CA that did not sign it, in either verify mode.
        for mode in ["verify-full", "verify-ca"] {
            let unknown = url("localhost", &format!("sslmode={mode}&sslrootcert={other}"));
            let e = open_store(&unknown).unwrap_err();
            let issuer = e.to_lowercase().replace(' ', "");
            assert!(
                e.contains(&format!("sslmode={mode}")) && issuer.contains("unknownissuer"),
                "{e}"
            );
        }
        // sslrootcert makes require check the chain, as libpq does.
        let pinned = url("localhost", &format!("sslmode=require&sslrootcert={other}"));
        assert!(encrypted(&pinned).is_err());
    }

    #[test]
    fn sslmode_and_sslrootcert_leave_the_url() {
        let (url, o) = split_url(
            "postgres://u@db/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=r",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@db/x?application_name=r");
        assert_eq!(o.mode, SslMode::VerifyFull);
        assert_eq!(o.root_cert, Some(PathBuf::from("/etc/ca.pem")));
        let (url, o) = split_url("postgres://u@db/x").unwrap();
        assert_eq!(url, "postgres://u@db/x");
        assert_eq!(o.mode, SslMode::Prefer);
        let (url, o) = split_url("postgres://u@db/x?sslmode=disable").unwrap();
        assert_eq!(url, "postgres://u@db/x");
        assert_eq!(o.mode, SslMode::Disable);
        let e = split_url("postgres://u@db/x?sslmode=allow").unwrap_err();
        assert!(e.to_string().contains("verify-full"), "{e}");
    }

    #[test]
    fn verify_modes_without_any_ca_file_say_what_to_set() {
        let opts = TlsOptions {
            mode: SslMode::VerifyFull,
            root_cert: Some(PathBuf::from("/nonexistent/ca.pem")),
        };
        let e = RustlsConnect::new(&opts).err().unwrap();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
        assert!(
            RustlsConnect::new(&TlsOptions {
                mode: SslMode::Require,
                root_cert: None
            })
            .is_ok()
        );
    }
}
