//! The runner stays inside the repo: an out, dep, params file or wdir that leads outside, as
//! written or through a symlink, is refused with its dvc.yaml line and nothing is deleted.

use crate::support::Sandbox;

/// Runs `repro` over `dvc_yaml` in a repo beside `files`; expects it to fail with every one
/// of `expected` in its error, and returns the sandbox for the caller to check what survived.
fn refused(files: &[(&str, &str)], links: &[(&str, &str)], dvc_yaml: &str, expected: &[&str]) -> Sandbox {
    let sandbox = Sandbox::new(files);
    for (target, link) in links {
        sandbox.symlink(target, link);
    }
    std::fs::write(sandbox.repo().join("dvc.yaml"), dvc_yaml).unwrap();
    let out = sandbox.ours_output(&["repro"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "expected a refusal for:\n{dvc_yaml}\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for e in expected {
        assert!(err.contains(e), "expected {e:?} in {err:?}");
    }
    assert!(sandbox.exists("repo/dvc.yaml"), "the repo itself was deleted");
    sandbox
}

#[test]
fn an_output_in_the_repos_own_metadata_is_refused() {
    let s = refused(
        &[("repo/.git/HEAD", "ref: refs/heads/main\n")],
        &[],
        "stages:\n  a:\n    cmd: 'true'\n    outs: [.git]\n",
        &["dvc.yaml:4: output '.git' of stage 'a' is inside .git, the repository's own metadata"],
    );
    assert!(s.exists("repo/.git/HEAD"), "git's history survives");
    let s = refused(
        &[("repo/.dvc/cache/files/md5/ab/cdef", "cached\n")],
        &[(".dvc/cache", "repo/cache_link")],
        "stages:\n  a:\n    cmd: 'true'\n    outs: [cache_link/files]\n",
        &["dvc.yaml:4: output 'cache_link/files' of stage 'a' is inside .dvc"],
    );
    assert!(s.exists("repo/.dvc/cache/files/md5/ab/cdef"), "DVC's cache survives");
}

#[test]
fn an_output_outside_the_repo_is_refused_and_nothing_is_deleted() {
    let files = [("precious.txt", "keep me\n"), ("repo/a.txt", "old a\n")];
    let s = refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: touch a.txt\n    outs: [a.txt, ..]\n",
        &["dvc.yaml:4: output '..' of stage 'a' is outside the repository"],
    );
    assert!(s.exists("precious.txt") && s.exists("repo/a.txt"));
    let s = refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: echo new > ../precious.txt\n    outs:\n      - a.txt\n      - ../precious.txt\n",
        &["dvc.yaml:6: output '../precious.txt' of stage 'a' is outside the repository"],
    );
    assert_eq!(std::fs::read_to_string(s.path().join("precious.txt")).unwrap(), "keep me\n");
    assert!(s.exists("repo/a.txt"), "no output of the stage was removed either");
    // `../../x` climbs two levels: it is not the repo's own `x`.
    let s = refused(
        &[("repo/x", "not the stage's\n")],
        &[],
        "stages:\n  a:\n    cmd: 'true'\n    outs: [../../x]\n",
        &["dvc.yaml:4: output '../../x' of stage 'a' is outside the repository"],
    );
    assert!(s.exists("repo/x"));
    let s = refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: touch a.txt\n    wdir: sub\n    outs: [.., a.txt]\n",
        &["dvc.yaml:5: output '..' of stage 'a' is the repository itself"],
    );
    assert!(s.exists("repo/a.txt"));
    let s = refused(&files, &[], "stages:\n  a:\n    cmd: touch a.txt\n    outs: [.]\n", &["dvc.yaml:4: output '.'"]);
    assert!(s.exists("repo/a.txt"));
}

