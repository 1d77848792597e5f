//! ECMA-119 (ISO 9660) records: the volume descriptors (primary 8.4, supplementary 8.5, set
//! terminator 8.3), the directory record (9.1) and the path table record (9.4), each one type
//! with its encoder, its bounds-checked decoder and a byte-layout test; the two date formats
//! (8.4.26.1, 9.1.5); and the primary tree's identifier rules (7.5, 9.3).

use std::fmt;

use crate::image::clock::Civil;
use crate::image::format::record::{
    record, AChars, Be, BothEndian, Bytes, DChars, DecodeError, Field, Le, Record, Ucs2Be,
};

/// Bytes per logical sector (ECMA-119 6.1.2; every image isoproof reads or writes).
pub const SECTOR: u64 = 2048;

/// The sector of the first volume descriptor (ECMA-119 6.2.1: after the 16-sector system area).
pub const FIRST_DESCRIPTOR: u64 = 16;

/// `CD001`, the standard identifier of every volume descriptor (ECMA-119 8.1.2).
pub const STANDARD_ID: [u8; 5] = *b"CD001";

/// Directory record flags (ECMA-119 9.1.6).
pub mod flags {
    /// The record is a directory.
    pub const DIRECTORY: u8 = 0x02;
    /// This is not the final record of a multi-extent file.
    pub const MULTI_EXTENT: u8 = 0x80;
}

/// ECMA-119 8.4.26.1: a volume date, sixteen digits `YYYYMMDDHHMMSScc` and the offset from
/// GMT in 15-minute units.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct DecDateTime(pub [u8; 17]);

impl DecDateTime {
    /// "Not specified": sixteen `'0'` digits and a zero offset.
    pub const UNSPECIFIED: DecDateTime = DecDateTime(*b"0000000000000000\0");

    /// The date of a UTC calendar time.
    pub fn at(c: Civil) -> DecDateTime {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            c.year, c.month, c.day, c.hour, c.minute, c.second
        );
        let mut out = [0u8; 17];
        out[..16].copy_from_slice(&s.as_bytes()[..16]);
        DecDateTime(out)
    }
}

impl fmt::Debug for DecDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        if d[..16].iter().all(u8::is_ascii_digit) {
            let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&d[r]).into_owned();
            write!(
                f,
                "{}-{}-{} {}:{}:{}.{} GMT{:+}min",
                s(0..4),
                s(4..6),
                s(6..8),
                s(8..10),
                s(10..12),
                s(12..14),
                s(14..16),
                i32::from(d[16] as i8) * 15
            )
        } else {
            f.write_str(&Bytes::<17>::show(d))
        }
    }
}

/// ECMA-119 9.1.5: a directory record's date — years since 1900, month, day, hour, minute,
/// second, and the offset from GMT in 15-minute units.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct DirDateTime(pub [u8; 7]);

impl DirDateTime {
    /// The date of a UTC calendar time (years before 1900 or after 2155 are clamped).
    pub fn at(c: Civil) -> DirDateTime {
        DirDateTime([
            (c.year - 1900).clamp(0, 255) as u8,
            c.month,
            c.day,
            c.hour,
            c.minute,
            c.second,
            0,
        ])
    }
}

impl fmt::Debug for DirDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.0;
        write!(
            f,
            "{}-{:02}-{:02} {:02}:{:02}:{:02} GMT{:+}min",
            1900 + u32::from(d[0]),
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            i32::from(d[6] as i8) * 15
        )
    }
}

macro_rules! date_field {
    ($t:ident, $n:literal) => {
        impl Field for $t {
            const LEN: usize = $n;
            fn read(b: &[u8]) -> Self {
                let mut x = [0; $n];
                x.copy_from_slice(b);
                $t(x)
            }
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.0);
            }
            fn show(b: &[u8]) -> String {
                format!("{:?}", Self::read(b))
            }
        }
    };
}
date_field!(DecDateTime, 17);
date_field!(DirDateTime, 7);

record! {
    /// ECMA-119 9.1: the fixed part of a directory record, BP 1-33. The file identifier
    /// (BP 34 on), a pad byte after an even-length identifier (9.1.12) and the system use
    /// area (9.1.13) follow; see [`DirectoryRecord`].
    pub struct DirRecordHeader("directory record", 33) {
        /// BP 1: Length of Directory Record, the whole record's.
        0 length: u8,
        /// BP 2: Extended Attribute Record Length (isoproof writes none).
        1 ext_attr_length: u8,
        /// BP 3-10: Location of Extent, a logical block number (both-byte order).
        2 extent: BothEndian<u32>,
        /// BP 11-18: Data Length in bytes (both-byte order).
        10 data_length: BothEndian<u32>,
        /// BP 19-25: Recording Date and Time (9.1.5).
        18 recorded: DirDateTime,
        /// BP 26: File Flags (9.1.6; [`flags`]).
        25 file_flags: u8,
        /// BP 27: File Unit Size (0: not interleaved).
        26 file_unit_size: u8,
        /// BP 28: Interleave Gap Size.
        27 interleave_gap_size: u8,
        /// BP 29-32: Volume Sequence Number (both-byte order).
        28 volume_sequence_number: BothEndian<u16>,
        /// BP 33: Length of File Identifier.
        32 identifier_length: u8,
    }
}

