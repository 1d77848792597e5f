//! `isoproof diff A.iso B.iso`: two images compared by structure. Records are decoded and
//! compared field by field with the field lists of their definitions (so both halves of a
//! both-endian number, every GPT and catalog field, are named); files are compared by path
//! (presence, mode, link, relocation, size, first differing byte), the files inside the ESPs
//! too; and only then are the byte ranges still different listed, each named by the
//! structure that owns it. Images are streamed: memory grows with their structures, not with
//! their sizes.

use crate::image::format::authenticode::Signature;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::image::format::iso9660::{DirectoryRecord, SECTOR};
use crate::image::format::record::{child_name, Record};
use crate::image::format::structure::{Owned, Structure, Tree};
use crate::image::read::content::{self, OptionChange};
use crate::image::read::fat;
use crate::image::read::inspect::{self, FileInfo, Img, ReadError, Report, Window};

/// One structural difference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The structure.
    pub structure: Structure,
    /// The field (`volume_space_size`, `partitions[1].os_type`, `size`, ...).
    pub field: String,
    /// In A (empty when the field only has a value in B's report).
    pub a: String,
    /// In B.
    pub b: String,
    /// A text file's unified diff (field `content`), one line each.
    pub lines: Vec<String>,
}

/// A byte range that differs, outside the structures compared field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Bytes that differ within it.
    pub bytes: u64,
    /// Runs of differing bytes within it.
    pub runs: u64,
    /// The structure owning it in A (or in B when A has none there).
    pub owner: Option<Structure>,
}

/// Everything that differs between two images.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Diff {
    /// Options that differ between the resolved configs the images carry
    /// (`/isoproof/config.json`), which explain the changes that follow.
    pub options: Vec<OptionChange>,
    /// Structural differences, in image order of structures.
    pub changes: Vec<Change>,
    /// Byte ranges that differ outside the structures and files reported above.
    pub ranges: Vec<Range>,
}

/// Why two images could not be compared.
#[derive(Debug, thiserror::Error)]
#[error("{}", .source.shown(.path))]
pub struct DiffError {
    /// The image that could not be read.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: ReadError,
}

impl Diff {
    /// Whether the images are identical.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.ranges.is_empty() && self.options.is_empty()
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        if self.is_empty() {
            return "identical\n".into();
        }
        let mut o = String::new();
        for l in content::option_lines(&self.options) {
            let _ = writeln!(o, "{l}");
        }
        let mut last: Option<&Structure> = None;
        for c in &self.changes {
            if last != Some(&c.structure) {
                let _ = writeln!(o, "{}", c.structure);
                last = Some(&c.structure);
            }
            if !c.lines.is_empty() {
                let _ = writeln!(o, "  {}:", c.field);
                for l in &c.lines {
                    let _ = writeln!(o, "    {l}");
                }
            } else if c.a.is_empty() {
                let _ = writeln!(o, "  {}: {}", c.field, c.b);
            } else {
                let _ = writeln!(o, "  {}: {} -> {}", c.field, c.a, c.b);
            }
        }
        if !self.ranges.is_empty() {
            let _ = writeln!(o, "other differing bytes");
            for r in &self.ranges {
                let owner = r.owner.as_ref().map_or_else(
                    || "no structure (padding, or space no structure claims)".to_string(),
                    Structure::to_string,
                );
                let (s, e, n) = (r.start, r.end, r.bytes);
                if r.runs == 1 {
                    let _ = writeln!(o, "  {s}..{e} ({n} bytes): {owner}");
                } else {
                    let _ = writeln!(o, "  {s}..{e} ({n} bytes in {} runs): {owner}", r.runs);
                }
            }
        }
        o
    }
}

