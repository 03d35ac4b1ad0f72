//! deploy/: the Kubernetes manifests render with `kubectl kustomize` (base and both overlays),
//! every resource validates against Kubernetes' own schemas with `kubernetes-validate`
//! (offline, strict), and the properties the deployment relies on hold; the Containerfile
//! copies sources that exist and builds exactly the serving and retrain binaries; the pods'
//! clone script clones once and keeps the token out of the checkout; the Prometheus alert rules
//! pass `promtool check rules` and their own unit tests, and name only metrics the server has.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

/// The kubernetes-validate release, and the Kubernetes version whose bundled schemas it checks.
const VALIDATOR: &str = "kubernetes-validate==1.37.0";
const KUBERNETES: &str = "1.32.0";
const OVERLAYS: [&str; 3] = ["base", "overlays/trial", "overlays/production"];
/// The retrain's command: the retrain workflow's own steps, as the `local` trigger runs them.
const RETRAIN: [&str; 4] = ["pipeline", "ci", "run", "retrain"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

fn text(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// kubectl, and kubernetes-validate with the Python of its venv (which has PyYAML).
struct Tools {
    kubectl: PathBuf,
    validate: PathBuf,
    python: PathBuf,
}

impl Tools {
    /// `None` (a printed skip, or a failure under CI) when kubectl or python3 is missing.
    fn find() -> Option<Self> {
        let kubectl = testkit::require::present(
            which("kubectl"),
            "kubectl (it renders deploy/k8s with `kubectl kustomize`)",
            "install it from https://kubernetes.io/docs/tasks/tools/ (e.g. `apt-get install kubectl` from pkgs.k8s.io)",
        )?;
        testkit::require::present(
            which("python3"),
            "python3 (it installs kubernetes-validate from PyPI)",
            "install Python 3 with venv and pip",
        )?;
        let validate = testkit::venv_tool("k8s-validate-venv", &[VALIDATOR], "kubernetes-validate");
        let python = validate.with_file_name("python");
        Some(Self { kubectl, validate, python })
    }

    /// `kubectl kustomize deploy/k8s/<dir>`.
    fn render(&self, dir: &str) -> String {
        let path = root().join("deploy/k8s").join(dir);
        testkit::run(Command::new(&self.kubectl).arg("kustomize").arg(&path), &format!("kubectl kustomize {dir}"))
    }

    /// The documents of a YAML stream, as JSON.
    fn parse(&self, yaml: &str) -> Vec<Value> {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), yaml).unwrap();
        let script =
            "import json, sys, yaml\njson.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d], sys.stdout)";
        let out = testkit::run(Command::new(&self.python).args(["-c", script]).arg(tmp.path()), "yaml to json");
        serde_json::from_str(&out).unwrap()
    }

    /// kubernetes-validate, strict (unknown fields are errors), against [`KUBERNETES`].
    fn validate(&self, docs: &[Value]) -> Output {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let stream: Vec<String> = docs.iter().map(|d| serde_json::to_string(d).unwrap()).collect();
        std::fs::write(tmp.path(), stream.join("\n---\n")).unwrap();
        Command::new(&self.validate)
            .args(["--kubernetes-version", KUBERNETES, "--strict"])
            .arg(tmp.path())
            .output()
            .expect("kubernetes-validate runs")
    }
}

fn output(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

/// The one resource of `kind` (and `name`, when given).
fn one<'a>(docs: &'a [Value], kind_: &str, name: Option<&str>) -> &'a Value {
    let found: Vec<&Value> =
        docs.iter().filter(|d| kind(d) == kind_ && name.is_none_or(|n| d["metadata"]["name"] == n)).collect();
    assert_eq!(found.len(), 1, "expected one {kind_} {name:?}, found {}", found.len());
    found[0]
}

fn has(docs: &[Value], kind_: &str) -> bool {
    docs.iter().any(|d| kind(d) == kind_)
}

