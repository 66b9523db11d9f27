//! A Google service-account key file and the RS256 assertion of the OAuth 2.0
//! JWT-bearer grant (RFC 7523) that it signs.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::json;

/// The read-only scopes the poller asks for; the key's client id must be
/// granted exactly these under domain-wide delegation.
pub const SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly https://www.googleapis.com/auth/admin.directory.group.readonly https://www.googleapis.com/auth/admin.directory.group.member.readonly";

#[derive(Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    client_id: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// A parsed key file: who signs, with which key, for which token endpoint.
pub struct ServiceAccount {
    pub client_email: String,
    /// What domain-wide delegation is granted to in the Admin console.
    pub client_id: Option<String>,
    pub token_uri: String,
    key: RsaKeyPair,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

fn pem_to_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect();
    STANDARD
        .decode(body.as_bytes())
        .map_err(|_| "private_key is not a PEM key".to_owned())
}

impl ServiceAccount {
    /// Reads a key file as Google issues it (JSON with `client_email`,
    /// `private_key` as PKCS#8 PEM, `token_uri`); the error says what is wrong.
    pub fn parse(text: &str) -> Result<ServiceAccount, String> {
        let file: KeyFile = serde_json::from_str(text)
            .map_err(|_| "the credentials are not a service-account key file (JSON)".to_owned())?;
        let field = |v: Option<String>, name: &str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("the service-account key file has no {name}"))
        };
        let client_email = field(file.client_email, "client_email")?;
        let pem = field(file.private_key, "private_key")?;
        let token_uri = field(file.token_uri, "token_uri")?;
        if !(token_uri.starts_with("https://") || token_uri.starts_with("http://")) {
            return Err("token_uri is not an http(s) URL".to_owned());
        }
        let key = RsaKeyPair::from_pkcs8(&pem_to_der(&pem)?)
            .map_err(|_| "private_key is not an RSA key in PKCS#8 form".to_owned())?;
        Ok(ServiceAccount {
            client_email,
            client_id: file
                .client_id
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
            token_uri,
            key,
        })
    }

    /// The signed assertion: the service account (`iss`) acting as the
    /// admin (`sub`) for the read-only directory scopes, valid one hour.
    pub fn assertion(&self, subject: &str, now_secs: i64) -> Result<String, String> {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string());
        let claims = URL_SAFE_NO_PAD.encode(
            json!({
                "iss": self.client_email,
                "sub": subject,
                "scope": SCOPES,
                "aud": self.token_uri,
                "iat": now_secs,
                "exp": now_secs + 3600,
            })
            .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "signing the token assertion failed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_incomplete_key_files() {
        assert!(ServiceAccount::parse("nope").is_err());
        let e = ServiceAccount::parse(r#"{"client_email": "a@b", "token_uri": "https://t"}"#)
            .unwrap_err();
        assert!(e.contains("private_key"), "{e}");
        let e = ServiceAccount::parse(
            r#"{"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "token_uri": "https://t"}"#,
        )
        .unwrap_err();
        assert!(e.contains("RSA"), "{e}");
    }
}