#[test]
fn an_output_through_a_symlink_to_outside_is_refused() {
    let files = [("elsewhere/victim.txt", "keep me\n"), ("repo/in.txt", "in\n")];
    let s = refused(
        &files,
        &[("../elsewhere", "repo/link")],
        "stages:\n  a:\n    cmd: echo x > link/victim.txt\n    deps: [in.txt]\n    outs: [link/victim.txt]\n",
        &["dvc.yaml:5: output 'link/victim.txt' of stage 'a' leads through a symlink to", "elsewhere/victim.txt"],
    );
    assert_eq!(std::fs::read_to_string(s.path().join("elsewhere/victim.txt")).unwrap(), "keep me\n");
    // A link to the repo's own folder is refused as an output too.
    refused(
        &files,
        &[(".", "repo/here")],
        "stages:\n  a:\n    cmd: 'true'\n    outs: [here]\n",
        &["dvc.yaml:4: output 'here' of stage 'a' leads through a symlink to the repository itself"],
    );
    // The link made by an earlier stage, after the pipeline was read: refused when the stage
    // that would delete through it comes up.
    let s = refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: ln -s ../elsewhere link && touch a.txt\n    outs: [a.txt]\n  b:\n    cmd: echo x > link/victim.txt\n    deps: [a.txt]\n    outs: [link/victim.txt]\n",
        &["dvc.yaml:8: output 'link/victim.txt' of stage 'b' leads through a symlink to"],
    );
    assert_eq!(std::fs::read_to_string(s.path().join("elsewhere/victim.txt")).unwrap(), "keep me\n");
}

#[test]
fn a_dependency_or_wdir_outside_the_repo_is_refused() {
    let files = [("data.txt", "outside\n"), ("repo/in.txt", "in\n")];
    refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: cat ../data.txt > o\n    deps:\n      - in.txt\n      - ../data.txt\n    outs: [o]\n",
        &["dvc.yaml:6: dependency '../data.txt' of stage 'a' is outside the repository"],
    );
    refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: cat /etc/hostname > o\n    deps: [/etc/hostname]\n    outs: [o]\n",
        &["dvc.yaml:4: dependency '/etc/hostname' of stage 'a' is an absolute path"],
    );
    refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: 'true'\n    params:\n      - ../../p.yaml:\n",
        &["dvc.yaml:5: params file '../../p.yaml' of stage 'a' is outside the repository"],
    );
    let s = refused(
        &files,
        &[],
        "stages:\n  a:\n    cmd: touch made-here\n    wdir: ..\n    deps: [repo/in.txt]\n",
        &["dvc.yaml:4: wdir '..' of stage 'a' is outside the repository"],
    );
    assert!(!s.exists("made-here"), "the command ran outside the repo");
    refused(
        &files,
        &[("..", "repo/up")],
        "stages:\n  a:\n    cmd: touch made-here\n    wdir: up\n    deps: [../in.txt]\n",
        &["dvc.yaml:4: wdir 'up' of stage 'a' leads through a symlink to"],
    );
    // `status` reads the same pipeline and refuses it too.
    let out = s.ours_output(&["status"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dvc.yaml:4: wdir '..'"));
}

/// A dependency that is a symlink to data kept outside the repo (as `data/mnist` is) is read,
/// not written: it stays allowed.
#[test]
fn a_dependency_through_a_symlink_to_outside_is_read() {
    let s = Sandbox::new(&[("mnist/a.idx", "a\n"), ("mnist/b.idx", "b\n")]);
    std::fs::create_dir(s.repo().join("data")).unwrap();
    s.symlink("../../mnist", "repo/data/mnist");
    std::fs::write(
        s.repo().join("dvc.yaml"),
        "stages:\n  count:\n    cmd: ls data/mnist > count.txt\n    deps: [data/mnist]\n    outs: [count.txt]\n",
    )
    .unwrap();
    let out = s.ours_output(&["repro"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(s.repo().join("count.txt")).unwrap(), "a.idx\nb.idx\n");
    assert!(s.exists("mnist/a.idx") && s.exists("mnist/b.idx"));
}