record! {
    /// ECMA-119 8.4.18: the root directory's record inside a volume descriptor, 34 bytes with
    /// the one-byte identifier 0x00.
    pub struct RootDirectoryRecord("root directory record", 34) {
        /// BP 1-33: the fixed part.
        0 header: DirRecordHeader,
        /// BP 34: File Identifier (0x00, "the directory itself").
        33 identifier: u8,
    }
}

/// Why a directory record cannot be written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a directory record with a {identifier}-byte identifier and {system_use} bytes of system use is longer than 255 bytes")]
pub struct RecordTooLong {
    /// The identifier's length.
    pub identifier: usize,
    /// The system use area's length.
    pub system_use: usize,
}

/// ECMA-119 9.1: a whole directory record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// BP 1-33.
    pub header: DirRecordHeader,
    /// BP 34 on: File Identifier (`[0]` is ".", `[1]` is "..").
    pub identifier: Vec<u8>,
    /// 9.1.13: System Use (SUSP and Rock Ridge entries).
    pub system_use: Vec<u8>,
}

impl DirectoryRecord {
    /// The length of a record with this identifier and system-use size (9.1.1, with the pad
    /// byte of 9.1.12 after an even-length identifier).
    pub fn len_for(identifier_len: usize, system_use_len: usize) -> usize {
        33 + identifier_len + usize::from(identifier_len % 2 == 0) + system_use_len
    }

    /// A record of one extent: `flags` from [`flags`], one volume, not interleaved.
    pub fn new(
        extent: u32,
        data_length: u32,
        recorded: DirDateTime,
        file_flags: u8,
        identifier: Vec<u8>,
        system_use: Vec<u8>,
    ) -> Result<DirectoryRecord, RecordTooLong> {
        let too_long = || RecordTooLong {
            identifier: identifier.len(),
            system_use: system_use.len(),
        };
        let length = u8::try_from(Self::len_for(identifier.len(), system_use.len()))
            .map_err(|_| too_long())?;
        let identifier_length = u8::try_from(identifier.len()).map_err(|_| too_long())?;
        Ok(DirectoryRecord {
            header: DirRecordHeader {
                length,
                ext_attr_length: 0,
                extent: BothEndian::new(extent),
                data_length: BothEndian::new(data_length),
                recorded,
                file_flags,
                file_unit_size: 0,
                interleave_gap_size: 0,
                volume_sequence_number: BothEndian::new(1),
                identifier_length,
            },
            identifier,
            system_use,
        })
    }

    /// The encoded length (BP 1).
    pub fn len(&self) -> usize {
        usize::from(self.header.length)
    }

    /// Never true: a record has at least its 34 fixed bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Appends the encoded record.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode_into(out);
        out.extend_from_slice(&self.identifier);
        if self.identifier.len() % 2 == 0 {
            out.push(0);
        }
        out.extend_from_slice(&self.system_use);
    }

    /// Decodes the record at the start of `b`: its length must cover its identifier and fit
    /// in `b`.
    pub fn decode(b: &[u8]) -> Result<DirectoryRecord, DecodeError> {
        let header = DirRecordHeader::decode(b)?;
        let len = usize::from(header.length);
        let id_len = usize::from(header.identifier_length);
        let invalid = |what: String| DecodeError::Invalid {
            record: DirRecordHeader::NAME,
            what,
        };
        if len < 34 {
            return Err(invalid(format!(
                "length {len} is shorter than the 34 bytes of the smallest record"
            )));
        }
        if len > b.len() {
            return Err(DecodeError::Truncated {
                record: DirRecordHeader::NAME,
                need: len,
                have: b.len(),
            });
        }
        let su_start = 33 + id_len + usize::from(id_len % 2 == 0);
        if su_start > len {
            return Err(invalid(format!(
                "its {id_len}-byte identifier (and the pad byte after an even one) runs past its length of {len}"
            )));
        }
        Ok(DirectoryRecord {
            header,
            identifier: b[33..33 + id_len].to_vec(),
            system_use: b[su_start..len].to_vec(),
        })
    }

    /// The first sector of its extent.
    pub fn extent(&self) -> u32 {
        self.header.extent.get()
    }

    /// Its data length.
    pub fn data_length(&self) -> u32 {
        self.header.data_length.get()
    }

    /// Whether it describes a directory.
    pub fn is_dir(&self) -> bool {
        self.header.file_flags & flags::DIRECTORY != 0
    }

    /// ECMA-119 6.8.2.2: the directory's own record (identifier 0x00) is `.`, its parent's
    /// (0x01) `..`; `None` for every other record.
    pub fn dot_name(&self) -> Option<&'static str> {
        match self.identifier.as_slice() {
            [0] => Some("."),
            [1] => Some(".."),
            _ => None,
        }
    }

    /// Whether another record of the same file follows (a multi-extent file).
    pub fn continues(&self) -> bool {
        self.header.file_flags & flags::MULTI_EXTENT != 0
    }
}

