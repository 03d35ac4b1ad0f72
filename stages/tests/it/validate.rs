//! validate, case by case: every kind of bad feedback image is quarantined with its reason and
//! the rest reach the clean manifest as the digit the model sees; the report counts feedback
//! only; a bad share past `validate.max_bad_share` fails the run after writing every output.

use gitops::device::DeviceChoice;
use model::data::PIXELS;
use stages::manifest::{self, Role, Row};
use stages::validate::{self, Args, Quarantined, Report};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::fixture;

/// What one feedback file holds.
#[derive(Debug, Clone, Copy)]
enum Image {
    /// `fixture::digit(n)` as PNG.
    Digit(usize),
    /// A PNG signature followed by garbage.
    Corrupt,
    /// A uniform black 28x28 PNG.
    Blank,
    /// A 100x100 PNG crossed by one 1-pixel line: fitted into 20x20 no pixel holds ink.
    Faint,
    /// A w x h PNG with a white cross on black.
    Sized(u32, u32),
    /// No file at the manifest's path.
    Missing,
    /// `Digit(n)`'s file, recorded with the sha256 of `Digit(n + 1)`.
    Changed(usize),
}

impl Image {
    fn bytes(self) -> Option<Vec<u8>> {
        Some(match self {
            Self::Digit(n) | Self::Changed(n) => fixture::png(&fixture::digit(n)),
            Self::Corrupt => [&b"\x89PNG\r\n\x1a\n"[..], b"not really a png"].concat(),
            Self::Blank => fixture::png(&[0; PIXELS]),
            Self::Faint => {
                fixture::png_of(&image::GrayImage::from_fn(100, 100, |_, y| image::Luma([255 * (y == 50) as u8])))
            }
            Self::Sized(w, h) => fixture::png_of(&image::GrayImage::from_fn(w, h, |x, y| {
                image::Luma([255 * (x == w / 2 || y == h / 2) as u8])
            })),
            Self::Missing => return None,
        })
    }

    /// The sha256 the manifest records.
    fn recorded_sha256(self) -> String {
        match self {
            Self::Changed(n) => fixture::sha256(&fixture::png(&fixture::digit(n + 1))),
            Self::Missing => "0".repeat(64),
            other => fixture::sha256(&other.bytes().unwrap()),
        }
    }
}

struct Feedback {
    name: &'static str,
    image: Image,
    label: usize,
    role: Role,
}

fn train(name: &'static str, image: Image, label: usize) -> Feedback {
    Feedback { name, image, label, role: Role::FeedbackTrain }
}

fn held(name: &'static str, image: Image, label: usize) -> Feedback {
    Feedback { name, image, label, role: Role::Holdout }
}

struct Input {
    /// Base rows from a tiny MNIST, listed first.
    base: usize,
    feedback: Vec<Feedback>,
    max_bad_share: f64,
}

struct Expect {
    /// (feedback name, how its reason starts), in manifest order.
    quarantined: &'static [(&'static str, &'static str)],
    warnings: &'static [&'static str],
    passed: bool,
}

