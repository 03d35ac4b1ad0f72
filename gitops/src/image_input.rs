//! Bounded reading and decoding of untrusted images (uploads, CLI files).
//!
//! A file is read by [`read_limited`]: only a regular file, refused by its size before a byte
//! is read, and never more than the byte limit plus one. Bytes are decoded by
//! [`decode_limited`]: empty input, byte size, format sniffing, then the dimensions read from
//! the header alone, and only then a decode under `image::Limits`, so a decompression bomb is
//! refused before any pixel buffer is allocated.

use std::fs::FileType;
use std::io::{Cursor, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use image::{DynamicImage, ImageFormat, ImageReader};
use nix::fcntl::OFlag;

use crate::params::FeedbackParams;

/// Why an input was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageInputError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image is {len} bytes, more than the limit of {max} bytes")]
    TooLarge { len: u64, max: u64 },
    #[error("not an image: the bytes are not PNG, JPEG, GIF, BMP, WebP or TIFF")]
    NotAnImage,
    #[error(
        "the image is {width}x{height} = {pixels} pixels, more than the limit of {max} \
         (refused before decoding: possible decompression bomb)"
    )]
    TooManyPixels { width: u32, height: u32, pixels: u64, max: u64 },
    #[error("the image has no pixels ({width}x{height})")]
    NoPixels { width: u32, height: u32 },
    #[error("the {format:?} image header is unreadable: {source}")]
    Header { format: ImageFormat, source: image::ImageError },
    #[error("the {format:?} image cannot be decoded: {source}")]
    Decode { format: ImageFormat, source: image::ImageError },
}

/// Why an image file was not read (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum ReadImageError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("it is a {kind}, not a regular file (only image files of at most {max} bytes are read)")]
    NotAFile { kind: &'static str, max: u64 },
    #[error("it is {len} bytes, more than the limit of {max} bytes (refused before reading)")]
    TooLarge { len: u64, max: u64 },
    #[error("it grew past the limit of {max} bytes while it was read")]
    Grew { max: u64 },
}

/// Limits applied to every decoded input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_bytes: u64,
    pub max_pixels: u64,
}

impl From<&FeedbackParams> for ImageLimits {
    fn from(p: &FeedbackParams) -> Self {
        Self { max_bytes: p.max_image_bytes, max_pixels: p.max_pixels }
    }
}

impl Default for ImageLimits {
    fn default() -> Self {
        (&FeedbackParams::default()).into()
    }
}

/// Decodes `bytes` after checking size, format and header dimensions against `limits`.
pub fn decode_limited(bytes: &[u8], limits: &ImageLimits) -> Result<DynamicImage, ImageInputError> {
    if bytes.is_empty() {
        return Err(ImageInputError::Empty);
    }
    let len = bytes.len() as u64;
    if len > limits.max_bytes {
        return Err(ImageInputError::TooLarge { len, max: limits.max_bytes });
    }
    let format = image::guess_format(bytes).map_err(|_| ImageInputError::NotAnImage)?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader().into_dimensions().map_err(|source| ImageInputError::Header { format, source })?;
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 {
        return Err(ImageInputError::NoPixels { width, height });
    }
    if pixels > limits.max_pixels {
        return Err(ImageInputError::TooManyPixels { width, height, pixels, max: limits.max_pixels });
    }
    let mut decoder_limits = image::Limits::default();
    // The header may lie about the frame size of later frames (GIF, TIFF): cap the allocation
    // at the largest RGBA32F buffer an accepted image can need, and each side at the pixel cap.
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    decoder_limits.max_image_width = Some(side);
    decoder_limits.max_image_height = Some(side);
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16).max(1 << 20));
    let mut reader = reader();
    reader.limits(decoder_limits);
    reader.decode().map_err(|source| ImageInputError::Decode { format, source })
}

/// Reads the image file at `path` under `limits.max_bytes`: anything but a regular file
/// (`/dev/zero`, a FIFO, a folder) and a file larger than the limit are refused before a byte
/// is read, and no more than the limit plus one byte is ever read, so a file growing while it
/// is read is refused too. The bytes still go through [`decode_limited`].
pub fn read_limited(path: &Path, limits: &ImageLimits) -> Result<Vec<u8>, ReadImageError> {
    let max = limits.max_bytes;
    // Non-blocking, so that opening a FIFO nobody writes to returns at once (and is refused).
    let file = std::fs::OpenOptions::new().read(true).custom_flags(OFlag::O_NONBLOCK.bits()).open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadImageError::NotAFile { kind: kind_of(meta.file_type()), max });
    }
    if meta.len() > max {
        return Err(ReadImageError::TooLarge { len: meta.len(), max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadImageError::Grew { max });
    }
    Ok(bytes)
}

fn kind_of(t: FileType) -> &'static str {
    if t.is_dir() {
        "folder"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}