record! {
    /// ECMA-119 8.4: Primary Volume Descriptor (type 1).
    pub struct PrimaryVolumeDescriptor("primary volume descriptor", 2048) {
        /// BP 1: Volume Descriptor Type (1).
        0 descriptor_type: u8,
        /// BP 2-6: Standard Identifier (`CD001`).
        1 standard_identifier: Bytes<5>,
        /// BP 7: Volume Descriptor Version (1).
        6 version: u8,
        /// BP 8: Unused Field (0).
        7 unused_1: u8,
        /// BP 9-40: System Identifier (a-characters).
        8 system_identifier: AChars<32>,
        /// BP 41-72: Volume Identifier (d-characters).
        40 volume_identifier: DChars<32>,
        /// BP 73-80: Unused Field (zeros).
        72 unused_2: Bytes<8>,
        /// BP 81-88: Volume Space Size in logical blocks (both-byte order).
        80 volume_space_size: BothEndian<u32>,
        /// BP 89-120: Unused Field (zeros).
        88 unused_3: Bytes<32>,
        /// BP 121-124: Volume Set Size (both-byte order).
        120 volume_set_size: BothEndian<u16>,
        /// BP 125-128: Volume Sequence Number (both-byte order).
        124 volume_sequence_number: BothEndian<u16>,
        /// BP 129-132: Logical Block Size (both-byte order).
        128 logical_block_size: BothEndian<u16>,
        /// BP 133-140: Path Table Size in bytes (both-byte order).
        132 path_table_size: BothEndian<u32>,
        /// BP 141-144: Location of Occurrence of Type L Path Table.
        140 l_path_table: Le<u32>,
        /// BP 145-148: Location of Optional Occurrence of Type L Path Table.
        144 optional_l_path_table: Le<u32>,
        /// BP 149-152: Location of Occurrence of Type M Path Table.
        148 m_path_table: Be<u32>,
        /// BP 153-156: Location of Optional Occurrence of Type M Path Table.
        152 optional_m_path_table: Be<u32>,
        /// BP 157-190: Directory Record for Root Directory.
        156 root_directory_record: RootDirectoryRecord,
        /// BP 191-318: Volume Set Identifier (d-characters).
        190 volume_set_identifier: DChars<128>,
        /// BP 319-446: Publisher Identifier (a-characters).
        318 publisher_identifier: AChars<128>,
        /// BP 447-574: Data Preparer Identifier (a-characters).
        446 data_preparer_identifier: AChars<128>,
        /// BP 575-702: Application Identifier (a-characters).
        574 application_identifier: AChars<128>,
        /// BP 703-739: Copyright File Identifier.
        702 copyright_file_identifier: DChars<37>,
        /// BP 740-776: Abstract File Identifier.
        739 abstract_file_identifier: DChars<37>,
        /// BP 777-813: Bibliographic File Identifier.
        776 bibliographic_file_identifier: DChars<37>,
        /// BP 814-830: Volume Creation Date and Time.
        813 creation_date: DecDateTime,
        /// BP 831-847: Volume Modification Date and Time.
        830 modification_date: DecDateTime,
        /// BP 848-864: Volume Expiration Date and Time.
        847 expiration_date: DecDateTime,
        /// BP 865-881: Volume Effective Date and Time.
        864 effective_date: DecDateTime,
        /// BP 882: File Structure Version (1).
        881 file_structure_version: u8,
        /// BP 883: Reserved (0).
        882 reserved_1: u8,
        /// BP 884-1395: Application Use.
        883 application_use: Bytes<512>,
        /// BP 1396-2048: Reserved (zeros).
        1395 reserved_2: Bytes<653>,
    }
}

