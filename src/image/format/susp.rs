//! The System Use Sharing Protocol (SUSP 1.12): the entry header every system use entry
//! starts with (4), the entries SUSP itself defines — `SP` (5.3), `CE` (5.1), `ER` (5.5),
//! `ST` (5.4) — a bounds-checked walk over a system use area, and the rule that spills
//! entries a directory record has no room for into continuation areas.

use crate::image::format::iso9660::SECTOR;
use crate::image::format::record::{record, BothEndian, Bytes, DecodeError, Field, Record};

record! {
    /// SUSP 4: the header of every system use entry.
    pub struct SuspHeader("SUSP entry header", 4) {
        /// BP 1-2: Signature Word (`PX`, `NM`, `CE`, ...).
        0 signature: Bytes<2>,
        /// BP 3: Length of the whole entry, this header included.
        2 length: u8,
        /// BP 4: System Use Entry Version.
        3 version: u8,
    }
}

impl SuspHeader {
    /// The header of an entry of `length` bytes (version 1).
    pub fn new(signature: &[u8; 2], length: usize) -> SuspHeader {
        SuspHeader {
            signature: Bytes(*signature),
            length: u8::try_from(length).expect("SUSP entries are built under 255 bytes"),
            version: 1,
        }
    }
}

record! {
    /// SUSP 5.3: `SP`, in the root's "." record: SUSP is in use, and how many bytes to skip.
    pub struct SpEntry("SUSP SP entry", 7) {
        /// BP 1-4: header (`SP`, 7, 1).
        0 header: SuspHeader,
        /// BP 5-6: Check Bytes 0xBE 0xEF.
        4 check: Bytes<2>,
        /// BP 7: LEN_SKP, bytes skipped at the start of every system use area.
        6 skip: u8,
    }
}

record! {
    /// SUSP 5.1: `CE`, where the entries continue.
    pub struct CeEntry("SUSP CE entry", 28) {
        /// BP 1-4: header (`CE`, 28, 1).
        0 header: SuspHeader,
        /// BP 5-12: Block Location of Continuation Area (both-byte order).
        4 block: BothEndian<u32>,
        /// BP 13-20: Offset to Start of Continuation Area (both-byte order).
        12 offset: BothEndian<u32>,
        /// BP 21-28: Length of the Continuation Area (both-byte order).
        20 length: BothEndian<u32>,
    }
}

record! {
    /// SUSP 5.5: the fixed part of `ER`; the identifier, descriptor and source follow.
    pub struct ErHeader("SUSP ER entry", 8) {
        /// BP 1-4: header (`ER`, length, 1).
        0 header: SuspHeader,
        /// BP 5: Identifier Length.
        4 identifier_length: u8,
        /// BP 6: Descriptor Length.
        5 descriptor_length: u8,
        /// BP 7: Source Length.
        6 source_length: u8,
        /// BP 8: Extension Version.
        7 extension_version: u8,
    }
}

/// The length of a `CE` entry.
pub(crate) const CE_LEN: usize = CeEntry::LEN;

/// `SP` (SUSP 5.3) with nothing to skip.
pub(crate) fn sp() -> Vec<u8> {
    SpEntry {
        header: SuspHeader::new(b"SP", SpEntry::LEN),
        check: Bytes([0xBE, 0xEF]),
        skip: 0,
    }
    .encode()
}

/// `CE` (SUSP 5.1): the entries continue `len` bytes at `offset` in sector `block`.
pub(crate) fn ce(block: u32, offset: u32, len: u32) -> Vec<u8> {
    CeEntry {
        header: SuspHeader::new(b"CE", CE_LEN),
        block: BothEndian::new(block),
        offset: BothEndian::new(offset),
        length: BothEndian::new(len),
    }
    .encode()
}

/// SUSP 5.5: an extension reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Er {
    /// Extension Version.
    pub version: u8,
    /// Extension Identifier (`RRIP_1991A`, `IEEE_P1282`, ...).
    pub identifier: Vec<u8>,
    /// Extension Descriptor.
    pub descriptor: Vec<u8>,
    /// Extension Source.
    pub source: Vec<u8>,
}

