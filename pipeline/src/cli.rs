//! The arguments of the commands that run a model (`data`, `train-base`, `predict`, `init
//! --dataset`). Both binaries parse them: `pipeline` (torch free) for its help and to check
//! them, then it runs `pipeline-model` with the same arguments, which parses them again and
//! does the work with libtorch. One definition, so the two never disagree.

use clap::{Args, Subcommand};
use gitops::device::DeviceChoice;
use gitops::task::Preprocess;
use std::path::PathBuf;

/// The commands `pipeline-model` runs (`pipeline` lists them among its own and runs plain
/// `init`, which needs no model, itself).
#[derive(Subcommand)]
pub enum ModelCommand {
    /// Get the MNIST dataset into data/mnist/.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train the task's network from scratch on the base dataset and register it for serving.
    TrainBase(TrainBaseArgs),
    /// Classify image files (or a tabular task's rows) with the serving model.
    Predict(PredictArgs),
    /// Scaffold a new GitOps retraining repo.
    Init(InitArgs),
    /// Write a model's drift reference into its sidecar (models from before drift was watched)
    ///
    /// The reference is the model's signals (confidence, the input's mean and spread, or a
    /// row's number features) on the base dataset's test split; the model server compares
    /// windows of live predictions with it. Training and promotion write it themselves.
    Reference(ReferenceArgs),
    /// List feedback whose label the serving model finds very unlikely, and accept, relabel or
    /// reject it
    ///
    /// Validate holds such samples out of training and evaluation (params `review:`) until a
    /// person decides. Decisions go to new_data/review.json, committed and pushed; the next
    /// retrain follows them. A sample is named by its sha256 or a unique prefix of it (8+).
    Review(ReviewArgs),
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Copy MNIST from a local folder (checked against its SHA256SUMS) or download it from the
    /// canonical mirrors (checked against the official checksums) into params `data.dir`. For
    /// another task, check that its base dataset is in place. Under `storage: dvc`, also bring
    /// the sealed feedback sub_sets' samples from the DVC cache or remote.
    Fetch {
        /// A folder holding the four MNIST .gz files.
        #[arg(long, env = "MNIST_DIR")]
        from: Option<PathBuf>,
        /// Where to put the files (default: params.yaml `data.dir`, i.e. data/mnist).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Write digits of a split as PNG files named `<index>_<label>.png`, to try `predict` on.
    Export {
        #[arg(long, default_value_t = 10)]
        count: usize,
        #[arg(long, value_enum, default_value_t = SplitArg::Test)]
        split: SplitArg,
        #[arg(long)]
        out: PathBuf,
        /// MNIST folder (default: params.yaml `data.dir`).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Start at this index of the split.
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// Turn each digit by this many degrees (a shift the base model handles badly).
        #[arg(long, default_value_t = 0.0)]
        rotate: f64,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Test,
}

#[derive(Args)]
pub struct TrainBaseArgs {
    /// MNIST folder (default: params.yaml `data.mnist_dir`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
    /// Save the model without pointing models/registry.json at it.
    #[arg(long)]
    pub no_serve: bool,
    /// Fail (keeping the saved model) when test accuracy is below this share.
    #[arg(long)]
    pub min_accuracy: Option<f64>,
}

#[derive(Args)]
pub struct ReferenceArgs {
    /// Model version (default: the one models/registry.json serves).
    #[arg(long)]
    pub model: Option<String>,
    /// The base dataset (default: params.yaml `data.dir`).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

#[derive(Args)]
pub struct ReviewArgs {
    #[command(subcommand)]
    pub action: Option<ReviewAction>,
    /// One JSON object per suspect per line (the queue; the default action).
    #[arg(long)]
    pub json: bool,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

#[derive(Subcommand)]
pub enum ReviewAction {
    /// The queue: sealed feedback no one decided on whose label the serving model doubts (the default).
    List,
    /// The given labels are right: train on them.
    Accept {
        /// Samples, by sha256 or a unique prefix of it (8+ hex digits).
        #[arg(required = true)]
        samples: Vec<String>,
    },
    /// The labels are wrong; `--label` is right.
    Relabel {
        /// Samples, by sha256 or a unique prefix of it (8+ hex digits).
        #[arg(required = true)]
        samples: Vec<String>,
        /// The right class (a name or an index).
        #[arg(long)]
        label: String,
    },
    /// Keep the samples out of training for good.
    Reject {
        /// Samples, by sha256 or a unique prefix of it (8+ hex digits).
        #[arg(required = true)]
        samples: Vec<String>,
    },
}

#[derive(Args)]
pub struct PredictArgs {
    /// Image files of any size and format (PNG, JPEG, ...), dark-on-light or light-on-dark.
    #[arg(required_unless_present = "csv")]
    pub images: Vec<PathBuf>,
    /// A tabular task's rows: a CSV or Parquet file with the schema's feature columns (a label
    /// column, if present, is ignored).
    #[arg(long, value_name = "FILE", conflicts_with = "images")]
    pub csv: Option<PathBuf>,
    /// One JSON object per image (or row) per line: path (and row), label, index, confidence,
    /// probabilities by class name (and digit, for digit tasks).
    #[arg(long)]
    pub json: bool,
    /// Model version to use (default: the one models/registry.json serves).
    #[arg(long)]
    pub model: Option<String>,
    /// Where the model runs (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t)]
    pub device: DeviceChoice,
}

#[derive(Args)]
pub struct InitArgs {
    /// The folder to scaffold (created when missing; made a git repository when it is not one).
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Your own data: images in class folders (`<class>/<file>`, optionally under `train/` and
    /// `test/`) or with a `metadata.csv` of `file_name,label`; or a table (`.csv`, `.parquet`)
    /// with `--label`. The task is derived from it and the base model trained and committed.
    /// Without it (and without `--example`), the MNIST repo with the embedded base model.
    #[arg(long, value_name = "PATH", conflicts_with = "example")]
    pub dataset: Option<PathBuf>,
    /// A table's label column: the class of each row (`--dataset FILE.csv --label species`).
    #[arg(long, value_name = "COLUMN", requires = "dataset")]
    pub label: Option<String>,
    /// A bundled example instead of your own data: `iris` (Fisher's 150 flowers, 4 measurements,
    /// 3 species; a tabular task).
    #[arg(long, value_parser = ["iris"])]
    pub example: Option<String>,
    /// The task's name (default: the dataset folder's name).
    #[arg(long, requires = "dataset")]
    pub name: Option<String>,
    /// Input size as HEIGHTxWIDTH (default: the images' most common size, at most 64 a side).
    #[arg(long, value_name = "HxW", value_parser = parse_size, requires = "dataset")]
    pub size: Option<(u32, u32)>,
    /// 1 (grey) or 3 (RGB) (default: 3 when any image has colour).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3), requires = "dataset")]
    pub channels: Option<u32>,
    /// The network (default: mlp for a table, resnet for colour, cnn for grey).
    #[arg(long, value_parser = ["cnn", "resnet", "mlp"], requires = "dataset")]
    pub arch: Option<String>,
    /// How images reach the network's size: fit (pad), crop (centre), digit (ink on paper).
    #[arg(long, value_parser = parse_preprocess, requires = "dataset")]
    pub preprocess: Option<Preprocess>,
    /// Training epochs of the base model (params train.epochs).
    #[arg(long, requires = "dataset")]
    pub epochs: Option<usize>,
    /// Where the base model trains (auto: CUDA when a GPU is visible, else the CPU).
    #[arg(long, value_enum, default_value_t, requires = "dataset")]
    pub device: DeviceChoice,
    /// Where model weights keep their bytes (params `storage`): git blobs, or DVC-tracked
    /// (pointers in git, bytes in the default remote of .dvc/config: `dvc remote add -d`).
    #[arg(long, value_enum, default_value_t)]
    pub storage: crate::storage::Storage,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (h, w) = text.split_once(['x', 'X']).ok_or_else(|| format!("`{text}` is not HEIGHTxWIDTH, e.g. 32x32"))?;
    let side = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("`{s}` in `{text}` is not a number"));
    Ok((side(h)?, side(w)?))
}

fn parse_preprocess(text: &str) -> Result<Preprocess, String> {
    serde_yaml::from_str(text).map_err(|_| format!("`{text}` is not one of fit, crop, digit"))
}