record! {
    /// ECMA-119 8.5: Supplementary Volume Descriptor (type 2). Its identifiers are read as
    /// Joliet records them, UCS-2 big-endian, which the escape sequences `%/@`, `%/C` or
    /// `%/E` announce.
    pub struct SupplementaryVolumeDescriptor("supplementary volume descriptor", 2048) {
        /// BP 1: Volume Descriptor Type (2).
        0 descriptor_type: u8,
        /// BP 2-6: Standard Identifier (`CD001`).
        1 standard_identifier: Bytes<5>,
        /// BP 7: Volume Descriptor Version (1).
        6 version: u8,
        /// BP 8: Volume Flags (8.5.3).
        7 volume_flags: u8,
        /// BP 9-40: System Identifier.
        8 system_identifier: Ucs2Be<32>,
        /// BP 41-72: Volume Identifier.
        40 volume_identifier: Ucs2Be<32>,
        /// BP 73-80: Unused Field (zeros).
        72 unused_2: Bytes<8>,
        /// BP 81-88: Volume Space Size in logical blocks (both-byte order).
        80 volume_space_size: BothEndian<u32>,
        /// BP 89-120: Escape Sequences (8.5.6; Joliet: `%/E`, UCS-2 level 3).
        88 escape_sequences: Bytes<32>,
        /// BP 121-124: Volume Set Size (both-byte order).
        120 volume_set_size: BothEndian<u16>,
        /// BP 125-128: Volume Sequence Number (both-byte order).
        124 volume_sequence_number: BothEndian<u16>,
        /// BP 129-132: Logical Block Size (both-byte order).
        128 logical_block_size: BothEndian<u16>,
        /// BP 133-140: Path Table Size in bytes (both-byte order).
        132 path_table_size: BothEndian<u32>,
        /// BP 141-144: Location of Occurrence of Type L Path Table.
        140 l_path_table: Le<u32>,
        /// BP 145-148: Location of Optional Occurrence of Type L Path Table.
        144 optional_l_path_table: Le<u32>,
        /// BP 149-152: Location of Occurrence of Type M Path Table.
        148 m_path_table: Be<u32>,
        /// BP 153-156: Location of Optional Occurrence of Type M Path Table.
        152 optional_m_path_table: Be<u32>,
        /// BP 157-190: Directory Record for Root Directory.
        156 root_directory_record: RootDirectoryRecord,
        /// BP 191-318: Volume Set Identifier.
        190 volume_set_identifier: Ucs2Be<128>,
        /// BP 319-446: Publisher Identifier.
        318 publisher_identifier: Ucs2Be<128>,
        /// BP 447-574: Data Preparer Identifier.
        446 data_preparer_identifier: Ucs2Be<128>,
        /// BP 575-702: Application Identifier.
        574 application_identifier: Ucs2Be<128>,
        /// BP 703-739: Copyright File Identifier.
        702 copyright_file_identifier: Ucs2Be<37>,
        /// BP 740-776: Abstract File Identifier.
        739 abstract_file_identifier: Ucs2Be<37>,
        /// BP 777-813: Bibliographic File Identifier.
        776 bibliographic_file_identifier: Ucs2Be<37>,
        /// BP 814-830: Volume Creation Date and Time.
        813 creation_date: DecDateTime,
        /// BP 831-847: Volume Modification Date and Time.
        830 modification_date: DecDateTime,
        /// BP 848-864: Volume Expiration Date and Time.
        847 expiration_date: DecDateTime,
        /// BP 865-881: Volume Effective Date and Time.
        864 effective_date: DecDateTime,
        /// BP 882: File Structure Version (1).
        881 file_structure_version: u8,
        /// BP 883: Reserved (0).
        882 reserved_1: u8,
        /// BP 884-1395: Application Use.
        883 application_use: Bytes<512>,
        /// BP 1396-2048: Reserved (zeros).
        1395 reserved_2: Bytes<653>,
    }
}

record! {
    /// ECMA-119 8.3: Volume Descriptor Set Terminator (type 255).
    pub struct Terminator("volume descriptor set terminator", 2048) {
        /// BP 1: Volume Descriptor Type (255).
        0 descriptor_type: u8,
        /// BP 2-6: Standard Identifier (`CD001`).
        1 standard_identifier: Bytes<5>,
        /// BP 7: Volume Descriptor Version (1).
        6 version: u8,
        /// BP 8-2048: Reserved (zeros).
        7 reserved: Bytes<2041>,
    }
}

record! {
    /// ECMA-119 8.1: the part every volume descriptor shares, for descriptors of other types
    /// (boot records of other systems, volume partitions).
    pub struct DescriptorHeader("volume descriptor", 7) {
        /// BP 1: Volume Descriptor Type.
        0 descriptor_type: u8,
        /// BP 2-6: Standard Identifier (`CD001`).
        1 standard_identifier: Bytes<5>,
        /// BP 7: Volume Descriptor Version.
        6 version: u8,
    }
}

impl Terminator {
    /// The terminator.
    pub fn new() -> Terminator {
        Terminator {
            descriptor_type: 255,
            standard_identifier: Bytes(STANDARD_ID),
            version: 1,
            reserved: Bytes::zeroed(),
        }
    }
}

impl Default for Terminator {
    fn default() -> Self {
        Terminator::new()
    }
}

/// What a primary or a Joliet supplementary descriptor says about the volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
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
    /// The root directory's extent and size.
    pub root: (u32, u32),
    /// Publisher identifier.
    pub publisher: String,
    /// Data preparer identifier.
    pub preparer: String,
    /// Application identifier.
    pub application: String,
    /// Creation and modification date.
    pub date: DecDateTime,
    /// The root record's date.
    pub root_date: DirDateTime,
}

