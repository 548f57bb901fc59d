// Weft's read-only web view. It reads everything through the JSON-RPC API of the weftd
// that served it (POST /) and re-reads whenever the events WebSocket (events_subscribe)
// reports a change, so the page follows the network without a reload.
//
// The token, when weftd has one, comes from the URL fragment (`/ui/#token=...`, never
// sent to the server) or a prompt, and is kept for this tab only (sessionStorage). API
// calls carry it as `Authorization: Bearer`; the WebSocket, which cannot carry headers,
// offers it as the subprotocol `weft.bearer.<hex>`.
"use strict";

const TOKEN_KEY = "weft-token";
const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_EVENTS = 30;

const view = {
  nodes: [],
  switches: [],
  ports: [],
  routers: [],
  events: [],
  eventCount: 0,
};

// ---- token ---------------------------------------------------------------------------

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    // Keep the token out of the address bar, screenshots and history.
    history.replaceState(null, "", location.pathname + location.search);
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

let asking = null;
function askForToken() {
  if (!asking) {
    asking = Promise.resolve().then(() => {
      const t = prompt("This weftd needs its API token:");
      if (t) sessionStorage.setItem(TOKEN_KEY, t);
      asking = null;
      return Boolean(t);
    });
  }
  return asking;
}

function hex(text) {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- API -----------------------------------------------------------------------------

let nextId = 1;
async function rpc(method, params = {}) {
  for (;;) {
    const headers = { "Content-Type": "application/json" };
    if (token()) headers.Authorization = "Bearer " + token();
    const resp = await fetch("/", {
      method: "POST",
      headers,
      body: JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params }),
    });
    if (resp.status === 401) {
      if (await askForToken()) continue;
      throw new Error("weftd refused the token");
    }
    const body = await resp.json();
    if (body.error) throw new Error(method + ": " + body.error.message);
    return body.result;
  }
}

// Re-reads everything the page shows; a change that arrives while a read is under way
// causes one more read after it, never two at once.
let reading = false;
let readAgain = false;
async function refresh() {
  if (reading) {
    readAgain = true;
    return;
  }
  reading = true;
  try {
    do {
      readAgain = false;
      const [nodes, switches, ports, routers] = await Promise.all([
        rpc("node_list"),
        rpc("switch_list"),
        rpc("port_list"),
        rpc("router_list"),
      ]);
      Object.assign(view, { nodes, switches, ports, routers });
      render();
    } while (readAgain);
  } catch (e) {
    setStatus(false, "error: " + e.message);
  } finally {
    reading = false;
  }
}

// ---- events --------------------------------------------------------------------------

let retryMs = 500;
function subscribe() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/";
  const protocols = token() ? ["weft.bearer." + hex(token())] : [];
  const ws = new WebSocket(url, protocols);
  ws.onopen = () => {
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "events_subscribe", params: {} }));
  };
  ws.onmessage = (msg) => {
    const m = JSON.parse(msg.data);
    if (m.id === 1 && m.result !== undefined) {
      // Subscribed: read once now, so nothing between the first read and this is missed.
      retryMs = 500;
      setStatus(true, "live");
      refresh();
    } else if (m.method === "events" && m.params) {
      noteEvent(m.params.result);
      refresh();
    } else if (m.error) {
      setStatus(false, "events_subscribe: " + m.error.message);
    }
  };
  ws.onclose = () => {
    setStatus(false, "reconnecting…");
    setTimeout(subscribe, retryMs);
    retryMs = Math.min(retryMs * 2, 10000);
  };
}

function noteEvent(ev) {
  view.eventCount += 1;
  document.body.dataset.events = String(view.eventCount);
  view.events.unshift({ when: new Date().toLocaleTimeString(), ev });
  view.events.length = Math.min(view.events.length, MAX_EVENTS);
}

// One line per event, with a port's name in place of its id when the page knows it.
function describe({ when, ev }) {
  const { type, ...rest } = ev;
  const names = new Map(view.ports.map((p) => [p.id, p.name]));
  for (const k of ["port", "id"]) {
    if (names.has(rest[k])) rest[k] = names.get(rest[k]);
  }
  return `${when}  ${type}  ${JSON.stringify(rest)}`;
}

function setStatus(live, text) {
  const s = document.getElementById("status");
  s.dataset.live = String(live);
  s.textContent = text;
}

// ---- rendering -----------------------------------------------------------------------

// Builds an element; `attrs` become attributes (data-*, class, ...), children are nodes
// or text (always inserted as text, never parsed as HTML).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function svg(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

function badge(up, yes = "up", no = "down") {
  return el("span", { class: "badge " + (up ? "up" : "down") }, up ? yes : no);
}

function render() {
  renderMesh();
  renderNodes();
  renderSwitches();
  renderRouters();
  const events = document.getElementById("events");
  events.replaceChildren(...view.events.map((e) => el("li", {}, describe(e))));
  document.getElementById("summary").textContent =
    `${view.nodes.length} hypervisors · ${view.switches.length} switches · ` +
    `${view.ports.length} ports · ${view.routers.length} routers`;
}

