//! The web UI in a real browser (headless Chromium through chromedriver) against a real
//! model-server on loopback: drawing, uploading, feedback, rollback, error messages, keyboard
//! use and the phone-width layout. Screenshots of each state go to target/ui-screenshots/.

#[path = "browser_support.rs"]
mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::{ADMIN_TOKEN, Browser, Repo, Server};

const DESKTOP: (u32, u32) = (1280, 900);

/// A "7" drawn as offsets (CSS pixels) from the pad's centre.
const SEVEN: &[(f64, f64)] = &[(-70.0, -85.0), (-20.0, -86.0), (70.0, -86.0), (50.0, -30.0), (20.0, 30.0), (0.0, 95.0)];

/// A repository (with a second model version when asked), a server over it, and the page open.
async fn setup(second_version: bool, env: &[(&str, &str)], size: (u32, u32)) -> (Repo, Server, Browser) {
    let repo = Repo::new();
    if second_version {
        repo.add_second_version();
    }
    let server = Server::start(&repo, env);
    let browser = Browser::start(&server.url, size.0, size.1).await;
    browser.open().await;
    (repo, server, browser)
}

/// Waits for a prediction different from `previous_request` and returns it as the page shows it.
async fn wait_for_prediction(b: &Browser, previous_request: &str) -> Value {
    let script = format!(
        "const body = document.querySelector('#result-body');
         const btn = document.querySelector('#predict-btn');
         if (body.hidden || btn.classList.contains('is-loading')) return null;
         const sub = document.querySelector('#result-sub').textContent;
         if ({previous_request:?} && sub.includes({previous_request:?})) return null;
         return {{
           digit: document.querySelector('#result-digit').textContent,
           confidence: document.querySelector('#result-confidence').textContent,
           version: document.querySelector('#model-version').textContent,
           sub,
           bars: Array.from(document.querySelectorAll('#probs li')).map(li => parseFloat(li.querySelector('.pct').textContent)),
           top: Array.from(document.querySelectorAll('#probs li.top')).map(li => li.dataset.label),
         }};"
    );
    b.wait("a prediction to be shown", &script, 30).await
}

fn assert_shown_prediction(p: &Value, serving: &str) {
    let digit: u8 =
        p["digit"].as_str().and_then(|d| d.parse().ok()).unwrap_or_else(|| panic!("a digit 0-9 is shown: {p}"));
    assert!(digit <= 9, "{p}");
    let bars: Vec<f64> =
        p["bars"].as_array().expect("bars").iter().map(|v| v.as_f64().expect("a percentage")).collect();
    assert_eq!(bars.len(), 10, "ten probability bars: {p}");
    let total: f64 = bars.iter().sum();
    assert!((total - 100.0).abs() < 1.5, "the ten probabilities add up to 100%: {p}");
    assert_eq!(p["top"], json!([digit.to_string()]), "the predicted digit's bar is highlighted: {p}");
    assert!(p["confidence"].as_str().is_some_and(|c| c.ends_with('%')), "confidence shown as a percentage: {p}");
    assert_eq!(p["version"], serving, "the serving model answered: {p}");
}

fn request_tag(p: &Value) -> String {
    p["sub"].as_str().unwrap_or("").split_whitespace().nth(1).unwrap_or("").to_string()
}

/// "7 / 10" → (7, 10).
fn parse_count(text: &str) -> (u64, u64) {
    let (a, b) = text.split_once('/').unwrap_or_else(|| panic!("a count like `7 / 10`, got {text:?}"));
    (a.trim().parse().expect("count"), b.trim().parse().expect("threshold"))
}

