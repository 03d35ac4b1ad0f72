//! The IDX reader accepts well-formed files and names the file and the fault otherwise.

use model::data::idx::{self, encode_images, encode_labels};
use model::data::{Mnist, Split};

fn write_pair(dir: &std::path::Path, images: &[u8], labels: &[u8]) {
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn reads_a_tiny_raw_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..3 * 784).map(|i| (i % 251) as u8).collect();
    write_pair(dir.path(), &encode_images(&pixels, 3), &encode_labels(&[7, 0, 9]));
    let set = Mnist::load(dir.path(), Split::Test).unwrap();
    assert_eq!(set.labels, vec![7, 0, 9]);
    assert_eq!(set.image(2), &pixels[2 * 784..]);
}

#[test]
fn reads_the_shared_gzip_files() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let train = Mnist::load(&dir, Split::Train).unwrap();
    let test = Mnist::load(&dir, Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (6000, 2000));
    assert!(train.labels.iter().all(|&l| l < 10));
}

/// Each corruption gives an error naming the file and the fault.
#[test]
fn corrupt_files_are_errors_that_name_the_file() {
    let good_images = encode_images(&[0u8; 2 * 784], 2);
    let good_labels = encode_labels(&[1, 2]);
    let mut bad_magic = good_images.clone();
    bad_magic[3] = 0x01;
    let mut wrong_side = good_images.clone();
    wrong_side[11] = 27;
    let mut bad_label = good_labels.clone();
    bad_label[9] = 11;
    let cases: [(&str, Vec<u8>, Vec<u8>, &str); 6] = [
        ("truncated images", good_images[..good_images.len() - 5].to_vec(), good_labels.clone(), "truncated"),
        ("short header", good_images[..10].to_vec(), good_labels.clone(), "too short"),
        ("bad magic", bad_magic, good_labels.clone(), "magic number"),
        ("not 28x28", wrong_side, good_labels.clone(), "expected 28x28"),
        ("label 11", good_images.clone(), bad_label, "not a digit"),
        ("count mismatch", good_images.clone(), encode_labels(&[1, 2, 3]), "3 labels for 2 images"),
    ];
    for (case, images, labels, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path(), &images, &labels);
        let err = Mnist::load(dir.path(), Split::Test).expect_err(case).to_string();
        assert!(err.contains(expected), "{case}: {err}");
        assert!(err.contains("t10k-"), "{case}: error does not name the file: {err}");
    }
}

#[test]
fn damaged_gzip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), encode_labels(&[1])).unwrap();
    let err = Mnist::load(dir.path(), Split::Test).unwrap_err().to_string();
    assert!(err.contains("t10k-images-idx3-ubyte.gz") && err.contains("gzip"), "{err}");
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = idx::locate(dir.path(), "train-images-idx3-ubyte").unwrap_err().to_string();
    assert!(err.contains("train-images-idx3-ubyte.gz"), "{err}");
}
