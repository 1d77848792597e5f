//! `isoproof diff A.iso B.iso`: differences by structure — volume descriptor fields, boot
//! catalog entries, MBR and GPT fields, files added, removed or changed (size, mode, link,
//! relocation, first differing byte), the same for the files inside the UEFI ESP — and only
//! then the byte ranges still different, each named by the structure that owns it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::image::fat;
use crate::image::inspect::{self, FileInfo, Report, ESP_OWNER};
use crate::image::iso9660::SECTOR;
use crate::image::ImageError;

/// One structural difference.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The structure ("primary volume descriptor", "file /etc/hostname", "GPT").
    pub structure: String,
    /// The field ("volume_id", "size", "first differing byte").
    pub field: String,
    /// In A.
    pub a: String,
    /// In B.
    pub b: String,
}

/// Everything that differs between two images.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Diff {
    /// Structural differences, in image order of structures.
    pub changes: Vec<Change>,
    /// Byte ranges that differ outside the files reported above: (start, end, owner).
    pub ranges: Vec<(u64, u64, String)>,
}

impl Diff {
    /// Whether the images are identical.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.ranges.is_empty()
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "identical\n".into();
        }
        let mut o = String::new();
        let mut last = "";
        for c in &self.changes {
            if c.structure != last {
                let _ = writeln!(o, "{}", c.structure);
                last = &c.structure;
            }
            if c.a.is_empty() {
                let _ = writeln!(o, "  {}: {}", c.field, c.b);
            } else {
                let _ = writeln!(o, "  {}: {} -> {}", c.field, c.a, c.b);
            }
        }
        if !self.ranges.is_empty() {
            let _ = writeln!(o, "other differing bytes");
            // Neighbouring ranges of one structure on one line: a changed string in a boot
            // program or a FAT differs in dozens of little runs.
            let mut i = 0;
            while i < self.ranges.len() {
                let what = &self.ranges[i].2;
                let j = i + self.ranges[i..].iter().take_while(|r| &r.2 == what).count();
                let run = &self.ranges[i..j];
                let (start, end) = (run[0].0, run[run.len() - 1].1);
                let bytes: u64 = run.iter().map(|(s, e, _)| e - s).sum();
                if run.len() == 1 {
                    let _ = writeln!(o, "  {start}..{end} ({bytes} bytes): {what}");
                } else {
                    let _ = writeln!(
                        o,
                        "  {start}..{end} ({bytes} bytes in {} runs): {what}",
                        run.len()
                    );
                }
                i = j;
            }
        }
        o
    }
}

/// Fields of a primary or supplementary volume descriptor (ECMA-119 8.4): name, offset,
/// length, and whether it is text.
const VD_FIELDS: &[(&str, usize, usize, bool)] = &[
    ("type", 0, 1, false),
    ("system_id", 8, 32, true),
    ("volume_id", 40, 32, true),
    ("space_size", 80, 4, false),
    ("escape_sequences", 88, 32, false),
    ("set_size", 120, 4, false),
    ("sequence_number", 124, 4, false),
    ("block_size", 128, 4, false),
    ("path_table_size", 132, 4, false),
    ("path_table_l", 140, 4, false),
    ("path_table_m", 148, 4, false),
    ("root_directory_record", 156, 34, false),
    ("volume_set_id", 190, 128, true),
    ("publisher", 318, 128, true),
    ("preparer", 446, 128, true),
    ("application", 574, 128, true),
    ("copyright_file", 702, 37, true),
    ("abstract_file", 739, 37, true),
    ("bibliographic_file", 776, 37, true),
    ("creation_date", 813, 17, true),
    ("modification_date", 830, 17, true),
    ("expiration_date", 847, 17, true),
    ("effective_date", 864, 17, true),
    ("file_structure_version", 881, 1, false),
    ("application_use", 883, 512, false),
];

fn open(p: &Path) -> Result<(File, u64), ImageError> {
    let f = File::open(p).map_err(|e| ImageError::io(p, e))?;
    let len = f.metadata().map_err(|e| ImageError::io(p, e))?.len();
    Ok((f, len))
}

fn read_at(f: &mut File, p: &Path, off: u64, n: usize) -> Result<Vec<u8>, ImageError> {
    let mut b = vec![0u8; n];
    f.seek(SeekFrom::Start(off))
        .map_err(|e| ImageError::io(p, e))?;
    let mut got = 0;
    while got < n {
        let k = f.read(&mut b[got..]).map_err(|e| ImageError::io(p, e))?;
        if k == 0 {
            break;
        }
        got += k;
    }
    b.truncate(got);
    Ok(b)
}

