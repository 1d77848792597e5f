//! On-disk records: the field primitives every structure is built from, and the `record!`
//! macro that defines a structure once — its layout, its encoder, its bounds-checked decoder
//! and the field list the structural diff walks — in the style of gimli's `object` crate.
//!
//! A record is a `#[repr(C)]` struct of byte-array fields, so its in-memory size is its
//! on-disk size (checked at compile time, together with every declared offset). A field keeps
//! the bytes the image holds: decoding never loses anything (a both-endian number whose halves
//! disagree decodes as such), and `encode(decode(b)) == b` for every record.

use std::borrow::Cow;
use std::fmt;

/// A fixed-size piece of a record: a number in one byte order, a both-endian number, a padded
/// string, a date, raw bytes, or a nested record.
pub trait Field: Sized + Clone + PartialEq + fmt::Debug {
    /// Its length on disk.
    const LEN: usize;
    /// Reads the field from exactly [`Field::LEN`] bytes (the record's decoder checked the
    /// bounds). Any bytes are a valid field.
    fn read(b: &[u8]) -> Self;
    /// Writes the field into exactly [`Field::LEN`] bytes.
    fn write(&self, out: &mut [u8]);
    /// How the diff shows the field's bytes.
    fn show(b: &[u8]) -> String;
    /// The leaves the diff compares: one for a plain field, one per field of a nested record.
    fn leaves(name: &str, offset: usize, out: &mut Vec<Leaf>) {
        out.push(Leaf {
            name: name.to_string(),
            offset,
            len: Self::LEN,
            show: Self::show,
        });
    }
}

/// One named range of a record, as the structural diff compares it.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The field's name (`root_directory_record.extent` for nested fields).
    pub name: String,
    /// Its offset in the record.
    pub offset: usize,
    /// Its length.
    pub len: usize,
    /// Renders its bytes.
    pub show: fn(&[u8]) -> String,
}

/// A record was cut short, or its bytes break a rule of its format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes remain than the record needs.
    #[error("{record} needs {need} bytes, only {have} remain")]
    Truncated {
        /// The record.
        record: &'static str,
        /// Bytes it needs.
        need: usize,
        /// Bytes there are.
        have: usize,
    },
    /// A length, count or marker inside the record is impossible.
    #[error("{record}: {what}")]
    Invalid {
        /// The record.
        record: &'static str,
        /// What is wrong.
        what: String,
    },
}

/// A whole on-disk record, defined by `record!`.
pub trait Record: Field {
    /// The record's name in its specification.
    const NAME: &'static str;

    /// Decodes the record at the start of `b`, which may be longer.
    fn decode(b: &[u8]) -> Result<Self, DecodeError> {
        match b.get(..Self::LEN) {
            Some(bytes) => Ok(Self::read(bytes)),
            None => Err(DecodeError::Truncated {
                record: Self::NAME,
                need: Self::LEN,
                have: b.len(),
            }),
        }
    }

    /// The record's bytes.
    fn encode(&self) -> Vec<u8> {
        let mut v = vec![0; Self::LEN];
        self.write(&mut v);
        v
    }

    /// Appends the record's bytes.
    fn encode_into(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.resize(at + Self::LEN, 0);
        self.write(&mut out[at..]);
    }

    /// Every leaf field, in offset order, for the structural diff.
    fn fields() -> Vec<Leaf> {
        let mut v = Vec::new();
        Self::leaves("", 0, &mut v);
        v
    }
}