/// The pod spec of a Deployment or CronJob.
fn pod(doc: &Value) -> &Value {
    match kind(doc) {
        "Deployment" => &doc["spec"]["template"]["spec"],
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Job" => &doc["spec"]["template"]["spec"],
        other => panic!("{other} has no pod template"),
    }
}

fn containers(pod: &Value) -> Vec<&Value> {
    let list = |key: &str| pod[key].as_array().map(|a| a.iter().collect::<Vec<_>>()).unwrap_or_default();
    [list("initContainers"), list("containers")].concat()
}

fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    containers(pod).into_iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no container {name}"))
}

/// The `valueFrom.secretKeyRef` of env var `name` in `container`.
fn secret_ref<'a>(container: &'a Value, name: &str) -> &'a Value {
    let env = container["env"].as_array().unwrap();
    let var =
        env.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no env {name} in {}", container["name"]));
    &var["valueFrom"]["secretKeyRef"]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("{v} is not a list")).iter().map(|s| s.as_str().unwrap()).collect()
}

fn settings(docs: &[Value]) -> &Value {
    &one(docs, "ConfigMap", None)["data"]
}

#[test]
fn every_overlay_renders_and_every_resource_validates() {
    let Some(tools) = Tools::find() else { return };
    for dir in OVERLAYS {
        let docs = tools.parse(&tools.render(dir));
        let out = tools.validate(&docs);
        let report = output(&out);
        assert!(out.status.success(), "{dir} does not validate:\n{report}");
        // Argo Events' kinds have no schema here (a warning); every other resource passed.
        let custom: Vec<&Value> = docs.iter().filter(|d| d["apiVersion"] == "argoproj.io/v1alpha1").collect();
        assert_eq!(report.matches(" passed for resource ").count(), docs.len() - custom.len(), "{dir}:\n{report}");
        assert_eq!(report.matches("Couldn't find schema").count(), custom.len(), "{dir}:\n{report}");
        // The Job the Sensor creates is a resource too: validate it on its own.
        for sensor in custom.iter().filter(|d| kind(d) == "Sensor") {
            let job = &sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"];
            let mut job = job.clone();
            job["metadata"]["name"] = json!("retrain-start-x");
            let out = tools.validate(&[job]);
            assert!(out.status.success(), "{dir}: the Sensor's Job does not validate:\n{}", output(&out));
        }
    }
}

#[test]
fn the_validator_rejects_broken_resources() {
    let Some(tools) = Tools::find() else { return };
    let docs = tools.parse(&tools.render("overlays/trial"));
    let deployment = one(&docs, "Deployment", None);
    // What breaks, the field's JSON pointer, and its new value (`None` removes it).
    let breakages = [
        ("a string for replicas", "/spec/replicas", Some(json!("one"))),
        ("an unknown field", "/spec/template/spec/containers/0/readinessProbe/httpGet/prt", Some(json!(1))),
        ("a probe without a port", "/spec/template/spec/containers/0/livenessProbe/httpGet/port", None),
    ];
    for (what, pointer, value) in breakages {
        let mut broken = deployment.clone();
        let (parent, field) = pointer.rsplit_once('/').unwrap();
        let object = broken.pointer_mut(parent).and_then(Value::as_object_mut).expect(pointer);
        match value {
            Some(value) => object.insert(field.to_string(), value),
            None => Some(object.remove(field).expect(pointer)),
        };
        let out = tools.validate(&[broken]);
        assert!(!out.status.success(), "kubernetes-validate accepted {what}:\n{}", output(&out));
        assert!(output(&out).contains("did not validate for resource deployment/model-server"), "{what}");
    }
}

