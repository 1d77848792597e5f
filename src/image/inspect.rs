//! Reads an ISO image back: volume descriptors, the El Torito boot catalog, the MBR and GPT
//! (with their CRCs checked), and the file tree with Rock Ridge names, modes, symlink targets
//! and extents. Used by `isoproof inspect` and by tests; it trusts nothing it reads.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use serde_json::{json, Value};

use super::ImageError;

const SECTOR: u64 = 2048;

/// Everything `inspect` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Volume descriptors, in order.
    pub descriptors: Vec<Descriptor>,
    /// Boot catalog entries (platform, sector, 512-byte count).
    pub boot_entries: Vec<(u8, u32, u16)>,
    /// The MBR, when the image has one.
    pub mbr: Option<Mbr>,
    /// GPT partitions, when the image has a GPT (CRCs checked).
    pub gpt: Option<GptInfo>,
    /// Files, depth-first in directory order.
    pub files: Vec<FileInfo>,
}

/// A volume descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    /// Its sector.
    pub sector: u64,
    /// "primary", "joliet", "supplementary", "boot record", "terminator".
    pub kind: String,
    /// Volume identifier (primary/supplementary).
    pub volume_id: String,
    /// Volume space size in sectors.
    pub space_size: u32,
    /// Root directory extent.
    pub root: (u32, u32),
}

/// The MBR fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Mbr {
    /// Disk signature.
    pub signature: u32,
    /// Partition entries in use: (type, first LBA, sectors, bootable).
    pub partitions: Vec<(u8, u32, u32, bool)>,
}

/// The GPT, read from the primary header.
#[derive(Debug, Clone, PartialEq)]
pub struct GptInfo {
    /// Disk GUID, as text.
    pub disk_guid: String,
    /// Whether both headers and both entry arrays have valid CRCs and agree.
    pub valid: bool,
    /// Partitions: (type GUID, first, last, name).
    pub partitions: Vec<(String, u64, u64, String)>,
}

/// One file of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct FileInfo {
    /// Full path ("/" separated, Rock Ridge names when present).
    pub path: String,
    /// POSIX mode from `PX` (0 without Rock Ridge).
    pub mode: u32,
    /// Size in bytes (all extents).
    pub size: u64,
    /// Extents: (sector, bytes).
    pub extents: Vec<(u32, u32)>,
    /// Symlink target from `SL`.
    pub symlink: Option<String>,
    /// Whether it is a directory.
    pub is_dir: bool,
    /// A deep directory's placeholder: the sector its directory moved to (`CL`).
    pub moved_to: Option<u32>,
    /// Whether the record is marked as relocated (`RE`; Rock Ridge readers hide it).
    pub relocated: bool,
}

struct Img {
    f: File,
    len: u64,
}

