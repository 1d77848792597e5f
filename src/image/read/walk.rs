//! One walk over a read image's records: every record `inspect` decoded (MBR, GPT headers and
//! entries, Apple partition map entries, volume descriptors, the boot catalog's entries), and
//! the records read at the start of the boot images (the ESP's FAT boot sector, the BIOS
//! image's boot info table), each with the structure it belongs to, the name it goes by in
//! that structure and its fields as the record's definition names and shows them. `inspect`'s
//! JSON, `snapshot` and `diff` all take the records from here, so a field has one name
//! everywhere: `entry 2.starting_lba` of the primary GPT entries, `section 1 entry 1.load_rba`
//! of the boot catalog.

use crate::image::format::eltorito::{BootInfoTable, BOOT_INFO_OFFSET};
use crate::image::format::fat::BootSector;
use crate::image::format::iso9660::SECTOR;
use crate::image::format::record::{Field, Record};
use crate::image::format::structure::Structure;
use crate::image::read::descriptor::VolumeDescriptor;
use crate::image::read::img::Img;
use crate::image::read::report::{Decoded, Report};

/// The fields of a record, as its definition names and shows them.
pub fn fields<R: Record>(r: &R) -> Vec<(String, String)> {
    let bytes = r.encode();
    R::fields()
        .into_iter()
        .map(|leaf| {
            let v = (leaf.show)(&bytes[leaf.offset..leaf.offset + leaf.len]);
            (leaf.name, v)
        })
        .collect()
}

/// Every record of a read image, in image order of their structures (`inspect` keeps them
/// in [`Report::records`]).
pub(crate) fn records(r: &Report, img: &Img) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut push = |structure: Structure, at: u64, name: String, summary: String, f| {
        out.push(Decoded {
            structure,
            at,
            name,
            summary,
            fields: f,
        })
    };
    let at_of = |s: &Structure| r.range_of(s).map_or(0, |(start, _)| start);
    if let Some(m) = &r.mbr {
        push(Structure::Mbr, 0, String::new(), "an MBR".into(), fields(m));
    }
    if let Some(g) = &r.gpt {
        let mut f = fields(&g.primary);
        f.push((
            "valid (both headers' CRCs, the entries' CRC, the backup)".into(),
            g.valid.to_string(),
        ));
        let s = Structure::PrimaryGptHeader;
        push(s.clone(), at_of(&s), String::new(), "a GPT".into(), f);
        let s = Structure::PrimaryGptEntries;
        for (i, e) in &g.entries {
            let summary = format!(
                "{:?} LBA {}..={}",
                e.partition_name.text(),
                e.starting_lba.get(),
                e.ending_lba.get()
            );
            push(
                s.clone(),
                at_of(&s),
                format!("entry {i}"),
                summary,
                fields(e),
            );
        }
        if let Some(b) = &g.backup {
            let s = Structure::BackupGptHeader;
            push(
                s.clone(),
                at_of(&s),
                String::new(),
                "a backup header".into(),
                fields(b),
            );
        }
    }
    if let Some((_, entries)) = &r.apm {
        let s = Structure::ApplePartitionMap;
        for (i, e) in entries.iter().enumerate() {
            let summary = format!("{:?}", crate::image::format::apm::text(&e.name.0));
            push(
                s.clone(),
                at_of(&s),
                format!("entry {}", i + 1),
                summary,
                fields(e),
            );
        }
    }
    for d in &r.descriptors {
        let f = match &d.vd {
            VolumeDescriptor::Primary(x) => fields(&**x),
            VolumeDescriptor::Supplementary(x) => fields(&**x),
            VolumeDescriptor::ElTorito(x) => fields(&**x),
            VolumeDescriptor::Terminator(x) => fields(&**x),
            VolumeDescriptor::Other(x) => fields(x),
        };
        let summary = format!("{} at sector {}", d.structure(), d.sector);
        push(d.structure(), d.sector * SECTOR, String::new(), summary, f);
    }
    if let Some((sector, c)) = &r.catalog {
        let (s, at) = (Structure::BootCatalog, sector * SECTOR);
        push(
            s.clone(),
            at,
            "validation entry".into(),
            "a validation entry".into(),
            fields(&c.validation),
        );
        for (i, (_, h)) in c.headers.iter().enumerate() {
            let name = format!("section header {}", i + 1);
            push(s.clone(), at, name, "a section header".into(), fields(h));
        }
        // Entries are named by their section, as xorriso's report numbers them.
        let mut in_section = 0;
        let mut last_section = None;
        for e in &c.entries {
            if e.section != last_section {
                in_section = 0;
                last_section = e.section;
            }
            in_section += 1;
            let name = match e.section {
                None => "default entry".to_string(),
                Some(sec) => format!("section {sec} entry {in_section}"),
            };
            let summary = format!("image at sector {}", e.entry.load_rba.get());
            push(s.clone(), at, name, summary, fields(&e.entry));
        }
    }
    for o in &r.structures {
        match o.structure {
            Structure::EspImage => {
                if let Some(bs) = img
                    .read(&o.structure, o.start, BootSector::LEN as u64)
                    .ok()
                    .and_then(|b| BootSector::decode(&b).ok())
                {
                    push(
                        o.structure.clone(),
                        o.start,
                        "boot sector".into(),
                        "a FAT boot sector".into(),
                        fields(&bs),
                    );
                }
            }
            Structure::BiosBootImage => {
                if let Some(t) = img
                    .read(
                        &o.structure,
                        o.start + BOOT_INFO_OFFSET as u64,
                        BootInfoTable::LEN as u64,
                    )
                    .ok()
                    .and_then(|b| BootInfoTable::decode(&b).ok())
                {
                    push(
                        o.structure.clone(),
                        o.start,
                        "boot info table".into(),
                        "a boot info table".into(),
                        fields(&t),
                    );
                }
            }
            _ => {}
        }
    }
    out
}
