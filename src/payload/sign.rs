//! Authenticode signing of the EFI binaries an image carries (the build stage's last step for
//! an ESP file), as UEFI Secure Boot verifies them: the PE image digest (SHA-256 over the
//! headers without the checksum and the certificate table entry, then the sections in file
//! order, then any data after them), a PKCS#7 SignedData over an `SpcIndirectDataContent`
//! holding that digest, signed with RSA PKCS#1 v1.5 (deterministic, so an image signed with
//! one key is the same bytes every time), appended as a `WIN_CERTIFICATE` that the
//! certificate table entry points at, and the PE checksum recomputed.
//!
//! The cryptography is RustCrypto's (`rsa`, `x509-cert`, `sha2`); the DER around it is
//! small, fixed and written here, each structure as Microsoft's Authenticode specification
//! and RFC 2315 define it.

use der::{DecodePem, Encode};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use sha2::{Digest, Sha256};

use crate::image::format::pe::{layout, put32, PeError, OPT_CHECKSUM};

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
    cert_der: Vec<u8>,
    issuer_der: Vec<u8>,
    serial_der: Vec<u8>,
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
            cert_der: der(cert.to_der())?,
            issuer_der: der(tbs.issuer.to_der())?,
            serial_der: der(tbs.serial_number.to_der())?,
            subject: tbs.subject.to_string(),
            key,
        })
    }

    /// `pe` signed: its certificate table replaced by one signature of this signer.
    pub fn sign(&self, pe: &[u8]) -> Result<Vec<u8>, SignError> {
        let mut out = strip_signatures(pe)?;
        // The certificate table starts 8-aligned after the image; the digest covers the
        // padding as data after the last section, so pad first.
        out.resize(out.len().next_multiple_of(8), 0);
        let digest = image_digest(&out)?;
        let content = spc_indirect_data(&digest);
        let signed = self.signed_data(&content)?;
        let cert = WinCertificate {
            revision: WIN_CERT_REVISION_2_0,
            certificate_type: WIN_CERT_TYPE_PKCS_SIGNED_DATA,
            data: signed,
        };
        let at = out.len();
        let table = cert.encode();
        let l = layout(&out)?;
        let dir = l.opt_at + OPT_CERT_TABLE;
        put32(&mut out, dir, at as u32);
        put32(&mut out, dir + 4, table.len() as u32);
        out.extend_from_slice(&table);
        let sum = checksum(&out, l.opt_at + OPT_CHECKSUM);
        put32(&mut out, l.opt_at + OPT_CHECKSUM, sum);
        Ok(out)
    }

    /// RFC 2315 ContentInfo(SignedData) over Authenticode's content.
    fn signed_data(&self, content: &[u8]) -> Result<Vec<u8>, SignError> {
        // PKCS#7 digests the content's value, without its own tag and length.
        let (_, value) = split_tlv(content).ok_or_else(|| SignError::Rsa("bad content".into()))?;
        let attrs = [
            attribute(OID_CONTENT_TYPE, &oid(OID_SPC_INDIRECT_DATA)),
            attribute(OID_MESSAGE_DIGEST, &tlv(0x04, &Sha256::digest(value))),
            attribute(OID_SPC_SP_OPUS_INFO, &tlv(0x30, &[])),
        ];
        let set = der_set(&attrs);
        // The signature is over the attributes as a SET; they are carried as [0] IMPLICIT.
        let mut digest_info = SHA256_DIGEST_INFO.to_vec();
        digest_info.extend_from_slice(&Sha256::digest(&set));
        let signature = self
            .key
            .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
            .map_err(|e| SignError::Rsa(e.to_string()))?;
        let mut signed_attrs = set;
        signed_attrs[0] = 0xA0;
        let signer_info = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(
                    0x30,
                    &[self.issuer_der.clone(), self.serial_der.clone()].concat(),
                ),
                sha256_algorithm(),
                signed_attrs,
                tlv(0x30, &[oid(OID_RSA_ENCRYPTION), vec![0x05, 0x00]].concat()),
                tlv(0x04, &signature),
            ]
            .concat(),
        );
        let signed_data = tlv(
            0x30,
            &[
                tlv(0x02, &[1]),
                tlv(0x31, &sha256_algorithm()),
                tlv(
                    0x30,
                    &[oid(OID_SPC_INDIRECT_DATA), tlv(0xA0, content)].concat(),
                ),
                tlv(0xA0, &self.cert_der),
                tlv(0x31, &signer_info),
            ]
            .concat(),
        );
        Ok(tlv(
            0x30,
            &[oid(OID_SIGNED_DATA), tlv(0xA0, &signed_data)].concat(),
        ))
    }
}

/// The certificate table entry: the 5th data directory of a PE32+ optional header.
const OPT_CERT_TABLE: usize = 112 + 4 * 8;

/// `WIN_CERTIFICATE.wRevision`.
pub const WIN_CERT_REVISION_2_0: u16 = 0x0200;
/// `WIN_CERTIFICATE.wCertificateType`: a PKCS#7 SignedData.
pub const WIN_CERT_TYPE_PKCS_SIGNED_DATA: u16 = 0x0002;