/// Collects changes, skipping equal values.
#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn add(&mut self, structure: &Structure, field: &str, a: String, b: String) {
        if a != b {
            self.0.push(Change {
                structure: structure.clone(),
                field: field.to_string(),
                a,
                b,
                lines: Vec::new(),
            });
        }
    }

    /// Every field of two records that differs, named by the record's definition.
    fn record<R: Record>(&mut self, structure: &Structure, prefix: &str, a: &R, b: &R) {
        let (ea, eb) = (a.encode(), b.encode());
        for leaf in R::fields() {
            let r = leaf.offset..leaf.offset + leaf.len;
            if ea[r.clone()] != eb[r.clone()] {
                self.0.push(Change {
                    structure: structure.clone(),
                    field: child_name(prefix, &leaf.name),
                    a: (leaf.show)(&ea[r.clone()]),
                    b: (leaf.show)(&eb[r]),
                    lines: Vec::new(),
                });
            }
        }
    }

    /// Two texts' unified diff, as the field `content`.
    fn text(&mut self, structure: &Structure, a: &str, b: &str) {
        self.content(structure, content::unified(a, b));
    }

    /// A unified diff's lines, as the field `content`.
    fn content(&mut self, structure: &Structure, lines: Vec<String>) {
        self.0.push(Change {
            structure: structure.clone(),
            field: "content".into(),
            a: String::new(),
            b: String::new(),
            lines,
        });
    }

    /// A record only one side has.
    fn presence(
        &mut self,
        structure: &Structure,
        field: &str,
        a: Option<String>,
        b: Option<String>,
    ) {
        match (a, b) {
            (Some(a), None) => self.add(structure, field, a, "removed".into()),
            (None, Some(b)) => self.add(structure, field, "absent".into(), format!("added, {b}")),
            _ => {}
        }
    }
}

/// Two netboot directories compared by their records
/// ([`snapshot_dir`](crate::image::read::snapshot::snapshot_dir)): files added, removed or
/// changed — the files inside the initrd and its store too, with a diff of small texts —
/// and the initrd's archives as structures.
pub fn diff_dirs(
    a_path: &Path,
    b_path: &Path,
) -> Result<crate::image::read::snapshot::RecordDiff, DiffError> {
    use crate::image::read::snapshot::{compare, snapshot_dir};
    let read = |p: &Path| {
        snapshot_dir(p).map_err(|source| DiffError {
            path: p.to_path_buf(),
            source,
        })
    };
    Ok(compare(&read(a_path)?, &read(b_path)?))
}

/// Compares two images.
///
/// # Example
///
/// ```
/// use isoproof::image::{clock::Clock, read::diff::diff, mkiso, write::plan::Options};
///
/// let dir = tempfile::tempdir()?;
/// let src = dir.path().join("src");
/// std::fs::create_dir(&src)?;
/// std::fs::write(src.join("a.txt"), "one")?;
/// let (a, b) = (dir.path().join("a.iso"), dir.path().join("b.iso"));
/// mkiso(&src, &a, &Options::new("V", Clock::at(0)), &|| false, &mut |_| {})?;
/// mkiso(&src, &b, &Options::new("W", Clock::at(0)), &|| false, &mut |_| {})?;
/// let d = diff(&a, &b)?;
/// assert!(d.to_text().contains("volume_identifier: \"V\" -> \"W\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn diff(a_path: &Path, b_path: &Path) -> Result<Diff, DiffError> {
    let open = |p: &Path| {
        let wrap = |source| DiffError {
            path: p.to_path_buf(),
            source,
        };
        Ok::<_, DiffError>((
            inspect::inspect(p).map_err(wrap)?,
            Img::open(p).map_err(wrap)?,
        ))
    };
    let (ra, ia) = open(a_path)?;
    let (rb, ib) = open(b_path)?;
    let mut c = Changes::default();
    c.add(
        &Structure::Image,
        "size",
        ra.size.to_string(),
        rb.size.to_string(),
    );
    // A truncated image says so, as a change of the image and in any read it cut short.
    let shown =
        |t: Option<inspect::Truncation>| t.map_or("no".into(), |t| format!("yes: {}", t.claims()));
    c.add(
        &Structure::Image,
        "truncated",
        shown(ra.truncation()),
        shown(rb.truncation()),
    );
    records(&ra, &rb, &mut c);
    let read = |e: ReadError, p: &Path| {
        let t = if p == a_path {
            ra.truncation()
        } else {
            rb.truncation()
        };
        DiffError {
            path: p.to_path_buf(),
            source: inspect::explain_end(e, t),
        }
    };
    let mut options = Vec::new();
    let changed_files = files(&ra, &rb, &ia, &ib, &mut c, &mut options)
        .map_err(|(e, which)| read(e, if which == 0 { a_path } else { b_path }))?;
    directories(&ra, &rb, &ia, &ib, &mut c)
        .map_err(|(e, which)| read(e, if which == 0 { a_path } else { b_path }))?;
    if let (Some(x), Some(y)) = (esp(&ra, &ia), esp(&rb, &ib)) {
        esp_files(x, y, &mut c)
            .map_err(|(e, which)| read(e, if which == 0 { a_path } else { b_path }))?;
        signatures(&ra, &rb, &mut c);
    }
    let ranges = byte_ranges(&ra, &rb, &ia, &ib, &changed_files)
        .map_err(|(e, which)| read(e, if which == 0 { a_path } else { b_path }))?;
    Ok(Diff {
        options,
        changes: c.0,
        ranges,
    })
}

