//! A read image shown to people and programs: `inspect`'s text (in xorriso's columns where
//! xorriso reports the same things) and its JSON, from the [`Report`] alone.

use serde_json::{json, Value};

use crate::image::format::apm;
use crate::image::format::eltorito::{PLATFORM_EFI, PLATFORM_X86};
use crate::image::format::iso9660::SECTOR;
use crate::image::read::report::Report;

impl Report {
    /// The report as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "size": self.size,
            // Every decoded record, with the names snapshots and diffs give its fields.
            "records": self.records.iter().map(|d| json!({
                "structure": d.structure.to_string(),
                "offset": d.at,
                "name": d.name,
                "fields": d.fields.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect::<serde_json::Map<String, Value>>(),
            })).collect::<Vec<_>>(),
            "truncated": self.truncation().map(|t| json!({
                "claimed_sectors": t.claimed_sectors,
                "claimed_bytes": t.claimed_sectors * SECTOR,
                "size": t.size,
            })),
            "volume_descriptors": self.descriptors.iter().map(|d| {
                let mut v = json!({"sector": d.sector, "type": d.structure().to_string()});
                if let Some((id, space, root)) = d.volume() {
                    v["volume_id"] = id.into();
                    v["space_size"] = space.into();
                    v["root"] = json!({"sector": root.0, "size": root.1});
                }
                v
            }).collect::<Vec<_>>(),
            "extensions": self.extensions,
            "apm": self.apm.as_ref().map(|(bs, entries)| json!({
                "block_size": bs,
                "partitions": entries.iter().map(|e| json!({
                    "start": e.start.get(), "blocks": e.blocks.get(),
                    "type": apm::text(&e.partition_type.0), "name": apm::text(&e.name.0),
                })).collect::<Vec<_>>(),
            })),
            "boot_catalog": self.catalog.as_ref().map_or(Vec::new(), |(_, c)| c.entries.iter().enumerate().map(|(i, e)| json!({
                "platform": platform_name(e.platform),
                "section": e.section,
                "bootable": e.entry.boot_indicator == crate::image::format::eltorito::BOOTABLE,
                "emulation": e.entry.boot_media_type,
                "emulation_name": emulation_name(e.entry.boot_media_type),
                "system_type": e.entry.system_type,
                "boot_info_table": self.boot_info_tables.get(i).copied().unwrap_or(false),
                "load_segment": e.entry.load_segment.get(),
                "sector": e.entry.load_rba.get(),
                "load_sectors_512": e.entry.sector_count.get(),
            })).collect()),
            "mbr": self.mbr.as_ref().map(|m| json!({
                "signature": format!("{:08x}", m.disk_signature.get()),
                "partitions": m.partitions.iter().filter(|p| p.in_use()).map(|p| json!({
                    "status": format!("0x{:02x}", p.boot_indicator),
                    "type": format!("0x{:02x}", p.os_type), "first_lba": p.starting_lba.get(),
                    "sectors": p.size_in_lba.get(), "bootable": p.active(),
                })).collect::<Vec<_>>(),
            })),
            "gpt": self.gpt.as_ref().map(|g| json!({
                "disk_guid": g.primary.disk_guid.to_string(), "valid": g.valid,
                "partitions": g.entries.iter().map(|(i, p)| json!({
                    "index": i, "type": p.partition_type_guid.to_string(),
                    "guid": p.unique_partition_guid.to_string(),
                    "first_lba": p.starting_lba.get(), "last_lba": p.ending_lba.get(),
                    "name": p.partition_name.text(),
                })).collect::<Vec<_>>(),
            })),
            "files": self.files.iter().map(|f| json!({
                "path": f.path, "mode": format!("{:o}", f.mode), "size": f.size, "dir": f.is_dir,
                "extents": f.extents.iter().map(|(s, n)| json!([s, n])).collect::<Vec<_>>(),
                "symlink": f.symlink, "moved_to": f.moved_to, "relocated": f.relocated,
                "zisofs": f.zisofs.as_ref().map(|(alg, size)| json!({"algorithm": alg, "size": size})),
            })).collect::<Vec<_>>(),
            "structures": self.structures.iter().map(|o| json!({
                "structure": o.structure.to_string(), "start": o.start, "end": o.end,
            })).collect::<Vec<_>>(),
            // Every EFI binary of the ESP with its Authenticode signatures.
            "efi_binaries": self.signatures.iter().map(|(path, sigs)| match sigs {
                Ok(sigs) => json!({"path": path, "signatures": sigs.iter().map(|s| json!({
                    "signer": s.signer, "digest_algorithm": s.digest_algorithm,
                    "digest": s.digest, "digest_matches": s.matches,
                })).collect::<Vec<_>>()}),
                Err(e) => json!({"path": path, "error": e}),
            }).collect::<Vec<_>>(),
        })
    }

    /// The report as text.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        if let Some(t) = self.truncation() {
            let _ = writeln!(o, "TRUNCATED: {t}");
        }
        let _ = writeln!(o, "Volume descriptors");
        for d in &self.descriptors {
            let _ = write!(o, "  sector {:>4}  {}", d.sector, d.structure());
            if let Some((id, space, root)) = d.volume() {
                let _ = write!(
                    o,
                    ": volume {id:?}, {space} sectors, root at {} ({} bytes)",
                    root.0, root.1
                );
            }
            o.push('\n');
        }
        if !self.extensions.is_empty() {
            let _ = writeln!(o, "SUSP extensions (ER of the root)");
            for e in &self.extensions {
                let _ = writeln!(o, "  {e}");
            }
        }
        if let Some((sector, c)) = &self.catalog {
            // The columns of `xorriso -report_el_torito plain`.
            let _ = writeln!(o, "El Torito boot catalog (sector {sector})");
            let _ = writeln!(
                o,
                "  {:>2}  {:<7} {:<4} {:<1}  {:<6} {:<6} {:<4} {:>5} {:>10}  Boot info table",
                "N", "Section", "Pltf", "B", "Emul", "Ld_seg", "Hdpt", "Ldsiz", "LBA",
            );
            for (i, e) in c.entries.iter().enumerate() {
                let section = e.section.map_or("default".to_string(), |s| s.to_string());
                let _ = writeln!(
                    o,
                    "  {:>2}  {:<7} {:<4} {:<1}  {:<6} 0x{:04x} 0x{:02x} {:>5} {:>10}  {}",
                    i + 1,
                    section,
                    platform_short(e.platform),
                    if e.entry.boot_indicator == crate::image::format::eltorito::BOOTABLE {
                        "y"
                    } else {
                        "n"
                    },
                    emulation_name(e.entry.boot_media_type),
                    e.entry.load_segment.get(),
                    e.entry.system_type,
                    e.entry.sector_count.get(),
                    e.entry.load_rba.get(),
                    if self.boot_info_tables.get(i).copied().unwrap_or(false) {
                        "yes"
                    } else {
                        "no"
                    },
                );
            }
        }
        if let Some(m) = &self.mbr {
            // The columns of `xorriso -report_system_area plain`.
            let _ = writeln!(o, "MBR (disk signature {:08x})", m.disk_signature.get());
            let _ = writeln!(
                o,
                "  {:>2}  {:<6}  {:<4}  {:>10}  {:>10}",
                "N", "Status", "Type", "Start", "Blocks"
            );
            for (i, p) in m.partitions.iter().enumerate().filter(|(_, p)| p.in_use()) {
                let _ = writeln!(
                    o,
                    "  {:>2}  0x{:02x}    0x{:02x}  {:>10}  {:>10}",
                    i + 1,
                    p.boot_indicator,
                    p.os_type,
                    p.starting_lba.get(),
                    p.size_in_lba.get(),
                );
            }
        }
        if let Some(g) = &self.gpt {
            let _ = writeln!(
                o,
                "GPT (disk {}, {})",
                g.primary.disk_guid,
                if g.valid {
                    "headers and entries valid"
                } else {
                    "INVALID"
                }
            );
            let _ = writeln!(
                o,
                "  {:>2}  {:>10}  {:>10}  {:<36}  Name",
                "N", "Start", "Size", "Type GUID"
            );
            for (i, p) in &g.entries {
                let (first, last) = (p.starting_lba.get(), p.ending_lba.get());
                let _ = writeln!(
                    o,
                    "  {:>2}  {:>10}  {:>10}  {}  {}",
                    i,
                    first,
                    (last + 1).saturating_sub(first),
                    p.partition_type_guid,
                    p.partition_name.text(),
                );
            }
        }
        if let Some((bs, entries)) = &self.apm {
            let _ = writeln!(o, "Apple partition map (block size {bs})");
            let _ = writeln!(
                o,
                "  {:>2}  {:>10}  {:>10}  {:<24}  Name",
                "N", "Start", "Blocks", "Type"
            );
            for (i, e) in entries.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "  {:>2}  {:>10}  {:>10}  {:<24}  {}",
                    i + 1,
                    e.start.get(),
                    e.blocks.get(),
                    apm::text(&e.partition_type.0),
                    apm::text(&e.name.0),
                );
            }
        }
        let _ = writeln!(o, "Files");
        let _ = writeln!(
            o,
            "  {:>7} {:>12} {:<24} path",
            "mode", "bytes", "extents (sector+bytes)"
        );
        for f in &self.files {
            let ext: Vec<String> = f.extents.iter().map(|(s, n)| format!("{s}+{n}")).collect();
            let _ = write!(
                o,
                "  {:>7o} {:>12} {:<24} {}",
                f.mode,
                f.size,
                ext.join(","),
                f.path
            );
            if let Some(t) = &f.symlink {
                let _ = write!(o, " -> {t}");
            }
            if let Some(s) = f.moved_to {
                let _ = write!(o, " (deep directory, moved to sector {s})");
            }
            if f.relocated {
                o.push_str(" (relocated, hidden)");
            }
            if let Some((alg, size)) = &f.zisofs {
                let _ = write!(o, " (zisofs {alg}, {size} bytes uncompressed)");
            }
            o.push('\n');
        }
        if !self.signatures.is_empty() {
            let _ = writeln!(o, "EFI binaries in the ESP (Authenticode signatures)");
            for (path, sigs) in &self.signatures {
                match sigs {
                    Ok(s) if s.is_empty() => {
                        let _ = writeln!(o, "  {path}  unsigned");
                    }
                    Ok(s) => {
                        let _ = writeln!(o, "  {path}");
                        for (i, sig) in s.iter().enumerate() {
                            let _ = writeln!(o, "    {}  {sig}", i + 1);
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(o, "  {path}  signatures unreadable: {e}");
                    }
                }
            }
        }
        o
    }
}

/// xorriso's platform names.
fn platform_short(p: u8) -> String {
    match p {
        PLATFORM_X86 => "BIOS".into(),
        PLATFORM_EFI => "UEFI".into(),
        0x01 => "PPC".into(),
        0x02 => "Mac".into(),
        other => format!("0x{other:02x}"),
    }
}

/// El Torito's boot media types, by xorriso's names.
fn emulation_name(m: u8) -> String {
    match m & 0x0F {
        0 => "none".into(),
        1 => "fd1.2".into(),
        2 => "fd1.44".into(),
        3 => "fd2.88".into(),
        4 => "hd".into(),
        other => format!("0x{other:02x}"),
    }
}

fn platform_name(p: u8) -> String {
    match p {
        PLATFORM_X86 => "bios".into(),
        PLATFORM_EFI => "uefi".into(),
        0x01 => "powerpc".into(),
        0x02 => "mac".into(),
        other => format!("0x{other:02x}"),
    }
}