/// Joins a parent field's name and a child's (`root_directory_record.extent`).
pub(crate) fn child_name(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// Defines an on-disk record: a `#[repr(C)]` struct of [`Field`]s, each at its declared
/// offset, with the [`Field`] and [`Record`] impls and a compile-time check that the offsets
/// follow each other and add up to the size.
///
/// ```text
/// record! {
///     /// El Torito 1.0, 2.4: Section Header Entry.
///     pub struct SectionHeader("El Torito section header", 32) {
///         /// Offset 0: header indicator (0x90, or 0x91 for the last).
///         0 indicator: u8,
///         …
///     }
/// }
/// ```
macro_rules! record {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident($spec:literal, $size:literal) {
            $(
                $(#[$fattr:meta])*
                $off:literal $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, PartialEq, Eq, Debug)]
        #[repr(C)]
        $vis struct $name {
            $( $(#[$fattr])* pub $field: $ty, )*
        }

        const _: () = {
            let offsets: &[usize] = &[$($off),*];
            let lens: &[usize] = &[$(<$ty as $crate::image::format::record::Field>::LEN),*];
            let mut i = 0;
            let mut at = 0;
            while i < offsets.len() {
                assert!(
                    offsets[i] == at,
                    concat!(stringify!($name), ": a field does not start where the one before ends")
                );
                at += lens[i];
                i += 1;
            }
            assert!(at == $size, concat!(stringify!($name), ": the fields do not add up to its size"));
            assert!(::core::mem::size_of::<$name>() == $size);
        };

        impl $crate::image::format::record::Field for $name {
            const LEN: usize = $size;

            fn read(b: &[u8]) -> Self {
                $name {
                    $( $field: <$ty as $crate::image::format::record::Field>::read(
                        &b[$off..$off + <$ty as $crate::image::format::record::Field>::LEN],
                    ), )*
                }
            }

            fn write(&self, out: &mut [u8]) {
                $( $crate::image::format::record::Field::write(
                    &self.$field,
                    &mut out[$off..$off + <$ty as $crate::image::format::record::Field>::LEN],
                ); )*
            }

            fn show(b: &[u8]) -> String {
                <$crate::image::format::record::Bytes<$size> as $crate::image::format::record::Field>::show(b)
            }

            fn leaves(name: &str, offset: usize, out: &mut Vec<$crate::image::format::record::Leaf>) {
                $( <$ty as $crate::image::format::record::Field>::leaves(
                    &$crate::image::format::record::child_name(name, stringify!($field)),
                    offset + $off,
                    out,
                ); )*
            }
        }

        impl $crate::image::format::record::Record for $name {
            const NAME: &'static str = $spec;
        }
    };
}
pub(crate) use record;

impl Field for u8 {
    const LEN: usize = 1;
    fn read(b: &[u8]) -> Self {
        b[0]
    }
    fn write(&self, out: &mut [u8]) {
        out[0] = *self;
    }
    fn show(b: &[u8]) -> String {
        format!("0x{:02x}", b[0])
    }
}

/// An unsigned integer stored in a fixed byte order.
pub trait Int: Copy + Eq + fmt::Debug + fmt::Display + fmt::LowerHex {
    /// Its bytes.
    type Bytes: Copy + Eq + fmt::Debug + AsRef<[u8]> + AsMut<[u8]> + Default;
    /// Little-endian bytes.
    fn to_le(self) -> Self::Bytes;
    /// Big-endian bytes.
    fn to_be(self) -> Self::Bytes;
    /// From little-endian bytes.
    fn from_le(b: Self::Bytes) -> Self;
    /// From big-endian bytes.
    fn from_be(b: Self::Bytes) -> Self;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            type Bytes = [u8; size_of::<$t>()];
            fn to_le(self) -> Self::Bytes { self.to_le_bytes() }
            fn to_be(self) -> Self::Bytes { self.to_be_bytes() }
            fn from_le(b: Self::Bytes) -> Self { <$t>::from_le_bytes(b) }
            fn from_be(b: Self::Bytes) -> Self { <$t>::from_be_bytes(b) }
        }
    )*};
}
int!(u16, u32, u64);

fn bytes_of<T: Int>(b: &[u8]) -> T::Bytes {
    let mut x = T::Bytes::default();
    x.as_mut().copy_from_slice(b);
    x
}

/// A little-endian number (ECMA-119 7.2.1/7.3.1; UEFI, FAT and El Torito use only this order).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Le<T: Int>(T::Bytes);

/// A big-endian number (ECMA-119 7.2.2/7.3.2: the type M path table).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Be<T: Int>(T::Bytes);

/// A number recorded in both byte orders, little-endian first (ECMA-119 7.2.3/7.3.3). Both
/// halves are kept as read, so a image whose halves disagree decodes — and diffs — as such.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct BothEndian<T: Int> {
    lsb: Le<T>,
    msb: Be<T>,
}

