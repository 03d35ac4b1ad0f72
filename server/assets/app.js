// The page model-server serves ("Digit Lab" for MNIST): draw or upload an image, see the
// prediction, give feedback, follow the retrain, manage model versions. Everything
// class-shaped (title, wording, bars, feedback choices, heat map axes) is built from the
// server's task (GET /api/task), so it fits any image classifier. Plain JavaScript, no
// dependencies.
"use strict";

(() => {
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  const TOKEN_KEYS = { admin: "digitlab.adminToken", feedback: "digitlab.feedbackToken" };
  const POLL_IDLE_MS = 4000;
  const POLL_BUSY_MS = 1500;
  const HISTORY_LIMIT = 12;
  const MANY_CLASSES = 12; // beyond this: a searchable class picker, and only the likeliest bars
  const TOP_BARS = 10;

  const state = {
    task: null, // GET /api/task, once
    words: null, // the wording that fits the task (see applyTask)
    hasInk: false,
    source: "draw", // "draw" | "upload"
    uploadFile: null,
    previewUrl: null,
    prediction: null,
    feedbackSent: false,
    status: null,
    models: null,
    serving: null,
    lastDecisionAt: undefined,
    confusionChoice: null,
    history: null,
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

  // ------------------------------------------------------------------ the task

  // What the served classifier tells apart: class names in the order of the model's outputs,
  // the input shape, and how an image is preprocessed ("digit": a drawing pad is offered).
  // Fetched once; until it has answered, it is asked again like the status poll is.
  let taskRequest = null;
  let taskTimer = 0;
  let taskTries = 0;

  function checkTask(task) {
    const classes = task && Array.isArray(task.classes) ? task.classes : null;
    if (!classes || classes.length < 2 || !classes.every((c) => typeof c === "string" && c)) {
      throw new ApiError(200, "The server's task has no usable class names.");
    }
    return task;
  }

  // The task, fetched when it is not known yet; throws an ApiError when that fails.
  function ensureTask() {
    if (state.task) return Promise.resolve(state.task);
    if (!taskRequest) {
      taskRequest = api("/api/task", { timeout: 8000 })
        .then((task) => {
          applyTask(checkTask(task));
          return state.task;
        })
        .finally(() => { taskRequest = null; });
    }
    return taskRequest;
  }

  async function loadTask() {
    clearTimeout(taskTimer);
    try {
      await ensureTask();
    } catch (err) {
      taskTries += 1;
      taskTimer = setTimeout(loadTask, Math.min(POLL_IDLE_MS, 1000 * taskTries));
    }
  }

  // "shapes" → "Shapes", "street-signs" → "Street Signs".
  const titleCase = (name) => String(name || "").replace(/[-_.]+/g, " ").trim().replace(/\b\w/g, (c) => c.toUpperCase());
  const listClasses = (classes) => (classes.length <= MANY_CLASSES ? classes.join(", ") : `${classes.length} classes`);

  // The name of class `i` (a number), or the label itself when it is already a name.
  function className(label) {
    if (label === null || label === undefined) return "?";
    if (typeof label === "number") return state.task?.classes[label] ?? String(label);
    return String(label);
  }

  function applyTask(task) {
    const classes = task.classes.map(String);
    const n = classes.length;
    const tabular = task.kind === "tabular" && task.table && Array.isArray(task.table.features);
    const draw = !tabular && task.preprocess === "digit";
    const digits = classes.every((c) => /^[0-9]$/.test(c));
    const zeroToNine = digits && n === 10 && classes.every((c, i) => c === String(i));
    const labName = draw && digits ? "Digit Lab" : `${titleCase(task.name) || "Image"} Lab`;
    const words = {
      draw,
      tabular,
      noun: digits && !tabular ? "digit" : "class",
      thing: tabular ? "row" : draw ? (digits ? "digit" : "symbol") : "image",
      words: classes.some((c) => c.length > 2),
      labName,
    };
    state.task = { ...task, classes };
    state.words = words;

    // Title and header.
    const kindWord = tabular ? "tabular" : draw ? "drawing" : "image";
    const sub = draw && digits ? "Handwritten digit classifier" : `${titleCase(kindWord)} classifier · ${n} classes`;
    document.title = draw && digits ? "Digit Lab · handwritten digit classifier" : `${labName} · ${n}-class ${kindWord} classifier`;
    $("#brand-name").textContent = labName;
    $("#brand-sub").textContent = sub;
    $("#brand").setAttribute("aria-label", `${labName}, back to the top`);

    // The input card: a drawing pad for digit-style tasks, an upload area otherwise.
    const shape = task.input || {};
    const shapeText = Number.isFinite(shape.width) && Number.isFinite(shape.height)
      ? `The model reads ${shape.width}×${shape.height} ${shape.channels === 3 ? "colour" : "grey"} images; any size is fitted.`
      : "";
    pad.hidden = !draw;
    $("#pad-hint").hidden = !draw;
    $("#upload-zone").hidden = draw;
    padWrap.hidden = tabular;
    $("#upload-label").hidden = tabular;
    $("#row-form").hidden = !tabular;
    padWrap.classList.toggle("is-upload", !draw);
    $("#upload-shape").textContent = shapeText;
    if (tabular) {
      buildRowForm(task.table.features);
      $("#draw-title").textContent = "Enter a row";
      $("#draw-sub").textContent = `${task.table.features.length} features; the model names its ${task.table.label || "class"}: ${listClasses(classes)}.`;
      $("#pad-tips").replaceChildren(el("span", {}, el("kbd", { text: "Enter" }), " predict"));
      $("#result-sub").textContent = "What the model makes of your row.";
      $("#result-empty-text").replaceChildren("Fill in the features and press ", el("strong", { text: "Predict" }), ".");
    } else if (draw) {
      $("#draw-title").textContent = `Draw a ${words.thing}`;
      $("#draw-sub").textContent = "Mouse, pen or finger — or drop an image file here.";
      pad.setAttribute("aria-label", `Drawing pad: draw one ${words.thing} ${zeroToNine ? "from 0 to 9" : `(${listClasses(classes)})`}. Press Enter to predict, Escape to clear.`);
      $("#pad-tips").replaceChildren(el("span", { text: "Draw large and centred" }),
        el("span", {}, el("kbd", { text: "Enter" }), " predict"), el("span", {}, el("kbd", { text: "Esc" }), " clear"));
      $("#result-sub").textContent = `What the model sees in your ${digits ? "digit" : "drawing"}.`;
      $("#result-empty-text").replaceChildren(`Draw a ${words.thing} and press `, el("strong", { text: "Predict" }), ", or upload a picture of one.");
    } else {
      $("#draw-title").textContent = "Choose an image";
      $("#draw-sub").textContent = `Upload a picture, or drop one here. Classes: ${listClasses(classes)}.`;
      $("#pad-tips").replaceChildren(el("span", { text: "PNG, JPEG, GIF, BMP, WebP or TIFF" }));
      $("#result-sub").textContent = "What the model sees in your image.";
      $("#result-empty-text").replaceChildren("Choose or drop an image, and the model names its class.");
      // Anything drawn or shown on the pad before the task was known goes; a chosen file stays.
      if (state.source === "upload" && state.uploadFile) showUpload(state.uploadFile);
      else resetPad();
    }
    $("#file-input").setAttribute("aria-label", `Upload an image ${draw ? `of a ${words.thing}` : "to classify"}`);

    // The answer, the bars and the feedback choices.
    $("#result-digit").setAttribute("aria-label", `Predicted ${words.noun}`);
    $("#fb-labels-title").textContent = digits ? "Which digit did you mean?" : "Which class is it?";
    $("#confusion-sub").textContent = `True ${words.noun} (rows) against predicted ${words.noun} (columns) on the test set.`;
    buildProbs();
    buildClassPicker();
    if (state.models) renderPlots(state.models);
    if (state.history) renderHistory(state.history);
  }

  // ------------------------------------------------------------------ a tabular task's row

  // One input per feature, in schema order: numbers with their range, categories as a select.
  function buildRowForm(features) {
    const form = $("#row-form");
    form.replaceChildren(...features.map((f, i) => {
      const id = `feature-${i}`;
      let control;
      let range = "";
      if (f.type === "category") {
        control = el("select", { id, name: f.name, required: "" },
          el("option", { value: "", text: "choose…" }),
          ...(f.values || []).map((v) => el("option", { value: v, text: v })));
      } else {
        control = el("input", { id, name: f.name, type: "number", step: "any", required: "", inputmode: "decimal" });
        if (Number.isFinite(f.min)) control.min = String(f.min);
        if (Number.isFinite(f.max)) control.max = String(f.max);
        if (Number.isFinite(f.min) || Number.isFinite(f.max)) range = `${f.min ?? "…"} – ${f.max ?? "…"}`;
      }
      control.addEventListener("input", () => control.removeAttribute("aria-invalid"));
      return el("label", { for: id }, el("span", { text: f.name }), range ? el("span", { class: "range", text: range }) : "", control);
    }));
  }

  // The form's row as `{name: value}`, or null after marking the first field that is not filled
  // in right (the server checks again, and names the field when it refuses).
  function readRow() {
    const row = {};
    for (const f of state.task.table.features) {
      const control = $("#row-form").elements.namedItem(f.name);
      if (!control.checkValidity() || control.value === "") {
        control.setAttribute("aria-invalid", "true");
        control.focus();
        showError($("#input-error"), `${f.name}: ${control.validationMessage || "fill this in"}`);
        return null;
      }
      row[f.name] = f.type === "category" ? control.value : Number(control.value);
    }
    return row;
  }

  $("#row-form").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); predict(); }
  });

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
    padWrap.classList.remove("has-ink", "has-preview");
    $("#pad-source").hidden = true;
    const preview = $("#upload-preview");
    preview.hidden = true;
    preview.removeAttribute("src");
    if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
    state.previewUrl = null;
  }

  // Where to send the user to give another input: the pad, or the file chooser.
  function focusInput() {
    if (state.words?.tabular) $("#row-form").elements[0]?.focus();
    else if (state.words && !state.words.draw) $("#file-input").focus();
    else pad.focus();
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

  $("#clear-btn").addEventListener("click", () => {
    if (state.words?.tabular) { $("#row-form").reset(); $("#row-form").elements[0]?.focus(); return; }
    resetPad(); focusInput();
  });
  $("#predict-btn").addEventListener("click", () => predict());

  // ------------------------------------------------------------------ upload and drag-and-drop

  async function showUpload(file) {
    resetPad();
    state.source = "upload";
    state.uploadFile = file;
    const source = $("#pad-source");
    source.textContent = file.name || "Uploaded image";
    source.hidden = false;
    if (state.words && !state.words.draw) {
      // No pad: the chosen image itself is the preview.
      const preview = $("#upload-preview");
      state.previewUrl = URL.createObjectURL(file);
      preview.alt = `Preview of ${file.name || "the uploaded image"}`;
      preview.onload = () => {
        preview.style.imageRendering = preview.naturalWidth < 96 ? "pixelated" : "";
        preview.hidden = false;
        padWrap.classList.add("has-preview");
      };
      preview.onerror = () => { preview.hidden = true; }; // the server decides and explains
      preview.src = state.previewUrl;
      return;
    }
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
    if (state.words?.tabular) {
      const features = readRow();
      if (!features) return;
      request = { method: "POST", json: { features }, context: "row" };
    } else if (state.source === "upload" && state.uploadFile) {
      const form = new FormData();
      form.append("file", state.uploadFile, state.uploadFile.name || "upload");
      request = { method: "POST", form, context: "image" };
    } else if (state.hasInk && !pad.hidden) {
      request = { method: "POST", json: { image: pad.toDataURL("image/png") }, context: "image" };
    } else if (state.words && !state.words.draw) {
      showError(errorBox, "No image chosen yet. Choose one with Upload, or drop it here.");
      focusInput();
      return;
    } else {
      showError(errorBox, `The pad is empty. Draw a ${state.words?.thing || "digit"} first, or upload an image.`);
      pad.focus();
      return;
    }
    const hadResult = !$("#result-body").hidden;
    setBusy(button, true, "Predicting…");
    if (!hadResult) showResultPane("loading");
    else $("#result-card").setAttribute("aria-busy", "true");
    try {
      // The answer is shown in the task's class names: know them first.
      await ensureTask();
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

  // One bar per class, in class order; for many classes the bars are made per answer instead
  // (the likeliest TOP_BARS and one for the rest).
  function buildProbs() {
    const { classes } = state.task;
    const list = $("#probs");
    const longest = Math.max(...classes.map((c) => c.length));
    list.classList.toggle("is-words", state.words.words);
    list.style.setProperty("--label-w", longest <= 2 ? "18px" : `calc(${Math.min(longest, 14)}ch + 4px)`);
    list.setAttribute("aria-label", classes.length <= MANY_CLASSES
      ? `Probability of each ${state.words.noun}`
      : `Probabilities of the ${TOP_BARS} likeliest of ${classes.length} classes`);
    list.replaceChildren(...(classes.length <= MANY_CLASSES ? classes.map((_, i) => barItem(i)) : []));
  }

  function barItem(i) {
    const name = state.task.classes[i];
    return el("li", { "data-label": name, "data-index": i },
      el("span", { class: "d", text: name, title: name.length > 2 ? name : undefined }),
      el("span", { class: "bar", role: "presentation" }, el("span", { class: "fill" })),
      el("span", { class: "pct", text: "–" }));
  }

  function setBar(li, v, top) {
    li.classList.toggle("top", top);
    $(".fill", li).style.width = `${Math.max(v * 100, v > 0 ? 0.6 : 0)}%`;
    $(".pct", li).textContent = pct(v);
    li.setAttribute("aria-label", `${li.dataset.label}: ${pct(v)}`);
  }

  function renderBars(probs, top) {
    const { classes } = state.task;
    const list = $("#probs");
    if (classes.length > MANY_CLASSES) {
      const order = classes.map((_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
      const shown = order.slice(0, TOP_BARS);
      const rest = order.slice(TOP_BARS).reduce((sum, i) => sum + probs[i], 0);
      const others = classes.length - shown.length;
      list.replaceChildren(...shown.map(barItem), el("li", {
        class: "more", "aria-label": `${others} other classes: ${pct(rest)} together`,
      }, el("span", { class: "d", "aria-hidden": "true", text: "…" }),
      el("span", { class: "more-text", text: `${others} more class${others === 1 ? "" : "es"}` }),
      el("span", { class: "pct", text: pct(rest) })));
      void list.offsetWidth; // let the new bars grow from zero
    }
    $$("#probs li[data-index]").forEach((li) => {
      const i = Number(li.dataset.index);
      setBar(li, probs[i], i === top);
    });
  }

  // The probabilities in class order, from an object keyed by class name (or a plain array).
  function probabilityList(given, classes) {
    if (Array.isArray(given)) return classes.map((_, i) => Number(given[i]) || 0);
    if (given && typeof given === "object") return classes.map((c) => Number(given[c]) || 0);
    return classes.map(() => 0);
  }

  function renderPrediction(p) {
    const { classes } = state.task;
    const probs = probabilityList(p.probabilities, classes);
    let index = Number.isInteger(p.index) && p.index >= 0 && p.index < classes.length ? p.index : classes.indexOf(String(p.label));
    if (index < 0) index = probs.indexOf(Math.max(...probs));
    const label = typeof p.label === "string" && p.label ? p.label : className(index);
    const confidence = Number.isFinite(p.confidence) ? p.confidence : probs[index];
    state.prediction = { ...p, label, index };
    state.feedbackSent = false;
    const answer = $("#result-digit");
    // Long names may break after `_`, `-` or `.` (<wbr> adds no text).
    answer.replaceChildren(...label.split(/(?<=[_.-])/).flatMap((part, i) => (i ? [el("wbr"), part] : [part])));
    answer.title = label.length > 2 ? label : "";
    answer.dataset.len = label.length <= 3 ? String(label.length) : label.length <= 6 ? "m" : label.length <= 10 ? "l" : "xl";
    answer.setAttribute("aria-label", `Predicted ${state.words.noun}: ${label}`);
    answer.classList.remove("pop");
    void answer.offsetWidth;
    answer.classList.add("pop");
    $("#result-confidence").textContent = pct(confidence);
    const unsure = Number.isFinite(confidence) && confidence < 0.6;
    $("#result-card").classList.toggle("is-unsure", unsure);
    $("#fb-title").textContent = unsure ? "The model is unsure. What is it really?" : "Did the model get it right?";
    $("#conf-fill").style.width = `${Math.max(0, Math.min(1, confidence || 0)) * 100}%`;
    $("#model-version").textContent = p.model_version || "unknown";
    $("#model-version").title = p.model_version || "";
    $("#result-sub").textContent = `Request ${String(p.request_id || "").slice(0, 8)} · ${timeFmt.format(new Date())}`;
    renderBars(probs, index);
    resetFeedback();
    showResultPane("body");
    // On a narrow screen the answer is below the pad: bring it into view.
    const card = $("#result-card").getBoundingClientRect();
    if (window.innerWidth < 980 && (card.top > window.innerHeight * 0.6 || card.bottom < 0)) {
      $("#result-card").scrollIntoView({ block: "start" });
    }
  }

  // ------------------------------------------------------------------ feedback

  // "Wrong → which class is it?": a button per class for up to MANY_CLASSES classes, else a
  // search field over the class names (a datalist) with a Send button. Every choice carries
  // its class name in data-label.
  function buildClassPicker() {
    const { classes } = state.task;
    const { noun } = state.words;
    const n = classes.length;
    const picker = $("#digit-picker");
    picker.replaceChildren();
    picker.classList.toggle("is-words", state.words.words);
    picker.classList.toggle("is-search", n > MANY_CLASSES);
    if (n <= MANY_CLASSES) {
      const cols = n <= 10 ? n : Math.ceil(n / 2);
      picker.style.setProperty("--picker-cols", String(cols));
      picker.style.setProperty("--picker-cols-narrow", String(Math.ceil(n / Math.ceil(n / 5))));
      for (const name of classes) {
        picker.append(el("button", {
          type: "button", class: "btn btn-ghost", "data-label": name, "aria-label": `The true ${noun} is ${name}`,
          title: name.length > 2 ? name : undefined,
          onclick: (e) => sendFeedback("wrong", name, e.currentTarget),
        }, el("span", { class: "pick-text", text: name })));
      }
      return;
    }
    const input = el("input", {
      type: "text", id: "label-search", list: "label-options", autocomplete: "off", spellcheck: "false",
      placeholder: `Type to search ${n} classes`, "aria-label": `The true ${noun}: type to search the ${n} classes, then press Enter`,
    });
    const send = el("button", { type: "submit", class: "btn btn-danger", id: "label-send", "aria-label": "Send the true class" }, "Send");
    const form = el("form", { class: "label-search", onsubmit: (e) => {
      e.preventDefault();
      const name = matchClass(input.value);
      if (!name) {
        showError($("#fb-error"), input.value.trim()
          ? `“${input.value.trim()}” is not one of the ${n} classes. Pick one from the list.`
          : "Type the true class, then pick it from the list.");
        input.focus();
        return;
      }
      input.value = name;
      sendFeedback("wrong", name, send);
    } }, input, send, el("datalist", { id: "label-options" }, classes.map((c) => el("option", { value: c }))));
    picker.append(form);
  }

  // The class a typed text names: exactly, ignoring case, or as the start of only one.
  function matchClass(text) {
    const { classes } = state.task;
    const t = text.trim();
    if (!t) return null;
    if (classes.includes(t)) return t;
    const lower = t.toLowerCase();
    const same = classes.filter((c) => c.toLowerCase() === lower);
    if (same.length === 1) return same[0];
    const starts = classes.filter((c) => c.toLowerCase().startsWith(lower));
    return starts.length === 1 ? starts[0] : null;
  }

  const feedbackControls = () => $$("#feedback .fb-buttons .btn, #digit-picker button, #digit-picker input");

  function resetFeedback() {
    const search = $("#label-search");
    if (search) search.value = "";
    feedbackControls().forEach((b) => {
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

  $("#fb-correct").addEventListener("click", (e) => sendFeedback("correct", state.prediction?.label, e.currentTarget));
  $("#fb-unsure").addEventListener("click", (e) => sendFeedback("unsure", null, e.currentTarget));
  $("#fb-wrong").addEventListener("click", () => {
    if (state.feedbackSent) return;
    const open = $("#fb-labels").hidden;
    $("#fb-labels").hidden = !open;
    $("#fb-wrong").setAttribute("aria-expanded", String(open));
    $("#fb-wrong").setAttribute("aria-pressed", String(open));
    if (open) {
      const first = $("#label-search") || $$("#digit-picker .btn").find((b) => b.dataset.label !== state.prediction?.label);
      first?.focus();
    }
  });

  async function sendFeedback(kind, label, button) {
    if (!state.prediction || state.feedbackSent) return;
    const body = { request_id: state.prediction.request_id, kind };
    if (label !== null && label !== undefined) body.label = label;
    showError($("#fb-error"), "");
    const buttons = feedbackControls();
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
    const wrong = state.words?.noun === "digit" ? `it is a ${label}` : `the true class is ${label}`;
    const what = kind === "correct" ? `Marked correct (${label}).` : kind === "wrong" ? `Marked wrong: ${wrong}.` : "Marked as unsure.";
    const text = el("div", { class: "fb-done-text" }, el("strong", { text: r && r.duplicate ? "Already saved. " : "Thanks! " }), what);
    if (r && Number.isFinite(r.current_count) && Number.isFinite(r.threshold)) {
      text.append(el("br"), `${r.current_count} / ${r.threshold} toward the next retrain`);
      if (r.sub_set !== undefined && r.sub_set !== null) text.append(` (${subSetName(r.sub_set)})`);
      text.append(".");
    }
    if (r && r.retrain_triggered) text.append(el("br"), el("strong", { text: "That filled the batch: a retrain has started." }));
    const draw = !state.words || state.words.draw;
    const again = el("button", {
      type: "button", class: "btn btn-small btn-ghost", text: draw ? "Draw another" : "Choose another",
      onclick: () => {
        resetPad();
        padWrap.scrollIntoView({ block: "center" });
        if (draw) pad.focus();
        else $("#file-input").click();
      },
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

  $("#retry-btn").addEventListener("click", () => { loadTask(); refreshStatus(); loadModels(); loadHistory(); });

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
    // The accuracy bars span 90-100% (MNIST's range) unless some version is below it.
    const floor = versions.some((v) => Number.isFinite(v.metrics?.[ACC_KEY]) && v.metrics[ACC_KEY] < 0.9) ? 0 : 0.9;
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
      if (v.shadow) {
        const s = m.shadow || {};
        const agreement = Number.isFinite(s.agreement) ? `, ${pct(s.agreement)} agreement` : "";
        badges.push(el("span", {
          class: "pill", "data-tone": "success", text: "Shadow",
          title: `Runs beside the serving model, never answering: ${s.predictions ?? 0} prediction${s.predictions === 1 ? "" : "s"}${agreement}; on feedback right alone ${s.feedback?.shadow_only ?? 0} times, the serving model alone ${s.feedback?.serving_only ?? 0}`,
        }));
      }
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
            Number.isFinite(acc) ? el("span", { class: "acc-bar", "aria-hidden": "true" }, el("span", { style: `width:${Math.max(0, Math.min(1, (acc - floor) / (1 - floor))) * 100}%` })) : null)),
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

  // The heat map of confusion[true][predicted], in the task's class order. Its size follows the
  // class count: labels are cut to 12 characters (the full name in a tooltip), the font shrinks
  // for many classes, and column labels wider than a cell turn 45°, or 90° when cells are too
  // narrow for slanted labels to clear each other.
  function drawConfusion(model, serving) {
    const figure = $("#confusion-plot");
    if (!model) {
      figure.replaceChildren(el("div", { class: "plot-empty", text: "No confusion matrix recorded for the serving model yet." }));
      return;
    }
    if (!state.task) {
      figure.replaceChildren(el("div", { class: "skeleton skeleton-plot" }));
      return;
    }
    const { classes } = state.task;
    const { noun } = state.words;
    const n = classes.length;
    const cm = model.confusion;
    if (cm.length !== n || !cm.every((row) => Array.isArray(row) && row.length === n && row.every((c) => Number.isFinite(c)))) {
      figure.replaceChildren(el("div", {
        class: "plot-empty",
        text: `No confusion matrix for this task: ${model.version} recorded ${cm.length} classes, the task has ${n}.`,
      }));
      return;
    }
    const css = getComputedStyle(document.documentElement);
    const base = hexToRgb(css.getPropertyValue("--surface-2"), [248, 249, 252]);
    const good = [79, 70, 229];
    const bad = [225, 29, 72];
    const avail = figure.clientWidth || 360;
    const fs = n <= 12 ? 11 : n <= 20 ? 10 : n <= 30 ? 9 : 8;
    const fontStyle = fs === 11 ? undefined : `font-size:${fs}px`;
    const MAX_CHARS = 12;
    const shown = classes.map((c) => (c.length > MAX_CHARS ? `${c.slice(0, MAX_CHARS - 1)}…` : c));
    const labelW = Math.max(...shown.map((c) => c.length)) * fs * 0.62;
    const left = Math.max(44, Math.ceil(28 + labelW + 8));
    const cellFor = (right) => Math.max(n <= 10 ? 20 : 10,
      Math.min(n < 10 ? Math.min(64, Math.floor(340 / n)) : 34, Math.floor((avail - left - right) / n)));
    let right = 8;
    let cell = cellFor(right);
    let rotate = labelW > cell - 4 ? 45 : 0;
    if (rotate && cell * 0.71 < fs + 3) rotate = 90;
    if (rotate === 45) {
      right = Math.max(8, Math.ceil(labelW * 0.71 - cell / 2 + 6));
      cell = cellFor(right);
    }
    const top = rotate === 90 ? Math.ceil(26 + labelW + 4) : rotate ? Math.ceil(26 + labelW * 0.71 + fs * 0.5) : 40;
    const size = cell * n;
    const W = left + size + right;
    const rowTotals = cm.map((row) => row.reduce((a, b) => a + b, 0));
    let total = 0;
    let correct = 0;
    let maxOff = 0;
    cm.forEach((row, i) => row.forEach((c, j) => {
      total += c;
      if (i === j) correct += c;
      else if (rowTotals[i]) maxOff = Math.max(maxOff, c / rowTotals[i]);
    }));
    const root = svg("svg", {
      viewBox: `0 0 ${W} ${top + size + 10}`, role: "img",
      "aria-label": `Confusion matrix of ${model.version} over ${n} classes: ${pct(total ? correct / total : NaN, 2)} correct`,
      // Never drawn larger than its natural size (few classes), nor squeezed into 400px (many).
      style: W > 400 || n < 10 ? `max-width:${W}px` : undefined,
    });
    root.append(svg("text", { x: left + size / 2, y: 12, "text-anchor": "middle", class: "axis-title", text: `Predicted ${noun}` }));
    root.append(svg("text", { x: 10, y: top + size / 2, "text-anchor": "middle", class: "axis-title", transform: `rotate(-90 10 ${top + size / 2})`, text: `True ${noun}` }));
    const tip = (k) => (shown[k] !== classes[k] ? svg("title", { text: classes[k] }) : null);
    for (let k = 0; k < n; k++) {
      const cx = left + k * cell + cell / 2;
      const lx = rotate === 90 ? cx + fs * 0.35 : cx - fs * 0.3;
      root.append(rotate
        ? svg("text", { x: lx, y: top - 6, "text-anchor": "start", style: fontStyle, transform: `rotate(-${rotate} ${lx} ${top - 6})`, text: shown[k] }, tip(k))
        : svg("text", { x: cx, y: top - 8, "text-anchor": "middle", style: fontStyle, text: shown[k] }, tip(k)));
      root.append(svg("text", { x: left - 8, y: top + k * cell + cell / 2 + +(fs * 0.36).toFixed(1), "text-anchor": "end", style: fontStyle, text: shown[k] }, tip(k)));
    }
    const textColor = css.getPropertyValue("--text").trim() || "#111827";
    const cellFont = cell < 27 ? 8 : 9.5;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const c = cm[i][j];
        const rate = rowTotals[i] ? c / rowTotals[i] : 0;
        const t = i === j ? 0.15 + 0.85 * rate : maxOff > 0 ? Math.sqrt(rate / maxOff) * 0.85 : 0;
        const fill = c === 0 ? mix(base, base, 0) : mix(base, i === j ? good : bad, t);
        const x = left + j * cell;
        const y = top + i * cell;
        root.append(svg("rect", { class: "cell", x, y, width: cell, height: cell, rx: cell < 16 ? 2 : 3, fill },
          svg("title", { text: `True ${classes[i]}, predicted ${classes[j]}: ${c} (${pct(rate, 1)} of ${rowTotals[i]})` })));
        // Counts too wide for their cell are left to the tooltip (many classes only).
        if (c > 0 && (n <= 10 || String(c).length * cellFont * 0.62 <= cell - 3)) {
          root.append(svg("text", {
            class: "cell-text", x: x + cell / 2, y: y + cell / 2 + 3.5, "text-anchor": "middle",
            style: `fill:${t > 0.5 ? "#fff" : textColor};font-size:${cellFont}px`, text: c,
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
  const seriesName = (k) => (k === ACC_KEY ? (!state.task || state.task.name === "mnist" ? "MNIST test set" : "Test set") : k.replace(/_/g, " ").replace(/\baccuracy\b/, "").trim() || k);

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
      state.history = Array.isArray(items) ? items : items?.items || [];
      renderHistory(state.history);
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
    if (fb.kind === "wrong") return el("span", { class: "pill", "data-tone": "danger", text: `✗ Was ${className(fb.label)}`, title: `Was ${className(fb.label)}` });
    return el("span", { class: "pill", "data-tone": "warning", text: "Unsure" });
  }

  function renderHistory(items) {
    const list = $("#history-list");
    list.replaceChildren();
    if (!items.length) {
      const what = state.words?.tabular ? "rows" : state.words && !state.words.draw ? "images" : "drawings";
      list.append(el("li", { class: "history-empty", text: `No predictions yet. Your ${what} will show up here.` }));
      return;
    }
    for (const h of items) {
      const at = parseTime(h.at);
      const label = typeof h.label === "string" && h.label ? h.label : className(Number.isInteger(h.index) ? h.index : h.digit);
      list.append(el("li", { class: "history-item", "data-request-id": h.request_id || "" },
        h.thumbnail
          ? el("img", { src: h.thumbnail, alt: `Input that was read as ${label}`, width: 56, height: 56 })
          : el("span", { class: "ghost-digit", style: "width:56px;height:56px;font-size:24px;border-radius:8px", "aria-hidden": "true", text: "?" }),
        el("div", { class: "h-main" },
          el("div", { class: "h-top" },
            el("span", { class: `h-digit${label.length > 2 ? " is-word" : ""}`, "aria-label": `Answer ${label}`, title: label.length > 2 ? label : undefined, text: label }),
            el("span", { class: "h-conf", text: pct(h.confidence) })),
          h.features ? el("div", { class: "h-features", text: Object.entries(h.features).map(([k, v]) => `${k} ${v}`).join(" · ") }) : "",
          feedbackPill(h.feedback),
          el("time", { datetime: h.at || "", title: `${at ? at.toLocaleString() : ""} · ${h.model_version || ""}`, text: relTime(at) }))));
    }
  }

  // ------------------------------------------------------------------ label review

  const reviewToken = () => sessionStorage.getItem(TOKEN_KEYS.feedback) || undefined;

  async function loadReview() {
    const button = $("#review-refresh");
    button.classList.add("is-loading");
    try {
      // The class names fill each sample's relabel choice.
      const [queue] = await Promise.all([api("/api/review", { token: reviewToken(), context: "feedback" }), ensureTask().catch(() => null)]);
      showError($("#review-error"), "");
      renderReview(queue);
    } catch (err) {
      const why = err.status === 401 ? "It needs the feedback token: it shows here once feedback was sent with it." : err.message;
      showError($("#review-error"), `Could not load the review queue. ${why}`);
    } finally {
      button.classList.remove("is-loading");
    }
  }
  $("#review-refresh").addEventListener("click", loadReview);

  async function decide(item, action, label, li) {
    const buttons = $$("button, select", li);
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const json = { sha256: item.sha256, action };
      if (label !== undefined) json.label = label;
      await api("/api/review", { method: "POST", json, token: reviewToken(), context: "feedback" });
      const what = action === "relabel" ? `relabelled ${className(label)}` : action === "accept" ? "accepted" : "rejected";
      toast(`Sample ${item.sha256.slice(0, 8)} ${what}; the next retrain follows it.`, "success");
      li.remove();
      const left = $$("#review-list .review-item").length;
      $("#review-count").textContent = String(left);
      if (!left) renderReview({ suspects: [], pending: 0 });
    } catch (err) {
      buttons.forEach((b) => { b.disabled = false; });
      showError($("#review-error"), err.message);
    }
  }

  function renderReview(queue) {
    const list = $("#review-list");
    list.replaceChildren();
    const items = queue.suspects || [];
    $("#review-summary").replaceChildren(
      el("span", { id: "review-count", text: String(items.length) }),
      ` of ${queue.pending ?? 0} undecided feedback samples held for review${queue.serving ? ` by ${queue.serving}` : ""}.` +
        (queue.label_noise === false ? " (The label check is off: they train as given.)" : ""));
    if (!items.length) {
      list.append(el("li", { class: "history-empty", text: "Nothing to review: every label looks plausible to the model." }));
      return;
    }
    const classes = state.task?.classes || [];
    for (const s of items) {
      const relabel = el("select", { "aria-label": `Right label for sample ${s.sha256.slice(0, 8)}` },
        ...classes.map((c) => el("option", { value: c, text: c, selected: c === s.predicted ? "" : undefined })));
      const li = el("li", { class: "history-item review-item", "data-sha256": s.sha256 },
        s.thumbnail
          ? el("img", { src: s.thumbnail, alt: `Sample labelled ${s.label}`, width: 56, height: 56 })
          : el("span", { class: "ghost-digit", style: "width:56px;height:56px;font-size:24px;border-radius:8px", "aria-hidden": "true", text: "?" }),
        el("div", { class: "h-main" },
          el("div", { class: "h-top" },
            el("span", { class: `h-digit${s.label.length > 2 ? " is-word" : ""}`, "aria-label": `Labelled ${s.label}`, text: s.label }),
            el("span", { class: "h-conf", text: `model: ${s.predicted} ${pct(s.confidence)}` })),
          s.features ? el("div", { class: "h-features", text: Object.entries(s.features).map(([k, v]) => `${k} ${v}`).join(" · ") }) : "",
          el("span", { class: "muted small", text: `sub_set ${s.sub_set} · label at ${(100 * s.p_given).toFixed(2)}%` }),
          el("div", { class: "review-actions" },
            el("button", { type: "button", class: "btn btn-ghost btn-small", "data-action": "accept", text: "Accept" }),
            relabel,
            el("button", { type: "button", class: "btn btn-ghost btn-small", "data-action": "relabel", text: "Relabel" }),
            el("button", { type: "button", class: "btn btn-ghost btn-small", "data-action": "reject", text: "Reject" }))));
      $$("button", li).forEach((b) => b.addEventListener("click", () => {
        const action = b.dataset.action;
        decide(s, action, action === "relabel" ? relabel.value : undefined, li);
      }));
      list.append(li);
    }
  }

  // ------------------------------------------------------------------ start

  resetPad();
  showResultPane("empty");
  loadTask();
  refreshStatus();
  loadModels();
  loadHistory();
  loadReview();
  setInterval(() => { if (document.visibilityState === "visible") loadModels(); }, 30000);
})();