#[tokio::test]
async fn drawing_a_digit_on_the_canvas_gets_a_prediction() {
    let _serial = support::serial().await;
    let (repo, _server, b) = setup(false, &[], DESKTOP).await;
    let serving = repo.serving();
    assert_eq!(b.text("#serving-version").await, serving, "the header names the serving model");
    assert!(!b.js("return document.querySelector('#result-empty').hidden", vec![]).await.as_bool().unwrap());
    b.screenshot("01-initial", true).await;

    // Predicting an empty pad explains instead of sending a blank image.
    b.click("#predict-btn").await;
    let message = b
        .wait(
            "the empty-pad message",
            "const e = document.querySelector('#input-error'); return !e.hidden && e.textContent",
            5,
        )
        .await;
    assert!(message.as_str().unwrap().contains("empty"), "{message}");

    b.stroke("#pad", SEVEN, false).await;
    let ink = b.js(
        "const c = document.querySelector('#pad'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 128) n++; return n;",
        vec![],
    )
    .await;
    assert!(ink.as_u64().unwrap() > 2000, "the stroke left white ink on the pad: {ink} pixels");
    assert!(
        b.js("return document.querySelector('#input-error').hidden", vec![]).await.as_bool().unwrap(),
        "drawing clears the message"
    );

    b.click("#predict-btn").await;
    let first = wait_for_prediction(&b, "").await;
    assert_shown_prediction(&first, &serving);
    eprintln!("drawn 7 read as {first}");

    // A pen stroke after Clear starts a fresh drawing, and predicts too.
    b.click("#clear-btn").await;
    let blank = b.js("return document.querySelector('#drop-zone').classList.contains('has-ink')", vec![]).await;
    assert_eq!(blank, json!(false), "Clear empties the pad");
    b.stroke("#pad", &[(0.0, -90.0), (2.0, -20.0), (4.0, 40.0), (5.0, 90.0)], true).await;
    b.click("#predict-btn").await;
    let second = wait_for_prediction(&b, &request_tag(&first)).await;
    assert_shown_prediction(&second, &serving);

    // Both show up in the history, newest first, with thumbnails.
    let history = b
        .wait(
            "two history items with thumbnails",
            "const items = document.querySelectorAll('#history-list .history-item[data-request-id]');
             if (items.length < 2) return null;
             const imgs = Array.from(items).map(i => i.querySelector('img'));
             if (!imgs.every(img => img && img.complete)) return null;
             return Array.from(items).map((i, k) => ({ digit: i.querySelector('.h-digit').textContent, img: imgs[k].naturalWidth }));",
            15,
        )
        .await;
    assert_eq!(history[0]["digit"].as_str(), second["digit"].as_str(), "newest first: {history}");
    assert!(
        history.as_array().unwrap().iter().all(|h| h["img"].as_u64().unwrap() > 0),
        "every thumbnail decodes: {history}"
    );
    b.screenshot("02-prediction", true).await;
    b.close().await;
}

#[tokio::test]
async fn uploading_or_dropping_an_mnist_digit_gets_the_right_answer() {
    let _serial = support::serial().await;
    let Some(mnist) = support::mnist_test() else { return };
    let (repo, _server, b) = setup(false, &[], DESKTOP).await;
    let serving = repo.serving();

    // Upload through the file input.
    let (png, label) = support::mnist_png(&mnist, 0);
    let path = repo.root.parent().unwrap().join(format!("mnist-test-0-label-{label}.png"));
    std::fs::write(&path, &png).unwrap();
    let input = b.client.find(fantoccini::Locator::Css("#file-input")).await.unwrap();
    input.send_keys(path.to_str().unwrap()).await.expect("choose the file");
    let uploaded = wait_for_prediction(&b, "").await;
    assert_shown_prediction(&uploaded, &serving);
    assert_eq!(uploaded["digit"], label.to_string(), "MNIST test digit 0 is a {label}: {uploaded}");
    let source = b.text("#pad-source").await;
    assert!(source.contains("mnist-test-0"), "the pad names the uploaded file: {source:?}");

    // Drag and drop another one onto the pad.
    let (png, label) = support::mnist_png(&mnist, 1);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    b.js(
        "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
         const dt = new DataTransfer();
         dt.items.add(new File([bytes], 'dropped-digit.png', { type: 'image/png' }));
         const zone = document.querySelector('#drop-zone');
         for (const type of ['dragenter', 'dragover', 'drop'])
           zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));",
        vec![json!(b64)],
    )
    .await;
    let dropped = wait_for_prediction(&b, &request_tag(&uploaded)).await;
    assert_shown_prediction(&dropped, &serving);
    assert_eq!(dropped["digit"], label.to_string(), "MNIST test digit 1 is a {label}: {dropped}");
    b.close().await;
}