#[test]
fn the_server_is_probed_configured_and_stopped_as_it_expects() {
    let Some(tools) = Tools::find() else { return };
    let config = text("server/src/config.rs");
    let consumers = [config.clone(), text("gitops/src/params.rs"), text("deploy/clone-repo.sh")].concat();
    for dir in OVERLAYS {
        let docs = tools.parse(&tools.render(dir));
        let deployment = one(&docs, "Deployment", Some("model-server"));
        let pod = pod(deployment);
        let server = container(pod, "model-server");
        let settings = settings(&docs);

        // Probes on the routes that mean "up" and "serving a warm model", on the port it binds.
        assert_eq!(server["readinessProbe"]["httpGet"]["path"], "/readyz", "{dir}");
        assert_eq!(server["livenessProbe"]["httpGet"]["path"], "/healthz", "{dir}");
        assert_eq!(server["startupProbe"]["httpGet"]["path"], "/healthz", "{dir}");
        assert_eq!(server["ports"][0], json!({"name": "http", "containerPort": 8080}), "{dir}");
        assert_eq!(settings["MODEL_SERVER_PORT"], "8080", "{dir}");
        assert_eq!(settings["MODEL_SERVER_HOST"], "0.0.0.0", "{dir}: it must listen beyond the pod's loopback");
        for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
            assert_eq!(server[probe]["httpGet"]["port"], "http", "{dir}: {probe}");
        }
        // Every setting is one the server, the trigger or the clone script reads.
        for key in settings.as_object().unwrap().keys().filter(|k| *k != "RUST_LOG") {
            assert!(
                consumers.contains(&format!("\"{key}\"")) || consumers.contains(&format!("${{{key}")),
                "{dir}: {key}"
            );
        }
        // SIGTERM: the preStop pause plus --shutdown-timeout fit in the grace period.
        let args = strings(&server["args"]);
        let timeout =
            args.iter().position(|a| *a == "--shutdown-timeout").map(|i| args[i + 1]).expect("--shutdown-timeout");
        assert!(config.contains("pub shutdown_timeout: Duration"), "the flag still exists");
        let timeout: u64 = timeout.strip_suffix('s').unwrap().parse().unwrap();
        let pause: u64 = strings(&server["lifecycle"]["preStop"]["exec"]["command"])[1].parse().unwrap();
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
        assert!(grace > timeout + pause, "{dir}: grace {grace}s <= {timeout}s + {pause}s");

        // Tokens only by reference, under the names the binaries read.
        for var in ["GITHUB_TOKEN", "MODEL_SERVER_ADMIN_TOKEN", "MODEL_SERVER_FEEDBACK_TOKEN", "PIPELINE_WEBHOOK_TOKEN"]
        {
            assert_eq!(secret_ref(server, var)["name"], "mnist-gitops-tokens", "{dir}: {var}");
            assert_eq!(secret_ref(server, var)["key"], var, "{dir}");
        }
        for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
            assert_eq!(secret_ref(server, var)["name"], "mnist-gitops-s3", "{dir}: {var}");
        }
        assert!(
            config.contains("env = \"MODEL_SERVER_ADMIN_TOKEN\"")
                && config.contains("env = \"MODEL_SERVER_FEEDBACK_TOKEN\"")
        );
        assert!(text("gitops/src/token.rs").contains("[\"GITHUB_TOKEN\""));
        assert!(text("params.yaml").contains("token_env: PIPELINE_WEBHOOK_TOKEN"));
        let required = dir == "overlays/production";
        for var in ["MODEL_SERVER_ADMIN_TOKEN", "PIPELINE_WEBHOOK_TOKEN"] {
            assert_eq!(secret_ref(server, var)["optional"], !required, "{dir}: {var}");
        }
        assert_eq!(secret_ref(server, "MODEL_SERVER_FEEDBACK_TOKEN")["optional"], true, "{dir}");
        assert!(docs.iter().all(|d| kind(d) != "Secret" && d.get("data").is_none_or(|_| kind(d) == "ConfigMap")));
        assert!(!serde_json::to_string(&docs).unwrap().contains("stringData"), "{dir}");
    }
}

