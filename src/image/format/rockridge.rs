//! Rock Ridge (RRIP 1.12, identified as `RRIP_1991A` as mkisofs and xorriso do): the system
//! use entries that carry POSIX names, modes, timestamps, symlinks and directory relocation —
//! `PX` (4.1.1), `PN` (4.1.2), `SL` (4.1.3), `NM` (4.1.4), `CL`/`PL`/`RE` (4.1.5), `TF`
//! (4.1.6) and mkisofs's `RR` — each with its encoder and bounds-checked decoder, and
//! [`Entry`], which reads any SUSP or RRIP entry of a system use area.

use crate::image::format::iso9660::DirDateTime;
use crate::image::format::record::{record, BothEndian, Bytes, DecodeError, Field, Record};
use crate::image::format::susp::{self, CeEntry, Er, RawEntry, SpEntry, SuspHeader};

/// The ER entry's identifier, description and source (RRIP 1991A, as mkisofs writes them).
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

record! {
    /// RRIP 4.1.1: `PX`, POSIX file attributes (the 36-byte 1991A form; RRIP 1.12 adds a
    /// serial number, 44 bytes, which [`Entry`] reads too).
    pub struct PxEntry("RRIP PX entry", 36) {
        /// BP 1-4: header (`PX`, 36, 1).
        0 header: SuspHeader,
        /// BP 5-12: POSIX File Mode (both-byte order).
        4 mode: BothEndian<u32>,
        /// BP 13-20: POSIX File Links.
        12 links: BothEndian<u32>,
        /// BP 21-28: POSIX File User ID.
        20 uid: BothEndian<u32>,
        /// BP 29-36: POSIX File Group ID.
        28 gid: BothEndian<u32>,
    }
}

record! {
    /// RRIP 4.1.2: `PN`, a device node's number.
    pub struct PnEntry("RRIP PN entry", 20) {
        /// BP 1-4: header (`PN`, 20, 1).
        0 header: SuspHeader,
        /// BP 5-12: Dev_t High.
        4 high: BothEndian<u32>,
        /// BP 13-20: Dev_t Low.
        12 low: BothEndian<u32>,
    }
}

record! {
    /// RRIP 4.1.5.1 and 4.1.5.2: `CL` (in a deep directory's placeholder, where the directory
    /// went) and `PL` (in a relocated directory's "..", where its real parent is).
    pub struct LinkEntry("RRIP CL/PL entry", 12) {
        /// BP 1-4: header (`CL` or `PL`, 12, 1).
        0 header: SuspHeader,
        /// BP 5-12: Location of the directory (both-byte order).
        4 block: BothEndian<u32>,
    }
}

record! {
    /// zisofs (libisofs's AAIP/zisofs document): `ZF`, a file stored compressed.
    pub struct ZfEntry("zisofs ZF entry", 16) {
        /// BP 1-4: header (`ZF`, 16, 1).
        0 header: SuspHeader,
        /// BP 5-6: the algorithm (`pz` for zisofs).
        4 algorithm: Bytes<2>,
        /// BP 7: the header size in 4-byte words.
        6 header_size: u8,
        /// BP 8: log2 of the block size.
        7 block_size_log2: u8,
        /// BP 9-16: the uncompressed size (both-byte order).
        8 uncompressed_size: BothEndian<u32>,
    }
}

/// The length of a `CL` or `PL` entry.
pub(crate) const LINK_LEN: usize = LinkEntry::LEN;

/// Where the block of a leading `CL`/`PL` entry sits in a system use area.
pub(crate) const LINK_BLOCK: std::ops::Range<usize> = 4..LINK_LEN;

/// `ER` (SUSP 5.5) naming Rock Ridge, as mkisofs writes it.
pub(crate) fn er() -> Vec<u8> {
    Er {
        version: 1,
        identifier: ER_ID.to_vec(),
        descriptor: ER_DES.to_vec(),
        source: ER_SRC.to_vec(),
    }
    .encode()
}

/// `PX` (the 36-byte 1991A form): mode and links; ownership is always 0:0.
pub(crate) fn px(mode: u32, nlink: u32) -> Vec<u8> {
    PxEntry {
        header: SuspHeader::new(b"PX", PxEntry::LEN),
        mode: BothEndian::new(mode),
        links: BothEndian::new(nlink),
        uid: BothEndian::new(0),
        gid: BothEndian::new(0),
    }
    .encode()
}