#[tokio::test]
async fn wrong_feedback_with_a_label_raises_the_count_and_stores_the_image() {
    let _serial = support::serial().await;
    let (repo, _server, b) = setup(false, &[], DESKTOP).await;
    let before_files = repo.feedback_pngs();
    let count_before = b
        .wait(
            "the retrain count",
            "const t = document.querySelector('#count-text').textContent; return /\\d/.test(t) && t",
            10,
        )
        .await;
    let (before, threshold) = parse_count(count_before.as_str().unwrap());

    b.stroke("#pad", SEVEN, false).await;
    b.click("#predict-btn").await;
    let p = wait_for_prediction(&b, "").await;
    let predicted: u8 = p["digit"].as_str().unwrap().parse().unwrap();
    let label = if predicted == 3 { 5 } else { 3 };

    b.click("#fb-wrong").await;
    b.wait("the digit picker", "return !document.querySelector('#fb-labels').hidden", 5).await;
    assert_eq!(
        b.js("return document.querySelector('#fb-wrong').getAttribute('aria-expanded')", vec![]).await,
        json!("true")
    );
    b.screenshot("03-wrong-pick-digit", false).await;
    b.click(&format!("#digit-picker [data-label=\"{label}\"]")).await;
    let done = b
        .wait(
            "the feedback confirmation",
            "const d = document.querySelector('#fb-done'); return !d.hidden && d.textContent",
            20,
        )
        .await;
    let done = done.as_str().unwrap();
    assert!(done.contains(&format!("it is a {label}")), "{done}");
    assert!(done.contains(&format!("{} / {threshold}", before + 1)), "the confirmation gives the new count: {done}");

    let after = b.text("#count-text").await;
    assert_eq!(parse_count(&after), (before + 1, threshold), "the retrain count rose by one");
    let now_value = b.js("return document.querySelector('#count-bar').getAttribute('aria-valuenow')", vec![]).await;
    assert_eq!(now_value, json!((before + 1).to_string()), "the progress bar says so to screen readers");

    let deadline = Instant::now() + Duration::from_secs(10);
    let new_files = loop {
        let files: Vec<_> = repo.feedback_pngs().into_iter().filter(|f| !before_files.contains(f)).collect();
        if !files.is_empty() || Instant::now() > deadline {
            break files;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(new_files.len(), 1, "one new PNG under new_data/: {new_files:?}");
    let parent = new_files[0].parent().and_then(|p| p.file_name()).and_then(|n| n.to_str()).unwrap_or("");
    assert_eq!(parent, label.to_string(), "stored under the true label's folder: {}", new_files[0].display());
    assert!(
        new_files[0].starts_with("sub_set_") || new_files[0].to_string_lossy().contains("sub_set_"),
        "{}",
        new_files[0].display()
    );

    // The history shows the feedback given, and the buttons are locked.
    let pill = b.wait("the history to show the feedback", "const p = document.querySelector('#history-list .history-item .pill'); return p && /Was/.test(p.textContent) && p.textContent", 10).await;
    assert_eq!(pill, json!(format!("✗ Was {label}")));
    assert_eq!(b.js("return document.querySelector('#fb-correct').disabled", vec![]).await, json!(true));
    b.screenshot("04-feedback-given", true).await;
    b.close().await;
}

#[tokio::test]
async fn rollback_asks_for_the_admin_token_and_changes_the_serving_version() {
    let _serial = support::serial().await;
    let (repo, _server, b) = setup(true, &[], DESKTOP).await;
    let newer = repo.serving();
    let base = repo.base_version.clone();
    assert_ne!(newer, base);
    b.wait(
        "two models in the table",
        "return document.querySelectorAll('#models-body tr[data-version]').length === 2",
        15,
    )
    .await;
    assert_eq!(b.text("#serving-version").await, newer);
    let serving_row = b.js("return document.querySelector('#models-body tr.is-serving').dataset.version", vec![]).await;
    assert_eq!(serving_row, json!(newer), "the serving badge is on the newest version");
    let row = b.text(&format!("#models-body tr[data-version=\"{newer}\"]")).await;
    assert!(row.contains(&base) && row.contains('%'), "the row shows the parent and accuracy: {row:?}");

    // The plots: a 10x10 heat map of the serving model, and one accuracy point per version.
    let cells = b
        .wait("the confusion heat map", "return document.querySelectorAll('#confusion-plot rect.cell').length", 10)
        .await;
    assert_eq!(cells, json!(100));
    let points = b.js("return document.querySelectorAll('#accuracy-plot circle.point').length", vec![]).await;
    assert_eq!(points, json!(2), "one point per version on the accuracy chart");
    let chosen = b.js("return document.querySelector('#confusion-model').value", vec![]).await;
    assert_eq!(chosen, json!(newer), "the heat map shows the serving model");
    b.js("document.querySelector('#events-details').open = true", vec![]).await;
    b.screenshot_of("#models", "05-models").await;
    b.screenshot_of("#insights", "06-plots").await;

    // A wrong token is refused with a readable message, and the dialog stays open.
    b.click(&format!("[data-rollback=\"{base}\"]")).await;
    b.wait("the token dialog", "return document.querySelector('#token-dialog').open", 5).await;
    assert!(b.text("#token-title").await.contains(&base));
    b.type_into("#token-input", "not-the-token").await;
    b.click("#token-submit").await;
    let error = b
        .wait(
            "the wrong-token message",
            "const e = document.querySelector('#token-error'); return !e.hidden && e.textContent",
            10,
        )
        .await;
    assert!(error.as_str().unwrap().contains("not accepted"), "{error}");
    assert_eq!(b.js("return document.querySelector('#token-dialog').open", vec![]).await, json!(true));
    assert_eq!(repo.serving(), newer, "a refused rollback changes nothing");
    b.screenshot("07-rollback-wrong-token", false).await;

    b.type_into("#token-input", ADMIN_TOKEN).await;
    b.click("#token-submit").await;
    b.wait("the dialog to close", "return !document.querySelector('#token-dialog').open", 20).await;
    b.wait(
        "the page to show the rolled-back version serving",
        &format!(
            "return document.querySelector('#serving-version').textContent === {base:?}
               && document.querySelector('#models-body tr.is-serving')?.dataset.version === {base:?}"
        ),
        20,
    )
    .await;
    assert_eq!(repo.serving(), base, "models/registry.json in the repo now names the base version");
    let remembered = b.js("return sessionStorage.getItem('digitlab.adminToken')", vec![]).await;
    assert_eq!(remembered, json!(ADMIN_TOKEN), "the token is remembered for this tab");

    // New predictions come from the rolled-back version.
    b.stroke("#pad", SEVEN, false).await;
    b.click("#predict-btn").await;
    let p = wait_for_prediction(&b, "").await;
    assert_shown_prediction(&p, &base);

    // Rolling forward again reuses the remembered token.
    b.click(&format!("[data-rollback=\"{newer}\"]")).await;
    b.wait("the token dialog", "return document.querySelector('#token-dialog').open", 5).await;
    assert_eq!(b.js("return document.querySelector('#token-input').value", vec![]).await, json!(ADMIN_TOKEN));
    b.click("#token-submit").await;
    b.wait(
        "the newer version serving again",
        &format!("return document.querySelector('#serving-version').textContent === {newer:?}"),
        20,
    )
    .await;
    assert_eq!(repo.serving(), newer);
    b.close().await;
}

#[tokio::test]
async fn errors_are_explained_to_the_user() {
    let _serial = support::serial().await;
    let feedback_token = "feedback-secret";
    let (repo, mut server, b) = setup(false, &[("MODEL_SERVER_FEEDBACK_TOKEN", feedback_token)], DESKTOP).await;

    // A file that is not an image: the server's 415 becomes a sentence.
    let path = repo.root.parent().unwrap().join("notes.txt");
    std::fs::write(&path, "this is not a picture of a digit").unwrap();
    let input = b.client.find(fantoccini::Locator::Css("#file-input")).await.unwrap();
    input.send_keys(path.to_str().unwrap()).await.expect("choose the file");
    let rejected = b
        .wait(
            "the rejected-image message",
            "const e = document.querySelector('#input-error'); return !e.hidden && e.textContent",
            15,
        )
        .await;
    let rejected = rejected.as_str().unwrap();
    assert!(["isn't supported", "rejected", "could not be read"].iter().any(|m| rejected.contains(m)), "{rejected}");
    assert!(!rejected.contains('{'), "no raw JSON: {rejected}");
    b.screenshot("08-error-image-rejected", false).await;

    // Feedback on a server with a feedback token: the page asks for it, refuses a wrong one.
    b.click("#clear-btn").await;
    b.stroke("#pad", SEVEN, false).await;
    b.click("#predict-btn").await;
    wait_for_prediction(&b, "").await;
    b.click("#fb-unsure").await;
    b.wait("the feedback token dialog", "return document.querySelector('#token-dialog').open", 10).await;
    assert_eq!(b.text("#token-title").await, "Feedback token");
    b.type_into("#token-input", "wrong").await;
    b.click("#token-submit").await;
    let error = b
        .wait(
            "the wrong-token message",
            "const e = document.querySelector('#token-error'); return !e.hidden && e.textContent",
            10,
        )
        .await;
    assert!(error.as_str().unwrap().contains("not accepted"), "{error}");
    b.type_into("#token-input", feedback_token).await;
    b.click("#token-submit").await;
    let done = b
        .wait(
            "the feedback confirmation",
            "const d = document.querySelector('#fb-done'); return !d.hidden && d.textContent",
            15,
        )
        .await;
    assert!(done.as_str().unwrap().contains("unsure"), "{done}");

    // The server goes away: a banner says so, and predicting says what is wrong.
    server.stop();
    b.click("#clear-btn").await;
    b.stroke("#pad", SEVEN, false).await;
    b.click("#predict-btn").await;
    let down = b
        .wait(
            "the server-down message",
            "const e = document.querySelector('#input-error'); return !e.hidden && e.textContent",
            25,
        )
        .await;
    assert!(down.as_str().unwrap().contains("Can't reach the server"), "{down}");
    b.wait("the offline banner", "return !document.querySelector('#offline-banner').hidden", 15).await;
    assert_eq!(b.js("return document.querySelector('#server-chip').dataset.state", vec![]).await, json!("down"));
    b.screenshot("09-error-server-down", false).await;
    b.close().await;
}

#[tokio::test]
async fn controls_are_labelled_and_usable_from_the_keyboard() {
    let _serial = support::serial().await;
    let (_repo, _server, b) = setup(false, &[], DESKTOP).await;

    // Every control has an accessible name.
    let unnamed = b
        .js(
            "return Array.from(document.querySelectorAll('button, input, select, canvas, a[href]')).filter(el => {
               if (el.closest('[hidden]') || el.closest('dialog:not([open])')) return false;
               const label = el.getAttribute('aria-label') || el.textContent.trim() || el.title
                 || (el.id && document.querySelector(`label[for=\"${el.id}\"]`)?.textContent.trim())
                 || el.closest('label')?.textContent.trim();
               return !label;
             }).map(el => el.outerHTML.slice(0, 80));",
            vec![],
        )
        .await;
    assert_eq!(unnamed, json!([]), "controls without an accessible name");

    // Focus is visible: a focused button draws a ring.
    b.js("document.querySelector('#clear-btn').focus()", vec![]).await;
    let ring = b.js("return getComputedStyle(document.querySelector('#clear-btn')).boxShadow", vec![]).await;
    assert_ne!(ring, json!("none"), "the focused button shows a focus ring");

    // Draw, then predict with Enter on the focused pad, and answer with the keyboard.
    b.stroke("#pad", SEVEN, false).await;
    let pad = b.client.find(fantoccini::Locator::Css("#pad")).await.unwrap();
    b.js("arguments[0].focus()", vec![serde_json::to_value(&pad).unwrap()]).await;
    pad.send_keys("\u{E007}").await.expect("press Enter"); // WebDriver's Enter key
    let p = wait_for_prediction(&b, "").await;
    let predicted: u8 = p["digit"].as_str().unwrap().parse().unwrap();
    let wrong = b.client.find(fantoccini::Locator::Css("#fb-wrong")).await.unwrap();
    b.js("arguments[0].focus()", vec![serde_json::to_value(&wrong).unwrap()]).await;
    wrong.send_keys("\u{E007}").await.expect("press Enter on Wrong");
    let focused = b
        .wait(
            "focus to move into the digit picker",
            "const a = document.activeElement; return a && a.closest('#digit-picker') && a.dataset.label",
            5,
        )
        .await;
    assert_ne!(focused, json!(predicted.to_string()), "focus lands on a digit other than the prediction");
    b.js("document.activeElement.blur()", vec![]).await;
    let escape_clears = b.js("return document.querySelector('#pad').getAttribute('aria-label')", vec![]).await;
    assert!(escape_clears.as_str().unwrap().contains("Escape"), "the pad says how to use it from the keyboard");
    b.close().await;
}