impl Img {
    fn read(&mut self, off: u64, n: usize) -> Result<Vec<u8>, ImageError> {
        if off + n as u64 > self.len {
            return Err(ImageError::Malformed(format!(
                "a structure at byte {off} reaches past the end of the image"
            )));
        }
        let mut b = vec![0u8; n];
        self.f
            .seek(SeekFrom::Start(off))
            .and_then(|_| self.f.read_exact(&mut b))
            .map_err(|e| ImageError::Malformed(e.to_string()))?;
        Ok(b)
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn guid_text(g: &[u8]) -> String {
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}",
        le32(&g[0..4]),
        u16::from_le_bytes([g[4], g[5]]),
        u16::from_le_bytes([g[6], g[7]]),
        g[8],
        g[9],
        g[10..16]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

/// Reads an image.
pub fn inspect(path: &Path) -> Result<Report, ImageError> {
    let f = File::open(path).map_err(|e| ImageError::io(path, e))?;
    let len = f.metadata().map_err(|e| ImageError::io(path, e))?.len();
    let mut img = Img { f, len };
    let mut descriptors = Vec::new();
    let mut catalog = None;
    let mut primary_root = None;
    for s in 16..116u64 {
        let d = img.read(s * SECTOR, 2048)?;
        if &d[1..6] != b"CD001" {
            return Err(ImageError::Malformed(format!(
                "sector {s} is not a volume descriptor"
            )));
        }
        let text =
            |r: std::ops::Range<usize>| String::from_utf8_lossy(&d[r]).trim_end().to_string();
        let root = (le32(&d[158..162]), le32(&d[166..170]));
        let kind = match d[0] {
            0 => {
                catalog = Some(le32(&d[71..75]));
                "boot record"
            }
            1 => {
                primary_root = Some(root);
                "primary"
            }
            2 if &d[88..90] == b"%/" => "joliet",
            2 => "supplementary",
            255 => "terminator",
            _ => "other",
        };
        let volume_id = match d[0] {
            1 => text(40..72),
            2 => {
                let u: Vec<u16> = d[40..72]
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16_lossy(&u).trim_end().to_string()
            }
            _ => String::new(),
        };
        let (space_size, root) = if matches!(d[0], 1 | 2) {
            (le32(&d[80..84]), root)
        } else {
            (0, (0, 0))
        };
        descriptors.push(Descriptor {
            sector: s,
            kind: kind.into(),
            volume_id,
            space_size,
            root,
        });
        if d[0] == 255 {
            break;
        }
    }
    let mut boot_entries = Vec::new();
    if let Some(c) = catalog {
        let b = img.read(u64::from(c) * SECTOR, 2048)?;
        if b[0] != 1 || b[30..32] != [0x55, 0xAA] || super::eltorito::word_sum(&b[..32]) != 0 {
            return Err(ImageError::Malformed(
                "the boot catalog's validation entry is wrong".into(),
            ));
        }
        let mut platform = b[1];
        for (i, e) in b[32..].chunks(32).enumerate() {
            match e[0] {
                0x88 => {
                    boot_entries.push((platform, le32(&e[8..12]), u16::from_le_bytes([e[6], e[7]])))
                }
                0x00 if i == 0 => {} // a default entry that is not bootable
                0x90 | 0x91 => platform = e[1],
                _ => break,
            }
        }
    }
    let mbr_b = img.read(0, 512)?;
    let mbr = (mbr_b[510..512] == [0x55, 0xAA]).then(|| Mbr {
        signature: le32(&mbr_b[440..444]),
        partitions: (0..4)
            .map(|i| &mbr_b[446 + 16 * i..462 + 16 * i])
            .filter(|e| e[4] != 0)
            .map(|e| (e[4], le32(&e[8..12]), le32(&e[12..16]), e[0] == 0x80))
            .collect(),
    });
    let gpt = if mbr
        .as_ref()
        .is_some_and(|m| m.partitions.iter().any(|p| p.0 == 0xEE))
    {
        Some(read_gpt(&mut img)?)
    } else {
        None
    };
    let mut files = Vec::new();
    if let Some((sector, size)) = primary_root {
        walk(&mut img, sector, size, "", &mut files, 0)?;
    }
    Ok(Report {
        descriptors,
        boot_entries,
        mbr,
        gpt,
        files,
    })
}

fn read_gpt(img: &mut Img) -> Result<GptInfo, ImageError> {
    let h = img.read(512, 512)?;
    if &h[0..8] != b"EFI PART" {
        return Err(ImageError::Malformed(
            "the protective MBR has no GPT header behind it".into(),
        ));
    }
    let check = |h: &[u8]| {
        let mut c = h[..92].to_vec();
        c[16..20].fill(0);
        crc32fast::hash(&c) == le32(&h[16..20])
    };
    let entries_lba = le64(&h[72..80]);
    let n = le32(&h[80..84]) as usize;
    let esz = le32(&h[84..88]) as usize;
    if !(128..=4096).contains(&esz) || n > 4096 {
        return Err(ImageError::Malformed(
            "the GPT entry array has an impossible size".into(),
        ));
    }
    let entries = img.read(entries_lba * 512, n * esz)?;
    let alt = le64(&h[32..40]);
    let backup = img.read(alt * 512, 512)?;
    let backup_entries = img.read(le64(&backup[72..80]) * 512, n * esz)?;
    let valid = check(&h)
        && check(&backup)
        && crc32fast::hash(&entries) == le32(&h[88..92])
        && entries == backup_entries
        && alt * 512 + 512 == img.len;
    let partitions = entries
        .chunks(esz)
        .filter(|e| e[..16].iter().any(|&b| b != 0))
        .map(|e| {
            let name: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            (
                guid_text(&e[..16]),
                le64(&e[32..40]),
                le64(&e[40..48]),
                String::from_utf16_lossy(&name),
            )
        })
        .collect();
    Ok(GptInfo {
        disk_guid: guid_text(&h[56..72]),
        valid,
        partitions,
    })
}

/// System use entries of a record, following `CE` continuation areas.
fn susp_entries(img: &mut Img, mut su: Vec<u8>) -> Result<Vec<Vec<u8>>, ImageError> {
    let mut out = Vec::new();
    let mut hops = 0;
    loop {
        let mut next = None;
        let mut i = 0;
        while i + 4 <= su.len() {
            let l = su[i + 2] as usize;
            if l < 4 || i + l > su.len() {
                break;
            }
            let e = su[i..i + l].to_vec();
            if &e[..2] == b"CE" && l >= 28 {
                next = Some((le32(&e[4..8]), le32(&e[12..16]), le32(&e[20..24])));
            } else if &e[..2] == b"ST" {
                break;
            } else {
                out.push(e);
            }
            i += l;
        }
        match next {
            Some((block, off, len)) if hops < 64 => {
                hops += 1;
                su = img.read(u64::from(block) * SECTOR + u64::from(off), len as usize)?;
            }
            _ => return Ok(out),
        }
    }
}

fn walk(
    img: &mut Img,
    sector: u32,
    size: u32,
    prefix: &str,
    files: &mut Vec<FileInfo>,
    depth: usize,
) -> Result<(), ImageError> {
    if depth > 255 {
        return Err(ImageError::Malformed(
            "directories nest more than 255 deep (a loop?)".into(),
        ));
    }
    let data = img.read(u64::from(sector) * SECTOR, size as usize)?;
    let mut off = 0usize;
    let mut pending: Option<FileInfo> = None;
    while off < data.len() {
        let l = data[off] as usize;
        if l == 0 {
            off = (off / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        if l < 34 || off + l > data.len() {
            return Err(ImageError::Malformed(format!(
                "a directory record at sector {sector} has length {l}"
            )));
        }
        let r = &data[off..off + l];
        off += l;
        let name_len = r[32] as usize;
        let name = &r[33..33 + name_len];
        if name == [0] || name == [1] {
            continue;
        }
        let su_start = 33 + name_len + usize::from(name_len % 2 == 0);
        let entries = susp_entries(img, r[su_start.min(l)..].to_vec())?;
        let mut rr_name = String::new();
        let mut mode = 0;
        let mut link: Option<String> = None;
        let (mut moved_to, mut relocated) = (None, false);
        for e in &entries {
            match &e[..2] {
                b"CL" if e.len() >= 8 => moved_to = Some(le32(&e[4..8])),
                b"RE" => relocated = true,
                b"NM" => rr_name.push_str(&String::from_utf8_lossy(&e[5..])),
                b"PX" => mode = le32(&e[4..8]),
                b"SL" => {
                    // Components: root "/", ".", "..", or (possibly continued) names.
                    let t = link.get_or_insert_with(String::new);
                    let mut i = 5;
                    while i + 2 <= e.len() {
                        let (fl, cl) = (e[i], e[i + 1] as usize);
                        let bytes = &e[i + 2..(i + 2 + cl).min(e.len())];
                        let joined = t.ends_with('\u{0}');
                        if joined {
                            t.pop();
                        } else if !t.is_empty() && !t.ends_with('/') {
                            t.push('/');
                        }
                        match fl & 0x0E {
                            0x08 => t.push('/'),
                            0x02 => t.push('.'),
                            0x04 => t.push_str(".."),
                            _ => t.push_str(&String::from_utf8_lossy(bytes)),
                        }
                        if fl & 0x01 != 0 {
                            t.push('\u{0}');
                        }
                        i += 2 + cl;
                    }
                }
                _ => {}
            }
        }
        let shown = if rr_name.is_empty() {
            let n = String::from_utf8_lossy(name).into_owned();
            n.split(';')
                .next()
                .unwrap_or_default()
                .trim_end_matches('.')
                .to_string()
        } else {
            rr_name
        };
        let extent = (le32(&r[2..6]), le32(&r[10..14]));
        let is_dir = r[25] & 0x02 != 0;
        let path = format!("{prefix}/{shown}");
        match pending.as_mut() {
            Some(p) if p.path == path => {
                p.extents.push(extent);
                p.size += u64::from(extent.1);
            }
            _ => {
                if let Some(p) = pending.take() {
                    files.push(p);
                }
                pending = Some(FileInfo {
                    path: path.clone(),
                    mode,
                    size: u64::from(extent.1),
                    extents: vec![extent],
                    symlink: link,
                    is_dir,
                    moved_to,
                    relocated,
                });
            }
        }
        if r[25] & 0x80 == 0 {
            if let Some(p) = pending.take() {
                let is_dir = p.is_dir;
                files.push(p);
                if is_dir {
                    walk(img, extent.0, extent.1, &path, files, depth + 1)?;
                }
            }
        }
    }
    if let Some(p) = pending.take() {
        files.push(p);
    }
    Ok(())
}

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "volume_descriptors": self.descriptors.iter().map(|d| json!({
                "sector": d.sector, "type": d.kind, "volume_id": d.volume_id,
                "space_size": d.space_size, "root": {"sector": d.root.0, "size": d.root.1},
            })).collect::<Vec<_>>(),
            "boot_catalog": self.boot_entries.iter().map(|(p, s, n)| json!({
                "platform": if *p == 0xEF { "uefi" } else { "bios" }, "sector": s, "load_sectors_512": n,
            })).collect::<Vec<_>>(),
            "mbr": self.mbr.as_ref().map(|m| json!({
                "signature": format!("{:08x}", m.signature),
                "partitions": m.partitions.iter().map(|(t, f, n, b)| json!({"type": format!("0x{t:02x}"), "first_lba": f, "sectors": n, "bootable": b})).collect::<Vec<_>>(),
            })),
            "gpt": self.gpt.as_ref().map(|g| json!({
                "disk_guid": g.disk_guid, "valid": g.valid,
                "partitions": g.partitions.iter().map(|(t, f, l, n)| json!({"type": t, "first_lba": f, "last_lba": l, "name": n})).collect::<Vec<_>>(),
            })),
            "files": self.files.iter().map(|f| json!({
                "path": f.path, "mode": format!("{:o}", f.mode), "size": f.size, "dir": f.is_dir,
                "extents": f.extents.iter().map(|(s, n)| json!([s, n])).collect::<Vec<_>>(),
                "symlink": f.symlink, "moved_to": f.moved_to, "relocated": f.relocated,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        o.push_str("Volume descriptors\n");
        for d in &self.descriptors {
            o.push_str(&format!("  sector {:>4}  {:<13}", d.sector, d.kind));
            if !d.volume_id.is_empty() || d.space_size > 0 {
                o.push_str(&format!(
                    " volume {:?}, {} sectors, root at {} ({} bytes)",
                    d.volume_id, d.space_size, d.root.0, d.root.1
                ));
            }
            o.push('\n');
        }
        if !self.boot_entries.is_empty() {
            o.push_str("El Torito boot catalog\n");
            for (p, s, n) in &self.boot_entries {
                o.push_str(&format!(
                    "  {:<4} image at sector {s}, load {n} x 512 bytes\n",
                    if *p == 0xEF { "UEFI" } else { "BIOS" }
                ));
            }
        }
        if let Some(m) = &self.mbr {
            o.push_str(&format!("MBR (disk signature {:08x})\n", m.signature));
            for (t, f, n, b) in &m.partitions {
                o.push_str(&format!(
                    "  type 0x{t:02x} first LBA {f}, {n} sectors{}\n",
                    if *b { ", active" } else { "" }
                ));
            }
        }
        if let Some(g) = &self.gpt {
            o.push_str(&format!(
                "GPT (disk {}, {})\n",
                g.disk_guid,
                if g.valid {
                    "headers and entries valid"
                } else {
                    "INVALID"
                }
            ));
            for (t, f, l, n) in &g.partitions {
                o.push_str(&format!("  {n:<22} {t} LBA {f}..={l}\n"));
            }
        }
        o.push_str("Files\n");
        for f in &self.files {
            let ext: Vec<String> = f.extents.iter().map(|(s, n)| format!("{s}+{n}")).collect();
            o.push_str(&format!(
                "  {:>7o} {:>12} {:<24} {}",
                f.mode,
                f.size,
                ext.join(","),
                f.path
            ));
            if let Some(t) = &f.symlink {
                o.push_str(&format!(" -> {t}"));
            }
            if let Some(s) = f.moved_to {
                o.push_str(&format!(" (deep directory, moved to sector {s})"));
            }
            if f.relocated {
                o.push_str(" (relocated, hidden)");
            }
            o.push('\n');
        }
        o
    }
}

/// What [`owners`] calls the UEFI boot image (the ESP).
pub const ESP_OWNER: &str = "UEFI ESP image (FAT)";

/// A byte range of an image and the structure that owns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The structure ("primary volume descriptor", "file /etc/hostname", ...).
    pub what: String,
}

/// Which structure owns each byte range of an image, as far as its structures say: the
/// system area (MBR, GPT), volume descriptors, path tables, boot catalog and images,
/// directories of both trees, file extents and the backup GPT. Unclaimed bytes are padding
/// or Rock Ridge continuation areas.
pub fn owners(path: &Path, report: &Report) -> Result<Vec<Owner>, ImageError> {
    let f = File::open(path).map_err(|e| ImageError::io(path, e))?;
    let len = f.metadata().map_err(|e| ImageError::io(path, e))?.len();
    let mut img = Img { f, len };
    let mut out = Vec::new();
    let mut own = |start: u64, end: u64, what: String| {
        if end > start {
            out.push(Owner { start, end, what });
        }
    };
    own(0, 512, "MBR".into());
    if report.gpt.is_some() {
        own(512, 1024, "primary GPT header".into());
        own(1024, 1024 + 32 * 512, "primary GPT entries".into());
        own(len.saturating_sub(33 * 512), len, "backup GPT".into());
    }
    let mut joliet_root = None;
    for d in &report.descriptors {
        let at = d.sector * SECTOR;
        own(
            at,
            at + SECTOR,
            format!("volume descriptor at sector {} ({})", d.sector, d.kind),
        );
        if matches!(d.kind.as_str(), "primary" | "joliet" | "supplementary") {
            let b = img.read(at, SECTOR as usize)?;
            let size = u64::from(le32(&b[132..136]));
            let l = u64::from(le32(&b[140..144]));
            let m = u64::from(u32::from_be_bytes(b[148..152].try_into().expect("4 bytes")));
            own(
                l * SECTOR,
                l * SECTOR + size,
                format!("path table (L, {})", d.kind),
            );
            own(
                m * SECTOR,
                m * SECTOR + size,
                format!("path table (M, {})", d.kind),
            );
            let (s, n) = d.root;
            let root = u64::from(s) * SECTOR;
            own(
                root,
                root + u64::from(n),
                format!("root directory ({})", d.kind),
            );
            if d.kind == "joliet" {
                joliet_root = Some(d.root);
            }
        }
        if d.kind == "boot record" {
            let b = img.read(at, SECTOR as usize)?;
            let c = u64::from(le32(&b[71..75])) * SECTOR;
            own(c, c + SECTOR, "El Torito boot catalog".into());
        }
    }
    for (platform, sector, count) in &report.boot_entries {
        let at = u64::from(*sector) * SECTOR;
        let what = if *platform == 0xEF {
            ESP_OWNER
        } else {
            "BIOS boot image"
        };
        // The ESP's size is its partition's when the count does not hold it.
        let esp_len = report.gpt.as_ref().and_then(|g| {
            g.partitions
                .iter()
                .find(|p| p.1 * 512 == at)
                .map(|p| (p.2 + 1 - p.1) * 512)
        });
        let n = match esp_len {
            Some(l) if *platform == 0xEF => l,
            _ => u64::from(*count).max(1) * 512,
        };
        own(at, at + n, what.into());
    }
    for f in &report.files {
        let kind = if f.is_dir { "directory" } else { "file" };
        for (s, n) in &f.extents {
            let at = u64::from(*s) * SECTOR;
            own(at, at + u64::from(*n), format!("{kind} {}", f.path));
        }
    }
    if let Some((s, n)) = joliet_root {
        let mut jfiles = Vec::new();
        walk(&mut img, s, n, "", &mut jfiles, 0)?;
        for f in jfiles.iter().filter(|f| f.is_dir) {
            for (s, n) in &f.extents {
                let at = u64::from(*s) * SECTOR;
                own(at, at + u64::from(*n), "Joliet directory".into());
            }
        }
    }
    out.sort_by_key(|o| (o.start, o.end));
    Ok(out)
}
