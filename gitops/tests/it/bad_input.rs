//! Bad input is a clear error and nothing is written: not an image, empty, a decompression
//! bomb, an oversized upload, label 11, a missing file.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use gitops::feedback::{FeedbackError, Kind};
use gitops::image_input::{ImageInputError, ImageLimits, decode_limited};

use crate::support::{png, sample, store, stored_pngs, write_params};

/// A valid 20000x20000 1-bit grayscale PNG (about 50 KB; 400 MB once decoded to 8 bits).
fn png_bomb() -> Vec<u8> {
    let (w, h) = (20_000u32, 20_000u32);
    let row = vec![0u8; 1 + (w as usize).div_ceil(8)];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..h {
        z.write_all(&row).unwrap();
    }
    let idat = z.finish().unwrap();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
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

fn assert_nothing_written(root: &Path) {
    assert!(stored_pngs(root).is_empty(), "{:?}", stored_pngs(root));
    assert!(!root.join("new_data/count.json").exists());
    let tmp = std::fs::read_dir(root.join("new_data/.tmp")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(tmp, 0, "no temp file left");
}

#[test]
fn the_bomb_is_refused_from_its_header() {
    let bomb = png_bomb();
    assert!(bomb.len() < 1 << 20, "cheap to make: {} bytes", bomb.len());
    let e = decode_limited(&bomb, &ImageLimits::default()).unwrap_err();
    assert!(matches!(e, ImageInputError::TooManyPixels { width: 20_000, height: 20_000, .. }), "{e}");
    assert!(e.to_string().contains("20000x20000") && e.to_string().contains("decompression bomb"), "{e}");
}

#[test]
fn each_bad_sample_is_a_clear_error_and_nothing_is_written() {
    type Mutate = Box<dyn Fn(&mut gitops::feedback::Sample)>;
    let cases: Vec<(&str, Mutate, &str)> = vec![
        ("not an image", Box::new(|s| s.image = b"hello, not a png".to_vec()), "not an image"),
        ("empty", Box::new(|s| s.image.clear()), "empty"),
        ("bomb", Box::new(|s| s.image = png_bomb()), "decompression bomb"),
        ("oversized", Box::new(|s| s.image = vec![0x89; 11 << 20]), "more than the limit"),
        ("label 11", Box::new(|s| s.label = "11".into()), "label: `11` is not a class of task mnist"),
        ("correct but mispredicted", Box::new(|s| s.predicted = Some("2".into())), "kind correct but predicted 2"),
        ("confidence", Box::new(|s| s.confidence = Some(1.5)), "confidence 1.5"),
        ("truncated png", Box::new(|s| s.image.truncate(s.image.len() / 2)), "cannot be decoded"),
    ];
    for (name, mutate, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), 10);
        let mut s = sample(1, 3);
        s.kind = Kind::Correct;
        mutate(&mut s);
        let e = store.add(s).unwrap_err();
        assert!(e.to_string().contains(expected), "{name}: {e}");
        assert!(!matches!(e, FeedbackError::Io { .. }), "{name}: {e}");
        assert_nothing_written(dir.path());
    }
}

fn cli(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gitops-feedback")).arg("--repo").arg(root).args(args).output().unwrap()
}

#[test]
fn the_cli_refuses_bad_files_before_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 10);
    std::fs::write(root.join("good.png"), png(1)).unwrap();
    std::fs::write(root.join("bomb.png"), png_bomb()).unwrap();
    std::fs::write(root.join("text.png"), "hello").unwrap();
    std::fs::write(root.join("empty.png"), "").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--label", "3", "good.png", "missing.png"], "cannot read"),
        (&["--label", "3", "good.png", "bomb.png"], "decompression bomb"),
        (&["--label", "3", "good.png", "text.png"], "not an image"),
        (&["--label", "3", "empty.png"], "empty"),
        (&["--label", "11", "good.png"], "11"),
    ];
    for (args, expected) in cases {
        let files: Vec<String> = args
            .iter()
            .map(|a| if a.ends_with(".png") { root.join(a).display().to_string() } else { a.to_string() })
            .collect();
        let mut full = vec!["feedback", "add"];
        full.extend(files.iter().map(String::as_str));
        let out = cli(root, &full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_nothing_written(root);
    }
    let out = cli(root, &["feedback", "add", "--label", "3", root.join("good.png").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stored_pngs(root).len(), 1);
}

/// `feedback add` with a file that is no image file at all: a character device that never
/// ends, a FIFO nobody writes to, a folder, a sparse file past the limit. Each is refused
/// before it is read, at once, under a 1 GiB address-space limit, with the file and the limit
/// named; nothing is stored. (`timeout` ends a run that blocks or reads without end.)
#[test]
fn the_cli_refuses_special_and_oversized_files_before_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_params(root, 10);
    let max = ImageLimits::default().max_bytes;
    let fifo = root.join("pipe.png");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let folder = root.join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    let sparse = root.join("sparse.png");
    std::fs::File::create(&sparse).unwrap().set_len(max + 1).unwrap();
    let cases = [
        (
            Path::new("/dev/zero"),
            format!(
                "cannot read /dev/zero: it is a character device, not a regular file (only image files of at most {max} bytes"
            ),
        ),
        (&fifo, format!("it is a FIFO (named pipe), not a regular file (only image files of at most {max} bytes")),
        (&folder, format!("it is a folder, not a regular file (only image files of at most {max} bytes")),
        (&sparse, format!("it is {} bytes, more than the limit of {max} bytes (refused before reading)", max + 1)),
    ];
    for (file, expected) in cases {
        let started = std::time::Instant::now();
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1048576 && exec timeout 20 \"$0\" \"$@\"")
            .arg(env!("CARGO_BIN_EXE_gitops-feedback"))
            .arg("--repo")
            .arg(root)
            .args(["feedback", "add", "--label", "3"])
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: accepted", file.display());
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains(&expected),
            "{}: {stderr}",
            file.display()
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{}: took {:?}",
            file.display(),
            started.elapsed()
        );
        assert_nothing_written(root);
    }
}
