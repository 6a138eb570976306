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
// Types: client.d.ts next to this file. Everything not declared there is
// private (# fields), so the declarations are the whole API.

/** Close codes and error codes after which reconnecting cannot help.
 * rate_limited is a close code only: the error frame of that code is also
 * sent for single dropped frames, which are not fatal. */
const FATAL_CLOSE = new Set([4400, 4401, 4403, 4409, 4410, 4413, 4429]);
const FATAL_CODES = new Set(["room_full", "forbidden_origin", "missing_room", "invalid_room", "too_large", "replaced", "unauthorized"]);

/** Default options. */
const DEFAULTS = {
  url: undefined,
  room: "",
  stream: null,
  dataChannels: [],
  iceServers: undefined,
  credentialsUrl: undefined,
  token: undefined,
  iceTransportPolicy: /** @type {RTCIceTransportPolicy} */ ("all"),
  reconnect: true,
  minBackoffMs: 500,
  maxBackoffMs: 10000,
  pingIntervalMs: 20000,
  iceRestartDelayMs: 3000,
};

/** How many departed peer ids are remembered to ignore their late signals. */
const LEFT_MEMORY = 256;

/** TURN credentials this close to their expiry count as expired: an ICE
 * restart takes a moment, and the TURN server checks them on every
 * allocation. */
const CREDENTIALS_MARGIN_MS = 5000;

/** sessionStorage key prefix of session (resume) tokens. */
const RESUME_KEY = "caddy-webrtc.resume ";

/** Clients of this page that hold a session token, so that a second client
 * joining the same room from the same page does not present the first
 * one's token and evict it. */
const tokenHolders = new Set();

/** An error of the room client: `code` is the server's error code
 * (room_full, ...) or a client-side one (closed, client, negotiation,
 * credentials). */
export class RoomError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.name = "RoomError";
    this.code = code;
  }
}

