//! System Use Sharing Protocol (SUSP 1.12) and Rock Ridge (RRIP 1.12, identified as
//! `RRIP_1991A` as mkisofs and xorriso do): the entries that carry POSIX names, modes,
//! timestamps and symlinks, and the rule that spills entries into continuation areas.

use super::iso9660::both32;

/// The ER entry's identifier, description and source (RRIP 1991A, as mkisofs writes them).
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DES: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SRC: &[u8] = b"PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.";

fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(4 + body.len());
    e.extend_from_slice(sig);
    e.push((4 + body.len()) as u8);
    e.push(1);
    e.extend_from_slice(body);
    e
}

/// `SP` (SUSP 5.3): marks SUSP use, in the root's "." record; skips no bytes.
pub fn sp() -> Vec<u8> {
    entry(b"SP", &[0xBE, 0xEF, 0])
}

/// `ER` (SUSP 5.5): names the extension (Rock Ridge).
pub fn er() -> Vec<u8> {
    let mut b = vec![ER_ID.len() as u8, ER_DES.len() as u8, ER_SRC.len() as u8, 1];
    b.extend_from_slice(ER_ID);
    b.extend_from_slice(ER_DES);
    b.extend_from_slice(ER_SRC);
    entry(b"ER", &b)
}

/// `CE` (SUSP 5.1): where the entries continue.
pub fn ce(block: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&both32(block));
    b.extend_from_slice(&both32(offset));
    b.extend_from_slice(&both32(len));
    entry(b"CE", &b)
}

/// The length of a `CE` entry.
pub const CE_LEN: usize = 28;

/// `PX` (RRIP 4.1.1, the 36-byte 1991A form): mode, links, uid, gid.
pub fn px(mode: u32, nlink: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(&both32(mode));
    b.extend_from_slice(&both32(nlink));
    b.extend_from_slice(&both32(0)); // uid: ownership is always 0:0
    b.extend_from_slice(&both32(0)); // gid
    entry(b"PX", &b)
}

/// `TF` (RRIP 4.1.6): modify, access and attribute-change times, 7-byte form.
pub fn tf(date: [u8; 7]) -> Vec<u8> {
    let mut b = vec![0x0E];
    for _ in 0..3 {
        b.extend_from_slice(&date);
    }
    entry(b"TF", &b)
}

/// `CL` (RRIP 4.1.5.1): in the placeholder left where a deep directory was, that
/// directory's new extent.
pub fn cl(block: u32) -> Vec<u8> {
    entry(b"CL", &both32(block))
}

/// `PL` (RRIP 4.1.5.2): in a relocated directory's ".." record, the extent of its real
/// parent.
pub fn pl(block: u32) -> Vec<u8> {
    entry(b"PL", &both32(block))
}

/// `RE` (RRIP 4.1.5.3): marks a relocated directory's record, which readers hide.
pub fn re() -> Vec<u8> {
    entry(b"RE", &[])
}

/// The length of a `CL` or `PL` entry.
pub const LINK_LEN: usize = 12;

/// `NM` entries (RRIP 4.1.4) for a name, split with the CONTINUE flag past 250 bytes.
pub fn nm(name: &str) -> Vec<Vec<u8>> {
    let bytes = name.as_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(250).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut b = vec![u8::from(i + 1 < chunks.len())];
            b.extend_from_slice(c);
            entry(b"NM", &b)
        })
        .collect()
}

/// `SL` entries (RRIP 4.1.3) for a symlink target: components (`.`, `..`, root, names), long
/// components split with the component CONTINUE flag, entries split with the entry CONTINUE
/// flag so each stays under 255 bytes.
pub fn sl(target: &str) -> Vec<Vec<u8>> {
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
            comps.push(Comp::Special(0x08));
            r
        }
        None => target,
    };
    for part in rel.split('/').filter(|p| !(p.is_empty() && rel.is_empty())) {
        comps.push(match part {
            "." => Comp::Special(0x02),
            ".." => Comp::Special(0x04),
            p => Comp::Name(p.as_bytes()),
        });
    }
    if comps.is_empty() {
        comps.push(Comp::Name(b""));
    }
    const BODY: usize = 250;
    let mut entries: Vec<Vec<u8>> = Vec::new();
    let mut body: Vec<u8> = vec![0];
    for c in comps {
        match c {
            Comp::Special(f) => {
                if body.len() + 2 > BODY {
                    entries.push(std::mem::replace(&mut body, vec![0]));
                }
                body.extend_from_slice(&[f, 0]);
            }
            Comp::Name(mut rest) => loop {
                if body.len() + 3 > BODY && !rest.is_empty() {
                    entries.push(std::mem::replace(&mut body, vec![0]));
                }
                let take = rest.len().min(BODY - body.len() - 2);
                let more = take < rest.len();
                body.extend_from_slice(&[u8::from(more), take as u8]);
                body.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if !more {
                    break;
                }
            },
        }
    }
    entries.push(body);
    let n = entries.len();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b[0] = u8::from(i + 1 < n);
            entry(b"SL", &b)
        })
        .collect()
}

