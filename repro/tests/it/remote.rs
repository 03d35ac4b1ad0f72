//! `repro push` / `repro pull` against a real S3 endpoint (moto_server) and the real DVC with
//! `dvc-s3`: what we push, `dvc pull` gets in a fresh clone and the reverse, byte for byte and
//! key for key; a killed push resumes and sends only what was missing; wrong credentials, a
//! missing bucket, an unreachable endpoint and a corrupt object are clear errors; credentials
//! are read where DVC reads them; nothing is ever deleted from the remote.

mod kit;

use std::process::Stdio;
use std::time::{Duration, Instant};

use kit::{Bucket, Moto, Repo, failure};
use md5::{Digest, Md5};

/// A stage writing `n` small files (and a nested one) into `out/`, a model, a metric, and an
/// uncached note; plus `raw/`, which `dvc add` tracks in `raw.dvc`.
fn pipeline(repo: &Repo, n: usize) {
    repo.write(
        "build.sh",
        &format!(
            "mkdir -p out/sub\n\
             i=1; while [ $i -le {n} ]; do echo \"sample $i\" > out/s$i.txt; i=$((i+1)); done\n\
             printf nested > out/sub/deep.bin\n\
             seq 1 20000 > model.bin\n\
             echo '{{\"acc\": 0.9}}' > metrics.json\n\
             echo local > notes.txt\n"
        ),
    );
    repo.write(
        "dvc.yaml",
        "stages:\n  build:\n    cmd: sh build.sh\n    deps:\n      - build.sh\n    outs:\n      - out\n      - model.bin\n      - notes.txt:\n          cache: false\n    metrics:\n      - metrics.json:\n          cache: true\n",
    );
    repo.write("raw/a.csv", "x,y\n1,2\n");
    repo.write("raw/b.csv", "x,y\n3,4\n");
}

/// The tracked outputs a clone must get back.
const OUTS: [&str; 4] = ["out", "model.bin", "metrics.json", "raw"];

/// Objects under `prefix`, keys relative to it, with size and ETag (the md5 of a plain PUT).
fn remote_objects(moto: &Moto, bucket: &str, prefix: &str) -> Vec<(String, u64, String)> {
    let strip = format!("{prefix}/");
    moto.objects(bucket, prefix)
        .into_iter()
        .map(|(k, (size, etag, _))| (k.strip_prefix(&strip).unwrap_or(&k).to_owned(), size, etag))
        .collect()
}

#[test]
fn what_we_push_real_dvc_pulls_in_a_fresh_clone() {
    let Some(dvc) = kit::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("dvc-store");
    let mut repo = Repo::init(&dvc);
    repo.use_env_keys(&moto);
    pipeline(&repo, 12);
    repo.ours(&["repro"]);
    repo.dvc(&["add", "-q", "raw"]);
    repo.add_remote("store", "s3://dvc-store/ours", &moto, true);
    repo.add_remote("mirror", "s3://dvc-store/theirs", &moto, false);
    repo.commit("pipeline run by repro, raw added by dvc");
    // Someone else's object in the same layout: a push never deletes anything.
    let foreign = "ours/files/md5/00/0000000000000000000000000000ff";
    moto.put("dvc-store", foreign, b"not ours");

    // out/ has 13 files and its .dir, then model.bin, metrics.json, raw/'s 2 files and .dir.
    assert_eq!(repo.ours(&["push"]).trim(), "19 files pushed");
    assert_eq!(moto.get("dvc-store", foreign), b"not ours");
    // The same objects, at the same keys with the same bytes, as real `dvc push` sends.
    repo.dvc(&["push", "-q", "-r", "mirror"]);
    let mut ours = remote_objects(&moto, "dvc-store", "ours");
    ours.retain(|(k, _, _)| !foreign.ends_with(k.as_str()));
    assert_eq!(ours, remote_objects(&moto, "dvc-store", "theirs"), "our push differs from dvc push");
    assert_eq!(ours.len(), 19);
    assert!(ours.iter().all(|(k, _, _)| k.starts_with("files/md5/")), "{ours:?}");
    assert_eq!(repo.ours(&["push"]).trim(), "Everything is up to date.");

    let clone = Repo::clone_of(&repo);
    assert!(!clone.path().join("out").exists(), "outputs are not in git");
    clone.dvc(&["pull"]);
    for rel in OUTS {
        assert_eq!(clone.files(rel), repo.files(rel), "{rel} after dvc pull");
    }
    assert!(clone.dvc(&["status"]).contains("Data and pipelines are up to date."));
}

