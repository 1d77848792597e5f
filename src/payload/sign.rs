//! Authenticode signing of the EFI binaries an image carries (the build stage's last step for
//! an ESP file): the key and certificate read from PEM, the PKCS#7 SignedData's signature made
//! with RSA PKCS#1 v1.5 (deterministic, so an image signed with one key is the same bytes
//! every time), the rest of the format [`authenticode`]'s. The cryptography is RustCrypto's
//! (`rsa`, `x509-cert`, `sha2`).

use der::{DecodePem, Encode};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};

use crate::image::format::authenticode::{self, Identity};
use crate::image::format::pe::PeError;

/// Why a binary could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The key is not an RSA private key in PEM (PKCS#8 or PKCS#1).
    #[error("signing key: {0}")]
    Key(String),
    /// The certificate is not an X.509 certificate in PEM.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The certificate's public key is not the key's.
    #[error("the certificate is not the signing key's (its public key differs)")]
    Mismatch,
    /// The binary is not a PE32+ image that can be signed.
    #[error("{0}")]
    Pe(#[from] PeError),
    /// RSA failed.
    #[error("RSA: {0}")]
    Rsa(String),
}

/// A signing key and its certificate.
pub struct Signer {
    key: rsa::RsaPrivateKey,
    identity: Identity,
    /// The certificate's subject, for messages and `inspect`.
    pub subject: String,
}

impl Signer {
    /// A signer from PEM text: the key (PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`) and
    /// its certificate.
    pub fn from_pem(key: &str, certificate: &str) -> Result<Signer, SignError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        if key.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(SignError::Key(
                "the key is encrypted; give it decrypted (`openssl pkey -in KEY -out PLAIN`)"
                    .into(),
            ));
        }
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(key)
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(key))
            .map_err(|e| SignError::Key(e.to_string()))?;
        let cert = x509_cert::Certificate::from_pem(certificate)
            .map_err(|e| SignError::Certificate(e.to_string()))?;
        let tbs = &cert.tbs_certificate;
        let spki = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|e| SignError::Certificate(e.to_string()))?;
        let public = rsa::RsaPublicKey::from_public_key_der(&spki)
            .map_err(|e| SignError::Certificate(format!("not an RSA key: {e}")))?;
        if public.n() != key.n() || public.e() != key.e() {
            return Err(SignError::Mismatch);
        }
        let der =
            |r: Result<Vec<u8>, der::Error>| r.map_err(|e| SignError::Certificate(e.to_string()));
        Ok(Signer {
            identity: Identity {
                certificate: der(cert.to_der())?,
                issuer: der(tbs.issuer.to_der())?,
                serial: der(tbs.serial_number.to_der())?,
            },
            subject: tbs.subject.to_string(),
            key,
        })
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.identity.certificate
    }

    /// `pe` signed: its certificate table replaced by one signature of this signer.
    pub fn sign(&self, pe: &[u8]) -> Result<Vec<u8>, SignError> {
        let rsa = |digest_info: &[u8]| {
            self.key
                .sign(rsa::Pkcs1v15Sign::new_unprefixed(), digest_info)
                .map_err(|e| SignError::Rsa(e.to_string()))
        };
        authenticode::sign(pe, &self.identity, rsa)
    }
}
