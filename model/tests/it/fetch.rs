//! `data fetch` copies and verifies, and refuses a damaged copy.

use model::data::fetch::{Source, fetch};

#[test]
fn copies_the_shared_data_and_verifies_its_checksums() {
    let Some(dir) = testkit::shared_mnist() else { return };
    let dest = tempfile::tempdir().unwrap();
    let files = fetch(&Source::Dir(dir.clone()), dest.path()).unwrap();
    assert_eq!(files.len(), 4);
    for f in &files {
        assert_eq!(std::fs::read(f).unwrap(), std::fs::read(dir.join(f.file_name().unwrap())).unwrap());
    }
    // A second fetch verifies what is there and keeps it.
    assert_eq!(fetch(&Source::Dir(dir), dest.path()).unwrap(), files);
}

#[test]
fn a_damaged_source_file_is_refused_and_not_copied() {
    let Some(shared) = testkit::shared_mnist() else { return };
    let src = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&shared).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), src.path().join(f.file_name())).unwrap();
    }
    let labels = src.path().join("t10k-labels-idx1-ubyte.gz");
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes[20] ^= 0xff;
    std::fs::write(&labels, bytes).unwrap();
    let dest = tempfile::tempdir().unwrap();
    let err = fetch(&Source::Dir(src.path().to_path_buf()), dest.path()).unwrap_err().to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte.gz") && err.contains("sha256"), "{err}");
    assert!(!dest.path().join("t10k-labels-idx1-ubyte.gz").exists());
}

#[test]
fn no_network_is_a_clear_error() {
    let dest = tempfile::tempdir().unwrap();
    // This machine has no route to the mirrors; elsewhere the download succeeds and is verified.
    match fetch(&Source::Mirrors, dest.path()) {
        Ok(files) => assert_eq!(files.len(), 4),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains("could not download") && msg.contains("--from"), "{msg}");
        }
    }
}
