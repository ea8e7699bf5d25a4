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
// Events). Every event carries what the page needs to apply it: a delivery its notification, a
// mark the person's counts after it. So an open page applies an event without a read, and a
// delivery to many people with the page open is no stampede on the API. The page reads only to
// fill a gap (the channel came back after a drop; an event too large to carry its notification),
// once, after a random wait, so pages that lost the channel together do not come back together.
// It keys everything by id, so nothing is shown twice.
//
// API Gateway closes a WebSocket idle for 10 minutes and any after 2 hours: the page sends a ping
// every 4 to 6 minutes, and before two hours are up it opens a new connection and closes the
// old one only once the new one is open (no gap; a repeat is harmless). A lost connection is
// tried again after a random wait growing to 5 minutes (full jitter); after three failures in a
// row the page polls at the spec's cadence (at start, on navigation, about once a minute, each
// page at its own moment) while it keeps trying.
"use strict";

const TOAST_MS = 4000;
const POLL_MS = 60000;
const PAGE_SIZE = 50;
// API Gateway: idle timeout 10 minutes, connection duration 2 hours.
const PING_MS = [4 * 60000, 6 * 60000];
const RENEW_MS = [105 * 60000, 115 * 60000];
// Reconnects: a random wait up to 1 s, 2 s, 4 s ... 5 minutes.
const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 5 * 60000;
// A read to fill a gap waits up to this long, at random (longer for a delivery told by id only,
// which reaches every open page of its recipients at once).
const GAP_JITTER_MS = 5000;
const NAMED_JITTER_MS = 30000;
const SHORT_PAGE_FOLLOWS = 3;    // reads more of a short page with a token, at most
// A renewed connection keeps the old one this long: posts already under way reach it.
const RENEW_GRACE_MS = 90000;
// A page shown again reads its view if it last read it longer ago than this.
const SHOWN_AGAIN_MS = 60000;
// Glyphs every system font has (no emoji font needed); Custom shows its iconUrl.
const ICONS = { Info: "\u2139", Success: "\u2713", Failure: "\u2715", Warning: "\u26A0", Mention: "@", Custom: "\u2605" };

const state = {
  token: sessionStorage.getItem("inbox-token") || "",
  status: "inbox",
  items: [],
  more: false,           // the view has more than the page shows
  counts: { unread: 0, unseen: 0, exact: true },
  known: new Set(),      // ids already shown (no second toast)
  loads: 0,              // reads started (only the latest one's answer is shown)
  during: null,          // deliveries told while a read was in flight
  hiddenAt: 0,           // when the page was last hidden (its own clock)
  graceTimer: null,
  cursor: null,          // the last realtime event's id
  source: null,
  live: false,
  failures: 0,
  pollTimer: null,
  retryTimer: null,
  pingTimer: null,
  renewTimer: null,
  countsAt: 0,           // the cursor of the event whose counts the page holds
  loadedAt: 0,           // when the page last read its view (its own clock)
  loadFailures: 0,
  gapTimer: null,
  first: true,
};

