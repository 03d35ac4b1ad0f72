//! The networks train deterministically, save with a sidecar, and loading refuses tampering, a
//! wrong architecture and a model of another task.

use gitops::architecture::{Architecture, CnnParams, ResnetParams};
use gitops::model_file::{ModelError, ModelFile, Sidecar};
use gitops::params::TrainParams;
use gitops::task::{InputShape, Normalize, Preprocess, Task};
use model::data::{Mnist, Split};
use model::train::{self, Batch};
use model::{Classifier, Network, Weights, eval, preprocess};
use pipeline::registry::Registry;
use tch::Device;

fn tiny_run(set: &Mnist, n: usize) -> (tch::nn::VarStore, Network) {
    let digits = preprocess::mnist_digits(set);
    let labels: Vec<usize> = set.labels[..n].iter().map(|&l| usize::from(l)).collect();
    let batch = Batch::new(&Task::default(), &digits[..n], &labels, Device::Cpu);
    let params = TrainParams { seed: 3, epochs: 1, batch_size: 32, learning_rate: 1e-3, augment_copies: 0 };
    let vs = train::seeded_store(Device::Cpu, params.seed);
    let net = model::arch::build(&Architecture::default(), &vs.root(), &Task::default());
    train::train(&vs, &net, &batch, &params).unwrap();
    (vs, net)
}

fn sidecar() -> Sidecar {
    Sidecar {
        version: String::new(),
        weights: String::new(),
        sha256: String::new(),
        task: Task::default(),
        architecture: Architecture::default(),
        parent: None,
        data_fingerprint: "test".into(),
        metrics: Default::default(),
        confusion: None,
        reference: None,
        created_at: chrono::Utc::now(),
    }
}

#[test]
fn training_is_seeded_and_a_saved_model_round_trips() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let set = Mnist::load(&dir, Split::Train).unwrap();
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let (vs_a, _) = tiny_run(&set, 512);
    let (vs_b, _) = tiny_run(&set, 512);
    let a = vs_a.variables()["fc2.weight"].shallow_clone();
    assert!(a.allclose(&vs_b.variables()["fc2.weight"], 1e-6, 1e-6, false), "same seed, same weights");

    let models = tempfile::tempdir().unwrap();
    let file = ModelFile::fresh(models.path(), chrono::Utc::now());
    let saved = file.save(&vs_a, sidecar()).unwrap();
    assert_eq!(saved.version, file.version);
    assert!(file.version.starts_with("model_") && file.version.ends_with('Z'));
    let loaded = file.load(Device::Cpu, &Task::default(), Some(&Architecture::default())).unwrap();
    assert!(loaded.vs.variables()["fc2.weight"].allclose(&a, 0.0, 0.0, false));
    assert_eq!(ModelFile::list(models.path()).unwrap(), vec![file]);
}

/// The default CNN, untrained, saved with the MNIST task into a temp folder.
fn saved_default_model() -> (tempfile::TempDir, ModelFile) {
    let models = tempfile::tempdir().unwrap();
    let vs = train::seeded_store(Device::Cpu, 0);
    let _net = model::arch::build(&Architecture::default(), &vs.root(), &Task::default());
    let file = ModelFile::fresh(models.path(), chrono::Utc::now());
    file.save(&vs, sidecar()).unwrap();
    (models, file)
}