fn show(b: &[u8], text: bool) -> String {
    if text {
        format!("{:?}", String::from_utf8_lossy(b).trim_end())
    } else if b.len() <= 8 {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        let diff = b.iter().filter(|x| **x != 0).count();
        format!("{} bytes ({diff} non-zero)", b.len())
    }
}

/// Compares two images.
pub fn diff(a_path: &Path, b_path: &Path) -> Result<Diff, ImageError> {
    let ra = inspect::inspect(a_path)?;
    let rb = inspect::inspect(b_path)?;
    let (mut fa, la) = open(a_path)?;
    let (mut fb, lb) = open(b_path)?;
    let mut d = Diff::default();
    let mut change = |structure: &str, field: &str, a: String, b: String| {
        if a != b {
            d.changes.push(Change {
                structure: structure.into(),
                field: field.into(),
                a,
                b,
            });
        }
    };
    change("image", "size", la.to_string(), lb.to_string());

    // Volume descriptors, field by field.
    for i in 0..ra.descriptors.len().max(rb.descriptors.len()) {
        let (da, db) = (ra.descriptors.get(i), rb.descriptors.get(i));
        let name = |x: Option<&inspect::Descriptor>| {
            x.map_or("none".to_string(), |x| {
                format!("{} at sector {}", x.kind, x.sector)
            })
        };
        let structure = format!("volume descriptor {}", i + 1);
        change(&structure, "kind", name(da), name(db));
        if let (Some(da), Some(db)) = (da, db) {
            if da.kind == db.kind
                && matches!(da.kind.as_str(), "primary" | "joliet" | "supplementary")
            {
                let ba = read_at(&mut fa, a_path, da.sector * SECTOR, SECTOR as usize)?;
                let bb = read_at(&mut fb, b_path, db.sector * SECTOR, SECTOR as usize)?;
                let s = format!("{} volume descriptor", da.kind);
                for (field, off, len, text) in VD_FIELDS {
                    let (x, y) = (&ba[*off..off + len], &bb[*off..off + len]);
                    let text = *text && da.kind == "primary";
                    if x != y {
                        change(&s, field, show(x, text), show(y, text));
                    }
                }
            }
        }
    }
    // Boot catalog.
    let entry = |e: Option<&(u8, u32, u16)>| {
        e.map_or("none".into(), |(p, s, n)| {
            format!(
                "{} image at sector {s}, {n} x 512 bytes",
                if *p == 0xEF { "UEFI" } else { "BIOS" }
            )
        })
    };
    for i in 0..ra.boot_entries.len().max(rb.boot_entries.len()) {
        change(
            "El Torito boot catalog",
            &format!("entry {}", i + 1),
            entry(ra.boot_entries.get(i)),
            entry(rb.boot_entries.get(i)),
        );
    }
    mbr_gpt(&ra, &rb, &mut change);
    let changed_files = files(&ra, &rb, (&mut fa, a_path), (&mut fb, b_path), &mut change)?;
    let oa = inspect::owners(a_path, &ra)?;
    let ob = inspect::owners(b_path, &rb)?;
    if let (Some(x), Some(y)) = (esp(&mut fa, a_path, &oa)?, esp(&mut fb, b_path, &ob)?) {
        esp_files(&x, &y, &mut change);
    }

    // Leftover byte ranges, each named by its owner in A (or B when A has none there).
    let owner = |at: u64| -> String {
        let find = |os: &[inspect::Owner]| {
            os.iter()
                .filter(|o| o.start <= at && at < o.end)
                .min_by_key(|o| o.end - o.start)
                .map(|o| o.what.clone())
        };
        find(&oa)
            .or_else(|| find(&ob))
            .unwrap_or_else(|| "no structure (padding or a Rock Ridge continuation area)".into())
    };
    const CHUNK: usize = 1 << 20;
    let mut raw: Vec<(u64, u64)> = Vec::new();
    let mut off = 0u64;
    while off < la.max(lb) {
        let x = read_at(&mut fa, a_path, off, CHUNK)?;
        let y = read_at(&mut fb, b_path, off, CHUNK)?;
        let n = x.len().max(y.len());
        for i in 0..n {
            if x.get(i) != y.get(i) {
                let at = off + i as u64;
                match raw.last_mut() {
                    Some(r) if r.1 == at => r.1 = at + 1,
                    _ => raw.push((at, at + 1)),
                }
            }
        }
        off += CHUNK as u64;
    }
    // Split ranges at owner boundaries; drop what belongs to files already reported.
    let boundary = |at: u64| -> u64 {
        oa.iter()
            .chain(&ob)
            .flat_map(|o| [o.start, o.end])
            .filter(|&x| x > at)
            .min()
            .unwrap_or(u64::MAX)
    };
    for (s, e) in raw {
        let mut at = s;
        while at < e {
            let next = boundary(at).min(e);
            let what = owner(at);
            let in_reported = changed_files.iter().any(|f| what == format!("file {f}"));
            if !in_reported {
                match d.ranges.last_mut() {
                    Some(r) if r.1 == at && r.2 == what => r.1 = next,
                    _ => d.ranges.push((at, next, what)),
                }
            }
            at = next;
        }
    }
    Ok(d)
}

