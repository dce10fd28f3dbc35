// The dev server's dashboard. Plain JavaScript, no build step, no dependencies.
//
// Runs are read, started and canceled through the server's own REST API: /v1/tasks,
// POST /v1/task-runs, /v1/task-runs/{id} (GET, DELETE), /v1/logs and the
// /v1/task-runs/events stream. The dev-only endpoints add what /v1/ has no field for:
// /dev/tasks (parameters and options), /dev/runs (the list with id-prefix and time
// search), /dev/runs/{id}/tree (the tree with timeline segments), /dev/runs/{id}/input
// and /trace ("Run again", the trace download) and /dev/metrics (the header). Lists are
// polled; an open run also listens to the event stream (read with fetch, so that it can
// carry an Authorization header) and refreshes the moment a run in its tree ends.
//
// Every string that comes from the server reaches the page through textContent or
// setAttribute, never as markup.
"use strict";

(() => {
  const TERMINAL = new Set(["completed", "succeeded", "failed", "canceled"]);
  const TOKEN_KEY = "render-workflows-dev-token";
  const PAGE_LIMIT = 100; // the API's largest page
  const RUNS_STEP = 50; // runs shown at first, and added by "Show more"
  const GROUP_MIN = 6; // siblings of one task collapse into one timeline row from this many
  const RERUN_HEADER = "Render-Dev-Rerun-Of"; // the dev server records the run's origin
  const METRICS_POLL_MS = 3000;
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

  // options.headers: more request headers; options.raw: return the body text unparsed.
  async function api(method, path, bodyText, options) {
    const opts = options || {};
    const headers = withAuth(Object.assign({ Accept: "application/json" }, opts.headers || {}));
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
    if (opts.raw && response.ok) return text;
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
    // Typed parameters come with a skeleton of their shape (this SDK's workers send it
    // to the dev server only); offer it as a starting point for the input.
    show($("start-skeleton"), Boolean(task && (task.parameters || []).some((p) => EXAMPLE in p)));
  }

  const EXAMPLE = "x_render_sdk_example";
  const PLACEHOLDERS = { int: 0, float: 0, str: "", bool: false };

  function placeholder(parameter) {
    if (EXAMPLE in parameter) return parameter[EXAMPLE];
    if (parameter.has_default && parameter.default_value !== undefined) {
      try {
        return JSON.parse(parameter.default_value);
      } catch (error) {
        return null;
      }
    }
    const type = String(parameter.type || "");
    if (type in PLACEHOLDERS) return PLACEHOLDERS[type];
    if (type.startsWith("list")) return [];
    if (type.startsWith("dict")) return {};
    return null;
  }

  function fillSkeleton() {
    const task = tasks.list.find((t) => t.slug === $("start-task").value);
    if (!task) return;
    const value = (task.parameters || []).map(placeholder);
    $("start-input").value = JSON.stringify(value, null, 2);
    $("start-input").focus();
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

  const list = { want: RUNS_STEP, seq: 0, timer: null, shown: [] };

  function localInputTime(id) {
    const value = $(id).value;
    if (!value) return undefined;
    const ms = new Date(value).getTime(); // datetime-local is local time
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  }

  function listParams() {
    const params = { status: $("filter-status").value, task: $("filter-task").value };
    const prefix = $("search").value.trim();
    if (prefix) params.q = prefix;
    const time = $("filter-time").value;
    show($("time-range"), time === "custom");
    if (time === "custom") {
      params.after = localInputTime("filter-after");
      params.before = localInputTime("filter-before");
    } else if (time) {
      params.after = new Date(Date.now() - Number(time) * 1000).toISOString();
    }
    return params;
  }

  // GET /dev/runs pages: {"runs": [...], "nextCursor": id or null}.
  async function readRuns(params, max) {
    const out = [];
    let cursor = null;
    while (out.length < max) {
      const limit = Math.min(PAGE_LIMIT, max - out.length);
      const doc = await api("GET", `/dev/runs?${query(Object.assign({}, params, { limit, cursor }))}`);
      if (!doc || !Array.isArray(doc.runs)) break;
      out.push(...doc.runs);
      cursor = doc.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  async function refreshRuns() {
    const seq = ++list.seq;
    const params = listParams();
    try {
      if (Date.now() - tasks.loadedAt > TASKS_POLL_MS) await loadTasks();
      const runs = await readRuns(params, list.want + 1);
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
        h("td", { text: run.taskName || taskName(run.taskId) }),
        h("td", null, badge(run.status)),
        timeCell(run.startedAt),
        h("td", { class: "mono", text: duration(run.startedAt, run.completedAt, run.status) }),
        h("td", { text: String((run.attempts || []).length) }));
    });
    $("runs").replaceChildren(...rows);
    const filtered = Object.values(listParams()).some((value) => value);
    $("runs-empty").textContent = filtered ? "No runs match." : "No runs yet.";
    show($("runs-empty"), runs.length === 0);
    list.shown = runs;
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

  const run = { id: null, timer: null, busy: false, again: false, stream: null, streamKey: "", logs: null, generation: 0, details: null, root: null };

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
    delete $("run-status").dataset.status;
    run.details = null;
    run.root = null;
    timeline.expanded.clear();
    timeline.collapsed.clear();
    timeline.signature = "";
    hideTip();
    for (const el of ["run-facts", "tree", "run-input", "run-outcome", "attempts", "logs", "timeline"]) $(el).replaceChildren();
    $("timeline-info").textContent = "";
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
      const treeDoc = await api("GET", `/dev/runs/${encodeURIComponent(id)}/tree`);
      if (!current()) return;
      const tree = treeDoc.runs;
      const root = treeDoc.rootTaskRunId || details.rootTaskRunId || details.id;
      run.details = details;
      run.root = root;
      renderRunDetails(details, treeDoc);
      renderTree(tree, root, details);
      renderTimeline(treeDoc, details.id);
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

  function renderRunDetails(details, treeDoc) {
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
    const self = (treeDoc.runs || []).find((r) => r.id === details.id);
    if (self && self.rerunOf) facts.push(fact("Rerun of", runLink(self.rerunOf, { "data-testid": "rerun-of" })));
    const reruns = treeDoc.reruns || [];
    if (reruns.length) {
      const links = [];
      for (const id of reruns.slice(-5)) links.push(runLink(id, { "data-testid": "rerun-link" }), " ");
      if (reruns.length > 5) links.unshift(`${reruns.length - 5} more… `);
      facts.push(fact("Run again as", ...links));
    }
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
    for (const r of runs) { // oldest first
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
            h("span", { text: r.taskName || taskName(r.taskId) }),
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

  // -- run again, trace download ----------------------------------------------------

  async function onRerun() {
    const id = run.id;
    const details = run.details;
    if (!id || !details) return;
    const button = $("run-again");
    button.disabled = true;
    try {
      // The stored input, as text: spliced in unparsed, like the start form's.
      const input = await api("GET", `/dev/runs/${encodeURIComponent(id)}/input`, undefined, { raw: true });
      const task = tasks.byId.get(details.taskId);
      const ref = task && task.slug ? task.slug : details.taskId;
      const started = await api("POST", "/v1/task-runs", `{"task":${JSON.stringify(ref)},"input":${input}}`,
        { headers: { [RERUN_HEADER]: id } });
      location.hash = runHref(started.id);
    } catch (exc) {
      setMessage($("run-error-msg"), exc.message);
    } finally {
      button.disabled = false;
    }
  }

  async function onTrace() {
    const id = run.id;
    if (!id) return;
    const button = $("run-trace");
    button.disabled = true;
    try {
      const text = await api("GET", `/dev/runs/${encodeURIComponent(id)}/trace`, undefined, { raw: true });
      const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
      const link = h("a", { href: url, download: `trace-${run.root || id}.json`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (exc) {
      setMessage($("run-error-msg"), exc.message);
    } finally {
      button.disabled = false;
    }
  }

  // -- timeline (waterfall) ---------------------------------------------------------
  //
  // One row per run of the tree (parents above their children), bars for each segment
  // the server computed (queued, attempt, retry wait) on one time axis. Siblings of one
  // task collapse into one row from GROUP_MIN of them; clicking it expands them.

  const timeline = { expanded: new Set(), collapsed: new Set(), info: new WeakMap(), doc: null, currentId: null, signature: "" };

  function timelineRows(runs, rootId, currentId) {
    const known = new Set(runs.map((r) => r.id));
    // The open run and its ancestors stay visible: their groups start expanded.
    const parents = new Map(runs.map((r) => [r.id, r.parentTaskRunId]));
    const lineage = new Set();
    for (let id = currentId; id && !lineage.has(id) && known.has(id); id = parents.get(id)) lineage.add(id);
    const children = new Map();
    const roots = [];
    for (const r of runs) {
      const parent = r.id !== rootId && known.has(r.parentTaskRunId) ? r.parentTaskRunId : "";
      if (!parent) roots.push(r);
      else {
        if (!children.has(parent)) children.set(parent, []);
        children.get(parent).push(r);
      }
    }
    const rows = [];
    const visit = (siblings, depth, parentKey) => {
      if (depth > 64) return;
      const byTask = new Map();
      for (const r of siblings) {
        if (!byTask.has(r.taskId)) byTask.set(r.taskId, []);
        byTask.get(r.taskId).push(r);
      }
      const grouped = new Set();
      for (const r of siblings) {
        const members = byTask.get(r.taskId);
        if (members.length < GROUP_MIN) {
          rows.push({ kind: "run", run: r, depth });
          visit(children.get(r.id) || [], depth + 1, r.id);
          continue;
        }
        if (grouped.has(r.taskId)) continue;
        grouped.add(r.taskId);
        const key = `${parentKey}/${r.taskId}`;
        const open = timeline.expanded.has(key)
          || (!timeline.collapsed.has(key) && members.some((m) => lineage.has(m.id)));
        rows.push({ kind: "group", key, runs: members, depth, open });
        if (open) {
          for (const member of members) {
            rows.push({ kind: "run", run: member, depth: depth + 1 });
            visit(children.get(member.id) || [], depth + 2, member.id);
          }
        }
      }
    };
    visit(roots, 0, "");
    return rows;
  }

  function niceStep(span) {
    const raw = span / 8;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  // Merged [start, end] intervals (ms), for a collapsed group's "any of them was busy".
  function union(intervals) {
    intervals.sort((a, b) => a[0] - b[0]);
    const out = [];
    for (const [start, end] of intervals) {
      const last = out[out.length - 1];
      if (last && start <= last[1]) last[1] = Math.max(last[1], end);
      else out.push([start, end]);
    }
    return out;
  }

  function exactTime(ms, iso) {
    return iso ? `${formatTime(iso)}  (${iso})` : "";
  }

  function renderTimeline(doc, currentId, force) {
    // A finished tree does not change: keep its rows (and a hovered bar) as they are.
    const signature = JSON.stringify(doc.runs) + currentId;
    const finished = (doc.runs || []).every((r) => isTerminal(r.status));
    if (!force && finished && signature === timeline.signature) return;
    timeline.signature = signature;
    const began = performance.now();
    timeline.doc = doc;
    timeline.currentId = currentId;
    const now = Date.now();
    const runs = doc.runs || [];
    let t0 = Infinity;
    let t1 = -Infinity;
    let active = false;
    for (const r of runs) {
      if (!isTerminal(r.status)) active = true;
      for (const seg of r.segments || []) {
        if (seg.s === undefined) {
          seg.s = parseTime(seg.start);
          seg.e = seg.end ? parseTime(seg.end) : null;
        }
        if (seg.s === null) continue;
        t0 = Math.min(t0, seg.s);
        t1 = Math.max(t1, seg.e === null ? Math.max(now, seg.s) : seg.e);
      }
    }
    const box = $("timeline");
    if (t0 === Infinity) {
      box.replaceChildren(h("p", { class: "muted", text: "Nothing has run yet." }));
      $("timeline-info").textContent = "";
      return;
    }
    if (active) t1 = Math.max(t1, now);
    const span = Math.max(t1 - t0, 1);
    const pct = (ms) => `${(((ms - t0) / span) * 100).toFixed(3)}%`;
    const place = (el, start, end) => {
      el.style.left = pct(start);
      el.style.width = `${(((Math.max(end, start) - start) / span) * 100).toFixed(3)}%`;
      return el;
    };

    const step = niceStep(span);
    const ticks = [];
    for (let at = 0; at <= span * 0.96; at += step) {
      const tick = h("div", { class: "tl-tick" }, h("span", { text: at === 0 ? "0" : `+${formatDuration(at)}` }));
      tick.style.left = pct(t0 + at);
      ticks.push(tick);
    }
    const axisTrack = h("div", { class: "tl-track" }, ...ticks);
    const fragment = document.createDocumentFragment();
    fragment.append(h("div", { class: "tl-axis" },
      h("div", { class: "tl-label muted", text: `${runs.length} run${runs.length === 1 ? "" : "s"}` }), axisTrack));

    const rows = timelineRows(runs, doc.rootTaskRunId, currentId);
    for (const row of rows) {
      const track = h("div", { class: "tl-track" });
      let el;
      if (row.kind === "run") {
        const r = row.run;
        for (const seg of r.segments || []) {
          if (seg.s === null) continue;
          const end = seg.e === null ? Math.max(now, seg.s) : seg.e;
          const bar = place(h("div", {
            class: `tl-bar ${seg.kind} ${seg.status || ""}${seg.e === null ? " open" : ""}`,
            "data-kind": seg.kind,
            "data-testid": "timeline-bar",
          }), seg.s, end);
          timeline.info.set(bar, { run: r, seg });
          track.append(bar);
        }
        const label = h("div", { class: "tl-label" },
          h("span", { class: "tl-toggle" }),
          badge(r.status),
          h("span", { class: "tl-name", text: r.taskName || taskName(r.taskId) }),
          h("code", { text: r.id }));
        label.style.paddingLeft = `${row.depth * 14}px`;
        el = h("div", {
          class: "tl-row" + (r.id === currentId ? " current" : ""),
          "data-run-id": r.id,
          "data-status": r.status,
          "data-testid": "timeline-row",
          title: r.id === currentId ? undefined : "open this run",
        }, label, track);
      } else {
        let start = Infinity;
        let end = -Infinity;
        const busy = [];
        const failedBusy = [];
        const counts = new Map();
        for (const member of row.runs) {
          counts.set(member.status, (counts.get(member.status) || 0) + 1);
          for (const seg of member.segments || []) {
            if (seg.s === null) continue;
            const segEnd = seg.e === null ? Math.max(now, seg.s) : seg.e;
            start = Math.min(start, seg.s);
            end = Math.max(end, segEnd);
            if (seg.kind === "attempt") (seg.status === "failed" ? failedBusy : busy).push([seg.s, segEnd]);
          }
        }
        const summary = [...counts].map(([status, n]) => `${n} ${status}`).join(", ");
        if (start !== Infinity) {
          const envelope = place(h("div", { class: "tl-bar envelope", "data-testid": "timeline-bar" }), start, end);
          timeline.info.set(envelope, { group: row, start, end, summary });
          track.append(envelope);
          for (const [kind, list] of [["completed", busy], ["failed", failedBusy]]) {
            for (const [s0, s1] of union(list)) {
              const bar = place(h("div", { class: `tl-bar attempt ${kind}` }), s0, s1);
              timeline.info.set(bar, { group: row, start, end, summary });
              track.append(bar);
            }
          }
        }
        const first = row.runs[0];
        const label = h("div", { class: "tl-label" },
          h("span", { class: "tl-toggle", text: row.open ? "▾" : "▸" }),
          badge(counts.get("failed") ? "failed" : [...counts.keys()].every((st) => st === "completed") ? "completed" : first.status),
          h("span", { class: "tl-name", text: `${first.taskName || taskName(first.taskId)} × ${row.runs.length}` }),
          h("span", { class: "muted", text: summary }));
        label.style.paddingLeft = `${row.depth * 14}px`;
        el = h("div", {
          class: "tl-row tl-group",
          "data-group": row.key,
          "data-count": row.runs.length,
          "data-open": row.open ? "true" : "false",
          "data-testid": "timeline-group",
          title: row.open ? "collapse" : `show all ${row.runs.length}`,
        }, label, track);
      }
      fragment.append(el);
    }
    box.replaceChildren(fragment);
    void box.offsetHeight; // lay it out now, so that the time measured includes layout
    const took = performance.now() - began;
    box.dataset.renderMs = took.toFixed(1);
    box.dataset.rows = String(rows.length);
    box.dataset.runs = String(runs.length);
    const more = doc.truncated ? ` · the first ${runs.length} runs only` : "";
    $("timeline-info").textContent = `${formatDuration(span)} from first to last${more}`;
  }

  function hideTip() {
    show($("timeline-tip"), false);
  }

  function tipText(info) {
    if (info.group) {
      const first = info.group.runs[0];
      return [
        `${first.taskName || taskName(first.taskId)} × ${info.group.runs.length}: ${info.summary}`,
        `first start ${formatTime(new Date(info.start).toISOString())}`,
        `last end    ${formatTime(new Date(info.end).toISOString())}`,
        `spans       ${formatDuration(info.end - info.start)}`,
        info.group.open ? "click to collapse" : "click to show each run",
      ].join("\n");
    }
    const { run: r, seg } = info;
    const what = seg.kind === "attempt"
      ? `attempt ${(seg.attempt || 0) + 1} · ${seg.status || ""}`
      : seg.kind === "retry-wait" ? `retry wait before attempt ${(seg.attempt || 0) + 1}` : `queued before attempt ${(seg.attempt || 0) + 1}`;
    const end = seg.e === null ? Date.now() : seg.e;
    const lines = [
      what,
      `${r.taskName || taskName(r.taskId)} ${r.id}`,
      `start ${exactTime(seg.s, seg.start)}`,
      seg.end ? `end   ${exactTime(seg.e, seg.end)}` : "end   (still going)",
      `took  ${formatDuration(end - seg.s)}${seg.end ? "" : " so far"}`,
    ];
    if (seg.error) lines.push(seg.error);
    return lines.join("\n");
  }

  function onTimelineMove(event) {
    const tip = $("timeline-tip");
    const bar = event.target instanceof Element ? event.target.closest(".tl-bar") : null;
    const info = bar ? timeline.info.get(bar) : null;
    if (!info) {
      hideTip();
      return;
    }
    tip.textContent = tipText(info);
    show(tip, true);
    const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    const y = event.clientY + 16 + tip.offsetHeight > window.innerHeight ? event.clientY - tip.offsetHeight - 10 : event.clientY + 16;
    tip.style.left = `${Math.max(4, x)}px`;
    tip.style.top = `${Math.max(4, y)}px`;
  }

  function onTimelineClick(event) {
    const row = event.target instanceof Element ? event.target.closest(".tl-row") : null;
    if (!row) return;
    if (row.dataset.group) {
      const key = row.dataset.group;
      if (row.dataset.open === "true") {
        timeline.expanded.delete(key);
        timeline.collapsed.add(key);
      } else {
        timeline.expanded.add(key);
        timeline.collapsed.delete(key);
      }
      hideTip();
      if (timeline.doc) renderTimeline(timeline.doc, timeline.currentId, true);
      return;
    }
    const id = row.dataset.runId;
    if (id && id !== run.id) location.hash = runHref(id);
  }

  // -- metrics header ---------------------------------------------------------------

  const metrics = { timer: null };

  function metric(label, value, key) {
    return h("span", { class: "metric", "data-metric": key }, label, h("b", { text: String(value) }));
  }

  function renderMetrics(doc) {
    const statuses = Object.entries(doc.runsByStatus || {}).map(([status, count]) =>
      metric(badge(status), count, `status-${status}`));
    $("metrics-status").replaceChildren(metric("runs", doc.total || 0, "total"), ...statuses);
    const q = doc.queue || {};
    $("metrics-queue").replaceChildren(
      metric("queued", q.queued || 0, "queued"),
      metric("waiting for a retry", q.waitingRetry || 0, "waiting-retry"),
      metric("running", `${q.running || 0} / ${q.concurrency || "?"}`, "running"),
      metric("waiting on subtasks", q.waitingOnSubtasks || 0, "waiting-subtasks"));
    const rows = (doc.attemptDurations || []).map((d) =>
      h("tr", { "data-task-id": d.taskId },
        h("td", { text: d.taskName }),
        h("td", { class: "mono", text: String(d.attempts) }),
        h("td", { class: "mono", text: formatDuration(d.p50Ms) }),
        h("td", { class: "mono", text: formatDuration(d.p95Ms) })));
    $("metrics-durations").replaceChildren(...(rows.length ? rows : [h("tr", null, h("td", { colspan: 4, class: "muted", text: "No finished attempts yet." }))]));
    show($("metrics"), true);
  }

  function startMetrics() {
    const loop = async () => {
      if (!document.hidden) {
        try {
          renderMetrics(await api("GET", "/dev/metrics"));
        } catch (_) { /* shown by the views; the header just keeps its last numbers */ }
      }
      metrics.timer = setTimeout(loop, METRICS_POLL_MS);
    };
    if (metrics.timer === null) metrics.timer = setTimeout(loop, 0);
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
    $("start-skeleton").addEventListener("click", fillSkeleton);
    $("run-cancel").addEventListener("click", onCancel);
    $("run-again").addEventListener("click", onRerun);
    $("run-trace").addEventListener("click", onTrace);
    const timelineBox = $("timeline");
    timelineBox.addEventListener("mousemove", onTimelineMove);
    timelineBox.addEventListener("mouseleave", hideTip);
    timelineBox.addEventListener("click", onTimelineClick);
    for (const id of ["filter-status", "filter-task", "filter-time", "filter-after", "filter-before"]) {
      $(id).addEventListener("change", () => { list.want = RUNS_STEP; refreshRuns(); });
    }
    for (const id of ["filter-after", "filter-before"]) {
      $(id).addEventListener("input", () => { list.want = RUNS_STEP; refreshRuns(); });
    }
    let searchTimer = null;
    $("search").addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { list.want = RUNS_STEP; refreshRuns(); }, 200);
    });
    $("search").addEventListener("keydown", async (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(searchTimer);
      await refreshRuns();
      const shown = list.shown || [];
      const wanted = $("search").value.trim();
      const exact = shown.find((r) => r.id === wanted || r.id === `trn-${wanted}`);
      if (exact || shown.length === 1) location.hash = runHref((exact || shown[0]).id);
    });
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
    startMetrics();
  }

  init();
})();
