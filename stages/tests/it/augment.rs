//! augment, case by case: each training feedback sample with pixels gets `augment.copies`
//! copies that keep its label and identity; the same seed gives the same bytes, another seed
//! other ones; nothing else in the clean manifest is augmented.

use stages::augment::{self, Args, AugmentParams};
use stages::manifest::{self, Role, Row};
use std::path::Path;
use std::process::Command;

use crate::fixture;

/// One row of the clean manifest: its role, its label, and whether validate gave it pixels.
struct Source {
    role: Role,
    label: usize,
    pixels: bool,
}

fn src(role: Role, label: usize) -> Source {
    Source { role, label, pixels: true }
}

struct Input {
    sources: Vec<Source>,
    params: AugmentParams,
}

struct Expect {
    /// Rows of augmented.parquet.
    rows: usize,
    /// Every copy is its source's digit unchanged (the identity transform).
    identity: bool,
}

/// The clean manifest validate would write for `sources`: `fixture::digit(i)` as row i's pixels.
fn clean_rows(sources: &[Source]) -> Vec<Row> {
    sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let png = fixture::png(&fixture::digit(i));
            let path = Path::new("new_data/sub_set_1").join(format!("{}/{i}.png", s.label));
            Row {
                sub_set: Some(1),
                trained: i % 2 == 0,
                weight: 1.5,
                time: Some(format!("2026-01-01T00:00:{i:02}+00:00")),
                pixels: s.pixels.then(|| fixture::digit(i).to_vec()),
                ..fixture::row(&path, &fixture::sha256(&png), s.label, s.role)
            }
        })
        .collect()
}

fn params_yaml(p: &AugmentParams) -> String {
    // JSON is YAML.
    serde_json::json!({ "augment": p }).to_string()
}

/// Runs augment in-process on `input`, twice with its seed and once with the next, and checks
/// every row.
fn check(case: &str, input: Input, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rows = clean_rows(&input.sources);
    let manifest_path = root.join("clean.parquet");
    manifest::write(&manifest_path, &rows).unwrap();
    let run = |p: &AugmentParams, out: &str| {
        let args = Args {
            params: fixture::params(root, &params_yaml(p)),
            manifest: manifest_path.clone(),
            out: root.join(out),
        };
        let returned = augment::run(&args).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(manifest::read(&args.out).unwrap(), returned, "{case}: the file holds what run returned");
        returned
    };
    let p = &input.params;
    let out = run(p, "first.parquet");
    assert_eq!(out.len(), expect.rows, "{case}: augmented rows");

    // Copy c of the k-th training sample with pixels, in manifest order: its label, sha256,
    // sub_set, weight and the rest kept, its own seeded variant as pixels.
    let sources: Vec<&Row> = rows.iter().filter(|r| r.role == Role::FeedbackTrain && r.pixels.is_some()).collect();
    assert_eq!(out.len(), sources.len() * p.copies, "{case}: copies per training sample");
    for (k, row) in out.iter().enumerate() {
        let source = sources[k / p.copies];
        let copy = k % p.copies;
        let digit = source.pixels.as_deref().unwrap();
        let variant = augment::augment(&gitops::task::Task::default(), digit, p, &source.sha256, copy);
        let want = Row {
            source: "augment".into(),
            kind: "augmented".into(),
            pixels: Some(variant.to_vec()),
            ..source.clone()
        };
        assert_eq!(row, &want, "{case}: copy {copy} of {}", source.path);
        assert_eq!(variant == digit, expect.identity, "{case}: copy {copy} of {} is the digit unchanged", source.path);
        if !expect.identity && copy > 0 {
            assert_ne!(
                row.pixels,
                out[k - 1].pixels,
                "{case}: copies {copy} and {} of {} agree",
                copy - 1,
                source.path
            );
        }
    }

    // The same seed gives the same bytes; another seed changes every copy unless none moves.
    let again = run(p, "again.parquet");
    assert_eq!(again, out, "{case}");
    assert_eq!(std::fs::read(root.join("again.parquet")).unwrap(), std::fs::read(root.join("first.parquet")).unwrap());
    let reseeded = run(&AugmentParams { seed: p.seed + 1, ..p.clone() }, "reseeded.parquet");
    assert_eq!(reseeded.len(), out.len(), "{case}");
    for (a, b) in out.iter().zip(&reseeded) {
        assert_eq!(
            a.pixels == b.pixels,
            expect.identity,
            "{case}: {} under seeds {} and {}",
            a.path,
            p.seed,
            p.seed + 1
        );
    }
}

#[test]
fn augment_cases() {
    let identity = AugmentParams {
        copies: 2,
        rotation_deg: 0.0,
        shift_px: 0.0,
        scale: 0.0,
        shear: 0.0,
        stroke_px: 0,
        noise: 0.0,
        ..AugmentParams::default()
    };
    let cases = [
        (
            "the workspace's settings: ten copies of each training sample",
            Input {
                sources: vec![src(Role::FeedbackTrain, 0), src(Role::FeedbackTrain, 1), src(Role::FeedbackTrain, 7)],
                params: AugmentParams::default(),
            },
            Expect { rows: 30, identity: false },
        ),
        (
            "only training feedback with pixels is augmented",
            Input {
                sources: vec![
                    src(Role::Train, 3),
                    src(Role::FeedbackTrain, 4),
                    src(Role::Test, 5),
                    src(Role::Holdout, 6),
                    Source { role: Role::FeedbackTrain, label: 8, pixels: false },
                    src(Role::FeedbackTrain, 9),
                ],
                params: AugmentParams { copies: 4, ..AugmentParams::default() },
            },
            Expect { rows: 8, identity: false },
        ),
        (
            "another seed, one copy each",
            Input {
                sources: vec![src(Role::FeedbackTrain, 2), src(Role::FeedbackTrain, 2)],
                params: AugmentParams { seed: 41, copies: 1, ..AugmentParams::default() },
            },
            Expect { rows: 2, identity: false },
        ),
        (
            "no copies",
            Input {
                sources: vec![src(Role::FeedbackTrain, 1)],
                params: AugmentParams { copies: 0, ..AugmentParams::default() },
            },
            Expect { rows: 0, identity: true },
        ),
        (
            "the identity transform copies the digit",
            Input { sources: vec![src(Role::FeedbackTrain, 5), src(Role::FeedbackTrain, 6)], params: identity },
            Expect { rows: 4, identity: true },
        ),
    ];
    for (case, input, expect) in cases {
        check(case, input, expect);
    }
}

/// The binary with its default paths, as dvc.yaml runs it.
#[test]
fn the_binary_writes_augmented_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let rows = clean_rows(&[src(Role::FeedbackTrain, 1), src(Role::Holdout, 2), src(Role::FeedbackTrain, 3)]);
    manifest::write(&root.join("artifacts/validate/clean.parquet"), &rows).unwrap();
    fixture::params(root, &params_yaml(&AugmentParams { copies: 3, ..AugmentParams::default() }));
    let out =
        Command::new(env!("CARGO_BIN_EXE_augment")).env_remove("LD_LIBRARY_PATH").current_dir(root).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "augment: 6 augmented copies -> artifacts/augment/augmented.parquet\n"
    );
    let written = manifest::read(&root.join("artifacts/augment/augmented.parquet")).unwrap();
    let labels: Vec<usize> = written.iter().map(|r| r.label).collect();
    assert_eq!(labels, [1, 1, 1, 3, 3, 3]);
}
