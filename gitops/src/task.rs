//! The task a pipeline serves: what the classifier tells apart (ordered class names) and what
//! it reads (channels, height, width, normalisation, how any image is brought to that shape).
//! It is the `task:` section of `params.yaml`; a repo without one serves MNIST digits, so repos
//! made before tasks existed keep working. Every model's sidecar records the task it was
//! trained for, and a model of another task is refused with the differences named.
//!
//! A task is of one of two kinds: `image` (the default) or `tabular`, whose feature columns
//! are `table:` ([`crate::table::Schema`]); the image fields are then unused.

use serde::{Deserialize, Serialize};

use crate::table::Schema;

/// The folder name of unsure samples in a sub_set: no class may take it.
pub const RESERVED_CLASS_NAMES: [&str; 1] = ["unsure"];

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TaskError {
    #[error("task: {0}")]
    Invalid(String),
    #[error("`{label}` is not a class of task {task} (classes: {classes})")]
    UnknownLabel { label: String, task: String, classes: String },
}

/// `task:` in `params.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Task {
    pub name: String,
    /// `image` (the default, not written) or `tabular`.
    #[serde(skip_serializing_if = "TaskKind::is_image")]
    pub kind: TaskKind,
    /// Class names in the order of the model's outputs.
    pub classes: Vec<String>,
    /// The feature columns of a tabular task.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Schema>,
    pub input: InputShape,
    pub normalize: Normalize,
    pub preprocess: Preprocess,
    pub augment: TaskAugment,
}

/// What a task classifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    #[default]
    Image,
    /// Rows of features (`task.table`).
    Tabular,
}

impl TaskKind {
    pub fn is_image(&self) -> bool {
        *self == Self::Image
    }
}

/// What the network reads: `channels` (1 grey, 3 RGB) x `height` x `width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputShape {
    pub channels: u32,
    pub height: u32,
    pub width: u32,
}

/// Per-channel mean and standard deviation of pixels in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// How any image becomes the network's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preprocess {
    /// Pen-drawn symbols on plain paper: grey, light ink on dark, crop to the ink, fit and
    /// centre by the centre of mass (MNIST's recipe).
    Digit,
    /// Resize keeping the aspect ratio, pad with the border colour.
    Fit,
    /// Resize the short side to fit, centre-crop the long one.
    Crop,
}

/// Which augmentations suit the task's images (stroke thickening applies to `digit` only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskAugment {
    /// Mirror left-right (not for digits or text).
    pub flip_horizontal: bool,
    /// Mirror top-bottom.
    pub flip_vertical: bool,
    /// Brightness, contrast and per-channel gain vary by up to this share (colour inputs).
    pub colour_jitter: f32,
}

impl Default for Task {
    /// MNIST digits: ten classes `0`..`9`, 28x28 grey, MNIST's mean and deviation.
    fn default() -> Self {
        Self {
            name: "mnist".into(),
            kind: TaskKind::Image,
            classes: (0..10).map(|d| d.to_string()).collect(),
            table: None,
            input: InputShape { channels: 1, height: 28, width: 28 },
            normalize: Normalize { mean: vec![0.1307], std: vec![0.3081] },
            preprocess: Preprocess::Digit,
            augment: TaskAugment::default(),
        }
    }
}

impl InputShape {
    /// Values per input: channels x height x width.
    pub fn values(&self) -> usize {
        self.channels as usize * self.height as usize * self.width as usize
    }

    pub fn pixels(&self) -> usize {
        self.height as usize * self.width as usize
    }
}

impl Task {
    pub fn class_count(&self) -> usize {
        self.classes.len()
    }

    /// A digit task (`preprocess: digit`): the page offers a drawing canvas and answers carry
    /// `digit` too.
    pub fn is_digit(&self) -> bool {
        self.kind == TaskKind::Image && self.preprocess == Preprocess::Digit
    }

    /// The schema of a tabular task; `None` for an image task.
    pub fn schema(&self) -> Option<&Schema> {
        match self.kind {
            TaskKind::Tabular => self.table.as_ref(),
            TaskKind::Image => None,
        }
    }

    /// Values per input as the network reads them: `C*H*W` pixels, or one per feature.
    pub fn input_values(&self) -> usize {
        self.schema().map_or_else(|| self.input.values(), |s| s.features.len())
    }

    /// Bytes of one stored input (a manifest's `pixels`): a `u8` per pixel, or a little-endian
    /// `f32` per feature.
    pub fn input_bytes(&self) -> usize {
        self.schema().map_or_else(|| self.input.values(), |s| 4 * s.features.len())
    }

    /// The shape of a batch of `n` inputs: `[n, C, H, W]`, or `[n, F]`.
    pub fn batch_shape(&self, n: i64) -> Vec<i64> {
        match self.schema() {
            Some(s) => vec![n, s.features.len() as i64],
            None => {
                let InputShape { channels, height, width } = self.input;
                vec![n, i64::from(channels), i64::from(height), i64::from(width)]
            }
        }
    }