/// Where a record's entries go: those that fit in the record, and the rest for a
/// continuation area (already chained with `CE` entries once its blocks are known).
pub struct Split {
    /// Entries inside the directory record (a `CE` is appended when `spill` is not empty).
    pub inline: Vec<u8>,
    /// Entries for continuation areas, in order.
    pub spill: Vec<Vec<u8>>,
}

/// Splits entries so the record stays within 255 bytes: `room` is what the record leaves for
/// its system use area.
pub fn split(entries: Vec<Vec<u8>>, room: usize) -> Split {
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
pub fn chunks(spill: &[Vec<u8>]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut cur) = (0, 0);
    for (i, e) in spill.iter().enumerate() {
        let more = i + 1 < spill.len();
        let need = e.len() + if more { CE_LEN } else { 0 };
        if cur + need > 2048 && cur > 0 {
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
pub fn chunk_len(spill: &[Vec<u8>], r: &std::ops::Range<usize>, last: bool) -> usize {
    spill[r.clone()].iter().map(Vec::len).sum::<usize>() + if last { 0 } else { CE_LEN }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn susp_layouts() {
        assert_eq!(sp(), [b'S', b'P', 7, 1, 0xBE, 0xEF, 0]);
        let c = ce(0x10, 0x20, 0x30);
        assert_eq!(c.len(), CE_LEN);
        assert_eq!(&c[..4], b"CE\x1c\x01");
        assert_eq!(&c[4..12], &both32(0x10));
        assert_eq!(&c[12..20], &both32(0x20));
        assert_eq!(&c[20..28], &both32(0x30));
        let e = er();
        assert_eq!(&e[..2], b"ER");
        assert_eq!(e[2] as usize, e.len());
        assert_eq!(&e[4..8], &[10, 84, 135, 1]);
        assert_eq!(&e[8..18], b"RRIP_1991A");
    }

    #[test]
    fn relocation_layouts() {
        // RRIP 4.1.5: "CL"/"PL", LEN 12, version 1, a both-endian block number; "RE", LEN 4.
        assert_eq!(cl(0x0102_0304), [b'C', b'L', 12, 1, 4, 3, 2, 1, 1, 2, 3, 4]);
        assert_eq!(pl(7), [b'P', b'L', 12, 1, 7, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(re(), [b'R', b'E', 4, 1]);
        assert_eq!(cl(0).len(), LINK_LEN);
    }

    #[test]
    fn rrip_layouts() {
        let p = px(0o100644, 1);
        assert_eq!(p.len(), 36);
        assert_eq!(&p[..4], b"PX\x24\x01");
        assert_eq!(&p[4..12], &both32(0o100644));
        let t = tf([124, 2, 29, 0, 0, 0, 0]);
        assert_eq!(&t[..5], b"TF\x1a\x01\x0e");
        let n = nm("hello");
        assert_eq!(n, vec![b"NM\x0a\x01\x00hello".to_vec()]);
        let long = nm(&"a".repeat(300));
        assert_eq!(long.len(), 2);
        assert_eq!(long[0][4], 1); // CONTINUE
        assert_eq!(long[1][4], 0);
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
        // A long name is cut inside itself, never at a component boundary.
        let long = sl(&format!("{}/{}", "x".repeat(150), "y".repeat(150)));
        assert_eq!(long.len(), 2);
        assert_eq!(long[0][4], 1, "entry continues");
        let last_comp_flags = long[0][5 + 2 + 150];
        assert_eq!(
            last_comp_flags, 1,
            "the y component continues in the next entry"
        );
        let rel = sl("./x");
        assert_eq!(&rel[0][5..], &[0x02, 0, 0, 1, b'x']);
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