/// One entry of the certificate table (PE/COFF specification, "The Attribute Certificate
/// Table"): `dwLength` (the whole entry, header included), `wRevision`,
/// `wCertificateType`, then the certificate, padded to 8 bytes (the padding is not counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WinCertificate {
    /// `wRevision`.
    pub revision: u16,
    /// `wCertificateType`.
    pub certificate_type: u16,
    /// `bCertificate`.
    pub data: Vec<u8>,
}

impl WinCertificate {
    /// The entry's bytes, padded to a multiple of 8.
    pub fn encode(&self) -> Vec<u8> {
        let len = 8 + self.data.len();
        let mut b = Vec::with_capacity(len.next_multiple_of(8));
        b.extend_from_slice(&(len as u32).to_le_bytes());
        b.extend_from_slice(&self.revision.to_le_bytes());
        b.extend_from_slice(&self.certificate_type.to_le_bytes());
        b.extend_from_slice(&self.data);
        b.resize(len.next_multiple_of(8), 0);
        b
    }

    /// The entries of a certificate table, each checked against the bytes there are.
    pub fn decode_all(table: &[u8]) -> Result<Vec<WinCertificate>, PeError> {
        let mut out = Vec::new();
        let mut at = 0usize;
        while at + 8 <= table.len() {
            let len = u32::from_le_bytes(table[at..at + 4].try_into().unwrap_or_default()) as usize;
            if len < 8 || len > table.len() - at {
                return Err(PeError(format!(
                    "certificate table entry at {at}: dwLength {len} does not fit in {} bytes",
                    table.len() - at
                )));
            }
            out.push(WinCertificate {
                revision: u16::from_le_bytes([table[at + 4], table[at + 5]]),
                certificate_type: u16::from_le_bytes([table[at + 6], table[at + 7]]),
                data: table[at + 8..at + len].to_vec(),
            });
            at += len.next_multiple_of(8);
        }
        Ok(out)
    }
}

/// The certificate table of a PE image: (file offset, bytes), when it has one.
pub fn certificate_table(pe: &[u8]) -> Result<Option<(usize, &[u8])>, PeError> {
    let l = layout(pe)?;
    let dir = l.opt_at + OPT_CERT_TABLE;
    let field = |at: usize| {
        pe.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .ok_or_else(|| PeError("cut short before the certificate table entry".into()))
    };
    let (at, len) = (field(dir)?, field(dir + 4)?);
    if len == 0 {
        return Ok(None);
    }
    pe.get(at..at.saturating_add(len))
        .map(|t| Some((at, t)))
        .ok_or_else(|| {
            PeError(format!(
                "the certificate table ({len} bytes at {at}) reaches past the end ({} bytes)",
                pe.len()
            ))
        })
}

/// `pe` without its certificate table (and its entry zeroed).
fn strip_signatures(pe: &[u8]) -> Result<Vec<u8>, PeError> {
    let mut out = pe.to_vec();
    if let Some((at, _)) = certificate_table(pe)? {
        out.truncate(at);
    }
    let l = layout(&out)?;
    put32(&mut out, l.opt_at + OPT_CERT_TABLE, 0);
    put32(&mut out, l.opt_at + OPT_CERT_TABLE + 4, 0);
    Ok(out)
}

/// The Authenticode digest of a PE image (SHA-256): the headers up to SizeOfHeaders without
/// the checksum and the certificate table entry, each section's raw data in file order,
/// then whatever follows the last section up to the certificate table.
pub fn image_digest(pe: &[u8]) -> Result<[u8; 32], PeError> {
    let l = layout(pe)?;
    let sum = l.opt_at + OPT_CHECKSUM;
    let dir = l.opt_at + OPT_CERT_TABLE;
    let headers = l.size_of_headers as usize;
    let cut = |what: &str| PeError(format!("{what} reaches past the end of the image"));
    if headers > pe.len() || dir + 8 > headers {
        return Err(cut("the headers"));
    }
    let mut h = Sha256::new();
    h.update(&pe[..sum]);
    h.update(&pe[sum + 4..dir]);
    h.update(&pe[dir + 8..headers]);
    let mut sections: Vec<_> = l
        .sections
        .iter()
        .filter(|s| s.size_of_raw_data.get() > 0)
        .collect();
    sections.sort_by_key(|s| s.pointer_to_raw_data.get());
    let mut end = headers;
    for s in sections {
        let at = s.pointer_to_raw_data.get() as usize;
        let len = s.size_of_raw_data.get() as usize;
        let data = pe
            .get(at..at.saturating_add(len))
            .ok_or_else(|| cut("a section"))?;
        h.update(data);
        end = end.max(at + len);
    }
    let table = certificate_table(pe)?.map_or(pe.len(), |(at, _)| at);
    if end < table {
        h.update(&pe[end..table]);
    }
    Ok(h.finalize().into())
}