macro_rules! ordered {
    ($t:ident, $to:ident, $from:ident) => {
        impl<T: Int> $t<T> {
            /// The field holding `v`.
            pub fn new(v: T) -> Self {
                $t(v.$to())
            }
            /// Its value.
            pub fn get(self) -> T {
                T::$from(self.0)
            }
        }

        impl<T: Int> fmt::Debug for $t<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.get())
            }
        }

        impl<T: Int> Field for $t<T> {
            const LEN: usize = size_of::<T::Bytes>();
            fn read(b: &[u8]) -> Self {
                $t(bytes_of::<T>(b))
            }
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(self.0.as_ref());
            }
            fn show(b: &[u8]) -> String {
                format!("{:?}", Self::read(b))
            }
        }
    };
}
ordered!(Le, to_le, from_le);
ordered!(Be, to_be, from_be);

impl<T: Int> BothEndian<T> {
    /// The field holding `v` in both halves.
    pub fn new(v: T) -> Self {
        BothEndian {
            lsb: Le::new(v),
            msb: Be::new(v),
        }
    }
    /// The little-endian half, which readers use (as Linux and libarchive do).
    pub fn get(self) -> T {
        self.lsb.get()
    }
    /// The big-endian half.
    pub fn msb(self) -> T {
        self.msb.get()
    }
    /// Whether the halves agree.
    pub fn is_consistent(self) -> bool {
        self.lsb.get() == self.msb.get()
    }
}

impl<T: Int> fmt::Debug for BothEndian<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_consistent() {
            write!(f, "{}", self.get())
        } else {
            write!(f, "LSB {} / MSB {}", self.get(), self.msb())
        }
    }
}

impl<T: Int> Field for BothEndian<T> {
    const LEN: usize = 2 * size_of::<T::Bytes>();
    fn read(b: &[u8]) -> Self {
        let half = Self::LEN / 2;
        BothEndian {
            lsb: Le::read(&b[..half]),
            msb: Be::read(&b[half..]),
        }
    }
    fn write(&self, out: &mut [u8]) {
        let half = Self::LEN / 2;
        self.lsb.write(&mut out[..half]);
        self.msb.write(&mut out[half..]);
    }
    /// The value when the halves agree, both halves named when they do not.
    fn show(b: &[u8]) -> String {
        format!("{:?}", Self::read(b))
    }
}

/// A little-endian number shown in hex: checksums, CRCs, signatures and serial numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Hex<T: Int>(Le<T>);

impl<T: Int> Hex<T> {
    /// The field holding `v`.
    pub fn new(v: T) -> Self {
        Hex(Le::new(v))
    }
    /// Its value.
    pub fn get(self) -> T {
        self.0.get()
    }
}

impl<T: Int> fmt::Debug for Hex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:0w$x}", self.get(), w = 2 * size_of::<T::Bytes>())
    }
}

impl<T: Int> Field for Hex<T> {
    const LEN: usize = size_of::<T::Bytes>();
    fn read(b: &[u8]) -> Self {
        Hex(Le::read(b))
    }
    fn write(&self, out: &mut [u8]) {
        self.0.write(out);
    }
    fn show(b: &[u8]) -> String {
        format!("{:?}", Self::read(b))
    }
}

/// Raw bytes: reserved areas, boot code, identifiers compared as bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Bytes<const N: usize>(pub [u8; N]);

impl<const N: usize> Bytes<N> {
    /// All zeros.
    pub const fn zeroed() -> Self {
        Bytes([0; N])
    }
    /// `src` at the start, zeros after it; `None` when it does not fit.
    pub fn padded(src: &[u8]) -> Option<Self> {
        let mut b = [0; N];
        b.get_mut(..src.len())?.copy_from_slice(src);
        Some(Bytes(b))
    }
}

impl<const N: usize> fmt::Debug for Bytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::show(&self.0))
    }
}

