//! The loop on a tabular task: Fisher's Iris (the bundled example, from scikit-learn's wheel).
//! `pipeline init --example iris` derives the schema from the table and trains the `mlp`; rows
//! that break the schema are answered 422 naming the field and nothing is stored; ten feedback
//! rows over HTTP seal a sub_set, the local retrain promotes a model that is hot-swapped in, and
//! `/predict` (one row or several) and `tritonclient` on FP32 `[N, F]` answer by class name.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{bins, get_json, push_to_new_origin, spawn_server, wait_for_new_serving};

const CLASSES: [&str; 3] = ["setosa", "versicolor", "virginica"];
const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// POSTs JSON; returns the status and the JSON answer.
fn post(url: &str, body: &Value) -> (u16, Value) {
    let response = ureq::post(url)
        .config()
        .http_status_as_error(false)
        .build()
        .content_type("application/json")
        .send(&serde_json::to_vec(body).unwrap())
        .unwrap();
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

/// The bundled table's rows: features by name and the species.
fn iris_rows(repo: &std::path::Path) -> Vec<(Value, String)> {
    let text = std::fs::read_to_string(repo.join("data/iris.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let features: serde_json::Map<String, Value> = FEATURES
                .iter()
                .zip(&cells)
                .map(|(name, v)| (name.to_string(), json!(v.parse::<f64>().unwrap())))
                .collect();
            (Value::Object(features), cells[4].to_string())
        })
        .collect()
}

/// Sample files (`<sha256>.json`) under `new_data/`.
fn stored_samples(repo: &std::path::Path) -> usize {
    fn walk(dir: &std::path::Path) -> usize {
        let is_sample = |p: &std::path::Path| {
            p.file_stem().is_some_and(|s| s.len() == 64) && p.extension().is_some_and(|e| e == "json")
        };
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { walk(&p) } else { usize::from(is_sample(&p)) })
                .sum()
        })
    }
    walk(&repo.join("new_data"))
}

#[test]
fn the_loop_on_iris_rows() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("iris");
    let out = testkit::run(
        Command::new(bins().join("pipeline")).arg("init").arg(&repo).args(["--example", "iris"]),
        "pipeline init --example iris",
    );
    println!("{out}");
    assert!(out.contains("task iris: 3 classes (setosa, versicolor, virginica), features sepal_length"), "{out}");
    let accuracy: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("base model ")?.split(": ").nth(1)?.split('%').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"));
    println!("FIGURES iris base model: {accuracy:.2}% on its test split");
    assert!(accuracy >= 90.0, "base accuracy {accuracy}% on the test split");
    let git = |args: &[&str]| testkit::run(Command::new("git").args(args).current_dir(&repo), "git");
    assert_eq!(git(&["status", "--porcelain"]), "", "init committed everything it wrote");
    push_to_new_origin(work.path(), &repo);

    let (mut server, base) = spawn_server(&repo, "local", &work.path().join("model-server.log"));
    let task = get_json(&format!("{base}/api/task"));
    assert_eq!(task["kind"], "tabular", "{task}");
    let names: Vec<&str> =
        task["table"]["features"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, FEATURES, "{task}");
    let before = get_json(&format!("{base}/models"))["serving"].as_str().unwrap().to_string();

    // Rows that break the schema: 422 naming the field, nothing stored.
    let rows = iris_rows(&repo);
    let good = rows[0].0.clone();
    let with = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut row = good.as_object().unwrap().clone();
        edit(&mut row);
        Value::Object(row)
    };
    let broken = [
        (with(&|r| drop(r.remove("petal_width"))), "feature `petal_width`: is missing"),
        (with(&|r| drop(r.insert("colour".into(), json!("red")))), "feature `colour`: is not a feature"),
        (
            with(&|r| drop(r.insert("sepal_width".into(), json!("wide")))),
            "feature `sepal_width`: \"wide\" is not a number",
        ),
        (with(&|r| drop(r.insert("sepal_length".into(), json!(1e6)))), "feature `sepal_length`: 1000000 is outside"),
        (with(&|r| drop(r.insert("petal_length".into(), json!("NaN")))), "feature `petal_length`: NaN is not a finite"),
    ];
    for (features, expected) in &broken {
        for path in ["/predict", "/feedback"] {
            let (status, answer) =
                post(&format!("{base}{path}"), &json!({"features": features, "label": "setosa", "kind": "correct"}));
            assert_eq!(status, 422, "{path} {features}: {answer}");
            assert!(answer["error"].as_str().unwrap().contains(expected), "{path}: {answer} lacks {expected}");
        }
    }
    let (status, answer) = post(&format!("{base}/predict"), &json!({"rows": [good, broken[0].0]}));
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().starts_with("rows[1]: feature `petal_width`"), "{answer}");
    assert_eq!(stored_samples(&repo), 0, "nothing was stored for a broken row");

    // Ten rows said right or wrong by class name, as the page does: predict, then feedback by
    // request id (and one by its features).
    let mut answer = Value::Null;
    let chosen: Vec<&(Value, String)> = rows.iter().skip(45).step_by(10).take(10).collect();
    for (i, (features, species)) in chosen.iter().enumerate() {
        let (status, p) = post(&format!("{base}/predict"), &json!({"features": features}));
        assert_eq!(status, 200, "{p}");
        assert!(CLASSES.contains(&p["label"].as_str().unwrap()), "{p}");
        let kind = if p["label"] == species.as_str() { "correct" } else { "wrong" };
        let body = if i == 0 {
            json!({"features": features, "label": species, "kind": kind})
        } else {
            json!({"request_id": p["request_id"], "label": species, "kind": kind})
        };
        let (status, a) = post(&format!("{base}/feedback"), &body);
        assert_eq!(status, 200, "{a}");
        answer = a;
    }
    assert_eq!(answer["retrain_triggered"], true, "the tenth row seals the sub_set: {answer}");
    assert_eq!(stored_samples(&repo), 10);
    let count = std::fs::read_to_string(repo.join("new_data/count.json")).unwrap();
    assert!(count.contains("\"virginica\""), "count.json counts by class name: {count}");

    let tenth = Instant::now();
    let after = wait_for_new_serving(&base, &before, Duration::from_secs(600), &work.path().join("model-server.log"));
    println!(
        "FIGURES iris loop: {before} -> {after} in {:.1} s after the tenth feedback",
        tenth.elapsed().as_secs_f64()
    );
    let decision: Value =
        serde_json::from_slice(&std::fs::read(repo.join("artifacts/promote/decision.json")).unwrap()).unwrap();
    assert_eq!(decision["promoted"], true, "{decision:#}");

    // The hot-swapped model answers one row or several, by class name.
    let (status, p) = post(&format!("{base}/predict"), &json!({"features": rows[140].0}));
    assert_eq!(status, 200, "{p}");
    assert_eq!((p["label"].as_str(), p["model_version"].as_str()), (Some("virginica"), Some(after.as_str())), "{p}");
    let keys: Vec<&str> = p["probabilities"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, CLASSES, "{p}");
    let (status, many) = post(&format!("{base}/predict"), &json!({"rows": [rows[0].0, rows[60].0, rows[140].0]}));
    assert_eq!(status, 200, "{many}");
    let labels: Vec<&str> =
        many["predictions"].as_array().unwrap().iter().map(|p| p["label"].as_str().unwrap()).collect();
    assert_eq!(labels, CLASSES, "{many}");

    // Mining lists the rows marked wrong or answered unsure, with their features.
    let mined = testkit::run(
        Command::new(bins().join("pipeline")).arg("--repo").arg(&repo).args(["mine", "--json", "--below", "0.999999"]),
        "pipeline mine",
    );
    let mined: Vec<Value> = mined.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!mined.is_empty(), "the log has low-confidence rows below 0.999999");
    for m in &mined {
        let features: Value = serde_json::from_str(m["features"].as_str().unwrap()).unwrap();
        assert_eq!(features.as_object().unwrap().len(), 4, "{m}");
    }

    tritonclient_on_rows(&base, &rows);
    let _ = server.kill();
    let _ = server.wait();
}