#[test]
fn loading_refuses_changed_weights_and_a_wrong_architecture() {
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let (_models, file) = saved_default_model();

    let wide = Architecture::Cnn(CnnParams { hidden: 64, ..CnnParams::default() });
    let err = file.load(Device::Cpu, &Task::default(), Some(&wide)).unwrap_err();
    assert!(matches!(err, ModelError::Architecture { .. }), "{err}");

    let mut bytes = std::fs::read(file.weights_path()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(file.weights_path(), bytes).unwrap();
    let err = file.load(Device::Cpu, &Task::default(), None).unwrap_err().to_string();
    assert!(err.contains("sha256") && err.contains(&file.version), "{err}");
}

#[test]
fn weights_of_another_shape_are_refused_even_with_a_matching_hash() {
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let models = tempfile::tempdir().unwrap();
    let vs = train::seeded_store(Device::Cpu, 0);
    let wide = Architecture::Cnn(CnnParams { hidden: 64, ..CnnParams::default() });
    let _net = model::arch::build(&wide, &vs.root(), &Task::default());
    let file = ModelFile::fresh(models.path(), chrono::Utc::now());
    // The sidecar claims the default architecture but the weights have 64 hidden units.
    file.save(&vs, sidecar()).unwrap();
    let err = file.load(Device::Cpu, &Task::default(), None).unwrap_err().to_string();
    assert!(err.contains("do not fit"), "{err}");
}

/// The committed base model: trained on the 6,000 shared images, at least 97% on the 2,000.
#[test]
fn the_committed_base_model_reaches_97_percent() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let models = testkit::workspace_root().join("models");
    let registry = Registry::load(&models).unwrap();
    let file = ModelFile::new(&models, &registry.serving).unwrap();
    let classifier = Classifier::new(file.load(Device::Cpu, &Task::default(), Some(&Architecture::default())).unwrap());
    let test = Mnist::load(&dir, Split::Test).unwrap();
    let labels: Vec<usize> = test.labels.iter().map(|&l| usize::from(l)).collect();
    let batch = Batch::new(&Task::default(), &preprocess::mnist_digits(&test), &labels, Device::Cpu);
    let evaluation = eval::evaluate(&classifier, &batch.xs, &labels);
    assert_eq!(evaluation.samples, 2000);
    assert!(evaluation.accuracy >= 0.97, "accuracy {:.4}", evaluation.accuracy);
    let total: u64 = evaluation.confusion.iter().flatten().sum();
    assert_eq!(total, 2000);
    assert!(evaluation.recall.iter().all(|&r| r > 0.9), "recall {:?}", evaluation.recall);
}

#[test]
fn evaluation_figures_follow_the_confusion_matrix() {
    // Three 0s (one predicted as 1) and one 1.
    let e = model::Evaluation::from_pairs(2, [(0, 0), (0, 0), (0, 1), (1, 1)]);
    assert_eq!(e.accuracy, 0.75);
    assert_eq!(e.recall[0], 2.0 / 3.0);
    assert_eq!(e.precision[1], 0.5);
    assert_eq!(e.confusion[0][1], 1);
}

#[test]
fn the_net_gives_the_same_logits_with_and_without_gradients() {
    // With gradients the net pools through libtorch, without them through strided maxima.
    let vs = train::seeded_store(Device::Cpu, 2);
    let net = model::arch::build(&Architecture::default(), &vs.root(), &Task::default());
    let xs = tch::Tensor::randn([5, 784], (tch::Kind::Float, Device::Cpu));
    let with_grad = net.forward_t(&xs, false);
    assert!(with_grad.requires_grad());
    let without = tch::no_grad(|| net.forward_t(&xs, false));
    assert!(without.equal(&with_grad.detach()));
}

fn shapes_task() -> Task {
    Task {
        name: "shapes".into(),
        classes: vec!["circle".into(), "cross".into(), "square".into()],
        input: InputShape { channels: 3, height: 32, width: 32 },
        normalize: Normalize { mean: vec![0.5; 3], std: vec![0.25; 3] },
        preprocess: Preprocess::Fit,
        ..Task::default()
    }
}

#[test]
fn a_model_of_another_task_is_refused_naming_the_differences() {
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let (_models, file) = saved_default_model();
    let err = file.load(Device::Cpu, &shapes_task(), None).unwrap_err();
    assert!(matches!(err, ModelError::Task { .. }), "{err}");
    let text = err.to_string();
    for part in [
        "trained for another task",
        "name: shapes here, mnist in the model",
        "input: 3x32x32 here, 1x28x28 in the model",
        "this repo's task is `shapes`",
    ] {
        assert!(text.contains(part), "{text} lacks {part}");
    }
}

#[test]
fn a_sidecar_from_before_tasks_loads_as_mnist() {
    // The committed base model's sidecar has neither `task` nor `arch`.
    let models = testkit::workspace_root().join("models");
    let file = ModelFile::new(&models, &Registry::load(&models).unwrap().serving).unwrap();
    let text = std::fs::read_to_string(file.sidecar_path()).unwrap();
    assert!(!text.contains("\"task\"") && !text.contains("\"arch\""), "the committed sidecar predates tasks");
    let sidecar = file.read_sidecar().unwrap();
    assert_eq!(sidecar.task, Task::default());
    assert!(matches!(sidecar.architecture, Architecture::Cnn(_)));
}

