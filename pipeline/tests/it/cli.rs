//! The `pipeline` binary end to end: it does not link libtorch, runs `pipeline-model` for the
//! commands that load a model (without LD_LIBRARY_PATH), says so when that helper is missing,
//! and `predict --json` prints one object per image.

use std::process::Command;

fn pipeline(repo: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.env_remove("LD_LIBRARY_PATH").arg("--repo").arg(repo);
    cmd
}

/// The shared libraries `ldd` lists for `binary`.
fn linked(binary: &std::path::Path) -> String {
    testkit::run(Command::new("ldd").arg(binary), "ldd")
}

#[test]
fn pipeline_links_no_libtorch_and_its_helper_does() {
    let pipeline = std::path::Path::new(env!("CARGO_BIN_EXE_pipeline"));
    let own = linked(pipeline);
    assert!(own.contains("libc.so"), "ldd saw the binary: {own}");
    assert!(!own.contains("torch") && !own.contains("libc10"), "pipeline loads libtorch:\n{own}");
    let helper = pipeline.with_file_name("pipeline-model");
    let helper = testkit::require::present(
        helper.is_file().then_some(helper),
        "target/<profile>/pipeline-model",
        "cargo build -p stages --bin pipeline-model (cargo test --workspace builds it)",
    );
    let Some(helper) = helper else { return };
    assert!(linked(&helper).contains("libtorch_cpu"), "the helper is what links libtorch");
}

#[test]
fn a_model_command_without_its_helper_says_what_is_missing() {
    let repo = testkit::temp_repo();
    // A copy of `pipeline` alone in a folder, with no `pipeline-model` beside it or on PATH.
    let lonely = repo.path().join("bin/pipeline");
    std::fs::create_dir_all(lonely.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_pipeline"), &lonely).unwrap();
    let out = Command::new(&lonely)
        .env("PATH", repo.path().join("bin"))
        .arg("--repo")
        .arg(repo.path())
        .args(["predict", "some.png"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipeline-model is not next to") && err.contains("cargo build"), "{err}");
    // A command that loads no model runs as before.
    let status = Command::new(&lonely).arg("--repo").arg(repo.path()).args(["models", "list"]).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

#[test]
fn predict_json_gives_one_line_per_image() {
    let Some(mnist) = testkit::shared_mnist() else { return };
    let repo = testkit::temp_repo();
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
        let probabilities = line["probabilities"].as_object().unwrap();
        let names: Vec<&str> = probabilities.keys().map(String::as_str).collect();
        assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"], "by class name, in class order");
        assert_eq!(line["label"], line["digit"].as_u64().unwrap().to_string());
        assert_eq!(line["index"], line["digit"]);
        let label: u64 = png.file_stem().unwrap().to_str().unwrap().split('_').nth(1).unwrap().parse().unwrap();
        right += usize::from(line["digit"].as_u64() == Some(label));
        assert!(line["confidence"].as_f64().unwrap() > 0.0);
    }
    assert!(right >= 4, "{right}/5 right");
}

#[test]
fn predict_names_a_file_that_is_not_an_image() {
    let repo = testkit::temp_repo();
    let bogus = repo.path().join("notes.png");
    std::fs::write(&bogus, b"hello").unwrap();
    let out = pipeline(repo.path()).arg("predict").arg(&bogus).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.png"), "{err}");
}

/// A valid `side`x`side` 1-bit grayscale PNG: about 50 KB at 20000, quick to make, `side`² bytes
/// once decoded to 8 bits.
fn png_bomb(side: u32) -> Vec<u8> {
    use std::io::Write;
    let row = vec![0u8; 1 + (side as usize).div_ceil(8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..side {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut ihdr = [side.to_be_bytes(), side.to_be_bytes()].concat();
    ihdr.extend_from_slice(&[1, 0, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(&b"IHDR"[..], &ihdr[..]), (b"IDAT", &idat), (b"IEND", &[])] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

/// `predict` applies the server's limits before reading or decoding: a 20000x20000 PNG is
/// refused from its header, a device or an oversized file before a byte is read; each error
/// names the file and the limit, and the other images are still predicted.
#[test]
fn predict_refuses_what_is_too_large_before_reading_or_decoding() {
    let repo = testkit::temp_repo();
    let bomb = repo.path().join("bomb.png");
    std::fs::write(&bomb, png_bomb(20_000)).unwrap();
    let max = gitops::image_input::ImageLimits::default();
    let sparse = repo.path().join("sparse.png");
    std::fs::File::create(&sparse).unwrap().set_len(max.max_bytes + 1).unwrap();
    let good = repo.path().join("good.png");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([if (10..18).contains(&x) && y > 4 { 255 } else { 0 }]))
        .save(&good)
        .unwrap();
    let started = std::time::Instant::now();
    let out = pipeline(repo.path()).arg("predict").args([&bomb, &sparse]).arg("/dev/zero").arg(&good).output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "took {:?}", started.elapsed());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        format!(
            "{}: cannot read the image: the image is 20000x20000 = 400000000 pixels, more than the limit of {}",
            bomb.display(),
            max.max_pixels
        ),
        format!(
            "cannot read {}: it is {} bytes, more than the limit of {} bytes",
            sparse.display(),
            max.max_bytes + 1,
            max.max_bytes
        ),
        format!(
            "cannot read /dev/zero: it is a character device, not a regular file (only image files of at most {} bytes",
            max.max_bytes
        ),
    ] {
        assert!(err.contains(&expected), "expected {expected:?} in {err}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with(&format!("{}: ", good.display())) && stdout.lines().count() == 1, "{stdout}");
}

/// An error whose message already holds its cause prints that cause once, not again after it.
#[test]
fn an_error_prints_each_cause_once() {
    let repo = testkit::temp_repo();
    let missing = repo.path().join("missing.png");
    let out = pipeline(repo.path()).args(["feedback", "add", "--label", "3"]).arg(&missing).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "the cause is printed once: {err}");
}