impl Er {
    /// The encoded entry.
    pub fn encode(&self) -> Vec<u8> {
        let len = ErHeader::LEN + self.identifier.len() + self.descriptor.len() + self.source.len();
        let mut out = Vec::with_capacity(len);
        ErHeader {
            header: SuspHeader::new(b"ER", len),
            identifier_length: self.identifier.len() as u8,
            descriptor_length: self.descriptor.len() as u8,
            source_length: self.source.len() as u8,
            extension_version: self.version,
        }
        .encode_into(&mut out);
        out.extend_from_slice(&self.identifier);
        out.extend_from_slice(&self.descriptor);
        out.extend_from_slice(&self.source);
        out
    }

    /// Decodes a whole `ER` entry: its three lengths must fit in the entry.
    pub fn decode(entry: &[u8]) -> Result<Er, DecodeError> {
        let h = ErHeader::decode(entry)?;
        let (i, d, s) = (
            usize::from(h.identifier_length),
            usize::from(h.descriptor_length),
            usize::from(h.source_length),
        );
        let end = ErHeader::LEN + i + d + s;
        let body = entry.get(ErHeader::LEN..end).ok_or(DecodeError::Invalid {
            record: ErHeader::NAME,
            what: format!(
                "its texts of {i}, {d} and {s} bytes do not fit in {} bytes",
                entry.len()
            ),
        })?;
        Ok(Er {
            version: h.extension_version,
            identifier: body[..i].to_vec(),
            descriptor: body[i..i + d].to_vec(),
            source: body[i + d..].to_vec(),
        })
    }
}

/// One entry of a system use area, not yet interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEntry<'a> {
    /// Its signature.
    pub signature: [u8; 2],
    /// Its version.
    pub version: u8,
    /// The whole entry, header included.
    pub bytes: &'a [u8],
    /// Its offset in the area.
    pub offset: usize,
}

impl RawEntry<'_> {
    /// The bytes after the header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[SuspHeader::LEN..]
    }
}

/// The entries of a system use area, in order, up to an `ST` entry or the end. Fewer than
/// four bytes left over are padding (SUSP 4: an area may end with a pad byte or two); an entry
/// whose length is under four bytes or past the end of the area is an error, and ends the walk.
pub fn entries(area: &[u8]) -> impl Iterator<Item = Result<RawEntry<'_>, DecodeError>> {
    let mut at = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done || at + SuspHeader::LEN > area.len() {
            return None;
        }
        let h = match SuspHeader::decode(&area[at..]) {
            Ok(h) => h,
            Err(e) => {
                done = true;
                return Some(Err(e));
            }
        };
        let len = usize::from(h.length);
        if h.signature.0 == [0, 0] && len == 0 {
            // Zero padding to the end of the area (some writers pad continuation areas).
            return None;
        }
        if len < SuspHeader::LEN || at + len > area.len() {
            done = true;
            return Some(Err(DecodeError::Invalid {
                record: SuspHeader::NAME,
                what: format!(
                    "entry {:?} at byte {at} claims {len} bytes, {} remain",
                    String::from_utf8_lossy(&h.signature.0),
                    area.len() - at
                ),
            }));
        }
        let e = RawEntry {
            signature: h.signature.0,
            version: h.version,
            bytes: &area[at..at + len],
            offset: at,
        };
        at += len;
        if &e.signature == b"ST" {
            done = true;
        }
        Some(Ok(e))
    })
}

/// Where a record's entries go: those that fit in the record, and the rest for a
/// continuation area (chained with `CE` entries once its blocks are known).
pub(crate) struct Split {
    /// Entries inside the directory record (a `CE` is appended when `spill` is not empty).
    pub inline: Vec<u8>,
    /// Entries for continuation areas, in order.
    pub spill: Vec<Vec<u8>>,
}