fn mbr_gpt(ra: &Report, rb: &Report, change: &mut impl FnMut(&str, &str, String, String)) {
    let sig = |r: &Report| {
        r.mbr
            .as_ref()
            .map_or("none".into(), |m| format!("{:08x}", m.signature))
    };
    change("MBR", "disk signature", sig(ra), sig(rb));
    let parts = |r: &Report| {
        r.mbr.as_ref().map_or(Vec::new(), |m| {
            m.partitions
                .iter()
                .map(|(t, f, n, b)| {
                    format!(
                        "type 0x{t:02x} LBA {f} +{n}{}",
                        if *b { " active" } else { "" }
                    )
                })
                .collect()
        })
    };
    let (pa, pb) = (parts(ra), parts(rb));
    for i in 0..pa.len().max(pb.len()) {
        let g = |v: &Vec<String>| v.get(i).cloned().unwrap_or_else(|| "none".into());
        change("MBR", &format!("partition {}", i + 1), g(&pa), g(&pb));
    }
    let guid = |r: &Report| {
        r.gpt
            .as_ref()
            .map_or("none".into(), |g| g.disk_guid.clone())
    };
    change("GPT", "disk GUID", guid(ra), guid(rb));
    let valid = |r: &Report| {
        r.gpt
            .as_ref()
            .map_or("none".into(), |g| g.valid.to_string())
    };
    change("GPT", "headers and CRCs valid", valid(ra), valid(rb));
    let gparts = |r: &Report| {
        r.gpt.as_ref().map_or(Vec::new(), |g| {
            g.partitions
                .iter()
                .map(|(t, f, l, n)| format!("{n:?} type {t} LBA {f}..={l}"))
                .collect()
        })
    };
    let (ga, gb) = (gparts(ra), gparts(rb));
    for i in 0..ga.len().max(gb.len()) {
        let g = |v: &Vec<String>| v.get(i).cloned().unwrap_or_else(|| "none".into());
        change("GPT", &format!("partition {}", i + 1), g(&ga), g(&gb));
    }
}

/// Files added, removed and changed; returns the paths whose contents differ.
fn files(
    ra: &Report,
    rb: &Report,
    (fa, pa): (&mut File, &Path),
    (fb, pb): (&mut File, &Path),
    change: &mut impl FnMut(&str, &str, String, String),
) -> Result<Vec<String>, ImageError> {
    let map = |r: &Report| -> BTreeMap<String, FileInfo> {
        r.files
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    };
    let (ma, mb) = (map(ra), map(rb));
    let mut changed = Vec::new();
    let kind = |f: &FileInfo| {
        if f.is_dir {
            "directory"
        } else if f.symlink.is_some() {
            "symlink"
        } else {
            "file"
        }
    };
    for (p, a, b) in paired(&ma, &mb) {
        let s = format!("file {p}");
        let (Some(a), Some(b)) = (a, b) else {
            presence(
                &s,
                a,
                b,
                |f| format!("{} of {} bytes", kind(f), f.size),
                change,
            );
            continue;
        };
        change(&s, "mode", format!("{:o}", a.mode), format!("{:o}", b.mode));
        change(
            &s,
            "symlink",
            format!("{:?}", a.symlink),
            format!("{:?}", b.symlink),
        );
        change(
            &s,
            "relocated (RE)",
            a.relocated.to_string(),
            b.relocated.to_string(),
        );
        change(
            &s,
            "placeholder (CL)",
            a.moved_to.is_some().to_string(),
            b.moved_to.is_some().to_string(),
        );
        if a.is_dir || a.symlink.is_some() {
            continue;
        }
        change(&s, "size", a.size.to_string(), b.size.to_string());
        if let Some(at) = first_difference(a, b, (fa, pa), (fb, pb))? {
            first_differing_byte(&s, at, change);
            changed.push(p.clone());
        }
    }
    Ok(changed)
}