#[test]
fn every_pod_runs_locked_down_with_its_volumes_and_settings() {
    let Some(tools) = Tools::find() else { return };
    for dir in OVERLAYS {
        let docs = tools.parse(&tools.render(dir));
        let configmap = one(&docs, "ConfigMap", None)["metadata"]["name"].as_str().unwrap().to_string();
        assert!(configmap.starts_with("mnist-gitops-settings-"), "{dir}: a generated, hashed name: {configmap}");
        for workload in [one(&docs, "Deployment", None), one(&docs, "CronJob", None)] {
            let pod = pod(workload);
            let name = &workload["metadata"]["name"];
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{dir}: {name}");
            assert_eq!(pod["automountServiceAccountToken"], false, "{dir}: {name}");
            let volumes: BTreeSet<&str> =
                pod["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
            for c in containers(pod) {
                let at = format!("{dir}: {name}/{}", c["name"]);
                assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{at}");
                assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false, "{at}");
                assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]), "{at}");
                assert!(c["resources"]["requests"]["memory"].is_string(), "{at}: requests");
                assert!(c["resources"]["limits"]["memory"].is_string(), "{at}: limits");
                assert_eq!(c["envFrom"][0]["configMapRef"]["name"], configmap.as_str(), "{at}");
                let mounts: BTreeSet<&str> =
                    c["volumeMounts"].as_array().unwrap().iter().map(|m| m["mountPath"].as_str().unwrap()).collect();
                assert_eq!(mounts, BTreeSet::from(["/tmp", "/work"]), "{at}: the checkout and /tmp are writable");
                for m in c["volumeMounts"].as_array().unwrap() {
                    assert!(volumes.contains(m["name"].as_str().unwrap()), "{at}: {m}");
                }
            }
            // The checkout the init container clones is the one the main container reads.
            assert_eq!(strings(&container(pod, "clone")["command"]), ["clone-repo"], "{dir}: {name}");
        }
        assert_eq!(settings(&docs)["PIPELINE_REPO"], "/work/repo", "{dir}");
    }
}