impl<const N: usize> Field for Bytes<N> {
    const LEN: usize = N;
    fn read(b: &[u8]) -> Self {
        let mut x = [0; N];
        x.copy_from_slice(b);
        Bytes(x)
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
    /// Printable ASCII as a quoted string, up to 8 other bytes in hex, more as a count.
    fn show(b: &[u8]) -> String {
        let text = b.iter().all(|c| (0x20..0x7F).contains(c)) && !b.is_empty();
        if text {
            format!("{:?}", String::from_utf8_lossy(b))
        } else if b.len() <= 8 {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let nonzero = b.iter().filter(|x| **x != 0).count();
            format!("{} bytes ({nonzero} non-zero)", b.len())
        }
    }
}

/// A 32-bit number as 8 ASCII hexadecimal digits (the cpio "newc" header's fields).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct AsciiHex32([u8; 8]);

impl AsciiHex32 {
    /// The field holding `v`.
    pub fn new(v: u32) -> Self {
        let mut b = [0; 8];
        b.copy_from_slice(format!("{v:08x}").as_bytes());
        AsciiHex32(b)
    }
    /// The number, or `None` when a byte is not a hexadecimal digit.
    pub fn get(&self) -> Option<u32> {
        let s = std::str::from_utf8(&self.0).ok()?;
        if !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(s, 16).ok()
    }
}

impl fmt::Debug for AsciiHex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Self::show(&self.0))
    }
}

impl Field for AsciiHex32 {
    const LEN: usize = 8;
    fn read(b: &[u8]) -> Self {
        let mut x = [0; 8];
        x.copy_from_slice(b);
        AsciiHex32(x)
    }
    fn write(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0);
    }
    fn show(b: &[u8]) -> String {
        match AsciiHex32::read(b).get() {
            Some(v) => v.to_string(),
            None => Bytes::<8>::show(b),
        }
    }
}

impl<T: Field, const N: usize> Field for [T; N] {
    const LEN: usize = T::LEN * N;
    fn read(b: &[u8]) -> Self {
        std::array::from_fn(|i| T::read(&b[i * T::LEN..(i + 1) * T::LEN]))
    }
    fn write(&self, out: &mut [u8]) {
        for (i, x) in self.iter().enumerate() {
            x.write(&mut out[i * T::LEN..(i + 1) * T::LEN]);
        }
    }
    fn show(b: &[u8]) -> String {
        format!("{} bytes", b.len())
    }
    fn leaves(name: &str, offset: usize, out: &mut Vec<Leaf>) {
        for i in 0..N {
            T::leaves(&format!("{name}[{}]", i + 1), offset + i * T::LEN, out);
        }
    }
}

/// A string field could not hold the value it was given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Longer than the field.
    #[error("{value:?} is longer than the {len} bytes of the field")]
    TooLong {
        /// The value.
        value: String,
        /// The field's length.
        len: usize,
    },
    /// A character the field's character set has no place for.
    #[error("{value:?} holds {bad:?}, which {charset} cannot")]
    Charset {
        /// The value.
        value: String,
        /// The first character that does not fit.
        bad: char,
        /// The character set.
        charset: &'static str,
    },
}

/// Space-padded ASCII bytes from `s`, whose every character passes `ok`.
fn padded_ascii<const N: usize>(
    s: &str,
    charset: &'static str,
    ok: impl Fn(char) -> bool,
) -> Result<[u8; N], FieldError> {
    if let Some(bad) = s.chars().find(|c| !ok(*c)) {
        return Err(FieldError::Charset {
            value: s.to_string(),
            bad,
            charset,
        });
    }
    if s.len() > N {
        return Err(FieldError::TooLong {
            value: s.to_string(),
            len: N,
        });
    }
    let mut b = [b' '; N];
    b[..s.len()].copy_from_slice(s.as_bytes());
    Ok(b)
}

/// Text of a space-padded byte string, trailing spaces (and NULs) removed.
fn trimmed(b: &[u8]) -> Cow<'_, str> {
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != 0)
        .map_or(0, |i| i + 1);
    String::from_utf8_lossy(&b[..end])
}

/// An a-character string padded with spaces (ECMA-119 7.4.1). Construction accepts printable
/// ASCII, as mkisofs and xorriso write identifiers (lower case included); a read field keeps
/// whatever bytes the image holds.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct AChars<const N: usize>([u8; N]);

/// A d-character string padded with spaces (ECMA-119 7.4.1): `A-Z 0-9 _`, widened to lower
/// case, `-` and `.`, as NixOS volume labels (`nixos-minimal-24.05-x86_64`) use them and every
/// reader accepts them.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct DChars<const N: usize>([u8; N]);

impl<const N: usize> AChars<N> {
    /// The field holding `s`.
    pub fn new(s: &str) -> Result<Self, FieldError> {
        padded_ascii(s, "an a-character field (printable ASCII)", |c| {
            (' '..='~').contains(&c)
        })
        .map(AChars)
    }
    /// Its text, trailing spaces removed.
    pub fn text(&self) -> Cow<'_, str> {
        trimmed(&self.0)
    }
}

