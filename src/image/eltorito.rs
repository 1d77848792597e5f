//! El Torito (1.0): the boot catalog — validation entry, default entry, section headers and
//! section entries — and the boot info table that `mkisofs -boot-info-table` patches into a
//! BIOS boot image.

/// Platform ID of BIOS (x86) entries.
pub const PLATFORM_X86: u8 = 0x00;
/// Platform ID of UEFI entries.
pub const PLATFORM_EFI: u8 = 0xEF;

/// One bootable image in the catalog (no emulation).
#[derive(Clone, Debug, PartialEq)]
pub struct BootEntry {
    /// [`PLATFORM_X86`] or [`PLATFORM_EFI`].
    pub platform: u8,
    /// Sector of the image.
    pub sector: u32,
    /// Sectors to load, in 512-byte units (El Torito's "virtual sectors").
    pub load_count: u16,
}

fn entry_bytes(e: &BootEntry) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 0x88; // bootable
    b[1] = 0; // no emulation
    b[2..4].copy_from_slice(&0u16.to_le_bytes()); // load segment 0 = 0x7C0
    b[4] = 0; // system type
    b[6..8].copy_from_slice(&e.load_count.to_le_bytes());
    b[8..12].copy_from_slice(&e.sector.to_le_bytes());
    b
}

/// The 16-bit sum of little-endian words a validation entry's checksum makes zero.
pub fn word_sum(b: &[u8]) -> u16 {
    b.chunks(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    })
}

/// Encodes the 2048-byte boot catalog: the first entry is the default, every further entry
/// gets its own section (the last header marked final, 0x91), as xorriso lays them out.
pub fn catalog(entries: &[BootEntry]) -> [u8; 2048] {
    let mut c = [0u8; 2048];
    let first = entries.first().map_or(PLATFORM_X86, |e| e.platform);
    // Validation entry (2.1): header 1, platform, key bytes 55 AA, words summing to 0.
    c[0] = 1;
    c[1] = first;
    c[30] = 0x55;
    c[31] = 0xAA;
    let check = 0u16.wrapping_sub(word_sum(&c[..32]));
    c[28..30].copy_from_slice(&check.to_le_bytes());
    let mut off = 32;
    if let Some(d) = entries.first() {
        c[off..off + 32].copy_from_slice(&entry_bytes(d));
        off += 32;
    }
    let rest = entries.iter().skip(1).collect::<Vec<_>>();
    for (i, e) in rest.iter().enumerate() {
        let last = i + 1 == rest.len();
        c[off] = if last { 0x91 } else { 0x90 };
        c[off + 1] = e.platform;
        c[off + 2..off + 4].copy_from_slice(&1u16.to_le_bytes());
        off += 32;
        c[off..off + 32].copy_from_slice(&entry_bytes(e));
        off += 32;
    }
    c
}

/// Patches the boot info table (offset 8, 56 bytes) into a BIOS boot image: the primary
/// volume descriptor's sector, the image's sector and length, and the 32-bit sum of the
/// image's little-endian words from offset 64 on.
pub fn patch_boot_info(image: &mut [u8], pvd_sector: u32, image_sector: u32) {
    if image.len() < 64 {
        return;
    }
    let mut sum = 0u32;
    for w in image[64..].chunks(4) {
        let mut b = [0u8; 4];
        b[..w.len()].copy_from_slice(w);
        sum = sum.wrapping_add(u32::from_le_bytes(b));
    }
    image[8..12].copy_from_slice(&pvd_sector.to_le_bytes());
    image[12..16].copy_from_slice(&image_sector.to_le_bytes());
    let len = image.len() as u32;
    image[16..20].copy_from_slice(&len.to_le_bytes());
    image[20..24].copy_from_slice(&sum.to_le_bytes());
    image[24..64].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_entry_sums_to_zero() {
        let c = catalog(&[
            BootEntry {
                platform: PLATFORM_X86,
                sector: 0x30,
                load_count: 4,
            },
            BootEntry {
                platform: PLATFORM_EFI,
                sector: 0x40,
                load_count: 2880,
            },
        ]);
        let sum = c[..32].chunks(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        assert_eq!(sum, 0);
        assert_eq!(&c[30..32], &[0x55, 0xAA]);
        // Default entry: bootable, no emulation, 4 virtual sectors at 0x30.
        assert_eq!(&c[32..44], &[0x88, 0, 0, 0, 0, 0, 4, 0, 0x30, 0, 0, 0]);
        // Final section header for the EFI platform with one entry, then its entry.
        assert_eq!(&c[64..68], &[0x91, 0xEF, 1, 0]);
        assert_eq!(
            &c[96..108],
            &[0x88, 0, 0, 0, 0, 0, 0x40, 0x0B, 0x40, 0, 0, 0]
        );
    }

    #[test]
    fn boot_info_table() {
        let mut img = vec![0u8; 2048];
        img[64] = 1;
        img[2047] = 2; // the last word is 0x02000000
        patch_boot_info(&mut img, 16, 0x21);
        assert_eq!(&img[8..12], &16u32.to_le_bytes());
        assert_eq!(&img[12..16], &0x21u32.to_le_bytes());
        assert_eq!(&img[16..20], &2048u32.to_le_bytes());
        assert_eq!(&img[20..24], &0x0200_0001u32.to_le_bytes());
    }
}