const TRITON_SCRIPT: &str = r#"
import json, sys
import numpy as np
import tritonclient.http as httpclient
url, rows = sys.argv[1], json.loads(sys.argv[2])
c = httpclient.InferenceServerClient(url=url)
meta = c.get_model_metadata("iris")
x = np.array([r[0] for r in rows], dtype=np.float32)
i = httpclient.InferInput("input", list(x.shape), "FP32")
i.set_data_from_numpy(x)
outs = [httpclient.InferRequestedOutput(n, binary_data=True) for n in ("probabilities", "label", "index")]
r = c.infer("iris", [i], outputs=outs)
names = [b.decode() for b in r.as_numpy("label")]
print(json.dumps({"inputs": meta["inputs"], "features": meta["parameters"]["features"],
                  "shape": list(r.as_numpy("probabilities").shape), "right": sum(n == row[1] for n, row in zip(names, rows))}))
"#;

/// `tritonclient[http]` sends FP32 `[N, 4]` in the metadata's feature order.
fn tritonclient_on_rows(base: &str, rows: &[(Value, String)]) {
    let python = testkit::venv_tool("tritonclient-venv", &["tritonclient[http]", "numpy"], "python");
    let sent: Vec<Value> = rows
        .iter()
        .step_by(5)
        .map(|(features, species)| json!([FEATURES.iter().map(|f| features[f].clone()).collect::<Vec<_>>(), species]))
        .collect();
    let out = Command::new(python)
        .args(["-c", TRITON_SCRIPT, base.trim_start_matches("http://")])
        .arg(serde_json::to_string(&sent).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("FIGURES iris tritonclient: {v}");
    assert_eq!(v["inputs"][0]["shape"], json!([-1, 4]), "{v}");
    assert_eq!(v["features"], json!(FEATURES), "{v}");
    assert_eq!(v["shape"], json!([30, 3]), "{v}");
    assert!(v["right"].as_u64().unwrap() >= 27, "{v}");
}