/// The paths of two path-keyed maps in report order: A's (with B's entry if it has one), then
/// those only B has.
fn paired<'m, T>(
    a: &'m BTreeMap<String, T>,
    b: &'m BTreeMap<String, T>,
) -> impl Iterator<Item = (&'m String, Option<&'m T>, Option<&'m T>)> {
    a.iter().map(|(p, x)| (p, Some(x), b.get(p))).chain(
        b.iter()
            .filter(|(p, _)| !a.contains_key(*p))
            .map(|(p, y)| (p, None, Some(y))),
    )
}

/// A path only one image has: "removed" or "added", with what it was or is.
fn presence<T>(
    s: &str,
    a: Option<&T>,
    b: Option<&T>,
    what: impl Fn(&T) -> String,
    change: &mut impl FnMut(&str, &str, String, String),
) {
    match (a, b) {
        (Some(a), None) => change(s, "presence", what(a), "removed".into()),
        (None, Some(b)) => change(
            s,
            "presence",
            "absent".into(),
            format!("added, {}", what(b)),
        ),
        _ => {}
    }
}

fn first_differing_byte(s: &str, at: u64, change: &mut impl FnMut(&str, &str, String, String)) {
    change(
        s,
        "first differing byte",
        String::new(),
        format!("at offset {at}"),
    );
}

/// ESPs larger than this are not read into memory for a file-by-file comparison.
const ESP_LIMIT: u64 = 512 << 20;

/// The files of an image's UEFI ESP by path, when it has one that reads as FAT.
fn esp(
    f: &mut File,
    p: &Path,
    owners: &[inspect::Owner],
) -> Result<Option<BTreeMap<String, Vec<u8>>>, ImageError> {
    let Some(o) = owners.iter().find(|o| o.what == ESP_OWNER) else {
        return Ok(None);
    };
    if o.end - o.start > ESP_LIMIT {
        return Ok(None);
    }
    let bytes = read_at(f, p, o.start, (o.end - o.start) as usize)?;
    Ok(fat::read(&bytes)
        .ok()
        .map(|files| files.into_iter().collect()))
}

/// Files inside the ESPs: presence, size and first differing byte.
fn esp_files(
    ma: &BTreeMap<String, Vec<u8>>,
    mb: &BTreeMap<String, Vec<u8>>,
    change: &mut impl FnMut(&str, &str, String, String),
) {
    for (p, x, y) in paired(ma, mb) {
        let s = format!("ESP file {p}");
        let (Some(x), Some(y)) = (x, y) else {
            presence(&s, x, y, |f| format!("file of {} bytes", f.len()), change);
            continue;
        };
        change(&s, "size", x.len().to_string(), y.len().to_string());
        let at = x.iter().zip(y.iter()).position(|(u, v)| u != v);
        if let Some(at) = at.or((x.len() != y.len()).then(|| x.len().min(y.len()))) {
            first_differing_byte(&s, at as u64, change);
        }
    }
}

fn first_difference(
    a: &FileInfo,
    b: &FileInfo,
    (fa, pa): (&mut File, &Path),
    (fb, pb): (&mut File, &Path),
) -> Result<Option<u64>, ImageError> {
    // A file's bytes, extent after extent.
    fn read(
        f: &mut File,
        p: &Path,
        info: &FileInfo,
        off: u64,
        n: usize,
    ) -> Result<Vec<u8>, ImageError> {
        let mut out = Vec::with_capacity(n);
        let mut base = 0u64;
        for (s, len) in &info.extents {
            let len = u64::from(*len);
            let want_start = off + out.len() as u64;
            if out.len() < n && want_start < base + len && want_start >= base {
                let k = ((base + len - want_start) as usize).min(n - out.len());
                out.extend(read_at(
                    f,
                    p,
                    u64::from(*s) * SECTOR + (want_start - base),
                    k,
                )?);
            }
            base += len;
        }
        Ok(out)
    }
    let n = a.size.max(b.size);
    let mut off = 0u64;
    while off < n {
        let k = ((n - off) as usize).min(1 << 20);
        let x = read(fa, pa, a, off, k)?;
        let y = read(fb, pb, b, off, k)?;
        if let Some(i) = (0..k).find(|&i| x.get(i) != y.get(i)) {
            return Ok(Some(off + i as u64));
        }
        off += k as u64;
    }
    Ok(None)
}
