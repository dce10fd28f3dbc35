// The dev server's dashboard. Plain JavaScript, no build step, no dependencies.
//
// Everything comes from the server's own REST API: /v1/tasks, /v1/task-runs (with the
// status, taskSlug and rootTaskRunId filters), /v1/task-runs/{id} (GET, DELETE),
// /v1/logs and the /v1/task-runs/events stream, plus /dev/tasks for the parameters and
// options each task registered. Lists are polled; an open run also listens to the event
// stream (read with fetch, so that it can carry an Authorization header) and refreshes
// the moment a run in its tree ends.
//
// Every string that comes from the server reaches the page through textContent or
// setAttribute, never as markup.
"use strict";

(() => {
  const TERMINAL = new Set(["completed", "succeeded", "failed", "canceled"]);
  const TOKEN_KEY = "render-workflows-dev-token";
  const PAGE_LIMIT = 100; // the API's largest page
  const RUNS_STEP = 50; // runs shown at first, and added by "Show more"
  const TREE_MAX = 2000; // runs read for one tree
  const LOG_PAGES_PER_TICK = 20; // at most this many pages of 100 lines per refresh
  const LIST_POLL_MS = 2000;
  const TASKS_POLL_MS = 10000;
  const RUN_POLL_ACTIVE_MS = 1000;
  const RUN_POLL_IDLE_MS = 4000;
  const STREAM_RETRY_MS = 2000;

  const $ = (id) => document.getElementById(id);

  // -- small helpers --------------------------------------------------------------

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = String(value);
      else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  function runHref(id) {
    return "#/runs/" + encodeURIComponent(id);
  }

  function runLink(id, props) {
    return h("a", Object.assign({ href: runHref(id) }, props || {}), h("code", { text: id }));
  }

  function badge(status) {
    const value = String(status || "unknown");
    return h("span", { class: "badge " + value.replace(/[^a-z_-]/gi, ""), text: value });
  }

  function isTerminal(status) {
    return TERMINAL.has(status);
  }

  function parseTime(iso) {
    if (!iso) return null;
    // Servers may send nanoseconds; Date wants at most milliseconds.
    const ms = Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1"));
    return Number.isNaN(ms) ? null : ms;
  }

  const pad = (n, width = 2) => String(n).padStart(width, "0");

  function formatTime(iso) {
    const ms = parseTime(iso);
    if (ms === null) return "";
    const d = new Date(ms);
    const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
    if (d.toDateString() === new Date().toDateString()) return clock;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock}`;
  }

  function timeCell(iso) {
    return h("td", { class: "mono", title: iso || undefined, text: formatTime(iso) });
  }

  function formatDuration(ms) {
    if (ms === null || ms < 0) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${pad(Math.floor(s % 60))}s`;
    return `${Math.floor(m / 60)}h ${pad(m % 60)}m`;
  }

  function duration(startIso, endIso, status) {
    const start = parseTime(startIso);
    if (start === null) return "";
    let end = parseTime(endIso);
    if (end === null) {
      if (isTerminal(status)) return "";
      end = Date.now();
    }
    return formatDuration(end - start);
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function show(el, visible) {
    el.hidden = !visible;
  }

  function setMessage(el, text) {
    el.textContent = text || "";
    show(el, Boolean(text));
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  // -- token and API --------------------------------------------------------------

  let token = "";
  try { token = sessionStorage.getItem(TOKEN_KEY) || ""; } catch (_) { /* storage may be off */ }

  function rememberToken(value) {
    token = value;
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch (_) { /* storage may be off */ }
  }

  // "#token=..." (alone or after the route, "#/runs/ID&token=...") is read once and
  // taken out of the address bar, so that it does not linger in history or screenshots.
  function takeTokenFromFragment() {
    const parts = location.hash.replace(/^#/, "").split("&");
    const keep = [];
    let found = null;
    for (const part of parts) {
      if (part.startsWith("token=")) found = decodeURIComponent(part.slice("token=".length));
      else if (part) keep.push(part);
    }
    if (found === null) return;
    rememberToken(found);
    const rest = keep.length ? "#" + keep.join("&") : "";
    history.replaceState(null, "", location.pathname + location.search + rest);
  }

  function currentPath() {
    const first = location.hash.replace(/^#/, "").split("&")[0];
    return first.startsWith("/") ? first : "/";
  }

  function withAuth(headers) {
    const out = Object.assign({}, headers);
    if (token) out.Authorization = "Bearer " + token;
    return out;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function setConnection(kind, text) {
    const el = $("connection");
    el.className = "connection " + kind;
    el.textContent = text;
  }

  async function api(method, path, bodyText) {
    const headers = withAuth({ Accept: "application/json" });
    if (bodyText !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, { method, headers, body: bodyText, cache: "no-store" });
    } catch (_) {
      setConnection("down", "cannot reach the dev server");
      throw new ApiError(0, "cannot reach the dev server");
    }
    if (response.status === 401 || response.status === 403) {
      setConnection("down", "token needed");
      show($("token-bar"), true);
      throw new ApiError(response.status, "this server needs an API token (see the bar at the top)");
    }
    setConnection("live", "connected");
    if (response.status === 204) return null;
    const text = await response.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (_) { doc = null; }
    if (!response.ok) {
      const message = doc && typeof doc.message === "string" ? doc.message : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return doc;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") search.append(key, String(value));
    }
    return search.toString();
  }

  // Cursor pagination (each item carries its cursor; a short page is the last one).
  async function readAll(path, params, pick, max) {
    const out = [];
    let cursor = null;
    while (out.length < max) {
      const limit = Math.min(PAGE_LIMIT, max - out.length);
      const page = await api("GET", `${path}?${query(Object.assign({}, params, { limit, cursor }))}`);
      if (!Array.isArray(page)) break;
      for (const item of page) out.push(pick(item));
      if (page.length < limit) break;
      cursor = page[page.length - 1].cursor;
      if (!cursor) break;
    }
    return out;
  }

  // -- tasks ----------------------------------------------------------------------

  const tasks = { list: [], byId: new Map(), loadedAt: 0 };

  function taskName(taskId) {
    const task = tasks.byId.get(taskId);
    return task ? task.name : taskId;
  }

  function signature(task) {
    const params = (task.parameters || []).map((p) => {
      let text = String(p.name);
      if (p.type) text += `: ${p.type}`;
      if (p.has_default) text += ` = ${p.default_value !== undefined ? p.default_value : "…"}`;
      return text;
    });
    return `${task.name}(${params.join(", ")})`;
  }

  function optionsText(task) {
    const options = task.options || {};
    const bits = [];
    if (options.retry) bits.push(`retries ${options.retry.max_retries}`);
    if (options.timeout_seconds) bits.push(`timeout ${options.timeout_seconds} s`);
    if (options.plan) bits.push(`plan ${options.plan}`);
    return bits.join(" · ");
  }

  async function loadTasks() {
    const list = await readAll("/v1/tasks", {}, (item) => item.task, 1000);
    let extra = new Map();
    try {
      const doc = await api("GET", "/dev/tasks");
      if (doc && Array.isArray(doc.tasks)) extra = new Map(doc.tasks.map((t) => [t.id, t]));
      showProcesses(doc && doc.processes);
    } catch (error) {
      if (error.status === 401 || error.status === 403) throw error;
      // An older server without /dev/tasks: the page works without signatures.
    }
    tasks.list = list.map((task) => Object.assign({}, extra.get(task.id) || {}, task));
    tasks.byId = new Map(tasks.list.map((task) => [task.id, task]));
    tasks.loadedAt = Date.now();
    const slug = tasks.list.length && tasks.list[0].slug ? tasks.list[0].slug.split("/")[0] : "";
    $("workflow").textContent = slug ? `workflow ${slug}` : "";
    renderTasks();
  }

  // How task processes start (forked from a warm template, or cold), from /dev/tasks.
  function showProcesses(processes) {
    const badge = $("processes");
    if (!badge) return;
    if (!processes || typeof processes.mode !== "string") {
      badge.hidden = true;
      return;
    }
    badge.hidden = false;
    badge.textContent = processes.mode === "fork" ? "processes: forked" : "processes: cold";
    badge.title = typeof processes.description === "string" ? processes.description : "";
    badge.dataset.mode = processes.mode;
  }

  function renderTasks() {
    const items = tasks.list.map((task) =>
      h("li", { "data-task": task.name },
        h("div", { class: "grow" },
          h("div", { class: "task-name", text: task.name }),
          h("div", { class: "task-sig", text: signature(task) }),
          optionsText(task) ? h("div", { class: "task-opts", text: optionsText(task) }) : null),
        h("button", { type: "button", class: "secondary", title: `Start ${task.name}`, onclick: () => chooseTask(task.slug) }, "Run")));
    $("tasks").replaceChildren(...items);
    show($("tasks-empty"), tasks.list.length === 0);

    for (const [id, anyLabel] of [["start-task", null], ["filter-task", "any"]]) {
      const select = $(id);
      const previous = select.value;
      const options = tasks.list.map((task) => h("option", { value: task.slug, text: task.name }));
      if (anyLabel) options.unshift(h("option", { value: "", text: anyLabel }));
      select.replaceChildren(...options);
      if ([...select.options].some((o) => o.value === previous)) select.value = previous;
    }
    updateSignature();
  }

  function chooseTask(slug) {
    $("start-task").value = slug;
    updateSignature();
    $("start-input").focus();
  }

  function updateSignature() {
    const task = tasks.list.find((t) => t.slug === $("start-task").value);
    $("start-signature").textContent = task ? signature(task) : "";
  }

  // -- start form -----------------------------------------------------------------

  async function onStart(event) {
    event.preventDefault();
    const error = $("start-error");
    const ok = $("start-ok");
    setMessage(error, "");
    setMessage(ok, "");
    const slug = $("start-task").value;
    if (!slug) {
      setMessage(error, "Choose a task first.");
      return;
    }
    const text = $("start-input").value.trim();
    if (!text) {
      setMessage(error, "Input is required: [] for a task without arguments.");
      return;
    }
    let value;
    try {
      value = JSON.parse(text);
    } catch (exc) {
      setMessage(error, `Input is not valid JSON: ${exc.message}`);
      return;
    }
    if (value === null || typeof value !== "object") {
      setMessage(error, "Input must be a JSON array (positional arguments) or a JSON object (named arguments).");
      return;
    }
    const button = $("start-submit");
    button.disabled = true;
    try {
      // The text the user typed goes out as typed (it parsed, so it is valid JSON),
      // which keeps integers beyond 2^53 exact.
      const run = await api("POST", "/v1/task-runs", `{"task":${JSON.stringify(slug)},"input":${text}}`);
      ok.replaceChildren("Started ", runLink(run.id, { "data-testid": "started-run" }));
      show(ok, true);
      refreshRuns();
    } catch (exc) {
      setMessage(error, exc.message);
    } finally {
      button.disabled = false;
    }
  }

  // -- runs list ------------------------------------------------------------------

  const list = { want: RUNS_STEP, seq: 0, timer: null };

  async function refreshRuns() {
    const seq = ++list.seq;
    const params = { status: $("filter-status").value, taskSlug: $("filter-task").value };
    try {
      if (Date.now() - tasks.loadedAt > TASKS_POLL_MS) await loadTasks();
      const runs = await readAll("/v1/task-runs", params, (item) => item.taskRun, list.want + 1);
      if (seq !== list.seq) return; // a newer refresh (other filters) is under way
      renderRuns(runs.slice(0, list.want));
      show($("runs-more"), runs.length > list.want);
      setMessage($("runs-error"), "");
    } catch (exc) {
      if (seq === list.seq) setMessage($("runs-error"), exc.message);
    }
  }

  function renderRuns(runs) {
    const rows = runs.map((run) => {
      const child = run.parentTaskRunId
        ? h("span", { class: "child-mark", title: `subtask of ${run.parentTaskRunId}`, text: "↳" })
        : null;
      return h("tr", { "data-run-id": run.id, "data-status": run.status, "data-testid": "run-row" },
        h("td", null, child, runLink(run.id)),
        h("td", { text: taskName(run.taskId) }),
        h("td", null, badge(run.status)),
        timeCell(run.startedAt),
        h("td", { class: "mono", text: duration(run.startedAt, run.completedAt, run.status) }),
        h("td", { text: String((run.attempts || []).length) }));
    });
    $("runs").replaceChildren(...rows);
    show($("runs-empty"), runs.length === 0);
  }

  function startListPolling() {
    stopListPolling();
    const loop = async () => {
      if (!document.hidden) await refreshRuns();
      if (list.timer !== null) list.timer = setTimeout(loop, LIST_POLL_MS);
    };
    list.timer = setTimeout(loop, 0);
  }

  function stopListPolling() {
    if (list.timer !== null) clearTimeout(list.timer);
    list.timer = null;
    list.seq++;
  }

  // -- one run --------------------------------------------------------------------

  const run = { id: null, timer: null, busy: false, again: false, stream: null, streamKey: "", logs: null, generation: 0 };

  function openRun(id) {
    closeRun();
    run.id = id;
    run.generation++;
    run.busy = false;
    run.again = false;
    run.logs = { seen: new Set(), start: null };
    $("run-id").textContent = id;
    $("run-task").textContent = "";
    $("run-status").replaceChildren();
    $("run-status").className = "badge";
    for (const el of ["run-facts", "tree", "run-input", "run-outcome", "attempts", "logs"]) $(el).replaceChildren();
    setMessage($("run-error-msg"), "");
    show($("run-cancel"), false);
    show($("logs-empty"), true);
    refreshRun();
  }

  function closeRun() {
    if (run.timer !== null) clearTimeout(run.timer);
    run.timer = null;
    if (run.stream) run.stream.abort();
    run.stream = null;
    run.streamKey = "";
    run.id = null;
    run.generation++;
  }

  async function refreshRun() {
    if (run.id === null) return;
    if (run.busy) {
      run.again = true;
      return;
    }
    run.busy = true;
    const generation = run.generation;
    const id = run.id;
    const current = () => generation === run.generation;
    let active = true;
    try {
      if (!tasks.loadedAt) await loadTasks();
      const details = await api("GET", `/v1/task-runs/${encodeURIComponent(id)}`);
      if (!current()) return;
      renderRunDetails(details);
      const root = details.rootTaskRunId || details.id;
      const tree = await readAll("/v1/task-runs", { rootTaskRunId: root }, (item) => item.taskRun, TREE_MAX);
      if (!current()) return;
      renderTree(tree, root, details);
      await refreshLogs(id, current);
      $("logs-empty").textContent = isTerminal(details.status) ? "No output." : "No output yet.";
      const open = tree.filter((r) => !isTerminal(r.status)).map((r) => r.id);
      if (!isTerminal(details.status) && !open.includes(details.id)) open.push(details.id);
      active = open.length > 0;
      followEvents(open);
      setMessage($("run-error-msg"), "");
    } catch (exc) {
      if (current()) setMessage($("run-error-msg"), exc.message);
    } finally {
      if (current()) {
        run.busy = false;
        if (run.again) {
          run.again = false;
          refreshRun();
        } else {
          if (run.timer !== null) clearTimeout(run.timer);
          run.timer = setTimeout(() => { run.timer = null; if (!document.hidden) refreshRun(); else scheduleIdle(); },
            active ? RUN_POLL_ACTIVE_MS : RUN_POLL_IDLE_MS);
        }
      }
    }
  }

  function scheduleIdle() {
    if (run.id === null) return;
    run.timer = setTimeout(() => { run.timer = null; if (!document.hidden) refreshRun(); else scheduleIdle(); }, RUN_POLL_IDLE_MS);
  }

  function fact(label, ...value) {
    return h("div", null, h("dt", { text: label }), h("dd", null, ...value));
  }

  function renderRunDetails(details) {
    const task = tasks.byId.get(details.taskId);
    $("run-task").textContent = task ? task.name : details.taskId;
    $("run-status").replaceChildren(details.status);
    $("run-status").className = "badge " + String(details.status).replace(/[^a-z_-]/gi, "");
    $("run-status").dataset.status = details.status;
    const cancel = $("run-cancel");
    show(cancel, !isTerminal(details.status));
    cancel.disabled = false;

    const facts = [
      fact("Task", task ? task.slug : details.taskId),
      fact("Started", h("span", { title: details.startedAt || undefined, text: formatTime(details.startedAt) || "not yet" })),
      fact("Completed", h("span", { title: details.completedAt || undefined, text: formatTime(details.completedAt) || "—" })),
      fact("Duration", duration(details.startedAt, details.completedAt, details.status) || "—"),
      fact("Attempts", String((details.attempts || []).length)),
    ];
    if (details.parentTaskRunId) facts.push(fact("Parent run", runLink(details.parentTaskRunId)));
    if (details.rootTaskRunId && details.rootTaskRunId !== details.id) facts.push(fact("Root run", runLink(details.rootTaskRunId)));
    $("run-facts").replaceChildren(...facts);

    $("run-input").textContent = pretty(details.input);
    const outcome = $("run-outcome");
    const title = $("run-outcome-title");
    outcome.classList.remove("failed", "muted");
    if (details.status === "completed" || details.status === "succeeded") {
      title.textContent = "Result";
      outcome.textContent = pretty(details.results);
    } else if (details.status === "failed" || details.status === "canceled") {
      title.textContent = details.status === "failed" ? "Error" : "Canceled";
      outcome.textContent = details.error || (details.status === "canceled" ? "canceled" : "failed");
      outcome.classList.add("failed");
    } else {
      title.textContent = "Result";
      outcome.textContent = "not finished yet";
      outcome.classList.add("muted");
    }

    const attempts = (details.attempts || []).map((attempt, index) => {
      const number = typeof attempt.attempt === "number" ? attempt.attempt : index;
      return h("tr", { "data-attempt": number },
        h("td", { text: String(number + 1) }),
        h("td", null, badge(attempt.status)),
        timeCell(attempt.enqueuedAt),
        timeCell(attempt.startedAt),
        timeCell(attempt.completedAt),
        h("td", { class: "mono", text: duration(attempt.startedAt, attempt.completedAt, attempt.status) }),
        h("td", { class: "err", text: attempt.error || "" }));
    });
    $("attempts").replaceChildren(...attempts);
  }

  function renderTree(runs, rootId, details) {
    const byParent = new Map();
    const known = new Set(runs.map((r) => r.id));
    // The list is newest first; a tree reads best oldest first.
    for (const r of runs.slice().reverse()) {
      const parent = r.id === rootId || !known.has(r.parentTaskRunId) ? "" : r.parentTaskRunId;
      if (!byParent.has(parent)) byParent.set(parent, []);
      byParent.get(parent).push(r);
    }
    const branch = (parent, depth) => {
      const children = byParent.get(parent) || [];
      if (!children.length || depth > 64) return null;
      return h("ul", null, ...children.map((r) =>
        h("li", { "data-run-id": r.id },
          h("div", { class: "node" + (r.id === details.id ? " current" : "") },
            badge(r.status),
            h("span", { text: taskName(r.taskId) }),
            r.id === details.id ? h("code", { text: r.id }) : runLink(r.id),
            h("span", { class: "dur", text: duration(r.startedAt, r.completedAt, r.status) })),
          branch(r.id, depth + 1))));
    };
    const tree = branch("", 0);
    $("tree").replaceChildren(tree || h("p", { class: "muted", text: "No runs in this tree." }));
  }

  async function refreshLogs(id, current) {
    const state = run.logs;
    const box = $("logs");
    const follow = $("logs-follow").checked;
    const lines = [];
    for (let page = 0; page < LOG_PAGES_PER_TICK; page++) {
      const doc = await api("GET", `/v1/logs?${query({ taskRunId: id, limit: PAGE_LIMIT, startTime: state.start })}`);
      if (!current() || !doc || !Array.isArray(doc.logs)) return;
      let fresh = 0;
      for (const record of doc.logs) {
        if (state.seen.has(record.id)) continue;
        state.seen.add(record.id);
        fresh++;
        const stream = (record.labels || []).find((label) => label.name === "stream");
        lines.push(h("div", { class: "line " + (stream && stream.value === "stderr" ? "stderr" : "stdout") },
          h("span", { class: "ts", title: record.timestamp, text: formatTime(record.timestamp) }),
          h("span", { class: "msg", text: record.message })));
      }
      // startTime is inclusive: the next page starts at the last line's time and the
      // lines already seen are skipped by id.
      if (doc.nextStartTime) state.start = doc.nextStartTime;
      if (!doc.hasMore || fresh === 0) break;
    }
    if (!lines.length) return;
    box.append(...lines);
    show($("logs-empty"), false);
    if (follow) box.scrollTop = box.scrollHeight;
  }

  async function onCancel() {
    const id = run.id;
    if (!id) return;
    const button = $("run-cancel");
    button.disabled = true;
    try {
      await api("DELETE", `/v1/task-runs/${encodeURIComponent(id)}`);
    } catch (exc) {
      setMessage($("run-error-msg"), exc.message);
    }
    refreshRun();
  }

  // -- event stream (fetch, so that it can send a token) --------------------------

  function followEvents(ids) {
    const key = ids.slice().sort().join(",");
    if (key === run.streamKey) return;
    if (run.stream) run.stream.abort();
    run.stream = null;
    run.streamKey = key;
    if (!ids.length) return;
    const controller = new AbortController();
    run.stream = controller;
    readEvents(ids, controller.signal, () => refreshRun());
  }

  async function readEvents(ids, signal, onEvent) {
    const url = "/v1/task-runs/events?" + ids.map((id) => "taskRunIds=" + encodeURIComponent(id)).join("&");
    let lastEventId = "";
    let retry = STREAM_RETRY_MS;
    while (!signal.aborted) {
      try {
        const headers = withAuth({ Accept: "text/event-stream" });
        if (lastEventId) headers["Last-Event-ID"] = lastEventId;
        const response = await fetch(url, { headers, signal, cache: "no-store" });
        if (!response.ok || !response.body) throw new Error(`event stream: ${response.status}`);
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        let data = [];
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          for (;;) {
            const end = buffer.search(/\r\n|\r|\n/);
            // A lone "\r" at the end may be half of "\r\n": wait for more.
            if (end < 0 || (buffer[end] === "\r" && end === buffer.length - 1)) break;
            const line = buffer.slice(0, end);
            buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
            if (line === "") {
              if (data.length) onEvent(data.join("\n"));
              data = [];
              continue;
            }
            if (line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let fieldValue = colon < 0 ? "" : line.slice(colon + 1);
            if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
            if (field === "data") data.push(fieldValue);
            else if (field === "id" && !fieldValue.includes("\0")) lastEventId = fieldValue;
            else if (field === "retry" && /^\d+$/.test(fieldValue)) retry = Number(fieldValue);
          }
        }
      } catch (_) {
        if (signal.aborted) return;
      }
      await sleep(retry, signal);
    }
  }

  // -- views ----------------------------------------------------------------------

  function route() {
    takeTokenFromFragment();
    const path = currentPath();
    const match = path.match(/^\/runs\/([^/]+)$/);
    if (match) {
      stopListPolling();
      show($("view-home"), false);
      show($("view-run"), true);
      let id = match[1];
      try { id = decodeURIComponent(id); } catch (_) { /* keep it as it is */ }
      document.title = `${id} · Workflows dev server`;
      openRun(id);
    } else {
      closeRun();
      show($("view-run"), false);
      show($("view-home"), true);
      document.title = "Workflows dev server";
      startListPolling();
    }
  }

  function refreshView() {
    tasks.loadedAt = 0;
    if (run.id !== null) refreshRun();
    else refreshRuns();
  }

  function init() {
    $("start-form").addEventListener("submit", onStart);
    $("start-task").addEventListener("change", updateSignature);
    $("run-cancel").addEventListener("click", onCancel);
    for (const id of ["filter-status", "filter-task"]) {
      $(id).addEventListener("change", () => { list.want = RUNS_STEP; refreshRuns(); });
    }
    $("runs-more").addEventListener("click", () => { list.want += RUNS_STEP; refreshRuns(); });
    $("token-bar").addEventListener("submit", (event) => {
      event.preventDefault();
      rememberToken($("token-input").value.trim());
      $("token-input").value = "";
      show($("token-bar"), false);
      refreshView();
    });
    document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshView(); });
    window.addEventListener("hashchange", route);
    route();
  }

  init();
})();