/// `TF` flags: the stamps recorded (modify, access, attributes) and the long form bit.
pub mod tf_flags {
    /// Creation time.
    pub const CREATION: u8 = 0x01;
    /// Modification time.
    pub const MODIFY: u8 = 0x02;
    /// Access time.
    pub const ACCESS: u8 = 0x04;
    /// Attribute change time.
    pub const ATTRIBUTES: u8 = 0x08;
    /// 17-byte (ECMA-119 8.4.26.1) stamps instead of 7-byte ones.
    pub const LONG_FORM: u8 = 0x80;
}

/// `TF`: modify, access and attribute-change times, 7-byte form.
pub(crate) fn tf(date: DirDateTime) -> Vec<u8> {
    let mut out = SuspHeader::new(b"TF", 5 + 3 * 7).encode();
    out.push(tf_flags::MODIFY | tf_flags::ACCESS | tf_flags::ATTRIBUTES);
    for _ in 0..3 {
        out.extend_from_slice(&date.0);
    }
    out
}

fn link(sig: &[u8; 2], block: u32) -> Vec<u8> {
    LinkEntry {
        header: SuspHeader::new(sig, LINK_LEN),
        block: BothEndian::new(block),
    }
    .encode()
}

/// `CL`: the placeholder of a relocated directory points at its new extent.
pub(crate) fn cl(block: u32) -> Vec<u8> {
    link(b"CL", block)
}

/// `PL`: a relocated directory's ".." points at its real parent.
pub(crate) fn pl(block: u32) -> Vec<u8> {
    link(b"PL", block)
}

/// `RE`: marks a relocated directory's record, which readers hide.
pub(crate) fn re() -> Vec<u8> {
    SuspHeader::new(b"RE", 4).encode()
}

fn flagged(sig: &[u8; 2], flags: u8, body: &[u8]) -> Vec<u8> {
    let mut out = SuspHeader::new(sig, 5 + body.len()).encode();
    out.push(flags);
    out.extend_from_slice(body);
    out
}

/// `NM` entries for a name, split with the CONTINUE flag past 250 bytes.
pub(crate) fn nm(name: &str) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = name.as_bytes().chunks(250).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| flagged(b"NM", u8::from(i + 1 < chunks.len()), c))
        .collect()
}

/// `SL` component flags (RRIP 4.1.3.1).
pub mod sl_flags {
    /// The component continues in the next component record.
    pub const CONTINUE: u8 = 0x01;
    /// `.`
    pub const CURRENT: u8 = 0x02;
    /// `..`
    pub const PARENT: u8 = 0x04;
    /// `/`
    pub const ROOT: u8 = 0x08;
}

/// `SL` entries for a symlink target: components (`.`, `..`, root, names), long
/// components split with the component CONTINUE flag, entries split with the entry CONTINUE
/// flag so each stays under 255 bytes.
pub(crate) fn sl(target: &str) -> Vec<Vec<u8>> {
    // Component records: (flags, bytes). Names are cut so every piece fits, and a cut is
    // always *inside* a name (component CONTINUE flag): readers disagree on whether a new SL
    // entry starts a new component (libarchive joins, Linux separates), but all agree on a
    // continued component.
    enum Comp<'a> {
        Special(u8),
        Name(&'a [u8]),
    }
    let mut comps: Vec<Comp<'_>> = Vec::new();
    // Every piece between slashes is a component, empty ones too, so "a/" and "a//b" come
    // back as written; a leading slash is the root component.
    let rel = match target.strip_prefix('/') {
        Some(r) => {
            comps.push(Comp::Special(sl_flags::ROOT));
            r
        }
        None => target,
    };
    for part in rel.split('/').filter(|p| !(p.is_empty() && rel.is_empty())) {
        comps.push(match part {
            "." => Comp::Special(sl_flags::CURRENT),
            ".." => Comp::Special(sl_flags::PARENT),
            p => Comp::Name(p.as_bytes()),
        });
    }
    if comps.is_empty() {
        comps.push(Comp::Name(b""));
    }
    // Room for the components of one entry (255 less the header and the flags byte).
    const BODY: usize = 249;
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    for c in comps {
        match c {
            Comp::Special(f) => {
                if body.len() + 2 > BODY {
                    bodies.push(std::mem::take(&mut body));
                }
                body.extend_from_slice(&[f, 0]);
            }
            Comp::Name(mut rest) => loop {
                if body.len() + 3 > BODY && !rest.is_empty() {
                    bodies.push(std::mem::take(&mut body));
                }
                let take = rest.len().min(BODY - body.len() - 2);
                let more = take < rest.len();
                body.extend_from_slice(&[if more { sl_flags::CONTINUE } else { 0 }, take as u8]);
                body.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if !more {
                    break;
                }
            },
        }
    }
    bodies.push(body);
    let n = bodies.len();
    bodies
        .iter()
        .enumerate()
        .map(|(i, b)| flagged(b"SL", u8::from(i + 1 < n), b))
        .collect()
}