#[test]
fn what_real_dvc_pushes_we_pull_and_check_out() {
    let Some(dvc) = kit::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("dvc-store");
    let mut repo = Repo::init(&dvc);
    // Credentials from a profile in a shared credentials file, for DVC and for us.
    let creds = repo.path().with_file_name("aws-credentials");
    std::fs::write(
        &creds,
        format!("[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n", moto.key_id, moto.secret),
    )
    .expect("write the credentials file");
    repo.env.push(("AWS_SHARED_CREDENTIALS_FILE".into(), creds.display().to_string()));
    repo.env.push(("AWS_PROFILE".into(), "ci".into()));
    pipeline(&repo, 12);
    repo.dvc(&["repro", "-q"]);
    repo.dvc(&["add", "-q", "raw"]);
    repo.add_remote("store", "s3://dvc-store/pushed/by/dvc", &moto, true);
    repo.commit("pipeline run by dvc");
    repo.dvc(&["push", "-q"]);
    let before = moto.objects("dvc-store", "");

    let clone = Repo::clone_of(&repo);
    let out = clone.ours(&["pull"]);
    assert_eq!(
        out, "A\tmetrics.json\nA\tmodel.bin\nA\tout/\nA\traw/\n17 files added and 19 files fetched\n",
        "pull output"
    );
    for rel in OUTS {
        assert_eq!(clone.files(rel), repo.files(rel), "{rel} after our pull");
    }
    assert!(clone.dvc(&["status"]).contains("Data and pipelines are up to date."));
    assert_eq!(clone.ours(&["pull"]).trim(), "Everything is up to date.");

    // A local edit the cache has no copy of is not thrown away unless forced.
    clone.write("out/s1.txt", "edited\n");
    let err = failure(clone.ours_output(&["pull"]), "pull over an edit");
    assert!(err.contains("Use `--force`") && err.contains("out/s1.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(clone.path().join("out/s1.txt")).unwrap(), "edited\n");
    assert_eq!(clone.ours(&["pull", "--force"]), "M\tout/\n1 file modified\n");
    assert_eq!(clone.files("out"), repo.files("out"));

    // A corrupt object on the remote never reaches the cache or the workspace.
    let model = std::fs::read(repo.path().join("model.bin")).unwrap();
    let md5 = hex::encode(Md5::digest(&model));
    let key = format!("pushed/by/dvc/files/md5/{}/{}", &md5[..2], &md5[2..]);
    moto.put("dvc-store", &key, b"tampered");
    let fresh = Repo::clone_of(&repo);
    let err = failure(fresh.ours_output(&["pull"]), "pull of a corrupt object");
    assert!(err.contains(&format!("not {md5}: the remote object is corrupt")), "{err}");
    assert!(err.contains(&format!("s3://dvc-store/pushed/by/dvc/files/md5/{}/{}", &md5[..2], &md5[2..])), "{err}");
    let cached = fresh.path().join(format!(".dvc/cache/files/md5/{}/{}", &md5[..2], &md5[2..]));
    assert!(!cached.exists(), "a corrupt object was cached");
    assert!(!fresh.path().join("model.bin").exists());

    let after = moto.objects("dvc-store", "");
    assert!(before.keys().all(|k| after.contains_key(k)), "something was deleted from the remote");
}

#[test]
fn a_killed_push_resumes_and_uploads_only_what_is_missing() {
    let Some(dvc) = kit::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("dvc-store");
    let mut repo = Repo::init(&dvc);
    repo.use_env_keys(&moto);
    let n = 3000;
    repo.write(
        "gen.sh",
        &format!("mkdir -p many; i=1; while [ $i -le {n} ]; do echo \"item $i\" > many/$i.txt; i=$((i+1)); done\n"),
    );
    repo.write("dvc.yaml", "stages:\n  gen:\n    cmd: sh gen.sh\n    deps: [gen.sh]\n    outs: [many]\n");
    repo.ours(&["repro"]);
    repo.add_remote("store", "s3://dvc-store/cache", &moto, true);
    repo.commit("many files");
    let total = n + 1; // and the .dir listing

    let mut cmd = repo.ours_command(&["push", "--jobs", "2"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    let mut push = testkit::child::die_with_parent(&mut cmd).spawn().expect("start the push");
    let deadline = Instant::now() + Duration::from_secs(120);
    while moto.objects("dvc-store", "cache").len() < 300 {
        assert!(push.try_wait().expect("poll the push").is_none(), "the push ended before it could be killed");
        assert!(Instant::now() < deadline, "the push did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    push.kill().expect("SIGKILL the push");
    push.wait().expect("reap the push");
    let partial = moto.objects("dvc-store", "cache");
    assert!(partial.len() < total, "the push finished before the kill ({} objects)", partial.len());
    assert!(!partial.keys().any(|k| k.ends_with(".dir")), "the listing went up before its files");

    let out = repo.ours(&["push"]);
    assert_eq!(out.trim(), format!("{} files pushed", total - partial.len()));
    let done = moto.objects("dvc-store", "cache");
    assert_eq!(done.len(), total);
    for (key, seen) in &partial {
        assert_eq!(done.get(key), Some(seen), "{key} was uploaded again or changed");
    }
    // Real DVC finds nothing left to push.
    assert!(repo.dvc(&["push"]).contains("Everything is up to date."));
}

#[test]
fn wrong_credentials_a_missing_bucket_and_no_remote_are_clear_errors() {
    let Some(dvc) = kit::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("dvc-store");
    let mut repo = Repo::init(&dvc);
    repo.write("dvc.yaml", "stages:\n  one:\n    cmd: echo data > data.txt\n    outs: [data.txt]\n");
    repo.ours(&["repro"]);
    let err = failure(repo.ours_output(&["push"]), "push without a remote");
    assert!(err.contains("no default DVC remote") && err.contains("dvc remote add -d"), "{err}");
    repo.add_remote("store", "s3://dvc-store/x", &moto, true);
    repo.commit("one stage");
    let endpoint = &moto.endpoint;

    let err = failure(repo.ours_output(&["push"]), "push without credentials");
    assert!(err.contains("no AWS credentials for s3://dvc-store/x") && err.contains("AWS_ACCESS_KEY_ID"), "{err}");

    let cases = [
        (moto.key_id.as_str(), "wrong-secret", "SignatureDoesNotMatch"),
        ("AKIAUNKNOWNKEY000000", moto.secret.as_str(), "InvalidAccessKeyId"),
    ];
    for (key_id, secret, code) in cases {
        repo.env = vec![("AWS_ACCESS_KEY_ID".into(), key_id.into()), ("AWS_SECRET_ACCESS_KEY".into(), secret.into())];
        for cmd in ["push", "pull"] {
            let err = failure(repo.ours_output(&[cmd]), &format!("{cmd} with {code}"));
            assert!(
                err.contains(&format!("{endpoint} refused the credentials (key id {key_id} from AWS_ACCESS_KEY_ID")),
                "{err}"
            );
            assert!(
                err.contains(&format!("for bucket 'dvc-store': {code}")) && err.contains("Fix AWS_ACCESS_KEY_ID"),
                "{err}"
            );
        }
    }

    repo.use_env_keys(&moto);
    repo.dvc(&["remote", "modify", "store", "url", "s3://no-such-bucket/x"]);
    let err = failure(repo.ours_output(&["push"]), "push to a missing bucket");
    assert!(err.contains(&format!("bucket 'no-such-bucket' does not exist at {endpoint}: create it")), "{err}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    repo.dvc(&["remote", "modify", "store", "url", "s3://dvc-store/x"]);
    repo.dvc(&["remote", "modify", "store", "endpointurl", &format!("http://127.0.0.1:{closed}")]);
    let err = failure(repo.ours_output(&["push"]), "push to a closed port");
    assert!(err.contains(&format!("cannot reach http://127.0.0.1:{closed} for remote 'store'")), "{err}");

    assert!(moto.objects("dvc-store", "").is_empty(), "a failed push wrote to the remote");
}

/// Environment variables a case sets (an empty value unsets one).
type Env = Vec<(String, String)>;

#[test]
fn credentials_are_read_where_dvc_reads_them() {
    let Some(dvc) = kit::dvc() else { return };
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("dvc-store");
    let mut repo = Repo::init(&dvc);
    repo.write("dvc.yaml", "stages:\n  one:\n    cmd: echo data > data.txt\n    outs: [data.txt]\n");
    repo.ours(&["repro"]);
    repo.add_remote("store", "s3://dvc-store/x", &moto, true);
    repo.commit("one stage");
    let files = repo.path().with_file_name("aws");
    std::fs::create_dir(&files).unwrap();
    let profile = |name: &str| {
        format!("[{name}]\naws_access_key_id = {}\naws_secret_access_key = {}\n", moto.key_id, moto.secret)
    };
    std::fs::write(files.join("credentials"), profile("ci")).unwrap();
    std::fs::write(files.join("by-option"), profile("team")).unwrap();
    let wrong = vec![
        ("AWS_ACCESS_KEY_ID".to_owned(), "AKIAWRONG0000000000".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".into(), "x".into()),
    ];
    let credentials = files.join("credentials").display().to_string();
    // (environment, `dvc remote modify --local` settings): each must reach the bucket.
    let cases: Vec<(Env, Vec<(&str, String)>)> = vec![
        (
            vec![
                ("AWS_ACCESS_KEY_ID".into(), moto.key_id.clone()),
                ("AWS_SECRET_ACCESS_KEY".into(), moto.secret.clone()),
            ],
            vec![],
        ),
        (
            vec![("AWS_SHARED_CREDENTIALS_FILE".into(), credentials.clone()), ("AWS_PROFILE".into(), "ci".into())],
            vec![],
        ),
        // The remote's own keys win over wrong ones in the environment, as in DVC.
        (wrong.clone(), vec![("access_key_id", moto.key_id.clone()), ("secret_access_key", moto.secret.clone())]),
        // So does the remote's profile, from the file its credentialpath names (which DVC
        // reads only when AWS_SHARED_CREDENTIALS_FILE is unset).
        (
            [wrong, vec![("AWS_SHARED_CREDENTIALS_FILE".into(), String::new())]].concat(),
            vec![("profile", "team".into()), ("credentialpath", files.join("by-option").display().to_string())],
        ),
    ];
    let mut first = true;
    for (env, local) in cases {
        repo.env = env;
        let _ = std::fs::remove_file(repo.path().join(".dvc/config.local"));
        for (key, value) in &local {
            repo.dvc(&["remote", "modify", "--local", "store", key, value]);
        }
        let want = if first { "1 file pushed" } else { "Everything is up to date." };
        first = false;
        let what = format!("push with {:?} and {local:?}", repo.env);
        assert_eq!(kit::check(repo.ours_output(&["push"]), &what).trim(), want, "{what}");
        assert!(repo.dvc(&["push"]).contains("Everything is up to date."), "dvc disagrees: {what}");
    }
}

#[test]
fn our_add_writes_what_dvc_add_writes() {
    let Some(dvc) = kit::dvc() else { return };
    let (ours, theirs) = (Repo::init(&dvc), Repo::init(&dvc));
    for repo in [&ours, &theirs] {
        repo.write("weights.bin", "not really weights\n");
        repo.write("sub_set_0/a.png", "a");
        repo.write("sub_set_0/nested/b.png", "bb");
    }
    for rel in ["weights.bin", "sub_set_0"] {
        let added = repro::add(&ours.path(), rel).unwrap();
        theirs.dvc(&["add", "-q", rel]);
        let pointer = format!("{rel}.dvc");
        assert_eq!(ours.files(&pointer), theirs.files(&pointer), "{pointer}");
        assert!(std::fs::read_to_string(&added.dvc_file).unwrap().contains(&added.md5));
    }
    assert_eq!(ours.files(".gitignore"), theirs.files(".gitignore"));
    assert_eq!(ours.files(".dvc/cache"), theirs.files(".dvc/cache"), "the same objects in the cache");
    // DVC reads our pointers as its own: nothing to add, nothing changed.
    assert!(ours.dvc(&["status"]).contains("up to date"), "{}", ours.dvc(&["status"]));
}
