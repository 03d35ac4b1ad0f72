//! Fixture pipelines: small repos exercising what dvc.lock records.

/// A tiny 3-stage chain: prepare -> train -> evaluate.
pub fn chain() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data/raw.txt", "1\n2\n3\n"),
        ("params.yaml", "prepare:\n  factor: 2\ntrain:\n  lr: 0.001\n  epochs: 3\nunused: 5\n"),
        (
            "dvc.yaml",
            "stages:
  prepare:
    cmd: awk '{print $1 * ${prepare.factor}}' data/raw.txt > prepared.txt
    deps:
      - data/raw.txt
    params:
      - prepare.factor
    outs:
      - prepared.txt
  train:
    cmd: (cat prepared.txt; echo lr=${train.lr}) > model.txt
    deps:
      - prepared.txt
    params:
      - train.lr
      - train.epochs
    outs:
      - model.txt
  evaluate:
    cmd: wc -l model.txt > metrics.json
    deps:
      - model.txt
    metrics:
      - metrics.json:
          cache: false
",
        ),
    ]
}

/// Directory deps and outs, an executable output, uncached outputs, `wdir`, whole-file and
/// JSON params, list commands, `vars`, floats DVC formats its own way, long folded commands.
pub fn rich() -> Vec<(&'static str, &'static str)> {
    vec![
        ("data/raw/f1.txt", "file 1\n"),
        ("data/raw/f2.txt", "file 2\n"),
        ("data/raw/sub dir/é x.txt", "ü\n"),
        ("data/raw/skip.tmp", "ignored by .dvcignore\n"),
        (".dvcignore", "*.tmp\n"),
        (
            "params.yaml",
            "prepare:
  split: 0.2
  seed: 20
  tiny: 1e-5
  big: 1.0e+20
  name: \"2.0\"
  flag: true
  lst: [1, 2]
  empty: ''
  none: null
  word: yes
  colon: 'a: b'
train:
  lr: 0.001
  epochs: 3
  nested:
    a: 1
    b: x
unused: 5
",
        ),
        ("other.json", "{\"opt\": {\"x\": 1.5}, \"z\": \"str\"}\n"),
        (
            "dvc.yaml",
            r#"vars:
  - myvar: hello
stages:
  prepare:
    cmd: mkdir -p data/prepared && cp -r data/raw/* data/prepared/ && echo ${prepare.seed} ${myvar} > data/prepared/seed.txt
    deps:
      - data/raw
    params:
      - prepare.split
      - prepare.tiny
      - prepare.big
      - prepare.name
      - prepare.flag
      - prepare.lst
      - prepare.empty
      - prepare.none
      - prepare.word
      - prepare.colon
    outs:
      - data/prepared
  train:
    cmd:
      - cat data/prepared/f1.txt > model.bin
      - chmod +x model.bin
      - "echo '{\"acc\": 0.9}' > metrics.json"
      - "echo this is a very long command line that will surely exceed the eighty character width of ruamel > long.txt"
      - "printf '%s\\n' 'it''s a: test # not a comment' > quoted.txt"
    deps:
      - data/prepared/f1.txt
    params:
      - train
      - other.json:
          - opt.x
    outs:
      - model.bin
      - quoted.txt
      - long.txt:
          cache: false
    metrics:
      - metrics.json:
          cache: false
  evaluate:
    cmd: cat ../model.bin > eval.txt && echo a very long line of text that needs to be folded somewhere around here >> eval.txt
    wdir: sub
    deps:
      - ../model.bin
    params:
      - ../params.yaml:
    outs:
      - eval.txt
    plots:
      - plot.csv:
          cache: false
          persist: true
"#,
        ),
        ("sub/plot.csv", "x,y\n1,2\n"),
    ]
}