/// One component record of an `SL` entry (RRIP 4.1.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlComponent {
    /// [`sl_flags`].
    pub flags: u8,
    /// The component's bytes (empty for `.`, `..` and `/`).
    pub content: Vec<u8>,
}

/// One SUSP or RRIP entry, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// SUSP `SP`.
    Sp(SpEntry),
    /// SUSP `CE`.
    Ce(CeEntry),
    /// SUSP `ER`.
    Er(Er),
    /// SUSP `ST`: the area ends here.
    St,
    /// `PX` (with the RRIP 1.12 serial number when the entry has one).
    Px(PxEntry, Option<u32>),
    /// `PN`.
    Pn(PnEntry),
    /// `SL`: entry flags and component records.
    Sl(u8, Vec<SlComponent>),
    /// `NM`: flags and name bytes.
    Nm(u8, Vec<u8>),
    /// `CL`: the block a deep directory moved to.
    Cl(u32),
    /// `PL`: a relocated directory's real parent.
    Pl(u32),
    /// `RE`: this record is relocated.
    Re,
    /// `TF`: flags and the recorded stamps (7 or 17 bytes each), in flag order.
    Tf(u8, Vec<Vec<u8>>),
    /// mkisofs's `RR` (RRIP 1.09): which RRIP entries this record has.
    Rr(u8),
    /// zisofs's `ZF`.
    Zf(ZfEntry),
    /// Any other entry (`AL`, `PD`, vendor entries), kept as it is.
    Other {
        /// Its signature.
        signature: [u8; 2],
        /// The bytes after its header.
        body: Vec<u8>,
    },
}

fn too_short(sig: &[u8; 2], len: usize, need: usize) -> DecodeError {
    DecodeError::Invalid {
        record: "Rock Ridge entry",
        what: format!(
            "{} entry of {len} bytes is shorter than its {need}-byte fixed part",
            String::from_utf8_lossy(sig)
        ),
    }
}

impl Entry {
    /// Interprets one raw entry of a system use area.
    pub fn decode(raw: &RawEntry<'_>) -> Result<Entry, DecodeError> {
        let b = raw.bytes;
        let need = |n: usize| {
            if b.len() < n {
                Err(too_short(&raw.signature, b.len(), n))
            } else {
                Ok(())
            }
        };
        let both = |at: usize| BothEndian::<u32>::read(&b[at..at + 8]).get();
        Ok(match &raw.signature {
            b"SP" => Entry::Sp(SpEntry::decode(b).map_err(|_| too_short(b"SP", b.len(), 7))?),
            b"CE" => Entry::Ce(CeEntry::decode(b).map_err(|_| too_short(b"CE", b.len(), 28))?),
            b"ER" => Entry::Er(Er::decode(b)?),
            b"ST" => Entry::St,
            b"PX" => {
                let px = PxEntry::decode(b).map_err(|_| too_short(b"PX", b.len(), 36))?;
                let serial = (b.len() >= 44).then(|| both(36));
                Entry::Px(px, serial)
            }
            b"PN" => Entry::Pn(PnEntry::decode(b).map_err(|_| too_short(b"PN", b.len(), 20))?),
            b"CL" | b"PL" => {
                need(LINK_LEN)?;
                let block = both(4);
                if &raw.signature == b"CL" {
                    Entry::Cl(block)
                } else {
                    Entry::Pl(block)
                }
            }
            b"RE" => Entry::Re,
            b"ZF" => Entry::Zf(ZfEntry::decode(b).map_err(|_| too_short(b"ZF", b.len(), 16))?),
            b"NM" => {
                need(5)?;
                Entry::Nm(b[4], b[5..].to_vec())
            }
            b"RR" => {
                need(5)?;
                Entry::Rr(b[4])
            }
            b"SL" => {
                need(5)?;
                let mut comps = Vec::new();
                let mut i = 5;
                while i + 2 <= b.len() {
                    let (flags, len) = (b[i], usize::from(b[i + 1]));
                    let content =
                        b.get(i + 2..i + 2 + len)
                            .ok_or_else(|| DecodeError::Invalid {
                                record: "Rock Ridge entry",
                                what: format!(
                            "SL component of {len} bytes at byte {i} runs past the entry's {}",
                            b.len()
                        ),
                            })?;
                    comps.push(SlComponent {
                        flags,
                        content: content.to_vec(),
                    });
                    i += 2 + len;
                }
                Entry::Sl(b[4], comps)
            }
            b"TF" => {
                need(5)?;
                let flags = b[4];
                let size = if flags & tf_flags::LONG_FORM != 0 {
                    17
                } else {
                    7
                };
                let count = (flags & 0x7F).count_ones() as usize;
                need(5 + count * size)?;
                let stamps = (0..count)
                    .map(|k| b[5 + k * size..5 + (k + 1) * size].to_vec())
                    .collect();
                Entry::Tf(flags, stamps)
            }
            sig => Entry::Other {
                signature: *sig,
                body: raw.body().to_vec(),
            },
        })
    }

