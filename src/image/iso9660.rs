//! ECMA-119 (ISO 9660) structures and their byte encoders: both-endian numbers, directory
//! records, volume descriptors (primary, Joliet supplementary, El Torito boot record,
//! terminator) and path-table records; plus the primary tree's identifier rules.

/// Bytes per logical sector.
pub const SECTOR: u64 = 2048;

/// ECMA-119 7.2.3: a 16-bit number, little-endian then big-endian.
pub fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

/// ECMA-119 7.3.3: a 32-bit number, little-endian then big-endian.
pub fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// Directory record flags (ECMA-119 9.1.6).
pub mod flags {
    /// The record is a directory.
    pub const DIRECTORY: u8 = 0x02;
    /// This is not the final record of a multi-extent file.
    pub const MULTI_EXTENT: u8 = 0x80;
}

/// A directory record (ECMA-119 9.1).
#[derive(Clone, Debug, PartialEq)]
pub struct DirRecord {
    /// First logical block of the extent.
    pub extent: u32,
    /// Data length in bytes.
    pub size: u32,
    /// Recording date (see `Clock::dir_date`).
    pub date: [u8; 7],
    /// [`flags`].
    pub flags: u8,
    /// File identifier bytes (`[0]` is ".", `[1]` is "..").
    pub name: Vec<u8>,
    /// System use area (SUSP / Rock Ridge entries).
    pub system_use: Vec<u8>,
}

impl DirRecord {
    /// The length of a record with this identifier and system-use size (9.1.1, with the pad
    /// byte of 9.1.12 after an even-length identifier).
    pub fn len_for(name_len: usize, su_len: usize) -> usize {
        33 + name_len + usize::from(name_len % 2 == 0) + su_len
    }

    /// The encoded length.
    pub fn len(&self) -> usize {
        Self::len_for(self.name.len(), self.system_use.len())
    }

    /// Never true: a record has at least its 34 fixed bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the encoded record.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let len = self.len();
        assert!(len <= 255, "directory record of {len} bytes");
        out.push(len as u8);
        out.push(0); // extended attribute record length
        out.extend_from_slice(&both32(self.extent));
        out.extend_from_slice(&both32(self.size));
        out.extend_from_slice(&self.date);
        out.push(self.flags);
        out.push(0); // file unit size (not interleaved)
        out.push(0); // interleave gap
        out.extend_from_slice(&both16(1)); // volume sequence number
        out.push(self.name.len() as u8);
        out.extend_from_slice(&self.name);
        if self.name.len() % 2 == 0 {
            out.push(0);
        }
        out.extend_from_slice(&self.system_use);
    }
}

/// A string field of a volume descriptor: a-/d-characters padded with spaces (primary), or
/// UCS-2 big-endian padded with spaces (Joliet).
fn put_str(buf: &mut [u8], s: &str, joliet: bool) {
    if joliet {
        let mut units = s.encode_utf16().flat_map(u16::to_be_bytes);
        for pair in buf.chunks_mut(2) {
            let hi = units.next().unwrap_or(0);
            let lo = units.next().unwrap_or(b' ');
            pair[0] = hi;
            if pair.len() > 1 {
                pair[1] = lo;
            }
        }
    } else {
        let bytes = s.as_bytes();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(b' ');
        }
    }
}

/// The fields of a primary or (Joliet) supplementary volume descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeDescriptor {
    /// Joliet supplementary descriptor (type 2, UCS-2 level 3 escape) instead of primary (type 1).
    pub joliet: bool,
    /// System identifier.
    pub system_id: String,
    /// Volume identifier (at most 32 bytes; 16 UCS-2 characters in Joliet).
    pub volume_id: String,
    /// Volume space size in sectors.
    pub space_size: u32,
    /// Path table size in bytes.
    pub path_table_size: u32,
    /// Sector of the little-endian (type L) path table.
    pub path_table_l: u32,
    /// Sector of the big-endian (type M) path table.
    pub path_table_m: u32,
    /// The root directory's record (34 bytes, identifier `0x00`).
    pub root: DirRecord,
    /// Publisher identifier.
    pub publisher: String,
    /// Data preparer identifier.
    pub preparer: String,
    /// Application identifier.
    pub application: String,
    /// Creation and modification date.
    pub date: [u8; 17],
}