    /// The class index of `label`: a class name, or an index written in decimal.
    pub fn class_index(&self, label: &str) -> Result<usize, TaskError> {
        let label = label.trim();
        if let Some(i) = self.classes.iter().position(|c| c == label) {
            return Ok(i);
        }
        match label.parse::<usize>() {
            Ok(i) if i < self.classes.len() => Ok(i),
            _ => Err(TaskError::UnknownLabel {
                label: label.to_string(),
                task: self.name.clone(),
                classes: self.classes.join(", "),
            }),
        }
    }

    /// The name of class `index`.
    pub fn class_name(&self, index: usize) -> Option<&str> {
        self.classes.get(index).map(String::as_str)
    }

    /// Checks every field: at least two distinct classes whose names can be folder names, one
    /// or three channels, sides within 1..=1024, one mean and one positive deviation per
    /// channel, `digit` only for one channel.
    pub fn validate(&self) -> Result<(), TaskError> {
        let bad = |what: String| Err(TaskError::Invalid(what));
        if !valid_class_name(&self.name) {
            return bad(format!("name `{}` must be 1-64 letters, digits, `-`, `_` or `.`", self.name));
        }
        if self.classes.len() < 2 {
            return bad(format!("classes: {} given; a classifier needs at least two", self.classes.len()));
        }
        for (i, class) in self.classes.iter().enumerate() {
            if !valid_class_name(class) || RESERVED_CLASS_NAMES.contains(&class.as_str()) {
                return bad(format!(
                    "class `{class}` must be 1-64 letters, digits, `-`, `_` or `.`, not starting with `.`, and not `unsure`"
                ));
            }
            if self.classes[..i].contains(class) {
                return bad(format!("class `{class}` is listed twice"));
            }
        }
        match (self.kind, &self.table) {
            (TaskKind::Tabular, Some(schema)) => return schema.validate().map_err(TaskError::Invalid),
            (TaskKind::Tabular, None) => return bad("kind tabular needs `table:` (label column and features)".into()),
            (TaskKind::Image, Some(_)) => return bad("`table:` is for kind tabular; this task is of kind image".into()),
            (TaskKind::Image, None) => {}
        }
        let InputShape { channels, height, width } = self.input;
        if !matches!(channels, 1 | 3) {
            return bad(format!("input.channels is {channels}; it must be 1 (grey) or 3 (RGB)"));
        }
        if !(1..=1024).contains(&height) || !(1..=1024).contains(&width) {
            return bad(format!("input is {height}x{width}; each side must be 1..=1024"));
        }
        let n = channels as usize;
        if self.normalize.mean.len() != n || self.normalize.std.len() != n {
            return bad(format!(
                "normalize has {} means and {} deviations for {n} channel(s)",
                self.normalize.mean.len(),
                self.normalize.std.len()
            ));
        }
        if self.normalize.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.normalize.mean.iter().any(|m| !m.is_finite())
        {
            return bad("normalize: means must be finite and deviations positive".into());
        }
        if self.preprocess == Preprocess::Digit && channels != 1 {
            return bad("preprocess `digit` reads grey ink on plain paper: input.channels must be 1".into());
        }
        if !(0.0..=1.0).contains(&self.augment.colour_jitter) {
            return bad(format!("augment.colour_jitter is {}; it must be within 0..=1", self.augment.colour_jitter));
        }
        Ok(())
    }

    /// What differs between `self` (the repo's task) and `other` (a model's), one phrase per
    /// field; empty when they are the same task.
    pub fn differences(&self, other: &Task) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |field: &str, ours: String, theirs: String| {
            if ours != theirs {
                out.push(format!("{field}: {ours} here, {theirs} in the model"));
            }
        };
        differ("name", self.name.clone(), other.name.clone());
        differ("kind", format!("{:?}", self.kind), format!("{:?}", other.kind));
        differ("classes", format!("{:?}", self.classes), format!("{:?}", other.classes));
        if let (Some(ours), Some(theirs)) = (self.schema(), other.schema()) {
            out.extend(ours.differences(theirs));
            return out;
        }
        if self.kind != other.kind {
            return out;
        }
        let shape = |s: &InputShape| format!("{}x{}x{}", s.channels, s.height, s.width);
        differ("input", shape(&self.input), shape(&other.input));
        differ("normalize", format!("{:?}", self.normalize), format!("{:?}", other.normalize));
        differ("preprocess", format!("{:?}", self.preprocess), format!("{:?}", other.preprocess));
        out
    }
}

/// A class or task name usable as a folder name on every system: 1-64 ASCII letters, digits,
/// `-`, `_` or `.`, not starting with `.`.
pub fn valid_class_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Values keyed by class name: serialized as a JSON object whose keys come in the task's class
/// order (a map type would sort them: "10" before "2").
#[derive(Debug, Clone, Copy)]
pub struct ByClass<'a, T>(pub &'a [String], pub &'a [T]);