impl Volume {
    fn root_record(&self) -> RootDirectoryRecord {
        let r = DirectoryRecord::new(
            self.root.0,
            self.root.1,
            self.root_date,
            flags::DIRECTORY,
            vec![0],
            Vec::new(),
        )
        .expect("a 34-byte record");
        RootDirectoryRecord {
            header: r.header,
            identifier: 0,
        }
    }
}

/// A string field could not hold an identifier: which one, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {source}")]
pub struct IdentifierError {
    /// The field (ECMA-119's name).
    pub field: &'static str,
    /// Why.
    #[source]
    pub source: crate::image::format::record::FieldError,
}

fn ident<T>(
    field: &'static str,
    r: Result<T, crate::image::format::record::FieldError>,
) -> Result<T, IdentifierError> {
    r.map_err(|source| IdentifierError { field, source })
}

impl PrimaryVolumeDescriptor {
    /// The primary descriptor of a volume.
    pub fn new(v: &Volume) -> Result<PrimaryVolumeDescriptor, IdentifierError> {
        let blank = DChars::new("").expect("empty");
        Ok(PrimaryVolumeDescriptor {
            descriptor_type: 1,
            standard_identifier: Bytes(STANDARD_ID),
            version: 1,
            unused_1: 0,
            system_identifier: ident("system identifier", AChars::new(&v.system_id))?,
            volume_identifier: ident("volume identifier", DChars::new(&v.volume_id))?,
            unused_2: Bytes::zeroed(),
            volume_space_size: BothEndian::new(v.space_size),
            unused_3: Bytes::zeroed(),
            volume_set_size: BothEndian::new(1),
            volume_sequence_number: BothEndian::new(1),
            logical_block_size: BothEndian::new(SECTOR as u16),
            path_table_size: BothEndian::new(v.path_table_size),
            l_path_table: Le::new(v.path_table_l),
            optional_l_path_table: Le::new(0),
            m_path_table: Be::new(v.path_table_m),
            optional_m_path_table: Be::new(0),
            root_directory_record: v.root_record(),
            volume_set_identifier: DChars::new("").expect("empty"),
            publisher_identifier: ident("publisher identifier", AChars::new(&v.publisher))?,
            data_preparer_identifier: ident("data preparer identifier", AChars::new(&v.preparer))?,
            application_identifier: ident("application identifier", AChars::new(&v.application))?,
            copyright_file_identifier: blank,
            abstract_file_identifier: blank,
            bibliographic_file_identifier: blank,
            creation_date: v.date,
            modification_date: v.date,
            expiration_date: DecDateTime::UNSPECIFIED,
            effective_date: DecDateTime::UNSPECIFIED,
            file_structure_version: 1,
            reserved_1: 0,
            application_use: Bytes::zeroed(),
            reserved_2: Bytes::zeroed(),
        })
    }
}

/// The Joliet escape sequence of UCS-2 level 3 (`%/E`), in an escape-sequences field.
pub(crate) const JOLIET_LEVEL_3: [u8; 3] = *b"%/E";

impl SupplementaryVolumeDescriptor {
    /// The Joliet descriptor of a volume (UCS-2 level 3).
    pub fn joliet(v: &Volume) -> Result<SupplementaryVolumeDescriptor, IdentifierError> {
        let blank37 = Ucs2Be::new("").expect("empty");
        let blank128 = Ucs2Be::new("").expect("empty");
        Ok(SupplementaryVolumeDescriptor {
            descriptor_type: 2,
            standard_identifier: Bytes(STANDARD_ID),
            version: 1,
            volume_flags: 0,
            system_identifier: ident("system identifier", Ucs2Be::new(&v.system_id))?,
            volume_identifier: ident("volume identifier", Ucs2Be::new(&v.volume_id))?,
            unused_2: Bytes::zeroed(),
            volume_space_size: BothEndian::new(v.space_size),
            escape_sequences: Bytes::padded(&JOLIET_LEVEL_3).expect("3 of 32 bytes"),
            volume_set_size: BothEndian::new(1),
            volume_sequence_number: BothEndian::new(1),
            logical_block_size: BothEndian::new(SECTOR as u16),
            path_table_size: BothEndian::new(v.path_table_size),
            l_path_table: Le::new(v.path_table_l),
            optional_l_path_table: Le::new(0),
            m_path_table: Be::new(v.path_table_m),
            optional_m_path_table: Be::new(0),
            root_directory_record: v.root_record(),
            volume_set_identifier: blank128,
            publisher_identifier: ident("publisher identifier", Ucs2Be::new(&v.publisher))?,
            data_preparer_identifier: ident("data preparer identifier", Ucs2Be::new(&v.preparer))?,
            application_identifier: ident("application identifier", Ucs2Be::new(&v.application))?,
            copyright_file_identifier: blank37,
            abstract_file_identifier: blank37,
            bibliographic_file_identifier: blank37,
            creation_date: v.date,
            modification_date: v.date,
            expiration_date: DecDateTime::UNSPECIFIED,
            effective_date: DecDateTime::UNSPECIFIED,
            file_structure_version: 1,
            reserved_1: 0,
            application_use: Bytes::zeroed(),
            reserved_2: Bytes::zeroed(),
        })
    }