// Hypervisors on a circle; a line for every pair that has a tunnel port between them.
function renderMesh() {
  const mesh = document.getElementById("mesh");
  const nodes = [...view.nodes].sort((a, b) => a.id.localeCompare(b.id));
  const [cx, cy, r] = [300, 220, nodes.length > 1 ? 160 : 0];
  const at = new Map(
    nodes.map((n, i) => {
      const a = (2 * Math.PI * i) / nodes.length - Math.PI / 2;
      return [n.id, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) }];
    }),
  );
  // "a|b" (sorted) -> how many of the two ends have the tunnel port.
  const tunnels = new Map();
  for (const n of nodes) {
    for (const remote of n.tunnels || []) {
      if (!at.has(remote) || remote === n.id) continue;
      const key = [n.id, remote].sort().join("|");
      tunnels.set(key, (tunnels.get(key) || 0) + 1);
    }
  }
  const lines = [...tunnels].map(([key, ends]) => {
    const [a, b] = key.split("|").map((id) => at.get(id));
    return svg("line", {
      class: "tunnel" + (ends < 2 ? " one-way" : ""),
      "data-tunnel": key,
      x1: a.x, y1: a.y, x2: b.x, y2: b.y,
    }, svg("title", {}, key.replace("|", " ↔ ")));
  });
  const groups = nodes.map((n) => {
    const p = at.get(n.id);
    const up = n.ovsdb_connected && n.openflow_connected;
    return svg("g", {
      class: "node" + (up ? " up" : ""),
      "data-node": n.id,
      transform: `translate(${p.x},${p.y})`,
    },
      svg("circle", { r: 40 }),
      svg("text", { class: "id", y: -6 }, n.id),
      svg("text", { y: 9 }, n.encap_ip || "no encap ip"),
      svg("text", { y: 24 }, `${n.flow_count} flows`),
    );
  });
  mesh.replaceChildren(...lines, ...groups);
}

function renderNodes() {
  const body = document.querySelector("#nodes tbody");
  body.replaceChildren(...[...view.nodes].sort((a, b) => a.id.localeCompare(b.id)).map((n) => {
    const show = el("button", { type: "button" }, "flows");
    show.onclick = () => showFlows(n.id);
    return el("tr", { "data-hypervisor": n.id },
      el("td", { class: "mono" }, n.id),
      el("td", { class: "mono" }, `${n.encap_type} ${n.encap_ip || "—"}`),
      el("td", {}, badge(n.ovsdb_connected, "connected", "disconnected")),
      el("td", {}, badge(n.openflow_connected, "connected", "disconnected")),
      el("td", {}, String(n.ports.length)),
      el("td", { class: "flow-count" }, String(n.flow_count)),
      el("td", {}, show),
    );
  }));
}

async function showFlows(node) {
  const pre = document.getElementById("flows");
  try {
    const r = await rpc("node_flows", { node });
    pre.textContent = `# ${r.node}: ${r.flows.length} flows\n` + r.flows.join("\n");
  } catch (e) {
    pre.textContent = e.message;
  }
  pre.hidden = false;
}

function portRow(p) {
  const where = p.binding ? `${p.binding.node} port ${p.binding.ofport}` : "not bound";
  return el("tr", {
    "data-port": p.name,
    "data-up": String(p.up),
    "data-bound": p.binding ? p.binding.node : "",
  },
    el("td", { class: "mono" }, p.name),
    el("td", { class: "mono" }, p.mac),
    el("td", { class: "mono" }, (p.ips || []).join(", ")),
    el("td", {}, badge(p.up)),
    el("td", { class: p.binding ? "mono" : "muted" }, where),
  );
}

function renderSwitches() {
  const box = document.getElementById("switches");
  if (view.switches.length === 0) {
    box.replaceChildren(el("p", { class: "muted" }, "none"));
    return;
  }
  box.replaceChildren(...view.switches.map((s) => {
    const ports = view.ports.filter((p) => p.switch === s.id);
    const kind = s.provider ? `provider ${s.provider.physnet}` : `VNI ${s.vni}`;
    return el("div", { "data-switch": s.name },
      el("h3", {}, `${s.name} `, el("span", { class: "muted" }, kind)),
      ports.length === 0
        ? el("p", { class: "muted" }, "no ports")
        : el("table", {},
          el("thead", {}, el("tr", {}, ...["port", "MAC", "IPs", "", "bound on"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...ports.map(portRow))),
    );
  }));
}

function renderRouters() {
  const box = document.getElementById("routers");
  if (view.routers.length === 0) {
    box.replaceChildren(el("p", { class: "muted" }, "none"));
    return;
  }
  box.replaceChildren(...view.routers.map((r) => el("div", { "data-router": r.name },
    el("h3", {}, r.name),
    el("table", {},
      el("thead", {}, el("tr", {}, ...["router port", "switch", "MAC", "addresses"].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...r.ports.map((p) => el("tr", { "data-router-port": p.name },
        el("td", { class: "mono" }, p.name),
        el("td", {}, p.switch_name),
        el("td", { class: "mono" }, p.mac),
        el("td", { class: "mono" }, p.ips.join(", ")),
      )))),
    r.routes.length === 0 ? "" : el("p", { class: "mono" },
      "routes: " + r.routes.map((x) => `${x.prefix} via ${x.nexthop}`).join(", ")),
  )));
}

// ---- start ---------------------------------------------------------------------------

takeTokenFromFragment();
document.body.dataset.events = "0";
subscribe();
refresh();