#[test]
fn the_retrain_job_runs_the_workflow_steps_on_the_servers_image() {
    let Some(tools) = Tools::find() else { return };
    for dir in OVERLAYS {
        let docs = tools.parse(&tools.render(dir));
        let cronjob = one(&docs, "CronJob", Some("retrain"));
        let job = pod(cronjob);
        let retrain = container(job, "retrain");
        assert_eq!(strings(&retrain["command"]), RETRAIN, "{dir}");
        assert_eq!(strings(&retrain["args"]), ["--event", "push"], "{dir}: the workflow's should-retrain gate");
        let env = retrain["env"].as_array().unwrap();
        assert!(env.contains(&json!({"name": "PIPELINE_TRIGGER", "value": "none"})), "{dir}: a retrain fires nothing");
        assert_eq!(secret_ref(retrain, "GITHUB_TOKEN")["name"], "mnist-gitops-tokens", "{dir}: publish pushes");
        assert_eq!(job["restartPolicy"], "Never", "{dir}");
        assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid", "{dir}");
        let workflow = text(".github/workflows/retrain.yml");
        assert!(workflow.contains("timeout-minutes: 90"));
        assert_eq!(cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"], 90 * 60, "{dir}");
        // The base keeps it as a template only; the overlays schedule it.
        assert_eq!(cronjob["spec"]["suspend"], dir == "base", "{dir}");

        // One image everywhere: the server, both init containers and the retrain.
        let deployment = pod(one(&docs, "Deployment", None));
        let images: BTreeSet<&str> =
            [containers(deployment), containers(job)].concat().iter().map(|c| c["image"].as_str().unwrap()).collect();
        assert_eq!(images.len(), 1, "{dir}: {images:?}");
        let image = images.first().unwrap();
        let expected = match dir {
            "base" => "mnist-gitops:latest",
            "overlays/trial" => "mnist-gitops:dev",
            _ => "ghcr.io/example/mnist-gitops:0.1.0",
        };
        assert_eq!(*image, expected, "{dir}");
    }
}

#[test]
fn the_overlays_differ_where_they_should() {
    let Some(tools) = Tools::find() else { return };
    let trial = tools.parse(&tools.render("overlays/trial"));
    assert_eq!(one(&trial, "Deployment", None)["spec"]["replicas"], 1);
    assert!(!has(&trial, "HorizontalPodAutoscaler") && !has(&trial, "PodDisruptionBudget"));
    assert!(!has(&trial, "EventSource") && !has(&trial, "Sensor"));
    assert_eq!(settings(&trial)["PIPELINE_TRIGGER"], "none", "the trial polls with its schedule");

    let prod = tools.parse(&tools.render("overlays/production"));
    let deployment = one(&prod, "Deployment", Some("model-server"));
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 3);
    let hpa = one(&prod, "HorizontalPodAutoscaler", Some("model-server"));
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 3);
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "model-server"})
    );
    assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
    let pdb = one(&prod, "PodDisruptionBudget", Some("model-server"));
    for (key, value) in pdb["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "the PDB selects the server's pods");
    }
    let spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"].as_array().unwrap();
    let keys: BTreeSet<&str> = spread.iter().map(|c| c["topologyKey"].as_str().unwrap()).collect();
    assert_eq!(keys, BTreeSet::from(["kubernetes.io/hostname", "topology.kubernetes.io/zone"]));
    assert!(deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"].is_object());
    let service = one(&prod, "Service", Some("model-server"));
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    for (key, value) in service["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&labels[key], value, "the Service selects the server's pods");
    }

    // The webhook reaches the EventSource, with the token it checks; the Sensor starts a Job
    // from the CronJob through the RBAC the base grants.
    let settings = settings(&prod);
    assert_eq!(settings["PIPELINE_TRIGGER"], "webhook");
    let source = one(&prod, "EventSource", Some("retrain-webhook"));
    let hook = &source["spec"]["webhook"]["retrain"];
    let url = format!(
        "http://{}-eventsource-svc:{}{}",
        source["metadata"]["name"].as_str().unwrap(),
        hook["port"].as_str().unwrap(),
        hook["endpoint"].as_str().unwrap()
    );
    assert_eq!(settings["PIPELINE_WEBHOOK_URL"], url.as_str());
    let server = container(&deployment["spec"]["template"]["spec"], "model-server");
    let token = secret_ref(server, "PIPELINE_WEBHOOK_TOKEN");
    assert_eq!((&hook["authSecret"]["name"], &hook["authSecret"]["key"]), (&token["name"], &token["key"]));
    let sensor = one(&prod, "Sensor", Some("retrain"));
    assert_eq!(sensor["spec"]["dependencies"][0]["eventSourceName"], "retrain-webhook");
    let job = &sensor["spec"]["triggers"][0]["template"]["k8s"]["source"]["resource"];
    let start = &pod(job)["containers"][0];
    assert_eq!(strings(&start["command"]), ["kubectl", "create", "job", "--from=cronjob/retrain"]);
    assert_eq!(pod(job)["serviceAccountName"], "retrain-starter");
    let role = one(&prod, "Role", Some("retrain-starter"));
    assert!(
        role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resources"] == json!(["jobs"]) && r["verbs"] == json!(["create"]))
    );
    let binding = one(&prod, "RoleBinding", Some("retrain-starter"));
    assert_eq!(binding["subjects"][0]["namespace"], deployment["metadata"]["namespace"]);
    assert_eq!(deployment["metadata"]["namespace"], "mnist-gitops");
}

/// The `COPY` sources of the Containerfile's build stage (not `--from` another stage).
fn copy_sources(containerfile: &str) -> Vec<String> {
    containerfile
        .lines()
        .filter_map(|l| l.strip_prefix("COPY "))
        .filter(|l| !l.starts_with("--from"))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words[..words.len() - 1].iter().map(|w| w.to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// The default of `ARG name=...` in the Containerfile.
fn arg<'a>(containerfile: &'a str, name: &str) -> &'a str {
    let prefix = format!("ARG {name}=");
    let line =
        containerfile.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no ARG {name}"));
    line.trim_matches('"')
}

