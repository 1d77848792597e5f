//! Authenticode (Microsoft's "Windows Authenticode Portable Executable Signature Format"
//! over PE/COFF's attribute certificate table), as UEFI Secure Boot verifies EFI binaries:
//! the `WIN_CERTIFICATE` entries, the image digest (SHA-256 over the headers without the
//! checksum and the certificate table entry, then the sections in file order, then any data
//! after them), the PE checksum, and the PKCS#7 SignedData (RFC 2315) over an
//! `SpcIndirectDataContent` that carries the digest: encoded for the signer, decoded
//! (bounds-checked, every length against the bytes there are) for `inspect` and `diff`.
//! The DER is small and fixed; the keys and the RSA operation are the signer's.

use sha2::{Digest, Sha256};

use crate::image::format::pe::{layout, put32, PeError, OPT_CHECKSUM};

/// The certificate table entry: the 5th data directory of a PE32+ optional header.
pub const OPT_CERT_TABLE: usize = 112 + 4 * 8;

/// The signer as a SignedData names it: its certificate, and that certificate's issuer and
/// serial number (DER).
pub struct Identity {
    /// The certificate (DER), carried in the SignedData.
    pub certificate: Vec<u8>,
    /// Its issuer `Name` (DER).
    pub issuer: Vec<u8>,
    /// Its serial number `INTEGER` (DER).
    pub serial: Vec<u8>,
}

/// `pe` signed: its certificate table replaced by one SignedData of `who`, whose RSA
/// signature `rsa` makes over the DER DigestInfo it is given.
pub fn sign<E: From<PeError>>(
    pe: &[u8],
    who: &Identity,
    rsa: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    let mut out = strip_signatures(pe)?;
    // The certificate table starts 8-aligned after the image; the digest covers the
    // padding as data after the last section, so pad first.
    out.resize(out.len().next_multiple_of(8), 0);
    let digest = image_digest(&out)?;
    let content = spc_indirect_data(&digest);
    let signed = signed_data(&content, who, rsa)?;
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
fn signed_data<E: From<PeError>>(
    content: &[u8],
    who: &Identity,
    rsa: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<u8>, E> {
    // PKCS#7 digests the content's value, without its own tag and length.
    let (_, value, _) = split_tlv(content).ok_or_else(|| PeError("bad content".into()))?;
    let attrs = [
        attribute(OID_CONTENT_TYPE, &oid(OID_SPC_INDIRECT_DATA)),
        attribute(OID_MESSAGE_DIGEST, &tlv(0x04, &Sha256::digest(value))),
        attribute(OID_SPC_SP_OPUS_INFO, &tlv(0x30, &[])),
    ];
    let set = der_set(&attrs);
    // The signature is over the attributes as a SET; they are carried as [0] IMPLICIT.
    let mut digest_info = SHA256_DIGEST_INFO.to_vec();
    digest_info.extend_from_slice(&Sha256::digest(&set));
    let signature = rsa(&digest_info)?;
    let mut signed_attrs = set;
    signed_attrs[0] = 0xA0;
    let signer_info = tlv(
        0x30,
        &[
            tlv(0x02, &[1]),
            tlv(0x30, &[who.issuer.clone(), who.serial.clone()].concat()),
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
            tlv(0xA0, &who.certificate),
            tlv(0x31, &signer_info),
        ]
        .concat(),
    );
    Ok(tlv(
        0x30,
        &[oid(OID_SIGNED_DATA), tlv(0xA0, &signed_data)].concat(),
    ))
}

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

/// (tag, value, what follows) of the DER element at the start of `b`.
fn split_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
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
    let end = at.checked_add(len)?;
    Some((tag, b.get(at..end)?, &b[end..]))
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

/// One signature of a PE image, as `inspect` lists it and `diff` compares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The signer's certificate subject; its issuer and serial number when the SignedData
    /// does not carry that certificate.
    pub signer: String,
    /// The algorithm of the image digest it vouches for (`SHA-256`, ...).
    pub digest_algorithm: String,
    /// That digest, in hex.
    pub digest: String,
    /// Whether the image's own digest is that one (`None` for an algorithm not computed
    /// here: only SHA-256 is).
    pub matches: Option<bool>,
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.matches {
            Some(true) => "digest matches",
            Some(false) => "DIGEST DIFFERS: the image changed after signing",
            None => "digest not checked",
        };
        write!(
            f,
            "{}, {} {}, {state}",
            self.signer,
            self.digest_algorithm,
            &self.digest[..self.digest.len().min(16)]
        )
    }
}