/// Builds the inputs in a temp dir, runs validate in-process and checks every output.
fn check(case: &str, input: Input, expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (train_images, _) = fixture::tiny_mnist(&root.join("mnist"), input.base, 0);
    let mut rows: Vec<Row> = (0..input.base)
        .map(|i| Row {
            index: Some(i as i64),
            ..fixture::row(&train_images, &fixture::sha256(&fixture::digit(1000 + i)), i % 10, Role::Train)
        })
        .collect();
    std::fs::create_dir_all(root.join("feedback")).unwrap();
    for f in &input.feedback {
        let path = root.join("feedback").join(format!("{}.png", f.name));
        if let Some(bytes) = f.image.bytes() {
            std::fs::write(&path, bytes).unwrap();
        }
        rows.push(fixture::row(&path, &f.image.recorded_sha256(), f.label, f.role));
    }
    let manifest_path = root.join("manifest.parquet");
    manifest::write(&manifest_path, &rows).unwrap();
    let params = fixture::params(
        root,
        &format!(
            "validate:\n  max_bad_share: {}\n  min_side: 8\n  max_side: 4096\n  min_ink: 0.01\n  max_class_share: 0.5\nreview:\n  label_noise: false\n",
            input.max_bad_share
        ),
    );
    let out = root.join("out");
    // The label check is off here (no serving model; `label_review.rs` tests it).
    let models = root.join("models");
    let result =
        validate::run(&Args { params, manifest: manifest_path, out: out.clone(), models, device: DeviceChoice::Cpu });

    // The run's verdict, and the error names the report and the quarantine list.
    match (&result, expect.passed) {
        (Ok(_), true) => {}
        (Err(e), false) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&out.join("report.json").display().to_string()) && msg.ends_with("see quarantine.json"),
                "{case}: {msg}"
            );
        }
        (other, passed) => panic!("{case}: expected passed={passed}, got {other:?}"),
    }

    // The quarantine list: exactly the expected samples, with their reasons and identity.
    let name_of = |path: &str| Path::new(path).file_stem().unwrap().to_str().unwrap().to_string();
    let quarantine = quarantine(&out.join("quarantine.json"));
    let got: Vec<String> = quarantine.iter().map(|q| name_of(&q.path)).collect();
    let want: Vec<&str> = expect.quarantined.iter().map(|(name, _)| *name).collect();
    assert_eq!(got, want, "{case}: quarantined samples");
    for (q, (name, reason)) in quarantine.iter().zip(expect.quarantined) {
        assert!(q.reason.starts_with(reason), "{case}: {name} quarantined for {:?}, expected {reason:?}...", q.reason);
        let f = input.feedback.iter().find(|f| f.name == *name).unwrap();
        assert_eq!(
            (q.label, q.sub_set, q.sha256.clone()),
            (f.label, Some(0), f.image.recorded_sha256()),
            "{case}: {name}"
        );
    }

    // The clean manifest: every other row, in order, carrying the digit the model sees.
    let clean = manifest::read(&out.join("clean.parquet")).unwrap();
    let kept: Vec<&Row> = rows.iter().filter(|r| r.index.is_some() || !got.contains(&name_of(&r.path))).collect();
    assert_eq!(clean.len(), kept.len(), "{case}: clean rows");
    for (c, r) in clean.iter().zip(&kept) {
        let expected = match r.index {
            Some(i) => fixture::as_model_sees(&image::DynamicImage::ImageLuma8(model::preprocess::mnist_image(
                &fixture::digit(1000 + i as usize),
            ))),
            None => fixture::as_model_sees(&image::open(&r.path).unwrap()),
        };
        assert_eq!(c, &Row { pixels: Some(expected.to_vec()), ..(*r).clone() }, "{case}: clean row {}", r.path);
    }

    // The report counts the feedback only.
    let report = report(&out.join("report.json"));
    let feedback = input.feedback.len();
    let bad = expect.quarantined.len();
    let mut reasons = BTreeMap::new();
    for q in &quarantine {
        *reasons.entry(q.reason.split(':').next().unwrap().to_string()).or_insert(0) += 1;
    }
    let mut per_class: std::collections::BTreeMap<String, usize> = (0..10).map(|d| (d.to_string(), 0)).collect();
    clean.iter().filter(|r| r.sub_set.is_some()).for_each(|r| *per_class.get_mut(&r.label.to_string()).unwrap() += 1);
    let decoded = input
        .feedback
        .iter()
        .filter(|f| matches!(f.image, Image::Digit(_) | Image::Blank | Image::Faint | Image::Sized(..)))
        .count();
    let modes: BTreeMap<String, usize> = (decoded > 0).then(|| ("L8".to_string(), decoded)).into_iter().collect();
    let bad_share = if feedback == 0 { 0.0 } else { bad as f64 / feedback as f64 };
    assert_eq!(
        (report.rows, report.clean, report.feedback, report.feedback_bad),
        (rows.len(), kept.len(), feedback, bad),
        "{case}: report counts"
    );
    // (serde_json may read a float back one ulp off.)
    assert!((report.bad_share - bad_share).abs() < 1e-12, "{case}: bad share {} != {bad_share}", report.bad_share);
    assert_eq!((report.max_bad_share, report.passed), (input.max_bad_share, expect.passed), "{case}");
    assert_eq!(report.reasons, reasons, "{case}: report reasons");
    assert_eq!(report.feedback_per_class, per_class, "{case}: feedback per class");
    assert_eq!(report.modes, modes, "{case}: colour modes");
    assert_eq!(report.warnings, expect.warnings, "{case}: warnings");
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    let verdict = if expect.passed { "PASSED" } else { "FAILED" };
    assert!(text.lines().next().unwrap().ends_with(verdict), "{case}: report.txt\n{text}");
    if let Ok(returned) = result {
        let written = std::fs::read_to_string(out.join("report.json")).unwrap();
        assert_eq!(
            written,
            serde_json::to_string_pretty(&returned).unwrap() + "\n",
            "{case}: report.json is what run returned"
        );
    }
}