#[tokio::test]
async fn the_layout_works_on_a_phone_sized_screen() {
    let _serial = support::serial().await;
    let (_repo, _server, b) = setup(true, &[], (375, 812)).await;
    let (width, _) = b.viewport().await;
    assert_eq!(width, 375, "the viewport is phone-sized");
    b.wait("the models list", "return document.querySelectorAll('#models-body tr[data-version]').length === 2", 15)
        .await;
    b.stroke("#pad", &SEVEN.iter().map(|&(x, y)| (x * 0.8, y * 0.8)).collect::<Vec<_>>(), false).await;
    b.click("#predict-btn").await;
    wait_for_prediction(&b, "").await;
    let overflow = b
        .js(
            "const w = document.documentElement.clientWidth;
             const wide = Array.from(document.querySelectorAll('main *, header *')).filter(el => {
               const r = el.getBoundingClientRect(); return r.width > 0 && (r.right > w + 1 || r.left < -1) && !el.closest('.sr-only, .file-input');
             }).map(el => el.tagName + '#' + el.id + '.' + el.className);
             return { scroll: document.documentElement.scrollWidth, width: w, wide: wide.slice(0, 8) };",
            vec![],
        )
        .await;
    assert_eq!(overflow["scroll"], overflow["width"], "nothing scrolls sideways at 375px: {overflow}");
    assert_eq!(overflow["wide"], json!([]), "no element sticks out of the screen: {overflow}");
    let pad_width = b.js("return document.querySelector('#pad').getBoundingClientRect().width", vec![]).await;
    assert!(pad_width.as_f64().unwrap() >= 280.0, "the pad is big enough to draw on: {pad_width}");
    let tap = b.js("return Math.min(...Array.from(document.querySelectorAll('#feedback .fb-buttons .btn, #predict-btn')).map(b => b.getBoundingClientRect().height))", vec![]).await;
    assert!(tap.as_f64().unwrap() >= 40.0, "buttons are big enough to tap: {tap}");
    b.screenshot("10-phone-375", true).await;
    b.close().await;
}

