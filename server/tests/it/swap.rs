//! Over a real socket: hot swaps under concurrent load with no failed request, a corrupt model
//! refused while the old one serves, rollback through git, timeouts and graceful shutdown.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::{Running, TestRepo, git, metric, serve, start, wait_for};

fn serving(server: &Running) -> Option<String> {
    server.state.models.current_version()
}

#[test]
fn ten_hot_swaps_under_concurrent_load_fail_no_request() {
    let repo = TestRepo::new(&[]);
    let server = serve(start(&repo.server(), &[]), Duration::from_secs(30));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let versions = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let digits = Arc::new(need_digits!(16));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (url, stop, ok, failed, versions, digits) =
                (server.url("/predict"), stop.clone(), ok.clone(), failed.clone(), versions.clone(), digits.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let (png, _) = &digits[i % digits.len()];
                    i += 1;
                    match client.post(&url).header("content-type", "image/png").body(png.clone()).send() {
                        Ok(r) if r.status().is_success() => {
                            let v: serde_json::Value = r.json().unwrap();
                            versions.lock().unwrap().insert(v["model_version"].as_str().unwrap().to_string());
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            failed.lock().unwrap().push(format!("{} {}", r.status(), r.text().unwrap_or_default()))
                        }
                        Err(e) => failed.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    let mut published = Vec::new();
    for _ in 0..10 {
        let version = repo.publish(1e-3, false);
        wait_for(Duration::from_secs(30), &format!("{version} to serve"), || {
            serving(&server).as_deref() == Some(version.as_str())
        });
        published.push(version);
        std::thread::sleep(Duration::from_millis(150));
    }
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().for_each(|c| c.join().unwrap());
    let failed = failed.lock().unwrap();
    assert!(failed.is_empty(), "{} failed requests, e.g. {:?}", failed.len(), &failed[..failed.len().min(3)]);
    let seen = versions.lock().unwrap();
    let swapped_in: Vec<_> = published.iter().filter(|v| seen.contains(*v)).collect();
    assert!(swapped_in.len() >= 10, "answers came from {} of the 10 new versions", swapped_in.len());
    assert!(ok.load(Ordering::Relaxed) > 100, "only {} requests", ok.load(Ordering::Relaxed));
    let text = server.state.metrics.render();
    assert!(metric(&text, "model_server_model_reloads_total{result=\"success\"}") >= 11.0, "{text}");
    assert_eq!(metric(&text, &format!("model_server_model_info{{version=\"{}\"}}", published[9])), 1.0);
    assert!(server.state.models.loaded_versions().len() <= 3);
    let on_disk = gitops::model_file::ModelFile::list(&repo.server().join("models")).unwrap();
    assert_eq!(on_disk.len(), 3, "at most three versions stay on disk (pruned in git by the publisher): {on_disk:?}");
    assert_eq!(on_disk.last().unwrap().version, published[9]);
}

#[test]
fn a_corrupt_model_is_refused_while_the_old_one_serves_then_rollback_moves_every_replica() {
    let repo = TestRepo::new(&[]);
    let base = repo.serving_in_registry();
    let server = serve(start(&repo.server(), &["--admin-token", "tok"]), Duration::from_secs(30));
    let client = reqwest::blocking::Client::new();
    let png = need_digits!(1).remove(0).0;
    let predict = || -> serde_json::Value {
        client
            .post(server.url("/predict"))
            .header("content-type", "image/png")
            .body(png.clone())
            .send()
            .unwrap()
            .json()
            .unwrap()
    };

    let bad = repo.publish(1e-3, true);
    wait_for(Duration::from_secs(20), "the corrupt model to be refused", || {
        metric(&server.state.metrics.render(), "model_server_model_reloads_total{result=\"failure\"}") >= 1.0
    });
    assert_eq!(serving(&server).as_deref(), Some(base.as_str()));
    assert_eq!(repo.serving_in_registry(), bad, "the server did fetch the new pointer");
    assert_eq!(predict()["model_version"], base.as_str());
    let reload = client.post(server.url("/admin/reload")).bearer_auth("tok").send().unwrap();
    assert_eq!(reload.status(), 409);
    let error = reload.json::<serde_json::Value>().unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("sha256") && error.contains(&bad), "{error}");
    assert_eq!(serving(&server).as_deref(), Some(base.as_str()));

    let good = repo.publish(1e-3, false);
    wait_for(Duration::from_secs(20), "the good model to serve", || serving(&server).as_deref() == Some(good.as_str()));
    assert_eq!(predict()["model_version"], good.as_str());

    // A second replica following the same remote.
    let replica = start(&repo.clone_origin("replica"), &[]);
    assert_eq!(replica.models.current_version().as_deref(), Some(good.as_str()));

    let without = client.post(server.url("/admin/rollback")).json(&json!({ "version": base })).send().unwrap();
    assert_eq!(without.status(), 401);
    let rolled =
        client.post(server.url("/admin/rollback")).bearer_auth("tok").json(&json!({ "version": base })).send().unwrap();
    assert_eq!(rolled.status(), 200);
    let rolled: serde_json::Value = rolled.json().unwrap();
    assert_eq!((rolled["serving"].as_str(), rolled["previous"].as_str()), (Some(base.as_str()), Some(good.as_str())));
    assert_eq!(
        rolled["commit"].as_str(),
        Some(git(&repo.origin(), &["rev-parse", "main"]).as_str()),
        "the rollback commit is pushed"
    );
    assert_eq!(predict()["model_version"], base.as_str());
    let remote_registry = git(&repo.origin(), &["show", "main:models/registry.json"]);
    let remote: pipeline::registry::Registry = serde_json::from_str(&remote_registry).unwrap();
    assert_eq!(remote.serving, base);
    let last = remote.history.last().unwrap();
    assert_eq!((last.action, last.previous.as_deref()), (pipeline::registry::Action::Rollback, Some(good.as_str())));
    wait_for(Duration::from_secs(20), "the replica to follow the rollback", || {
        replica.models.current_version().as_deref() == Some(base.as_str())
    });
    let models: serde_json::Value = client.get(server.url("/models")).send().unwrap().json().unwrap();
    assert_eq!(models["history"].as_array().unwrap().last().unwrap()["action"], "rollback");
}

#[test]
fn slow_requests_time_out_and_shutdown_finishes_requests_in_flight() {
    let repo = TestRepo::new(&[]);
    let n = 4000usize;
    let big = json!({ "inputs": [{ "name": "input", "shape": [n, 1, 28, 28], "datatype": "UINT8", "data": vec![0u8; n * 784] }] });
    let quick = serve(start(&repo.server(), &[]), Duration::from_millis(1));
    // The server answers 408 while the 6 MB body may still be uploading, then closes the
    // connection; reqwest reports that as a broken pipe instead of reading the early answer
    // (curl reads it). Either way the server must have answered 408, which its metrics show.
    match reqwest::blocking::Client::new().post(quick.url("/v2/models/mnist/infer")).json(&big).send() {
        Ok(timed_out) => {
            assert_eq!(timed_out.status(), 408);
            assert!(timed_out.json::<serde_json::Value>().unwrap()["error"].is_string());
        }
        Err(cut) => assert!(cut.is_request(), "only the upload may be cut short: {cut:?}"),
    }
    let answered_408 = quick
        .state
        .metrics
        .render()
        .lines()
        .filter(|l| l.starts_with("model_server_http_requests_total{") && l.contains("status=\"408\""))
        .count();
    assert_eq!(answered_408, 1, "{}", quick.state.metrics.render());
    quick.shutdown().unwrap();

    let server = serve(start(&repo.server(), &[]), Duration::from_secs(60));
    let url = server.url("/v2/models/mnist/infer");
    let in_flight = std::thread::spawn(move || {
        reqwest::blocking::Client::new().post(url).json(&big).send().map(|r| r.status().as_u16())
    });
    wait_for(Duration::from_secs(10), "the big request to start", || {
        metric(&server.state.metrics.render(), "model_server_inference_batch_size_count") >= 1.0
    });
    let addr = server.addr;
    server.shutdown().unwrap();
    assert_eq!(in_flight.join().unwrap().unwrap(), 200, "the request in flight finished");
    assert!(std::net::TcpStream::connect(addr).is_err(), "no new connections after shutdown");
}