/// The records of both images ([`walk`](crate::image::read::walk), as `inspect` and
/// `snapshot` name them), paired by structure and name (the n-th of that name when a
/// structure has several): every field that differs, a record that moved, and the records
/// one image has and the other not.
fn records(ra: &Report, rb: &Report, c: &mut Changes) {
    use crate::image::read::report::Decoded;
    let keyed = |r: &'_ Report| -> Vec<((Structure, String, usize), Decoded)> {
        let mut seen: Vec<(Structure, String)> = Vec::new();
        r.records
            .iter()
            .map(|d| {
                let k = (d.structure.clone(), d.name.clone());
                let n = seen.iter().filter(|x| **x == k).count();
                seen.push(k.clone());
                ((k.0, k.1, n), d.clone())
            })
            .collect()
    };
    let (a, b) = (keyed(ra), keyed(rb));
    let presence = |d: &Decoded| {
        if d.name.is_empty() {
            "presence".to_string()
        } else {
            d.name.clone()
        }
    };
    for (key, x) in &a {
        let Some((_, y)) = b.iter().find(|(k, _)| k == key) else {
            c.presence(&x.structure, &presence(x), Some(x.summary.clone()), None);
            continue;
        };
        if x.at != y.at {
            c.add(
                &x.structure,
                &child_name(&x.name, "offset"),
                x.at.to_string(),
                y.at.to_string(),
            );
        }
        for (field, va) in &x.fields {
            if let Some((_, vb)) = y.fields.iter().find(|(f, _)| f == field) {
                c.add(
                    &x.structure,
                    &child_name(&x.name, field),
                    va.clone(),
                    vb.clone(),
                );
            }
        }
    }
    for (key, y) in &b {
        if !a.iter().any(|(k, _)| k == key) {
            c.presence(&y.structure, &presence(y), None, Some(y.summary.clone()));
        }
    }
}

/// The entries of two key-ordered maps: A's (with B's if it has one), then those only B has.
fn paired<'m, K: Ord + Clone, T>(
    a: &'m BTreeMap<K, T>,
    b: &'m BTreeMap<K, T>,
) -> impl Iterator<Item = (K, Option<&'m T>, Option<&'m T>)> {
    a.iter().map(|(k, x)| (k.clone(), Some(x), b.get(k))).chain(
        b.iter()
            .filter(|(k, _)| !a.contains_key(*k))
            .map(|(k, y)| (k.clone(), None, Some(y))),
    )
}

/// EFI binaries up to this size are compared section by section (a UKI is tens of MB).
const MAX_PE: u64 = 256 << 20;

