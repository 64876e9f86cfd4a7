//! Bundle formats: which one a file is, and how to read its rootfs.
//!
//! The format is decided by the file's first bytes, never by its name.
//! Each format turns the bundle into one or more tar streams for
//! `unpack.rs`; a new format (OCI layout, `docker save`) is one more
//! variant here and one more module that feeds its layers in order.

use std::io::Read;

use flate2::read::MultiGzDecoder;

/// A bundle format the store knows how to unpack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A rootfs as a plain tar archive.
    Tar,
    /// A rootfs as a gzip-compressed tar archive.
    TarGzip,
}

/// Magic numbers of compressions that are recognised only to be refused
/// with a clear message.
const UNSUPPORTED: &[(&[u8], &str)] = &[
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd-compressed"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz-compressed"),
    (b"BZh", "bzip2-compressed"),
    (b"PK\x03\x04", "zip archive"),
];

/// Bytes of the head of a file that [`Format::detect`] looks at.
pub const HEAD_LEN: usize = 8;

impl Format {
    /// The format of a bundle whose file starts with `head`. Anything that
    /// is not recognised as a compressed stream is taken as a plain tar; the
    /// tar reader then rejects it if its first header is invalid.
    pub fn detect(head: &[u8]) -> Result<Format, &'static str> {
        if head.starts_with(&[0x1f, 0x8b]) {
            return Ok(Format::TarGzip);
        }
        for (magic, what) in UNSUPPORTED {
            if head.starts_with(magic) {
                return Err(what);
            }
        }
        Ok(Format::Tar)
    }

    /// The name recorded in the store's `meta.json`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGzip => "tar+gzip",
        }
    }

    /// Whether the tar stream is produced by a decompressor.
    pub fn is_compressed(self) -> bool {
        matches!(self, Format::TarGzip)
    }

    /// The tar stream of a bundle read from `file`.
    pub fn tar_stream<'a>(self, file: impl Read + 'a) -> Box<dyn Read + 'a> {
        match self {
            Format::Tar => Box::new(file),
            // Multi-member, as gzip(1) reads concatenated members.
            Format::TarGzip => Box::new(MultiGzDecoder::new(file)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_gzip_magic_is_tar_gzip() {
        assert_eq!(Format::detect(&[0x1f, 0x8b, 8, 0]), Ok(Format::TarGzip));
    }

    #[test]
    fn detect_zstd_magic_refused() {
        assert_eq!(
            Format::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Err("zstd-compressed")
        );
    }

    #[test]
    fn detect_other_bytes_are_tar() {
        assert_eq!(Format::detect(b"etc/\0\0\0\0"), Ok(Format::Tar));
        assert_eq!(Format::detect(b""), Ok(Format::Tar));
    }
}
