//! `arch: mlp`: a multilayer perceptron for tabular tasks. It reads a row as the schema encodes
//! it (`[N, F]`: numbers as they are, categories as value indexes) and does its own input
//! transform, so serving applies exactly what training computed: number columns are
//! standardised by a mean and deviation stored in the weights (`standardize_mean`,
//! `standardize_std`, not trained; [`fit_standardization`] sets them from the training rows),
//! and each category becomes a one-hot block in the schema's value order. Then dense layers of
//! the `hidden` widths with ReLU and dropout, and one logit per class.

use gitops::architecture::MlpParams;
use gitops::table::FeatureKind;
use gitops::task::Task;
use tch::{Device, Kind, Tensor, nn, nn::ModuleT};

const MEAN: &str = "standardize_mean";
const STD: &str = "standardize_std";

/// The layers after the features (`arch::classifier_layers`).
pub const CLASSIFIER: &[&str] = &["out"];

#[derive(Debug)]
pub struct Mlp {
    /// Columns of the number features and their statistics (absent when there are none).
    numbers: Option<(Tensor, Tensor, Tensor)>,
    /// Column and value count of each category feature.
    categories: Vec<(i64, i64)>,
    layers: Vec<nn::Linear>,
    out: nn::Linear,
    dropout: f64,
}

impl Mlp {
    /// Creates the layers under `path` (`fc<i>`, `out`) for the task's schema.
    ///
    /// # Panics
    /// When `task` is not tabular (`arch::build` is given checked settings).
    pub fn new(path: &nn::Path, p: &MlpParams, task: &Task) -> Self {
        let schema = task.schema().expect("arch mlp needs a tabular task (checked when params are read)");
        let mut number_columns = Vec::new();
        let mut categories = Vec::new();
        for (i, f) in schema.features.iter().enumerate() {
            match &f.kind {
                FeatureKind::Number { .. } => number_columns.push(i as i64),
                FeatureKind::Category { values } => categories.push((i as i64, values.len() as i64)),
            }
        }
        let n = number_columns.len() as i64;
        let numbers = (n > 0).then(|| {
            let columns = Tensor::from_slice(&number_columns).to_device(path.device());
            (columns, path.zeros_no_train(MEAN, &[n]), path.ones_no_train(STD, &[n]))
        });
        let mut width = n + categories.iter().map(|(_, k)| k).sum::<i64>();
        let layers = p
            .hidden
            .iter()
            .enumerate()
            .map(|(i, &h)| {
                let layer = nn::linear(path / format!("fc{}", i + 1), width, h, Default::default());
                width = h;
                layer
            })
            .collect();
        let out = nn::linear(path / "out", width, task.class_count() as i64, Default::default());
        Self { numbers, categories, layers, out, dropout: p.dropout }
    }

    /// The encoded rows `[N, F]` as the dense layers read them: standardised numbers, then one
    /// one-hot block per category.
    fn transform(&self, xs: &Tensor) -> Tensor {
        let mut parts = Vec::with_capacity(1 + self.categories.len());
        if let Some((columns, mean, std)) = &self.numbers {
            parts.push((xs.index_select(1, columns) - mean) / std);
        }
        for &(column, count) in &self.categories {
            let index = xs.select(1, column).to_kind(Kind::Int64).clamp(0, count - 1);
            parts.push(index.one_hot(count).to_kind(Kind::Float));
        }
        Tensor::cat(&parts, 1)
    }
}

impl ModuleT for Mlp {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let rows = xs.size()[0];
        let mut ys = self.transform(&xs.view([rows, -1]));
        for layer in &self.layers {
            ys = ys.apply(layer).relu().dropout(self.dropout, train);
        }
        ys.apply(&self.out)
    }
}

/// Sets the stored standardisation of the number features to the mean and deviation of the
/// training rows `xs` (`[N, F]`, encoded); a constant column keeps a deviation of 1.
pub fn fit_standardization(vs: &nn::VarStore, task: &Task, xs: &Tensor) {
    let Some(schema) = task.schema() else { return };
    let columns: Vec<i64> = schema
        .features
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.kind, FeatureKind::Number { .. }))
        .map(|(i, _)| i as i64)
        .collect();
    let vars = vs.variables();
    let (Some(mean), Some(std)) = (vars.get(MEAN), vars.get(STD)) else { return };
    let numbers = xs.to_device(Device::Cpu).index_select(1, &Tensor::from_slice(&columns)).to_kind(Kind::Float);
    let m = numbers.mean_dim(0, false, Kind::Float);
    let s = numbers.std_dim(0, false, false);
    let s = s.where_self(&s.gt(1e-6), &s.ones_like());
    tch::no_grad(|| {
        let mut mean = mean.shallow_clone();
        let mut std = std.shallow_clone();
        mean.copy_(&m.to_device(mean.device()));
        std.copy_(&s.to_device(std.device()));
    });
}
