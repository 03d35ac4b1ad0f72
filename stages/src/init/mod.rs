//! `pipeline init DIR --dataset PATH`: a repo for a team's own images. The task is derived from
//! the dataset (class names from its folders or `metadata.csv`, sorted; size and channels from
//! the images unless given; per-channel mean and deviation measured on its training images),
//! the dataset is linked in as `data/<name>` (git-ignored, a DVC dependency), and the base model
//! is trained, registered and committed with the scaffold. A table (`.csv`, `.parquet`) makes a
//! tabular task instead (`tabular.rs`).

mod tabular;

pub use tabular::{EXAMPLES, write_example};

use std::path::{Path, PathBuf};

use gitops::task::{InputShape, Normalize, Preprocess, Task, TaskAugment};
use rayon::prelude::*;

use gitops::architecture::{Architecture, CnnParams, ResnetParams};
use gitops::image_input::ImageLimits;
use model::data::{self, Dataset, ImageFolder, Loader, Split};
use model::preprocess;
use pipeline::repo::RepoPaths;
use pipeline::scaffold::{self, FILES, ScaffoldError, check_free, write_files};

/// What `pipeline init --dataset` was asked for; `None` fields are derived from the dataset.
#[derive(Debug, Clone)]
pub struct DatasetInit {
    pub dataset: PathBuf,
    pub name: Option<String>,
    /// Height and width.
    pub size: Option<(u32, u32)>,
    pub channels: Option<u32>,
    pub arch: Option<String>,
    pub preprocess: Option<Preprocess>,
    pub epochs: Option<usize>,
    /// A table's label column.
    pub label: Option<String>,
}

/// What was scaffolded: the files, the task, and where the dataset was linked.
#[derive(Debug)]
pub struct Scaffolded {
    pub files: Vec<PathBuf>,
    pub task: Task,
    pub architecture: Architecture,
    pub data_link: PathBuf,
    pub describe: String,
}

/// Longest side of a derived input size: larger inputs train slowly on a CPU and rarely help a
/// small classifier. `--size` overrides it.
const MAX_DERIVED_SIDE: u32 = 64;
/// Augmented copies of every base training image (`train.augment_copies`): a team's image set is
/// usually small, and a network trained on it alone learns it by heart.
const BASE_AUGMENT_COPIES: usize = 4;
/// Training images whose preprocessed values give the normalisation.
const NORMALIZE_SAMPLE: usize = 2000;

/// Writes the scaffold for `init.dataset` into `dir` and links the dataset; the caller trains
/// the base model and commits (see `cmd/init.rs`).
pub fn scaffold(dir: &Path, init: &DatasetInit, force: bool) -> Result<Scaffolded, ScaffoldError> {
    let bad = |what: String| ScaffoldError::Dataset { path: init.dataset.clone(), what };
    let source = std::fs::canonicalize(&init.dataset).map_err(|e| bad(e.to_string()))?;
    if data::table::is_table(&source) {
        return tabular::scaffold(dir, init, &source, force);
    }
    if init.label.is_some() {
        return Err(bad("--label names a table's label column, but this is not a .csv or .parquet file".into()));
    }
    let dataset = data::open(&source, 0.2).map_err(|e| bad(e.to_string()))?;
    let task = derive_task(&source, dataset.as_ref(), init).map_err(bad)?;
    let architecture = match init.arch.as_deref() {
        Some("cnn") => Architecture::Cnn(CnnParams::default()),
        Some("resnet") => Architecture::Resnet(ResnetParams::default()),
        Some(other) => return Err(bad(format!("--arch {other}: images train cnn or resnet"))),
        None if task.input.channels == 3 => Architecture::Resnet(ResnetParams::default()),
        None => Architecture::Cnn(CnnParams::default()),
    };
    let data_rel = PathBuf::from("data").join(&task.name);
    let params = params_text(&task, &architecture, &data_rel, init.epochs);
    let dvc = dvc_text(&data_rel);
    let readme = readme_text(&task, &dataset.describe());
    let own = Own { params: &params, dvc: &dvc, readme: &readme };
    let (files, data_link) = write_repo(dir, own, &data_rel, &source, &init.dataset, force)?;
    Ok(Scaffolded { files, task, architecture, data_link, describe: dataset.describe() })
}

/// The files a dataset's repo has of its own; the rest of the scaffold is embedded.
struct Own<'a> {
    params: &'a str,
    dvc: &'a str,
    readme: &'a str,
}