impl<const N: usize> DChars<N> {
    /// The field holding `s`.
    pub fn new(s: &str) -> Result<Self, FieldError> {
        padded_ascii(
            s,
            "a d-character field (A-Z, a-z, 0-9, '_', '-', '.')",
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
        )
        .map(DChars)
    }
    /// Its text, trailing spaces removed.
    pub fn text(&self) -> Cow<'_, str> {
        trimmed(&self.0)
    }
}

/// A UCS-2 big-endian string padded with spaces (U+0020), as Joliet records a supplementary
/// volume descriptor's identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Ucs2Be<const N: usize>([u8; N]);

/// UCS-2 big-endian bytes as text (Joliet's identifiers; an unpaired last byte ignored,
/// unpaired surrogates replaced).
pub fn ucs2_be(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

impl<const N: usize> Ucs2Be<N> {
    /// The field holding `s` (characters of the Basic Multilingual Plane only).
    pub fn new(s: &str) -> Result<Self, FieldError> {
        if let Some(bad) = s.chars().find(|c| (*c as u32) > 0xFFFF) {
            return Err(FieldError::Charset {
                value: s.to_string(),
                bad,
                charset: "UCS-2 (the Basic Multilingual Plane)",
            });
        }
        let units: Vec<u16> = s.encode_utf16().collect();
        if units.len() * 2 > N {
            return Err(FieldError::TooLong {
                value: s.to_string(),
                len: N,
            });
        }
        // Pairs of (0x00, 0x20) after the text; an odd field's last byte is 0x00, the high
        // byte of one more space, as xorriso and mkisofs leave it.
        let mut b = [0u8; N];
        for (i, pair) in b.chunks_mut(2).enumerate() {
            let u = units.get(i).copied().unwrap_or(0x20);
            let [hi, lo] = u.to_be_bytes();
            pair[0] = hi;
            if let Some(x) = pair.get_mut(1) {
                *x = lo;
            }
        }
        Ok(Ucs2Be(b))
    }
    /// Its text, trailing spaces removed (an unpaired last byte ignored).
    pub fn text(&self) -> String {
        ucs2_be(&self.0).trim_end_matches([' ', '\0']).to_string()
    }
}

macro_rules! text_field {
    ($t:ident, $show:expr) => {
        impl<const N: usize> fmt::Debug for $t<N> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.text())
            }
        }
        impl<const N: usize> Field for $t<N> {
            const LEN: usize = N;
            fn read(b: &[u8]) -> Self {
                let mut x = [0; N];
                x.copy_from_slice(b);
                $t(x)
            }
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.0);
            }
            fn show(b: &[u8]) -> String {
                let show: fn(&Self) -> String = $show;
                show(&Self::read(b))
            }
        }
    };
}
text_field!(AChars, |s| format!("{:?}", s.text()));
text_field!(DChars, |s| format!("{:?}", s.text()));
text_field!(Ucs2Be, |s| format!("{:?}", s.text()));

/// A UTF-16 little-endian string padded with NULs (a GPT partition name, UEFI 2.10 5.3.3).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub struct Utf16Le<const N: usize>([u8; N]);

impl<const N: usize> Utf16Le<N> {
    /// The field holding `s`; `None` when it does not fit.
    pub fn new(s: &str) -> Option<Self> {
        let mut b = [0u8; N];
        for (i, u) in s.encode_utf16().enumerate() {
            b.get_mut(2 * i..2 * i + 2)?
                .copy_from_slice(&u.to_le_bytes());
        }
        Some(Utf16Le(b))
    }
    /// Its text, up to the first NUL.
    pub fn text(&self) -> String {
        let units: Vec<u16> = self
            .0
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }
}
text_field!(Utf16Le, |s| format!("{:?}", s.text()));

#[cfg(test)]
mod tests {
    use super::*;

    record! {
        /// A record for the tests: one of each primitive.
        pub struct Sample("sample", 24) {
            0 kind: u8,
            1 name: AChars<5>,
            6 size: BothEndian<u32>,
            14 big: Be<u16>,
            16 little: Le<u32>,
            20 raw: Bytes<4>,
        }
    }