#[tokio::test]
async fn the_retrain_state_is_polled_and_shown_with_its_reasons() {
    let _serial = support::serial().await;
    let (repo, _server, b) = setup(false, &[], DESKTOP).await;
    let serving = repo.serving();
    let write = |path: &str, value: Value| {
        let path = repo.root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    };
    let state_js = "const p = document.querySelector('#retrain-state .pill'); return p && p.textContent";
    assert_eq!(b.js(state_js, vec![]).await, json!("idle"));

    // A running retrain: the page's poll picks it up without a reload.
    let status = gitops::trigger::RetrainStatus {
        state: gitops::trigger::RetrainState::Running,
        request: Some(gitops::trigger::RetrainRequest::sealed(0, 10, None)),
        started_at: Some(chrono::Utc::now()),
        log_tail: "ingest: 10 images\nvalidate: ok\nfinetune: epoch 1/3".into(),
        ..Default::default()
    };
    write(gitops::trigger::STATUS_FILE, serde_json::to_value(&status).unwrap());
    b.wait("the running state", &format!("{state_js} === 'running'"), 15).await;
    let text = b.text("#retrain-state").await;
    assert!(text.contains("sub_set_0"), "{text}");
    assert_eq!(
        b.js("return document.querySelector('#stepper li.current').dataset.step", vec![]).await,
        json!("running")
    );
    assert_eq!(
        b.js("return document.querySelector('#log-details').hidden", vec![]).await,
        json!(false),
        "the log tail is offered"
    );

    // It finishes and the candidate is rejected: the reason is shown.
    let reason = "feedback accuracy gain -0.0200 is below the required 0.0100";
    let finished = gitops::trigger::RetrainStatus {
        state: gitops::trigger::RetrainState::Succeeded,
        finished_at: Some(chrono::Utc::now()),
        ..status
    };
    write(gitops::trigger::STATUS_FILE, serde_json::to_value(&finished).unwrap());
    let decision = json!({
        "promoted": false, "candidate": "model_20991231T000000Z", "serving_before": serving,
        "reasons": [reason], "metrics": {"candidate_feedback_accuracy": 0.8, "serving_feedback_accuracy": 0.82},
        "sub_sets": [0], "pruned": [], "at": chrono::Utc::now(),
    });
    write("artifacts/promote/decision.json", decision);
    b.wait("the rejected decision", &format!("{state_js} === 'rejected'"), 15).await;
    let text = b.text("#retrain-state").await;
    assert!(text.contains(reason), "the rejection says why: {text}");
    assert!(text.contains(&serving), "and who keeps serving: {text}");
    assert_eq!(b.text("#decided-label").await, "Rejected");
    b.screenshot_of("#loop", "11-retrain-rejected").await;

    // A later promotion is announced.
    write(
        "artifacts/promote/decision.json",
        json!({
            "promoted": true, "candidate": "model_20991231T000000Z", "serving_before": serving,
            "reasons": ["feedback accuracy gain 0.0300 ≥ 0.0100"], "metrics": {}, "sub_sets": [1], "pruned": [], "at": chrono::Utc::now(),
        }),
    );
    b.wait("the promoted decision", &format!("{state_js} === 'promoted'"), 15).await;
    b.wait(
        "a toast announcing it",
        "return Array.from(document.querySelectorAll('.toast')).some(t => t.textContent.includes('promoted'))",
        5,
    )
    .await;
    b.close().await;
}

