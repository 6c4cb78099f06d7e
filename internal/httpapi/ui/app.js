// hbmesh dashboard. Peer data (ids, hosts, labels) is untrusted: it only
// ever reaches the page through textContent and DOM APIs, never innerHTML.
"use strict";
(() => {
  const STATES = ["dead", "suspect", "alive", "left"]; // worst first
  const RANK = { dead: 0, suspect: 1, alive: 2, left: 3 };
  const MAX_ROWS = 500;        // rows rendered; the rest need a filter
  const MIN_FRAME_MS = 250;    // at most ~4 renders a second
  const REFRESH_MS = 5000;     // /api/peers refresh (ages, strips) of a big fleet...
  const REFRESH_SMALL_MS = 1000; // ...every second while the table is small
  // Up to SMALL_TABLE peers the page loads the whole table and filters it
  // itself. Above, it asks the monitor for the first MAX_ROWS rows that
  // match its filter, so a 10,000-peer fleet costs one page of rows per
  // refresh, not the fleet; the counts then come from the monitor's status.
  const SMALL_TABLE = 1000;
  const FILTER_WAIT_MS = 200;  // a big fleet's filter is asked for once typing pauses
  const HIST = 32;
  // The stream carries a status event every 2 s (StatusInterval) and a
  // keepalive every 15 s: a stream silent for longer than this is a hung
  // monitor or a dead path, whatever the socket says.
  const STALE_MS = 7000;
  const FETCH_TIMEOUT_MS = 4000;
  const RECONNECT_MIN_MS = 1000, RECONNECT_MAX_MS = 15000;

  // Marks this page load, so a test can tell the page was never reloaded.
  window.hbmeshLoadedAt = Date.now();

  const $ = (id) => document.getElementById(id);
  // Ids in natural order: web-2 before web-10.
  const byID = new Intl.Collator("en", { numeric: true }).compare;
  const peers = new Map();     // id -> peer (the PeerJSON shape), in the server's order
  // What peers holds: the whole fleet (big false), or the first rows the
  // monitor matched for the query key, of matched in all.
  let view = { big: false, key: "", matched: 0 };
  let gen = 0;                 // refresh generation: an older answer landing late is dropped
  let soonTimer = 0;
  const shown = new Set(STATES);
  // A link may preset the filter, as an alert's generatorURL does: /?q=web-1.
  const linked = new URLSearchParams(location.search).get("q") || "";
  let filter = linked.trim().toLowerCase();
  let skew = 0;                // server clock minus browser clock, ms
  let status = null;           // last status from SSE or /api/status
  let streamUp = false;
  let fetchFailed = false;
  let lastEventAt = 0;         // browser time of the last SSE message
  let dataAt = 0;              // browser time of the last good data (SSE or fetch)
  let es = null;               // the current EventSource
  let backoff = RECONNECT_MIN_MS;
  let reconnectTimer = 0;

  const serverNow = () => Date.now() + skew;
  // The fleet's size as the monitor counts it; before any status, what is loaded.
  const fleetSize = () => status && typeof status.peers === "number" ? status.peers : peers.size;

  // query is the page's filter as /api/peers parameters ("" for everything).
  function query() {
    const q = new URLSearchParams();
    if (shown.size < STATES.length) q.set("state", STATES.filter((s) => shown.has(s)).join(","));
    if (filter) q.set("q", filter);
    return q.toString();
  }
  const ms = (t) => (t ? Date.parse(t) : NaN);

  function ago(msec) {
    if (!isFinite(msec)) return "—";
    const s = Math.max(0, msec) / 1000;
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.floor(s)) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m " + Math.floor(s % 60) + "s ago";
    if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m ago";
    return Math.floor(s / 86400) + "d ago";
  }
  const dur = (msec) => ago(msec).replace(" ago", "");

  // ---- rendering, batched through requestAnimationFrame ----
  let scheduled = false, lastFrame = 0;
  function schedule() {
    if (scheduled) return;
    scheduled = true;
    const wait = Math.max(0, MIN_FRAME_MS - (performance.now() - lastFrame));
    setTimeout(() => requestAnimationFrame(() => {
      scheduled = false;
      lastFrame = performance.now();
      render();
    }), wait);
  }

  function matches(p) {
    if (!shown.has(p.state)) return false;
    if (!filter) return true;
    if (p.id.toLowerCase().includes(filter) || (p.host || "").toLowerCase().includes(filter)) return true;
    for (const [k, v] of Object.entries(p.labels || {})) {
      if ((k + "=" + v).toLowerCase().includes(filter)) return true;
    }
    return false;
  }

  const css = getComputedStyle(document.documentElement);
  // strip draws the beat history. history is newest first and was true at
  // the snapshot; shift empty cells in for the intervals since, so a peer
  // that fell silent shows it before the next refresh.
  function strip(history, shift) {
    const c = document.createElement("canvas");
    const cell = 5, gap = 1, ratio = window.devicePixelRatio || 1;
    const w = HIST * (cell + gap), h = 12;
    c.width = w * ratio; c.height = h * ratio;
    c.className = "strip";
    c.style.width = w + "px"; c.style.height = h + "px"; // CSSOM, allowed by CSP
    const g = c.getContext("2d");
    g.scale(ratio, ratio);
    const on = css.getPropertyValue("--cell-on").trim() || "#2da44e";
    const off = css.getPropertyValue("--cell-off").trim() || "#d8dbe0";
    const bits = ("0".repeat(Math.min(shift || 0, HIST)) + (history || "")).slice(0, HIST);
    for (let i = 0; i < HIST; i++) {
      // history is newest first; draw newest on the right. The newest
      // cell is the interval still in progress: without its beat yet it
      // is drawn hollow, not as a miss.
      const beat = bits[HIST - 1 - i] === "1";
      if (!beat && i === HIST - 1 && !shift) {
        g.strokeStyle = off;
        g.strokeRect(i * (cell + gap) + 0.5, 0.5, cell - 1, h - 1);
        continue;
      }
      g.fillStyle = beat ? on : off;
      g.fillRect(i * (cell + gap), 0, cell, h);
    }
    c.title = "last " + HIST + " intervals, newest right (the rightmost is still in progress)";
    return c;
  }

  function td(text, cls) {
    const e = document.createElement("td");
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function row(p, now) {
    const tr = document.createElement("tr");
    tr.dataset.id = p.id;
    tr.dataset.state = p.state;
    tr.dataset.seq = String(p.seq || 0);
    const idc = tr.appendChild(td(p.id, "id"));
    idc.title = p.id;
    const hostc = tr.appendChild(td(p.host || "", "host"));
    hostc.title = p.host || "";
    const st = td();
    const badge = document.createElement("span");
    badge.className = "badge " + p.state;
    badge.textContent = p.state;
    if (p.reason) badge.title = p.state + ": " + p.reason.replace(/_/g, " ");
    st.appendChild(badge);
    if (p.conflict) {
      const c = document.createElement("span");
      c.className = "conflict";
      c.textContent = "boot conflict";
      st.appendChild(c);
    }
    tr.appendChild(st);
    const lb = tr.appendChild(td(ago(now - ms(p.last_beat)), "num"));
    if (isFinite(ms(p.last_beat))) lb.title = new Date(ms(p.last_beat)).toISOString();
    const sc = tr.appendChild(td(dur(now - ms(p.since)), "num"));
    if (isFinite(ms(p.since))) sc.title = "since " + new Date(ms(p.since)).toISOString();
    tr.appendChild(td(p.probe_rtt_ms > 0 ? p.probe_rtt_ms.toFixed(1) + " ms" : "—", "num"));
    tr.appendChild(td(p.version || ""));
    const labels = td(undefined, "labels");
    for (const k of Object.keys(p.labels || {}).sort()) {
      const chip = document.createElement("span");
      chip.className = "chip";
      chip.textContent = k + "=" + p.labels[k];
      chip.title = chip.textContent;
      labels.appendChild(chip);
    }
    tr.appendChild(labels);
    const s = td();
    // Only a peer that is not alive is known to have stayed silent since
    // the snapshot; an alive one's newer beats arrive with the next refresh.
    const silent = p.state !== "alive" && p.interval_ms > 0 && p.hist_at;
    const shift = silent ? Math.max(0, Math.floor((now - p.hist_at) / p.interval_ms)) : 0;
    s.appendChild(strip(p.history, shift));
    tr.appendChild(s);
    return tr;
  }

  function render() {
    const now = serverNow();
    const big = view.big;
    const local = { dead: 0, suspect: 0, alive: 0, left: 0 };
    const list = [];
    for (const p of peers.values()) {
      if (p.state in local) local[p.state]++;
      if (matches(p)) list.push(p);
    }
    // A whole table sorts by natural id (web-2 before web-10). A big
    // fleet's rows keep the monitor's order, which is natural too (its
    // byte order for punctuation may differ from the collator's): that
    // order chose which rows came, and sort is stable.
    list.sort((a, b) => (RANK[a.state] ?? 9) - (RANK[b.state] ?? 9) || (big ? 0 : byID(a.id, b.id)));
    const rows = list.slice(0, MAX_ROWS);
    const frag = document.createDocumentFragment();
    for (const p of rows) frag.appendChild(row(p, now));
    $("rows").replaceChildren(frag);
    // Only the monitor can count a fleet the page holds part of.
    const counts = big && status && status.peers_by_state ? status.peers_by_state : local;
    for (const s of STATES) document.querySelector(`[data-count="${s}"]`).textContent = counts[s] || 0;
    const total = big ? fleetSize() : peers.size;
    const matched = big ? Math.max(view.matched, list.length) : list.length;
    // Until the monitor answers a changed filter, these rows are the old
    // answer filtered here: say so rather than count them.
    const pending = big && view.key !== query();
    $("shown").textContent = pending ? "filtering…" : matched + " of " + total + " peers";
    const more = $("more");
    more.hidden = pending || matched <= rows.length;
    more.textContent = `showing ${rows.length} of ${matched} — filter to narrow`;
    // An empty fleet and a wrong prefix look alike: say where it looks.
    const empty = $("empty");
    empty.hidden = list.length > 0 || pending;
    empty.textContent = total === 0
      ? `No beats seen yet on ${(status && status.prefix) || "hb"}.* (check the nodes' --prefix and NATS account).`
      : "No peers match.";
    const id = $("monitor-id").textContent;
    document.title = (counts.dead ? counts.dead + " dead · " : "") + "hbmesh " + (id || "monitor");
    renderBanner();
  }

  // The banner tells apart the two ways the view can be wrong: this page
  // cannot reach the monitor (its data is frozen), and the monitor cannot
  // see NATS (its verdicts are suspended). Either way the table is dimmed.
  function renderBanner() {
    const msgs = [];
    const pageLost = !streamUp || fetchFailed;
    if (pageLost) {
      const asOf = dataAt ? " since " + new Date(dataAt).toLocaleTimeString() : "";
      msgs.push("⚠ dashboard cannot reach the monitor" + asOf + ": data below is frozen; reconnecting");
    }
    if (status && status.connected === false) msgs.push("⚠ monitor disconnected from NATS: verdicts suspended");
    else if (status && status.impaired === true) msgs.push("⚠ monitor impaired: verdicts suspended");
    const b = $("banner");
    b.hidden = msgs.length === 0;
    b.textContent = msgs.join(" — ");
    document.body.classList.toggle("stale", msgs.length > 0);
    const live = $("live");
    live.className = "live " + (streamUp ? "ok" : "bad");
    live.textContent = streamUp ? "live" : "offline";
  }

  // ---- data ----
  // applyList replaces the table with list: the whole fleet, or (big) the
  // first rows matching the query key.
  function applyList(list, big, key) {
    if (list.time) skew = Date.parse(list.time) - Date.now();
    const at = list.time ? Date.parse(list.time) : Date.now() + skew;
    if (list.monitor) $("monitor-id").textContent = list.monitor;
    const old = new Map(peers);
    peers.clear();
    for (const p of list.peers || []) {
      // A transition that arrived over SSE after this list was taken is
      // newer than what the list says; keep it.
      const o = old.get(p.id);
      if (o && ms(o.since) > ms(p.since)) { p.state = o.state; p.since = o.since; p.reason = o.reason; }
      p.hist_at = at;
      peers.set(p.id, p);
    }
    view = { big, key, matched: list.matched ?? peers.size };
    schedule();
  }

  function applyTransition(ev) {
    let p = peers.get(ev.id);
    if (!p) {
      p = { id: ev.id, labels: {}, history: "", probe_rtt_ms: 0, version: "" };
      peers.set(ev.id, p);
    }
    p.host = ev.host;
    p.state = ev.state;
    p.since = ev.time;
    p.reason = ev.reason;
    p.boot = ev.boot;
    p.seq = ev.seq;
    p.interval_ms = ev.interval_ms;
    p.conflict = !!ev.conflict;
    if (ev.reason === "beat" || ev.reason === "first_beat" || ev.reason === "restarted") p.last_beat = ev.time;
    schedule();
  }

  function applyStatus(st) {
    status = st;
    dataAt = Date.now();
    if (st.monitor) $("monitor-id").textContent = st.monitor;
    renderBanner();
  }

  async function refresh() {
    const my = ++gen;
    // A hung monitor accepts the connection and never answers: bound it.
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), FETCH_TIMEOUT_MS);
    const get = async (url) => {
      const r = await fetch(url, { cache: "no-store", signal: ac.signal });
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.json();
    };
    try {
      // The status first: its counts say whether the whole table is
      // small enough to load.
      const st = await get("api/status");
      if (my !== gen) return;
      applyStatus(st);
      const big = fleetSize() > SMALL_TABLE;
      const key = big ? query() : "";
      const list = await get(big ? `api/peers?limit=${MAX_ROWS}` + (key && "&" + key) : "api/peers");
      if (my !== gen) return;
      applyList(list, big, key);
      fetchFailed = false;
      dataAt = Date.now();
    } catch (e) {
      if (my !== gen) return;
      fetchFailed = true;
      renderBanner();
    } finally {
      clearTimeout(timer);
    }
  }

  // refreshSoon asks again once the filter has stopped changing.
  function refreshSoon() {
    clearTimeout(soonTimer);
    soonTimer = setTimeout(refresh, FILTER_WAIT_MS);
  }

  // EventSource retries by itself after a network error, but gives up for
  // good after an HTTP error (a 503 at the stream limit, a proxy's 502
  // while the monitor restarts), and a hung monitor leaves it open and
  // silent. So the page watches the stream and opens a new one itself,
  // backing off up to RECONNECT_MAX_MS.
  function connect() {
    clearTimeout(reconnectTimer);
    if (es) es.close();
    // The stream is not compressed: ask for no more of a snapshot than a
    // table the page would load whole.
    es = new EventSource(`api/events?limit=${SMALL_TABLE}`);
    lastEventAt = Date.now();
    const alive = () => { lastEventAt = Date.now(); dataAt = lastEventAt; streamUp = true; backoff = RECONNECT_MIN_MS; };
    es.onopen = () => { lastEventAt = Date.now(); streamUp = true; renderBanner(); };
    es.onerror = () => {
      streamUp = false;
      renderBanner();
      if (es.readyState === EventSource.CLOSED) reconnectLater();
    };
    es.onmessage = alive; // keepalive comments do not fire events; the status events do
    es.addEventListener("snapshot", (e) => {
      alive();
      const list = JSON.parse(e.data);
      // A cut snapshot (a fleet above SMALL_TABLE) shows neither the whole
      // fleet nor the filter's first rows: ask for those instead.
      if ((list.peers || []).length >= (list.matched ?? 0)) applyList(list, false, "");
      else refreshSoon();
    });
    es.addEventListener("transition", (e) => { alive(); applyTransition(JSON.parse(e.data)); });
    es.addEventListener("status", (e) => { alive(); applyStatus(JSON.parse(e.data)); });
  }

  function reconnectLater() {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
  }

  function watchStream() {
    if (Date.now() - lastEventAt > STALE_MS) {
      streamUp = false;
      renderBanner();
      if (es) es.close();
      reconnectLater();
      lastEventAt = Date.now(); // one reconnect per silent period
    }
  }

  // ---- controls ----
  // A whole table is filtered here at once; a big fleet's is asked of the
  // monitor, meanwhile narrowing the rows already shown.
  function filterChanged() {
    schedule();
    if (view.big) refreshSoon();
  }
  $("filter").value = linked;
  $("filter").addEventListener("input", (e) => { filter = e.target.value.trim().toLowerCase(); filterChanged(); });
  // A count shows only its state when clicked, and everything again when
  // clicked a second time: "dead 3" is a question, not a hide button.
  const toggles = document.querySelectorAll(".toggle");
  for (const b of toggles) {
    b.addEventListener("click", () => {
      const s = b.dataset.state;
      const solo = shown.size === 1 && shown.has(s);
      shown.clear();
      for (const t of solo ? STATES : [s]) shown.add(t);
      for (const t of toggles) {
        t.classList.toggle("on", shown.has(t.dataset.state));
        t.setAttribute("aria-pressed", String(shown.has(t.dataset.state)));
      }
      filterChanged();
    });
  }

  // Ages, strips and RTTs stay current: transitions come over SSE at once,
  // but an alive peer's new beats only with a refresh, so small tables are
  // refreshed every second and big fleets' first rows every 5 s.
  function refreshLoop() {
    refresh().finally(() => setTimeout(refreshLoop, view.big ? REFRESH_MS : REFRESH_SMALL_MS));
  }
  refreshLoop();
  connect();
  setInterval(schedule, 1000);       // ages tick
  setInterval(watchStream, 1000);
})();