/** A random wait in [lo, hi). */
const between = (lo, hi) => lo + Math.random() * (hi - lo);

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
  // Reads may overlap (a gap read, a filter click): only the latest one's answer is shown, and
  // what arrived as events while it was in flight is applied again over it.
  const seq = ++state.loads;
  state.during = [];
  const view = `/users/me/notifications?status=${state.status}`;
  const [page, counts] = await Promise.all([
    api("GET", `${view}&limit=${PAGE_SIZE}`),
    api("GET", "/users/me/notifications/count"),
  ]);
  // An answer reads a bounded part of the center: a sparse view's page may come short with a
  // token to go on from, followed a few times to fill the page.
  for (let more = 0; page.nextToken && page.notifications.length < PAGE_SIZE && more < SHORT_PAGE_FOLLOWS; more++) {
    if (seq !== state.loads) return;
    const rest = PAGE_SIZE - page.notifications.length;
    const next = await api("GET", `${view}&limit=${rest}&nextToken=${encodeURIComponent(page.nextToken)}`);
    page.notifications = page.notifications.concat(next.notifications);
    page.nextToken = next.nextToken;
  }
  if (seq !== state.loads || !state.token) return;
  const during = state.during;
  state.during = null;
  // Retracted while the read was in flight (its answer may be from before): left out, and the
  // counts, which may still hold it, read again.
  const gone = new Set(during.filter((e) => e.retracted).map((e) => e.retracted));
  if (gone.size) {
    page.notifications = page.notifications.filter((n) => !gone.has(n.id));
    fillGap(NAMED_JITTER_MS);
  }
  const fresh = page.notifications.filter((n) => !state.known.has(n.id));
  page.notifications.forEach((n) => state.known.add(n.id));
  state.items = page.notifications;
  state.more = Boolean(page.nextToken);
  state.counts = counts;
  state.countsAt = Math.max(state.countsAt, Number(state.cursor || 0));
  state.loadedAt = Date.now();
  state.loadFailures = 0;
  render();
  // Toasts for what arrived after the page opened (not for what was there already), High first.
  if (!state.first) fresh.filter((n) => !n.read).forEach(toast);
  state.first = false;
  // Delivered while the read was in flight, and not in its answer where it belongs: the read
  // came before it (its count too), so it is applied again.
  const listed = new Set(state.items.map((n) => n.id));
  during.filter((n) => !n.retracted && !gone.has(n.id) && admits(n) && !listed.has(n.id))
    .forEach((n) => { state.known.delete(n.id); delivered(n, Infinity); });
}

/** A read that failed (a 429 when everyone opens the page at nine) is tried again, later each time. */
function reload() {
  load().catch((e) => {
    report(e);
    if (!state.token) return;
    state.loadFailures += 1;
    fillGap(Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** state.loadFailures));
  });
}

/** One read to fill a gap, after a random wait (many pages lose the channel together). */
function fillGap(jitter = GAP_JITTER_MS) {
  if (state.gapTimer || !state.token) return;
  state.gapTimer = setTimeout(() => { state.gapTimer = null; reload(); }, between(0, jitter));
}

// ---- applying events without a read ------------------------------------------------------------

/** Whether the view shows a notification in this state (the service's rule, StatusFilter). */
function admits(n) {
  switch (state.status) {
    case "unread": return !n.archived && !n.read;
    case "unseen": return !n.archived && !n.seen;
    case "read": return !n.archived && n.read;
    case "archived": return n.archived;
    case "all": return true;
    default: return !n.archived;
  }
}

/** The center's order: High first, then newest, then id. */
function before(x, y) {
  if ((x.priority === "High") !== (y.priority === "High")) return x.priority === "High";
  // To the millisecond, as the server's order key (createdOn may carry more digits).
  const [tx, ty] = [Date.parse(x.createdOn), Date.parse(y.createdOn)];
  if (tx !== ty) return tx > ty;
  return x.id < y.id;
}

/** A delivery: shown where it sorts, counted, toasted; a repeat changes nothing. */
function delivered(n, cursor) {
  if (state.during && cursor !== Infinity) state.during.push({ ...n });
  if (state.known.has(n.id)) return;
  state.known.add(n.id);
  if (Date.parse(n.expiresOn) <= Date.now()) return;
  // Counts read after it was written (a mark's, arriving first) have it already.
  if (!(cursor <= state.countsAt)) {
    state.counts = { ...state.counts, unread: state.counts.unread + 1, unseen: state.counts.unseen + 1 };
  }
  if (admits(n)) {
    const at = state.items.findIndex((x) => before(n, x));
    // Past the last shown of a longer view, it belongs to a later page.
    if (at >= 0) state.items.splice(at, 0, n);
    else if (!state.more) state.items.push(n);
    if (state.items.length > PAGE_SIZE) { state.items.length = PAGE_SIZE; state.more = true; }
  }
  render();
  if (!state.first && !n.read) toast(n);
}

/** Counts read at `cursor`, unless the page holds later ones (events can arrive out of order). */
function countsOf(counts, cursor) {
  if (!counts || cursor < state.countsAt) return;
  state.counts = counts;
  state.countsAt = cursor;
}

/** Views a mark can bring a notification into (the page may not have it yet). */
const BRINGS = { unarchive: ["inbox", "unread", "unseen", "read", "all"], archive: ["archived"], read: ["read"], unread: ["unread"] };

