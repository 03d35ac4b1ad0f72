//! Bad dvc.yaml files give errors with file and line, naming the stages involved.

use crate::support::Repo;

fn error_of(dvc_yaml: &str) -> String {
    let repo = Repo::new(&[("dvc.yaml", dvc_yaml), ("params.yaml", "lr: 1\n")]);
    let out = repo.ours_output(&["status"]);
    assert!(!out.status.success(), "expected an error for:\n{dvc_yaml}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check(dvc_yaml: &str, expected: &[&str]) {
    let err = error_of(dvc_yaml);
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in {err:?}");
    }
}

#[test]
fn errors_name_file_line_and_stages() {
    check("stages:\n  a:\n    cmd: x\n    outz: [y]\n", &["dvc.yaml:4:", "unknown key `outz`"]);
    check("stages:\n  a:\n    cmd: x\n    frozen: maybe\n", &["dvc.yaml:4:", "frozen must be true or false"]);
    check("stages:\n  a:\n    cmd: echo ${nope}\n", &["dvc.yaml:3:", "could not find 'nope'"]);
    check("stages:\n  a:\n    cmd: [x\n", &["dvc.yaml:"]);
    check("stages:\n  a:\n    deps: [x]\n", &["dvc.yaml:2:", "has no `cmd`"]);
    check(
        "stages:\n  a:\n    cmd: x\n    outs: [o]\n  b:\n    cmd: y\n    outs: [o]\n",
        &["output 'o' is specified in stages 'a' and 'b'"],
    );
    check(
        "stages:\n  a:\n    cmd: x\n    deps: [q]\n    outs: [p]\n  b:\n    cmd: y\n    deps: [p]\n    outs: [q]\n",
        &["cycle", "a, b"],
    );
    check(
        "stages:\n  a:\n    cmd: x\n    outs: [d]\n  b:\n    cmd: y\n    outs: [d/inner]\n",
        &["output 'd' of stage 'a' contains output 'd/inner' of stage 'b'"],
    );
}
