//! Image-folder datasets in the layouts people already have: a Hugging Face `metadata.csv`
//! (at the root or per split), torchvision `ImageFolder` class folders under `train/` and
//! `test/` (or `val/`, `validation/`), or class folders alone, split by a hash of each file.
//!
//! `ImageFolder::open` lists files and classes only; `items` hashes the files and `survey`
//! reads image headers. Decoding pixels is left to the caller.

use super::{DataError, Item, Split};

use image::{ColorType, ImageDecoder, ImageReader};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::num::NonZero;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::thread;

/// File extensions read as images, compared case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 8] = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"];

const METADATA: &str = "metadata.csv";
/// The test split's folder, the first of these that exists.
const TEST_DIRS: [&str; 3] = ["test", "val", "validation"];

const BY_METADATA: &str = "metadata.csv";
const BY_SPLIT_FOLDERS: &str = "folders with train/test";
const BY_HASH: &str = "folders (split by hash)";

/// An image-folder dataset: its layout, its classes, and its files with their labels.
#[derive(Debug)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    layout: Layout,
    skipped: usize,
}

#[derive(Debug)]
enum Layout {
    /// Train and test files listed apart.
    Split { name: &'static str, train: Vec<Labelled>, test: Vec<Labelled> },
    /// One listing, split by the sha256 of each file's bytes.
    Hashed { name: &'static str, files: Vec<Labelled>, test_share: f64, hashed: OnceLock<Vec<Item>> },
}

#[derive(Debug)]
struct Labelled {
    path: PathBuf,
    label: usize,
}

/// A file with its class name, before class names become label indices.
type Named = (PathBuf, String);

/// What the image headers of a sample of the dataset say.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    /// Files looked at, unreadable ones included.
    pub images: usize,
    /// The most common (width, height) of the readable ones; (0, 0) when none was readable.
    pub common_size: (u32, u32),
    /// Whether any readable image has colour channels (RGB or RGBA, whatever its pixels).
    pub colour: bool,
    pub unreadable: usize,
    pub first_unreadable: Option<PathBuf>,
}

impl ImageFolder {
    /// Detects the layout of `root` and lists its classes; reads no image data yet.
    ///
    /// `test_share` (0 to 1) is the share of files that go to the test split when the layout
    /// has no test split of its own.
    pub fn open(root: &Path, test_share: f64) -> Result<Self, DataError> {
        if !(0.0..=1.0).contains(&test_share) {
            return Err(bad(root, format!("the test share {test_share} is not between 0 and 1")));
        }
        let mut skipped = 0;
        let (name, listing) = detect(root, &mut skipped)?;
        let classes = class_names(&listing);
        check_classes(root, name, &classes, &listing)?;
        let label = |files: Vec<Named>| labelled(files, &classes);
        let layout = match listing {
            Listing::Split { train, test } => Layout::Split { name, train: label(train), test: label(test) },
            Listing::Hashed(files) => Layout::Hashed { name, files: label(files), test_share, hashed: OnceLock::new() },
        };
        Ok(Self { root: root.to_path_buf(), classes, layout, skipped })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names, sorted.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// "metadata.csv", "folders with train/test", or "folders (split by hash)", for messages.
    pub fn layout_name(&self) -> &'static str {
        match &self.layout {
            Layout::Split { name, .. } | Layout::Hashed { name, .. } => name,
        }
    }

    /// Files skipped for their extension.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The items of one split, sorted by path, with their label index and the sha256 of the
    /// file's bytes. Reads every file of the split (of the whole dataset when split by hash,
    /// once); fails on I/O errors only, never on what the bytes hold.
    pub fn items(&self, split: Split) -> Result<Vec<Item>, DataError> {
        match &self.layout {
            Layout::Split { train, test, .. } => hash_all(if split == Split::Train { train } else { test }),
            Layout::Hashed { files, test_share, hashed, .. } => {
                let all = match hashed.get() {
                    Some(all) => all,
                    None => {
                        let all = hash_all(files)?;
                        hashed.get_or_init(|| all)
                    }
                };
                let wanted = split == Split::Test;
                Ok(all.iter().filter(|item| is_test(&item.sha256, *test_share) == wanted).cloned().collect())
            }
        }
    }