impl VolumeDescriptor {
    /// Encodes the 2048-byte descriptor (ECMA-119 8.4, Joliet spec for type 2).
    pub fn encode(&self) -> [u8; 2048] {
        let mut d = [0u8; 2048];
        d[0] = if self.joliet { 2 } else { 1 };
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        put_str(&mut d[8..40], &self.system_id, self.joliet);
        put_str(&mut d[40..72], &self.volume_id, self.joliet);
        d[80..88].copy_from_slice(&both32(self.space_size));
        if self.joliet {
            d[88..91].copy_from_slice(b"%/E"); // UCS-2 level 3
        }
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(SECTOR as u16));
        d[132..140].copy_from_slice(&both32(self.path_table_size));
        d[140..144].copy_from_slice(&self.path_table_l.to_le_bytes());
        d[148..152].copy_from_slice(&self.path_table_m.to_be_bytes());
        let mut root = Vec::with_capacity(34);
        self.root.encode(&mut root);
        d[156..190].copy_from_slice(&root);
        put_str(&mut d[190..318], "", self.joliet);
        put_str(&mut d[318..446], &self.publisher, self.joliet);
        put_str(&mut d[446..574], &self.preparer, self.joliet);
        put_str(&mut d[574..702], &self.application, self.joliet);
        put_str(&mut d[702..739], "", self.joliet);
        put_str(&mut d[739..776], "", self.joliet);
        put_str(&mut d[776..813], "", self.joliet);
        d[813..830].copy_from_slice(&self.date);
        d[830..847].copy_from_slice(&self.date);
        d[847..864].copy_from_slice(&super::clock::UNSPECIFIED_DATE);
        d[864..881].copy_from_slice(&super::clock::UNSPECIFIED_DATE);
        d[881] = 1; // file structure version
        d
    }
}

/// The El Torito boot record volume descriptor (El Torito 1.0, section 2.0).
pub fn boot_record(catalog_sector: u32) -> [u8; 2048] {
    let mut d = [0u8; 2048];
    d[0] = 0;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
    d[71..75].copy_from_slice(&catalog_sector.to_le_bytes());
    d
}

/// The volume descriptor set terminator (ECMA-119 8.3).
pub fn terminator() -> [u8; 2048] {
    let mut d = [0u8; 2048];
    d[0] = 255;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d
}

/// Appends one path table record (ECMA-119 9.4); `big_endian` selects the M table.
pub fn path_table_record(
    out: &mut Vec<u8>,
    name: &[u8],
    extent: u32,
    parent: u16,
    big_endian: bool,
) {
    out.push(name.len() as u8);
    out.push(0);
    if big_endian {
        out.extend_from_slice(&extent.to_be_bytes());
        out.extend_from_slice(&parent.to_be_bytes());
    } else {
        out.extend_from_slice(&extent.to_le_bytes());
        out.extend_from_slice(&parent.to_le_bytes());
    }
    out.extend_from_slice(name);
    if name.len() % 2 == 1 {
        out.push(0);
    }
}

/// The length of a path table record.
pub fn path_table_record_len(name_len: usize) -> usize {
    8 + name_len + name_len % 2
}

/// A primary-tree identifier (ISO level 3 with "full" names as xorriso's
/// `-full-iso9660-filenames`): d-characters only (`A-Z 0-9 _`), at most 30 characters with one
/// dot for files and none for directories, files ending in `;1`. Everything else maps to `_`.
/// Rock Ridge carries the real name; this one only has to be valid and unique.
pub fn primary_name(name: &str, is_dir: bool, taken: &dyn Fn(&str) -> bool) -> String {
    let map = |s: &str| -> String {
        s.chars()
            .map(|c| match c.to_ascii_uppercase() {
                u @ ('A'..='Z' | '0'..='9' | '_') => u,
                _ => '_',
            })
            .collect()
    };
    let (stem, ext) = match name.rfind('.') {
        Some(i) if !is_dir && i > 0 => (map(&name[..i]), map(&name[i + 1..])),
        _ => (map(name), String::new()),
    };
    let ext: String = ext.chars().take(8).collect();
    let room = 30 - if is_dir { 0 } else { ext.len() + 1 };
    // Deterministic disambiguation: the shortest counter suffix that is free.
    super::first_free(
        true,
        |suffix| {
            let keep: String = stem.chars().take(room - suffix.len()).collect();
            if is_dir {
                format!("{keep}{suffix}")
            } else {
                format!("{keep}{suffix}.{ext};1")
            }
        },
        |c| taken(c),
    )
}