/** One mark, as the service applies it: its state follows from the mark alone. */
function marked(id, mark, counts, cursor) {
  const n = state.items.find((x) => x.id === id);
  if (n) {
    if (mark === "seen") n.seen = true;
    if (mark === "read") { n.seen = true; n.read = true; }
    if (mark === "unread") n.read = false;
    if (mark === "archive") n.archived = true;
    if (mark === "unarchive") n.archived = false;
    if (mark === "dismiss") n.dismissed = true;
    state.items = state.items.filter((x) => !x.dismissed && admits(x));
  }
  countsOf(counts, cursor);
  render();
  // It now belongs in this view and the page does not have it (brought back from the archive).
  if (!n && (BRINGS[mark] || []).includes(state.status)) fillGap();
  if (!counts) fillGap();
}

/** Everything delivered up to `through` marked. */
function markedAll(mark, through, counts, cursor) {
  for (const n of state.items) {
    if (Date.parse(n.deliveredOn) > through) continue;
    n.seen = true;
    if (mark !== "seen") n.read = true;
    if (mark === "read+archive") n.archived = true;
  }
  state.items = state.items.filter(admits);
  countsOf(counts, cursor);
  render();
  // Views that gain what was marked (read, archived) are read again.
  if (!counts || state.status === "read" || state.status === "archived") fillGap();
}

/** Its sender took it back: gone from the view and the counts. Shown, its state says what it
 * counted for (no read); not shown, the counts are read again after a random wait (every open
 * page of its people hears of it at once). */
function retracted(id, cursor) {
  state.known.delete(id);
  if (state.during) state.during.push({ retracted: id });
  const n = state.items.find((x) => x.id === id);
  state.items = state.items.filter((x) => x.id !== id);
  // Not shown, or counts read after the retraction already left it out: the counts are read.
  if (!n || cursor <= state.countsAt) { render(); fillGap(NAMED_JITTER_MS); return; }
  if (!n.archived) {
    const c = state.counts;
    state.counts = { ...c, unread: Math.max(0, c.unread - (n.read ? 0 : 1)), unseen: Math.max(0, c.unseen - (n.seen ? 0 : 1)) };
  }
  render();
}

/** Its sender corrected it: what it shows is replaced; the person's seen, read and archived stay. */
function corrected(id, content) {
  const n = state.items.find((x) => x.id === id);
  if (!n || !content) return;
  for (const k of ["title", "body", "url", "overrideContent", "icon", "toast", "priority", "actions", "data", "source"]) {
    if (k in content) n[k] = content[k];
    else delete n[k];
  }
  render();
}