    /// Reads the image headers (no pixels) of at most `limit` files, spread evenly over both
    /// splits: the most common size, whether any image has colour, and which files are unreadable.
    /// A dataset split by hash is sampled evenly over all its files, so that no file is read to
    /// learn its split. A file that cannot be read or decoded counts as unreadable.
    pub fn survey(&self, limit: usize) -> Result<Survey, DataError> {
        let sample: Vec<&Path> = match &self.layout {
            Layout::Split { train, test, .. } => {
                let (from_train, from_test) = quotas(limit, train.len(), test.len());
                spread(train, from_train).chain(spread(test, from_test)).map(|f| f.path.as_path()).collect()
            }
            Layout::Hashed { files, .. } => spread(files, limit.min(files.len())).map(|f| f.path.as_path()).collect(),
        };
        Ok(survey_headers(&sample))
    }
}

/// The files detection found, labelled by class name.
enum Listing {
    Split { train: Vec<Named>, test: Vec<Named> },
    Hashed(Vec<Named>),
}

impl Listing {
    fn files(&self) -> impl Iterator<Item = &Named> {
        let (first, second): (&[Named], &[Named]) = match self {
            Listing::Split { train, test } => (train, test),
            Listing::Hashed(files) => (files, &[]),
        };
        first.iter().chain(second)
    }
}

/// Finds the layout of `root`, trying them in the order the module doc gives, and lists its files.
fn detect(root: &Path, skipped: &mut usize) -> Result<(&'static str, Listing), DataError> {
    let root_csv = root.join(METADATA);
    if root_csv.is_file() {
        return Ok((BY_METADATA, Listing::Hashed(read_metadata(&root_csv, root, skipped)?)));
    }
    let train = root.join("train");
    let test = TEST_DIRS.iter().map(|name| root.join(name)).find(|dir| dir.is_dir());
    if train.join(METADATA).is_file() {
        return detect_split_metadata(&train, test.as_deref(), skipped);
    }
    if train.is_dir() {
        if let Some(test) = test {
            let listing = Listing::Split { train: scan_classes(&train, skipped)?, test: scan_classes(&test, skipped)? };
            return Ok((BY_SPLIT_FOLDERS, listing));
        }
        // `root/train/<class>` alone: the classes are in train/, not train/ a class of its own.
        if visible_entries(root)?.iter().filter(|(_, meta)| meta.is_dir()).count() == 1 {
            return Ok((BY_HASH, Listing::Hashed(scan_classes(&train, skipped)?)));
        }
    }
    Ok((BY_HASH, Listing::Hashed(scan_classes(root, skipped)?)))
}

/// `train/metadata.csv` with the test split's `metadata.csv`, or split by hash without a test folder.
fn detect_split_metadata(
    train: &Path,
    test: Option<&Path>,
    skipped: &mut usize,
) -> Result<(&'static str, Listing), DataError> {
    let train_files = read_metadata(&train.join(METADATA), train, skipped)?;
    let Some(test) = test else {
        return Ok((BY_METADATA, Listing::Hashed(train_files)));
    };
    let test_csv = test.join(METADATA);
    if !test_csv.is_file() {
        return Err(bad(test, format!("has no {METADATA}, while {} has one", train.display())));
    }
    let test_files = read_metadata(&test_csv, test, skipped)?;
    Ok((BY_METADATA, Listing::Split { train: train_files, test: test_files }))
}

/// Sorted, deduplicated class names over all splits.
fn class_names(listing: &Listing) -> Vec<String> {
    let names: BTreeSet<&String> = listing.files().map(|(_, class)| class).collect();
    names.into_iter().cloned().collect()
}

fn check_classes(root: &Path, layout: &str, classes: &[String], listing: &Listing) -> Result<(), DataError> {
    if listing.files().next().is_none() {
        return Err(bad(root, format!("no images found (read as {layout})")));
    }
    if classes.len() < 2 {
        let found = classes.join(", ");
        return Err(bad(root, format!("found one class ({found}); a classifier needs at least two")));
    }
    Ok(())
}

/// Turns class names into label indices into `classes`, sorted by path.
fn labelled(files: Vec<Named>, classes: &[String]) -> Vec<Labelled> {
    let mut files: Vec<Labelled> = files
        .into_iter()
        .map(|(path, class)| Labelled { path, label: classes.partition_point(|c| *c < class) })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

// ---- folders

/// Lists `dir/<class>/**/<image>`: every visible folder in `dir` is a class, its images found
/// at any depth. Files directly in `dir` are not part of any class and are passed over.
fn scan_classes(dir: &Path, skipped: &mut usize) -> Result<Vec<Named>, DataError> {
    let mut files = Vec::new();
    for (class_dir, meta) in visible_entries(dir)? {
        if !meta.is_dir() {
            continue;
        }
        let class = folder_name(&class_dir)?;
        let mut images = Vec::new();
        collect_images(&class_dir, &mut HashSet::new(), skipped, &mut images)?;
        if images.is_empty() {
            let what = format!("the class folder has no images ({})", IMAGE_EXTENSIONS.join(", "));
            return Err(bad(&class_dir, what));
        }
        files.extend(images.into_iter().map(|path| (path, class.clone())));
    }
    Ok(files)
}

/// Adds the images under `dir` to `out`, counting other files in `skipped`. `seen` holds the
/// folders already read, so a symlink back up the tree is read once.
fn collect_images(
    dir: &Path,
    seen: &mut HashSet<PathBuf>,
    skipped: &mut usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), DataError> {
    if !seen.insert(fs::canonicalize(dir).map_err(|e| io_error(dir, e))?) {
        return Ok(());
    }
    for (path, meta) in visible_entries(dir)? {
        if meta.is_dir() {
            collect_images(&path, seen, skipped, out)?;
        } else if meta.is_file() && is_image(&path) {
            out.push(path);
        } else if meta.is_file() {
            *skipped += 1;
        }
    }
    Ok(())
}

/// The entries of `dir` whose names do not start with '.', sorted, with symlinks followed.
fn visible_entries(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>, DataError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let meta = fs::metadata(&path).map_err(|e| io_error(&path, e))?;
        entries.push((path, meta));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn folder_name(dir: &Path) -> Result<String, DataError> {
    let name = dir.file_name().and_then(|name| name.to_str());
    name.map(str::to_owned).ok_or_else(|| bad(dir, "the folder name is not UTF-8, so it cannot name a class"))
}

fn is_image(path: &Path) -> bool {
    let extension = path.extension().and_then(|e| e.to_str());
    extension.is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|image| e.eq_ignore_ascii_case(image)))
}

// ---- metadata.csv

/// Lists the rows of a Hugging Face `metadata.csv` (columns `file_name` and `label`, others
/// ignored); file names are relative to `dir`.
fn read_metadata(csv: &Path, dir: &Path, skipped: &mut usize) -> Result<Vec<Named>, DataError> {
    let text = fs::read_to_string(csv).map_err(|e| io_error(csv, e))?;
    let records = parse_csv(&text).map_err(|(line, what)| bad(csv, format!("line {line}: {what}")))?;
    let Some((header, rows)) = records.split_first() else {
        return Err(bad(csv, "is empty; it needs a header with `file_name` and `label`"));
    };
    let file_column = column(csv, header, "file_name")?;
    let label_column = column(csv, header, "label")?;
    let mut files = Vec::new();
    let mut first_lines = HashMap::new();
    for row in rows {
        let at = |what: String| bad(csv, format!("line {}: {what}", row.line));
        if row.fields.len() != header.fields.len() {
            return Err(at(format!("{} fields where the header has {}", row.fields.len(), header.fields.len())));
        }
        let (name, label) = (row.fields[file_column].trim(), row.fields[label_column].trim());
        let Some(relative) = relative_path(name) else {
            return Err(at(format!("file_name {name:?} is not a path inside {}", dir.display())));
        };
        if label.is_empty() {
            return Err(at(format!("{name:?} has an empty label")));
        }
        if let Some(first) = first_lines.insert(relative.clone(), row.line) {
            return Err(at(format!("{name:?} is listed again (first on line {first})")));
        }
        if !is_image(&relative) {
            *skipped += 1;
            continue;
        }
        let path = dir.join(&relative);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => files.push((path, label.to_owned())),
            Ok(_) => return Err(at(format!("{} is not a file", path.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(at(format!("{} does not exist", path.display())));
            }
            Err(e) => return Err(io_error(&path, e)),
        }
    }
    Ok(files)
}

fn column(csv: &Path, header: &Record, name: &str) -> Result<usize, DataError> {
    let position = header.fields.iter().position(|field| field.trim() == name);
    position
        .ok_or_else(|| bad(csv, format!("the header has no `{name}` column (it has: {})", header.fields.join(", "))))
}

/// `name` as a relative path that stays inside its folder ("a/b.png", "./b.png"), or None.
fn relative_path(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let inside = path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let normal: PathBuf = path.components().filter(|c| matches!(c, Component::Normal(_))).collect();
    (inside && !normal.as_os_str().is_empty()).then_some(normal)
}

/// One CSV record and the line it starts on (1 for the header).
#[derive(Debug, PartialEq)]
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits CSV text into records (RFC 4180: fields in double quotes may hold commas, line
/// breaks and `""` for a quote). Blank lines are passed over; a leading byte-order mark too.
fn parse_csv(text: &str) -> Result<Vec<Record>, (usize, &'static str)> {
    let mut records = Vec::new();
    let (mut fields, mut field) = (Vec::new(), String::new());
    let (mut line, mut start, mut quoted) = (1, 1, false);
    let mut chars = text.strip_prefix('\u{feff}').unwrap_or(text).chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            '\n' if !quoted => {
                fields.push(std::mem::take(&mut field));
                push_record(&mut records, start, std::mem::take(&mut fields));
                line += 1;
                start = line;
            }
            _ => {
                line += usize::from(c == '\n');
                field.push(c);
            }
        }
    }
    if quoted {
        return Err((start, "a quoted field is not closed"));
    }
    fields.push(field);
    push_record(&mut records, start, fields);
    Ok(records)
}

fn push_record(records: &mut Vec<Record>, line: usize, fields: Vec<String>) {
    let blank = fields.len() == 1 && fields[0].trim().is_empty();
    if !blank {
        records.push(Record { line, fields });
    }
}

// ---- hashing

/// The items of `files` with the sha256 of each file, hashed on up to as many threads as
/// there are cores, in the order of `files`.
fn hash_all(files: &[Labelled]) -> Result<Vec<Item>, DataError> {
    let threads = thread::available_parallelism().map_or(1, NonZero::get);
    let chunk = files.len().div_ceil(threads).max(1);
    thread::scope(|scope| {
        let hash_part = |part: &'_ [Labelled]| part.iter().map(hash_item).collect::<Result<Vec<_>, _>>();
        let workers: Vec<_> = files.chunks(chunk).map(|part| scope.spawn(move || hash_part(part))).collect();
        let mut items = Vec::with_capacity(files.len());
        for worker in workers {
            items.extend(worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
        }
        Ok(items)
    })
}

fn hash_item(file: &Labelled) -> Result<Item, DataError> {
    Ok(Item { path: file.path.clone(), index: None, label: file.label, sha256: sha256_file(&file.path)? })
}

fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut file = File::open(path).map_err(|e| io_error(path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| io_error(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

/// Whether a file belongs to the test split: the first 16 hex digits of its sha256, read as a
/// share of 2^64, fall below `test_share`. The same bytes always land in the same split.
pub(crate) fn is_test(sha256: &str, test_share: f64) -> bool {
    let top = sha256.get(..16).and_then(|digits| u64::from_str_radix(digits, 16).ok());
    top.is_some_and(|top| top as f64 / 2f64.powi(64) < test_share)
}

// ---- survey

/// How many of `limit` come from train and from test: half each, the rest from the other
/// split when one is short.
fn quotas(limit: usize, train: usize, test: usize) -> (usize, usize) {
    let from_test = test.min(limit / 2);
    let from_train = train.min(limit - from_test);
    (from_train, test.min(limit - from_train))
}

/// `n` (at most `files.len()`) of `files`, evenly spaced from the first.
fn spread(files: &[Labelled], n: usize) -> impl Iterator<Item = &Labelled> {
    (0..n).map(move |i| &files[i * files.len() / n])
}

fn survey_headers(paths: &[&Path]) -> Survey {
    let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
    let (mut colour, mut unreadable, mut first_unreadable) = (false, 0, None);
    for path in paths {
        match read_header(path) {
            Some((size, colour_type)) => {
                *sizes.entry(size).or_default() += 1;
                colour |= has_colour(colour_type);
            }
            None => {
                unreadable += 1;
                first_unreadable.get_or_insert_with(|| path.to_path_buf());
            }
        }
    }
    // The most common size; of sizes equally common, the smallest.
    let common = sizes.iter().max_by_key(|&(size, count)| (count, std::cmp::Reverse(size)));
    let common_size = common.map_or((0, 0), |(size, _)| *size);
    Survey { images: paths.len(), common_size, colour, unreadable, first_unreadable }
}

/// The size and colour type in an image's header, or None when it cannot be read (a decoder
/// that panics on a corrupt file counts as unreadable too).
fn read_header(path: &Path) -> Option<((u32, u32), ColorType)> {
    let read = || -> image::ImageResult<_> {
        let decoder = ImageReader::open(path)?.with_guessed_format()?.into_decoder()?;
        Ok((decoder.dimensions(), decoder.color_type()))
    };
    std::panic::catch_unwind(read).ok()?.ok()
}

fn has_colour(colour_type: ColorType) -> bool {
    !matches!(colour_type, ColorType::L8 | ColorType::La8 | ColorType::L16 | ColorType::La16)
}

fn bad(path: &Path, what: impl Into<String>) -> DataError {
    DataError::Bad { path: path.to_path_buf(), what: what.into() }
}

fn io_error(path: &Path, source: io::Error) -> DataError {
    DataError::Io { path: path.to_path_buf(), source }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};
    use tempfile::TempDir;

    /// Writes a `width`x`height` grey PNG (or any format the extension names) of one `shade`.
    fn grey(path: &Path, width: u32, height: u32, shade: u8) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        GrayImage::from_pixel(width, height, Luma([shade])).save(path).unwrap();
    }

    fn colour(path: &Path, width: u32, height: u32) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        RgbImage::from_pixel(width, height, Rgb([200, 10, 10])).save(path).unwrap();
    }

    fn write(path: &Path, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Paths of items relative to `root`, with their class names, as "class:path".
    fn listed(folder: &ImageFolder, split: Split) -> Vec<String> {
        let items = folder.items(split).unwrap();
        let name = |item: &Item| item.path.strip_prefix(folder.root()).unwrap().display().to_string();
        items.iter().map(|item| format!("{}:{}", folder.classes()[item.label], name(item))).collect()
    }

    fn open_err(root: &Path) -> String {
        ImageFolder::open(root, 0.2).unwrap_err().to_string()
    }

    /// 40 distinct one-pixel images in two class folders straight under `root`.
    fn hashed_dataset(root: &Path) {
        for shade in 0..40u8 {
            let class = if shade % 2 == 0 { "even" } else { "odd" };
            grey(&root.join(format!("{class}/{shade:02}.png")), 1, 1, shade);
        }
    }

    #[test]
    fn reads_metadata_csv_at_the_root_split_by_hash() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("images/a.png"), 4, 4, 1);
        grey(&root.join("images/b.png"), 4, 4, 2);
        grey(&root.join("c.png"), 4, 4, 3);
        write(&root.join("metadata.csv"), "id,file_name,label\n1,images/a.png,dog\n2,images/b.png,cat\n3,c.png,dog\n");

        let folder = ImageFolder::open(root, 0.0).unwrap();
        assert_eq!(folder.layout_name(), "metadata.csv");
        assert_eq!(folder.classes(), ["cat", "dog"]);
        assert_eq!(listed(&folder, Split::Train), ["dog:c.png", "dog:images/a.png", "cat:images/b.png"]);
        assert!(folder.items(Split::Test).unwrap().is_empty());
    }

    #[test]
    fn reads_metadata_csv_per_split_folder() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("train/1.png"), 4, 4, 1);
        grey(&root.join("train/2.png"), 4, 4, 2);
        grey(&root.join("test/1.png"), 4, 4, 3);
        write(&root.join("train/metadata.csv"), "file_name,label\n1.png,zebra\n2.png,ant\n");
        write(&root.join("test/metadata.csv"), "label,file_name\nbee,1.png\n");