/** The WebSocket URL next to this module: /rtc/client.js -> wss://host/rtc/ws. */
function defaultURL() {
  const u = new URL("ws", import.meta.url);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

/** sessionStorage, or null where the page may not use it (sandboxed frames,
 * storage disabled): resuming after a reload is then simply not offered. */
function storage() {
  try {
    return globalThis.sessionStorage ?? null;
  } catch {
    return null;
  }
}

/** The earliest expiry (ms since the epoch) of TURN REST credentials, whose
 * usernames are "<expiry unix seconds>:<user>"; undefined if none says. */
function credentialsExpiry(iceServers) {
  let min;
  for (const s of iceServers) {
    const m = /^(\d+):/.exec(s.username ?? "");
    if (m) min = Math.min(min ?? Infinity, Number(m[1]) * 1000);
  }
  return min;
}

/**
 * A member of a signaling room that calls every other member.
 * Events (CustomEvent, details in client.d.ts): open, peerjoined, peerleft,
 * track, datachannelopen, message, connectionstatechange, error, close.
 */
export class RoomClient extends EventTarget {
  #options;
  /** The signaling URL with ?room=, without the session token. */
  #url;
  /** @type {string|null} */ #id = null;
  /** @type {object|null} the welcome of the current session */ #welcome = null;
  /** Remote members in join order (a Set keeps insertion order). */
  #members = new Set();
  /** @type {Map<string, Peer>} connections by remote id */ #peers = new Map();
  /** Ids that have left, oldest first. */
  #left = new Set();
  /** @type {RTCIceServer[]} */ #iceServers;
  /** @type {number|undefined} when #iceServers expire (ms since the epoch) */ #iceExpires;
  /** @type {Promise<void>|null} a credentials fetch under way */ #fetching = null;
  /** @type {Session|null} the current socket */ #session = null;
  #closed = true;
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout>|null} */ #retryTimer = null;
  /** The room token being fetched before a socket opens, if any. */
  /** @type {object|null} */ #fetchingToken = null;
  /** @type {{promise: Promise<any>, resolve: (w: any) => void, reject: (e: RoomError) => void}|null} */
  #pending = null;
  /** @type {string|null} the latest session token of this client */ #token = null;

  /** @param {import("./client").RoomClientOptions} options */
  constructor(options) {
    super();
    // An option given as undefined keeps its default.
    const given = Object.entries(options ?? {}).filter(([, v]) => v !== undefined);
    this.#options = { ...DEFAULTS, ...Object.fromEntries(given) };
    if (!this.#options.room) throw new TypeError("RoomClient: options.room is required");
    const url = new URL(this.#options.url ?? defaultURL(), location.href);
    url.protocol = url.protocol.replace(/^http/, "ws"); // "/rtc/ws" relative to an https page
    url.searchParams.set("room", this.#options.room);
    this.#url = url.toString();
    this.#iceServers = this.#options.iceServers ?? [];
  }

  /** This peer's id, once joined; null while not in the room. */
  get id() {
    return this.#id;
  }

  /** The room name. */
  get room() {
    return this.#options.room;
  }

  /** The signaling WebSocket URL, absolute, with ?room=. */
  get url() {
    return this.#url;
  }

  /** The ICE servers in use (from the options, the welcome or credentialsUrl). */
  get iceServers() {
    return [...this.#iceServers];
  }

  /** The ids of the other members of the room, in join order. */
  get peers() {
    return [...this.#members];
  }

  /** Connects; resolves with the welcome frame (after reconnects, if the
   * first attempts fail) and rejects with a RoomError on a fatal error or
   * close(). While connecting or waiting to reconnect it connects at once
   * and returns the same promise: there is never more than one socket. */
  connect() {
    if (this.#session?.welcomed && this.#welcome) return Promise.resolve(this.#welcome);
    if (!this.#pending) {
      let resolve, reject;
      const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
      this.#pending = { promise, resolve, reject };
    }
    const { promise } = this.#pending;
    this.#closed = false;
    if (!this.#session && !this.#fetchingToken) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#open();
    }
    return promise;
  }

  /** Leaves the room and closes every peer connection; a pending connect()
   * rejects with code "closed". The session token is forgotten. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#fetchingToken = null;
    this.#forgetToken();
    const session = this.#session;
    if (session) {
      this.#detach(session);
      session.ws.close(1000, "bye");
    }
    this.#leaveRoom();
    this.#settle(new RoomError("closed", "close() was called"));
    if (session) this.#emit("close", { code: 1000, reason: "bye", willReconnect: false });
  }

  /** Sends data on the named data channel to every open peer. */
  send(label, data) {
    for (const id of this.#peers.keys()) this.sendTo(id, label, data);
  }

  /** Sends data on the named data channel to one peer; false if not open. */
  sendTo(id, label, data) {
    const ch = this.channel(id, label);
    if (!ch || ch.readyState !== "open") return false;
    ch.send(data);
    return true;
  }

  /** The RTCPeerConnection to a peer, for getStats() and the like. */
  connection(id) {
    return this.#peers.get(id)?.pc ?? null;
  }

  /** The data channel with this label to a peer. */
  channel(id, label) {
    return this.#peers.get(id)?.channels.get(label) ?? null;
  }

  // --- WebSocket ----------------------------------------------------------

  /** Opens a socket, with a room token when the token option gives one.
   * A token function is called again before every connection, so that a
   * page can hand out fresh tokens as old ones expire. */
  #open() {
    const option = this.#options.token;
    if (typeof option !== "function") return this.#openSocket(option);
    const attempt = {};
    this.#fetchingToken = attempt;
    Promise.resolve()
      .then(() => option())
      .then(
        (roomToken) => {
          if (this.#fetchingToken !== attempt) return; // closed meanwhile
          this.#fetchingToken = null;
          this.#openSocket(roomToken);
        },
        (err) => {
          if (this.#fetchingToken !== attempt) return;
          this.#fetchingToken = null;
          this.#error("token", String(err), false);
          if (!this.#closed && this.#options.reconnect) this.#scheduleReconnect();
          else this.#settle(new RoomError("token", String(err)));
        },
      );
  }

  #openSocket(roomToken) {
    const url = new URL(this.#url);
    if (roomToken) url.searchParams.set("token", roomToken);
    const token = this.#resumeToken();
    if (token) url.searchParams.set("resume", token);
    const ws = new WebSocket(url);
    /** @type {Session} */
    const session = { ws, chain: Promise.resolve(), welcomed: false, heard: true, lastTick: 0, welcomeTimer: null, pingTimer: null, error: null };
    this.#session = session;
    ws.onmessage = (ev) => this.#onMessage(session, ev.data);
    ws.onclose = (ev) => this.#onSocketClose(session, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows with the details
    // A connection that hangs before its welcome (a silent network) is
    // given up too, but late enough for a slow server.
    const welcomeWait = Math.max(2 * this.#options.pingIntervalMs, this.#options.maxBackoffMs);
    session.welcomeTimer = setTimeout(() => this.#abandon(session, "no welcome"), welcomeWait);
  }

  /** Takes a frame off the socket. Frames are handled one at a time, in
   * order, even across awaits; frames still queued when their socket has
   * closed are dropped. Error frames are acted on at once, so that a fatal
   * one is known before the close that follows it. */
  #onMessage(session, raw) {
    if (this.#session !== session) return;
    session.heard = true;
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (m.type === "error") {
      session.error = m;
      this.#error(m.code, m.message, FATAL_CODES.has(m.code));
      return;
    }
    if (m.type === "welcome") this.#startPings(session);
    session.chain = session.chain
      .then(() => (this.#session === session ? this.#onFrame(m, session) : undefined))
      .catch((err) => this.#error("client", String(err), false));
  }

  #onSocketClose(session, code, reason) {
    if (this.#session !== session) return;
    this.#detach(session);
    this.#leaveRoom();
    const err = session.error;
    const fatal = FATAL_CLOSE.has(code) || FATAL_CODES.has(err?.code);
    if (fatal) this.#forgetToken();
    const willReconnect = !this.#closed && !fatal && this.#options.reconnect;
    if (!willReconnect) {
      // The server sends the error frame just before a fatal close, whose
      // reason is the code again.
      const why = (fatal && (err?.code || reason)) || "closed";
      this.#settle(new RoomError(why, err?.message || reason || `closed (${code})`));
      this.#closed = true;
    } else {
      this.#scheduleReconnect();
    }
    // Last, so that a listener may call close() or connect().
    this.#emit("close", { code, reason, willReconnect });
  }

  /** Waits with exponential backoff and jitter, then reconnects. It never
   * gives up; a welcome resets it. */
  #scheduleReconnect() {
    const { minBackoffMs, maxBackoffMs } = this.#options;
    const base = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(this.#attempt++, 30));
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#open();
    }, base / 2 + Math.random() * (base / 2));
  }

  /** Stops listening to a socket: it is no longer the client's. */
  #detach(session) {
    clearTimeout(session.welcomeTimer);
    clearInterval(session.pingTimer);
    if (this.#session === session) this.#session = null;
  }

  /** Gives up on a socket the server no longer answers on (a half-open TCP
   * connection may take minutes to report its close) and goes on as if it
   * had closed. */
  #abandon(session, reason) {
    const { ws } = session;
    ws.onclose = ws.onmessage = null;
    ws.close();
    this.#onSocketClose(session, 1006, reason);
  }

  /** Pings the server every pingIntervalMs; no frame at all since the
   * previous ping means the connection is dead. A tick that comes late
   * (the page was frozen or starved of CPU) judges nothing: the answer may
   * be waiting in the page's own queue. */
  #startPings(session) {
    const interval = this.#options.pingIntervalMs;
    clearTimeout(session.welcomeTimer);
    session.welcomed = true;
    session.lastTick = performance.now();
    session.pingTimer = setInterval(() => {
      const now = performance.now();
      const late = now - session.lastTick > 1.5 * interval;
      session.lastTick = now;
      if (session.ws.readyState !== WebSocket.OPEN) return;
      if (!session.heard && !late) return this.#abandon(session, "no answer to ping");
      session.heard = false;
      session.ws.send('{"type":"ping"}');
    }, interval);
  }

  /** Sends a signal on the socket the peer's connection was made on: a
   * connection of an earlier socket has no counterpart any more, and its
   * signals must not reach anyone under this client's new id. */
  #signal(peer, data) {
    const s = this.#session;
    if (peer.closed || s !== peer.session || s.ws.readyState !== WebSocket.OPEN) return;
    s.ws.send(JSON.stringify({ type: "signal", to: peer.id, data }));
  }

  async #onFrame(m, session) {
    switch (m.type) {
      case "welcome":
        return this.#onWelcome(m, session);
      case "peer-joined":
        return this.#onPeerJoined(m);
      case "peer-left":
        return this.#onPeerLeft(m.id);
      case "signal":
        return this.#onSignal(m.from, m.data);
    }
  }

  async #onWelcome(m, session) {
    this.#id = m.id;
    this.#attempt = 0;
    this.#saveToken(m.resume);
    if (!this.#options.iceServers) {
      if (m.iceServers?.length) this.#useIceServers(m.iceServers, credentialsExpiry(m.iceServers));
      else if (this.#options.credentialsUrl) await this.#fetchCredentials();
    }
    if (this.#session !== session) return; // closed while fetching
    // The newcomer calls everyone already there; waiting for the others to
    // call instead would make everybody offer at once in a busy room.
    for (const p of m.peers) {
      if (p.id === m.id || this.#left.has(p.id)) continue;
      this.#members.add(p.id);
      this.#createPeer(p.id);
    }
    this.#welcome = m;
    this.#emit("open", { id: m.id, room: m.room, peers: this.peers });
    this.#settle(null, m);
  }

  /** A newcomer, with the user and name its room token gave, if any. */
  #onPeerJoined({ id, user, name }) {
    if (id === this.#id || this.#left.has(id)) return;
    this.#members.add(id);
    this.#emit("peerjoined", { id, user, name });
  }

  #onPeerLeft(id) {
    this.#left.add(id);
    if (this.#left.size > LEFT_MEMORY) this.#left.delete(this.#left.values().next().value);
    const was = this.#members.delete(id);
    this.#drop(id);
    if (was) this.#emit("peerleft", { id });
  }

  /** Forgets the room's members and connections (the socket is gone). */
  #leaveRoom() {
    for (const id of [...this.#peers.keys()]) this.#drop(id);
    this.#members.clear();
    this.#id = null;
    this.#welcome = null;
  }

  #settle(err, welcome) {
    const p = this.#pending;
    this.#pending = null;
    if (!p) return;
    if (err) p.reject(err);
    else p.resolve(welcome);
  }

  // --- session tokens -----------------------------------------------------

  /** Where a reloaded page finds the token of the session it had: the
   * room and the socket's URL without its query, which may hold a room
   * token that the page mints anew on each load. A token presented to
   * another room or hub is ignored by the server. */
  #tokenKey() {
    const u = new URL(this.#url);
    return RESUME_KEY + JSON.stringify([u.origin + u.pathname, this.room]);
  }

  /** The token to present: this client's latest, or after a page reload
   * the one the page stored, unless another client of this page holds it. */
  #resumeToken() {
    if (this.#token) return this.#token;
    const key = this.#tokenKey();
    for (const c of tokenHolders) if (c.#tokenKey() === key) return null;
    try {
      return storage()?.getItem(key) ?? null;
    } catch {
      return null;
    }
  }

  #saveToken(token) {
    if (!token) return; // a server without session tokens
    this.#token = token;
    tokenHolders.add(this);
    try {
      storage()?.setItem(this.#tokenKey(), token);
    } catch {
      // Storage full or refused: resuming after a reload is not offered.
    }
  }

  #forgetToken() {
    const token = this.#token;
    this.#token = null;
    tokenHolders.delete(this);
    if (!token) return;
    try {
      const s = storage();
      if (s?.getItem(this.#tokenKey()) === token) s.removeItem(this.#tokenKey());
    } catch {
      // Nothing stored.
    }
  }

  // --- ICE servers --------------------------------------------------------

  #useIceServers(iceServers, expires) {
    this.#iceServers = iceServers;
    this.#iceExpires = expires;
    for (const { pc } of this.#peers.values()) {
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
      } catch (err) {
        this.#error("credentials", String(err), false);
      }
    }
  }

  /** Fetches iceServers from credentialsUrl, once at a time. */
  #fetchCredentials() {
    this.#fetching ??= this.#loadCredentials().finally(() => (this.#fetching = null));
    return this.#fetching;
  }

  /** A failure is reported, not thrown: direct and STUN-less paths may
   * still work. */
  async #loadCredentials() {
    try {
      const res = await fetch(this.#options.credentialsUrl, { cache: "no-store" });
      if (!res.ok) throw new Error(`credentials: ${res.status}`);
      const body = await res.json();
      const iceServers = body.iceServers ?? [];
      this.#useIceServers(iceServers, body.expires ? body.expires * 1000 : credentialsExpiry(iceServers));
    } catch (err) {
      this.#error("credentials", String(err), false);
    }
  }

  /** Makes sure the TURN credentials are good for a new allocation; false
   * when the client reconnects instead (the welcome brought them, and only
   * a new welcome brings fresh ones). */
  async #freshCredentials() {
    const expires = this.#iceExpires;
    if (this.#options.iceServers || expires === undefined || Date.now() < expires - CREDENTIALS_MARGIN_MS) return true;
    if (this.#options.credentialsUrl) {
      await this.#fetchCredentials();
      return true;
    }
    if (this.#session) this.#abandon(this.#session, "TURN credentials expired");
    return false;
  }

  // --- peers --------------------------------------------------------------

  /** Creates the connection to a peer: the newcomer for everyone in its
   * welcome (and offers), the others when that offer arrives. Perfect
   * negotiation settles any later glare (ICE restarts, renegotiation). */
  #createPeer(id) {
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers, iceTransportPolicy: this.#options.iceTransportPolicy });
    /** @type {Peer} */
    const peer = {
      id,
      pc,
      session: this.#session,
      polite: this.#id < id,
      makingOffer: false,
      ignoreOffer: false,
      channels: new Map(),
      restartTimer: null,
      closed: false,
    };
    this.#peers.set(id, peer);

    pc.onicecandidate = ({ candidate }) => candidate && this.#signal(peer, { candidate });
    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        this.#signal(peer, { description: pc.localDescription });
      } catch (err) {
        if (!peer.closed) this.#error("negotiation", String(err), false, id);
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.oniceconnectionstatechange = () => this.#watchPath(peer);
    pc.onconnectionstatechange = () => {
      this.#watchPath(peer);
      this.#emit("connectionstatechange", { id, state: pc.connectionState });
    };
    pc.ontrack = ({ track, streams }) => this.#emit("track", { id, track, streams });

    // Negotiated channels with fixed ids exist on both sides without an
    // extra round of signaling.
    this.#options.dataChannels.forEach((label, i) => {
      const ch = pc.createDataChannel(label, { negotiated: true, id: i });
      peer.channels.set(label, ch);
      ch.onopen = () => this.#emit("datachannelopen", { id, label, channel: ch });
      ch.onmessage = (ev) => this.#emit("message", { id, label, data: ev.data });
    });
    const stream = this.#options.stream;
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    return peer;
  }

  /** Restarts ICE when the path fails (a dead relay, a network change),
   * or has stayed disconnected for iceRestartDelayMs: browsers take tens
   * of seconds to call a silent path failed. Chromium may report it only
   * on connectionState, with iceConnectionState stuck at "disconnected",
   * so both are watched. Both ends may restart at once; perfect
   * negotiation settles the glare. */
  #watchPath(peer) {
    const { pc } = peer;
    const is = (s) => pc.connectionState === s || pc.iceConnectionState === s;
    if (is("failed")) {
      clearTimeout(peer.restartTimer);
      peer.restartTimer = null;
      this.#restartIce(peer);
    } else if (!is("disconnected")) {
      clearTimeout(peer.restartTimer);
      peer.restartTimer = null;
    } else if (!peer.restartTimer && this.#options.iceRestartDelayMs > 0) {
      peer.restartTimer = setTimeout(() => {
        peer.restartTimer = null;
        if (is("disconnected")) this.#restartIce(peer);
      }, this.#options.iceRestartDelayMs);
    }
  }

  /** Restarts ICE with credentials that are still valid: expired ones
   * would make the TURN server refuse the new allocations. */
  async #restartIce(peer) {
    if (peer.closed || !(await this.#freshCredentials())) return;
    if (!peer.closed) peer.pc.restartIce();
  }

  /** The perfect negotiation pattern (W3C WebRTC, section 10.7). */
  async #onSignal(from, data) {
    if (!data || from === this.#id || this.#left.has(from)) return;
    let peer = this.#peers.get(from);
    if (!peer) {
      // Only an offer starts a connection: a candidate or an answer for a
      // connection this client no longer has would start one that never
      // connects.
      if (data.description?.type !== "offer") return;
      this.#members.add(from);
      peer = this.#createPeer(from);
    }
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
          this.#signal(peer, { description: pc.localDescription });
        }
      } else if (data.candidate) {
        try {
          await pc.addIceCandidate(data.candidate);
        } catch (err) {
          if (!peer.ignoreOffer) throw err;
        }
      }
    } catch (err) {
      if (!peer.closed) this.#error("negotiation", String(err), false, from);
    }
  }

  #drop(id) {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#peers.delete(id);
    peer.closed = true;
    clearTimeout(peer.restartTimer);
    peer.pc.close();
    this.#emit("connectionstatechange", { id, state: "closed" });
  }

  #error(code, message, fatal, id) {
    this.#emit("error", id === undefined ? { code, message, fatal } : { code, message, fatal, id });
  }

  #emit(type, detail) {
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
 * @typedef {object} Session one WebSocket and what the client knows of it
 * @property {WebSocket} ws
 * @property {Promise<void>} chain frames being handled, in order
 * @property {boolean} welcomed
 * @property {boolean} heard a frame came since the last ping
 * @property {number} lastTick when the ping timer last ran
 * @property {ReturnType<typeof setTimeout>|null} welcomeTimer gives up on a socket that brings no welcome
 * @property {ReturnType<typeof setInterval>|null} pingTimer
 * @property {{code: string, message: string}|null} error the last error frame
 *
 * @typedef {object} Peer the connection to one remote member
 * @property {string} id
 * @property {RTCPeerConnection} pc
 * @property {Session|null} session the socket its signals go through
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {Map<string, RTCDataChannel>} channels
 * @property {ReturnType<typeof setTimeout>|null} restartTimer
 * @property {boolean} closed
 */