/** An event from either channel, at its cursor. */
function apply(e, cursor) {
  if (e.type === "new") {
    if (e.notification) delivered(e.notification, cursor);
    else if ((e.ids || []).some((id) => !state.known.has(id))) fillGap(NAMED_JITTER_MS);
  } else if (e.type === "marked") {
    marked(e.id, e.mark, e.counts, cursor);
  } else if (e.type === "markedAll") {
    markedAll(e.mark, Number(e.through), e.counts, cursor);
  } else if (e.type === "retracted") {
    retracted(e.id, cursor);
  } else if (e.type === "corrected") {
    corrected(e.id, e.content);
  } else if (e.type === "resync") {
    fillGap(); // more was missed than an event tells: the view is read again
  }
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

function render() {
  const counts = state.counts;
  // Expiry is known ahead: the first shown notification to expire leaves then, without a read
  // (a broadcast expires for all its recipients at once).
  clearTimeout(expiryTimer);
  const next = Math.min(...state.items.map((n) => Date.parse(n.expiresOn)).filter((t) => t > Date.now()));
  if (Number.isFinite(next)) expiryTimer = setTimeout(expire, Math.min(next - Date.now() + 500, 2 ** 31 - 1));
  const badge = $("badge");
  badge.textContent = counts.unread > 99 || !counts.exact ? "99+" : String(counts.unread);
  badge.hidden = counts.unread === 0;
  $("bell").setAttribute("aria-label", `Notifications, ${badge.hidden ? "none" : badge.textContent} unread`);
  const list = $("list");
  list.replaceChildren(...state.items.map(card));
  $("empty").hidden = state.items.length > 0;
}

function expire() {
  const now = Date.now();
  const gone = state.items.filter((n) => Date.parse(n.expiresOn) <= now);
  state.items = state.items.filter((n) => Date.parse(n.expiresOn) > now);
  const c = { ...state.counts };
  for (const n of gone) {
    if (!n.archived && !n.read) c.unread = Math.max(0, c.unread - 1);
    if (!n.archived && !n.seen) c.unseen = Math.max(0, c.unseen - 1);
  }
  state.counts = c;
  render();
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
  const mark = (m) => () => api("POST", `/users/me/notifications/${n.id}/${m}`).then(() => settled(n.id, m), report);
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

/** After the person's own mark: applied at once; the live event brings the counts (polling, a read). */
function settled(id, mark) {
  marked(id, mark, state.counts, state.countsAt);
  if (!state.live) reload();
}

function act(n, action) {
  const d = action.data || {};
  api("POST", `/users/me/notifications/${n.id}/read`).then(() => settled(n.id, "read"), report);
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
  state.live = true;
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  stopPolling();
  $("live").textContent = "Live";
}

/** A wait before the next try: at random up to 1 s, 2 s, 4 s ... 5 minutes (full jitter). */
function retryDelay() {
  return between(0, Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** state.failures));
}

function retry() {
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(() => { state.retryTimer = null; if (state.token) connect(); }, retryDelay());
}

function lost(channel) {
  // A ticket is good once: reconnect with a new one, from the cursor.
  if (state.source !== channel) return;
  state.source = null;
  state.live = false;
  clearTimeout(state.pingTimer);
  clearTimeout(state.renewTimer);
  state.failures += 1;
  if (state.failures >= 3) startPolling();
  else $("live").textContent = "Reconnecting\u2026";
  if (state.first) reload();
  retry();
}

/** A message of the stack's WebSocket API: `{"id": cursor, "event": {...}}`. */
function received(m) {
  let message;
  try { message = JSON.parse(m.data); } catch (_) { return; /* not ours */ }
  if (!message || !message.event) return;
  seenCursor(message.id);
  apply(message.event, Number(message.id));
}

/** Pings within API Gateway's idle timeout, each after its own random wait. */
function keepAlive(socket) {
  clearTimeout(state.pingTimer);
  state.pingTimer = setTimeout(() => {
    if (state.source !== socket) return;
    try { socket.send(JSON.stringify({ action: "ping" })); } catch (_) { /* closing: onclose follows */ }
    keepAlive(socket);
  }, between(...PING_MS));
}

/** Before API Gateway's two hours: a new connection, the old one closed once it is open. */
function renewLater(socket) {
  clearTimeout(state.renewTimer);
  state.renewTimer = setTimeout(() => {
    if (state.source === socket) openSocket(socket).catch(() => renewSoon(socket));
  }, between(...RENEW_MS));
}

/** A renewal that did not open: tried again in about a minute while the old one lasts. */
function renewSoon(socket) {
  clearTimeout(state.renewTimer);
  state.renewTimer = setTimeout(() => {
    if (state.source === socket) openSocket(socket).catch(() => renewSoon(socket));
  }, between(0.5 * POLL_MS, 1.5 * POLL_MS));
}

async function openSocket(previous) {
  const { ticket } = await api("POST", "/users/me/realtime-ticket");
  if (!state.token) return; // signed out meanwhile
  const socket = new WebSocket(`${realtimeUrl()}?ticket=${encodeURIComponent(ticket)}`);
  socket.onmessage = received;
  socket.onopen = () => {
    // Superseded while it opened (the page reconnected meanwhile): not this one.
    if (state.source !== socket && state.source !== previous) { socket.onclose = null; socket.close(); return; }
    const renewing = previous && state.source === previous;
    state.source = socket;
    live();
    keepAlive(socket);
    renewLater(socket);
    if (renewing) {
      // The old one stays a while (posts already looked up go to it), then the page reads its
      // view once: whatever reached neither is shown.
      previous.onclose = null;
      previous.onmessage = received;
      state.graceTimer = setTimeout(() => { previous.close(); fillGap(); }, RENEW_GRACE_MS);
    } else if (state.first) {
      reload();
    } else {
      fillGap(); // anything delivered while the page had no connection
    }
  };
  socket.onclose = () => {
    if (state.source === socket) lost(socket);
    else if (previous && state.source === previous) renewSoon(previous);
  };
  if (!previous) state.source = socket;
}

async function connect() {
  if (state.source) state.source.close();
  state.source = null;
  try {
    if (realtimeUrl()) {
      await openSocket(null);
      return;
    }
    const { ticket } = await api("POST", "/users/me/realtime-ticket");
    const after = state.cursor ? `&after=${state.cursor}` : "";
    const source = new EventSource(`/realtime?ticket=${encodeURIComponent(ticket)}${after}`);
    state.source = source;
    source.addEventListener("hello", (e) => {
      const first = state.first;
      seenCursor(e.lastEventId);
      live();
      // The page's first read follows the channel's opening, so nothing falls between them;
      // after a drop, what was missed comes as the catch-up event.
      if (first) reload();
    });
    for (const kind of ["new", "marked", "markedAll", "retracted", "corrected", "resync"]) {
      source.addEventListener(kind, (e) => {
        seenCursor(e.lastEventId);
        try { apply(JSON.parse(e.data), Number(e.lastEventId)); } catch (_) { fillGap(); }
      });
    }
    source.onerror = () => { source.close(); lost(source); };
  } catch (e) {
    if (!state.token) return;
    state.failures += 1;
    if (state.failures >= 3) startPolling();
    if (state.first) reload();
    retry();
  }
}

/** The spec's cadence without the live channel: about once a minute, each page at its own moment. */
function startPolling() {
  state.live = false;
  $("live").textContent = "Checking for new notifications every minute";
  if (state.pollTimer) return;
  const next = () => {
    // A retry already waiting (the last read failed) stands for this poll: backing off, not on top.
    state.pollTimer = setTimeout(() => { if (!state.gapTimer) reload(); next(); }, between(0.9 * POLL_MS, 1.1 * POLL_MS));
  };
  next();
}

function stopPolling() {
  if (state.pollTimer) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

// ---- sign in and out, wiring --------------------------------------------------------------------

function signOut(message) {
  state.token = "";
  sessionStorage.removeItem("inbox-token");
  if (state.source) state.source.close();
  state.source = null;
  state.live = false;
  stopPolling();
  [state.retryTimer, state.pingTimer, state.renewTimer, state.gapTimer, state.graceTimer].forEach(clearTimeout);
  state.gapTimer = null;
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
  // The channel first, then the read: what is delivered in between comes as an event.
  connect();
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("inbox-token", state.token);
    start();
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("readall").addEventListener("click", () => api("POST", "/users/me/notifications/mark-all-read")
    .then(() => { if (!state.live) load().catch(report); }, report));
  $("bell").addEventListener("click", () => {
    api("POST", "/users/me/notifications/mark-all-seen").then(() => { if (!state.live) load().catch(report); }, report);
    $("center").scrollIntoView();
    $("list").querySelector("button")?.focus();
  });
  document.querySelectorAll(".filters button").forEach((b) => b.addEventListener("click", () => {
    state.status = b.dataset.status;
    document.querySelectorAll(".filters button").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    reload();
  }));
  $("pane-close").addEventListener("click", () => { $("pane").hidden = true; });
  $("dialog-close").addEventListener("click", () => { $("dialog").close(); $("dialog-frame").src = "about:blank"; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("pane").hidden = true; });
  // The spec's cadence without the live channel: also on navigation back to the page.
  window.addEventListener("pageshow", () => { if (state.token && !state.live) reload(); });
  // Shown again after a while (another tab, a laptop woken up): one read, as the spec's
  // navigation does; what an event never brought is shown then.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") { state.hiddenAt = Date.now(); return; }
    const away = state.hiddenAt && Date.now() - state.hiddenAt > SHOWN_AGAIN_MS;
    if (state.token && away && Date.now() - state.loadedAt > SHOWN_AGAIN_MS) fillGap();
  });
  if (state.token) start();
});
