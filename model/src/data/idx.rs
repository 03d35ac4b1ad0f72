//! The IDX format (LeCun's MNIST files): big-endian magic, dimensions, then `u8` data.
//! Every field is checked, so a truncated or corrupt file is an error that names it, never a panic.

use flate2::read::GzDecoder;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("no {name} or {name}.gz in {}", dir.display())]
    Missing { dir: PathBuf, name: String },
    #[error("reading {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
    #[error("{}: {labels} labels for {images} images", path.display())]
    CountMismatch { images: usize, labels: usize, path: PathBuf },
}

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

#[derive(Debug)]
pub struct Images {
    pub count: usize,
    pub pixels: Vec<u8>,
}

/// Finds `name.gz` or `name` in `dir`.
pub fn locate(dir: &Path, name: &str) -> Result<PathBuf, IdxError> {
    [dir.join(format!("{name}.gz")), dir.join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| IdxError::Missing { dir: dir.to_path_buf(), name: name.to_string() })
}

/// Reads the whole file, un-gzipping when it starts with the gzip magic.
fn read_bytes(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = std::fs::read(path).map_err(|source| IdxError::Io { path: path.to_path_buf(), source })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(|e| IdxError::Corrupt {
        path: path.to_path_buf(),
        what: format!("gzip stream is damaged or truncated ({e})"),
    })?;
    Ok(out)
}

/// Parses the header: magic, then one big-endian `u32` per dimension.
fn header(path: &Path, bytes: &[u8], magic: u32, dims: usize) -> Result<Vec<usize>, IdxError> {
    let corrupt = |what: String| IdxError::Corrupt { path: path.to_path_buf(), what };
    let need = 4 * (1 + dims);
    if bytes.len() < need {
        return Err(corrupt(format!("{} bytes is too short for an IDX header of {need} bytes", bytes.len())));
    }
    let word = |i: usize| u32::from_be_bytes([bytes[4 * i], bytes[4 * i + 1], bytes[4 * i + 2], bytes[4 * i + 3]]);
    if word(0) != magic {
        return Err(corrupt(format!("magic number {:#010x}, expected {magic:#010x}", word(0))));
    }
    Ok((1..=dims).map(|i| word(i) as usize).collect())
}

fn body<'a>(path: &Path, bytes: &'a [u8], offset: usize, expected: usize) -> Result<&'a [u8], IdxError> {
    let got = bytes.len() - offset;
    if got != expected {
        return Err(IdxError::Corrupt {
            path: path.to_path_buf(),
            what: format!("header announces {expected} data bytes but the file holds {got} (truncated or padded)"),
        });
    }
    Ok(&bytes[offset..])
}

/// Reads an images file; every image must be 28x28.
pub fn read_images(path: &Path) -> Result<Images, IdxError> {
    let bytes = read_bytes(path)?;
    let dims = header(path, &bytes, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if (rows, cols) != (super::SIDE, super::SIDE) {
        return Err(IdxError::Corrupt {
            path: path.to_path_buf(),
            what: format!("images are {rows}x{cols}, expected 28x28"),
        });
    }
    let pixels = body(path, &bytes, 16, count * super::PIXELS)?.to_vec();
    Ok(Images { count, pixels })
}

/// Reads a labels file; every label must be a digit.
pub fn read_labels(path: &Path) -> Result<Vec<u8>, IdxError> {
    let bytes = read_bytes(path)?;
    let count = header(path, &bytes, LABELS_MAGIC, 1)?[0];
    let labels = body(path, &bytes, 8, count)?;
    if let Some(i) = labels.iter().position(|&l| l > 9) {
        return Err(IdxError::Corrupt {
            path: path.to_path_buf(),
            what: format!("label {} at index {i} is not a digit", labels[i]),
        });
    }
    Ok(labels.to_vec())
}

/// Encodes images in IDX (for tests and tools that write tiny datasets).
pub fn encode_images(pixels: &[u8], count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + pixels.len());
    for word in [IMAGES_MAGIC, count as u32, super::SIDE as u32, super::SIDE as u32] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

/// Encodes labels in IDX.
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}