/// Each Authenticode signature in `pe`'s certificate table, in order (none for an unsigned
/// image). An entry that is not one is an error naming its place.
pub fn signatures(pe: &[u8]) -> Result<Vec<Signature>, PeError> {
    let Some((at, table)) = certificate_table(pe)? else {
        return Ok(Vec::new());
    };
    let ours = image_digest(pe)?;
    let mut out = Vec::new();
    for (n, c) in WinCertificate::decode_all(table)?.into_iter().enumerate() {
        let bad = |why: &str| {
            PeError(format!(
                "certificate table (at {at}), entry {}: {why}",
                n + 1
            ))
        };
        if c.certificate_type != WIN_CERT_TYPE_PKCS_SIGNED_DATA {
            return Err(bad(&format!(
                "wCertificateType {:#06x} is not a PKCS#7 SignedData",
                c.certificate_type
            )));
        }
        let mut s = decode_signed_data(&c.data).map_err(|w| bad(&w))?;
        if s.digest_algorithm == "SHA-256" {
            s.matches = Some(s.digest == crate::hex::hex(&ours));
        }
        out.push(s);
    }
    Ok(out)
}

/// DER read front to back; every length checked against the bytes there are.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element: (tag, value, the whole element).
    fn next(&mut self, what: &str) -> Result<(u8, &'a [u8], &'a [u8]), String> {
        let b = self.0;
        let (tag, value, rest) = split_tlv(b).ok_or_else(|| format!("{what}: not DER"))?;
        self.0 = rest;
        Ok((tag, value, &b[..b.len() - rest.len()]))
    }

    /// The next element, which must have `tag`; its value.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        match self.next(what)? {
            (t, v, _) if t == tag => Ok(v),
            (t, _, _) => Err(format!("{what}: tag {t:#04x}, expected {tag:#04x}")),
        }
    }
}

fn algorithm_name(oid: &[u8]) -> String {
    match oid {
        OID_SHA256 => "SHA-256".into(),
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02] => "SHA-384".into(),
        [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03] => "SHA-512".into(),
        [0x2B, 0x0E, 0x03, 0x02, 0x1A] => "SHA-1".into(),
        other => format!("OID {}", crate::hex::hex(other)),
    }
}

