//! KServe v2 through `oneshot` (JSON and binary tensors), and with the real `tritonclient[http]`
//! from PyPI over a socket.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::http::{get, post, post_json, send};
use crate::support::{TestRepo, serve, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_metadata_and_infer_with_json_and_binary_tensors() {
    let repo = TestRepo::new(&[]);
    let state = start(&repo.server(), &[]);
    let app = model_server::app(state.clone(), Duration::from_secs(30));
    let serving = repo.serving_in_registry();
    let meta = send(&app, get("/v2/models/mnist")).await.json();
    assert_eq!(meta["versions"], json!([serving]));
    assert_eq!(meta["inputs"][0]["shape"], json!([-1, 1, 28, 28]));
    assert_eq!(send(&app, get("/v2/models/mnist/ready")).await.status, StatusCode::OK);
    send(&app, get("/v2/models/other")).await.error(StatusCode::NOT_FOUND);
    send(&app, get("/v2/models/mnist/versions/model_20000101T000000Z/ready")).await.error(StatusCode::NOT_FOUND);

    let (pixels, labels) = need_pixels!(64);
    let uint8 = json!({ "id": "r1", "inputs": [{ "name": "input", "shape": [64, 1, 28, 28], "datatype": "UINT8", "data": pixels }] });
    let answer = send(&app, post_json("/v2/models/mnist/infer", &uint8)).await.json();
    assert_eq!((answer["id"].as_str(), answer["model_version"].as_str()), (Some("r1"), Some(serving.as_str())));
    let digits: Vec<u8> =
        answer["outputs"][1]["data"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as u8).collect();
    assert_eq!(answer["outputs"][0]["shape"], json!([64, 10]));
    let right = digits.iter().zip(&labels).filter(|(a, b)| a == b).count();
    assert!(right >= 58, "{right}/64 right");

    // The same digits as normalised FP32, in the binary extension, asking for binary output.
    let floats: Vec<f32> = pixels.iter().map(|&p| (f32::from(p) / 255.0 - 0.1307) / 0.3081).collect();
    let header = json!({ "inputs": [{ "name": "input", "shape": [64, 1, 28, 28], "datatype": "FP32", "parameters": { "binary_data_size": floats.len() * 4 } }],
        "outputs": [{ "name": "digit", "parameters": { "binary_data": true } }] });
    let mut body = serde_json::to_vec(&header).unwrap();
    let header_len = body.len();
    body.extend(floats.iter().flat_map(|f| f.to_le_bytes()));
    let mut req = post("/v2/models/mnist/infer", "application/octet-stream", body);
    req.headers_mut().insert("inference-header-content-length", header_len.into());
    let reply = send(&app, req).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json_len: usize = reply.headers["inference-header-content-length"].to_str().unwrap().parse().unwrap();
    let head: serde_json::Value = serde_json::from_slice(&reply.body[..json_len]).unwrap();
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 64 * 8);
    let binary: Vec<u8> =
        reply.body[json_len..].chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u8).collect();
    assert_eq!(binary, digits, "FP32 binary and UINT8 JSON give the same digits");

    let bad_shape =
        json!({ "inputs": [{ "name": "input", "shape": [1, 3, 28, 28], "datatype": "FP32", "data": [0.0] }] });
    send(&app, post_json("/v2/models/mnist/infer", &bad_shape)).await.error(StatusCode::BAD_REQUEST);
    let bad_type = json!({ "inputs": [{ "name": "input", "shape": [1, 1, 28, 28], "datatype": "BYTES", "data": [] }] });
    send(&app, post_json("/v2/models/mnist/infer", &bad_type)).await.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    send(&app, post("/v2/models/mnist/infer", "application/json", "{")).await.error(StatusCode::BAD_REQUEST);
}

/// `tritonclient[http]` and numpy in a cached venv (`$MNIST_GITOPS_CACHE/tritonclient-venv`).
fn tritonclient_python() -> PathBuf {
    testkit::venv_tool("tritonclient-venv", &["tritonclient[http]", "numpy"], "python")
}

const TRITON_SCRIPT: &str = r#"
import json, sys
import numpy as np
import tritonclient.http as httpclient
url, pixels_path, labels_path = sys.argv[1:4]
c = httpclient.InferenceServerClient(url=url)
out = {"live": c.is_server_live(), "ready": c.is_server_ready(), "model_ready": c.is_model_ready("mnist")}
meta = c.get_model_metadata("mnist")
out["meta_inputs"] = meta["inputs"]
raw = np.fromfile(pixels_path, dtype=np.uint8).reshape(-1, 1, 28, 28)
labels = np.fromfile(labels_path, dtype=np.uint8)
x = ((raw.astype(np.float32) / 255.0) - 0.1307) / 0.3081
for binary in (True, False):
    inp = httpclient.InferInput("input", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    outs = [httpclient.InferRequestedOutput("probabilities", binary_data=binary), httpclient.InferRequestedOutput("digit", binary_data=binary)]
    r = c.infer("mnist", [inp], outputs=outs)
    probs = r.as_numpy("probabilities")
    out["fp32_binary" if binary else "fp32_json"] = {"shape": list(probs.shape), "accuracy": float((r.as_numpy("digit") == labels).mean()), "sum": float(probs.sum(axis=1).mean())}
u = httpclient.InferInput("input", list(raw.shape), "UINT8")
u.set_data_from_numpy(raw)
r = c.infer("mnist", [u])
out["uint8"] = {"accuracy": float((r.as_numpy("probabilities").argmax(axis=1) == labels).mean()), "version": r.get_response()["model_version"]}
print(json.dumps(out))
"#;

#[test]
fn tritonclient_http_drives_v2_infer() {
    let python = tritonclient_python();
    let repo = TestRepo::new(&[]);
    let server = serve(start(&repo.server(), &[]), Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let (pixels, labels) = need_pixels!(200);
    std::fs::write(dir.path().join("pixels.u8"), &pixels).unwrap();
    std::fs::write(dir.path().join("labels.u8"), &labels).unwrap();
    let out = Command::new(python)
        .args(["-c", TRITON_SCRIPT, &server.addr.to_string()])
        .arg(dir.path().join("pixels.u8"))
        .arg(dir.path().join("labels.u8"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["live"].as_bool(), v["ready"].as_bool(), v["model_ready"].as_bool()),
        (Some(true), Some(true), Some(true)),
        "{v}"
    );
    assert_eq!(v["meta_inputs"][0]["datatype"], "FP32");
    for case in ["fp32_binary", "fp32_json"] {
        assert_eq!(v[case]["shape"], json!([200, 10]), "{v}");
        assert!(v[case]["accuracy"].as_f64().unwrap() >= 0.93, "{v}");
        assert!((v[case]["sum"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    }
    assert!(v["uint8"]["accuracy"].as_f64().unwrap() >= 0.93, "{v}");
    assert_eq!(v["uint8"]["version"], repo.serving_in_registry());
}