    record! {
        /// Nested records and arrays.
        pub struct Outer("outer", 50) {
            0 first: Sample,
            24 pair: [Le<u16>; 2],
            28 tail: Bytes<22>,
        }
    }

    fn sample() -> Sample {
        Sample {
            kind: 1,
            name: AChars::new("AB").unwrap(),
            size: BothEndian::new(0x0102_0304),
            big: Be::new(0x1234),
            little: Le::new(7),
            raw: Bytes(*b"\xff\0\0\x01"),
        }
    }

    #[test]
    fn fields_at_their_offsets() {
        let b = sample().encode();
        assert_eq!(
            b,
            [
                1, b'A', b'B', b' ', b' ', b' ', 4, 3, 2, 1, 1, 2, 3, 4, 0x12, 0x34, 7, 0, 0, 0,
                0xff, 0, 0, 1
            ]
        );
        assert_eq!(Sample::decode(&b).unwrap(), sample());
        // Longer input: the record takes its own bytes.
        let mut long = b.clone();
        long.push(9);
        assert_eq!(Sample::decode(&long).unwrap(), sample());
    }

    #[test]
    fn encode_into_leaves_what_follows_alone() {
        let mut out = vec![0xEE];
        sample().encode_into(&mut out);
        assert_eq!(out.len(), 25);
        assert_eq!(out[0], 0xEE);
        assert_eq!(out[1], 1);
    }

    #[test]
    fn short_input_is_an_error() {
        let b = sample().encode();
        assert_eq!(
            Sample::decode(&b[..10]),
            Err(DecodeError::Truncated {
                record: "sample",
                need: 24,
                have: 10
            })
        );
    }

    #[test]
    fn both_endian_halves_are_kept() {
        let mut b = sample().encode();
        b[13] = 9; // the big-endian half of `size` now disagrees
        let s = Sample::decode(&b).unwrap();
        assert!(!s.size.is_consistent());
        assert_eq!(s.size.get(), 0x0102_0304);
        assert_eq!(s.size.msb(), 0x0102_0309);
        assert_eq!(s.encode(), b, "decoding keeps every byte");
        let leaf = Sample::fields()
            .into_iter()
            .find(|l| l.name == "size")
            .unwrap();
        assert_eq!(
            (leaf.show)(&b[leaf.offset..leaf.offset + leaf.len]),
            "LSB 16909060 / MSB 16909065"
        );
    }

    #[test]
    fn nested_fields_are_named_by_path() {
        let names: Vec<(String, usize, usize)> = Outer::fields()
            .into_iter()
            .map(|l| (l.name, l.offset, l.len))
            .collect();
        assert_eq!(
            names,
            [
                ("first.kind".to_string(), 0, 1),
                ("first.name".to_string(), 1, 5),
                ("first.size".to_string(), 6, 8),
                ("first.big".to_string(), 14, 2),
                ("first.little".to_string(), 16, 4),
                ("first.raw".to_string(), 20, 4),
                ("pair[1]".to_string(), 24, 2),
                ("pair[2]".to_string(), 26, 2),
                ("tail".to_string(), 28, 22),
            ]
        );
    }

    #[test]
    fn strings_check_their_character_sets() {
        assert!(DChars::<8>::new("nixos-24.05").is_err(), "too long");
        assert_eq!(
            DChars::<12>::new("nixos-24.05").unwrap().text(),
            "nixos-24.05"
        );
        assert!(matches!(
            DChars::<8>::new("a b"),
            Err(FieldError::Charset { bad: ' ', .. })
        ));
        assert!(AChars::<8>::new("é").is_err());
        let u = Ucs2Be::<6>::new("é").unwrap();
        assert_eq!(u.0, [0x00, 0xE9, 0x00, 0x20, 0x00, 0x20]);
        assert_eq!(u.text(), "é");
        let odd = Ucs2Be::<5>::new("a").unwrap();
        assert_eq!(odd.0, [0x00, b'a', 0x00, 0x20, 0x00]);
        assert!(Ucs2Be::<8>::new("\u{1F600}").is_err());
        let g = Utf16Le::<8>::new("ESP").unwrap();
        assert_eq!(g.0, [b'E', 0, b'S', 0, b'P', 0, 0, 0]);
        assert_eq!(g.text(), "ESP");
        assert!(Utf16Le::<4>::new("ESP").is_none());
    }