#[test]
fn both_architectures_train_on_a_colour_task_and_round_trip() {
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let task = shapes_task();
    // Red inputs are class 0, green class 1, blue class 2: learnable in a few steps.
    let inputs: Vec<Vec<u8>> = (0..48)
        .map(|i| (0..3).flat_map(|c| std::iter::repeat_n(if c == i % 3 { 220 } else { 30 }, 32 * 32)).collect())
        .collect();
    let labels: Vec<usize> = (0..48).map(|i| i % 3).collect();
    let batch = Batch::new(&task, &inputs, &labels, Device::Cpu);
    for arch in [Architecture::default(), Architecture::Resnet(ResnetParams::default())] {
        let params = TrainParams { seed: 1, epochs: 8, batch_size: 16, learning_rate: 3e-3, augment_copies: 0 };
        let vs = train::seeded_store(Device::Cpu, params.seed);
        let net = model::arch::build(&arch, &vs.root(), &task);
        train::train(&vs, &net, &batch, &params).unwrap();
        let models = tempfile::tempdir().unwrap();
        let file = ModelFile::fresh(models.path(), chrono::Utc::now());
        file.save(&vs, Sidecar { task: task.clone(), architecture: arch.clone(), ..sidecar() }).unwrap();
        let classifier = Classifier::new(file.load(Device::Cpu, &task, Some(&arch)).unwrap());
        let accuracy = eval::evaluate(&classifier, &batch.xs, &labels).accuracy;
        assert_eq!(accuracy, 1.0, "{}", arch.name());
        let err = file.load(Device::Cpu, &Task::default(), None).unwrap_err();
        assert!(matches!(err, ModelError::Task { .. }), "{}: {err}", arch.name());
    }
}

fn tabular_task() -> Task {
    let schema: gitops::table::Schema = serde_json::from_value(serde_json::json!({
        "label": "kind",
        "features": [
            {"name": "size", "type": "number", "min": 0.0, "max": 1000.0},
            {"name": "colour", "type": "category", "values": ["red", "green", "blue"]},
        ],
    }))
    .unwrap();
    Task {
        name: "parts".into(),
        kind: gitops::task::TaskKind::Tabular,
        classes: vec!["small".into(), "large".into(), "green".into()],
        table: Some(schema),
        ..Task::default()
    }
}

#[test]
fn the_mlp_standardises_by_stored_statistics_and_a_model_of_another_schema_is_refused() {
    let _rng = crate::TORCH_RNG.lock().unwrap_or_else(|p| p.into_inner());
    let task = tabular_task();
    task.validate().unwrap();
    // Sizes in the hundreds (far from unit scale) tell small from large; the colour green is
    // its own class: the network needs both the standardised number and the one-hot category.
    let rows: Vec<[f32; 2]> = (0..60).map(|i| [100.0 + 13.0 * (i % 50) as f32, (i % 3) as f32]).collect();
    let labels: Vec<usize> =
        rows.iter().map(|[size, colour]| if *colour == 1.0 { 2 } else { usize::from(*size > 400.0) }).collect();
    let inputs: Vec<Vec<u8>> = rows.iter().map(|r| model::data::table::input_bytes(r)).collect();
    let batch = Batch::new(&task, &inputs, &labels, Device::Cpu);
    let arch = Architecture::Mlp(gitops::architecture::MlpParams::default());
    let params = TrainParams { seed: 1, epochs: 150, batch_size: 16, learning_rate: 1e-2, augment_copies: 0 };
    let vs = train::seeded_store(Device::Cpu, params.seed);
    let net = model::arch::build(&arch, &vs.root(), &task);
    model::arch::fit_standardization(&vs, &task, &batch.xs);
    train::train(&vs, &net, &batch, &params).unwrap();
    let models = tempfile::tempdir().unwrap();
    let file = ModelFile::fresh(models.path(), chrono::Utc::now());
    file.save(&vs, Sidecar { task: task.clone(), architecture: arch.clone(), ..sidecar() }).unwrap();

    let loaded = file.load(Device::Cpu, &task, Some(&arch)).unwrap();
    let mean = loaded.vs.variables()["standardize_mean"].double_value(&[0]);
    let sizes: Vec<f64> = rows.iter().map(|r| f64::from(r[0])).collect();
    let expected = sizes.iter().sum::<f64>() / sizes.len() as f64;
    assert!((mean - expected).abs() < 1e-3, "the stored mean {mean} is the training rows' {expected}");
    let classifier = Classifier::new(loaded);
    assert!(eval::evaluate(&classifier, &batch.xs, &labels).accuracy >= 0.95);

    let mut other = tabular_task();
    other.table.as_mut().unwrap().features[1].name = "hue".into();
    let err = file.load(Device::Cpu, &other, None).unwrap_err().to_string();
    assert!(err.contains("table.features: [\"size\", \"hue\"] here, [\"size\", \"colour\"] in the model"), "{err}");
    let err = file.load(Device::Cpu, &Task::default(), None).unwrap_err().to_string();
    assert!(err.contains("kind: Image here, Tabular in the model"), "{err}");
}