    /// Whether its escape sequences announce Joliet (UCS-2 levels 1 to 3).
    pub fn is_joliet(&self) -> bool {
        matches!(&self.escape_sequences.0[..3], b"%/@" | b"%/C" | b"%/E")
    }
}

/// The byte order of a path table (ECMA-119 9.4: type L little-endian, type M big-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathTableOrder {
    /// Type L.
    L,
    /// Type M.
    M,
}

record! {
    /// ECMA-119 9.4: the fixed part of a type L path table record (BP 1-8); the directory
    /// identifier and a pad byte after an odd-length one follow.
    pub struct PathTableEntryL("path table record (type L)", 8) {
        /// BP 1: Length of Directory Identifier.
        0 identifier_length: u8,
        /// BP 2: Extended Attribute Record Length.
        1 ext_attr_length: u8,
        /// BP 3-6: Location of Extent (little-endian).
        2 extent: Le<u32>,
        /// BP 7-8: Parent Directory Number (little-endian; the root is 1).
        6 parent: Le<u16>,
    }
}

record! {
    /// ECMA-119 9.4: the fixed part of a type M path table record (BP 1-8).
    pub struct PathTableEntryM("path table record (type M)", 8) {
        /// BP 1: Length of Directory Identifier.
        0 identifier_length: u8,
        /// BP 2: Extended Attribute Record Length.
        1 ext_attr_length: u8,
        /// BP 3-6: Location of Extent (big-endian).
        2 extent: Be<u32>,
        /// BP 7-8: Parent Directory Number (big-endian; the root is 1).
        6 parent: Be<u16>,
    }
}

/// ECMA-119 9.4: one path table record, in either order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTableRecord {
    /// Location of Extent.
    pub extent: u32,
    /// Parent Directory Number.
    pub parent: u16,
    /// Directory Identifier (`[0]` for the root).
    pub identifier: Vec<u8>,
}

impl PathTableRecord {
    /// The length of a record with this identifier (with the pad byte of 9.4.6).
    pub fn len_for(identifier_len: usize) -> usize {
        8 + identifier_len + identifier_len % 2
    }

    /// Appends the record in `order`.
    pub fn encode(&self, order: PathTableOrder, out: &mut Vec<u8>) {
        let n = self.identifier.len() as u8;
        match order {
            PathTableOrder::L => PathTableEntryL {
                identifier_length: n,
                ext_attr_length: 0,
                extent: Le::new(self.extent),
                parent: Le::new(self.parent),
            }
            .encode_into(out),
            PathTableOrder::M => PathTableEntryM {
                identifier_length: n,
                ext_attr_length: 0,
                extent: Be::new(self.extent),
                parent: Be::new(self.parent),
            }
            .encode_into(out),
        }
        out.extend_from_slice(&self.identifier);
        if self.identifier.len() % 2 == 1 {
            out.push(0);
        }
    }

    /// Decodes the record at the start of `b`; returns it and its length.
    pub fn decode(
        b: &[u8],
        order: PathTableOrder,
    ) -> Result<(PathTableRecord, usize), DecodeError> {
        let (n, extent, parent, record) = match order {
            PathTableOrder::L => {
                let e = PathTableEntryL::decode(b)?;
                (
                    e.identifier_length,
                    e.extent.get(),
                    e.parent.get(),
                    PathTableEntryL::NAME,
                )
            }
            PathTableOrder::M => {
                let e = PathTableEntryM::decode(b)?;
                (
                    e.identifier_length,
                    e.extent.get(),
                    e.parent.get(),
                    PathTableEntryM::NAME,
                )
            }
        };
        let len = Self::len_for(usize::from(n));
        if n == 0 || len > b.len() {
            return Err(DecodeError::Truncated {
                record,
                need: len.max(9),
                have: b.len(),
            });
        }
        Ok((
            PathTableRecord {
                extent,
                parent,
                identifier: b[8..8 + usize::from(n)].to_vec(),
            },
            len,
        ))
    }
}