/// Two files that differ: as texts, as PE images section by section (a UKI's `.cmdline` as
/// its text), else by their first differing byte.
fn changed_content(
    c: &mut Changes,
    s: &Structure,
    x: (&Img, &[(u64, u64)], u64),
    y: (&Img, &[(u64, u64)], u64),
    at: u64,
) -> Result<Option<(String, String)>, (ReadError, usize)> {
    if let Some((tx, ty)) = texts(x, y)? {
        c.text(s, &tx, &ty);
        return Ok(Some((tx, ty)));
    }
    let head = |(img, runs, _): (&Img, &[(u64, u64)], u64), which| {
        run_bytes(img, runs, 0, 2).map_err(|e| (e, which))
    };
    let pe = head(x, 0)? == b"MZ" && head(y, 1)? == b"MZ" && x.2 <= MAX_PE && y.2 <= MAX_PE;
    if pe {
        let a = run_bytes(x.0, x.1, 0, x.2 as usize).map_err(|e| (e, 0))?;
        let b = run_bytes(y.0, y.1, 0, y.2 as usize).map_err(|e| (e, 1))?;
        if let (Ok(sa), Ok(sb)) = (
            crate::image::format::pe::sections(&a),
            crate::image::format::pe::sections(&b),
        ) {
            pe_sections(c, s, &sa, &sb, at);
            return Ok(None);
        }
    }
    first_differing_byte(c, s, at);
    Ok(None)
}

/// Two PE images by section: a changed text section as a unified diff, another by size and
/// sha256, sections added or removed; a change outside every section as the first differing
/// header byte.
fn pe_sections(
    c: &mut Changes,
    s: &Structure,
    a: &[(String, &[u8])],
    b: &[(String, &[u8])],
    at: u64,
) {
    use sha2::{Digest, Sha256};
    let digest = |d: &[u8]| crate::hex::hex(&Sha256::digest(d))[..12].to_string();
    let ma: BTreeMap<&str, &[u8]> = a.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let mb: BTreeMap<&str, &[u8]> = b.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let mut any = false;
    for (name, x, y) in paired(&ma, &mb) {
        let field = format!("section {name}");
        match (x, y) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                any = true;
                match content::as_text(x).zip(content::as_text(y)) {
                    Some((tx, ty)) => {
                        let mut lines = vec![format!("section {name}:")];
                        lines.extend(content::unified(tx, ty));
                        c.content(s, lines);
                    }
                    None => c.add(
                        s,
                        &field,
                        format!("{} bytes sha256 {}", x.len(), digest(x)),
                        format!("{} bytes sha256 {}", y.len(), digest(y)),
                    ),
                }
            }
            (x, y) => {
                any = true;
                let show = |d: &&[u8]| format!("{} bytes", d.len());
                c.presence(s, &field, x.map(show), y.map(show));
            }
        }
    }
    if !any {
        first_differing_byte(c, s, at);
    }
}

fn first_differing_byte(c: &mut Changes, s: &Structure, at: u64) {
    c.add(
        s,
        "first differing byte",
        String::new(),
        format!("at offset {at}"),
    );
}

/// Files added, removed and changed; returns the paths whose contents differ. An error says
/// which image (0 or 1) could not be read.
fn files(
    ra: &Report,
    rb: &Report,
    ia: &Img,
    ib: &Img,
    c: &mut Changes,
    options: &mut Vec<OptionChange>,
) -> Result<Vec<String>, (ReadError, usize)> {
    let map = |r: &'_ Report| -> BTreeMap<String, FileInfo> {
        r.files
            .iter()
            .map(|f| (f.path.clone(), f.clone()))
            .collect()
    };
    let (ma, mb) = (map(ra), map(rb));
    let kind = |f: &FileInfo| {
        if f.is_dir {
            "directory"
        } else if f.symlink.is_some() {
            "symlink"
        } else {
            "file"
        }
    };
    let mut changed = Vec::new();
    for (p, a, b) in paired(&ma, &mb) {
        let s = Structure::File(p.clone());
        let (Some(a), Some(b)) = (a, b) else {
            let what = |f: &FileInfo| format!("{} of {} bytes", kind(f), f.size);
            c.presence(&s, "presence", a.map(what), b.map(what));
            continue;
        };
        c.add(&s, "mode", format!("{:o}", a.mode), format!("{:o}", b.mode));
        c.add(
            &s,
            "symlink",
            format!("{:?}", a.symlink),
            format!("{:?}", b.symlink),
        );
        c.add(
            &s,
            "relocated (RE)",
            a.relocated.to_string(),
            b.relocated.to_string(),
        );
        c.add(
            &s,
            "placeholder (CL)",
            a.moved_to.is_some().to_string(),
            b.moved_to.is_some().to_string(),
        );
        if a.is_dir || a.symlink.is_some() {
            continue;
        }
        c.add(&s, "size", a.size.to_string(), b.size.to_string());
        let (ra, rb) = (iso_runs(a), iso_runs(b));
        if let Some(at) = first_difference((ia, &ra, a.size), (ib, &rb, b.size))? {
            let texts = changed_content(c, &s, (ia, &ra, a.size), (ib, &rb, b.size), at)?;
            if let (Some((x, y)), true) = (texts, p == content::CONFIG_PATH) {
                *options = content::options(&x, &y).unwrap_or_default();
            }
            if a.extents.len() == 1 && b.extents.len() == 1 {
                containers(&p, (ia, ra[0]), (ib, rb[0]), c);
            }
            changed.push(p);
        }
    }
    Ok(changed)
}