#[test]
fn the_containerfile_builds_the_workspace_binaries_from_sources_that_exist() {
    let containerfile = text("deploy/Containerfile");
    let sources = copy_sources(&containerfile);
    for source in &sources {
        assert!(root().join(source).exists(), "COPY {source}: no such path in the repo");
    }
    let copied = |path: &str| sources.iter().any(|s| path == s || path.starts_with(&format!("{s}/")));
    // Every workspace member (cargo needs them all), and every file `pipeline init` embeds.
    let manifest = text("Cargo.toml");
    let members = manifest.lines().find(|l| l.starts_with("members")).unwrap();
    for member in members.split('"').skip(1).step_by(2) {
        assert!(copied(member), "the workspace member {member} is not copied");
    }
    let scaffold = text("pipeline/src/scaffold.rs");
    let embedded: Vec<&str> = scaffold.split("repo_file!(\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert!(embedded.len() >= 5, "{embedded:?}");
    for path in embedded.into_iter().chain(["models/registry.json", "Cargo.lock", ".cargo/config.toml"]) {
        assert!(copied(path), "{path} is needed by the build but not copied");
    }
    assert!(copied("deploy/clone-repo.sh"), "the init containers run it");

    // The binaries it builds are exactly model-server, pipeline, pipeline-model and the stages.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let metadata = testkit::run(
        Command::new(cargo).args(["metadata", "--no-deps", "--format-version", "1", "--offline"]).current_dir(root()),
        "cargo metadata",
    );
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    let mut expected = BTreeSet::new();
    for package in metadata["packages"].as_array().unwrap() {
        if ["model-server", "pipeline", "stages"].contains(&package["name"].as_str().unwrap()) {
            for target in package["targets"].as_array().unwrap() {
                if target["kind"] == json!(["bin"]) {
                    expected.insert(target["name"].as_str().unwrap().to_string());
                }
            }
        }
    }
    assert_eq!(expected.len(), 9, "model-server, pipeline, pipeline-model and six stages: {expected:?}");
    let built: BTreeSet<String> = arg(&containerfile, "BINARIES").split_whitespace().map(str::to_string).collect();
    assert_eq!(built, expected);
    assert!(containerfile.contains("cargo build --release --locked"));
    // The repro step finds the stage binaries next to `pipeline`: one folder for all.
    assert!(containerfile.contains("cp \"target/release/$bin\" /out/usr/local/bin/"));

    // The same torch as `cargo xtask setup`, and the workspace's Rust.
    let setup = text("xtask/src/setup.rs");
    assert!(setup.contains(&format!("TORCH_VERSION: &str = \"{}\"", arg(&containerfile, "TORCH_VERSION"))));
    assert!(containerfile.contains("\"torch==${TORCH_VERSION}\""));
    assert_eq!(arg(&containerfile, "TORCH_INDEX_URL"), "https://pypi.org/simple");
    assert!(manifest.contains(&format!("rust-version = \"{}\"", arg(&containerfile, "RUST_VERSION"))));
    // A slim, non-root runtime.
    let runtime = containerfile.split("AS runtime").nth(1).expect("a runtime stage");
    assert!(runtime.contains("-slim") || containerfile.contains("debian:${DEBIAN_RELEASE}-slim AS runtime"));
    assert!(runtime.contains("USER 10001:10001") && !runtime.contains("cargo"));
}

fn git(dir: &Path, args: &[&str]) -> String {
    testkit::run(Command::new("git").arg("-C").arg(dir).args(args), &format!("git {args:?}")).trim().to_string()
}

