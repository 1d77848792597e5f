//! Joliet names: UCS-2 big-endian identifiers of up to 103 characters (as xorriso's
//! `-joliet-long`). A name Joliet cannot hold — too long, outside the Basic Multilingual
//! Plane, or with a character Joliet forbids — is mapped deterministically, and made unique
//! within its directory.

/// The longest identifier, in UCS-2 units (version suffix not counted).
pub const MAX_CHARS: usize = 103;

/// Maps one character: BMP characters other than `* / : ; ? \` and controls are kept.
fn map_char(c: char) -> u16 {
    let forbidden = matches!(c, '*' | '/' | ':' | ';' | '?' | '\\') || (c as u32) < 0x20;
    if forbidden || (c as u32) > 0xFFFF {
        u16::from(b'_')
    } else {
        c as u16
    }
}

/// The Joliet identifier of `name` (files get `;1`), as UCS-2 units, unique against `taken`.
/// Names are processed in sorted order by the caller, so the result does not depend on
/// anything but the directory's names.
pub fn joliet_name(name: &str, is_dir: bool, taken: &dyn Fn(&[u16]) -> bool) -> Vec<u16> {
    let units: Vec<u16> = name.chars().map(map_char).collect();
    let (stem, ext) = match name.rfind('.') {
        Some(i) if !is_dir && i > 0 => {
            let n = name[..i].chars().count();
            (units[..n].to_vec(), units[n..].to_vec())
        }
        _ => (units.clone(), Vec::new()),
    };
    // Keep the extension (up to 10 units) when the name must be shortened.
    let ext: Vec<u16> = if ext.len() > 10 { Vec::new() } else { ext };
    let stem = if ext.is_empty() { units } else { stem };
    super::first_free(
        true,
        |suffix| {
            let suffix: Vec<u16> = suffix.encode_utf16().collect();
            let room = MAX_CHARS - ext.len() - suffix.len();
            let mut v: Vec<u16> = stem.iter().copied().take(room).collect();
            v.extend_from_slice(&suffix);
            v.extend_from_slice(&ext);
            if !is_dir {
                v.extend_from_slice(&[u16::from(b';'), u16::from(b'1')]);
            }
            v
        },
        |c| taken(c),
    )
}

/// Whether Joliet stores the name as it is (no character mapped, not too long).
pub fn holds(name: &str) -> bool {
    name.chars().count() <= MAX_CHARS && name.chars().all(|c| u32::from(map_char(c)) == c as u32)
}

/// UCS-2 units as big-endian bytes.
pub fn to_bytes(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(units: &[u16]) -> String {
        String::from_utf16_lossy(units)
    }

    #[test]
    fn mapping() {
        let free = |_: &[u16]| false;
        assert_eq!(s(&joliet_name("grub.cfg", false, &free)), "grub.cfg;1");
        assert_eq!(s(&joliet_name("EFI", true, &free)), "EFI");
        assert_eq!(s(&joliet_name("a;b:c.txt", false, &free)), "a_b_c.txt;1");
        // Outside the BMP (U+1F600) becomes "_".
        assert_eq!(
            s(&joliet_name("smile\u{1F600}.md", false, &free)),
            "smile_.md;1"
        );
        let long = format!("{}.iso", "x".repeat(200));
        let j = joliet_name(&long, false, &free);
        assert_eq!(j.len(), MAX_CHARS + 2);
        assert!(s(&j).ends_with(".iso;1"));
        assert_eq!(to_bytes(&[0x0041, 0x00e9]), [0, 0x41, 0, 0xe9]);
    }

    #[test]
    fn collisions_are_made_unique() {
        let taken_first = |u: &[u16]| s(u) == "a_b.txt;1";
        assert_eq!(
            s(&joliet_name("a?b.txt", false, &taken_first)),
            "a_b~1.txt;1"
        );
    }
}
