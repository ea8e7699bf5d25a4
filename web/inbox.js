// The reference web inbox: a person's notification center, its badge, toasts, and live updates.
//
// Safety: nothing a sender wrote is ever parsed as HTML. Text goes into the page as text nodes;
// the markdown subset of OverrideContent (bold, italic, bullet and numbered lists, links) is
// turned into elements built one by one; a link's target must be http(s) or relative, anything
// else (javascript:, data:, ...) stays text. The page's Content-Security-Policy forbids inline
// script as a second line of defence.
//
// Live: a single-use ticket (POST /users/me/realtime-ticket) opens the stack's WebSocket API
// (named by the page's realtime-url meta) or the local runner's /realtime (Server-Sent
// Events). Every event carries a cursor; on reconnect the page asks for everything after the last
// one it saw, so nothing is missed, and it keys everything by id, so nothing is shown twice.
// Without the channel (three failed tries in a row) it polls, at the spec's cadence: at start, on
// navigation, and at most once a minute.
"use strict";

const TOAST_MS = 4000;
const POLL_MS = 60000;
// Glyphs every system font has (no emoji font needed); Custom shows its iconUrl.
const ICONS = { Info: "\u2139", Success: "\u2713", Failure: "\u2715", Warning: "\u26A0", Mention: "@", Custom: "\u2605" };

const state = {
  token: sessionStorage.getItem("inbox-token") || "",
  status: "inbox",
  items: [],
  known: new Set(),      // ids already shown (no second toast)
  cursor: null,          // the last realtime event's id
  source: null,
  failures: 0,
  pollTimer: null,
  first: true,
};

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

// ---- safe markdown subset -------------------------------------------------------------------

