// caddy-webrtc browser client: joins a signaling room served by Caddy's
// webrtc_signaling handler and keeps one RTCPeerConnection per remote peer
// (a mesh), with perfect negotiation, trickle ICE, ICE restarts and
// WebSocket reconnects. No dependencies, no build step:
//
//   import { RoomClient } from "/rtc/client.js";
//   const room = new RoomClient({ room: "demo", stream, dataChannels: ["chat"] });
//   room.addEventListener("track", (e) => show(e.detail.id, e.detail.streams[0]));
//   await room.connect();
//
// Types: client.d.ts next to this file.

/** Close codes after which reconnecting cannot help. */
const FATAL_CLOSE = new Set([4400, 4403, 4409, 4413]);

/** Default options. */
const DEFAULTS = {
  url: undefined,
  room: "",
  stream: null,
  dataChannels: [],
  iceServers: undefined,
  credentialsUrl: undefined,
  iceTransportPolicy: "all",
  reconnect: true,
  minBackoffMs: 500,
  maxBackoffMs: 10000,
  pingIntervalMs: 20000,
};

/** The WebSocket URL next to this module: /rtc/client.js -> wss://host/rtc/ws. */
function defaultURL() {
  const u = new URL("ws", import.meta.url);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/**
 * A member of a signaling room that calls every other member.
 * Events (CustomEvent, details in client.d.ts): open, peerjoined, peerleft,
 * track, datachannelopen, message, connectionstatechange, error, close.
 */
export class RoomClient extends EventTarget {
  /** @param {import("./client").RoomClientOptions} options */
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    if (!this.options.room) throw new Error("RoomClient: options.room is required");
    /** @type {string|null} */ this.id = null;
    /** @type {Map<string, PeerState>} */ this.peers = new Map();
    this.iceServers = this.options.iceServers ?? [];
    this.ws = null;
    this.closed = false;
    this.attempt = 0;
    this.pingTimer = null;
  }

  /** Connects and resolves with the welcome frame (rejects on a fatal error). */
  connect() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.close();
    this.closed = false;
    return new Promise((resolve, reject) => {
      this.pendingConnect = { resolve, reject };
      this.openSocket();
    });
  }

  /** Leaves the room and closes every peer connection. */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close(1000, "bye");
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
  }

  /** Sends data on the named data channel to every open peer. */
  send(label, data) {
    for (const id of this.peers.keys()) this.sendTo(id, label, data);
  }

  /** Sends data on the named data channel to one peer; false if not open. */
  sendTo(id, label, data) {
    const ch = this.peers.get(id)?.channels.get(label);
    if (!ch || ch.readyState !== "open") return false;
    ch.send(data);
    return true;
  }

  /** The RTCPeerConnection to a peer, for getStats() and the like. */
  connection(id) {
    return this.peers.get(id)?.pc ?? null;
  }

  // --- WebSocket ----------------------------------------------------------

  openSocket() {
    const url = new URL(this.options.url ?? defaultURL(), location.href);
    url.searchParams.set("room", this.options.room);
    const ws = new WebSocket(url);
    this.ws = ws;
    // Frames are handled one at a time, in order, even across awaits.
    let chain = Promise.resolve();
    ws.onmessage = (ev) => {
      chain = chain.then(() => this.onFrame(ev.data)).catch((err) => this.emit("error", { code: "client", message: String(err), fatal: false }));
    };
    ws.onclose = (ev) => this.onSocketClose(ws, ev);
    ws.onerror = () => {}; // onclose follows with the details
  }

  onSocketClose(ws, ev) {
    if (ws !== this.ws) return;
    clearInterval(this.pingTimer);
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
    this.id = null;
    const fatal = FATAL_CLOSE.has(ev.code);
    const willReconnect = !this.closed && !fatal && this.options.reconnect;
    this.emit("close", { code: ev.code, reason: ev.reason, willReconnect });
    if (this.pendingConnect && (fatal || !willReconnect)) {
      this.pendingConnect.reject(Object.assign(new Error(ev.reason || `closed (${ev.code})`), { code: this.lastErrorCode ?? String(ev.code) }));
      this.pendingConnect = null;
    }
    if (willReconnect) {
      const base = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** this.attempt++);
      this.retryTimer = setTimeout(() => this.openSocket(), base / 2 + Math.random() * (base / 2));
    }
  }

  signal(to, data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "signal", to, data }));
  }

  async onFrame(raw) {
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    switch (m.type) {
      case "welcome":
        await this.onWelcome(m);
        break;
      case "peer-joined":
        // The newcomer calls; waiting for its offer avoids offer glare in
        // a room where everybody would otherwise offer at once.
        this.emit("peerjoined", { id: m.id });
        break;
      case "peer-left":
        this.dropPeer(m.id);
        this.emit("peerleft", { id: m.id });
        break;
      case "signal":
        await this.onSignal(m.from, m.data);
        break;
      case "error":
        this.lastErrorCode = m.code;
        this.emit("error", { code: m.code, message: m.message, fatal: ["room_full", "forbidden_origin", "missing_room", "invalid_room", "too_large"].includes(m.code) });
        break;
    }
  }

  async onWelcome(m) {
    this.id = m.id;
    this.attempt = 0;
    if (!this.options.iceServers) {
      if (m.iceServers?.length) this.iceServers = m.iceServers;
      else if (this.options.credentialsUrl) {
        try {
          this.iceServers = await fetchICEServers(this.options.credentialsUrl);
        } catch (err) {
          // Direct and STUN-less paths may still work; say why TURN is missing.
          this.emit("error", { code: "credentials", message: String(err), fatal: false });
        }
      }
    }
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => this.ws?.readyState === WebSocket.OPEN && this.ws.send('{"type":"ping"}'), this.options.pingIntervalMs);
    for (const p of m.peers) this.ensurePeer(p.id);
    this.emit("open", { id: m.id, room: m.room, peers: m.peers.map((p) => p.id) });
    this.pendingConnect?.resolve(m);
    this.pendingConnect = null;
  }

  // --- peers --------------------------------------------------------------

  /** Creates the connection to a peer once: the newcomer for everyone in
   * its welcome (and offers), the others when that offer arrives. Perfect
   * negotiation settles any later glare (ICE restarts, renegotiation). */
  ensurePeer(id) {
    if (this.peers.has(id) || id === this.id) return this.peers.get(id);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, iceTransportPolicy: this.options.iceTransportPolicy });
    /** @type {PeerState} */
    const peer = { id, pc, polite: this.id < id, makingOffer: false, ignoreOffer: false, channels: new Map() };
    this.peers.set(id, peer);

    pc.onicecandidate = ({ candidate }) => candidate && this.signal(id, { candidate });
    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        this.signal(id, { description: pc.localDescription });
      } catch (err) {
        this.emit("error", { code: "negotiation", message: String(err), fatal: false, id });
      } finally {
        peer.makingOffer = false;
      }
    };
    // Restart ICE when the path fails (a dead relay, a network change).
    // Chromium may report the failure only on connectionState, with
    // iceConnectionState stuck at "disconnected", so watch both.
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") pc.restartIce();
      this.emit("connectionstatechange", { id, state: pc.connectionState });
    };
    pc.ontrack = ({ track, streams }) => this.emit("track", { id, track, streams });

    // Negotiated channels with fixed ids exist on both sides without an
    // extra round of signaling.
    this.options.dataChannels.forEach((label, i) => {
      const ch = pc.createDataChannel(label, { negotiated: true, id: i });
      peer.channels.set(label, ch);
      ch.onopen = () => this.emit("datachannelopen", { id, label, channel: ch });
      ch.onmessage = (ev) => this.emit("message", { id, label, data: ev.data });
    });
    const stream = this.options.stream;
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    return peer;
  }

  /** The perfect negotiation pattern (W3C WebRTC, section 10.7). */
  async onSignal(from, data) {
    const peer = this.ensurePeer(from);
    if (!peer || !data) return;
    const { pc } = peer;
    try {
      if (data.description) {
        const d = data.description;
        const collision = d.type === "offer" && (peer.makingOffer || pc.signalingState !== "stable");
        peer.ignoreOffer = !peer.polite && collision;
        if (peer.ignoreOffer) return;
        await pc.setRemoteDescription(d);
        if (d.type === "offer") {
          await pc.setLocalDescription();
          this.signal(from, { description: pc.localDescription });
        }
      } else if (data.candidate) {
        try {
          await pc.addIceCandidate(data.candidate);
        } catch (err) {
          if (!peer.ignoreOffer) throw err;
        }
      }
    } catch (err) {
      this.emit("error", { code: "negotiation", message: String(err), fatal: false, id: from });
    }
  }

  dropPeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    peer.pc.close();
    this.emit("connectionstatechange", { id, state: "closed" });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Fetches { iceServers } from a turn_credentials route. */
export async function fetchICEServers(url) {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`credentials: ${res.status}`);
  return (await res.json()).iceServers ?? [];
}

/**
 * @typedef {object} PeerState
 * @property {string} id
 * @property {RTCPeerConnection} pc
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {Map<string, RTCDataChannel>} channels
 */
