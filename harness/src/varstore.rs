//! OVMF's UEFI variable store (the 4 MiB build's `OVMF_VARS_4M.fd` flash image), written and
//! read here: a firmware volume (`EFI_FIRMWARE_VOLUME_HEADER`, PI specification vol. 3)
//! holding an authenticated variable store (`VARIABLE_STORE_HEADER` and
//! `AUTHENTICATED_VARIABLE_HEADER`s, EDK II's `VariableFormat.h`), then the fault-tolerant
//! write working block (`EDKII_WORKING_BLOCK_SIGNATURE_GUID`, `FaultTolerantWrite.h`) and its
//! spare area. With a certificate enrolled as PK, KEK and db and `SecureBootEnable` set, OVMF
//! starts in user mode with Secure Boot enforced: the store a Secure Boot test boots with,
//! trusting exactly the image's own key.

use std::fmt;

/// The flash image's size: 0x40000 of variables, 0x1000 of FTW working block, 0x42000 spare.
pub const SIZE: usize = 0x84000;
const FV_HEADER_LEN: usize = 0x48;
const STORE_HEADER_LEN: usize = 28;
const STORE_END: usize = 0x40000;
const FTW_AT: usize = 0x41000;
const VAR_HEADER_LEN: usize = 60;
const START_ID: u16 = 0x55AA;
/// `VAR_ADDED` with the other state bits still erased.
const VAR_ADDED: u8 = 0x3F;

/// `gEfiSystemNvDataFvGuid`: the volume holds non-volatile variables.
const NV_DATA_FV: Guid = guid("FFF12B8D-7696-4C8B-A985-2747075B4F50");
/// `gEfiAuthenticatedVariableGuid`: a store of authenticated variable headers.
const AUTHENTICATED_STORE: Guid = guid("AAF32C78-947B-439A-A180-2E144EC37792");
/// `gEdkiiWorkingBlockSignatureGuid`.
const WORKING_BLOCK: Guid = guid("9E58292B-7C68-497D-A0CE-6500FD9F1B95");
/// `EFI_GLOBAL_VARIABLE`: PK, KEK.
pub const GLOBAL: Guid = guid("8BE4DF61-93CA-11D2-AA0D-00E098032B8C");
/// `EFI_IMAGE_SECURITY_DATABASE_GUID`: db, dbx.
pub const IMAGE_SECURITY_DATABASE: Guid = guid("D719B2CB-3D3A-4596-A3BC-DAD00E67656F");
/// OVMF's `gEfiSecureBootEnableDisableGuid` (`SecureBootEnable`).
const SECURE_BOOT_ENABLE: Guid = guid("F0A30BC7-AF08-4556-99C4-001009C93A44");
/// `EFI_CERT_X509_GUID`: a signature list of DER certificates.
const CERT_X509: Guid = guid("A5C059A1-94E4-4AA7-87B5-AB155C2BF072");

/// `EFI_VARIABLE_NON_VOLATILE | BOOTSERVICE_ACCESS`.
const NV_BS: u32 = 0x3;
/// `... | RUNTIME_ACCESS | TIME_BASED_AUTHENTICATED_WRITE_ACCESS`, as PK, KEK and db are.
const NV_BS_RT_TIME_AUTH: u32 = 0x27;

/// A GUID in its on-disk (mixed-endian) byte order.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

/// A GUID from its canonical text (`8BE4DF61-93CA-11D2-AA0D-00E098032B8C`), as the
/// specifications write them; made at compile time.
const fn guid(text: &str) -> Guid {
    // On disk the first three groups are little-endian, the last two as written: where each
    // byte's two digits are in the text.
    const AT: [usize; 16] = [6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34];
    let t = text.as_bytes();
    let mut g = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        g[i] = (digit(t[AT[i]]) << 4) | digit(t[AT[i] + 1]);
        i += 1;
    }
    Guid(g)
}

const fn digit(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'A'..=b'F' => c - b'A' + 10,
        _ => panic!("a GUID is written in upper-case hex digits"),
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-",
            u32::from_le_bytes([g[0], g[1], g[2], g[3]]),
            u16::from_le_bytes([g[4], g[5]]),
            u16::from_le_bytes([g[6], g[7]])
        )?;
        g[8..].iter().enumerate().try_for_each(|(i, b)| {
            if i == 2 {
                f.write_str("-")?;
            }
            write!(f, "{b:02X}")
        })
    }
}

/// One variable as the store holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    /// Its name (stored as NUL-terminated UTF-16LE).
    pub name: String,
    /// Its vendor GUID.
    pub vendor: Guid,
    /// `EFI_VARIABLE_*` attributes.
    pub attributes: u32,
    /// The `EFI_TIME` of a time-based authenticated variable (zero for others).
    pub timestamp: [u8; 16],
    /// Its data.
    pub data: Vec<u8>,
}

