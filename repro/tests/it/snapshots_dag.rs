//! `dag` output in its three formats, including a dependency inside an output directory.

use crate::support::Repo;

const DVC_YAML: &str = "stages:
  fetch:
    cmd: mkdir -p raw && echo 1 > raw/a
    outs: [raw]
  features:
    cmd: cat raw/a > features.txt
    deps: [raw/a]
    outs: [features.txt]
  labels:
    cmd: cat raw/a > labels.txt
    deps: [raw]
    outs: [labels.txt]
  train:
    cmd: cat features.txt labels.txt > model.txt
    deps: [features.txt, labels.txt]
    outs: [model.txt]
";

#[test]
fn dag_formats() {
    let repo = Repo::new(&[("dvc.yaml", DVC_YAML)]);
    insta::assert_snapshot!("dag_ascii", repo.ours(&["dag"]));
    insta::assert_snapshot!("dag_dot", repo.ours(&["dag", "--dot"]));
    insta::assert_snapshot!("dag_mermaid", repo.ours(&["dag", "--mermaid"]));
    // The edges DVC sees are the same.
    let theirs = repo.dvc(&["dag", "--dot"]);
    for edge in
        ["\"fetch\" -> \"features\"", "\"fetch\" -> \"labels\"", "\"features\" -> \"train\"", "\"labels\" -> \"train\""]
    {
        assert!(theirs.contains(edge), "dvc dag lacks {edge}:\n{theirs}");
    }
}
