//! `pipeline init DIR --dataset FILE.csv --label COLUMN` (or `.parquet`, or `--example iris`):
//! a repo for a tabular classifier. The schema is derived from the table (`model::data::table::
//! derive`: number and category features, class names from the label column), the table is
//! linked in as `data/<name>.<ext>`, and params get the `mlp` network, a number of base epochs
//! that gives the optimiser enough steps on a small table, no augmentation, and fine-tuning
//! settings for rows. The base model is trained and committed as for images (`train_and_commit`).

use std::path::{Path, PathBuf};

use gitops::architecture::{Architecture, MlpParams};
use gitops::task::Task;
use model::data::table::{self, Derived};
use pipeline::scaffold::ScaffoldError;

use super::{DatasetInit, Own, Scaffolded, dvc_text, folder_name, set_key, set_section, write_repo, yaml};

/// The bundled examples: name, file name, label column and the table's bytes.
pub const EXAMPLES: [(&str, &str, &str, &[u8]); 1] =
    [("iris", "iris.csv", "species", include_bytes!("../../../examples/iris/iris.csv"))];

/// Optimiser steps the derived base epochs aim at: a table of a few hundred rows needs many
/// epochs, a large one few.
const TARGET_STEPS: usize = 1500;
const BATCH: usize = 32;

/// Writes the bundled example `name` to `dir/data/<file>` and returns what `init --dataset`
/// needs to use it.
pub fn write_example(dir: &Path, name: &str) -> Result<(PathBuf, String), ScaffoldError> {
    let Some((_, file, label, bytes)) = EXAMPLES.iter().find(|e| e.0 == name) else {
        let known: Vec<&str> = EXAMPLES.iter().map(|e| e.0).collect();
        return Err(ScaffoldError::Dataset { path: name.into(), what: format!("no such example (known: {known:?})") });
    };
    let path = dir.join("data").join(file);
    let io = |source| ScaffoldError::Io { path: path.clone(), source };
    std::fs::create_dir_all(path.parent().expect("data/")).map_err(io)?;
    std::fs::write(&path, bytes).map_err(io)?;
    Ok((path, label.to_string()))
}

pub(super) fn scaffold(
    dir: &Path,
    init: &DatasetInit,
    source: &Path,
    force: bool,
) -> Result<Scaffolded, ScaffoldError> {
    let bad = |what: String| ScaffoldError::Dataset { path: init.dataset.clone(), what };
    let Some(label) = init.label.as_deref() else {
        return Err(bad("a table needs --label COLUMN: the column that holds each row's class".into()));
    };
    if init.size.is_some() || init.channels.is_some() || init.preprocess.is_some() {
        return Err(bad("--size, --channels and --preprocess are for images, not tables".into()));
    }
    let architecture = match init.arch.as_deref() {
        None | Some("mlp") => Architecture::Mlp(MlpParams::default()),
        Some(other) => return Err(bad(format!("--arch {other}: a table trains arch mlp"))),
    };
    let derived = table::derive(source, label).map_err(|e| bad(e.to_string()))?;
    let name = init.name.clone().unwrap_or_else(|| folder_name(&source.with_extension("")));
    let task = table::tabular_task(&name, &derived);
    task.validate().map_err(|e| bad(e.to_string()))?;
    let ext = source.extension().and_then(|e| e.to_str()).unwrap_or("csv").to_ascii_lowercase();
    let data_rel = PathBuf::from("data").join(format!("{name}.{ext}"));
    let params = params_text(&task, &architecture, &data_rel, init.epochs.unwrap_or_else(|| base_epochs(derived.rows)));
    let dvc = dvc_text(&data_rel);
    let describe = format!("the table {} ({} rows)", source.display(), derived.rows);
    let readme = readme_text(&task, &derived, &describe);
    let own = Own { params: &params, dvc: &dvc, readme: &readme };
    let (files, data_link) = write_repo(dir, own, &data_rel, source, &init.dataset, force)?;
    Ok(Scaffolded { files, task, architecture, data_link, describe })
}

/// Base epochs giving about [`TARGET_STEPS`] optimiser steps over the training share (0.8) of
/// `rows`, within 10..=500.
fn base_epochs(rows: usize) -> usize {
    let steps_per_epoch = (rows * 4 / 5).div_ceil(BATCH).max(1);
    TARGET_STEPS.div_ceil(steps_per_epoch).clamp(10, 500)
}

/// The embedded `params.yaml` for a tabular task: its `task` (without the image fields),
/// `data` and `model`, and training settings for rows.
fn params_text(task: &Task, arch: &Architecture, data: &Path, epochs: usize) -> String {
    let text = std::str::from_utf8(pipeline::scaffold::file("params.yaml")).expect("params.yaml is UTF-8");
    let mut task_yaml: serde_yaml::Value = serde_yaml::to_value(task).expect("a task serializes");
    if let Some(map) = task_yaml.as_mapping_mut() {
        for image_only in ["input", "normalize", "preprocess", "augment"] {
            map.remove(image_only);
        }
    }
    let mut text =
        set_section(text, "task", "what the classifier tells apart and reads (gitops::task)", &yaml(&task_yaml));
    let data = format!("dir: {}\ntest_share: 0.2\n", data.display());
    text = set_section(&text, "data", "model::data: the base table (git-ignored; a DVC dependency)", &data);
    text = set_section(&text, "model", "model::arch: the network", &yaml(arch));
    let train = format!("seed: 0\nepochs: {epochs}\nbatch_size: {BATCH}\nlearning_rate: 0.003\naugment_copies: 0\n");
    text = set_section(&text, "train", "pipeline train-base (epochs from the table's size)", &train);
    let finetune = "seed: 0\nepochs: 30\nbatch_size: 32\nlearning_rate: 0.001\nreplay_ratio: 3.0\nmin_replay: 200\nfeedback_weight: 2.0\n";
    text = set_section(&text, "finetune", "stages::finetune (rows: more epochs over fewer samples)", finetune);
    set_key(&text, "augment", "copies", "0")
}

fn readme_text(task: &Task, derived: &Derived, described: &str) -> String {
    let features: Vec<String> = derived
        .schema
        .features
        .iter()
        .map(|f| match &f.kind {
            gitops::table::FeatureKind::Number { .. } => format!("`{}` (number)", f.name),
            gitops::table::FeatureKind::Category { values } => format!("`{}` ({} categories)", f.name, values.len()),
        })
        .collect();
    format!(
        "# {name}: a tabular classifier retrained from feedback through git\n\n\
         Scaffolded by `pipeline init --dataset` from {described}: {n} classes ({classes}) from the \
         column `{label}`, features {features}. The schema is `params.yaml` `task.table`; every model \
         records it and a model of another schema is refused.\n\n{rest}",
        name = task.name,
        n = task.classes.len(),
        classes = task.classes.join(", "),
        label = derived.schema.label,
        features = features.join(", "),
        rest = pipeline::scaffold::README.split_once("\n\n").map_or("", |(_, rest)| rest),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_tables_get_more_epochs_large_ones_fewer() {
        assert_eq!(base_epochs(150), 375);
        assert_eq!(base_epochs(10), 500);
        assert_eq!(base_epochs(1_000_000), 10);
    }
}
