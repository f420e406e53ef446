// The web simulator's page: the handheld's screen from the websocket, touches back to it,
// the controls as POSTs to /api/<control>, the traces as they come. (tools/websim/__init__.py
// describes the messages.)
"use strict";
const W = 240, H = 320, HEAD = 16, SHOWN = 1, INVERTED = 2, BGR = 4;
const canvas = document.getElementById("screen");
const ctx = canvas.getContext("2d");
const image = ctx.createImageData(W, H);
const $ = (id) => document.getElementById(id);
// For tests and the curious: frames painted, the last frame number, latencies (ms, server stamp to paint).
const websim = window.websim = { frames: 0, lastFrame: -1, latencies: [], state: null, touches: 0 };

async function inflate(buffer) {
  const stream = new Blob([buffer]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function paint(head, pixels) {
  const flags = head.getUint8(4), out = image.data;
  const shown = flags & SHOWN, inv = flags & INVERTED ? 0xffff : 0, bgr = flags & BGR;
  for (let i = 0, o = 0; i < W * H; i++, o += 4) {
    let r = 0, g = 0, b = 0;
    if (shown) {
      const c = ((pixels[2 * i] << 8) | pixels[2 * i + 1]) ^ inv;
      r = (c >> 11) & 31; g = (c >> 5) & 63; b = c & 31;
      r = (r << 3) | (r >> 2); g = (g << 2) | (g >> 4); b = (b << 3) | (b >> 2);
      if (bgr) [r, b] = [b, r];
    }
    out[o] = r; out[o + 1] = g; out[o + 2] = b; out[o + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  websim.frames++;
  websim.lastFrame = head.getUint32(0, true);
  websim.latencies.push(Date.now() - head.getFloat64(8, true));
  if (websim.latencies.length > 200) websim.latencies.shift();
}

// Frames are inflated one after the other, so that they are painted in the order they came.
let painting = Promise.resolve();
function onFrame(buffer) {
  painting = painting.then(async () => {
    const head = new DataView(buffer, 0, HEAD);
    paint(head, await inflate(buffer.slice(HEAD)));
  }).catch((e) => say("screen: " + e, true));
}

// ---- the websocket -----------------------------------------------------------------------------
let ws = null;
function connect() {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.binaryType = "arraybuffer";
  ws.onopen = () => { $("link").textContent = "live"; $("link").className = "badge"; };
  ws.onclose = () => {
    $("link").textContent = "disconnected"; $("link").className = "badge off";
    setTimeout(connect, 1000);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") return onFrame(ev.data);
    const m = JSON.parse(ev.data);
    if (m.type === "state") applyState(m);
    else if (m.type === "log") appendLog(m.text);
    else if (m.type === "apdu") addApdu(m);
    else if (m.type === "iso8583") addIso(m);
    else if (m.type === "error") say(m.text, true);
  };
}

function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }

// ---- touch: the pointer on the screen, at panel coordinates -------------------------------------
function panelXY(ev) {
  const r = canvas.getBoundingClientRect();
  const x = Math.floor((ev.clientX - r.left) * W / r.width), y = Math.floor((ev.clientY - r.top) * H / r.height);
  return { x: Math.min(W - 1, Math.max(0, x)), y: Math.min(H - 1, Math.max(0, y)) };
}
let down = false, lastMove = 0;
canvas.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  canvas.setPointerCapture(ev.pointerId);
  down = true;
  const p = panelXY(ev);
  websim.touches++;
  $("touchpos").textContent = "touch: " + p.x + ", " + p.y;
  send({ type: "touch", action: "touch", x: p.x, y: p.y });
});
canvas.addEventListener("pointermove", (ev) => {
  if (!down || ev.timeStamp - lastMove < 16) return;  // the panel reports at ~60 Hz
  lastMove = ev.timeStamp;
  const p = panelXY(ev);
  $("touchpos").textContent = "touch: " + p.x + ", " + p.y;
  send({ type: "touch", action: "move", x: p.x, y: p.y });
});
function release() { if (down) { down = false; send({ type: "touch", action: "release" }); } }
canvas.addEventListener("pointerup", release);
canvas.addEventListener("pointercancel", release);

// ---- zoom --------------------------------------------------------------------------------------
function zoom(z) {
  if (z === "fit") {
    const room = window.innerHeight - canvas.getBoundingClientRect().top - 70;
    z = Math.max(1, Math.floor(room / H * 4) / 4);
  }
  canvas.style.width = W * z + "px";
  canvas.style.height = H * z + "px";
}
document.querySelectorAll("[data-zoom]").forEach((b) =>
  b.addEventListener("click", () => zoom(b.dataset.zoom === "fit" ? "fit" : Number(b.dataset.zoom))));

// ---- controls ----------------------------------------------------------------------------------
function say(text, error) { $("status").textContent = text; $("status").className = error ? "muted error" : "muted"; }

async function control(name, args) {
  say(name.replace("_", " ") + " …");
  try {
    const r = await fetch("/api/" + name, { method: "POST", headers: { "Content-Type": "application/json" },
                                             body: JSON.stringify(args || {}) });
    const answer = await r.json();
    if (!answer.ok) say(answer.error, true);
    else say(name.replace("_", " ") + ": done");
    return answer;
  } catch (e) { say(name + ": " + e, true); }
}

const card = () => ({ card: $("card").value });
$("tap_card").onclick = () => control("tap_card", card());
$("remove_card").onclick = () => control("remove_card");
$("insert_card").onclick = () => control("insert_card", card());
$("eject_card").onclick = () => control("eject_card");
$("finger_enrolled").onclick = () => control("finger", { finger: websim.state.fingers.enrolled[0] });
$("finger_unknown").onclick = () => control("finger", { finger: websim.state.fingers.unknown });
$("lift_finger").onclick = () => control("lift_finger");
$("standby").onclick = () => control("standby");
$("wifi_off").onclick = () => control("wifi_off");
$("wifi_on").onclick = () => control("wifi_on");
$("power_cut").onclick = () => control("power_cut");
$("merchant").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = Object.fromEntries(new FormData(ev.target));
  form.amount = Number(form.amount);
  const answer = await control("merchant", form);
  if (answer && answer.ok) say("bank answered HTTP " + answer.result.status + ": " + JSON.stringify(answer.result.answer));
});

