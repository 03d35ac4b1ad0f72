//! The `pipeline` binary end to end: it runs without LD_LIBRARY_PATH, and `predict --json`
//! prints one object per image.

use std::process::Command;

fn pipeline(repo: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.env_remove("LD_LIBRARY_PATH").arg("--repo").arg(repo);
    cmd
}

#[test]
fn predict_json_gives_one_line_per_image() {
    let Some(mnist) = crate::shared_mnist() else { return };
    let repo = crate::temp_repo();
    let digits = repo.path().join("digits");
    let export = pipeline(repo.path())
        .args(["data", "export", "--count", "5", "--data"])
        .arg(&mnist)
        .arg("--out")
        .arg(&digits)
        .output()
        .unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let mut pngs: Vec<_> = std::fs::read_dir(&digits).unwrap().map(|e| e.unwrap().path()).collect();
    pngs.sort();
    let out = pipeline(repo.path()).arg("predict").arg("--json").args(&pngs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5);
    let mut right = 0;
    for (line, png) in lines.iter().zip(&pngs) {
        assert_eq!(line["path"], png.display().to_string());
        assert_eq!(line["probabilities"].as_array().unwrap().len(), 10);
        let label: u64 = png.file_stem().unwrap().to_str().unwrap().split('_').nth(1).unwrap().parse().unwrap();
        right += usize::from(line["digit"].as_u64() == Some(label));
        assert!(line["confidence"].as_f64().unwrap() > 0.0);
    }
    assert!(right >= 4, "{right}/5 right");
}

#[test]
fn predict_names_a_file_that_is_not_an_image() {
    let repo = crate::temp_repo();
    let bogus = repo.path().join("notes.png");
    std::fs::write(&bogus, b"hello").unwrap();
    let out = pipeline(repo.path()).arg("predict").arg(&bogus).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.png"), "{err}");
}