/// Writes the scaffold with this repo's own files into `dir` (refusing to overwrite without
/// `force`) and links the dataset at `source` as `data_rel`; returns the files and the link.
fn write_repo(
    dir: &Path,
    own: Own<'_>,
    data_rel: &Path,
    source: &Path,
    given: &Path,
    force: bool,
) -> Result<(Vec<PathBuf>, PathBuf), ScaffoldError> {
    let mut files: Vec<(PathBuf, &[u8])> = FILES
        .iter()
        .filter(|(p, _)| !matches!(*p, "params.yaml" | "dvc.yaml" | "README.md"))
        .map(|(p, b)| (PathBuf::from(p), *b))
        .collect();
    files.push(("params.yaml".into(), own.params.as_bytes()));
    files.push(("dvc.yaml".into(), own.dvc.as_bytes()));
    files.push(("README.md".into(), own.readme.as_bytes()));
    let targets: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    check_free(dir, &targets, force)?;
    let link = link_dataset(dir, data_rel, source, given)?;
    write_files(dir, &files)?;
    Ok((targets, link))
}

/// Links the dataset at `source` in as `dir/data_rel` (nothing to do when it is that file).
fn link_dataset(dir: &Path, data_rel: &Path, source: &Path, given: &Path) -> Result<PathBuf, ScaffoldError> {
    let link = dir.join(data_rel);
    if std::fs::canonicalize(&link).is_ok_and(|here| here == source) {
        return Ok(link);
    }
    if let Ok(existing) = std::fs::read_link(&link) {
        return Err(ScaffoldError::Dataset {
            path: given.to_path_buf(),
            what: format!("{} already links to {}", link.display(), existing.display()),
        });
    }
    let io = |source| ScaffoldError::Io { path: link.clone(), source };
    std::fs::create_dir_all(link.parent().expect("data/<name>")).map_err(io)?;
    std::os::unix::fs::symlink(source, &link).map_err(io)?;
    Ok(link)
}

/// The task of `dataset`: its classes, the given or derived input, and its normalisation.
fn derive_task(source: &Path, dataset: &dyn Dataset, init: &DatasetInit) -> Result<Task, String> {
    let classes = dataset.classes();
    let is_idx = data::idx::locate(source, data::TRAIN_FILES.0).is_ok();
    let (surveyed, colour) = if is_idx {
        ((data::SIDE as u32, data::SIDE as u32), false)
    } else {
        let survey = ImageFolder::open(source, 0.2).and_then(|f| f.survey(400)).map_err(|e| e.to_string())?;
        if survey.common_size == (0, 0) {
            let first = survey.first_unreadable.map(|p| p.display().to_string()).unwrap_or_default();
            return Err(format!("none of its images could be read (first: {first})"));
        }
        (survey.common_size, survey.colour)
    };
    let (height, width) = init.size.unwrap_or_else(|| fit_side(surveyed));
    let channels = init.channels.unwrap_or(if colour { 3 } else { 1 });
    let preprocess = init.preprocess.unwrap_or(if is_idx { Preprocess::Digit } else { Preprocess::Fit });
    let name = match &init.name {
        Some(name) => name.clone(),
        None => folder_name(source),
    };
    let photo = preprocess != Preprocess::Digit;
    let mut task = Task {
        name,
        kind: gitops::task::TaskKind::Image,
        classes,
        table: None,
        input: InputShape { channels, height, width },
        normalize: Normalize { mean: vec![0.5; channels as usize], std: vec![0.25; channels as usize] },
        preprocess,
        augment: TaskAugment {
            flip_horizontal: photo,
            flip_vertical: false,
            colour_jitter: if photo { 0.1 } else { 0.0 },
        },
    };
    task.validate().map_err(|e| e.to_string())?;
    task.normalize = measure(&task, dataset)?;
    task.validate().map_err(|e| e.to_string())?;
    Ok(task)
}

/// The surveyed (width, height) as (height, width), scaled down to `MAX_DERIVED_SIDE`.
fn fit_side((width, height): (u32, u32)) -> (u32, u32) {
    let long = width.max(height);
    if long <= MAX_DERIVED_SIDE {
        return (height, width);
    }
    let scale = |side: u32| ((side as f64 * MAX_DERIVED_SIDE as f64 / long as f64).round() as u32).max(8);
    (scale(height), scale(width))
}

/// A task name from a folder name: lower case, other characters than letters, digits, `-`,
/// `_` and `.` made `-`.
fn folder_name(path: &Path) -> String {
    let raw = path.file_name().and_then(|n| n.to_str()).unwrap_or("images").to_lowercase();
    let name: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect();
    let name = name.trim_start_matches('.').chars().take(64).collect::<String>();
    if name.is_empty() { "images".into() } else { name }
}

