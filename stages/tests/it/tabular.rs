//! A tabular repo from the command line: `pipeline init --example iris` and `--dataset FILE.csv
//! --label COL`, rows stored with `pipeline feedback add --csv` (checked before anything is
//! written) and classified with `pipeline predict --csv --json`.

use std::path::Path;
use std::process::{Command, Output};

const HEADER: &str = "sepal_length,sepal_width,petal_length,petal_width,species";

fn pipeline(repo: &Path) -> Command {
    let bin = crate::bin_dir().join("pipeline");
    assert!(bin.is_file(), "{} is missing: cargo build -p pipeline (cargo test --workspace builds it)", bin.display());
    let mut cmd = Command::new(bin);
    cmd.env("PIPELINE_TRIGGER", "none").arg("--repo").arg(repo);
    cmd
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn samples(repo: &Path) -> usize {
    let journal = repo.join("new_data/sub_set_0/feedback.jsonl");
    std::fs::read_to_string(journal).map_or(0, |j| j.lines().count())
}

#[test]
fn rows_are_added_from_a_csv_and_classified() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("iris");
    let out = pipeline(dir.path()).arg("init").arg(&repo).args(["--example", "iris"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let params = std::fs::read_to_string(repo.join("params.yaml")).unwrap();
    assert!(params.contains("kind: tabular") && params.contains("arch: mlp"), "{params}");
    assert!(!params.contains("preprocess: digit"), "image fields stay out of a tabular task: {params}");
    let parsed: serde_yaml::Value = serde_yaml::from_str(&params).unwrap();
    assert_eq!(parsed["augment"]["copies"].as_u64(), Some(0), "rows are not augmented: {params}");
    assert_eq!(parsed["finetune"]["epochs"].as_u64(), Some(30), "{params}");

    // One bad row stops the whole file: nothing is stored.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, format!("{HEADER}\n5.0,3.4,1.5,0.2,setosa\n6.1,2.8,4.7,1.2,tulip\n")).unwrap();
    let out = pipeline(&repo).args(["feedback", "add", "--no-git", "--csv"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("bad.csv: row 3: invalid feedback: label: `tulip` is not a class"), "{}", text(&out));
    assert_eq!(samples(&repo), 0);

    let good = dir.path().join("rows.csv");
    std::fs::write(
        &good,
        format!("{HEADER}\n5.0,3.4,1.5,0.2,setosa\n6.1,2.8,4.7,1.2,versicolor\n6.1,2.8,4.7,1.2,versicolor\n"),
    )
    .unwrap();
    let out = pipeline(&repo).args(["feedback", "add", "--no-git", "--csv"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rows.csv row 4: already stored as"), "the same row is stored once: {}", text(&out));
    assert_eq!(samples(&repo), 2);
    let stored: Vec<_> = std::fs::read_dir(repo.join("new_data/sub_set_0/versicolor")).unwrap().collect();
    assert_eq!(stored.len(), 1);
    let row = std::fs::read_to_string(stored[0].as_ref().unwrap().path()).unwrap();
    assert_eq!(row, "{\"sepal_length\":6.1,\"sepal_width\":2.8,\"petal_length\":4.7,\"petal_width\":1.2}\n");

    let out = pipeline(&repo).args(["predict", "--json", "--csv"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!((lines[0]["row"].as_u64(), lines[0]["label"].as_str()), (Some(2), Some("setosa")), "{:?}", lines[0]);
    assert_eq!(lines[1]["label"], "versicolor", "{:?}", lines[1]);
    assert_eq!(lines[1]["probabilities"].as_object().unwrap().len(), 3);
}

#[test]
fn a_table_needs_its_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("flowers.csv");
    std::fs::write(&table, format!("{HEADER}\n5.0,3.4,1.5,0.2,setosa\n6.1,2.8,4.7,1.2,versicolor\n")).unwrap();
    let repo = dir.path().join("repo");
    let out = pipeline(dir.path()).arg("init").arg(&repo).arg("--dataset").arg(&table).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("a table needs --label COLUMN"), "{}", text(&out));
    let out = pipeline(dir.path())
        .arg("init")
        .arg(&repo)
        .arg("--dataset")
        .arg(&table)
        .args(["--label", "kind"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("has no column `kind`"), "{}", text(&out));
}

#[test]
fn validate_quarantines_a_row_given_two_labels_and_augment_copies_no_rows() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("iris");
    let out = pipeline(dir.path()).arg("init").arg(&repo).args(["--example", "iris"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // Ten rows seal sub_set_0; the first is also given a second label.
    let iris = std::fs::read_to_string(repo.join("data/iris.csv")).unwrap();
    let rows: Vec<&str> = iris.lines().skip(1).step_by(15).take(9).collect();
    let conflicting = rows[0].replace("setosa", "virginica");
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, format!("{HEADER}\n{}\n{conflicting}\n", rows.join("\n"))).unwrap();
    let out = pipeline(&repo).args(["feedback", "add", "--no-git", "--csv"]).arg(&csv).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(repo.join("new_data/sub_set_0/sealed.json").is_file(), "{}", text(&out));

    crate::repro(&repo);
    let quarantine: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(repo.join("artifacts/validate/quarantine.json")).unwrap()).unwrap();
    assert_eq!(quarantine.len(), 2, "both copies of the row with two labels: {quarantine:?}");
    assert!(
        quarantine.iter().all(|q| q["reason"].as_str().unwrap().starts_with("conflicting labels")),
        "{quarantine:?}"
    );
    let augmented = stages::manifest::read(&repo.join("artifacts/augment/augmented.parquet")).unwrap();
    assert!(augmented.is_empty(), "rows get no augmented copies");
    let clean = stages::manifest::read(&repo.join("artifacts/validate/clean.parquet")).unwrap();
    assert!(clean.iter().all(|r| r.pixels.as_ref().is_some_and(|p| p.len() == 16)), "four f32 features per row");
}