/** Whether a link target may be followed: http(s), or relative to this page. */
function safeUrl(url) {
  const u = String(url).trim();
  if (/^(https?:)\/\//i.test(u)) return true;
  if (/^[a-z][a-z0-9+.-]*:/i.test(u)) return false; // javascript:, data:, vbscript:, ...
  return /^(\/|\.|\?|#|[\w-])/.test(u) && !u.startsWith("//");
}

/** Inline markdown: **bold**, __bold__, *italic*, _italic_, [text](url); everything else text. */
function inline(text) {
  const out = document.createDocumentFragment();
  const re = /\*\*(.+?)\*\*|__(.+?)__|\*(.+?)\*|(?<![\w])_(.+?)_(?![\w])|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.append(text.slice(last, m.index));
    if (m[1] !== undefined || m[2] !== undefined) out.append(el("strong", {}, inline(m[1] ?? m[2])));
    else if (m[3] !== undefined || m[4] !== undefined) out.append(el("em", {}, inline(m[3] ?? m[4])));
    else if (safeUrl(m[6])) out.append(el("a", { href: m[6].trim(), target: "_blank", rel: "noopener noreferrer" }, inline(m[5])));
    else out.append(m[0]); // a link we will not follow stays as written
    last = m.index + m[0].length;
  }
  if (last < text.length) out.append(text.slice(last));
  return out;
}

/**
 * Blocks: lines starting "- " or "* " make a bullet list, "1. " a numbered one; others lines. A
 * line ends at a newline, a carriage return and newline, or a bare carriage return: the spec
 * writes its list examples so ("- Item 1\r- Item 2\r- Item 3").
 */
function markdown(text) {
  const out = document.createDocumentFragment();
  let list = null;
  let kind = null;
  const lines = String(text).split(/\r\n|\r|\n/);
  lines.forEach((line, i) => {
    const bullet = /^\s*[-*+]\s+(.*)$/.exec(line);
    const numbered = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    const item = bullet || numbered;
    if (item) {
      const want = bullet ? "ul" : "ol";
      if (!list || kind !== want) { list = el(want); kind = want; out.append(list); }
      list.append(el("li", {}, inline(item[1])));
      return;
    }
    list = null;
    out.append(inline(line));
    if (i < lines.length - 1) out.append(el("br"));
  });
  return out;
}

// ---- the API ----------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401) { signOut("Your token was not accepted."); throw new Error("unauthorized"); }
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status}`);
  return resp.status === 204 ? null : resp.json();
}

async function load() {
  const [page, counts] = await Promise.all([
    api("GET", `/users/me/notifications?status=${state.status}&limit=50`),
    api("GET", "/users/me/notifications/count"),
  ]);
  const fresh = page.notifications.filter((n) => !state.known.has(n.id));
  page.notifications.forEach((n) => state.known.add(n.id));
  state.items = page.notifications;
  render(counts);
  // Toasts for what arrived after the page opened (not for what was there already), High first.
  if (!state.first) fresh.filter((n) => !n.read).forEach(toast);
  state.first = false;
}

// ---- rendering ----------------------------------------------------------------------------------

function icon(n) {
  const url = n.overrideContent && n.overrideContent.iconUrl;
  if (n.icon === "Custom" && url && safeUrl(url)) {
    return el("span", { class: "icon" }, el("img", { src: url, alt: "", referrerpolicy: "no-referrer" }));
  }
  return el("span", { class: "icon", "aria-hidden": "true", text: ICONS[n.icon] || ICONS.Info });
}

function titleOf(n) {
  const t = n.overrideContent && n.overrideContent.title;
  return t ? markdown(t) : document.createTextNode(n.title);
}

function bodyOf(n) {
  const b = n.overrideContent && n.overrideContent.body;
  return b ? markdown(b) : document.createTextNode(n.body);
}

function when(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

let expiryTimer = null;

function render(counts) {
  // Expiry is known ahead: reload when the first shown notification expires.
  clearTimeout(expiryTimer);
  const next = Math.min(...state.items.map((n) => Date.parse(n.expiresOn)).filter((t) => t > Date.now()));
  if (Number.isFinite(next)) expiryTimer = setTimeout(() => load().catch(report), Math.min(next - Date.now() + 500, 2 ** 31 - 1));
  const badge = $("badge");
  badge.textContent = counts.unread > 99 || !counts.exact ? "99+" : String(counts.unread);
  badge.hidden = counts.unread === 0;
  $("bell").setAttribute("aria-label", `Notifications, ${badge.hidden ? "none" : badge.textContent} unread`);
  const list = $("list");
  list.replaceChildren(...state.items.map(card));
  $("empty").hidden = state.items.length > 0;
}

function card(n) {
  const classes = ["item", n.read ? "read" : "unread", n.priority === "High" ? "high" : ""].join(" ");
  const li = el("li", { class: classes, "data-id": n.id });
  li.append(icon(n));
  li.append(el("p", { class: "title" }, titleOf(n)));
  li.append(el("p", { class: "body" }, bodyOf(n)));
  li.append(el("p", { class: "meta" },
    el("span", { class: "prio", text: "High priority" }),
    el("span", { text: when(n.createdOn) }),
    el("span", { text: `expires ${when(n.expiresOn)}` }),
    n.source ? el("span", { text: `from ${n.source}` }) : null));
  if (n.actions && n.actions.length) {
    li.append(el("div", { class: "actions" }, ...n.actions.map((a) => el("button", { type: "button", onclick: () => act(n, a) }, a.title))));
  }
  const mark = (m) => () => api("POST", `/users/me/notifications/${n.id}/${m}`).then(load, report);
  li.append(el("div", { class: "controls" },
    el("button", { type: "button", onclick: mark(n.read ? "unread" : "read") }, n.read ? "Mark unread" : "Mark read"),
    el("button", { type: "button", onclick: mark(n.archived ? "unarchive" : "archive") }, n.archived ? "Unarchive" : "Archive"),
    el("button", { type: "button", onclick: mark("dismiss"), "aria-label": "Dismiss" }, "Dismiss")));
  return li;
}

function toast(n) {
  if (n.toast === "Hidden") return;
  const t = el("div", { class: `toast${n.priority === "High" ? " high" : ""}`, "data-id": n.id },
    el("p", { class: "title" }, titleOf(n)),
    el("p", { class: "body" }, bodyOf(n)));
  // High above Normal, whatever arrived first.
  const stack = $("toasts");
  const firstNormal = [...stack.children].find((x) => !x.classList.contains("high"));
  if (n.priority === "High" && firstNormal) stack.insertBefore(t, firstNormal);
  else stack.append(t);
  setTimeout(() => t.remove(), TOAST_MS);
}

function report(e) {
  $("live").textContent = `Something went wrong: ${e.message}`;
}

// ---- actions ------------------------------------------------------------------------------------

function act(n, action) {
  const d = action.data || {};
  api("POST", `/users/me/notifications/${n.id}/read`).then(load, report);
  if (d.type === "url") {
    if (!safeUrl(d.url)) { report(new Error("this action's link is not allowed")); return; }
    const target = d.navigationTarget || "newWindow";
    if (target === "dialog") {
      $("dialog-title").textContent = action.title;
      $("dialog-frame").src = d.url;
      $("dialog").showModal();
    } else if (target === "inline") {
      window.location.assign(d.url);
    } else {
      window.open(d.url, "_blank", "noopener,noreferrer");
    }
  } else if (d.type === "sidepane") {
    const opts = d.paneOptions || {};
    const pane = $("pane");
    $("pane-title").textContent = opts.title || action.title;
    const width = Number(opts.width);
    pane.style.setProperty("--pane-width", Number.isFinite(width) && width > 0 ? `${width}px` : "400px");
    const target = d.navigationTarget || {};
    const rows = Object.entries(target).filter(([k]) => !k.startsWith("@"));
    $("pane-body").replaceChildren(el("dl", {}, ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })])));
    pane.hidden = false;
    $("pane-close").focus();
  } else if (d.type === "teamsChat") {
    const who = (d.memberIds || []).join(", ");
    $("pane-title").textContent = "Teams chat";
    $("pane-body").replaceChildren(el("p", { text: d.chatId
      ? `Would open the existing chat ${d.chatId}.`
      : `Would start a chat${d.chatTitle ? ` "${d.chatTitle}"` : ""}${who ? ` with ${who}` : ""}${d.initialMessage ? `, saying "${d.initialMessage}"` : ""}.` }));
    $("pane").hidden = false;
  }
}

// ---- live updates -------------------------------------------------------------------------------

/** The stack's WebSocket API, when the page was served by it; else the runner's SSE. */
function realtimeUrl() {
  const meta = document.querySelector('meta[name="realtime-url"]');
  return meta && meta.content ? meta.content : null;
}

function seenCursor(id) {
  if (id && (!state.cursor || Number(id) > Number(state.cursor))) state.cursor = String(id);
}

function live() {
  state.failures = 0;
  stopPolling();
  $("live").textContent = "Live";
}

function lost(channel) {
  // A ticket is good once: reconnect with a new one, from the cursor.
  if (state.source !== channel) return;
  state.source = null;
  state.failures += 1;
  if (state.failures >= 3) { startPolling(); return; }
  $("live").textContent = "Reconnecting\u2026";
  setTimeout(() => state.token && connect(), 500 * state.failures);
}

async function connect() {
  if (state.source) state.source.close();
  try {
    const { ticket } = await api("POST", "/users/me/realtime-ticket");
    const ws = realtimeUrl();
    if (ws) {
      // API Gateway's WebSocket: messages are {"id": cursor, "event": {...}}. What was missed
      // while away is read from the center on every (re)connection.
      const socket = new WebSocket(`${ws}?ticket=${encodeURIComponent(ticket)}`);
      state.source = socket;
      socket.onopen = () => { live(); load().catch(report); };
      socket.onmessage = (m) => {
        try { seenCursor(JSON.parse(m.data).id); } catch (_) { /* not ours */ }
        load().catch(report);
      };
      socket.onclose = () => lost(socket);
      return;
    }
    const after = state.cursor ? `&after=${state.cursor}` : "";
    const source = new EventSource(`/realtime?ticket=${encodeURIComponent(ticket)}${after}`);
    state.source = source;
    source.addEventListener("hello", (e) => {
      seenCursor(e.lastEventId);
      live();
      load().catch(report); // anything that changed while connecting
    });
    for (const kind of ["new", "marked", "markedAll"]) {
      source.addEventListener(kind, (e) => { seenCursor(e.lastEventId); load().catch(report); });
    }
    source.onerror = () => { source.close(); lost(source); };
  } catch (e) {
    if (!state.token) return;
    state.failures += 1;
    if (state.failures >= 3) startPolling();
    else setTimeout(connect, 1000 * state.failures);
  }
}

function startPolling() {
  $("live").textContent = "Checking for new notifications every minute";
  if (!state.pollTimer) state.pollTimer = setInterval(() => load().catch(report), POLL_MS);
  // Try the live channel again now and then.
  setTimeout(() => { if (state.pollTimer && state.token) { state.failures = 0; connect(); } }, 5 * POLL_MS);
}

function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// ---- sign in and out, wiring --------------------------------------------------------------------

function signOut(message) {
  state.token = "";
  sessionStorage.removeItem("inbox-token");
  if (state.source) state.source.close();
  state.source = null;
  stopPolling();
  $("center").hidden = true;
  $("bell").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
}

async function start() {
  $("signin").hidden = true;
  $("center").hidden = false;
  $("bell").hidden = false;
  $("signout").hidden = false;
  state.first = true;
  try {
    await load();
    connect();
  } catch (e) {
    if (state.token) report(e);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("inbox-token", state.token);
    start();
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("readall").addEventListener("click", () => api("POST", "/users/me/notifications/mark-all-read").then(load, report));
  $("bell").addEventListener("click", () => {
    api("POST", "/users/me/notifications/mark-all-seen").catch(report);
    $("center").scrollIntoView();
    $("list").querySelector("button")?.focus();
  });
  document.querySelectorAll(".filters button").forEach((b) => b.addEventListener("click", () => {
    state.status = b.dataset.status;
    document.querySelectorAll(".filters button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    load().catch(report);
  }));
  $("pane-close").addEventListener("click", () => { $("pane").hidden = true; });
  $("dialog-close").addEventListener("click", () => { $("dialog").close(); $("dialog-frame").src = "about:blank"; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("pane").hidden = true; });
  // The spec's cadence without the live channel: also on navigation back to the page.
  window.addEventListener("pageshow", () => { if (state.token && state.pollTimer) load().catch(report); });
  if (state.token) start();
});