/// Splits entries so the record stays within 255 bytes: `room` is what the record leaves for
/// its system use area.
pub(crate) fn split(entries: Vec<Vec<u8>>, room: usize) -> Split {
    let total: usize = entries.iter().map(Vec::len).sum();
    if total <= room {
        return Split {
            inline: entries.concat(),
            spill: Vec::new(),
        };
    }
    let mut inline = Vec::new();
    let mut it = entries.into_iter().peekable();
    while let Some(e) = it.peek() {
        if inline.len() + e.len() + CE_LEN > room {
            break;
        }
        inline.extend_from_slice(&it.next().expect("peeked"));
    }
    Split {
        inline,
        spill: it.collect(),
    }
}

/// Groups spilled entries into continuation chunks of at most one block each; every chunk but
/// the last ends with a `CE` to the next. Returns the entry ranges of the chunks.
pub(crate) fn chunks(spill: &[Vec<u8>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut cur) = (0, 0);
    for (i, e) in spill.iter().enumerate() {
        let more = i + 1 < spill.len();
        let need = e.len() + if more { CE_LEN } else { 0 };
        if cur + need > SECTOR as usize && cur > 0 {
            out.push(start..i);
            start = i;
            cur = 0;
        }
        cur += e.len();
    }
    out.push(start..spill.len());
    out
}

/// The byte length of a chunk (its `CE` included when it is not the last).
pub(crate) fn chunk_len(spill: &[Vec<u8>], r: &std::ops::Range<usize>, last: bool) -> usize {
    spill[r.clone()].iter().map(Vec::len).sum::<usize>() + if last { 0 } else { CE_LEN }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both32(v: u32) -> [u8; 8] {
        let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
        [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
    }

    #[test]
    fn susp_layouts() {
        assert_eq!(sp(), [b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
        let c = ce(0x10, 0x20, 0x30);
        assert_eq!(c.len(), CE_LEN);
        assert_eq!(&c[..4], b"CE\x1c\x01");
        assert_eq!(&c[4..12], &both32(0x10));
        assert_eq!(&c[12..20], &both32(0x20));
        assert_eq!(&c[20..28], &both32(0x30));
        let back = CeEntry::decode(&c).unwrap();
        assert_eq!(back.block.get(), 0x10);
        let er = Er {
            version: 1,
            identifier: b"RRIP_1991A".to_vec(),
            descriptor: b"D".to_vec(),
            source: b"SRC".to_vec(),
        };
        let e = er.encode();
        assert_eq!(&e[..8], &[b'E', b'R', 22, 1, 10, 1, 3, 1]);
        assert_eq!(&e[8..18], b"RRIP_1991A");
        assert_eq!(Er::decode(&e).unwrap(), er);
        let mut bad = e.clone();
        bad[5] = 200;
        assert!(Er::decode(&bad).is_err());
    }

    #[test]
    fn walking_an_area() {
        let mut area = sp();
        area.extend(ce(1, 2, 3));
        area.extend(b"ST\x04\x01");
        area.extend(b"XX\x04\x01"); // after ST: not read
        let sigs: Vec<[u8; 2]> = entries(&area).map(|e| e.unwrap().signature).collect();
        assert_eq!(sigs, [*b"SP", *b"CE", *b"ST"]);
        // One pad byte at the end is not an entry.
        let mut padded = sp();
        padded.push(0);
        assert_eq!(entries(&padded).count(), 1);
        // An entry longer than the area, or shorter than its header, is an error.
        let mut long = sp();
        long[2] = 30;
        assert!(entries(&long).next().unwrap().is_err());
        let mut short = sp();
        short[2] = 3;
        let all: Vec<_> = entries(&short).collect();
        assert_eq!(all.len(), 1);
        assert!(all[0].is_err());
    }

    #[test]
    fn spill_to_continuation() {
        let entries = vec![vec![0u8; 100], vec![0u8; 100], vec![0u8; 100]];
        let s = split(entries, 200);
        assert_eq!(s.inline.len(), 100);
        assert_eq!(s.spill.len(), 2);
        let c = chunks(&s.spill);
        assert_eq!(c, vec![0..2]);
        assert_eq!(chunk_len(&s.spill, &c[0], true), 200);
        let many = vec![vec![0u8; 250]; 20];
        let c = chunks(&many);
        assert!(c.iter().all(|r| chunk_len(&many, r, false) <= 2048));
    }
}
