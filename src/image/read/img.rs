//! An image opened for reading: bounds-checked reads that name the structure a read was for
//! (a read past the end is an error saying so, never a short buffer), and windows onto a
//! part of it (the ESP, a file) that the FAT reader and the container readers read through.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::image::format::structure::Structure;
use crate::image::read::error::ReadError;

/// An open image with bounds-checked reads.
pub(crate) struct Img {
    f: File,
    path: PathBuf,
    /// Its size.
    pub len: u64,
}

impl Img {
    pub(crate) fn open(path: &Path) -> Result<Img, ReadError> {
        // A regular file or a block device: a FIFO cannot be read twice, let alone sought.
        let (f, len) = crate::input::open_image(path)?;
        Ok(Img {
            f,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Whether `len` bytes at `off` lie inside the image.
    pub(crate) fn fits(&self, off: u64, len: u64) -> bool {
        off.checked_add(len).is_some_and(|end| end <= self.len)
    }

    /// `n` bytes at `off`, which must lie inside the image.
    pub(crate) fn read(&self, s: &Structure, off: u64, n: u64) -> Result<Vec<u8>, ReadError> {
        if !self.fits(off, n) {
            return Err(ReadError::PastEnd {
                structure: s.clone(),
                offset: off,
                len: n,
                size: self.len,
            });
        }
        let mut b = vec![0u8; n as usize];
        self.f
            .read_exact_at(&mut b, off)
            .map_err(|source| ReadError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(b)
    }

    /// Up to `n` bytes at `off` (fewer at the end of the image).
    pub(crate) fn read_upto(&self, off: u64, n: usize) -> Result<Vec<u8>, ReadError> {
        let n = self.len.saturating_sub(off).min(n as u64);
        self.read(&Structure::Image, off, n)
    }
}

/// A byte range of an image, read on demand: an ESP as a FAT [`crate::image::read::fat::Source`], a
/// squashfs image as `Read + Seek`. Reads never leave the range.
#[derive(Clone)]
pub(crate) struct Window<'a> {
    img: &'a Img,
    /// Where it starts in the image.
    pub start: u64,
    len: u64,
    pos: u64,
}

impl<'a> Window<'a> {
    /// `len` bytes from `start`.
    pub(crate) fn new(img: &'a Img, start: u64, len: u64) -> Window<'a> {
        Window {
            img,
            start,
            len,
            pos: 0,
        }
    }

    /// The image it reads.
    pub(crate) fn img(&self) -> &'a Img {
        self.img
    }
}

impl crate::image::read::fat::Source for Window<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, off: u64, n: usize) -> Result<Vec<u8>, crate::image::read::fat::SourceError> {
        use crate::image::read::fat::SourceError;
        if off.checked_add(n as u64).is_none_or(|end| end > self.len) {
            return Err(SourceError::Outside {
                offset: off,
                len: n,
                size: self.len,
            });
        }
        self.img
            .read(&Structure::EspImage, self.start + off, n as u64)
            .map_err(|e| SourceError::Image(Box::new(e)))
    }
}

impl std::io::Read for Window<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.img
            .f
            .read_exact_at(&mut buf[..n], self.start + self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Window<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            std::io::SeekFrom::Start(n) => Some(n),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        Ok(self.pos)
    }
}