/// The directory records in `bytes`, whole sectors of a directory extent, with their offset
/// in `bytes`: a zero length byte pads to the end of its sector (9.1: records never cross
/// one). A record that does not decode ends the walk with its offset and why.
pub fn directory_records(
    bytes: &[u8],
) -> impl Iterator<Item = Result<(usize, DirectoryRecord), (usize, DecodeError)>> + '_ {
    let mut off = 0usize;
    let mut failed = false;
    std::iter::from_fn(move || {
        while !failed && off < bytes.len() {
            if bytes[off] == 0 {
                off = (off / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let at = off;
            return Some(match DirectoryRecord::decode(&bytes[off..]) {
                Ok(r) => {
                    off += r.len();
                    Ok((at, r))
                }
                Err(e) => {
                    failed = true;
                    Err((at, e))
                }
            });
        }
        None
    })
}

/// A primary-tree identifier (ISO level 3 with "full" names as xorriso's
/// `-full-iso9660-filenames`): d-characters only (`A-Z 0-9 _`), at most 30 characters with one
/// dot for files and none for directories, files ending in `;1`. Everything else maps to `_`.
/// Rock Ridge carries the real name; this one only has to be valid and unique.
pub(crate) fn primary_name(name: &str, is_dir: bool, taken: &dyn Fn(&str) -> bool) -> String {
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
pub(crate) fn record_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
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

    #[test]
    fn directory_records_skip_sector_padding() {
        // Two sectors: one record, padding, then one record at the second sector's start.
        let rec = |name: &[u8]| {
            let mut b = Vec::new();
            DirectoryRecord::new(20, 2048, DirDateTime([0; 7]), 0, name.to_vec(), Vec::new())
                .unwrap()
                .encode(&mut b);
            b
        };
        let mut bytes = rec(b"A;1");
        bytes.resize(SECTOR as usize, 0);
        bytes.extend(rec(b"B;1"));
        bytes.resize(2 * SECTOR as usize, 0);
        let found: Vec<(usize, Vec<u8>)> = directory_records(&bytes)
            .map(|r| r.map(|(at, r)| (at, r.identifier)).unwrap())
            .collect();
        assert_eq!(found, [(0, b"A;1".to_vec()), (2048, b"B;1".to_vec())]);
        // A length that runs past the bytes ends the walk with its offset.
        bytes[2048] = 250;
        bytes.truncate(2048 + 100);
        let last = directory_records(&bytes).last().unwrap();
        assert!(matches!(last, Err((2048, _))), "{last:?}");
    }
    use super::*;
    use crate::image::clock::Clock;

    fn both32(v: u32) -> [u8; 8] {
        let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
        [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
    }

    fn date() -> DirDateTime {
        DirDateTime([124, 2, 29, 12, 34, 56, 0])
    }

    #[test]
    fn directory_record_layout() {
        let r =
            DirectoryRecord::new(0x1d, 2048, date(), flags::DIRECTORY, vec![0], vec![]).unwrap();
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
        assert_eq!(DirectoryRecord::decode(&b).unwrap(), r);
        // An even-length identifier gets a pad byte before the system use area.
        let r2 =
            DirectoryRecord::new(0x1d, 2048, date(), 0, b"AB".to_vec(), b"XY".to_vec()).unwrap();
        let mut b2 = Vec::new();
        r2.encode(&mut b2);
        assert_eq!(b2.len(), 33 + 2 + 1 + 2);
        assert_eq!(&b2[33..38], b"AB\0XY");
        assert_eq!(DirectoryRecord::decode(&b2).unwrap(), r2);
        assert!(DirectoryRecord::new(0, 0, date(), 0, vec![b'x'; 200], vec![0; 60]).is_err());
    }

    #[test]
    fn broken_directory_records_are_errors() {
        let r = DirectoryRecord::new(5, 10, date(), 0, b"ABC;1".to_vec(), vec![]).unwrap();
        let mut b = Vec::new();
        r.encode(&mut b);
        // Cut short.
        assert!(matches!(
            DirectoryRecord::decode(&b[..20]),
            Err(DecodeError::Truncated { need: 33, .. })
        ));
        assert!(matches!(
            DirectoryRecord::decode(&b[..36]),
            Err(DecodeError::Truncated { need: 38, .. })
        ));
        // An identifier longer than the record.
        let mut bad = b.clone();
        bad[32] = 200;
        assert!(matches!(
            DirectoryRecord::decode(&bad),
            Err(DecodeError::Invalid { .. })
        ));
        // A length below the minimum.
        let mut tiny = b.clone();
        tiny[0] = 20;
        assert!(DirectoryRecord::decode(&tiny).is_err());
    }

    fn volume() -> Volume {
        Volume {
            system_id: "LINUX".into(),
            volume_id: "NIXOS_ISO".into(),
            space_size: 1000,
            path_table_size: 10,
            path_table_l: 18,
            path_table_m: 19,
            root: (20, 2048),
            publisher: String::new(),
            preparer: String::new(),
            application: String::new(),
            date: DecDateTime(*b"2024022912345600\0"),
            root_date: DirDateTime([0; 7]),
        }
    }

    #[test]
    fn primary_descriptor_layout() {
        let d = PrimaryVolumeDescriptor::new(&volume()).unwrap().encode();
        assert_eq!(d.len(), 2048);
        assert_eq!(&d[0..7], b"\x01CD001\x01");
        assert_eq!(&d[8..13], b"LINUX");
        assert_eq!(d[13], b' ');
        assert_eq!(&d[40..49], b"NIXOS_ISO");
        assert_eq!(&d[80..88], &both32(1000));
        assert_eq!(&d[120..128], &[1, 0, 0, 1, 1, 0, 0, 1]);
        assert_eq!(&d[128..132], &[0, 8, 8, 0]);
        assert_eq!(&d[132..140], &both32(10));
        assert_eq!(&d[140..144], &18u32.to_le_bytes());
        assert_eq!(&d[148..152], &19u32.to_be_bytes());
        assert_eq!(d[156], 34);
        assert_eq!(&d[158..162], &20u32.to_le_bytes());
        assert_eq!(&d[190..192], b"  ");
        assert_eq!(&d[813..830], b"2024022912345600\0");
        assert_eq!(&d[830..847], b"2024022912345600\0");
        assert_eq!(&d[847..864], b"0000000000000000\0");
        assert_eq!(d[881], 1);
        assert!(d[883..].iter().all(|b| *b == 0));
        let back = PrimaryVolumeDescriptor::decode(&d).unwrap();
        assert_eq!(back.volume_identifier.text(), "NIXOS_ISO");
        assert_eq!(back.volume_space_size.get(), 1000);
        assert_eq!(back.encode(), d);
    }

    #[test]
    fn joliet_descriptor_layout() {
        let j = SupplementaryVolumeDescriptor::joliet(&volume()).unwrap();
        assert!(j.is_joliet());
        let d = j.encode();
        assert_eq!(d[0], 2);
        assert_eq!(&d[88..91], b"%/E");
        assert_eq!(&d[40..44], &[0, b'N', 0, b'I']);
        assert_eq!(&d[70..72], &[0, b' ']);
        // An odd-length field ends with the high byte of a space.
        assert_eq!(&d[736..739], &[0, b' ', 0]);
        assert_eq!(SupplementaryVolumeDescriptor::decode(&d).unwrap(), j);
        let mut long = volume();
        long.volume_id = "x".repeat(17);
        assert_eq!(
            SupplementaryVolumeDescriptor::joliet(&long)
                .unwrap_err()
                .field,
            "volume identifier"
        );
    }

    #[test]
    fn descriptor_header_layout() {
        let h = DescriptorHeader::decode(b"\x03CD001\x01rest").unwrap();
        assert_eq!(h.descriptor_type, 3);
        assert_eq!(h.standard_identifier.0, STANDARD_ID);
        assert_eq!(h.version, 1);
        assert_eq!(h.encode(), b"\x03CD001\x01");
    }

    #[test]
    fn terminator_layout() {
        let t = Terminator::new().encode();
        assert_eq!(&t[0..7], b"\xffCD001\x01");
        assert!(t[7..].iter().all(|b| *b == 0));
    }

    #[test]
    fn path_table_layout() {
        let r = PathTableRecord {
            extent: 0x20,
            parent: 1,
            identifier: b"BOOT".to_vec(),
        };
        let mut l = Vec::new();
        r.encode(PathTableOrder::L, &mut l);
        assert_eq!(l, [4, 0, 0x20, 0, 0, 0, 1, 0, b'B', b'O', b'O', b'T']);
        assert_eq!(
            PathTableRecord::decode(&l, PathTableOrder::L).unwrap(),
            (r, 12)
        );
        let m_rec = PathTableRecord {
            extent: 0x20,
            parent: 1,
            identifier: b"EFI".to_vec(),
        };
        let mut m = Vec::new();
        m_rec.encode(PathTableOrder::M, &mut m);
        assert_eq!(m, [3, 0, 0, 0, 0, 0x20, 0, 1, b'E', b'F', b'I', 0]);
        assert_eq!(PathTableRecord::len_for(3), 12);
        assert_eq!(
            PathTableRecord::decode(&m, PathTableOrder::M).unwrap(),
            (m_rec, 12)
        );
        assert!(PathTableRecord::decode(&m[..10], PathTableOrder::M).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(
            DecDateTime::at(Clock::at(0).civil()).0,
            *b"1970010100000000\0"
        );
        assert_eq!(
            format!("{:?}", DecDateTime::at(Clock::at(1_709_210_096).civil())),
            "2024-02-29 12:34:56.00 GMT+0min"
        );
        assert_eq!(
            DirDateTime::at(Clock::at(1_709_210_096).civil()).0,
            [124, 2, 29, 12, 34, 56, 0]
        );
        assert_eq!(format!("{:?}", date()), "2024-02-29 12:34:56 GMT+0min");
    }

    #[test]
    fn every_field_is_named_for_the_diff() {
        let names: Vec<String> = PrimaryVolumeDescriptor::fields()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert!(names.contains(&"volume_space_size".to_string()));
        assert!(names.contains(&"root_directory_record.header.extent".to_string()));
        let total: usize = PrimaryVolumeDescriptor::fields()
            .iter()
            .map(|l| l.len)
            .sum();
        assert_eq!(total, 2048, "the leaves cover the whole descriptor");
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