    /// Every entry of a system use area, interpreted; the first broken one ends the list
    /// with its error.
    pub fn all(area: &[u8]) -> Result<Vec<Entry>, DecodeError> {
        susp::entries(area)
            .map(|r| r.and_then(|raw| Entry::decode(&raw)))
            .collect()
    }
}

/// The symlink target of `SL` entries' components, as readers join them: components separated
/// by `/`, a continued component joined with the next.
pub fn symlink_target<'a>(components: impl IntoIterator<Item = &'a SlComponent>) -> String {
    let mut t = String::new();
    let mut joined = false;
    for c in components {
        if !joined && !t.is_empty() && !t.ends_with('/') {
            t.push('/');
        }
        match c.flags & (sl_flags::CURRENT | sl_flags::PARENT | sl_flags::ROOT) {
            sl_flags::ROOT => t.push('/'),
            sl_flags::CURRENT => t.push('.'),
            sl_flags::PARENT => t.push_str(".."),
            _ => t.push_str(&String::from_utf8_lossy(&c.content)),
        }
        joined = c.flags & sl_flags::CONTINUE != 0;
    }
    t
}

#[cfg(test)]
mod tests {

    #[test]
    fn zf_layout() {
        // mkisofs -z: "pz", header 16 bytes (4 words), blocks of 2^15, 100000 bytes.
        let b = b"ZF\x10\x01pz\x04\x0f\xa0\x86\x01\x00\x00\x01\x86\xa0";
        let Entry::Zf(z) = one(b) else {
            panic!("not ZF")
        };
        assert_eq!(&z.algorithm.0, b"pz");
        assert_eq!(z.header_size, 4);
        assert_eq!(z.block_size_log2, 15);
        assert_eq!(z.uncompressed_size.get(), 100_000);
        assert_eq!(z.encode(), b.to_vec());
    }
    use super::*;