/// The files inside a changed squashfs image or cpio archive, compared by path with the
/// rules of a golden record's files (mode, link, size, sha256, text diff).
fn containers(
    path: &str,
    (ia, ra): (&Img, (u64, u64)),
    (ib, rb): (&Img, (u64, u64)),
    c: &mut Changes,
) {
    use crate::image::read::snapshot::{container_files, FileChange};
    let (Some(x), Some(y)) = (container_files(ia, path, ra), container_files(ib, path, rb)) else {
        return;
    };
    let s = Structure::File(path.to_string());
    let (x, y) = match (x, y) {
        (Ok(x), Ok(y)) => (x, y),
        (x, y) => {
            let show = |r: &Result<_, crate::image::read::snapshot::ContainerError>| {
                r.as_ref()
                    .err()
                    .map_or_else(|| "listed".into(), ToString::to_string)
            };
            c.add(&s, "contents not listed", show(&x), show(&y));
            return;
        }
    };
    for (inner, change) in crate::image::read::snapshot::compare_files(&x, &y) {
        let s = Structure::File(inner);
        match change {
            FileChange::Added(f) => c.presence(
                &s,
                "presence",
                None,
                Some(format!("{:?} of {} bytes", f.kind, f.size)),
            ),
            FileChange::Removed(f) => c.presence(
                &s,
                "presence",
                Some(format!("{:?} of {} bytes", f.kind, f.size)),
                None,
            ),
            FileChange::Changed { fields, text } => {
                for (f, a, b) in fields {
                    c.add(&s, &f, a, b);
                }
                if !text.is_empty() {
                    c.content(&s, text);
                }
            }
        }
    }
}

/// The records of one directory extent, by identifier as readers show it (`.` and `..`
/// included), in order.
fn dir_records(
    img: &Img,
    s: &Structure,
    (start, end): (u64, u64),
) -> Result<Vec<(String, DirectoryRecord)>, ReadError> {
    let mut records = Vec::new();
    inspect::for_each_record(img, s, start, end - start, &mut |_, r| {
        records.push(r);
        Ok(())
    })?;
    let mut out = Vec::new();
    for r in records {
        let tree = match s {
            Structure::Directory(t, _) => *t,
            _ => Tree::Primary,
        };
        let name = match r.dot_name() {
            Some(dot) => dot.to_string(),
            None => inspect::identifier_text(&r.identifier, tree),
        };
        out.push((name, r));
    }
    Ok(out)
}