impl<T: Serialize> Serialize for ByClass<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len().min(self.1.len())))?;
        for (class, value) in self.0.iter().zip(self.1) {
            map.serialize_entry(class, value)?;
        }
        map.end()
    }
}

/// A label as text, also from the number that files written before classes had names hold
/// (a digit), for `#[serde(deserialize_with)]`.
pub fn label_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Label {
        Index(u64),
        Name(String),
    }
    Ok(match Label::deserialize(deserializer)? {
        Label::Index(i) => i.to_string(),
        Label::Name(name) => name,
    })
}

/// [`label_text`] of an optional field.
pub fn optional_label_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "label_text")] String);
    Ok(Option::<Wrapped>::deserialize(deserializer)?.map(|w| w.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shapes() -> Task {
        Task {
            name: "shapes".into(),
            kind: TaskKind::Image,
            classes: vec!["circle".into(), "square".into(), "triangle".into()],
            table: None,
            input: InputShape { channels: 3, height: 32, width: 40 },
            normalize: Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] },
            preprocess: Preprocess::Fit,
            augment: TaskAugment { flip_horizontal: true, flip_vertical: false, colour_jitter: 0.1 },
        }
    }

    #[test]
    fn the_default_task_is_mnist_and_valid() {
        let task = Task::default();
        task.validate().unwrap();
        assert_eq!((task.class_count(), task.input.values(), task.is_digit()), (10, 784, true));
    }

    #[test]
    fn labels_are_found_by_name_or_index() {
        let task = shapes();
        assert_eq!(task.class_index("square"), Ok(1));
        assert_eq!(task.class_index("2"), Ok(2));
        let err = task.class_index("hexagon").unwrap_err().to_string();
        assert_eq!(err, "`hexagon` is not a class of task shapes (classes: circle, square, triangle)");
        assert!(task.class_index("3").is_err());
    }

    #[test]
    fn each_invalid_field_is_named() {
        type Edit = fn(&mut Task);
        let cases: [(&str, Edit); 8] = [
            ("at least two", |t| t.classes.truncate(1)),
            ("listed twice", |t| t.classes[1] = "circle".into()),
            ("not `unsure`", |t| t.classes[0] = "unsure".into()),
            ("not `unsure`", |t| t.classes[0] = "a/b".into()),
            ("input.channels is 2", |t| t.input.channels = 2),
            ("each side", |t| t.input.width = 0),
            ("1 means and 3 deviations", |t| t.normalize.mean.truncate(1)),
            ("input.channels must be 1", |t| t.preprocess = Preprocess::Digit),
        ];
        for (expected, edit) in cases {
            let mut task = shapes();
            edit(&mut task);
            let err = task.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn differences_name_each_field() {
        let (a, mut b) = (shapes(), shapes());
        assert!(a.differences(&b).is_empty());
        b.input.width = 28;
        b.classes.pop();
        let diff = a.differences(&b);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].starts_with("classes: [\"circle\", \"square\", \"triangle\"] here"), "{diff:?}");
        assert_eq!(diff[1], "input: 3x32x40 here, 3x32x28 in the model");
    }

    #[test]
    fn a_tabular_task_reads_its_schema_and_is_compared_by_it() {
        let yaml = "name: iris\nkind: tabular\nclasses: [setosa, versicolor]\ntable:\n  label: species\n  features:\n    - {name: sepal_length, type: number, min: 4}\n    - {name: sepal_width, type: number}\n";
        let task: Task = serde_yaml::from_str(yaml).unwrap();
        task.validate().unwrap();
        assert_eq!((task.input_values(), task.input_bytes(), task.batch_shape(5)), (2, 8, vec![5, 2]));
        assert!(!task.is_digit());
        let mut other = task.clone();
        other.table.as_mut().unwrap().features.pop();
        let diff = task.differences(&other);
        assert_eq!(diff, ["table.features: [\"sepal_length\", \"sepal_width\"] here, [\"sepal_length\"] in the model"]);
        let diff = task.differences(&Task { name: "iris".into(), classes: task.classes.clone(), ..Task::default() });
        assert_eq!(diff, ["kind: Tabular here, Image in the model"]);
        let no_table = Task { table: None, ..task };
        assert!(no_table.validate().unwrap_err().to_string().contains("needs `table:`"));
        let json = serde_json::to_value(Task::default()).unwrap();
        assert!(json.get("kind").is_none() && json.get("table").is_none(), "image sidecars are unchanged: {json}");
    }

    #[test]
    fn a_yaml_section_reads_with_defaults_and_refuses_unknown_keys() {
        let task: Task = serde_yaml::from_str("name: letters\nclasses: [a, b]\npreprocess: digit\n").unwrap();
        assert_eq!((task.input.height, task.classes.len()), (28, 2));
        assert!(serde_yaml::from_str::<Task>("name: x\nclases: [a, b]\n").is_err());
    }
}
