//! `pipeline data fetch`: puts the four MNIST files into the data directory, either copied from a
//! local folder (checked against its `SHA256SUMS`, or the canonical checksums) or downloaded from
//! the canonical mirrors and checked against the canonical checksums. Files are written to a
//! temporary name and renamed, so an interrupted fetch never leaves a half file under the real name.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The gzip files every MNIST loader knows, with the sha256 of the official releases.
pub const CANONICAL: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
];

/// Mirrors tried in order (the ones torchvision uses; yann.lecun.com itself now refuses bots).
pub const MIRRORS: [&str; 2] =
    ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"];

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{name} is missing from {}", dir.display())]
    Missing { name: String, dir: PathBuf },
    #[error("{}: sha256 is {got}, expected {expected}; the file is damaged or not the MNIST release", path.display())]
    Checksum { path: PathBuf, got: String, expected: String },
    #[error(
        "could not download {name} from any mirror (is there network access? use --from DIR or MNIST_DIR for a local copy): {reasons}"
    )]
    Download { name: String, reasons: String },
}

/// Where the files come from.
#[derive(Debug, Clone)]
pub enum Source {
    Dir(PathBuf),
    Mirrors,
}

/// Fetches the four files into `dest`; files already there with the right checksum are kept.
/// Returns the paths written or verified.
pub fn fetch(source: &Source, dest: &Path) -> Result<Vec<PathBuf>, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let expected = match source {
        Source::Dir(dir) => checksums_of(dir)?,
        // A copy fetched earlier from a folder vouches for itself through its SHA256SUMS.
        Source::Mirrors => checksums_of(dest)?,
    };
    let mut done = Vec::new();
    let mut verified = String::new();
    for (name, canonical) in CANONICAL {
        let target = dest.join(name);
        let want =
            if matches!(source, Source::Mirrors) && !target.is_file() { canonical } else { expected[name].as_str() };
        verified.push_str(&format!("{want}  {name}\n"));
        if target.is_file() && sha256_file(&target)? == want {
            done.push(target);
            continue;
        }
        let bytes = match source {
            Source::Dir(dir) => {
                let from = dir.join(name);
                if !from.is_file() {
                    return Err(FetchError::Missing { name: name.to_string(), dir: dir.clone() });
                }
                std::fs::read(&from).map_err(io(&from))?
            }
            Source::Mirrors => download(name)?,
        };
        let got = hex::encode(Sha256::digest(&bytes));
        if got != want {
            return Err(FetchError::Checksum { path: target, got, expected: want.to_string() });
        }
        write_atomically(&target, &bytes)?;
        done.push(target);
    }
    let sums = dest.join("SHA256SUMS");
    if std::fs::read_to_string(&sums).ok().as_deref() != Some(verified.as_str()) {
        write_atomically(&sums, verified.as_bytes())?;
    }
    Ok(done)
}

/// The checksums a folder vouches for: its `SHA256SUMS` (as `sha256sum` writes it) when
/// present, the canonical ones otherwise. `fetch` writes one next to the files it puts in place.
fn checksums_of(dir: &Path) -> Result<HashMap<String, String>, FetchError> {
    let mut sums: HashMap<String, String> = CANONICAL.iter().map(|(n, h)| (n.to_string(), h.to_string())).collect();
    let file = dir.join("SHA256SUMS");
    if let Ok(text) = std::fs::read_to_string(&file) {
        for line in text.lines() {
            if let Some((hash, name)) = line.split_once(char::is_whitespace) {
                let name = name.trim().trim_start_matches('*');
                sums.insert(name.to_string(), hash.to_lowercase());
            }
        }
    }
    Ok(sums)
}

fn download(name: &str) -> Result<Vec<u8>, FetchError> {
    let mut reasons = Vec::new();
    for mirror in MIRRORS {
        let url = format!("{mirror}{name}");
        match ureq::get(&url).call().and_then(|mut r| r.body_mut().with_config().limit(64 << 20).read_to_vec()) {
            Ok(bytes) => return Ok(bytes),
            Err(e) => reasons.push(format!("{url}: {e}")),
        }
    }
    Err(FetchError::Download { name: name.to_string(), reasons: reasons.join("; ") })
}

pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let bytes = std::fs::read(path).map_err(|source| FetchError::Io { path: path.to_path_buf(), source })?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn write_atomically(target: &Path, bytes: &[u8]) -> Result<(), FetchError> {
    let tmp = target.with_extension("partial");
    let io = |source| FetchError::Io { path: target.to_path_buf(), source };
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, target).map_err(io)
}
