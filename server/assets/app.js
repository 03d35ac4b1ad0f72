// Digit Lab: the page model-server serves. Draw or upload a digit, see the prediction, give
// feedback, follow the retrain, manage model versions. Plain JavaScript, no dependencies.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  const TOKEN_KEYS = { admin: "digitlab.adminToken", feedback: "digitlab.feedbackToken" };
  const POLL_IDLE_MS = 4000;
  const POLL_BUSY_MS = 1500;
  const HISTORY_LIMIT = 12;

  const state = {
    hasInk: false,
    source: "draw", // "draw" | "upload"
    uploadFile: null,
    prediction: null,
    feedbackSent: false,
    status: null,
    models: null,
    serving: null,
    lastDecisionAt: undefined,
    confusionChoice: null,
    online: null,
    pollTimer: 0,
  };

  // ------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(status, message, detail) {
      super(message);
      this.status = status;
      this.detail = detail;
    }
  }

  function friendlyError(status, serverMessage, context) {
    const detail = serverMessage ? ` (${serverMessage})` : "";
    switch (status) {
      case 400:
        if (context === "image") return `The image could not be read${serverMessage ? `: ${serverMessage}` : "."}`;
        return serverMessage ? `The request was refused: ${serverMessage}` : "The request was malformed.";
      case 401:
        return context === "admin"
          ? "That admin token was not accepted. Check it and try again."
          : "That token was not accepted. Check it and try again.";
      case 404:
        return serverMessage || "Not found.";
      case 409:
        return serverMessage || "That conflicts with the current state; refresh and try again.";
      case 413:
        return "That image is too large for the server. Try a smaller file.";
      case 415:
        return "That file type isn't supported. Use a PNG, JPEG, GIF, BMP, WebP or TIFF image.";
      case 422:
        if (context === "image") return `The image was rejected${serverMessage ? `: ${serverMessage}` : "."}`;
        return serverMessage ? `Not accepted: ${serverMessage}` : "The server could not accept that.";
      case 503:
        return `The server is busy or has no model ready yet. Try again in a moment${detail}.`;
      default:
        return serverMessage ? `Server error ${status}: ${serverMessage}` : `The server answered with an error (${status}).`;
    }
  }

  async function api(path, { method = "GET", json, form, token, context, timeout = 20000 } = {}) {
    const headers = { Accept: "application/json" };
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout);
    let res;
    try {
      res = await fetch(path, { method, headers, body, signal: controller.signal, cache: "no-store" });
    } catch (err) {
      setOnline(false);
      const message = err && err.name === "AbortError"
        ? "The server took too long to answer. Try again."
        : "Can't reach the server. Check that model-server is running, then try again.";
      throw new ApiError(0, message);
    } finally {
      clearTimeout(timer);
    }
    setOnline(true);
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const serverMessage = data && typeof data.error === "string" ? data.error : "";
      throw new ApiError(res.status, friendlyError(res.status, serverMessage, context), serverMessage);
    }
    return data;
  }

  // ------------------------------------------------------------------ formatting

  const pct = (x, digits = 1) => (Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "–");
  const dateFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function parseTime(at) {
    if (!at) return null;
    const d = new Date(at);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function timeFromVersion(version) {
    const m = /^model_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(version || "");
    return m ? new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6])) : null;
  }

  function relTime(d) {
    if (!d) return "";
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 10) return "just now";
    if (s < 60) return `${s} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return dateFmt.format(d);
  }

  function subSetName(s) {
    if (s === null || s === undefined || s === "") return "";
    return typeof s === "number" || /^\d+$/.test(String(s)) ? `sub_set_${s}` : String(s);
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs = {}, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null) continue;
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) if (c) node.append(c);
    return node;
  }

  const ICONS = {
    check: "m5 12 5 5L20 7",
    x: "M18 6 6 18M6 6l12 12",
    info: "M12 16v-4m0-4h.01M22 12a10 10 0 1 1-20 0 10 10 0 0 1 20 0Z",
    alert: "M12 9v4m0 4h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z",
  };
  const icon = (name) => svg("svg", { viewBox: "0 0 24 24", "aria-hidden": "true" }, svg("path", { d: ICONS[name] }));

  function toast(message, tone = "info", ms = 5000) {
    const node = el("div", { class: "toast", "data-tone": tone, role: tone === "danger" ? "alert" : "status" },
      icon(tone === "danger" ? "alert" : tone === "success" ? "check" : "info"), el("span", { text: message }));
    $("#toasts").append(node);
    setTimeout(() => node.remove(), ms);
  }

  function showError(node, message) {
    node.textContent = message || "";
    node.hidden = !message;
  }

  function setBusy(button, busy, label) {
    button.classList.toggle("is-loading", busy);
    button.disabled = busy;
    button.setAttribute("aria-busy", String(busy));
    const text = $(".btn-label", button);
    if (text && label) text.textContent = label;
  }

  function setOnline(online) {
    if (state.online === online) return;
    state.online = online;
    $("#offline-banner").hidden = online;
    const chip = $("#server-chip");
    chip.dataset.state = online ? "ok" : "down";
    if (!online) $("#serving-version").textContent = "server unreachable";
    else if (state.serving) $("#serving-version").textContent = state.serving;
  }

  // ------------------------------------------------------------------ drawing pad

  const pad = $("#pad");
  const padWrap = $("#drop-zone");
  const ctx = pad.getContext("2d");
  let stroke = null;

  function resetPad() {
    ctx.globalCompositeOperation = "source-over";
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, pad.width, pad.height);
    state.hasInk = false;
    state.source = "draw";
    state.uploadFile = null;
    padWrap.classList.remove("has-ink");
    $("#pad-source").hidden = true;
  }

  function padPoint(e) {
    const r = pad.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * pad.width, y: ((e.clientY - r.top) / r.height) * pad.height };
  }

  function inkWidth(e) {
    const base = pad.width * 0.068;
    return e.pointerType === "pen" && e.pressure > 0 ? base * (0.55 + e.pressure * 0.9) : base;
  }

  function drawSegment(from, to, width) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.lineWidth = width;
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }

  pad.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    if (state.source === "upload") resetPad();
    pad.setPointerCapture?.(e.pointerId);
    const p = padPoint(e);
    stroke = { id: e.pointerId, last: p };
    ctx.beginPath();
    ctx.fillStyle = "#fff";
    ctx.arc(p.x, p.y, inkWidth(e) / 2, 0, Math.PI * 2);
    ctx.fill();
    state.hasInk = true;
    padWrap.classList.add("has-ink");
    showError($("#input-error"), "");
  });

  pad.addEventListener("pointermove", (e) => {
    if (!stroke || stroke.id !== e.pointerId) return;
    const events = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = padPoint(ev);
      drawSegment(stroke.last, p, inkWidth(ev));
      stroke.last = p;
    }
  });

  const endStroke = (e) => {
    if (stroke && stroke.id === e.pointerId) stroke = null;
  };
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  pad.addEventListener("lostpointercapture", endStroke);

  pad.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); predict(); }
    if (e.key === "Escape" || e.key === "Delete" || e.key === "Backspace") { e.preventDefault(); resetPad(); }
  });

  $("#clear-btn").addEventListener("click", () => { resetPad(); pad.focus(); });
  $("#predict-btn").addEventListener("click", () => predict());

  // ------------------------------------------------------------------ upload and drag-and-drop

  async function showUpload(file) {
    resetPad();
    state.source = "upload";
    state.uploadFile = file;
    const source = $("#pad-source");
    source.textContent = file.name || "Uploaded image";
    source.hidden = false;
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
      const w = bitmap.width * scale;
      const h = bitmap.height * scale;
      ctx.imageSmoothingEnabled = bitmap.width >= 64;
      ctx.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
      bitmap.close?.();
      padWrap.classList.add("has-ink");
    } catch {
      // Not decodable here; the server decides and explains.
    }
  }

  async function useFile(file) {
    if (!file) return;
    await showUpload(file);
    predict();
  }

  $("#file-input").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    useFile(file);
    e.target.value = "";
  });

  let dragDepth = 0;
  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth += 1;
    padWrap.classList.add("is-dragging");
  });
  document.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) padWrap.classList.remove("is-dragging");
  });
  document.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    padWrap.classList.remove("is-dragging");
    useFile(e.dataTransfer.files[0]);
  });

  // ------------------------------------------------------------------ prediction

  function showResultPane(which) {
    $("#result-empty").hidden = which !== "empty";
    $("#result-loading").hidden = which !== "loading";
    $("#result-body").hidden = which !== "body";
    $("#result-card").setAttribute("aria-busy", String(which === "loading"));
  }

  async function predict() {
    const button = $("#predict-btn");
    const errorBox = $("#input-error");
    showError(errorBox, "");
    let request;
    if (state.source === "upload" && state.uploadFile) {
      const form = new FormData();
      form.append("file", state.uploadFile, state.uploadFile.name || "upload");
      request = { method: "POST", form, context: "image" };
    } else if (state.hasInk) {
      request = { method: "POST", json: { image: pad.toDataURL("image/png") }, context: "image" };
    } else {
      showError(errorBox, "The pad is empty. Draw a digit first, or upload an image.");
      pad.focus();
      return;
    }
    const hadResult = !$("#result-body").hidden;
    setBusy(button, true, "Predicting…");
    if (!hadResult) showResultPane("loading");
    else $("#result-card").setAttribute("aria-busy", "true");
    try {
      const result = await api("/predict", request);
      renderPrediction(result);
      loadHistory();
    } catch (err) {
      showError(errorBox, err.message);
      if (!hadResult) showResultPane("empty");
      $("#result-card").setAttribute("aria-busy", "false");
    } finally {
      setBusy(button, false, "Predict");
    }
  }

  function buildProbs() {
    const list = $("#probs");
    list.replaceChildren();
    for (let d = 0; d < 10; d++) {
      list.append(el("li", { "data-digit": d },
        el("span", { class: "d", text: d }),
        el("span", { class: "bar", role: "presentation" }, el("span", { class: "fill" })),
        el("span", { class: "pct", text: "–" })));
    }
  }

  function renderPrediction(p) {
    state.prediction = p;
    state.feedbackSent = false;
    const probs = Array.isArray(p.probabilities) ? p.probabilities : [];
    const digit = Number.isInteger(p.digit) ? p.digit : probs.indexOf(Math.max(...probs));
    const confidence = Number.isFinite(p.confidence) ? p.confidence : probs[digit];
    const digitNode = $("#result-digit");
    digitNode.textContent = String(digit);
    digitNode.setAttribute("aria-label", `Predicted digit: ${digit}`);
    digitNode.classList.remove("pop");
    void digitNode.offsetWidth;
    digitNode.classList.add("pop");
    $("#result-confidence").textContent = pct(confidence);
    const unsure = Number.isFinite(confidence) && confidence < 0.6;
    $("#result-card").classList.toggle("is-unsure", unsure);
    $("#fb-title").textContent = unsure ? "The model is unsure. What is it really?" : "Did the model get it right?";
    $("#conf-fill").style.width = `${Math.max(0, Math.min(1, confidence || 0)) * 100}%`;
    $("#model-version").textContent = p.model_version || "unknown";
    $("#model-version").title = p.model_version || "";
    $("#result-sub").textContent = `Request ${String(p.request_id || "").slice(0, 8)} · ${timeFmt.format(new Date())}`;
    $$("#probs li").forEach((li, d) => {
      const v = Number(probs[d]) || 0;
      li.classList.toggle("top", d === digit);
      $(".fill", li).style.width = `${Math.max(v * 100, v > 0 ? 0.6 : 0)}%`;
      $(".pct", li).textContent = pct(v);
      li.setAttribute("aria-label", `${d}: ${pct(v)}`);
    });
    resetFeedback();
    showResultPane("body");
    // On a narrow screen the answer is below the pad: bring it into view.
    const card = $("#result-card").getBoundingClientRect();
    if (window.innerWidth < 980 && (card.top > window.innerHeight * 0.6 || card.bottom < 0)) {
      $("#result-card").scrollIntoView({ block: "start" });
    }
  }

  // ------------------------------------------------------------------ feedback

  function buildDigitPicker() {
    const picker = $("#digit-picker");
    for (let d = 0; d < 10; d++) {
      picker.append(el("button", {
        type: "button", class: "btn btn-ghost", "data-label": d, "aria-label": `The true digit is ${d}`, text: d,
        onclick: () => sendFeedback("wrong", d, picker.children[d]),
      }));
    }
  }

  function resetFeedback() {
    $$("#feedback .fb-buttons .btn, #digit-picker .btn").forEach((b) => {
      b.disabled = false;
      b.classList.remove("is-chosen", "is-loading");
      b.removeAttribute("aria-pressed");
    });
    $("#fb-labels").hidden = true;
    $("#fb-wrong").setAttribute("aria-expanded", "false");
    $("#fb-done").hidden = true;
    $("#fb-done").replaceChildren();
    showError($("#fb-error"), "");
  }

  $("#fb-correct").addEventListener("click", (e) => sendFeedback("correct", state.prediction?.digit, e.currentTarget));
  $("#fb-unsure").addEventListener("click", (e) => sendFeedback("unsure", null, e.currentTarget));
  $("#fb-wrong").addEventListener("click", () => {
    if (state.feedbackSent) return;
    const open = $("#fb-labels").hidden;
    $("#fb-labels").hidden = !open;
    $("#fb-wrong").setAttribute("aria-expanded", String(open));
    $("#fb-wrong").setAttribute("aria-pressed", String(open));
    if (open) {
      const first = $$("#digit-picker .btn").find((b) => Number(b.dataset.label) !== state.prediction?.digit);
      first?.focus();
    }
  });

  async function sendFeedback(kind, label, button) {
    if (!state.prediction || state.feedbackSent) return;
    const body = { request_id: state.prediction.request_id, kind };
    if (label !== null && label !== undefined) body.label = label;
    showError($("#fb-error"), "");
    const buttons = $$("#feedback .fb-buttons .btn, #digit-picker .btn");
    buttons.forEach((b) => { b.disabled = true; });
    button?.classList.add("is-loading");
    const send = (token) => api("/feedback", { method: "POST", json: body, token, context: "feedback" });
    try {
      let result;
      try {
        result = await send(sessionStorage.getItem(TOKEN_KEYS.feedback) || undefined);
      } catch (err) {
        if (err.status !== 401) throw err;
        sessionStorage.removeItem(TOKEN_KEYS.feedback);
        result = await askToken({
          kind: "feedback",
          title: "Feedback token",
          description: "This server asks for a token before it stores feedback.",
          confirm: "Send feedback",
          action: send,
        });
        if (result === undefined) throw new ApiError(401, "Feedback was not sent: it needs a token.");
      }
      state.feedbackSent = true;
      button?.classList.add("is-chosen");
      if (kind === "wrong") $("#fb-wrong").classList.add("is-chosen");
      renderFeedbackDone(kind, label, result);
      applyCount(result);
      refreshStatus();
      loadHistory();
    } catch (err) {
      buttons.forEach((b) => { b.disabled = false; });
      showError($("#fb-error"), err.message);
    } finally {
      button?.classList.remove("is-loading");
    }
  }

  function renderFeedbackDone(kind, label, r) {
    const box = $("#fb-done");
    const what = kind === "correct" ? `Marked correct (${label}).` : kind === "wrong" ? `Marked wrong: it is a ${label}.` : "Marked as unsure.";
    const text = el("div", { class: "fb-done-text" }, el("strong", { text: r && r.duplicate ? "Already saved. " : "Thanks! " }), what);
    if (r && Number.isFinite(r.current_count) && Number.isFinite(r.threshold)) {
      text.append(el("br"), `${r.current_count} / ${r.threshold} toward the next retrain`);
      if (r.sub_set !== undefined && r.sub_set !== null) text.append(` (${subSetName(r.sub_set)})`);
      text.append(".");
    }
    if (r && r.retrain_triggered) text.append(el("br"), el("strong", { text: "That filled the batch: a retrain has started." }));
    const again = el("button", {
      type: "button", class: "btn btn-small btn-ghost", text: "Draw another",
      onclick: () => { resetPad(); pad.focus(); pad.scrollIntoView({ block: "center" }); },
    });
    box.replaceChildren(icon("check"), text, again);
    box.hidden = false;
    $("#fb-labels").hidden = true;
  }

  // ------------------------------------------------------------------ token dialog

  const dialog = $("#token-dialog");
  let dialogJob = null;

  function askToken({ kind, title, description, confirm, action }) {
    return new Promise((resolve) => {
      dialogJob = { kind, action, resolve };
      $("#token-title").textContent = title;
      $("#token-desc").textContent = description;
      $(".btn-label", $("#token-submit")).textContent = confirm;
      $("#token-input").value = sessionStorage.getItem(TOKEN_KEYS[kind]) || "";
      showError($("#token-error"), "");
      setBusy($("#token-submit"), false);
      dialog.showModal();
      $("#token-input").focus();
      $("#token-input").select();
    });
  }

  function closeDialog(result) {
    const job = dialogJob;
    dialogJob = null;
    if (dialog.open) dialog.close();
    job?.resolve(result);
  }

  $("#token-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!dialogJob) return;
    const job = dialogJob;
    const token = $("#token-input").value.trim();
    const submit = $("#token-submit");
    const label = $(".btn-label", submit).textContent;
    setBusy(submit, true);
    showError($("#token-error"), "");
    try {
      const result = await job.action(token || undefined);
      if (token) sessionStorage.setItem(TOKEN_KEYS[job.kind], token);
      else sessionStorage.removeItem(TOKEN_KEYS[job.kind]);
      closeDialog(result ?? null);
    } catch (err) {
      if (err.status === 401) sessionStorage.removeItem(TOKEN_KEYS[job.kind]);
      showError($("#token-error"), err.status === 401 ? friendlyError(401, "", job.kind) : err.message);
      $("#token-input").focus();
      $("#token-input").select();
    } finally {
      setBusy(submit, false, label);
    }
  });
  $("#token-cancel").addEventListener("click", () => closeDialog(undefined));
  dialog.addEventListener("cancel", (e) => { e.preventDefault(); closeDialog(undefined); });

  // ------------------------------------------------------------------ status and the retrain loop

  function applyCount(s) {
    if (!s || !Number.isFinite(s.current_count) || !Number.isFinite(s.threshold)) return;
    $("#count-text").textContent = `${s.current_count} / ${s.threshold}`;
    const bar = $("#count-bar");
    bar.setAttribute("aria-valuemax", String(s.threshold));
    bar.setAttribute("aria-valuenow", String(s.current_count));
    bar.setAttribute("aria-valuetext", `${s.current_count} of ${s.threshold} samples`);
    $("#count-fill").style.width = `${s.threshold > 0 ? Math.min(1, s.current_count / s.threshold) * 100 : 0}%`;
    const left = Math.max(0, s.threshold - s.current_count);
    const name = subSetName(s.sub_set);
    $("#subset-text").textContent = `${name ? `Filling ${name}. ` : ""}${left === 0 ? "Batch complete." : `${left} more ${left === 1 ? "answer starts" : "answers start"} the next retrain.`}`;
  }

  function metricText(metrics) {
    if (!metrics || typeof metrics !== "object") return [];
    return Object.entries(metrics).slice(0, 6).map(([k, v]) => {
      const value = typeof v === "number" ? (/acc|rate|recall|precision|f1/i.test(k) && v <= 1 ? pct(v, 2) : String(+v.toFixed(4))) : String(v);
      return `${k.replace(/_/g, " ")}: ${value}`;
    });
  }

  function renderRetrain(s) {
    const retrain = s.retrain || { state: "idle" };
    const decision = s.decision || null;
    const steps = Object.fromEntries($$("#stepper li").map((li) => [li.dataset.step, li]));
    Object.values(steps).forEach((li) => li.classList.remove("done", "current", "live", "good", "bad"));
    const box = $("#retrain-state");
    const pill = (text, tone) => el("span", { class: "pill", "data-tone": tone, text });
    const sub = subSetName(retrain.sub_set);
    let decided = "Decision";
    let parts;
    const since = parseTime(retrain.started_at);

    if (retrain.state === "queued" || retrain.state === "running") {
      steps.collect.classList.add("done");
      if (retrain.state === "queued") {
        steps.queued.classList.add("current", "live");
        parts = [pill("queued", "warning"), el("span", { text: `Retrain${sub ? ` on ${sub}` : ""} is waiting to start.` })];
      } else {
        steps.queued.classList.add("done");
        steps.running.classList.add("current", "live");
        parts = [pill("running", "accent"), el("span", { text: `Training a candidate${sub ? ` on ${sub}` : ""}${since ? ` since ${timeFmt.format(since)}` : ""}.` })];
      }
    } else if (retrain.state === "failed") {
      ["collect", "queued", "running"].forEach((k) => steps[k].classList.add("done"));
      steps.decided.classList.add("current", "bad");
      decided = "Failed";
      const at = parseTime(retrain.finished_at);
      parts = [pill("failed", "danger"), el("span", { text: `The retrain${sub ? ` on ${sub}` : ""} failed${at ? ` at ${timeFmt.format(at)}` : ""}. See the log below.` })];
    } else if (decision) {
      ["collect", "queued", "running"].forEach((k) => steps[k].classList.add("done"));
      steps.decided.classList.add("current", decision.promoted ? "good" : "bad");
      decided = decision.promoted ? "Promoted" : "Rejected";
      const at = parseTime(decision.at);
      const when = at ? ` ${relTime(at)}` : "";
      const reasons = Array.isArray(decision.reasons) ? decision.reasons : decision.reasons ? [String(decision.reasons)] : [];
      const summary = decision.promoted
        ? `${decision.candidate || "The candidate"} was promoted${when}${decision.serving_before ? `, replacing ${decision.serving_before}` : ""}.`
        : `${decision.candidate || "The candidate"} was rejected${when}; ${decision.serving_before || "the current model"} keeps serving.`;
      parts = [pill(decision.promoted ? "promoted" : "rejected", decision.promoted ? "success" : "danger"), el("span", { text: summary })];
      const details = [...reasons.map((r) => `Reason: ${r}`), ...metricText(decision.metrics)];
      if (details.length) parts.push(el("ul", { class: "reasons", style: "flex-basis:100%" }, details.map((t) => el("li", { text: t }))));
    } else {
      steps.collect.classList.add("current");
      parts = [pill(retrain.state || "idle", "muted"), el("span", { text: "No retrain has run yet. Feedback is being collected." })];
    }
    $("#decided-label").textContent = decided;
    box.replaceChildren(...parts);

    const tail = Array.isArray(retrain.log_tail) ? retrain.log_tail.join("\n") : (retrain.log_tail || "");
    $("#log-details").hidden = !tail;
    $("#log-tail").textContent = tail;

    // Announce changes that happened while the page was open.
    const decisionAt = decision ? decision.at || JSON.stringify(decision) : null;
    if (state.lastDecisionAt !== undefined && decisionAt && decisionAt !== state.lastDecisionAt) {
      toast(decision.promoted ? `New model promoted: ${decision.candidate}` : `Candidate ${decision.candidate || ""} rejected${decision.reasons?.length ? `: ${decision.reasons[0]}` : ""}`,
        decision.promoted ? "success" : "info", 8000);
      loadModels();
    }
    state.lastDecisionAt = decisionAt;
    return retrain.state === "queued" || retrain.state === "running";
  }

  function applyServing(serving) {
    if (!serving) return;
    const changed = state.serving && state.serving !== serving;
    state.serving = serving;
    const chip = $("#serving-version");
    chip.textContent = serving;
    $("#server-chip").title = `Serving ${serving}`;
    if (changed) loadModels();
  }

  async function refreshStatus() {
    clearTimeout(state.pollTimer);
    let busy = false;
    try {
      const s = await api("/api/status", { timeout: 8000 });
      state.status = s;
      applyCount(s);
      applyServing(s.serving);
      busy = renderRetrain(s);
    } catch (err) {
      if (err.status) $("#offline-detail").textContent = err.message;
    }
    state.pollTimer = setTimeout(refreshStatus, busy ? POLL_BUSY_MS : POLL_IDLE_MS);
  }

  $("#retry-btn").addEventListener("click", () => { refreshStatus(); loadModels(); loadHistory(); });

  // ------------------------------------------------------------------ models

  const ACC_KEY = "base_test_accuracy";
  const versionTime = (v) => parseTime(v.created_at) || timeFromVersion(v.version);

  async function loadModels() {
    const button = $("#models-refresh");
    button.classList.add("is-loading");
    try {
      const m = await api("/models");
      state.models = m;
      showError($("#models-error"), "");
      applyServing(m.serving);
      renderModels(m);
      renderPlots(m);
    } catch (err) {
      showError($("#models-error"), `Could not load the models. ${err.message}`);
    } finally {
      button.classList.remove("is-loading");
    }
  }
  $("#models-refresh").addEventListener("click", loadModels);

  function renderModels(m) {
    const versions = (m.versions || []).slice().sort((a, b) => (versionTime(b)?.getTime() || 0) - (versionTime(a)?.getTime() || 0));
    const byVersion = new Map(versions.map((v) => [v.version, v]));
    const serving = m.serving;
    const servingInfo = byVersion.get(serving);
    const servingTime = servingInfo ? versionTime(servingInfo) : null;
    const body = $("#models-body");
    body.replaceChildren();
    if (!versions.length) {
      body.append(el("tr", { class: "empty-row" }, el("td", { colspan: 5, text: "No model versions on disk yet. Train one with `pipeline train-base`." })));
    }
    for (const v of versions) {
      const isServing = v.serving || v.version === serving;
      const acc = v.metrics ? v.metrics[ACC_KEY] : undefined;
      const parent = v.parent ? byVersion.get(v.parent) : null;
      const parentAcc = parent && parent.metrics ? parent.metrics[ACC_KEY] : undefined;
      const created = versionTime(v);
      const badges = [];
      if (isServing) badges.push(el("span", { class: "pill", "data-tone": "accent", text: "Serving" }));
      if (v.pinned) badges.push(el("span", { class: "pill", "data-tone": "warning", text: "Pinned" }));
      if (v.loaded && !isServing) badges.push(el("span", { class: "pill", text: "Loaded" }));
      let delta = null;
      if (Number.isFinite(acc) && Number.isFinite(parentAcc)) {
        const d = (acc - parentAcc) * 100;
        delta = el("span", { class: `delta ${d >= 0 ? "up" : "down"}`, title: "Change from the parent", text: `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(2)}` });
      }
      const metricsTitle = metricText(v.metrics).join("\n");
      let action = null;
      if (!isServing) {
        const older = servingTime && created ? created < servingTime : true;
        action = el("button", {
          type: "button", class: "btn btn-small btn-ghost rollback", "data-rollback": v.version,
          "aria-label": `${older ? "Roll back" : "Switch"} to ${v.version}`,
          onclick: () => rollback(v.version),
        }, svg("svg", { viewBox: "0 0 24 24", "aria-hidden": "true" }, svg("path", { d: "M3 12a9 9 0 1 0 3-6.7L3 8M3 3v5h5" })), older ? "Roll back" : "Serve this");
      }
      body.append(el("tr", { class: isServing ? "is-serving" : "", "data-version": v.version },
        el("td", {}, el("div", { class: "ver" }, el("code", { text: v.version }), badges)),
        el("td", { "data-label": "Created", title: created ? created.toISOString() : "" }, created ? dateFmt.format(created) : "–"),
        el("td", { "data-label": "Accuracy", title: metricsTitle },
          el("span", { class: "acc-cell" },
            el("span", { class: "num", text: pct(acc, 2) }),
            delta,
            Number.isFinite(acc) ? el("span", { class: "acc-bar", "aria-hidden": "true" }, el("span", { style: `width:${Math.max(0, Math.min(1, (acc - 0.9) / 0.1)) * 100}%` })) : null)),
        el("td", { "data-label": "Parent" }, v.parent ? el("code", { text: v.parent }) : el("span", { class: "muted", text: "from scratch" })),
        el("td", {}, action)));
    }

    const events = (m.history || []).slice().reverse();
    const list = $("#events-list");
    list.replaceChildren();
    if (!events.length) list.append(el("li", {}, el("span", { class: "muted", text: "No promotions or rollbacks yet." })));
    for (const ev of events.slice(0, 20)) {
      const at = parseTime(ev.at);
      const tone = { promote: "success", rollback: "warning", base: "accent" }[ev.action] || "muted";
      list.append(el("li", {},
        el("time", { datetime: ev.at || "", text: at ? dateFmt.format(at) : "–" }),
        el("span", {}, el("span", { class: "pill", "data-tone": tone, text: ev.action || "event" })),
        el("span", { class: "why" }, el("code", { text: ev.version || "" }), ev.previous ? ` from ${ev.previous}` : "", ev.reason ? ` — ${ev.reason}` : "")));
    }
    $("#events-details").querySelector("summary").textContent = `Promotion history (${events.length})`;
  }

  async function rollback(version) {
    const result = await askToken({
      kind: "admin",
      title: `Roll back to ${version}?`,
      description: "The registry pointer moves to this version in a git commit, and every server follows. Enter the admin token.",
      confirm: "Roll back",
      action: (token) => api("/admin/rollback", { method: "POST", json: { version }, token, context: "admin" }),
    });
    if (result === undefined) return;
    toast(`Now serving ${version}`, "success");
    state.serving = version;
    $("#serving-version").textContent = version;
    await loadModels();
    refreshStatus();
  }

  // ------------------------------------------------------------------ plots

  function hexToRgb(hex, fallback) {
    const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec((hex || "").trim());
    return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : fallback;
  }
  const mix = (a, b, t) => `rgb(${a.map((x, i) => Math.round(x + (b[i] - x) * t)).join(",")})`;

  function renderPlots(m) {
    const versions = (m.versions || []).slice().sort((a, b) => (versionTime(a)?.getTime() || 0) - (versionTime(b)?.getTime() || 0));
    const select = $("#confusion-model");
    const withConfusion = versions.filter((v) => Array.isArray(v.confusion));
    if (!withConfusion.some((v) => v.version === state.confusionChoice)) state.confusionChoice = null;
    const chosen = state.confusionChoice || (withConfusion.find((v) => v.version === m.serving) ? m.serving : withConfusion.at(-1)?.version);
    select.replaceChildren(...withConfusion.slice().reverse().map((v) =>
      el("option", { value: v.version, selected: v.version === chosen, title: v.version },
        `${versionTime(v) ? dateFmt.format(versionTime(v)) : v.version}${v.version === m.serving ? " · serving" : ""}`)));
    select.disabled = withConfusion.length < 2;
    drawConfusion(withConfusion.find((v) => v.version === chosen), m.serving);
    drawAccuracy(versions, m.serving);
  }

  // Plots are drawn at their real pixel width, so their text stays readable on a phone.
  let plotWidth = 0;
  new ResizeObserver(() => {
    const w = $("#accuracy-plot").clientWidth;
    if (state.models && Math.abs(w - plotWidth) > 8) renderPlots(state.models);
    plotWidth = w;
  }).observe($("#accuracy-plot"));

  $("#confusion-model").addEventListener("change", (e) => {
    state.confusionChoice = e.target.value;
    if (state.models) renderPlots(state.models);
  });

  function drawConfusion(model, serving) {
    const figure = $("#confusion-plot");
    if (!model) {
      figure.replaceChildren(el("div", { class: "plot-empty", text: "No confusion matrix recorded for the serving model yet." }));
      return;
    }
    const cm = model.confusion;
    const css = getComputedStyle(document.documentElement);
    const base = hexToRgb(css.getPropertyValue("--surface-2"), [248, 249, 252]);
    const good = [79, 70, 229];
    const bad = [225, 29, 72];
    const avail = figure.clientWidth || 360;
    const left = 44;
    const cell = Math.max(20, Math.min(34, Math.floor((avail - left - 8) / 10)));
    const top = 40;
    const size = cell * 10;
    const rowTotals = cm.map((row) => row.reduce((a, b) => a + b, 0));
    let total = 0;
    let correct = 0;
    let maxOff = 0;
    cm.forEach((row, i) => row.forEach((c, j) => {
      total += c;
      if (i === j) correct += c;
      else if (rowTotals[i]) maxOff = Math.max(maxOff, c / rowTotals[i]);
    }));
    const root = svg("svg", { viewBox: `0 0 ${left + size + 8} ${top + size + 10}`, role: "img", "aria-label": `Confusion matrix of ${model.version}: ${pct(total ? correct / total : NaN, 2)} correct` });
    root.append(svg("text", { x: left + size / 2, y: 12, "text-anchor": "middle", class: "axis-title", text: "Predicted digit" }));
    root.append(svg("text", { x: 10, y: top + size / 2, "text-anchor": "middle", class: "axis-title", transform: `rotate(-90 10 ${top + size / 2})`, text: "True digit" }));
    for (let k = 0; k < 10; k++) {
      root.append(svg("text", { x: left + k * cell + cell / 2, y: top - 8, "text-anchor": "middle", text: k }));
      root.append(svg("text", { x: left - 8, y: top + k * cell + cell / 2 + 4, "text-anchor": "end", text: k }));
    }
    const textColor = css.getPropertyValue("--text").trim() || "#111827";
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        const c = cm[i][j];
        const rate = rowTotals[i] ? c / rowTotals[i] : 0;
        const t = i === j ? 0.15 + 0.85 * rate : maxOff > 0 ? Math.sqrt(rate / maxOff) * 0.85 : 0;
        const fill = c === 0 ? mix(base, base, 0) : mix(base, i === j ? good : bad, t);
        const x = left + j * cell;
        const y = top + i * cell;
        root.append(svg("rect", { class: "cell", x, y, width: cell, height: cell, rx: 3, fill },
          svg("title", { text: `True ${i}, predicted ${j}: ${c} (${pct(rate, 1)} of ${rowTotals[i]})` })));
        if (c > 0) {
          root.append(svg("text", {
            class: "cell-text", x: x + cell / 2, y: y + cell / 2 + 3.5, "text-anchor": "middle",
            style: `fill:${t > 0.5 ? "#fff" : textColor};font-size:${cell < 27 ? 8 : 9.5}px`, text: c,
          }));
        }
      }
    }
    const legend = el("div", { class: "legend" },
      el("span", {}, el("i", { style: `background:${mix(base, good, 0.9)}` }), "Correct"),
      el("span", {}, el("i", { style: `background:${mix(base, bad, 0.7)}` }), "Confusions"),
      el("span", {}, el("strong", { text: pct(total ? correct / total : NaN, 2) }), ` correct of ${total.toLocaleString()}`),
      el("span", {}, el("code", { text: model.version }), model.version === serving ? " · serving" : ""));
    figure.replaceChildren(root, legend);
  }

  const SERIES_COLORS = ["#4f46e5", "#0d9488", "#d97706", "#db2777"];
  const seriesName = (k) => (k === ACC_KEY ? "MNIST test set" : k.replace(/_/g, " ").replace(/\baccuracy\b/, "").trim() || k);

  function drawAccuracy(versions, serving) {
    const figure = $("#accuracy-plot");
    const keys = [...new Set(versions.flatMap((v) => Object.keys(v.metrics || {}).filter((k) => /accuracy/i.test(k) && Number.isFinite(v.metrics[k]))))]
      .sort((a, b) => (a === ACC_KEY ? -1 : b === ACC_KEY ? 1 : a.localeCompare(b)));
    const points = versions.map((v) => ({ v, t: versionTime(v) })).filter((p) => p.t);
    if (!keys.length || !points.length) {
      figure.replaceChildren(el("div", { class: "plot-empty", text: "No accuracy recorded for any model yet." }));
      return;
    }
    const W = Math.max(300, figure.clientWidth || 520);
    const H = Math.round(Math.max(230, Math.min(400, W * 0.8)));
    const m = { l: 50, r: 18, t: 26, b: 40 };
    const values = points.flatMap((p) => keys.map((k) => p.v.metrics?.[k]).filter(Number.isFinite));
    // A y range with round ticks (0.1, 0.2, 0.25, 0.5, 1, 2, 5 percentage points apart).
    const vmin = Math.min(...values);
    const vmax = Math.max(...values);
    const span = Math.max(vmax - vmin, 0.004) * 1.5;
    const step = [0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2].find((s) => span / s <= 6) || 0.25;
    let lo = Math.max(0, Math.floor((vmin - span * 0.2) / step) * step);
    let hi = Math.min(1, Math.ceil((vmax + span * 0.2) / step) * step);
    if (hi - lo < step * 2) hi = Math.min(1, lo + step * 2);
    if (hi - lo < step * 2) lo = Math.max(0, hi - step * 2);
    const t0 = points[0].t.getTime();
    const t1 = points.at(-1).t.getTime();
    const x = (t) => (t1 === t0 ? m.l + (W - m.l - m.r) / 2 : m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r));
    const y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * (H - m.t - m.b);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Test accuracy of ${points.length} model versions over time` });
    const defs = svg("defs", {}, svg("linearGradient", { id: "acc-fill", x1: 0, y1: 0, x2: 0, y2: 1 },
      svg("stop", { offset: "0%", "stop-color": SERIES_COLORS[0], "stop-opacity": "0.22" }),
      svg("stop", { offset: "100%", "stop-color": SERIES_COLORS[0], "stop-opacity": "0" })));
    root.append(defs);
    const ticks = Math.round((hi - lo) / step);
    const decimals = Number.isInteger(+(step * 100).toFixed(6)) ? 0 : Number.isInteger(+(step * 1000).toFixed(6)) ? 1 : 2;
    for (let i = 0; i <= ticks; i++) {
      const v = lo + step * i;
      root.append(svg("line", { class: "grid-line", x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
      root.append(svg("text", { x: m.l - 8, y: y(v) + 4, "text-anchor": "end", text: pct(v, decimals) }));
    }
    const xTicks = t1 === t0 ? [t0] : W < 440 ? [t0, t1] : [t0, (t0 + t1) / 2, t1];
    xTicks.forEach((t, i) => {
      const anchor = xTicks.length === 1 ? "middle" : i === 0 ? "start" : i === xTicks.length - 1 ? "end" : "middle";
      root.append(svg("text", { x: x(t), y: H - m.b + 18, "text-anchor": anchor, text: dateFmt.format(new Date(t)) }));
    });
    root.append(svg("text", { x: m.l + (W - m.l - m.r) / 2, y: H - 4, "text-anchor": "middle", class: "axis-title", text: "Model created" }));

    keys.forEach((key, si) => {
      const color = SERIES_COLORS[si % SERIES_COLORS.length];
      const pts = points.filter((p) => Number.isFinite(p.v.metrics?.[key])).map((p) => ({ ...p, value: p.v.metrics[key] }));
      if (!pts.length) return;
      const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.t.getTime()).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
      if (si === 0 && pts.length > 1) {
        const area = `${d} L${x(pts.at(-1).t.getTime()).toFixed(1)},${H - m.b} L${x(pts[0].t.getTime()).toFixed(1)},${H - m.b} Z`;
        root.append(svg("path", { class: "area", d: area, fill: "url(#acc-fill)" }));
      }
      root.append(svg("path", { class: "series", d, stroke: color }));
      pts.forEach((p) => {
        const cx = x(p.t.getTime());
        const cy = y(p.value);
        const isServing = p.v.version === serving;
        if (isServing) root.append(svg("circle", { class: "serving-ring", cx, cy, r: 9, stroke: color }));
        root.append(svg("circle", { class: "point", cx, cy, r: isServing ? 5.5 : 4.5, fill: color },
          svg("title", { text: `${p.v.version}\n${seriesName(key)}: ${pct(p.value, 2)}${isServing ? "\nserving" : ""}` })));
        if (si === 0) {
          const anchor = pts.length > 1 && cx > W - m.r - 40 ? "end" : pts.length > 1 && cx < m.l + 40 ? "start" : "middle";
          root.append(svg("text", { class: "point-label", x: cx, y: cy - 13, "text-anchor": anchor, text: `${pct(p.value, 2)}${isServing ? " ★" : ""}` }));
        }
      });
    });
    const legend = el("div", { class: "legend" },
      keys.map((k, i) => el("span", {}, el("i", { style: `background:${SERIES_COLORS[i % SERIES_COLORS.length]}` }), seriesName(k))),
      el("span", {}, "★ serving"),
      el("span", { text: `${points.length} version${points.length === 1 ? "" : "s"}` }));
    figure.replaceChildren(root, legend);
  }

  // ------------------------------------------------------------------ history

  async function loadHistory() {
    const button = $("#history-refresh");
    button.classList.add("is-loading");
    try {
      // Behind the feedback token when the server has one: send the one feedback was sent with.
      const token = sessionStorage.getItem(TOKEN_KEYS.feedback) || undefined;
      const items = await api(`/api/history?limit=${HISTORY_LIMIT}`, { token });
      showError($("#history-error"), "");
      renderHistory(Array.isArray(items) ? items : items?.items || []);
    } catch (err) {
      const why = err.status === 401
        ? "It needs the feedback token: it shows here once feedback was sent with it."
        : err.message;
      showError($("#history-error"), `Could not load the history. ${why}`);
    } finally {
      button.classList.remove("is-loading");
    }
  }
  $("#history-refresh").addEventListener("click", loadHistory);

  function feedbackPill(fb) {
    if (!fb) return el("span", { class: "pill", text: "No feedback" });
    if (fb.kind === "correct") return el("span", { class: "pill", "data-tone": "success", text: "✓ Correct" });
    if (fb.kind === "wrong") return el("span", { class: "pill", "data-tone": "danger", text: `✗ Was ${fb.label ?? "?"}` });
    return el("span", { class: "pill", "data-tone": "warning", text: "Unsure" });
  }

  function renderHistory(items) {
    const list = $("#history-list");
    list.replaceChildren();
    if (!items.length) {
      list.append(el("li", { class: "history-empty", text: "No predictions yet. Your drawings will show up here." }));
      return;
    }
    for (const h of items) {
      const at = parseTime(h.at);
      list.append(el("li", { class: "history-item", "data-request-id": h.request_id || "" },
        h.thumbnail
          ? el("img", { src: h.thumbnail, alt: `Input that was read as ${h.digit}`, width: 56, height: 56 })
          : el("span", { class: "ghost-digit", style: "width:56px;height:56px;font-size:24px;border-radius:8px", "aria-hidden": "true", text: "?" }),
        el("div", { class: "h-main" },
          el("div", { class: "h-top" },
            el("span", { class: "h-digit", "aria-label": `Answer ${h.digit}`, text: h.digit }),
            el("span", { class: "h-conf", text: pct(h.confidence) })),
          feedbackPill(h.feedback),
          el("time", { datetime: h.at || "", title: `${at ? at.toLocaleString() : ""} · ${h.model_version || ""}`, text: relTime(at) }))));
    }
  }

  // ------------------------------------------------------------------ start

  buildProbs();
  buildDigitPicker();
  resetPad();
  showResultPane("empty");
  refreshStatus();
  loadModels();
  loadHistory();
  setInterval(() => { if (document.visibilityState === "visible") loadModels(); }, 30000);
})();