/// Directories both images have, record by record: a changed size or extent is shown as the
/// number it is, under the name of the file it describes.
fn directories(
    ra: &Report,
    rb: &Report,
    ia: &Img,
    ib: &Img,
    c: &mut Changes,
) -> Result<(), (ReadError, usize)> {
    for o in ra.structures.iter() {
        if !matches!(o.structure, Structure::Directory(..)) {
            continue;
        }
        let Some(other) = rb.range_of(&o.structure) else {
            continue;
        };
        let x = dir_records(ia, &o.structure, (o.start, o.end)).map_err(|e| (e, 0))?;
        let y = dir_records(ib, &o.structure, other).map_err(|e| (e, 1))?;
        let (mx, my): (BTreeMap<_, _>, BTreeMap<_, _>) =
            (x.into_iter().collect(), y.into_iter().collect());
        for (name, p, q) in paired(&mx, &my) {
            let field = format!("record {name}");
            match (p, q) {
                (Some(p), Some(q)) => {
                    c.record(&o.structure, &field, &p.header, &q.header);
                    if p.system_use != q.system_use {
                        c.add(
                            &o.structure,
                            &format!("{field}.system_use"),
                            format!("{} bytes", p.system_use.len()),
                            format!("{} bytes, other bytes", q.system_use.len()),
                        );
                    }
                }
                (p, q) => {
                    let show = |r: &DirectoryRecord| format!("extent {}", r.extent());
                    c.presence(&o.structure, &field, p.map(show), q.map(show))
                }
            }
        }
    }
    Ok(())
}

/// Both files as text, when both are text (UTF-8 without NUL, up to 1 MiB).
fn texts(
    (ia, ra, sa): (&Img, &[(u64, u64)], u64),
    (ib, rb, sb): (&Img, &[(u64, u64)], u64),
) -> Result<Option<(String, String)>, (ReadError, usize)> {
    if sa > content::MAX_TEXT || sb > content::MAX_TEXT {
        return Ok(None);
    }
    let x = run_bytes(ia, ra, 0, sa as usize).map_err(|e| (e, 0))?;
    let y = run_bytes(ib, rb, 0, sb as usize).map_err(|e| (e, 1))?;
    Ok(content::as_text(&x)
        .zip(content::as_text(&y))
        .map(|(x, y)| (x.to_string(), y.to_string())))
}

/// An image's ESP and its files; `None` without one, or when it does not read as FAT (it is
/// then compared by its bytes only).
fn esp<'a>(r: &Report, img: &'a Img) -> Option<(Vec<fat::FatFile>, Window<'a>)> {
    let (start, end) = r.range_of(&Structure::EspImage)?;
    let window = Window::new(img, start, end - start);
    let files = fat::files(&window).ok()?;
    Some((files, window))
}

