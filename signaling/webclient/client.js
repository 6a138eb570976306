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

/** Close codes and error codes after which reconnecting cannot help. */
const FATAL_CLOSE = new Set([4400, 4403, 4409, 4413]);
const FATAL_CODES = new Set(["room_full", "forbidden_origin", "missing_room", "invalid_room", "too_large"]);

/** Default options. */
const DEFAULTS = {
  url: undefined,
  room: "",
  stream: null,
  dataChannels: [],
  iceServers: undefined,
  credentialsUrl: undefined,
  iceTransportPolicy: /** @type {RTCIceTransportPolicy} */ ("all"),
  reconnect: true,
  minBackoffMs: 500,
  maxBackoffMs: 10000,
  pingIntervalMs: 20000,
  iceRestartDelayMs: 3000,
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
  constructor(options) {
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

  /** Leaves the room and closes every peer connection; a pending
   * connect() rejects with code "closed". */
  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close(1000, "bye");
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
    this.pendingConnect?.reject(Object.assign(new Error("closed"), { code: "closed" }));
    this.pendingConnect = null;
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
    // Frames are handled one at a time, in order, even across awaits; those
    // still queued when the socket closes are dropped (but for errors).
    const session = {};
    this.session = session;
    let chain = Promise.resolve();
    ws.onmessage = (ev) => {
      this.heard = true;
      chain = chain.then(() => this.onFrame(ev.data, session)).catch((err) => this.emit("error", { code: "client", message: String(err), fatal: false }));
    };
    ws.onclose = (ev) => this.onSocketClose(ws, ev);
    ws.onerror = () => {}; // onclose follows with the details
  }

  onSocketClose(ws, ev) {
    if (ws !== this.ws) return;
    this.session = null;
    clearInterval(this.pingTimer);
    for (const id of [...this.peers.keys()]) this.dropPeer(id);
    this.id = null;
    const fatal = FATAL_CLOSE.has(ev.code);
    const willReconnect = !this.closed && !fatal && this.options.reconnect;
    if (this.pendingConnect && !willReconnect) {
      this.pendingConnect.reject(Object.assign(new Error(ev.reason || `closed (${ev.code})`), { code: this.lastErrorCode ?? String(ev.code) }));
      this.pendingConnect = null;
    }
    if (willReconnect) {
      const base = Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** this.attempt++);
      this.retryTimer = setTimeout(() => this.openSocket(), base / 2 + Math.random() * (base / 2));
    }
    // Last, so that a listener may call close() or connect().
    this.emit("close", { code: ev.code, reason: ev.reason, willReconnect });
  }

  /** Gives up on a socket the server no longer answers on (a half-open
   * TCP connection may take minutes to report its close) and goes on as
   * if it had closed. */
  abandonSocket(ws, reason) {
    ws.onclose = ws.onmessage = null;
    ws.close();
    this.onSocketClose(ws, { code: 1006, reason });
  }

  /** Pings the server; no frame at all since the previous ping means the
   * connection is dead. */
  startPings() {
    clearInterval(this.pingTimer);
    this.heard = true;
    this.pingTimer = setInterval(() => {
      const ws = this.ws;
      if (ws?.readyState !== WebSocket.OPEN) return;
      if (!this.heard) return this.abandonSocket(ws, "no answer to ping");
      this.heard = false;
      ws.send('{"type":"ping"}');
    }, this.options.pingIntervalMs);
  }

  signal(to, data) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: "signal", to, data }));
  }

  async onFrame(raw, session) {
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (session !== this.session && m.type !== "error") return;
    switch (m.type) {
      case "welcome":
        await this.onWelcome(m, session);
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
        this.emit("error", { code: m.code, message: m.message, fatal: FATAL_CODES.has(m.code) });
        break;
    }
  }

  async onWelcome(m, session) {
    this.id = m.id;
    this.attempt = 0;
    this.lastErrorCode = undefined;
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
    if (session !== this.session) return; // closed while fetching
    this.startPings();
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
    const peer = { id, pc, polite: this.id < id, makingOffer: false, ignoreOffer: false, channels: new Map(), restartTimer: null };
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
    pc.oniceconnectionstatechange = () => this.watchPath(peer);
    pc.onconnectionstatechange = () => {
      this.watchPath(peer);
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

  /** Restarts ICE when the path fails (a dead relay, a network change),
   * or has stayed disconnected for iceRestartDelayMs: browsers take tens
   * of seconds to call a silent path failed. Chromium may report it only
   * on connectionState, with iceConnectionState stuck at "disconnected",
   * so both are watched. Both ends may restart at once; perfect
   * negotiation settles the glare. */
  watchPath(peer) {
    const { pc } = peer;
    const is = (s) => pc.connectionState === s || pc.iceConnectionState === s;
    if (is("failed")) {
      clearTimeout(peer.restartTimer);
      peer.restartTimer = null;
      pc.restartIce();
    } else if (!is("disconnected")) {
      clearTimeout(peer.restartTimer);
      peer.restartTimer = null;
    } else if (!peer.restartTimer && this.options.iceRestartDelayMs > 0) {
      peer.restartTimer = setTimeout(() => {
        peer.restartTimer = null;
        if (is("disconnected") && this.peers.get(peer.id) === peer) pc.restartIce();
      }, this.options.iceRestartDelayMs);
    }
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
    clearTimeout(peer.restartTimer);
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
 * @property {ReturnType<typeof setTimeout>|null} restartTimer
 */