/// Why bytes are not a variable store this module reads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("variable store, offset {offset:#x}: {what}")]
pub struct VarstoreError {
    /// Where in the flash image.
    pub offset: usize,
    /// What is wrong there.
    pub what: String,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The firmware volume header: its words sum to zero.
fn fv_header() -> [u8; FV_HEADER_LEN] {
    let mut h = [0u8; FV_HEADER_LEN];
    h[16..32].copy_from_slice(&NV_DATA_FV.0);
    h[32..40].copy_from_slice(&(SIZE as u64).to_le_bytes());
    h[40..44].copy_from_slice(b"_FVH");
    // EFI_FVB2 read/write/lock capabilities and status, erase polarity 1, alignment 16.
    h[44..48].copy_from_slice(&0x0004_FEFFu32.to_le_bytes());
    h[48..50].copy_from_slice(&(FV_HEADER_LEN as u16).to_le_bytes());
    h[55] = 2; // Revision
               // Block map: 0x84 blocks of 0x1000, then the (0, 0) terminator.
    h[56..60].copy_from_slice(&((SIZE / 0x1000) as u32).to_le_bytes());
    h[60..64].copy_from_slice(&0x1000u32.to_le_bytes());
    let sum = h.chunks(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    h[50..52].copy_from_slice(&sum.wrapping_neg().to_le_bytes());
    h
}

/// The FTW working block header: valid, empty write queue, CRC-32 over the header with the
/// CRC field and the state byte erased.
fn ftw_header() -> [u8; 32] {
    let mut h = [0xFFu8; 32];
    h[..16].copy_from_slice(&WORKING_BLOCK.0);
    h[24..32].copy_from_slice(&(0x1000u64 - 32).to_le_bytes());
    let crc = crc32fast::hash(&h);
    h[16..20].copy_from_slice(&crc.to_le_bytes());
    h[20] = 0xFE; // WorkingBlockValid
    h
}

/// The flash image holding `vars`, in order; `None` when they do not fit.
pub fn encode(vars: &[Variable]) -> Option<Vec<u8>> {
    let mut b = vec![0xFFu8; SIZE];
    b[..FV_HEADER_LEN].copy_from_slice(&fv_header());
    let s = FV_HEADER_LEN;
    b[s..s + 16].copy_from_slice(&AUTHENTICATED_STORE.0);
    b[s + 16..s + 20].copy_from_slice(&((STORE_END - FV_HEADER_LEN) as u32).to_le_bytes());
    b[s + 20] = 0x5A; // VARIABLE_STORE_FORMATTED
    b[s + 21] = 0xFE; // VARIABLE_STORE_HEALTHY
    b[s + 22..s + STORE_HEADER_LEN].fill(0);
    let mut at = FV_HEADER_LEN + STORE_HEADER_LEN;
    for v in vars {
        let name: Vec<u8> = v
            .name
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        let end = at + VAR_HEADER_LEN + name.len() + v.data.len();
        if end > STORE_END {
            return None;
        }
        let h = &mut b[at..at + VAR_HEADER_LEN];
        h[..2].copy_from_slice(&START_ID.to_le_bytes());
        h[2] = VAR_ADDED;
        h[3] = 0;
        h[4..8].copy_from_slice(&v.attributes.to_le_bytes());
        h[8..16].fill(0); // MonotonicCount
        h[16..32].copy_from_slice(&v.timestamp);
        h[32..36].fill(0); // PubKeyIndex
        h[36..40].copy_from_slice(&(name.len() as u32).to_le_bytes());
        h[40..44].copy_from_slice(&(v.data.len() as u32).to_le_bytes());
        h[44..60].copy_from_slice(&v.vendor.0);
        b[at + VAR_HEADER_LEN..][..name.len()].copy_from_slice(&name);
        b[at + VAR_HEADER_LEN + name.len()..end].copy_from_slice(&v.data);
        // Headers are 4-aligned; the gap stays erased.
        at = end.next_multiple_of(4);
    }
    b[FTW_AT..FTW_AT + 32].copy_from_slice(&ftw_header());
    Some(b)
}

/// The live variables of a flash image (those in the `VAR_ADDED` state), in order; every
/// header and length checked against the bytes there are.
pub fn decode(b: &[u8]) -> Result<Vec<Variable>, VarstoreError> {
    let bad = |offset: usize, what: &str| VarstoreError {
        offset,
        what: what.to_string(),
    };
    if b.len() < FV_HEADER_LEN + STORE_HEADER_LEN || &b[40..44] != b"_FVH" {
        return Err(bad(40, "no firmware volume header (_FVH)"));
    }
    let header = (u16_at(b, 48) as usize).clamp(FV_HEADER_LEN, b.len() - STORE_HEADER_LEN);
    if b[header..header + 16] != AUTHENTICATED_STORE.0 {
        return Err(bad(header, "not an authenticated variable store"));
    }
    let size = u32_at(b, header + 16) as usize;
    let end = header.saturating_add(size).min(b.len());
    let mut at = header + STORE_HEADER_LEN;
    let mut out = Vec::new();
    while at + VAR_HEADER_LEN <= end && u16_at(b, at) == START_ID {
        let h = &b[at..at + VAR_HEADER_LEN];
        let (name_len, data_len) = (u32_at(h, 36) as usize, u32_at(h, 40) as usize);
        let name_at = at + VAR_HEADER_LEN;
        let var_end = name_at
            .checked_add(name_len)
            .and_then(|n| n.checked_add(data_len))
            .filter(|&n| n <= end)
            .ok_or_else(|| bad(at, "a variable reaches past the store"))?;
        if h[2] == VAR_ADDED {
            let units: Vec<u16> = b[name_at..name_at + name_len]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&c| c != 0)
                .collect();
            out.push(Variable {
                name: String::from_utf16_lossy(&units),
                vendor: Guid(h[44..60].try_into().expect("16 bytes")),
                attributes: u32_at(h, 4),
                timestamp: h[16..32].try_into().expect("16 bytes"),
                data: b[name_at + name_len..var_end].to_vec(),
            });
        }
        at = var_end.next_multiple_of(4);
    }
    Ok(out)
}

/// An `EFI_SIGNATURE_LIST` of one X.509 certificate (DER) owned by `owner`.
pub fn x509_list(owner: Guid, certificate: &[u8]) -> Vec<u8> {
    let size = 16 + certificate.len();
    let mut b = Vec::with_capacity(28 + size);
    b.extend_from_slice(&CERT_X509.0);
    b.extend_from_slice(&((28 + size) as u32).to_le_bytes()); // SignatureListSize
    b.extend_from_slice(&0u32.to_le_bytes()); // SignatureHeaderSize
    b.extend_from_slice(&(size as u32).to_le_bytes()); // SignatureSize
    b.extend_from_slice(&owner.0);
    b.extend_from_slice(certificate);
    b
}

/// The DER certificates of a signature-list variable (X.509 lists only).
pub fn x509_certificates(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 28 <= data.len() {
        let list = u32_at(data, at + 16) as usize;
        let header = u32_at(data, at + 20) as usize;
        let each = u32_at(data, at + 24) as usize;
        let Some(end) = at
            .checked_add(list)
            .filter(|&e| e <= data.len() && list >= 28)
        else {
            break;
        };
        if data[at..at + 16] == CERT_X509.0 && each > 16 {
            let mut s = at + 28 + header;
            while s + each <= end {
                out.push(&data[s + 16..s + each]);
                s += each;
            }
        }
        at = end;
    }
    out
}

/// Whether the store's db trusts `certificate` (DER).
pub fn db_trusts(vars: &[Variable], certificate: &[u8]) -> bool {
    vars.iter()
        .filter(|v| v.name == "db" && v.vendor == IMAGE_SECURITY_DATABASE)
        .any(|v| x509_certificates(&v.data).contains(&certificate))
}

/// The variables that enroll `certificate` (DER) as PK, KEK and db, owned by `owner`, with
/// Secure Boot enabled: OVMF then leaves setup mode and enforces signatures. `timestamp` is
/// the authenticated variables' `EFI_TIME`.
pub fn secure_boot(certificate: &[u8], owner: Guid, timestamp: [u8; 16]) -> Vec<Variable> {
    let list = x509_list(owner, certificate);
    let auth = |name: &str, vendor: Guid| Variable {
        name: name.into(),
        vendor,
        attributes: NV_BS_RT_TIME_AUTH,
        timestamp,
        data: list.clone(),
    };
    vec![
        auth("PK", GLOBAL),
        auth("KEK", GLOBAL),
        auth("db", IMAGE_SECURITY_DATABASE),
        Variable {
            name: "SecureBootEnable".into(),
            vendor: SECURE_BOOT_ENABLE,
            attributes: NV_BS,
            timestamp: [0; 16],
            data: vec![1],
        },
    ]
}

/// `EFI_TIME` for a date and time (UTC, no daylight saving).
pub fn efi_time(year: u16, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..2].copy_from_slice(&year.to_le_bytes());
    t[2..8].copy_from_slice(&[month, day, hour, minute, second, 0]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_laid_out_as_the_specifications_say() {
        let b = encode(&[]).unwrap();
        assert_eq!(b.len(), 0x84000);
        // EFI_FIRMWARE_VOLUME_HEADER: ZeroVector, FileSystemGuid, FvLength, "_FVH",
        // Attributes, HeaderLength, Checksum, ExtHeaderOffset, Reserved, Revision, BlockMap.
        assert_eq!(&b[..16], [0; 16]);
        assert_eq!(
            format!("{:?}", Guid(b[16..32].try_into().unwrap())),
            "FFF12B8D-7696-4C8B-A985-2747075B4F50"
        );
        assert_eq!(u32_at(&b, 32), 0x84000);
        assert_eq!(&b[40..44], b"_FVH");
        assert_eq!(u16_at(&b, 48), 0x48);
        let sum = b[..0x48].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        assert_eq!(sum, 0, "the header's words sum to zero");
        // The checksum Debian's OVMF_VARS_4M.fd carries for the same header.
        assert_eq!(u16_at(&b, 50), 0xB8AF);
        assert_eq!(&b[56..64], [0x84, 0, 0, 0, 0, 0x10, 0, 0]);
        // VARIABLE_STORE_HEADER: Signature, Size (to the end of the variable region),
        // Format 0x5A, State 0xFE.
        assert_eq!(
            format!("{:?}", Guid(b[0x48..0x58].try_into().unwrap())),
            "AAF32C78-947B-439A-A180-2E144EC37792"
        );
        assert_eq!(u32_at(&b, 0x58), 0x3FFB8);
        assert_eq!(&b[0x5C..0x64], [0x5A, 0xFE, 0, 0, 0, 0, 0, 0]);
        assert!(b[0x64..0x41000].iter().all(|&x| x == 0xFF));
        // The FTW working block header, CRC as Debian's template has it.
        assert_eq!(u32_at(&b, 0x41010), 0x642C_AF2C);
        assert_eq!(b[0x41014], 0xFE);
        assert_eq!(u32_at(&b, 0x41018), 0xFE0);
    }

    #[test]
    fn variables_are_written_and_read_back() {
        let cert = b"not really DER, just bytes".to_vec();
        let owner = Guid([7; 16]);
        let vars = secure_boot(&cert, owner, efi_time(2024, 1, 2, 3, 4, 5));
        let b = encode(&vars).unwrap();
        // The first AUTHENTICATED_VARIABLE_HEADER: StartId 0x55AA, State VAR_ADDED,
        // Attributes, MonotonicCount, TimeStamp, PubKeyIndex, NameSize, DataSize, VendorGuid.
        let v = 0x64;
        assert_eq!(&b[v..v + 8], [0xAA, 0x55, 0x3F, 0, 0x27, 0, 0, 0]);
        assert_eq!(&b[v + 16..v + 24], [0xE8, 0x07, 1, 2, 3, 4, 5, 0]);
        assert_eq!(u32_at(&b, v + 36), 6, "\"PK\\0\" in UTF-16");
        assert_eq!(u32_at(&b, v + 40) as usize, 28 + 16 + cert.len());
        assert_eq!(&b[v + 60..v + 66], [b'P', 0, b'K', 0, 0, 0]);
        // EFI_SIGNATURE_LIST: SignatureType (X.509), sizes, then owner and certificate.
        assert_eq!(
            format!("{:?}", Guid(b[v + 66..v + 82].try_into().unwrap())),
            "A5C059A1-94E4-4AA7-87B5-AB155C2BF072"
        );
        let back = decode(&b).unwrap();
        assert_eq!(back, vars);
        assert!(db_trusts(&back, &cert));
        assert!(!db_trusts(&back, b"another certificate"));
    }

    #[test]
    fn cut_or_foreign_stores_are_errors_not_panics() {
        let b = encode(&secure_boot(&[1; 900], Guid([0; 16]), [0; 16])).unwrap();
        assert!(decode(&b[..100]).is_err() || decode(&b[..100]).unwrap().is_empty());
        for n in [0, 10, 0x48, 0x64, 0x70, 0x100, 0x500] {
            let _ = decode(&b[..n]);
        }
        let mut lying = b.clone();
        lying[0x64 + 40..0x64 + 44].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = decode(&lying).unwrap_err();
        assert_eq!(e.offset, 0x64, "{e}");
        assert!(decode(&[0u8; 200]).is_err());
        assert!(encode(&[Variable {
            name: "big".into(),
            vendor: GLOBAL,
            attributes: NV_BS,
            timestamp: [0; 16],
            data: vec![0; 0x40000],
        }])
        .is_none());
    }
}