/// Per-channel mean and deviation of preprocessed training values (in [0, 1]), over up to
/// `NORMALIZE_SAMPLE` images spread over the split.
fn measure(task: &Task, dataset: &dyn Dataset) -> Result<Normalize, String> {
    let items = dataset.items(Split::Train).map_err(|e| e.to_string())?;
    let step = (items.len() / NORMALIZE_SAMPLE).max(1);
    let loader = Loader::new(ImageLimits { max_bytes: 64 << 20, max_pixels: 1 << 26 });
    let chosen: Vec<_> = items.iter().step_by(step).collect();
    let inputs: Vec<Vec<u8>> = chosen
        .par_iter()
        .filter_map(|item| preprocess::to_input(task, &loader.load(&item.path, item.index).ok()?).ok())
        .collect();
    if inputs.is_empty() {
        return Err("no training image could be read".into());
    }
    let plane = task.input.pixels();
    let channels = task.input.channels as usize;
    let (mut sum, mut squares) = (vec![0f64; channels], vec![0f64; channels]);
    for input in &inputs {
        for (c, values) in input.chunks(plane).enumerate() {
            for &v in values {
                let v = f64::from(v) / 255.0;
                sum[c] += v;
                squares[c] += v * v;
            }
        }
    }
    let n = (inputs.len() * plane) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = squares.iter().zip(&mean).map(|(sq, m)| (sq / n - m * m).max(0.0).sqrt().max(1e-3));
    let round = |v: f64| ((v * 10_000.0).round() / 10_000.0) as f32;
    Ok(Normalize { mean: mean.iter().map(|&m| round(m)).collect(), std: std.map(round).collect() })
}

/// The embedded `params.yaml` with this repo's `task`, `data` and `model` sections (and the
/// epochs, when given).
fn params_text(task: &Task, arch: &Architecture, data: &Path, epochs: Option<usize>) -> String {
    let text = std::str::from_utf8(scaffold::file("params.yaml")).expect("params.yaml is UTF-8");
    let mut text = set_section(text, "task", "what the classifier tells apart and reads (gitops::task)", &yaml(task));
    let data = format!("dir: {}\ntest_share: 0.2\n", data.display());
    text = set_section(&text, "data", "model::data: the base dataset (git-ignored; a DVC dependency)", &data);
    text = set_section(&text, "model", "model::arch: the network", &yaml(arch));
    if let Some(epochs) = epochs {
        text = set_key(&text, "train", "epochs", &epochs.to_string());
    }
    set_key(&text, "train", "augment_copies", &BASE_AUGMENT_COPIES.to_string())
}

fn yaml(value: &impl serde::Serialize) -> String {
    serde_yaml::to_string(value).expect("plain data serializes")
}

/// Replaces the top-level section `name:` of a YAML text (its line and the indented lines under
/// it) with `body` indented two spaces, or puts it first when the text has none.
fn set_section(text: &str, name: &str, comment: &str, body: &str) -> String {
    let header = format!("{name}:{}# {comment}\n", " ".repeat(28usize.saturating_sub(name.len() + 1)));
    let block: String = header + &body.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| l.starts_with(&format!("{name}:")));
    match start {
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|l| !l.starts_with(' ') && !l.trim().is_empty())
                .map_or(lines.len(), |i| start + 1 + i);
            let blank = if end < lines.len() { "\n" } else { "" };
            lines[..start].concat() + &block + blank + &lines[end..].concat()
        }
        None => {
            let first = lines.iter().position(|l| !l.starts_with('#') && !l.trim().is_empty()).unwrap_or(lines.len());
            lines[..first].concat() + &block + "\n" + &lines[first..].concat()
        }
    }
}

/// Sets `key` of the top-level section `section` (a line `  key: value  # comment`) to `value`,
/// keeping its comment in its column.
///
/// # Panics
/// When the section has no such key: the embedded `params.yaml` and its callers disagree.
fn set_key(text: &str, section: &str, key: &str, value: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| l.starts_with(&format!("{section}:")));
    let prefix = format!("  {key}: ");
    let at = start.and_then(|start| {
        lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with(' ') || l.trim().is_empty())
            .position(|l| l.starts_with(&prefix))
            .map(|i| start + 1 + i)
    });
    let at = at.unwrap_or_else(|| panic!("params.yaml has no {section}.{key}"));
    let rest = &lines[at][prefix.len()..];
    let line = match rest.find('#') {
        Some(hash) => format!("{prefix}{value:<width$}{}", &rest[hash..], width = hash.max(value.len() + 1)),
        None => format!("{prefix}{value}\n"),
    };
    lines[..at].concat() + &line + &lines[at + 1..].concat()
}