/// The PE checksum (as `imagehlp!CheckSumMappedFile` computes it): 16-bit one's-complement
/// style sum of the file without its checksum field, folded, plus the file's length.
pub fn checksum(pe: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, c) in pe.chunks(2).enumerate() {
        if i * 2 == checksum_at || i * 2 == checksum_at + 2 {
            continue;
        }
        let w = u64::from(c[0]) | c.get(1).map_or(0, |&b| u64::from(b) << 8);
        sum += w;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(pe.len() as u32)
}

// DER, as far as Authenticode needs it.

const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
const OID_CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
const OID_MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
const OID_RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// 1.3.6.1.4.1.311.2.1.4, SPC_INDIRECT_DATA_OBJID.
const OID_SPC_INDIRECT_DATA: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x04];
/// 1.3.6.1.4.1.311.2.1.15, SPC_PE_IMAGE_DATAOBJ.
const OID_SPC_PE_IMAGE_DATA: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0F];
/// 1.3.6.1.4.1.311.2.1.12, SPC_SP_OPUS_INFO_OBJID.
const OID_SPC_SP_OPUS_INFO: &[u8] = &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x01, 0x0C];

/// RFC 8017 §9.2: the DER DigestInfo prefix of a SHA-256 digest.
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut b = vec![tag];
    let n = value.len();
    if n < 0x80 {
        b.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|&x| x == 0)
            .collect();
        b.push(0x80 | bytes.len() as u8);
        b.extend(bytes);
    }
    b.extend_from_slice(value);
    b
}

/// (tag, value) of the DER element at the start of `b`.
fn split_tlv(b: &[u8]) -> Option<(u8, &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)? as usize;
    let (len, at) = if first < 0x80 {
        (first, 2)
    } else {
        let k = first & 0x7F;
        let mut n = 0usize;
        for &x in b.get(2..2 + k)? {
            n = n.checked_mul(256)? + x as usize;
        }
        (n, 2 + k)
    };
    Some((tag, b.get(at..at.checked_add(len)?)?))
}

fn oid(body: &[u8]) -> Vec<u8> {
    tlv(0x06, body)
}

fn sha256_algorithm() -> Vec<u8> {
    tlv(0x30, &[oid(OID_SHA256), vec![0x05, 0x00]].concat())
}

fn attribute(kind: &[u8], value: &[u8]) -> Vec<u8> {
    tlv(0x30, &[oid(kind), tlv(0x31, value)].concat())
}

/// DER's SET OF: the elements sorted by their encodings.
fn der_set(items: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted = items.to_vec();
    sorted.sort();
    tlv(0x31, &sorted.concat())
}

/// Authenticode's `SpcIndirectDataContent`: `SpcPeImageData` (no flags, the obsolete file
/// link every signer writes) and the image's SHA-256 DigestInfo.
fn spc_indirect_data(digest: &[u8; 32]) -> Vec<u8> {
    let obsolete: Vec<u8> = "<<<Obsolete>>>"
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    let link = tlv(0xA0, &tlv(0xA2, &tlv(0x80, &obsolete)));
    let pe_image_data = tlv(0x30, &[vec![0x03, 0x01, 0x00], link].concat());
    let data = tlv(0x30, &[oid(OID_SPC_PE_IMAGE_DATA), pe_image_data].concat());
    let message = tlv(0x30, &[sha256_algorithm(), tlv(0x04, digest)].concat());
    tlv(0x30, &[data, message].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn win_certificate_layout() {
        // PE/COFF "Attribute Certificate Table": dwLength (with the 8-byte header, without
        // the padding), wRevision 0x0200, wCertificateType 0x0002, bCertificate, 8-aligned.
        let c = WinCertificate {
            revision: WIN_CERT_REVISION_2_0,
            certificate_type: WIN_CERT_TYPE_PKCS_SIGNED_DATA,
            data: vec![0xAA; 5],
        };
        let b = c.encode();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[..8], [13, 0, 0, 0, 0x00, 0x02, 0x02, 0x00]);
        assert_eq!(&b[8..13], [0xAA; 5]);
        assert_eq!(&b[13..], [0, 0, 0]);
        assert_eq!(WinCertificate::decode_all(&b).unwrap(), vec![c]);
        assert!(WinCertificate::decode_all(&[40, 0, 0, 0, 0, 2, 2, 0]).is_err());
    }

    #[test]
    fn der_lengths_and_sets() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0; 300]);
        assert_eq!(&long[..4], [0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(split_tlv(&long).unwrap().1.len(), 300);
        assert_eq!(
            der_set(&[vec![0x05, 0x00], vec![0x02, 0x01, 0x01]]),
            [0x31, 5, 2, 1, 1, 5, 0]
        );
    }

    #[test]
    fn the_checksum_is_imagehlp_s() {
        // Words 0x0201 + 0x0403 (the field at 4 skipped) + length 8.
        let b = [1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(checksum(&b, 4), 0x0201 + 0x0403 + 8);
    }
}
