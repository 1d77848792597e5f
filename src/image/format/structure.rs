//! The structures of an image, one name each: the planner lays them out under these names,
//! the reader finds them under the same names, golden manifests record them and `diff`
//! reports by them.

use std::fmt;

/// Which directory tree a directory or path table belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    /// The ECMA-119 tree (with Rock Ridge names when it has them).
    Primary,
    /// The Joliet tree.
    Joliet,
}

/// A path table's byte order (ECMA-119 9.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Order {
    /// Type L, little-endian.
    L,
    /// Type M, big-endian.
    M,
}

/// One structure of an image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Structure {
    /// The image as a whole (its size).
    Image,
    /// The MBR in the first 512 bytes.
    Mbr,
    /// The primary GPT header (LBA 1).
    PrimaryGptHeader,
    /// An Apple Partition Map's entries (blocks 1.. of its block size).
    ApplePartitionMap,
    /// The primary GPT partition entries.
    PrimaryGptEntries,
    /// The primary volume descriptor.
    PrimaryVolumeDescriptor,
    /// El Torito's boot record volume descriptor.
    BootRecord,
    /// A supplementary volume descriptor (Joliet's, when `joliet`).
    SupplementaryVolumeDescriptor {
        /// Whether its escape sequences announce Joliet.
        joliet: bool,
    },
    /// Another kind of volume descriptor (its type byte).
    OtherVolumeDescriptor(u8),
    /// The volume descriptor set terminator.
    Terminator,
    /// A path table.
    PathTable(Tree, Order),
    /// El Torito's boot catalog.
    BootCatalog,
    /// A directory's extent, by the path readers show it at.
    Directory(Tree, String),
    /// Rock Ridge continuation areas (SUSP `CE`).
    ContinuationArea,
    /// The BIOS (El Torito platform 0) boot image.
    BiosBootImage,
    /// The UEFI (El Torito platform 0xEF) boot image: the FAT ESP.
    EspImage,
    /// A file's data, by its path.
    File(String),
    /// A file inside the ESP, by its path there.
    EspFile(String),
    /// The backup GPT partition entries.
    BackupGptEntries,
    /// The backup GPT header (the last LBA).
    BackupGptHeader,
}

impl Structure {
    /// Whether its bytes are a file's data, compared by content rather than by field.
    pub fn is_file(&self) -> bool {
        matches!(self, Structure::File(_) | Structure::EspFile(_))
    }
}

impl fmt::Display for Structure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let order = |o: &Order| match o {
            Order::L => "L",
            Order::M => "M",
        };
        match self {
            Structure::Image => f.write_str("image"),
            Structure::Mbr => f.write_str("MBR"),
            Structure::PrimaryGptHeader => f.write_str("primary GPT header"),
            Structure::ApplePartitionMap => f.write_str("Apple partition map"),
            Structure::PrimaryGptEntries => f.write_str("primary GPT entries"),
            Structure::PrimaryVolumeDescriptor => f.write_str("primary volume descriptor"),
            Structure::BootRecord => f.write_str("El Torito boot record"),
            Structure::SupplementaryVolumeDescriptor { joliet: true } => {
                f.write_str("Joliet volume descriptor")
            }
            Structure::SupplementaryVolumeDescriptor { joliet: false } => {
                f.write_str("supplementary volume descriptor")
            }
            Structure::OtherVolumeDescriptor(t) => write!(f, "volume descriptor of type {t}"),
            Structure::Terminator => f.write_str("volume descriptor set terminator"),
            Structure::PathTable(Tree::Primary, o) => write!(f, "path table ({})", order(o)),
            Structure::PathTable(Tree::Joliet, o) => {
                write!(f, "Joliet path table ({})", order(o))
            }
            Structure::BootCatalog => f.write_str("El Torito boot catalog"),
            Structure::Directory(Tree::Primary, p) => write!(f, "directory {p}"),
            Structure::Directory(Tree::Joliet, p) => write!(f, "Joliet directory {p}"),
            Structure::ContinuationArea => f.write_str("Rock Ridge continuation area"),
            Structure::BiosBootImage => f.write_str("BIOS boot image"),
            Structure::EspImage => f.write_str("UEFI ESP image (FAT)"),
            Structure::File(p) => write!(f, "file {p}"),
            Structure::EspFile(p) => write!(f, "ESP file {p}"),
            Structure::BackupGptEntries => f.write_str("backup GPT entries"),
            Structure::BackupGptHeader => f.write_str("backup GPT header"),
        }
    }
}

/// A byte range of an image and the structure it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The structure.
    pub structure: Structure,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            Structure::Directory(Tree::Joliet, "/EFI".into()).to_string(),
            "Joliet directory /EFI"
        );
        assert_eq!(
            Structure::PathTable(Tree::Primary, Order::M).to_string(),
            "path table (M)"
        );
        assert_eq!(Structure::File("/a b".into()).to_string(), "file /a b");
    }
}