/// RFC 2315 ContentInfo(SignedData) holding an `SpcIndirectDataContent`: the digest it
/// signs and who signed it.
fn decode_signed_data(b: &[u8]) -> Result<Signature, String> {
    use der::{Decode, Encode};
    let info = Der(b).expect(0x30, "ContentInfo")?;
    let mut info = Der(info);
    if info.expect(0x06, "contentType")? != OID_SIGNED_DATA {
        return Err("the ContentInfo is not a SignedData".into());
    }
    let sd = Der(info.expect(0xA0, "content")?).expect(0x30, "SignedData")?;
    let mut sd = Der(sd);
    sd.expect(0x02, "version")?;
    sd.expect(0x31, "digestAlgorithms")?;
    let mut content = Der(sd.expect(0x30, "contentInfo")?);
    if content.expect(0x06, "contentType")? != OID_SPC_INDIRECT_DATA {
        return Err("the signed content is not an Authenticode SpcIndirectDataContent".into());
    }
    let spc = Der(content.expect(0xA0, "content")?).expect(0x30, "SpcIndirectDataContent")?;
    let mut spc = Der(spc);
    spc.expect(0x30, "data")?;
    let mut digest_info = Der(spc.expect(0x30, "messageDigest")?);
    let algorithm = Der(digest_info.expect(0x30, "digestAlgorithm")?).expect(0x06, "OID")?;
    let digest = digest_info.expect(0x04, "digest")?;
    // Certificates [0] and CRLs [1] are optional, then the signer infos.
    let mut certificates = Vec::new();
    let mut signer_infos = None;
    while !sd.0.is_empty() {
        match sd.next("SignedData")? {
            (0xA0, v, _) => {
                let mut certs = Der(v);
                while !certs.0.is_empty() {
                    certificates.push(certs.next("certificate")?.2);
                }
            }
            (0xA1, _, _) => {}
            (0x31, v, _) => signer_infos = Some(v),
            (t, _, _) => return Err(format!("SignedData: unexpected tag {t:#04x}")),
        }
    }
    let first = Der(signer_infos.ok_or("no signerInfos")?).expect(0x30, "SignerInfo")?;
    let mut first = Der(first);
    first.expect(0x02, "version")?;
    let mut id = Der(first.expect(0x30, "issuerAndSerialNumber")?);
    let issuer = id.next("issuer")?.2;
    let serial = id.next("serialNumber")?.2;
    let signer = certificates
        .iter()
        .filter_map(|c| x509_cert::Certificate::from_der(c).ok())
        .find(|c| {
            let t = &c.tbs_certificate;
            t.issuer.to_der().ok().as_deref() == Some(issuer)
                && t.serial_number.to_der().ok().as_deref() == Some(serial)
        })
        .map(|c| c.tbs_certificate.subject.to_string())
        .unwrap_or_else(|| {
            let name = x509_cert::name::Name::from_der(issuer)
                .map_or_else(|_| "?".to_string(), |n| n.to_string());
            format!(
                "issuer {name}, serial {} (certificate not carried)",
                crate::hex::hex(serial.get(2..).unwrap_or_default())
            )
        });
    Ok(Signature {
        signer,
        digest_algorithm: algorithm_name(algorithm),
        digest: crate::hex::hex(digest),
        matches: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal PE32+ (PE/COFF specification offsets): the headers in 0x200 bytes and one
    /// 0x200-byte section.
    fn tiny_pe() -> Vec<u8> {
        let mut b = vec![0u8; 0x400];
        let mut put = |at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
        put(0, b"MZ");
        put(0x3C, &0x40u32.to_le_bytes()); // e_lfanew
        put(0x40, b"PE\0\0");
        put(0x44, &0x8664u16.to_le_bytes()); // Machine: x86-64
        put(0x46, &1u16.to_le_bytes()); // NumberOfSections
        put(0x54, &240u16.to_le_bytes()); // SizeOfOptionalHeader: PE32+, 16 directories
        let opt = 0x58;
        put(opt, &0x20Bu16.to_le_bytes());
        put(opt + 32, &0x1000u32.to_le_bytes()); // SectionAlignment
        put(opt + 36, &0x200u32.to_le_bytes()); // FileAlignment
        put(opt + 60, &0x200u32.to_le_bytes()); // SizeOfHeaders
        put(opt + 108, &16u32.to_le_bytes()); // NumberOfRvaAndSizes
        let section = opt + 240;
        put(section, b".text\0\0\0");
        put(section + 8, &0x200u32.to_le_bytes()); // VirtualSize
        put(section + 12, &0x1000u32.to_le_bytes()); // VirtualAddress
        put(section + 16, &0x200u32.to_le_bytes()); // SizeOfRawData
        put(section + 20, &0x200u32.to_le_bytes()); // PointerToRawData
        for (i, x) in b[0x200..].iter_mut().enumerate() {
            *x = i as u8;
        }
        b
    }

    fn identity() -> Identity {
        use der::{DecodePem, Encode};
        let c =
            x509_cert::Certificate::from_pem(include_str!("../../../tests/keys/test-signing.pem"))
                .unwrap();
        Identity {
            certificate: c.to_der().unwrap(),
            issuer: c.tbs_certificate.issuer.to_der().unwrap(),
            serial: c.tbs_certificate.serial_number.to_der().unwrap(),
        }
    }

    /// The RSA step stands in as fixed bytes: the layout and the decoder are what is tested
    /// here (tests/sign.rs has real signatures checked by sbverify).
    fn signed(pe: &[u8]) -> Vec<u8> {
        sign(pe, &identity(), |_| Ok::<_, PeError>(vec![0x5A; 256])).unwrap()
    }

    #[test]
    fn a_signature_is_appended_where_the_directory_points() {
        let pe = tiny_pe();
        let s = signed(&pe);
        // The certificate table entry (data directory 4 of the optional header) points at
        // the table after the image; its first WIN_CERTIFICATE is a revision 2.0 PKCS#7
        // SignedData whose DER starts with a SEQUENCE.
        let dir = 0x58 + OPT_CERT_TABLE;
        assert_eq!(
            u32::from_le_bytes(s[dir..dir + 4].try_into().unwrap()),
            0x400
        );
        let len = u32::from_le_bytes(s[dir + 4..dir + 8].try_into().unwrap()) as usize;
        assert_eq!(s.len(), 0x400 + len);
        assert_eq!(len % 8, 0);
        assert_eq!(&s[0x404..0x408], [0x00, 0x02, 0x02, 0x00]);
        assert_eq!(s[0x408], 0x30);
        // The image before the table is unchanged but for the directory and checksum.
        assert_eq!(&s[0x200..0x400], &pe[0x200..0x400]);
        assert_eq!(image_digest(&s).unwrap(), image_digest(&pe).unwrap());
        // Signing again replaces the signature.
        assert_eq!(signed(&s), s);
    }

    #[test]
    fn signatures_are_read_back_and_their_digest_checked() {
        let pe = tiny_pe();
        assert_eq!(signatures(&pe).unwrap(), vec![]);
        let mut s = signed(&pe);
        let got = signatures(&s).unwrap();
        assert_eq!(
            got,
            vec![Signature {
                signer: "CN=isoproof TEST KEY - not for production".into(),
                digest_algorithm: "SHA-256".into(),
                digest: crate::hex::hex(&image_digest(&pe).unwrap()),
                matches: Some(true),
            }]
        );
        assert!(got[0].to_string().ends_with("digest matches"), "{}", got[0]);
        s[0x300] ^= 1;
        assert_eq!(signatures(&s).unwrap()[0].matches, Some(false));
    }

    #[test]
    fn cut_or_foreign_signed_data_is_an_error() {
        let s = signed(&tiny_pe());
        let (_, table) = certificate_table(&s).unwrap().unwrap();
        let data = &WinCertificate::decode_all(table).unwrap()[0].data;
        for n in 0..data.len() {
            assert!(decode_signed_data(&data[..n]).is_err(), "cut at {n}");
        }
        let mut other = s.clone();
        other[0x406] = 0x01; // wCertificateType: X.509, not PKCS#7
        let e = signatures(&other).unwrap_err().to_string();
        assert!(e.contains("entry 1: wCertificateType 0x0001"), "{e}");
    }

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