/// ECMA-119 9.3's order of directory records: by name, then extension, each compared as if
/// padded with spaces (0x20), then by version, highest first. Joliet names (UCS-2) use the
/// same rule on their bytes.
pub fn record_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    fn split(n: &[u8]) -> (&[u8], &[u8], &[u8]) {
        let (body, ver) = match n.iter().rposition(|&c| c == b';') {
            Some(i) => (&n[..i], &n[i + 1..]),
            None => (n, &[][..]),
        };
        match body.iter().rposition(|&c| c == b'.') {
            Some(i) => (&body[..i], &body[i + 1..], ver),
            None => (body, &[][..], ver),
        }
    }
    fn padded(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                (
                    a.get(i).copied().unwrap_or(b' '),
                    b.get(i).copied().unwrap_or(b' '),
                )
            })
            .find(|(x, y)| x != y)
            .map_or(std::cmp::Ordering::Equal, |(x, y)| x.cmp(&y))
    }
    let (sa, ea, va) = split(a);
    let (sb, eb, vb) = split(b);
    padded(sa, sb)
        .then_with(|| padded(ea, eb))
        .then_with(|| vb.cmp(va))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_endian() {
        assert_eq!(both16(0x1234), [0x34, 0x12, 0x12, 0x34]);
        assert_eq!(both32(0x0102_0304), [4, 3, 2, 1, 1, 2, 3, 4]);
    }

    #[test]
    fn directory_record_layout() {
        let r = DirRecord {
            extent: 0x1d,
            size: 2048,
            date: [124, 2, 29, 12, 34, 56, 0],
            flags: flags::DIRECTORY,
            name: vec![0],
            system_use: vec![],
        };
        let mut b = Vec::new();
        r.encode(&mut b);
        // 9.1: 34 bytes for a one-byte identifier (odd: no pad byte).
        assert_eq!(b.len(), 34);
        assert_eq!(b[0], 34);
        assert_eq!(&b[2..10], &[0x1d, 0, 0, 0, 0, 0, 0, 0x1d]);
        assert_eq!(&b[10..18], &[0, 8, 0, 0, 0, 0, 8, 0]);
        assert_eq!(&b[18..25], &[124, 2, 29, 12, 34, 56, 0]);
        assert_eq!(b[25], 2);
        assert_eq!(&b[28..32], &[1, 0, 0, 1]);
        assert_eq!(b[32], 1);
        assert_eq!(b[33], 0);
        // An even-length identifier gets a pad byte before the system use area.
        let r2 = DirRecord {
            name: b"AB".to_vec(),
            system_use: b"XY".to_vec(),
            ..r
        };
        let mut b2 = Vec::new();
        r2.encode(&mut b2);
        assert_eq!(b2.len(), 33 + 2 + 1 + 2);
        assert_eq!(&b2[33..38], b"AB\0XY");
    }

    #[test]
    fn descriptor_layouts() {
        let root = DirRecord {
            extent: 20,
            size: 2048,
            date: [0; 7],
            flags: flags::DIRECTORY,
            name: vec![0],
            system_use: vec![],
        };
        let mut vd = VolumeDescriptor {
            joliet: false,
            system_id: "LINUX".into(),
            volume_id: "NIXOS_ISO".into(),
            space_size: 1000,
            path_table_size: 10,
            path_table_l: 18,
            path_table_m: 19,
            root,
            publisher: String::new(),
            preparer: String::new(),
            application: String::new(),
            date: *b"2024022912345600\0",
        };
        let d = vd.encode();
        assert_eq!(&d[0..7], b"\x01CD001\x01");
        assert_eq!(&d[8..13], b"LINUX");
        assert_eq!(d[13], b' ');
        assert_eq!(&d[40..49], b"NIXOS_ISO");
        assert_eq!(&d[80..88], &both32(1000));
        assert_eq!(&d[128..132], &[0, 8, 8, 0]);
        assert_eq!(&d[140..144], &18u32.to_le_bytes());
        assert_eq!(&d[148..152], &19u32.to_be_bytes());
        assert_eq!(d[156], 34);
        assert_eq!(&d[813..830], b"2024022912345600\0");
        assert_eq!(&d[847..864], b"0000000000000000\0");
        assert_eq!(d[881], 1);
        vd.joliet = true;
        let j = vd.encode();
        assert_eq!(j[0], 2);
        assert_eq!(&j[88..91], b"%/E");
        assert_eq!(&j[40..44], &[0, b'N', 0, b'I']);
        assert_eq!(&j[70..72], &[0, b' ']);

        let br = boot_record(0x22);
        assert_eq!(&br[0..7], b"\0CD001\x01");
        assert_eq!(&br[7..30], b"EL TORITO SPECIFICATION");
        assert_eq!(&br[71..75], &[0x22, 0, 0, 0]);
        assert_eq!(&terminator()[0..7], b"\xffCD001\x01");
    }

    #[test]
    fn path_table_layout() {
        let mut l = Vec::new();
        path_table_record(&mut l, b"BOOT", 0x20, 1, false);
        assert_eq!(l, [4, 0, 0x20, 0, 0, 0, 1, 0, b'B', b'O', b'O', b'T']);
        let mut m = Vec::new();
        path_table_record(&mut m, b"EFI", 0x20, 1, true);
        assert_eq!(m, [3, 0, 0, 0, 0, 0x20, 0, 1, b'E', b'F', b'I', 0]);
        assert_eq!(path_table_record_len(3), 12);
    }

    #[test]
    fn primary_names() {
        let free = |_: &str| false;
        assert_eq!(primary_name("vmlinuz", false, &free), "VMLINUZ.;1");
        assert_eq!(primary_name("grub.cfg", false, &free), "GRUB.CFG;1");
        assert_eq!(primary_name("my dir.d", true, &free), "MY_DIR_D");
        let taken = |n: &str| n == "A_B.TXT;1";
        assert_eq!(primary_name("a;b.txt", false, &taken), "A_B~1.TXT;1");
        let long = "x".repeat(200);
        assert_eq!(primary_name(&long, false, &free).len(), 30 + 2);
    }

    #[test]
    fn ordering() {
        use std::cmp::Ordering::*;
        assert_eq!(record_order(b"A.;1", b"A.B;1"), Less);
        // "AB" vs "A.B": stems "AB" and "A" padded → "A " < "AB".
        assert_eq!(record_order(b"AB.;1", b"A.B;1"), Greater);
        assert_eq!(record_order(b"A_B", b"AB"), Greater);
    }
}
