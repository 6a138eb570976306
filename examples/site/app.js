// The demo page: a group video call with chat, using the client the
// signaling route serves.
import { RoomClient } from "/rtc/client.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { client: null, stream: null, tiles: new Map(), messages: [], error: null, errors: [] };
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

async function join(room, relay) {
  notice("");
  state.error = null;
  try {
    // A mesh sends one copy per peer: keep each modest; ?quality=low for
    // weak devices and phones.
    const low = params.get("quality") === "low";
    const video = low
      ? { width: { ideal: 320 }, height: { ideal: 180 }, frameRate: { ideal: 10 } }
      : { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
    state.stream = await navigator.mediaDevices.getUserMedia({ video, audio: true });
  } catch (err) {
    notice(`No camera or microphone (${err.name}); joining without media.`);
    state.stream = null;
  }
  const local = tile("local", "You");
  local.classList.add("local");
  local.querySelector("video").muted = true;
  local.querySelector("video").srcObject = state.stream;
  setState("local", "local");

  const client = new RoomClient({
    room,
    stream: state.stream,
    dataChannels: ["chat"],
    iceTransportPolicy: relay ? "relay" : "all",
  });
  state.client = client;
  client.addEventListener("peerjoined", (e) => tile(e.detail.id, "Peer " + e.detail.id.slice(0, 4)));
  client.addEventListener("open", (e) => e.detail.peers.forEach((id) => tile(id, "Peer " + id.slice(0, 4))));
  client.addEventListener("peerleft", (e) => removeTile(e.detail.id));
  client.addEventListener("track", (e) => {
    const video = tile(e.detail.id, "Peer " + e.detail.id.slice(0, 4)).querySelector("video");
    if (video.srcObject !== e.detail.streams[0]) video.srcObject = e.detail.streams[0];
  });
  client.addEventListener("connectionstatechange", (e) => setState(e.detail.id, e.detail.state));
  client.addEventListener("message", (e) => addMessage("Peer " + e.detail.id.slice(0, 4), String(e.detail.data)));
  client.addEventListener("close", (e) => {
    if (!e.detail.willReconnect) {
      // A fatal error after joining (the notice says which): back to the form.
      if (state.client === client) leave(false);
      return;
    }
    for (const id of [...state.tiles.keys()]) if (id !== "local") removeTile(id);
    notice("Connection lost, reconnecting…");
  });
  client.addEventListener("open", () => notice(""));
  client.addEventListener("error", (e) => {
    state.errors.push(e.detail);
    if (!e.detail.fatal) return;
    state.error = e.detail.code;
    notice(e.detail.code === "room_full" ? `Room “${room}” is full. Try another room name.` : `Cannot join: ${e.detail.message}`);
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
  state.client?.close();
  state.client = null;
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