/// Files inside the ESPs: presence, size and first differing byte, read a piece at a time.
fn esp_files(
    (fa, wa): (Vec<fat::FatFile>, Window<'_>),
    (fb, wb): (Vec<fat::FatFile>, Window<'_>),
    c: &mut Changes,
) -> Result<(), (ReadError, usize)> {
    let map = |files: Vec<fat::FatFile>, base: u64| -> BTreeMap<String, (u64, Vec<(u64, u64)>)> {
        files
            .into_iter()
            .map(|f| {
                let runs = f.runs.iter().map(|&(o, n)| (base + o, n)).collect();
                (f.path, (f.size, runs))
            })
            .collect()
    };
    let (ma, mb) = (map(fa, wa.start), map(fb, wb.start));
    for (p, x, y) in paired(&ma, &mb) {
        let s = Structure::EspFile(p);
        let (Some((xs, xr)), Some((ys, yr))) = (x, y) else {
            let what = |f: &(u64, Vec<(u64, u64)>)| format!("file of {} bytes", f.0);
            c.presence(&s, "presence", x.map(what), y.map(what));
            continue;
        };
        c.add(&s, "size", xs.to_string(), ys.to_string());
        let (x, y) = ((wa.img(), &xr[..], *xs), (wb.img(), &yr[..], *ys));
        if let Some(at) = first_difference(x, y)? {
            changed_content(c, &s, x, y, at)?;
        }
    }
    Ok(())
}

/// The Authenticode signatures of the EFI binaries both ESPs hold, one by one: a changed
/// signer, digest, or digest that no longer matches is named as such.
fn signatures(ra: &Report, rb: &Report, c: &mut Changes) {
    let text = |s: Option<&Signature>| s.map_or_else(|| "none".to_string(), |s| s.to_string());
    for (path, x) in &ra.signatures {
        let Some((_, y)) = rb.signatures.iter().find(|(p, _)| p == path) else {
            continue;
        };
        let s = Structure::EspFile(path.clone());
        match (x, y) {
            (Ok(x), Ok(y)) => {
                for i in 0..x.len().max(y.len()) {
                    let field = format!("signature {}", i + 1);
                    c.add(&s, &field, text(x.get(i)), text(y.get(i)));
                }
            }
            (x, y) => {
                let show = |r: &Result<Vec<Signature>, String>| match r {
                    Ok(v) => format!("{} signatures", v.len()),
                    Err(e) => format!("unreadable ({e})"),
                };
                c.add(&s, "signatures", show(x), show(y));
            }
        }
    }
}

/// An ISO file's byte runs (image offset, length) from its extents.
fn iso_runs(info: &FileInfo) -> Vec<(u64, u64)> {
    info.extents
        .iter()
        .map(|&(s, n)| (u64::from(s) * SECTOR, u64::from(n)))
        .collect()
}

/// Bytes `off..off + n` of a file laid out in `runs` (fewer where the runs end).
fn run_bytes(img: &Img, runs: &[(u64, u64)], off: u64, n: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::with_capacity(n);
    let mut base = 0u64;
    for &(at, len) in runs {
        let want = off + out.len() as u64;
        if out.len() < n && want >= base && want < base + len {
            let k = ((base + len - want) as usize).min(n - out.len());
            out.extend(img.read_upto(at + (want - base), k)?);
        }
        base += len;
    }
    Ok(out)
}

/// The first offset at which two files (image, runs, size) differ, read 1 MiB at a time:
/// memory stays at two pieces whatever the files' sizes.
fn first_difference(
    (ia, ra, sa): (&Img, &[(u64, u64)], u64),
    (ib, rb, sb): (&Img, &[(u64, u64)], u64),
) -> Result<Option<u64>, (ReadError, usize)> {
    let n = sa.max(sb);
    let mut off = 0u64;
    while off < n {
        let k = ((n - off) as usize).min(CHUNK);
        let x =
            run_bytes(ia, ra, off, k.min(sa.saturating_sub(off) as usize)).map_err(|e| (e, 0))?;
        let y =
            run_bytes(ib, rb, off, k.min(sb.saturating_sub(off) as usize)).map_err(|e| (e, 1))?;
        if let Some(i) = (0..k).find(|&i| x.get(i) != y.get(i)) {
            return Ok(Some(off + i as u64));
        }
        off += k as u64;
    }
    Ok(None)
}

const CHUNK: usize = 1 << 20;

/// Whether a structure was compared above, field by field or by content, so its differing
/// bytes are already reported.
fn reported(s: &Structure, changed_files: &[String]) -> bool {
    match s {
        Structure::Mbr
        | Structure::PrimaryGptHeader
        | Structure::PrimaryGptEntries
        | Structure::BackupGptHeader
        | Structure::BackupGptEntries
        | Structure::PrimaryVolumeDescriptor
        | Structure::BootRecord
        | Structure::SupplementaryVolumeDescriptor { .. }
        | Structure::OtherVolumeDescriptor(_)
        | Structure::Terminator
        | Structure::BootCatalog
        | Structure::Directory(..) => true,
        Structure::File(p) => changed_files.contains(p),
        _ => false,
    }
}

/// The image's byte ranges cut at every structure boundary, each with its owner (the
/// smallest structure holding it); computed once, so finding a byte's owner is a search.
struct Segments {
    starts: Vec<u64>,
    owners: Vec<Option<Structure>>,
}

impl Segments {
    fn new(a: &[Owned], b: &[Owned]) -> Segments {
        let mut starts: Vec<u64> = a.iter().chain(b).flat_map(|o| [o.start, o.end]).collect();
        starts.push(0);
        starts.sort_unstable();
        starts.dedup();
        // A sweep over the boundaries with the structures open at each, smallest first; A's
        // structures name a range first, B's name what A leaves unclaimed.
        let sweep = |os: &[Owned]| -> Vec<Option<Structure>> {
            let mut by_start: Vec<usize> = (0..os.len()).collect();
            by_start.sort_by_key(|&i| os[i].start);
            // Open structures by size (to find the smallest) and by end (to close them).
            let mut by_size: std::collections::BTreeSet<(u64, usize)> = Default::default();
            let mut by_end: std::collections::BTreeSet<(u64, usize)> = Default::default();
            let mut next = 0;
            starts
                .iter()
                .map(|&at| {
                    while next < by_start.len() && os[by_start[next]].start <= at {
                        let i = by_start[next];
                        by_size.insert((os[i].end - os[i].start, i));
                        by_end.insert((os[i].end, i));
                        next += 1;
                    }
                    while let Some(&(end, i)) = by_end.first().filter(|(end, _)| *end <= at) {
                        by_end.remove(&(end, i));
                        by_size.remove(&(os[i].end - os[i].start, i));
                    }
                    by_size.first().map(|&(_, i)| os[i].structure.clone())
                })
                .collect()
        };
        let owners = sweep(a)
            .into_iter()
            .zip(sweep(b))
            .map(|(x, y)| x.or(y))
            .collect();
        Segments { starts, owners }
    }

    /// The segment holding `at`: its owner and where it ends.
    fn at(&self, at: u64) -> (Option<&Structure>, u64) {
        let i = self.starts.partition_point(|&s| s <= at) - 1;
        let end = self.starts.get(i + 1).copied().unwrap_or(u64::MAX);
        (self.owners[i].as_ref(), end)
    }
}

/// The differing byte ranges, streamed 1 MiB at a time and merged per owning structure.
fn byte_ranges(
    ra: &Report,
    rb: &Report,
    ia: &Img,
    ib: &Img,
    changed_files: &[String],
) -> Result<Vec<Range>, (ReadError, usize)> {
    let seg = Segments::new(&ra.structures, &rb.structures);
    let mut out: Vec<Range> = Vec::new();
    let mut last_diff = None::<u64>;
    let len = ia.len.max(ib.len);
    let mut off = 0u64;
    while off < len {
        let x = ia.read_upto(off, CHUNK).map_err(|e| (e, 0))?;
        let y = ib.read_upto(off, CHUNK).map_err(|e| (e, 1))?;
        let n = x.len().max(y.len());
        let mut i = 0;
        while i < n {
            if x.get(i) == y.get(i) {
                i += 1;
                continue;
            }
            let at = off + i as u64;
            let (owner, seg_end) = seg.at(at);
            // The differing run within this segment and chunk.
            let stop = ((seg_end - off) as usize).min(n);
            let mut j = i;
            while j < stop && x.get(j) != y.get(j) {
                j += 1;
            }
            let end = off + j as u64;
            if !owner.is_some_and(|o| reported(o, changed_files)) {
                let new_run = last_diff != Some(at);
                match out.last_mut() {
                    Some(r) if r.owner.as_ref() == owner => {
                        r.end = end;
                        r.bytes += end - at;
                        r.runs += u64::from(new_run);
                    }
                    _ => out.push(Range {
                        start: at,
                        end,
                        bytes: end - at,
                        runs: 1,
                        owner: owner.cloned(),
                    }),
                }
            }
            last_diff = Some(end);
            i = j;
        }
        off += CHUNK as u64;
    }
    Ok(out)
}

impl DiffError {
    /// Its exit class: an image that cannot be read is bad input.
    pub fn class(&self) -> crate::exit::Class {
        self.source.class()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_name_the_smallest_owner() {
        let o = |start, end, s| Owned {
            start,
            end,
            structure: s,
        };
        let a = vec![
            o(0, 100, Structure::File("/big".into())),
            o(10, 20, Structure::EspImage),
        ];
        let b = vec![o(200, 300, Structure::Directory(Tree::Primary, "/".into()))];
        let s = Segments::new(&a, &b);
        assert_eq!(s.at(5), (Some(&Structure::File("/big".into())), 10));
        assert_eq!(s.at(15), (Some(&Structure::EspImage), 20));
        assert_eq!(s.at(25), (Some(&Structure::File("/big".into())), 100));
        assert_eq!(s.at(150), (None, 200));
        assert_eq!(
            s.at(250),
            (Some(&Structure::Directory(Tree::Primary, "/".into())), 300)
        );
        assert_eq!(s.at(400), (None, u64::MAX));
    }
}