function applyState(s) {
  websim.state = s;
  const select = $("card"), keep = select.value;
  select.replaceChildren(...s.cards.map((name) => new Option(name, name)));
  if (s.cards.includes(keep)) select.value = keep;
  else { const emv = s.cards.find((n) => n.startsWith("emv:")); if (emv) select.value = emv; }
  $("repl").textContent = "REPL on " + s.repl;
  $("demo").textContent = s.demo ? "demo: owner PIN " + s.demo.pin : "";
  $("finger_enrolled").title = "places " + s.fingers.enrolled[0];
  for (const id of ["wifi_on", "wifi_off"]) {
    $(id).disabled = !s.wifi;
    $(id).title = s.wifi ? "" : "not available: the rig has no Wi-Fi access point model";
  }
  const bankOk = s.bank && s.bank.merchant_api;
  $("push_request").disabled = !bankOk;
  $("push_request").title = bankOk ? "POST " + s.bank.merchant_api + "/payment-requests" : "not available: no bank host";
  $("iso-note").textContent = !s.bank ? "not available: no bank host running"
    : s.bank.trace ? "" : "not available: " + (s.bank.error || "the bank host exposes no message trace");
}

// ---- traces ------------------------------------------------------------------------------------
function atBottom(el) { return el.scrollHeight - el.scrollTop - el.clientHeight < 30; }
function keepTail(el, fn, max) {
  const follow = atBottom(el);
  fn();
  while (el.childNodes.length > max) el.removeChild(el.firstChild);
  if (follow) el.scrollTop = el.scrollHeight;
}
function time(t) { return t ? new Date(t * 1000).toISOString().slice(11, 23) : ""; }
function spaced(hex) { return hex.replace(/(..)(?=.)/g, "$1 ").toUpperCase(); }

function addApdu(m) {
  const el = $("apdus");
  keepTail(el, () => {
    const div = document.createElement("div");
    div.className = "apdu";
    div.innerHTML = '<span class="src"></span>\n<span class="cmd"></span>\n<span class="rsp"></span>';
    div.children[0].textContent = time(m.time) + " " + m.source;
    div.children[1].textContent = "→ " + (m.command.includes("[") ? m.command.replace(/^([0-9a-f]+)/i, (h) => spaced(h)) : spaced(m.command));
    div.children[2].textContent = "← " + spaced(m.response);
    el.appendChild(div);
  }, 400);
}

function addIso(m) {
  const el = $("iso8583");
  keepTail(el, () => {
    const div = document.createElement("div");
    div.className = "iso";
    const fields = Object.entries(m.fields).map(([k, v]) => "  DE" + k + " " + v).join("\n");
    div.textContent = time(m.time) + " " + (m.dir || "") + " " + (m.mti || "") + "\n" + fields;
    el.appendChild(div);
  }, 300);
}

function appendLog(text) {
  const el = $("log");
  keepTail(el, () => { el.appendChild(document.createTextNode(text.replace(/\r\n/g, "\n").replace(/[\x00-\x08\x0b-\x1f\x7f]/g, ""))); }, 2000);
}

connect();