    #[test]
    fn bytes_show_as_text_or_hex() {
        assert_eq!(Bytes::<5>::show(b"CD001"), "\"CD001\"");
        assert_eq!(Bytes::<2>::show(&[0x55, 0xAA]), "55 aa");
        assert_eq!(
            Bytes::<10>::show(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 2]),
            "10 bytes (2 non-zero)"
        );
    }
}

#[cfg(test)]
mod laws {
    use super::Record;
    use crate::image::{
        format::eltorito, format::fat, format::gpt, format::iso9660, format::mbr,
        format::rockridge, format::susp,
    };
    use proptest::prelude::*;

    /// Any bytes decode, and encode back to the same bytes: a record loses nothing it reads.
    fn round_trips<R: Record>(bytes: &[u8]) -> Result<(), TestCaseError> {
        let r = R::decode(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&r.encode()[..], &bytes[..R::LEN], "{}", R::NAME);
        // The leaves cover the record exactly once, in order.
        let mut at = 0;
        for l in R::fields() {
            prop_assert_eq!(l.offset, at, "{} {}", R::NAME, l.name);
            at += l.len;
        }
        prop_assert_eq!(at, R::LEN, "{}", R::NAME);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_record_round_trips(bytes in prop::collection::vec(any::<u8>(), 2048)) {
            round_trips::<iso9660::PrimaryVolumeDescriptor>(&bytes)?;
            round_trips::<iso9660::SupplementaryVolumeDescriptor>(&bytes)?;
            round_trips::<iso9660::Terminator>(&bytes)?;
            round_trips::<iso9660::DescriptorHeader>(&bytes)?;
            round_trips::<iso9660::DirRecordHeader>(&bytes)?;
            round_trips::<iso9660::RootDirectoryRecord>(&bytes)?;
            round_trips::<iso9660::PathTableEntryL>(&bytes)?;
            round_trips::<iso9660::PathTableEntryM>(&bytes)?;
            round_trips::<eltorito::BootRecordVolumeDescriptor>(&bytes)?;
            round_trips::<eltorito::ValidationEntry>(&bytes)?;
            round_trips::<eltorito::SectionEntry>(&bytes)?;
            round_trips::<eltorito::SectionHeader>(&bytes)?;
            round_trips::<eltorito::BootInfoTable>(&bytes)?;
            round_trips::<susp::SuspHeader>(&bytes)?;
            round_trips::<susp::SpEntry>(&bytes)?;
            round_trips::<susp::CeEntry>(&bytes)?;
            round_trips::<susp::ErHeader>(&bytes)?;
            round_trips::<rockridge::PxEntry>(&bytes)?;
            round_trips::<rockridge::PnEntry>(&bytes)?;
            round_trips::<rockridge::LinkEntry>(&bytes)?;
            round_trips::<mbr::Mbr>(&bytes)?;
            round_trips::<mbr::MbrPartition>(&bytes)?;
            round_trips::<gpt::GptHeader>(&bytes)?;
            round_trips::<gpt::GptEntry>(&bytes)?;
            round_trips::<fat::BootSector>(&bytes)?;
            round_trips::<fat::DirEntry>(&bytes)?;
            round_trips::<fat::LfnEntry>(&bytes)?;
        }

        /// Whatever a directory record's bytes say, decoding it is an answer, never a panic,
        /// and a decoded record encodes back to its bytes.
        #[test]
        fn directory_records_decode_or_refuse(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(r) = iso9660::DirectoryRecord::decode(&bytes) {
                let mut out = Vec::new();
                r.encode(&mut out);
                prop_assert_eq!(out.len(), r.len());
                // The pad byte after an even identifier is written as zero.
                if r.identifier.len() % 2 == 1 || bytes.get(33 + r.identifier.len()) == Some(&0) {
                    prop_assert_eq!(&out[..], &bytes[..r.len()]);
                }
            }
        }

        /// Any system use area reads as entries or as an error, never a panic.
        #[test]
        fn system_use_areas_decode_or_refuse(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = rockridge::Entry::all(&bytes);
            let _ = eltorito::BootCatalog::decode(&bytes);
            let _ = crate::image::read::fat::read_all(&bytes);
        }
    }
}