    fn both32(v: u32) -> [u8; 8] {
        let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
        [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
    }

    fn one(bytes: &[u8]) -> Entry {
        let raw = susp::entries(bytes).next().unwrap().unwrap();
        Entry::decode(&raw).unwrap()
    }

    #[test]
    fn relocation_layouts() {
        // RRIP 4.1.5: "CL"/"PL", LEN 12, version 1, a both-endian block number; "RE", LEN 4.
        assert_eq!(cl(0x0102_0304), [b'C', b'L', 12, 1, 4, 3, 2, 1, 1, 2, 3, 4]);
        assert_eq!(pl(7), [b'P', b'L', 12, 1, 7, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(re(), [b'R', b'E', 4, 1]);
        assert_eq!(cl(0).len(), LINK_LEN);
        assert_eq!(one(&cl(9)), Entry::Cl(9));
        assert_eq!(one(&pl(9)), Entry::Pl(9));
        assert_eq!(one(&re()), Entry::Re);
    }

    #[test]
    fn pn_layout() {
        let mut b = vec![b'P', b'N', 20, 1];
        b.extend_from_slice(&both32(0));
        b.extend_from_slice(&both32(0x0801));
        let Entry::Pn(pn) = one(&b) else {
            panic!("not a PN")
        };
        assert_eq!(pn.low.get(), 0x0801);
        assert_eq!(pn.encode(), b);
        assert!(Entry::all(&b[..12]).is_err());
    }

    #[test]
    fn rrip_layouts() {
        let p = px(0o100644, 1);
        assert_eq!(p.len(), 36);
        assert_eq!(&p[..4], b"PX\x24\x01");
        assert_eq!(&p[4..12], &both32(0o100644));
        assert_eq!(&p[12..20], &both32(1));
        let Entry::Px(back, None) = one(&p) else {
            panic!("not a PX")
        };
        assert_eq!(back.mode.get(), 0o100644);
        let t = tf(DirDateTime([124, 2, 29, 0, 0, 0, 0]));
        assert_eq!(t.len(), 26);
        assert_eq!(&t[..5], b"TF\x1a\x01\x0e");
        let Entry::Tf(0x0e, stamps) = one(&t) else {
            panic!("not a TF")
        };
        assert_eq!(stamps.len(), 3);
        let n = nm("hello");
        assert_eq!(n, vec![b"NM\x0a\x01\x00hello".to_vec()]);
        assert_eq!(one(&n[0]), Entry::Nm(0, b"hello".to_vec()));
        let long = nm(&"a".repeat(300));
        assert_eq!(long.len(), 2);
        assert_eq!(long[0][4], 1); // CONTINUE
        assert_eq!(long[1][4], 0);
        let e = er();
        assert_eq!(&e[4..8], &[10, 84, 135, 1]);
        assert!(matches!(one(&e), Entry::Er(x) if x.identifier == b"RRIP_1991A"));
    }

    /// mkisofs's variants (RRIP 1.09): `RR` naming the entries present, and a long-form `TF`
    /// (flag 0x80: 17-byte ECMA-119 8.4.26.1 dates instead of 7-byte ones).
    #[test]
    fn mkisofs_variants() {
        let rr = b"RR\x05\x01\x89";
        assert_eq!(one(rr), Entry::Rr(0x89));
        let mut t = b"TF\x16\x01\x82".to_vec();
        t.extend_from_slice(b"2024022912000000\x00");
        assert_eq!(t.len(), 22);
        let Entry::Tf(0x82, stamps) = one(&t) else {
            panic!("not a long-form TF")
        };
        assert_eq!(stamps, [b"2024022912000000\x00".to_vec()]);
        // Cut short: an error, not a panic.
        assert!(Entry::all(&t[..20]).is_err());
    }

    #[test]
    fn symlink_components() {
        // "/usr/../bin": root, "usr", parent, "bin".
        let s = sl("/usr/../bin");
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0],
            [
                b'S', b'L', 19, 1, 0, 0x08, 0, 0, 3, b'u', b's', b'r', 0x04, 0, 0, 3, b'b', b'i',
                b'n'
            ]
        );
        let Entry::Sl(0, comps) = one(&s[0]) else {
            panic!("not an SL")
        };
        assert_eq!(symlink_target(&comps), "/usr/../bin");
        // A long name is cut inside itself, never at a component boundary.
        let long = sl(&format!("{}/{}", "x".repeat(150), "y".repeat(150)));
        assert_eq!(long.len(), 2);
        assert_eq!(long[0][4], 1, "entry continues");
        let last_comp_flags = long[0][5 + 2 + 150];
        assert_eq!(
            last_comp_flags, 1,
            "the y component continues in the next entry"
        );
        let comps: Vec<SlComponent> = long
            .iter()
            .flat_map(|e| match one(e) {
                Entry::Sl(_, c) => c,
                _ => panic!("not an SL"),
            })
            .collect();
        assert_eq!(
            symlink_target(&comps),
            format!("{}/{}", "x".repeat(150), "y".repeat(150))
        );
        let rel = sl("./x");
        assert_eq!(&rel[0][5..], &[0x02, 0, 0, 1, b'x']);
    }

    #[test]
    fn broken_entries_are_errors_not_panics() {
        // An NM of length 4 (no flags byte), a PX shorter than its fixed part, an SL whose
        // component runs past the entry, a TF with fewer stamps than its flags announce.
        for bad in [
            &b"NM\x04\x01"[..],
            &b"PX\x08\x01\0\0\0\0"[..],
            &b"SL\x09\x01\0\0\x09ab"[..],
            &b"TF\x0c\x01\x0e1234567"[..],
            &b"CL\x08\x01\0\0\0\0"[..],
        ] {
            let raw = susp::entries(bad).next().unwrap().unwrap();
            assert!(Entry::decode(&raw).is_err(), "{bad:?}");
        }
        assert!(Entry::all(b"NM\x04\x01").is_err());
        // Unknown entries are kept.
        assert_eq!(
            one(b"AL\x06\x01ab"),
            Entry::Other {
                signature: *b"AL",
                body: b"ab".to_vec()
            }
        );
        // A cut-short ZF is an error, not a silent other entry.
        assert!(Entry::all(b"ZF\x06\x01ab").is_err());
    }
}