#[tokio::test]
async fn a_tabular_task_gets_a_form_built_from_its_schema() {
    let _serial = support::serial().await;
    let repo = Repo::iris();
    let server = Server::start(&repo, &[]);
    let b = Browser::start(&server.url, DESKTOP.0, DESKTOP.1).await;
    b.open().await;
    let fields = b
        .wait(
            "the row form",
            "const f = document.querySelector('#row-form');
             if (f.hidden || !f.elements.length) return null;
             return Array.from(f.elements).map(e => [e.name, e.type, e.min, e.max]);",
            20,
        )
        .await;
    let names: Vec<&str> = fields.as_array().unwrap().iter().map(|f| f[0].as_str().unwrap()).collect();
    assert_eq!(names, ["sepal_length", "sepal_width", "petal_length", "petal_width"], "{fields}");
    assert!(
        fields.as_array().unwrap().iter().all(|f| f[1] == "number" && f[2] != "" && f[3] != ""),
        "numbers with their range: {fields}"
    );
    let hidden = b
        .js(
            "return [document.querySelector('#drop-zone').hidden, document.querySelector('#upload-label').hidden]",
            vec![],
        )
        .await;
    assert_eq!(hidden, json!([true, true]), "no drawing pad or upload for rows");
    assert!(b.text("#brand-name").await.contains("Iris"), "the title comes from the task");

    // An empty field is named before anything is sent.
    b.click("#predict-btn").await;
    let error = b
        .wait(
            "the missing field",
            "const e = document.querySelector('#input-error'); return !e.hidden && e.textContent",
            5,
        )
        .await;
    assert!(error.as_str().unwrap().starts_with("sepal_length:"), "{error}");

    for (name, value) in
        [("sepal_length", "6.7"), ("sepal_width", "3.0"), ("petal_length", "5.2"), ("petal_width", "2.3")]
    {
        b.type_into(&format!("#row-form [name=\"{name}\"]"), value).await;
    }
    b.click("#predict-btn").await;
    let shown = b
        .wait(
            "the prediction",
            "const body = document.querySelector('#result-body');
             if (body.hidden) return null;
             return { label: document.querySelector('#result-digit').textContent,
                      bars: Array.from(document.querySelectorAll('#probs li')).map(li => li.dataset.label) };",
            20,
        )
        .await;
    assert_eq!(shown["label"], "virginica", "{shown}");
    assert_eq!(shown["bars"], json!(["setosa", "versicolor", "virginica"]), "{shown}");
    b.screenshot("12-tabular-prediction", true).await;

    b.click("#fb-correct").await;
    b.wait(
        "the feedback confirmation",
        "const d = document.querySelector('#fb-done'); return !d.hidden && d.textContent",
        20,
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while repo.feedback_files("json").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored = repo.feedback_files("json");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].starts_with("sub_set_0/virginica"), "{}", stored[0].display());
    let history = b
        .wait(
            "the history row",
            "const h = document.querySelector('#history-list .h-features'); return h && h.textContent",
            10,
        )
        .await;
    assert!(history.as_str().unwrap().contains("petal_length 5.2"), "{history}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_view_lists_doubtful_labels_and_relabels_one() {
    let _serial = support::serial().await;
    let Some(mnist) = support::mnist_test() else { return };
    let repo = Repo::new();
    // A sealed sub_set of ten digits, two of them called the next digit.
    let store = gitops::feedback::FeedbackStore::open(&repo.root).unwrap();
    for i in 0..10 {
        let (png, label) = support::mnist_png(&mnist, i);
        let (label, kind) = if i % 5 == 2 {
            ((label + 1) % 10, gitops::feedback::Kind::Wrong)
        } else {
            (label, gitops::feedback::Kind::Correct)
        };
        let sample = gitops::feedback::Sample::new(png, label.to_string(), kind, "test");
        store.add(sample).unwrap();
    }
    repo.commit_and_push("ten feedback samples");
    let server = Server::start(&repo, &[]);
    let b = Browser::start(&server.url, DESKTOP.0, DESKTOP.1).await;
    b.open().await;
    let items = b
        .wait(
            "the review queue",
            "const items = document.querySelectorAll('#review-list .review-item');
             return items.length && Array.from(items).map(li => [li.dataset.sha256, li.querySelector('select').value,
               li.querySelectorAll('select option').length, !!li.querySelector('img')]);",
            20,
        )
        .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 2, "the two planted labels: {items:?}");
    assert!(
        items.iter().all(|i| i[2] == 10 && i[3] == true),
        "a relabel choice of every class and a thumbnail: {items:?}"
    );
    assert!(b.text("#review-summary").await.starts_with("2 of 10 undecided"), "{}", b.text("#review-summary").await);
    b.js("document.querySelector('#review').scrollIntoView()", vec![]).await;
    b.screenshot("13-label-review", false).await;

    // Relabel the first to what the model says (the choice starts there).
    let (sha, right) = (items[0][0].as_str().unwrap(), items[0][1].as_str().unwrap());
    b.click(&format!("#review-list [data-sha256=\"{sha}\"] [data-action=\"relabel\"]")).await;
    b.wait(
        "the decided sample to leave the list",
        "return document.querySelectorAll('#review-list .review-item').length === 1",
        20,
    )
    .await;
    assert_eq!(b.text("#review-count").await, "1");
    let decisions: Value =
        serde_json::from_slice(&std::fs::read(repo.root.join("new_data/review.json")).unwrap()).unwrap();
    assert_eq!(decisions["decisions"][sha]["action"], "relabel");
    assert_eq!(decisions["decisions"][sha]["label"], right);
    b.close().await;
}

