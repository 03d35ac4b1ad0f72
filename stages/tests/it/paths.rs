//! `dvc.yaml` runs each stage with exactly its defaults, so the paths in `pipeline::paths`
//! (which `pipeline ci` and the server read) are the ones the DAG writes, and each is an out of
//! the stage that writes it.

use clap::{Args, Parser};
use pipeline::paths;
use stages::{augment, evaluate, finetune, ingest, promote, validate};

#[derive(Debug, Parser)]
struct Stage<A: Args> {
    #[command(flatten)]
    args: A,
}

fn dvc_yaml() -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(testkit::workspace_root().join("dvc.yaml")).unwrap()).unwrap()
}

/// The stage's `cmd` parses to the same arguments as no arguments at all.
fn passes_its_defaults<A: Args + std::fmt::Debug>(dvc: &serde_yaml::Value, stage: &str) {
    let cmd = dvc["stages"][stage]["cmd"].as_str().unwrap_or_else(|| panic!("no cmd for {stage}"));
    let given = Stage::<A>::try_parse_from(cmd.split_whitespace()).unwrap_or_else(|e| panic!("{stage}: {e}"));
    let defaults = Stage::<A>::try_parse_from([stage]).unwrap();
    assert_eq!(format!("{:?}", given.args), format!("{:?}", defaults.args), "{stage}: dvc.yaml's cmd `{cmd}`");
}

fn outs(dvc: &serde_yaml::Value, stage: &str) -> Vec<String> {
    let list = dvc["stages"][stage]["outs"].as_sequence().unwrap_or_else(|| panic!("no outs for {stage}"));
    list.iter()
        .map(|out| match out {
            serde_yaml::Value::String(path) => path.clone(),
            serde_yaml::Value::Mapping(m) => m.keys().next().and_then(|k| k.as_str()).unwrap().to_string(),
            other => panic!("{stage}: odd out {other:?}"),
        })
        .collect()
}

#[test]
fn dvc_yaml_passes_each_stage_its_defaults_and_lists_their_outputs() {
    let dvc = dvc_yaml();
    passes_its_defaults::<ingest::Args>(&dvc, "ingest");
    passes_its_defaults::<validate::Args>(&dvc, "validate");
    passes_its_defaults::<augment::Args>(&dvc, "augment");
    passes_its_defaults::<finetune::Args>(&dvc, "finetune");
    passes_its_defaults::<evaluate::Args>(&dvc, "evaluate");
    passes_its_defaults::<promote::Args>(&dvc, "promote");
    for (stage, path) in [
        ("ingest", paths::MANIFEST),
        ("validate", paths::VALIDATE),
        ("augment", paths::AUGMENTED),
        ("finetune", paths::CANDIDATE),
        ("evaluate", paths::EVALUATION),
        ("evaluate", paths::PLOTS),
        ("promote", paths::DECISION),
    ] {
        assert!(outs(&dvc, stage).iter().any(|o| o == path), "{stage} does not list {path} in its outs");
    }
    assert!(paths::CLEAN.starts_with(paths::VALIDATE) && paths::EVALUATION.starts_with("artifacts/evaluate/"));
    let metrics =
        dvc["stages"]["evaluate"]["metrics"][0].as_mapping().unwrap().keys().next().unwrap().as_str().unwrap();
    assert_eq!(metrics, paths::METRICS);
}