/// The embedded `dvc.yaml`, reading the base dataset from `data`.
fn dvc_text(data: &Path) -> String {
    let text = std::str::from_utf8(scaffold::file("dvc.yaml")).expect("dvc.yaml is UTF-8");
    text.replace("data/mnist", &data.display().to_string())
}

fn readme_text(task: &Task, described: &str) -> String {
    format!(
        "# {name}: an image classifier retrained from feedback through git\n\n\
         Scaffolded by `pipeline init --dataset` from {described}: {n} classes ({classes}), inputs \
         {c}x{h}x{w}. The task is `params.yaml` `task:`; every model records it and a model of another \
         task is refused.\n\n{rest}",
        name = task.name,
        n = task.classes.len(),
        classes = task.classes.join(", "),
        c = task.input.channels,
        h = task.input.height,
        w = task.input.width,
        rest = scaffold::README.split_once("\n\n").map_or("", |(_, rest)| rest),
    )
}

/// Trains, registers and commits the base model of a scaffolded repo (the progress bar shows
/// while it trains).
pub fn train_and_commit(dir: &Path, device: tch::Device) -> Result<crate::base::BaseRun, ScaffoldError> {
    let repo = RepoPaths::new(dir);
    let data = crate::base::data_dir(&repo).map_err(|e| ScaffoldError::Train(e.to_string()))?;
    let run = crate::base::train_base(&repo, &data, device, true).map_err(|e| ScaffoldError::Train(e.to_string()))?;
    let paths: Vec<PathBuf> = FILES.iter().map(|(p, _)| PathBuf::from(p)).chain([PathBuf::from("models")]).collect();
    let paths: Vec<&Path> = paths.iter().map(PathBuf::as_path).filter(|p| dir.join(p).exists()).collect();
    let message = format!(
        "pipeline init --dataset: the {} task and its base model {} ({:.2}% on the test split)",
        run.sidecar.task.name,
        run.sidecar.version,
        100.0 * run.evaluation.accuracy
    );
    gitops::git::commit_paths(dir, &paths, &message).map_err(|e| ScaffoldError::Train(e.to_string()))?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_replaced_in_place_or_put_first() {
        let text = "# head\n\ndata:   # old\n  mnist_dir: x\n\nmodel:\n  hidden: 1\n";
        let out = set_section(text, "data", "new", "dir: data/shapes\n");
        assert_eq!(out, "# head\n\ndata:                       # new\n  dir: data/shapes\n\nmodel:\n  hidden: 1\n");
        let out = set_section(text, "task", "t", "name: x\n");
        assert!(out.starts_with("# head\n\ntask:"), "{out}");
        assert!(out.contains("  name: x\n\ndata:"), "{out}");
        let last = set_section(text, "model", "m", "arch: cnn\n");
        assert!(last.ends_with("model:                      # m\n  arch: cnn\n"), "{last}");
    }

    #[test]
    fn a_key_is_set_in_its_own_section_keeping_its_comment() {
        let text = "train:\n  epochs: 8     # passes\n  copies: 0\naugment:\n  copies: 30  # per sample\n";
        let out = set_key(text, "augment", "copies", "0");
        assert_eq!(out, "train:\n  epochs: 8     # passes\n  copies: 0\naugment:\n  copies: 0   # per sample\n");
        let out = set_key(&out, "train", "epochs", "1234567");
        assert!(out.starts_with("train:\n  epochs: 1234567 # passes\n"), "{out}");
        assert_eq!(set_key(text, "train", "copies", "4"), text.replacen("copies: 0", "copies: 4", 1));
    }

    #[test]
    #[should_panic(expected = "params.yaml has no train.missing")]
    fn a_missing_key_is_a_scaffold_bug() {
        set_key("train:\n  epochs: 8\naugment:\n  missing: 1\n", "train", "missing", "0");
    }

    #[test]
    fn derived_sizes_keep_the_aspect_within_the_cap() {
        assert_eq!(fit_side((40, 30)), (30, 40));
        assert_eq!(fit_side((640, 480)), (48, 64));
        assert_eq!(fit_side((2000, 100)), (8, 64));
        assert_eq!(folder_name(Path::new("/x/My Photos!")), "my-photos-");
    }
}