fn clone_repo(url: &str, repo: &Path, token: &str) -> Output {
    Command::new("sh")
        .arg(root().join("deploy/clone-repo.sh"))
        .env("PIPELINE_GIT_URL", url)
        .env("PIPELINE_REPO", repo)
        .env("PIPELINE_GIT_BRANCH", "main")
        .env("GITHUB_TOKEN", token)
        .env_remove("PIPELINE_GIT_USER_NAME")
        .output()
        .unwrap()
}

#[test]
fn the_clone_script_clones_once_and_keeps_the_token_out_of_the_checkout() {
    let Some(_) = testkit::require::present(which("git"), "git", "install git") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let origin = tmp.path().join("origin.git");
    let seed = tmp.path().join("seed");
    testkit::run(
        Command::new("git").args(["init", "--quiet", "--bare", "--initial-branch=main"]).arg(&origin),
        "git init",
    );
    testkit::run(Command::new("git").args(["init", "--quiet", "--initial-branch=main"]).arg(&seed), "git init");
    std::fs::write(seed.join("params.yaml"), "git:\n  branch: main\n").unwrap();
    git(&seed, &["add", "params.yaml"]);
    git(&seed, &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "seed"]);
    git(&seed, &["push", "--quiet", origin.to_str().unwrap(), "main"]);

    let repo = tmp.path().join("work/repo");
    std::fs::create_dir(tmp.path().join("work")).unwrap();
    let url = format!("file://{}", origin.display());
    let out = clone_repo(&url, &repo, "tok-s3cret");
    assert!(out.status.success(), "{}", output(&out));
    assert!(repo.join("params.yaml").is_file());
    assert_eq!(git(&repo, &["rev-parse", "--abbrev-ref", "HEAD"]), "main");
    assert_eq!(git(&repo, &["config", "user.name"]), "mnist-gitops", "commits from the pods carry a name");
    assert_eq!(git(&repo, &["remote", "get-url", "origin"]), url);
    assert!(!tmp.path().join("work/repo.partial").exists());
    let config = std::fs::read_to_string(repo.join(".git/config")).unwrap();
    assert!(!config.contains("tok-s3cret") && !output(&out).contains("tok-s3cret"), "{config}");

    // A restarted container keeps the checkout (the server fast-forwards it).
    std::fs::write(repo.join("local-change"), "kept").unwrap();
    let again = clone_repo(&url, &repo, "tok-s3cret");
    assert!(again.status.success() && output(&again).contains("already a checkout"), "{}", output(&again));
    assert!(repo.join("local-change").is_file());

    // A missing branch or URL fails clearly, leaving no checkout behind.
    let elsewhere = tmp.path().join("work/other");
    let missing = clone_repo(&format!("file://{}", tmp.path().join("nothing.git").display()), &elsewhere, "");
    assert!(!missing.status.success() && !elsewhere.exists());
    let out =
        Command::new("sh").arg(root().join("deploy/clone-repo.sh")).env_remove("PIPELINE_GIT_URL").output().unwrap();
    assert!(!out.status.success() && output(&out).contains("set PIPELINE_GIT_URL"), "{}", output(&out));
}

#[test]
fn the_alert_rules_pass_promtool_and_name_only_the_servers_metrics() {
    let Some(promtool) = testkit::require::present(
        which("promtool"),
        "promtool (it checks deploy/prometheus/alerts.yml)",
        "install Prometheus's tools (`apt-get install prometheus`)",
    ) else {
        return;
    };
    let dir = root().join("deploy/prometheus");
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]] {
        let out = Command::new(&promtool).args(args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "promtool {}: {}", args.join(" "), output(&out));
    }
    let rules = text("deploy/prometheus/alerts.yml");
    let defined = text("server/src/metrics.rs");
    let named: BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|word| word.strip_prefix("model_server_").filter(|m| !m.is_empty()))
        .collect();
    assert!(named.contains("drift_detected"), "{named:?}");
    for metric in named {
        assert!(
            defined.contains(&format!("\"{metric}\"")),
            "alerts.yml names model_server_{metric}, which the server does not export"
        );
    }
}
