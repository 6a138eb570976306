// The demo page: a group video call with chat, using the client the
// signaling route serves.
import { RoomClient } from "/rtc/client.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { client: null, stream: null, tiles: new Map(), messages: [], error: null, errors: [], closes: [], resumes: [], connected: false, joins: 0 };
window.demo = state; // for tests and curious people

function tile(id, label) {
  let t = state.tiles.get(id);
  if (t) return t;
  t = document.createElement("div");
  t.className = "tile";
  t.dataset.peer = id;
  t.dataset.state = "new";
  t.innerHTML = `<video autoplay playsinline></video><span class="name"></span><span class="badge">new</span>`;
  t.querySelector(".name").textContent = label;
  $("tiles").append(t);
  state.tiles.set(id, t);
  return t;
}

function setState(id, s) {
  const t = state.tiles.get(id);
  if (!t) return;
  t.dataset.state = s;
  t.querySelector(".badge").textContent = s;
}

function removeTile(id) {
  state.tiles.get(id)?.remove();
  state.tiles.delete(id);
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

function addMessage(who, text) {
  state.messages.push({ who, text });
  const li = document.createElement("li");
  li.innerHTML = `<span class="who"></span><span class="text"></span>`;
  li.querySelector(".who").textContent = who + ":";
  li.querySelector(".text").textContent = text;
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

// Camera settings per ?quality=: a mesh sends one copy per peer, so keep
// each modest; "low" for weak devices and phones, "test" for automated
// tests that run many pages on one machine.
const QUALITY = {
  normal: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } },
  low: { width: { ideal: 320 }, height: { ideal: 180 }, frameRate: { ideal: 10 } },
  test: { width: { ideal: 160 }, height: { ideal: 120 }, frameRate: { ideal: 5, max: 5 } },
};

// signalingURL is ?ws= when it names a WebSocket on this page's own host
// (another port, such as a test proxy); a link must not be able to send
// the camera to a server elsewhere.
function signalingURL() {
  const ws = params.get("ws");
  if (!ws) return undefined;
  const u = new URL(ws, location.href);
  if ((u.protocol !== "wss:" && u.protocol !== "ws:") || u.hostname !== location.hostname) {
    notice(`Ignoring ws=${ws}: not a WebSocket on ${location.hostname}.`);
    return undefined;
  }
  return u.toString();
}

async function getMedia() {
  const video = params.get("video") === "0" ? false : QUALITY[params.get("quality")] ?? QUALITY.normal;
  try {
    return await navigator.mediaDevices.getUserMedia({ video, audio: true });
  } catch (err) {
    notice(`No camera or microphone (${err.name}); joining without media.`);
    return null;
  }
}

const peerLabel = (id) => "Peer " + id.slice(0, 4);

const fatalNotice = (room, e) =>
  e.code === "room_full"
    ? `Room “${room}” is full. Try another room name.`
    : e.code === "replaced"
      ? "This call continues in another tab or window."
      : `Cannot join: ${e.message}`;

async function join(room, relay) {
  notice("");
  state.error = null;
  state.stream = await getMedia();
  const local = tile("local", "You");
  local.classList.add("local");
  local.querySelector("video").muted = true;
  local.querySelector("video").srcObject = state.stream;
  setState("local", "local");

  const client = new RoomClient({
    room,
    url: signalingURL(),
    stream: state.stream,
    dataChannels: ["chat"],
    iceTransportPolicy: relay ? "relay" : "all",
    pingIntervalMs: Number(params.get("ping")) || undefined,
    // ?transports=sse forces the fallback transport.
    transports: params.get("transports")?.split(",") || undefined,
  });
  state.client = client;
  client.addEventListener("peerjoined", (e) => tile(e.detail.id, peerLabel(e.detail.id)));
  client.addEventListener("open", (e) => e.detail.peers.forEach((id) => tile(id, peerLabel(id))));
  client.addEventListener("peerleft", (e) => removeTile(e.detail.id));
  client.addEventListener("track", (e) => {
    const video = tile(e.detail.id, peerLabel(e.detail.id)).querySelector("video");
    if (video.srcObject !== e.detail.streams[0]) video.srcObject = e.detail.streams[0];
  });
  client.addEventListener("connectionstatechange", (e) => setState(e.detail.id, e.detail.state));
  client.addEventListener("message", (e) => addMessage(peerLabel(e.detail.id), String(e.detail.data)));
  client.addEventListener("close", (e) => {
    state.closes.push(e.detail);
    state.connected = false;
    if (!e.detail.willReconnect) {
      // A fatal error after joining (the notice says which): back to the form.
      if (state.client === client) leave(false);
      return;
    }
    // The call goes on meanwhile: the tiles stay until their peers leave.
    notice("Connection lost, reconnecting…");
  });
  const joined = () => {
    state.connected = true;
    state.joins++;
    notice("");
  };
  client.addEventListener("open", joined);
  client.addEventListener("resume", (e) => {
    state.resumes.push(e.detail);
    if (e.detail.resumed) joined();
  });
  client.addEventListener("error", (e) => {
    state.errors.push(e.detail);
    if (!e.detail.fatal) return;
    state.error = e.detail.code;
    notice(fatalNotice(room, e.detail));
  });

  $("join").hidden = true;
  $("controls").hidden = false;
  $("chat").hidden = false;
  $("roomname").textContent = "Room: " + room;
  try {
    await client.connect();
  } catch {
    if (state.client === client) leave(false);
  }
}

function leave(clearNotice = true) {
  // Forgotten first: close() reports the close to the listeners above.
  const client = state.client;
  state.client = null;
  client?.close();
  state.stream?.getTracks().forEach((t) => t.stop());
  for (const id of [...state.tiles.keys()]) removeTile(id);
  $("join").hidden = false;
  $("controls").hidden = true;
  $("chat").hidden = true;
  if (clearNotice) notice("");
}

function toggle(button, kind) {
  const on = button.getAttribute("aria-pressed") !== "true";
  button.setAttribute("aria-pressed", String(on));
  state.stream?.getTracks().filter((t) => t.kind === kind).forEach((t) => (t.enabled = !on));
}

$("join").addEventListener("submit", (e) => {
  e.preventDefault();
  const room = $("room").value.trim();
  const url = new URL(location.href);
  url.searchParams.set("room", room);
  history.replaceState(null, "", url);
  join(room, $("relay").checked);
});
$("say").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text || !state.client) return;
  state.client.send("chat", text);
  addMessage("You", text);
  $("text").value = "";
});
$("mute").addEventListener("click", (e) => toggle(e.currentTarget, "audio"));
$("camera").addEventListener("click", (e) => toggle(e.currentTarget, "video"));
$("leave").addEventListener("click", () => leave());

$("relay").checked = params.get("relay") === "1";
if (params.get("room")) {
  $("room").value = params.get("room");
  join(params.get("room"), $("relay").checked);
}