        let folder = ImageFolder::open(root, 0.5).unwrap();
        assert_eq!(folder.layout_name(), "metadata.csv");
        assert_eq!(folder.classes(), ["ant", "bee", "zebra"]);
        assert_eq!(listed(&folder, Split::Train), ["zebra:train/1.png", "ant:train/2.png"]);
        assert_eq!(listed(&folder, Split::Test), ["bee:test/1.png"]);
    }

    #[test]
    fn reads_class_folders_under_train_and_test() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("train/cat/b.png"), 4, 4, 1);
        grey(&root.join("train/cat/a.jpg"), 4, 4, 2);
        grey(&root.join("train/dog/deeper/c.png"), 4, 4, 3);
        grey(&root.join("test/dog/d.png"), 4, 4, 4);
        grey(&root.join("test/emu/e.png"), 4, 4, 5);

        let folder = ImageFolder::open(root, 0.5).unwrap();
        assert_eq!(folder.layout_name(), "folders with train/test");
        assert_eq!(folder.classes(), ["cat", "dog", "emu"]);
        assert_eq!(
            listed(&folder, Split::Train),
            ["cat:train/cat/a.jpg", "cat:train/cat/b.png", "dog:train/dog/deeper/c.png"]
        );
        assert_eq!(listed(&folder, Split::Test), ["dog:test/dog/d.png", "emu:test/emu/e.png"]);
    }

    #[test]
    fn takes_val_or_validation_as_the_test_split() {
        for test_dir in ["val", "validation"] {
            let dir = TempDir::new().unwrap();
            let root = dir.path();
            grey(&root.join("train/cat/1.png"), 4, 4, 1);
            grey(&root.join("train/dog/2.png"), 4, 4, 2);
            grey(&root.join(format!("{test_dir}/dog/3.png")), 4, 4, 3);

            let folder = ImageFolder::open(root, 0.5).unwrap();
            assert_eq!(folder.layout_name(), "folders with train/test");
            assert_eq!(listed(&folder, Split::Test), [format!("dog:{test_dir}/dog/3.png")]);
        }
    }

    #[test]
    fn reads_class_folders_without_splits_by_hash() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(dir.path());

        let folder = ImageFolder::open(dir.path(), 0.3).unwrap();
        assert_eq!(folder.layout_name(), "folders (split by hash)");
        assert_eq!(folder.classes(), ["even", "odd"]);
        let (train, test) = (folder.items(Split::Train).unwrap(), folder.items(Split::Test).unwrap());
        assert_eq!(train.len() + test.len(), 40);
        assert!(!train.is_empty() && !test.is_empty(), "40 files should land in both splits");
        assert!(train.iter().all(|item| !is_test(&item.sha256, 0.3)));
        assert!(test.iter().all(|item| is_test(&item.sha256, 0.3)));
    }

    #[test]
    fn train_folder_alone_holds_the_classes() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(&dir.path().join("train"));

        let folder = ImageFolder::open(dir.path(), 0.3).unwrap();
        assert_eq!(folder.layout_name(), "folders (split by hash)");
        assert_eq!(folder.classes(), ["even", "odd"]);
    }

    #[test]
    fn items_carry_the_sha256_of_their_bytes_in_path_order() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(dir.path());

        let items = ImageFolder::open(dir.path(), 0.0).unwrap().items(Split::Train).unwrap();
        assert_eq!(items.len(), 40);
        assert!(items.windows(2).all(|pair| pair[0].path < pair[1].path));
        for item in &items {
            assert_eq!(item.sha256, hex::encode(Sha256::digest(fs::read(&item.path).unwrap())));
            assert_eq!(item.index, None);
        }
    }

    #[test]
    fn hash_split_is_stable_and_new_files_move_no_others() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        hashed_dataset(root);
        let test_paths = || -> Vec<PathBuf> {
            let folder = ImageFolder::open(root, 0.3).unwrap();
            folder.items(Split::Test).unwrap().into_iter().map(|item| item.path).collect()
        };
        let before = test_paths();
        assert_eq!(test_paths(), before, "the same files split the same way");

        for shade in 100..140u8 {
            grey(&root.join(format!("odd/new-{shade}.png")), 1, 1, shade);
        }
        let after = test_paths();
        let old_after: Vec<&PathBuf> = after.iter().filter(|path| !path.to_string_lossy().contains("new-")).collect();
        assert_eq!(old_after, before.iter().collect::<Vec<_>>(), "old files stay where they were");
        assert!(after.len() > before.len(), "some of the 40 new files go to test");
    }

    #[test]
    fn hash_split_reads_the_first_16_hex_digits_as_a_share() {
        let half = format!("8000000000000000{}", "f".repeat(48));
        let below_half = format!("7ff0000000000000{}", "f".repeat(48));
        assert!(!is_test(&half, 0.5), "a share of exactly 0.5 is not below 0.5");
        assert!(is_test(&half, 0.500001));
        assert!(is_test(&below_half, 0.5));
        assert!(!is_test(&"0".repeat(64), 0.0));
    }

    #[test]
    fn hash_split_takes_none_or_all_at_the_ends() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(dir.path());

        let none = ImageFolder::open(dir.path(), 0.0).unwrap();
        assert_eq!(none.items(Split::Test).unwrap().len(), 0);
        let all = ImageFolder::open(dir.path(), 1.0).unwrap();
        assert_eq!(all.items(Split::Train).unwrap().len(), 0);
    }

    #[test]
    fn ignores_hidden_entries_and_counts_other_files() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("cat/1.png"), 4, 4, 1);
        grey(&root.join("cat/2.JPEG"), 4, 4, 2);
        grey(&root.join("cat/.hidden.png"), 4, 4, 3);
        grey(&root.join("dog/3.tif"), 4, 4, 4);
        grey(&root.join(".cache/4.png"), 4, 4, 5);
        grey(&root.join("dog/.thumbs/5.png"), 4, 4, 6);
        write(&root.join("cat/notes.txt"), "not an image");
        write(&root.join("dog/labels.json"), "{}");
        write(&root.join("README.md"), "a file at the root is in no class");

        let folder = ImageFolder::open(root, 0.0).unwrap();
        assert_eq!(folder.classes(), ["cat", "dog"]);
        assert_eq!(listed(&folder, Split::Train), ["cat:cat/1.png", "cat:cat/2.JPEG", "dog:dog/3.tif"]);
        assert_eq!(folder.skipped(), 2);
    }

    #[test]
    fn metadata_rows_naming_other_files_are_skipped() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("a.png"), 4, 4, 1);
        grey(&root.join("b.png"), 4, 4, 2);
        write(&root.join("a.txt"), "caption");
        write(&root.join("metadata.csv"), "file_name,label\na.png,x\nb.png,y\na.txt,x\n");

        let folder = ImageFolder::open(root, 0.0).unwrap();
        assert_eq!(folder.items(Split::Train).unwrap().len(), 2);
        assert_eq!(folder.skipped(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn follows_symlinked_files() {
        let dir = TempDir::new().unwrap();
        let root = dir.path().join("data");
        grey(&dir.path().join("elsewhere/real.png"), 4, 4, 1);
        grey(&root.join("dog/2.png"), 4, 4, 2);
        fs::create_dir_all(root.join("cat")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere/real.png"), root.join("cat/link.png")).unwrap();

        let folder = ImageFolder::open(&root, 0.0).unwrap();
        let items = folder.items(Split::Train).unwrap();
        assert_eq!(listed(&folder, Split::Train), ["cat:cat/link.png", "dog:dog/2.png"]);
        assert_eq!(items[0].sha256, sha256_file(&dir.path().join("elsewhere/real.png")).unwrap());
    }

    #[test]
    fn csv_quoted_fields_keep_commas_quotes_and_line_breaks() {
        let text = concat!(
            "\u{feff}file_name,label,caption\r\n", // a byte-order mark and Windows line ends
            r#""a, b.png","big ""cat""","two"#,
            "\n",
            r#"lines""#,
            "\r\n\n", // a blank line
            "c.png,dog,\n",
        );
        let records = parse_csv(text).unwrap();
        let fields: Vec<&[String]> = records.iter().map(|record| record.fields.as_slice()).collect();
        assert_eq!(
            fields,
            [&["file_name", "label", "caption"][..], &["a, b.png", "big \"cat\"", "two\nlines"], &["c.png", "dog", ""]]
        );
        assert_eq!(records.iter().map(|record| record.line).collect::<Vec<_>>(), [1, 2, 5]);
        assert_eq!(parse_csv("a,\"b\nc").unwrap_err(), (1, "a quoted field is not closed"));
    }

    #[test]
    fn metadata_csv_with_quoted_names_and_labels() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("a, b.png"), 4, 4, 1);
        grey(&root.join("c.png"), 4, 4, 2);
        write(&root.join("metadata.csv"), "file_name,caption,label\n\"a, b.png\",\"x, y\",\"cat, big\"\nc.png,,dog\n");

        let folder = ImageFolder::open(root, 0.0).unwrap();
        assert_eq!(folder.classes(), ["cat, big", "dog"]);
        assert_eq!(listed(&folder, Split::Train), ["cat, big:a, b.png", "dog:c.png"]);
    }

    #[test]
    fn error_empty_dataset_names_the_root() {
        let dir = TempDir::new().unwrap();
        write(&dir.path().join("README.md"), "nothing here");
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("no images found"), "{message}");
    }

    #[test]
    fn error_class_folder_without_images_names_the_folder() {
        let dir = TempDir::new().unwrap();
        grey(&dir.path().join("cat/1.png"), 4, 4, 1);
        write(&dir.path().join("dog/notes.txt"), "no images");
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().join("dog").display().to_string()), "{message}");
        assert!(message.contains("has no images"), "{message}");
    }

    #[test]
    fn error_metadata_without_the_columns_names_the_column() {
        let dir = TempDir::new().unwrap();
        grey(&dir.path().join("a.png"), 4, 4, 1);
        write(&dir.path().join("metadata.csv"), "file,label\na.png,cat\n");
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().join("metadata.csv").display().to_string()), "{message}");
        assert!(message.contains("no `file_name` column"), "{message}");
    }

    #[test]
    fn error_metadata_row_naming_a_missing_file_names_row_and_file() {
        let dir = TempDir::new().unwrap();
        grey(&dir.path().join("a.png"), 4, 4, 1);
        write(&dir.path().join("metadata.csv"), "file_name,label\na.png,cat\ngone.png,dog\n");
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().join("metadata.csv").display().to_string()), "{message}");
        assert!(message.contains("line 3:"), "{message}");
        assert!(message.contains(&format!("{} does not exist", dir.path().join("gone.png").display())), "{message}");
    }

    #[test]
    fn error_metadata_rows_that_cannot_be_used_name_their_line() {
        let cases = [
            ("file_name,label\na.png\n", "line 2: 1 fields where the header has 2"),
            ("file_name,label\n../a.png,cat\n", "line 2: file_name \"../a.png\" is not a path inside"),
            ("file_name,label\n\na.png,\n", "line 3: \"a.png\" has an empty label"),
            ("file_name,label\na.png,cat\n./a.png,dog\n", "line 3: \"./a.png\" is listed again (first on line 2)"),
            ("file_name,label\n\"a.png,cat\n", "line 2: a quoted field is not closed"),
            ("", "is empty"),
        ];
        for (csv, expected) in cases {
            let dir = TempDir::new().unwrap();
            grey(&dir.path().join("a.png"), 4, 4, 1);
            write(&dir.path().join("metadata.csv"), csv);
            let message = open_err(dir.path());
            assert!(message.contains(expected), "{csv:?}: {message}");
        }
    }

    #[test]
    fn error_test_split_without_its_metadata_names_the_folder() {
        let dir = TempDir::new().unwrap();
        grey(&dir.path().join("train/a.png"), 4, 4, 1);
        write(&dir.path().join("train/metadata.csv"), "file_name,label\na.png,cat\n");
        grey(&dir.path().join("test/b.png"), 4, 4, 1);
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().join("test").display().to_string()), "{message}");
        assert!(message.contains("has no metadata.csv"), "{message}");
    }

    #[test]
    fn error_fewer_than_two_classes_names_the_class() {
        let dir = TempDir::new().unwrap();
        grey(&dir.path().join("cat/1.png"), 4, 4, 1);
        let message = open_err(dir.path());
        assert!(message.starts_with(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("found one class (cat)"), "{message}");
    }

    #[test]
    fn error_test_share_out_of_range() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(dir.path());
        for share in [-0.1, 1.5, f64::NAN] {
            let message = ImageFolder::open(dir.path(), share).unwrap_err().to_string();
            assert!(message.contains("is not between 0 and 1"), "{message}");
        }
    }

    #[test]
    fn survey_reads_sizes_colour_and_corrupt_files_from_headers() {
        let dir = TempDir::new().unwrap();
        let root = dir.path();
        grey(&root.join("train/cat/1.png"), 28, 28, 1);
        grey(&root.join("train/cat/2.png"), 28, 28, 2);
        grey(&root.join("train/dog/3.bmp"), 32, 16, 3);
        write(&root.join("train/dog/4.png"), "not a png at all");
        grey(&root.join("test/cat/5.png"), 28, 28, 4);
        colour(&root.join("test/dog/6.jpg"), 28, 28);

        let folder = ImageFolder::open(root, 0.0).unwrap();
        let survey = folder.survey(100).unwrap();
        let first_unreadable = Some(root.join("train/dog/4.png"));
        assert_eq!(survey, Survey { images: 6, common_size: (28, 28), colour: true, unreadable: 1, first_unreadable });
        assert_eq!(folder.items(Split::Train).unwrap().len(), 4, "a corrupt file is still an item");
    }

    #[test]
    fn survey_of_grey_images_finds_no_colour() {
        let dir = TempDir::new().unwrap();
        hashed_dataset(dir.path());
        let survey = ImageFolder::open(dir.path(), 0.5).unwrap().survey(10).unwrap();
        assert_eq!(
            survey,
            Survey { images: 10, common_size: (1, 1), colour: false, unreadable: 0, first_unreadable: None }
        );
    }

    #[test]
    fn survey_spreads_its_limit_over_both_splits() {
        assert_eq!(quotas(10, 100, 100), (5, 5));
        assert_eq!(quotas(11, 100, 100), (6, 5));
        assert_eq!(quotas(10, 100, 3), (7, 3));
        assert_eq!(quotas(10, 2, 100), (2, 8));
        assert_eq!(quotas(10, 2, 3), (2, 3));
        assert_eq!(quotas(0, 2, 3), (0, 0));

        let files: Vec<Labelled> = (0..10).map(|i| Labelled { path: PathBuf::from(i.to_string()), label: 0 }).collect();
        let picked: Vec<&Path> = spread(&files, 4).map(|file| file.path.as_path()).collect();
        assert_eq!(picked, ["0", "2", "5", "7"].map(Path::new));
    }
}
