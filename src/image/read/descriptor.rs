//! The volume descriptor set as a reader meets it: each 2048-byte descriptor from sector 16
//! on, told apart by its type byte and, for type 0, by El Torito's boot system identifier.
//! ECMA-119 (`format::iso9660`) and El Torito (`format::eltorito`) each define their records;
//! the dispatch between them is the reader's.

use crate::image::format::eltorito::BootRecordVolumeDescriptor;
use crate::image::format::iso9660::{
    DescriptorHeader, PrimaryVolumeDescriptor, SupplementaryVolumeDescriptor, Terminator,
    STANDARD_ID,
};
use crate::image::format::record::{DecodeError, Record};

/// A volume descriptor as read: one of the kinds isoproof knows, or another kind kept whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeDescriptor {
    /// Type 1.
    Primary(Box<PrimaryVolumeDescriptor>),
    /// Type 2.
    Supplementary(Box<SupplementaryVolumeDescriptor>),
    /// Type 0 with El Torito's boot system identifier.
    ElTorito(Box<BootRecordVolumeDescriptor>),
    /// Type 255.
    Terminator(Box<Terminator>),
    /// Any other type (another boot system, a volume partition).
    Other(DescriptorHeader),
}

impl VolumeDescriptor {
    /// Decodes the 2048-byte descriptor at the start of `b`; `None` when it does not start
    /// with the standard identifier.
    pub fn decode(b: &[u8]) -> Result<Option<VolumeDescriptor>, DecodeError> {
        let header = DescriptorHeader::decode(b)?;
        if header.standard_identifier.0 != STANDARD_ID {
            return Ok(None);
        }
        Ok(Some(match header.descriptor_type {
            1 => VolumeDescriptor::Primary(Box::new(PrimaryVolumeDescriptor::decode(b)?)),
            2 => {
                VolumeDescriptor::Supplementary(Box::new(SupplementaryVolumeDescriptor::decode(b)?))
            }
            255 => VolumeDescriptor::Terminator(Box::new(Terminator::decode(b)?)),
            0 => {
                let br = BootRecordVolumeDescriptor::decode(b)?;
                if br.is_el_torito() {
                    VolumeDescriptor::ElTorito(Box::new(br))
                } else {
                    VolumeDescriptor::Other(header)
                }
            }
            _ => VolumeDescriptor::Other(header),
        }))
    }

    /// The descriptor's type byte (BP 1).
    pub fn descriptor_type(&self) -> u8 {
        match self {
            VolumeDescriptor::Primary(_) => 1,
            VolumeDescriptor::Supplementary(_) => 2,
            VolumeDescriptor::ElTorito(_) => 0,
            VolumeDescriptor::Terminator(_) => 255,
            VolumeDescriptor::Other(h) => h.descriptor_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2048-byte descriptor of `kind` with the standard identifier, otherwise zero.
    fn of(kind: u8) -> Vec<u8> {
        let mut b = vec![0u8; 2048];
        b[0] = kind;
        b[1..6].copy_from_slice(b"CD001");
        b[6] = 1;
        b
    }

    #[test]
    fn descriptors_read_by_type() {
        assert!(matches!(
            VolumeDescriptor::decode(&of(1)),
            Ok(Some(VolumeDescriptor::Primary(_)))
        ));
        assert!(matches!(
            VolumeDescriptor::decode(&of(255)),
            Ok(Some(VolumeDescriptor::Terminator(_)))
        ));
        assert!(matches!(
            VolumeDescriptor::decode(&of(3)),
            Ok(Some(VolumeDescriptor::Other(_)))
        ));
        // Type 0 is El Torito's only with its boot system identifier.
        assert!(matches!(
            VolumeDescriptor::decode(&of(0)),
            Ok(Some(VolumeDescriptor::Other(_)))
        ));
        let mut et = of(0);
        et[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
        assert!(matches!(
            VolumeDescriptor::decode(&et),
            Ok(Some(VolumeDescriptor::ElTorito(_)))
        ));
        assert_eq!(VolumeDescriptor::decode(&[0u8; 2048]), Ok(None));
        assert!(VolumeDescriptor::decode(&of(1)[..100]).is_err());
    }
}