#[tokio::test]
async fn the_models_card_marks_the_shadow_version_with_its_figures() {
    let _serial = support::serial().await;
    let (repo, _server, b) = setup(true, &[], DESKTOP).await;
    let serving = repo.serving();
    let shadow = repo.base_version.clone();
    // `pipeline models shadow BASE`, as the registry records it, pushed for the server to pull.
    let models = repo.root.join("models");
    let mut registry = pipeline::registry::Registry::load(&models).unwrap();
    registry.shadow = Some(shadow.clone());
    registry.save(&models).unwrap();
    repo.commit_and_push(&format!("Shadow {shadow}"));
    b.wait(
        "the server to load the shadow version",
        "return fetch('/models').then(r => r.json()).then(m => m.shadow ? m.shadow.version : null)",
        60,
    )
    .await;

    // A drawn digit is answered by the serving model; the shadow (the same weights) agrees.
    b.stroke("#pad", SEVEN, false).await;
    b.click("#predict-btn").await;
    let p = wait_for_prediction(&b, "").await;
    assert_shown_prediction(&p, &serving);
    let title = b
        .wait(
            "the Shadow pill with one agreeing prediction",
            &format!(
                "document.querySelector('#models-refresh').click();
                 const pill = Array.from(document.querySelectorAll('#models-body tr[data-version={shadow:?}] .pill'))
                   .find(p => p.textContent === 'Shadow');
                 return pill && pill.title.includes('1 prediction,') ? pill.title : null;"
            ),
            30,
        )
        .await;
    assert!(title.as_str().unwrap().contains("100.0% agreement"), "{title}");
    let serving_pills = b.text(&format!("#models-body tr[data-version=\"{serving}\"]")).await;
    assert!(!serving_pills.contains("Shadow"), "only the shadow version wears the pill: {serving_pills:?}");
    b.screenshot_of("#models", "14-shadow").await;
    b.close().await;
}