fn report(path: &Path) -> Report {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn quarantine(path: &Path) -> Vec<Quarantined> {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn validate_cases() {
    use Image::*;
    let cases = [
        (
            "clean digits and base rows pass",
            Input { base: 4, feedback: vec![train("a", Digit(1), 1), held("b", Digit(2), 2)], max_bad_share: 0.2 },
            Expect { quarantined: &[], warnings: &[], passed: true },
        ),
        (
            "corrupt file; one bad in five is exactly the limit, which passes",
            Input {
                base: 2,
                feedback: vec![
                    train("a", Digit(1), 1),
                    train("b", Digit(2), 2),
                    train("bad", Corrupt, 3),
                    held("c", Digit(3), 3),
                    train("d", Digit(4), 4),
                ],
                max_bad_share: 0.2,
            },
            Expect { quarantined: &[("bad", "undecodable: ")], warnings: &[], passed: true },
        ),
        (
            "missing file",
            Input { base: 0, feedback: vec![train("a", Digit(1), 1), train("gone", Missing, 5)], max_bad_share: 0.5 },
            Expect { quarantined: &[("gone", "unreadable: ")], warnings: &[], passed: true },
        ),
        (
            "a file changed since it was recorded",
            Input {
                base: 0,
                feedback: vec![train("a", Digit(1), 1), train("edited", Changed(7), 7)],
                max_bad_share: 0.5,
            },
            Expect {
                quarantined: &[("edited", "changed: the file's sha256 no longer matches its feedback record")],
                warnings: &[],
                passed: true,
            },
        ),
        (
            "an exact duplicate keeps the first copy",
            Input {
                base: 0,
                feedback: vec![train("first", Digit(3), 3), train("a", Digit(1), 1), train("again", Digit(3), 3)],
                max_bad_share: 0.5,
            },
            Expect {
                quarantined: &[("again", "duplicate: the same image with the same label is already in the dataset")],
                warnings: &[],
                passed: true,
            },
        ),
        (
            "the same image with two labels quarantines every copy",
            Input {
                base: 0,
                feedback: vec![
                    train("four", Digit(4), 4),
                    train("a", Digit(1), 1),
                    held("b", Digit(2), 2),
                    train("seven", Digit(4), 7),
                    train("four_again", Digit(4), 4),
                ],
                max_bad_share: 0.8,
            },
            Expect {
                quarantined: &[
                    ("four", "conflicting labels: the same image is labelled [4, 7, 4]"),
                    ("seven", "conflicting labels: the same image is labelled [4, 7, 4]"),
                    ("four_again", "conflicting labels: the same image is labelled [4, 7, 4]"),
                ],
                warnings: &[],
                passed: true,
            },
        ),
        (
            "a blank image",
            Input { base: 0, feedback: vec![train("a", Digit(1), 1), held("empty", Blank, 0)], max_bad_share: 0.5 },
            Expect {
                quarantined: &[("empty", "blank: the image is blank: no ink stands out from the background")],
                warnings: &[],
                passed: true,
            },
        ),
        (
            "a near-blank image",
            Input { base: 0, feedback: vec![train("a", Digit(1), 1), train("line", Faint, 1)], max_bad_share: 0.5 },
            Expect { quarantined: &[("line", "blank: only 0.0% of the digit is ink")], warnings: &[], passed: true },
        ),
        (
            "too small and too large; the smallest size allowed passes",
            Input {
                base: 0,
                feedback: vec![
                    train("small", Sized(7, 20), 1),
                    train("least", Sized(8, 8), 1),
                    train("wide", Sized(4097, 8), 1),
                    train("a", Digit(1), 1),
                ],
                max_bad_share: 0.5,
            },
            Expect {
                quarantined: &[
                    ("small", "size: 7x20 is outside 8..4096 pixels a side"),
                    ("wide", "size: 4097x8 is outside 8..4096 pixels a side"),
                ],
                warnings: &[],
                passed: true,
            },
        ),
        (
            "a bad share past max_bad_share fails the run",
            Input {
                base: 3,
                feedback: vec![train("a", Digit(1), 1), held("bad", Corrupt, 2), train("b", Digit(2), 2)],
                max_bad_share: 0.2,
            },
            Expect { quarantined: &[("bad", "undecodable: ")], warnings: &[], passed: false },
        ),
        (
            "one digit holding most of the feedback is a warning",
            Input {
                base: 0,
                feedback: ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"]
                    .into_iter()
                    .zip(1..)
                    .map(|(name, n)| train(name, Digit(n), 6))
                    .chain([train("x", Digit(20), 0), train("y", Digit(21), 1)])
                    .collect(),
                max_bad_share: 0.2,
            },
            Expect {
                quarantined: &[],
                warnings: &["class balance: class 6 is 8 of 10 feedback samples"],
                passed: true,
            },
        ),
    ];
    for (case, input, expect) in cases {
        check(case, input, expect);
    }
}

/// The binary, in a repo-like folder with the default paths and relative image paths: past
/// max_bad_share it exits non-zero having written the report and the quarantine list; with a
/// higher limit the same input passes.
#[test]
fn the_binary_fails_past_max_bad_share_and_still_writes_its_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("new_data")).unwrap();
    let good = fixture::png(&fixture::digit(5));
    std::fs::write(root.join("new_data/good.png"), &good).unwrap();
    std::fs::write(root.join("new_data/bad.png"), b"garbage").unwrap();
    let rows = [
        fixture::row(Path::new("new_data/good.png"), &fixture::sha256(&good), 5, Role::FeedbackTrain),
        fixture::row(Path::new("new_data/bad.png"), &fixture::sha256(b"garbage"), 6, Role::Holdout),
    ];
    manifest::write(&root.join("artifacts/ingest/manifest.parquet"), &rows).unwrap();
    let run = |max_bad_share: f64| {
        fixture::params(root, &format!("validate:\n  max_bad_share: {max_bad_share}\n"));
        Command::new(env!("CARGO_BIN_EXE_validate")).env_remove("LD_LIBRARY_PATH").current_dir(root).output().unwrap()
    };

    let out = run(0.2);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "validate: error: artifacts/validate/report.json: 1 of 2 feedback samples are bad (50.0% > validate.max_bad_share 20.0%); see quarantine.json\n"
    );
    let failed = report(&root.join("artifacts/validate/report.json"));
    assert!(!failed.passed && failed.feedback_bad == 1 && failed.bad_share == 0.5, "{failed:?}");
    let quarantine = quarantine(&root.join("artifacts/validate/quarantine.json"));
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!((quarantine[0].path.as_str(), quarantine[0].label), ("new_data/bad.png", 6));
    assert!(quarantine[0].reason.starts_with("undecodable: "), "{quarantine:?}");
    let clean = manifest::read(&root.join("artifacts/validate/clean.parquet")).unwrap();
    assert_eq!(clean.iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), ["new_data/good.png"]);
    assert!(std::fs::read_to_string(root.join("artifacts/validate/report.txt")).unwrap().contains("FAILED"));

    let out = run(0.5);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "validate: 1 of 2 rows clean, 1 of 2 feedback samples quarantined -> artifacts/validate\n"
    );
    assert!(report(&root.join("artifacts/validate/report.json")).passed);
}
