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
const FATAL_CLOSE = new Set([4400, 4401, 4403, 4404, 4406, 4409, 4410, 4413, 4429]);
const FATAL_CODES = new Set(["room_full", "forbidden_origin", "missing_room", "invalid_room", "too_large", "replaced", "unauthorized", "room_closed", "removed"]);

/** Transports, in the order the client tries them by default: WebSocket,
 * else Server-Sent Events with POSTs (networks that break WebSockets). */
const TRANSPORTS = ["websocket", "sse"];

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
  restartRetryMs: 15000,
  transports: TRANSPORTS,
};

/** How many departed peer ids are remembered to ignore their late signals. */
const LEFT_MEMORY = 256;

/** How many numbered frames the client keeps to send again after a resume
 * (the server tells which it has processed): as many as the server keeps
 * for an away peer. */
const SENT_MEMORY = 256;

/** How long a POST of the SSE transport waits before trying again after a
 * network error. */
const POST_RETRY_MS = 500;

/** How long a leave waits for the server's close before the client goes
 * on (joins afresh). */
const LEAVE_WAIT_MS = 2000;

/** TURN credentials this close to their expiry count as expired: an ICE
 * restart takes a moment, and the TURN server checks them on every
 * allocation. */
const CREDENTIALS_MARGIN_MS = 5000;

/** sessionStorage key prefix of session (resume) tokens. */
const RESUME_KEY = "caddy-webrtc.resume ";

/** The frame that leaves the room at once, on either transport. */
const LEAVE = '{"type":"leave"}';

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

/** The SSE transport's URL next to a WebSocket URL: wss://h/rtc/ws?q ->
 * https://h/rtc/ws/<name>?q. */
function sseURL(wsURL, name) {
  const u = new URL(wsURL);
  u.protocol = u.protocol === "wss:" ? "https:" : "http:";
  u.pathname = u.pathname.replace(/\/$/, "") + "/" + name;
  return u;
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

/** After this many retries of a restart that does not converge, the
 * pair's connection is rebuilt rather than restarted once more. */
const REBUILD_AFTER_RETRIES = 3;

/** The ICE username fragment of a session description ("" if none): it
 * changes on both sides with every ICE restart. */
function ufrag(desc) {
  return /a=ice-ufrag:(\S+)/.exec(desc?.sdp ?? "")?.[1] ?? "";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A member of a signaling room that calls every other member.
 * Events (CustomEvent, details in client.d.ts): open, resume, peerjoined,
 * peerleft, track, datachannelopen, message, connectionstatechange, error,
 * close.
 *
 * Membership belongs to the session, not to the connection: when the
 * connection is lost, the client reconnects with its session token and the
 * number of the last server frame it processed (?resume=&last_seq=), and
 * the server gives it its seat back with the frames it missed. The peer
 * connections stay up meanwhile. Frames the client sends are numbered
 * (seq) and kept, so that those the server did not get are sent again.
 */
export class RoomClient extends EventTarget {
  #options;
  /** The signaling URL with ?room=, without the session token. */
  #url;
  /** @type {string[]} the transports to try, in order */ #transports;
  /** Which of #transports the next connection uses. */
  #transportIndex = 0;
  /** Which of #transports brought the latest welcome: reconnects start there. */
  #preferred = 0;
  /** @type {"websocket"|"sse"|null} the transport of the latest connection */ #lastTransport = null;
  /** @type {string|null} */ #id = null;
  /** @type {object|null} the welcome of the current session */ #welcome = null;
  /** Remote members in join order (a Set keeps insertion order). */
  #members = new Set();
  /** @type {Map<string, Peer>} connections by remote id */ #peers = new Map();
  /** Ids that have left, oldest first. */
  #left = new Set();
  /** Ids announced by a resume (they joined while this client was away),
   * whose replayed peer-joined must not announce them again. */
  #resumeJoined = new Set();
  /** @type {RTCIceServer[]} */ #iceServers;
  /** @type {number|undefined} when #iceServers expire (ms since the epoch) */ #iceExpires;
  /** @type {Promise<void>|null} a credentials fetch under way */ #fetching = null;
  /** @type {Connection|null} the current connection */ #session = null;
  #closed = true;
  #attempt = 0;
  /** @type {ReturnType<typeof setTimeout>|null} */ #retryTimer = null;
  /** The room token being fetched before a socket opens, if any. */
  /** @type {object|null} */ #fetchingToken = null;
  /** @type {{promise: Promise<any>, resolve: (w: any) => void, reject: (e: RoomError) => void}|null} */
  #pending = null;
  /** @type {string|null} the latest session token of this client */ #token = null;
  /** Membership epoch: a new one with each fresh join (a new id) and when
   * the client leaves. Frames and peer connections of an earlier one are
   * dropped. */
  #epoch = 0;
  /** Frames being handled, in order, across connections of one session. */
  #chain = Promise.resolve();
  /** The seq of the last server frame taken in (0: none). */
  #lastSeq = 0;
  /** The seq of the last numbered frame this client sent. */
  #outSeq = 0;
  /** @type {{seq: number, text: string}[]} numbered frames, for resending */ #sent = [];
  /** The server keeps this client's session for a resume (its welcome
   * gave a resume_window); else its token only takes a stale seat over. */
  #resumable = false;
  /** A resume was asked for and has not succeeded yet. */
  #resumeWanted = false;
  /** pagehide closed the client; pageshow (back from the cache) reconnects. */
  #hidden = false;
  #onPageHide = () => this.#hide();
  #onPageShow = (/** @type {PageTransitionEvent} */ e) => {
    if (!e.persisted || !this.#hidden) return;
    this.#hidden = false;
    this.connect().catch(() => {}); // reported as events
  };

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
    this.#transports = [...new Set(this.#options.transports)].filter((t) => TRANSPORTS.includes(t));
    if (this.#transports.length === 0) throw new TypeError(`RoomClient: options.transports must name some of ${TRANSPORTS}`);
  }

  /** This peer's id, once joined; null while not in the room. It stays
   * the same across resumes. */
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

  /** The transport of the current connection (while reconnecting, of the
   * last one); null before the first. */
  get transport() {
    return this.#session?.kind ?? this.#lastTransport;
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
    if (this.#session?.ready && this.#welcome) return Promise.resolve(this.#welcome);
    if (!this.#pending) {
      let resolve, reject;
      const promise = new Promise((res, rej) => ((resolve = res), (reject = rej)));
      this.#pending = { promise, resolve, reject };
    }
    const { promise } = this.#pending;
    this.#closed = false;
    this.#hidden = false;
    // A closed tab leaves at once rather than lingering as away.
    globalThis.addEventListener?.("pagehide", this.#onPageHide);
    globalThis.addEventListener?.("pageshow", this.#onPageShow);
    if (!this.#session && !this.#fetchingToken) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      this.#open();
    }
    return promise;
  }

  /** Leaves the room ({"type":"leave"}, then close code 1000) and closes
   * every peer connection; a pending connect() rejects with code
   * "closed". The session token is forgotten. */
  close() {
    if (this.#closed) return;
    globalThis.removeEventListener?.("pagehide", this.#onPageHide);
    globalThis.removeEventListener?.("pageshow", this.#onPageShow);
    this.#shut(true);
  }

  /** The page goes away (closed, reloaded, or into the back-forward
   * cache): leave at once, as close() does, so that the others see the
   * tab go now, not when the server's resume window ends. The stored
   * session token stays: should the leave not reach the server (a dead
   * network), the reloaded page presents it to take the seat over (see
   * #openTransport). */
  #hide() {
    if (this.#closed) return;
    this.#hidden = true;
    this.#shut(false);
  }

  #shut(forget) {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    this.#fetchingToken = null;
    if (forget) this.#forgetToken();
    const session = this.#session;
    if (session) {
      this.#detach(session);
      session.leave();
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

  // --- connections ------------------------------------------------------

  /** Opens a connection, with a room token when the token option gives
   * one. A token function is called again before every connection, so
   * that a page can hand out fresh tokens as old ones expire. */
  #open() {
    const option = this.#options.token;
    if (typeof option !== "function") return this.#openTransport(option);
    const attempt = {};
    this.#fetchingToken = attempt;
    Promise.resolve()
      .then(() => option())
      .then(
        (roomToken) => {
          if (this.#fetchingToken !== attempt) return; // closed meanwhile
          this.#fetchingToken = null;
          this.#openTransport(roomToken);
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

  /** Opens a connection on the transport whose turn it is. With a session
   * token and the state of that session (peer connections, the last seq
   * processed) from a server that resumes, it asks to resume (resume= and
   * last_seq=). With a token but no state (a reloaded page whose leave may not have reached the
   * server: its old connection may still hold the seat in a full room) it
   * presents the token alone, which joins afresh in that seat; so does a
   * client of a server that does not resume. */
  #openTransport(roomToken) {
    const url = new URL(this.#url);
    if (roomToken) url.searchParams.set("token", roomToken);
    const token = this.#resumeToken();
    const resuming = Boolean(token) && this.#id !== null && this.#resumable;
    if (token) url.searchParams.set("resume", token);
    if (resuming) url.searchParams.set("last_seq", String(this.#lastSeq));
    if (resuming) this.#resumeWanted = true;
    const kind = this.#transports[this.#transportIndex] ?? this.#transports[0];
    /** @type {Connection} */
    const session = {
      kind,
      opened: false,
      ready: false,
      closed: false,
      heard: true,
      lastTick: 0,
      welcomeTimer: null,
      pingTimer: null,
      error: null,
      resuming,
      send: () => {},
      leave: () => Promise.resolve(),
      drop: () => {},
      isOpen: () => false,
    };
    this.#session = session;
    this.#lastTransport = kind;
    if (kind === "sse") this.#openSSE(session, url);
    else this.#openWebSocket(session, url);
    // A connection that hangs before its welcome (a silent network) is
    // given up too, but late enough for a slow server.
    const welcomeWait = Math.max(2 * this.#options.pingIntervalMs, this.#options.maxBackoffMs);
    session.welcomeTimer = setTimeout(() => this.#abandon(session, "no welcome"), welcomeWait);
  }

  /** @param {Connection} session @param {URL} url */
  #openWebSocket(session, url) {
    const ws = new WebSocket(url);
    ws.onopen = () => (session.opened = true);
    ws.onmessage = (ev) => this.#onMessage(session, ev.data);
    ws.onclose = (ev) => this.#onTransportClose(session, ev.code, ev.reason);
    ws.onerror = () => {}; // onclose follows with the details
    session.isOpen = () => ws.readyState === WebSocket.OPEN;
    session.send = (text) => session.isOpen() && ws.send(text);
    session.leave = () =>
      new Promise((resolve) => {
        session.send(LEAVE);
        ws.onmessage = null;
        ws.onclose = () => resolve();
        ws.close(1000, "bye");
        setTimeout(resolve, LEAVE_WAIT_MS);
      });
    // Not 1000, which would leave the room: the session may resume.
    session.drop = () => {
      ws.onclose = ws.onmessage = null;
      ws.close();
    };
  }

  /** The fallback transport: frames arrive as the events of an
   * EventSource on <url>/events, and go out as POSTs to <url>/send, one
   * at a time and in order. EventSource would reconnect by itself, to its
   * first URL; the client closes it instead and reconnects as it does
   * for a WebSocket, with the token and seq of the moment.
   * @param {Connection} session @param {URL} url */
  #openSSE(session, url) {
    const es = new EventSource(sseURL(url, "events"));
    es.onopen = () => (session.opened = true);
    es.onmessage = (ev) => this.#onMessage(session, ev.data);
    // The stream ended (after a refusal, too), or could not be opened.
    es.onerror = () => {
      es.close();
      session.closed = true;
      this.#onTransportClose(session, 1006, session.error?.code ?? "stream ended");
    };
    const target = sseURL(url, "send");
    target.search = "";
    /** @type {string[]} */
    const queue = [];
    let posting = false;
    const post = (text) => {
      const u = new URL(target);
      u.searchParams.set("session", this.#token ?? "");
      return fetch(u, { method: "POST", body: text, headers: { "Content-Type": "text/plain" }, cache: "no-store", keepalive: text === LEAVE });
    };
    const pump = async () => {
      posting = true;
      while (queue.length && !session.closed) {
        let res;
        try {
          res = await post(queue[0]);
        } catch {
          await sleep(POST_RETRY_MS); // the network; seq makes the retry safe
          continue;
        }
        if (res.ok) {
          queue.shift();
          continue;
        }
        if (res.status >= 500) {
          await sleep(POST_RETRY_MS);
          continue;
        }
        queue.shift();
        if (res.status === 404) {
          // The server no longer knows this session: reconnect.
          if (!session.closed) this.#abandon(session, "unknown session");
          break;
        }
        // A refused frame: the error frame is the body.
        let m = null;
        try {
          m = JSON.parse(await res.text());
        } catch {
          // not JSON: nothing to report but the status
        }
        this.#onErrorFrame(session, m?.type === "error" ? m : { type: "error", code: "bad_message", message: `POST: ${res.status}` });
        if (FATAL_CODES.has(m?.code) && !session.closed) this.#abandon(session, m.code);
      }
      posting = false;
    };
    session.isOpen = () => !session.closed && es.readyState === EventSource.OPEN;
    session.send = (text) => {
      if (session.closed) return;
      queue.push(text);
      if (!posting) pump();
    };
    session.leave = () => {
      const welcomed = session.ready;
      session.closed = true;
      es.close();
      return welcomed ? post(LEAVE).then(() => {}, () => {}) : Promise.resolve();
    };
    session.drop = () => {
      session.closed = true;
      es.close();
    };
  }

  /** Takes a frame off the connection. Frames are handled one at a time,
   * in order, even across awaits and reconnects; frames whose seq was
   * taken in already (a replay) are dropped. Error frames are acted on at
   * once, so that a fatal one is known before the close that follows it. */
  #onMessage(session, raw) {
    if (this.#session !== session) return;
    session.heard = true;
    let m;
    try {
      m = JSON.parse(raw);
    } catch {
      return;
    }
    if (!m || typeof m !== "object") return;
    if (m.type === "welcome") {
      if (!this.#onWelcomeArrived(session, m)) return;
    } else if (typeof m.seq === "number") {
      if (m.seq <= this.#lastSeq) return;
      this.#lastSeq = m.seq;
    }
    if (m.type === "error") return this.#onErrorFrame(session, m);
    const epoch = this.#epoch;
    this.#chain = this.#chain
      .then(() => (this.#epoch === epoch ? this.#onFrame(m, session) : undefined))
      .catch((err) => this.#error("client", String(err), false));
  }

  #onErrorFrame(session, m) {
    session.error = m;
    if (m.code === "resume_failed") {
      // The server joins this connection afresh: its welcome is seq 1.
      this.#lastSeq = 0;
    }
    this.#error(m.code, m.message, FATAL_CODES.has(m.code));
  }

  /** What a welcome changes before any frame after it is handled; false
   * when the connection is given up instead. A fresh one starts a new
   * epoch. A resumed one sends at once the numbered frames the server has
   * not processed, before any newer frame goes out. */
  #onWelcomeArrived(session, m) {
    this.#preferred = this.#transportIndex;
    this.#resumable = m.resume_window > 0;
    this.#startPings(session);
    if (!m.resumed) {
      this.#epoch++;
      this.#lastSeq = typeof m.seq === "number" ? m.seq : 0;
      this.#outSeq = 0;
      this.#sent = [];
      this.#saveToken(m.resume);
      session.ready = true;
      return true;
    }
    const ack = typeof m.ack === "number" ? m.ack : 0;
    const lost = this.#sent.length > 0 && this.#sent[0].seq > ack + 1;
    if (lost) {
      // Frames the server never got are gone: leave that session and join
      // afresh.
      this.#rejoin(session, m.resume);
      return false;
    }
    // The old token stops working: POSTs of the SSE transport need this one.
    this.#saveToken(m.resume);
    this.#sent = this.#sent.filter((f) => f.seq > ack);
    session.ready = true;
    for (const f of this.#sent) session.send(f.text);
    return true;
  }

  /** Leaves the session a resumed welcome gave back, and joins afresh at
   * once: the fresh welcome then drops whatever the client held. */
  #rejoin(session, token) {
    this.#detach(session);
    session.ready = true;
    if (token) this.#token = token; // what the leave presents over SSE
    const left = session.leave();
    this.#forgetToken(true);
    // Once the server has let the seat go: in a full room, joining
    // before would be refused.
    left.then(() => {
      if (!this.#closed && !this.#session && !this.#fetchingToken && !this.#retryTimer) this.#open();
    });
  }

  #onTransportClose(session, code, reason) {
    if (this.#session !== session) return;
    this.#detach(session);
    const err = session.error;
    const fatal = FATAL_CLOSE.has(code) || FATAL_CODES.has(err?.code);
    const willReconnect = !this.#closed && !fatal && this.#options.reconnect;
    if (!willReconnect) {
      if (fatal) this.#forgetToken();
      this.#leaveRoom();
      // The server sends the error frame just before a fatal close, whose
      // reason is the code again.
      const why = (fatal && (err?.code || reason)) || "closed";
      this.#settle(new RoomError(why, err?.message || reason || `closed (${code})`));
      this.#closed = true;
    } else if (!session.opened && !err && this.#transportIndex + 1 < this.#transports.length) {
      // This transport cannot be opened here (a proxy that refuses
      // WebSockets, say): the next one is tried at once.
      this.#transportIndex++;
      this.#retryTimer = setTimeout(() => {
        this.#retryTimer = null;
        this.#open();
      });
    } else {
      this.#transportIndex = this.#preferred;
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

  /** Stops listening to a connection: it is no longer the client's. */
  #detach(session) {
    clearTimeout(session.welcomeTimer);
    clearInterval(session.pingTimer);
    if (this.#session === session) this.#session = null;
  }

  /** Gives up on a connection the server no longer answers on (a
   * half-open TCP connection may take minutes to report its close) and
   * goes on as if it had closed. */
  #abandon(session, reason) {
    session.drop();
    this.#onTransportClose(session, 1006, reason);
  }

  /** Pings the server every pingIntervalMs; no frame at all since the
   * previous ping means the connection is dead. A tick that comes late
   * (the page was frozen or starved of CPU) judges nothing: the answer may
   * be waiting in the page's own queue. */
  #startPings(session) {
    const interval = this.#options.pingIntervalMs;
    clearTimeout(session.welcomeTimer);
    clearInterval(session.pingTimer);
    session.lastTick = performance.now();
    session.pingTimer = setInterval(() => {
      const now = performance.now();
      const late = now - session.lastTick > 1.5 * interval;
      session.lastTick = now;
      if (!session.isOpen()) return;
      if (!session.heard && !late) return this.#abandon(session, "no answer to ping");
      session.heard = false;
      session.send('{"type":"ping"}');
    }, interval);
  }

  /** Sends a frame that must arrive: numbered, and kept to be sent again
   * should the connection drop before the server processed it. While
   * there is no connection it waits for the resume. */
  #sendFrame(frame) {
    // "ack" tells the server which of its frames were taken in, so that
    // it lets go of them without a ping to learn it.
    const ack = this.#lastSeq > 0 ? { ack: this.#lastSeq } : {};
    const text = JSON.stringify({ ...frame, ...ack, seq: ++this.#outSeq });
    this.#sent.push({ seq: this.#outSeq, text });
    if (this.#sent.length > SENT_MEMORY) this.#sent.shift();
    const s = this.#session;
    if (s?.ready) s.send(text);
  }

  /** Sends a signal for a connection of the current epoch: a connection
   * of an earlier one has no counterpart any more, and its signals must
   * not reach anyone under this client's new id. */
  #signal(peer, data) {
    if (peer.closed || peer.epoch !== this.#epoch) return;
    this.#sendFrame({ type: "signal", to: peer.id, data: { ...data, gen: peer.gen } });
  }

  async #onFrame(m, session) {
    switch (m.type) {
      case "welcome":
        return m.resumed ? this.#onResumed(m) : this.#onWelcome(m, session);
      case "peer-joined":
        return this.#onPeerJoined(m);
      case "peer-left":
        return this.#onPeerLeft(m.id);
      case "signal":
        return this.#onSignal(m.from, m.data);
      case "server-message":
        // From the site's backend, through the rooms API.
        return this.#emit("servermessage", { data: m.data });
    }
  }

  /** A fresh join: a new id. Whatever the client still held (a resume
   * that failed, a server without resume) is dropped first, as if every
   * member had left. */
  async #onWelcome(m, session) {
    const epoch = this.#epoch;
    if (this.#id !== null || this.#peers.size > 0) this.#dropAll();
    if (this.#resumeWanted) {
      this.#resumeWanted = false;
      this.#emit("resume", { resumed: false, id: m.id });
    }
    this.#id = m.id;
    this.#attempt = 0;
    if (!this.#options.iceServers) {
      if (m.iceServers?.length) this.#useIceServers(m.iceServers, credentialsExpiry(m.iceServers));
      else if (this.#options.credentialsUrl) await this.#fetchCredentials();
    }
    if (this.#epoch !== epoch) return; // closed while fetching
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

  /** The same session on a new connection: connections stay, and only
   * real changes of membership while away are announced (the frames the
   * server replays next announce them too, and are not announced twice). */
  #onResumed(m) {
    this.#resumeWanted = false;
    this.#attempt = 0;
    const now = new Map(m.peers.filter((p) => p.id !== this.#id).map((p) => [p.id, p]));
    for (const id of this.peers) if (!now.has(id)) this.#onPeerLeft(id);
    for (const [id, { user, name }] of now) {
      if (this.#members.has(id) || this.#left.has(id)) continue;
      this.#members.add(id);
      this.#resumeJoined.add(id);
      this.#emit("peerjoined", { id, user, name });
    }
    if (!this.#options.iceServers && m.iceServers?.length) this.#useIceServers(m.iceServers, credentialsExpiry(m.iceServers));
    this.#welcome = m;
    this.#emit("resume", { resumed: true, id: this.#id });
    this.#settle(null, m);
    // A path that failed while the credentials had expired is restarted
    // now that the welcome brought fresh ones.
    for (const peer of this.#peers.values()) {
      if (peer.restart) this.#retryRestart(peer.id);
      else this.#watchPath(peer);
    }
  }

  /** A newcomer, with the user and name its room token gave, if any. */
  #onPeerJoined({ id, user, name }) {
    if (id === this.#id || this.#left.has(id)) return;
    this.#members.add(id);
    if (!this.#resumeJoined.delete(id)) this.#emit("peerjoined", { id, user, name });
  }

  #onPeerLeft(id) {
    this.#left.add(id);
    if (this.#left.size > LEFT_MEMORY) this.#left.delete(this.#left.values().next().value);
    const was = this.#members.delete(id);
    this.#resumeJoined.delete(id);
    this.#drop(id);
    if (was) this.#emit("peerleft", { id });
  }

  /** Drops every member and connection, announcing each as gone: the
   * session they belonged to is over. */
  #dropAll() {
    for (const id of this.peers) {
      this.#members.delete(id);
      this.#drop(id);
      this.#emit("peerleft", { id });
    }
    for (const id of [...this.#peers.keys()]) this.#drop(id);
    this.#resumeJoined.clear();
  }

  /** Forgets the room's members, connections and session state (the
   * client left, or cannot come back). */
  #leaveRoom() {
    for (const id of [...this.#peers.keys()]) this.#drop(id);
    this.#members.clear();
    this.#resumeJoined.clear();
    this.#id = null;
    this.#welcome = null;
    this.#epoch++;
    this.#lastSeq = 0;
    this.#outSeq = 0;
    this.#sent = [];
    this.#resumeWanted = false;
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

  /** Forgets this client's token, and the stored one if it is this
   * client's (or, with stored, whatever is stored: the token a reloaded
   * page presented and has used up). */
  #forgetToken(stored = false) {
    const token = this.#token;
    this.#token = null;
    tokenHolders.delete(this);
    if (!token && !stored) return;
    try {
      const s = storage();
      if (stored || s?.getItem(this.#tokenKey()) === token) s?.removeItem(this.#tokenKey());
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
   * negotiation settles any later glare (ICE restarts, renegotiation).
   * gen is the pair's connection generation: both sides move to the next
   * one when either rebuilds the connection (#rebuild). */
  #createPeer(id, gen = 0) {
    const pc = new RTCPeerConnection({ iceServers: this.#iceServers, iceTransportPolicy: this.#options.iceTransportPolicy });
    let ended = () => {};
    const gone = new Promise((resolve) => (ended = resolve));
    /** @type {Peer} */
    const peer = {
      id,
      pc,
      epoch: this.#epoch,
      gen,
      polite: this.#id < id,
      offerer: undefined,
      makingOffer: false,
      negotiating: false,
      ignoreOffer: false,
      forceOffer: false,
      rebuilt: false,
      channels: new Map(),
      restartTimer: null,
      restart: null,
      shown: "",
      closed: false,
      gone,
      ended,
    };
    this.#peers.set(id, peer);

    pc.onicecandidate = ({ candidate }) => candidate && this.#signal(peer, { candidate });
    pc.onnegotiationneeded = () => this.#negotiate(peer);
    pc.onsignalingstatechange = () => this.#onStateChange(peer);
    pc.oniceconnectionstatechange = () => this.#onStateChange(peer);
    pc.onconnectionstatechange = () => this.#onStateChange(peer);
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

  /** Sends an offer when negotiation is needed. An ICE restart is offered
   * only by the side that made the connection's first offer: that side
   * holds DTLS role passive (its answerer chose active), and an answerer
   * of a restart offer may pick its role afresh (Firefox answers every
   * restart with setup:active), which the other side refuses if it
   * changes its role ("Failed to set SSL role"). So the other side asks
   * for the restart ({restart: true}, ignored by older clients) instead
   * of offering it, unless a retry tells it to offer anyway. */
  async #negotiate(peer) {
    const { pc } = peer;
    if (peer.negotiating || peer.closed || pc.signalingState !== "stable") return;
    peer.negotiating = true;
    try {
      if (peer.offerer === false && !peer.forceOffer && (await this.#offerRestarts(pc))) {
        // An offer that came meanwhile is answered, and its answer may
        // restart ICE already; else the retry timer asks again.
        if (peer.closed || pc.signalingState !== "stable") return;
        this.#beginRestart(peer);
        this.#askRestart(peer);
        return;
      }
      peer.forceOffer = false;
      peer.makingOffer = true;
      await pc.setLocalDescription();
      if (pc.currentLocalDescription && ufrag(pc.localDescription) !== ufrag(pc.currentLocalDescription)) this.#beginRestart(peer);
      this.#signal(peer, { description: pc.localDescription });
    } catch (err) {
      if (!peer.closed) {
        this.#error("negotiation", String(err), false, peer.id);
        this.#recover(peer);
      }
    } finally {
      peer.makingOffer = false;
      peer.negotiating = false;
    }
  }

  /** Whether the offer the connection would make now restarts ICE (new
   * credentials: restartIce() was called, by the client or the page). */
  async #offerRestarts(pc) {
    const current = pc.currentLocalDescription;
    return current !== null && ufrag(await pc.createOffer()) !== ufrag(current);
  }

  /** Any change of the connection's states: learns which side made the
   * first offer, ends a restart that has converged, watches the path,
   * and reports the state. */
  #onStateChange(peer) {
    if (peer.closed) return;
    const { pc } = peer;
    if (peer.offerer === undefined && pc.signalingState === "stable" && pc.currentLocalDescription) {
      peer.offerer = pc.currentLocalDescription.type === "offer";
    }
    this.#checkRestarted(peer);
    this.#watchPath(peer);
    this.#emitState(peer);
  }

  /** Emits connectionstatechange when the state shown for a peer changes:
   * "restarting" while a restart is under way, else connectionState. */
  #emitState(peer) {
    const state = peer.restart ? "restarting" : peer.pc.connectionState;
    if (state === peer.shown) return;
    peer.shown = state;
    this.#emit("connectionstatechange", { id: peer.id, state });
  }

  /** Restarts ICE when the path fails (a dead relay, a network change),
   * or has stayed disconnected for iceRestartDelayMs: browsers take tens
   * of seconds to call a silent path failed. Chromium may report it only
   * on connectionState, with iceConnectionState stuck at "disconnected",
   * so both are watched. A restart under way has its own retry timer. */
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

  /** Asks the side that made the first offer to restart ICE. The request
   * names the credentials it would replace (this side's remote ICE
   * ufrag), so that a request overtaken by a restart is not acted on: when
   * both sides restart at once, the offer crosses the request, and a
   * second restart right after the first would only disturb the pair. */
  #askRestart(peer) {
    this.#signal(peer, { restart: true, ufrag: ufrag(peer.pc.currentRemoteDescription) });
  }

  /** Restarts ICE with credentials that are still valid: expired ones
   * would make the TURN server refuse the new allocations. asked: the
   * other side asked for it ({restart: true}), so this side offers,
   * unless its credentials are no longer those the request names (seen:
   * it restarted since; older clients name none). */
  async #restartIce(peer, asked = false, seen = undefined) {
    if (peer.closed) return;
    if (asked && (peer.negotiating || peer.pc.signalingState === "have-local-offer")) return; // an offer is on its way
    if (asked && seen && seen !== ufrag(peer.pc.currentLocalDescription)) return; // restarted since it asked
    if (!asked && peer.restart) return; // under way: its retry timer takes over
    this.#beginRestart(peer);
    if (!(await this.#freshCredentials()) || peer.closed) return;
    if (asked) peer.forceOffer = true;
    peer.pc.restartIce(); // negotiationneeded follows: #negotiate
  }

  /** Marks a restart as under way, from the credentials in use now, and
   * arms its retry. */
  #beginRestart(peer) {
    if (peer.restart) return;
    const { pc } = peer;
    peer.restart = { from: ufrag(pc.currentLocalDescription), remoteFrom: ufrag(pc.currentRemoteDescription), attempts: 0, timer: null };
    this.#armRetry(peer);
    this.#emitState(peer);
  }

  #armRetry(peer) {
    clearTimeout(peer.restart.timer);
    peer.restart.timer = setTimeout(() => this.#retryRestart(peer.id), this.#options.restartRetryMs);
  }

  /** A restart is over once the connection is stable and connected with
   * new ICE credentials on both sides. */
  #checkRestarted(peer) {
    const { pc, restart: r } = peer;
    if (!r || pc.signalingState !== "stable" || pc.connectionState !== "connected") return;
    if (!["connected", "completed"].includes(pc.iceConnectionState)) return;
    if (ufrag(pc.currentLocalDescription) === r.from || ufrag(pc.currentRemoteDescription) === r.remoteFrom) return;
    clearTimeout(r.timer);
    peer.restart = null;
    peer.rebuilt = false;
    peer.forceOffer = false;
  }

  /** A restart that has not converged in restartRetryMs is tried again:
   * first with a fresh offer from the side that made the first offer
   * (the other side asks it again), then from whichever side this is
   * (an older client never answers a request), and after that the
   * connection is rebuilt. */
  async #retryRestart(id) {
    const peer = this.#peers.get(id);
    const r = peer?.restart;
    if (!r) return;
    r.attempts++;
    this.#armRetry(peer);
    if (r.attempts >= REBUILD_AFTER_RETRIES) return this.#rebuild(peer);
    await this.#rollback(peer);
    if (peer.closed || !(await this.#freshCredentials()) || peer.closed) return;
    if (peer.offerer === false && r.attempts === 1) return this.#askRestart(peer);
    peer.forceOffer = true;
    peer.pc.restartIce();
    // negotiationneeded does not fire again for a restart it announced
    // already (an offer that was not sent, or was rolled back).
    this.#negotiate(peer);
  }

  /** Rolls back a description of ours or theirs that is pending. */
  async #rollback(peer) {
    const state = peer.pc.signalingState;
    if (state === "stable" || state === "closed") return;
    try {
      await peer.pc.setLocalDescription({ type: "rollback" });
    } catch {
      // Closed meanwhile, or nothing to roll back any more.
    }
  }

  /** A description that could not be applied (an answer refusing the
   * DTLS role this side holds, say): rolled back, and the connection is
   * rebuilt, which both browsers can always agree on. A connection that
   * was just rebuilt is left to the retry timer instead, so that a
   * refusal that repeats cannot make a loop. */
  async #recover(peer) {
    await this.#rollback(peer);
    if (peer.closed) return;
    if (peer.rebuilt) return this.#beginRestart(peer);
    this.#rebuild(peer);
  }

  /** Replaces the connection to a peer with a fresh one of the next
   * generation, whose first offer (negotiationneeded: the same data
   * channels and tracks) tells the other side to replace its own. Other
   * peers' connections are not touched. */
  #rebuild(peer) {
    this.#replacePeer(peer, peer.gen + 1);
  }

  /** Closes a peer's connection and opens a fresh one of generation gen
   * in its place, as a restart under way until it connects. */
  #replacePeer(old, gen) {
    const { pc } = old;
    const restart = old.restart ?? { from: ufrag(pc.currentLocalDescription), remoteFrom: ufrag(pc.currentRemoteDescription), attempts: 0, timer: null };
    this.#closePeer(old);
    const peer = this.#createPeer(old.id, gen);
    peer.rebuilt = true;
    peer.restart = restart;
    this.#armRetry(peer);
    this.#emitState(peer);
    return peer;
  }

  /** The perfect negotiation pattern (W3C WebRTC, section 10.7), with
   * connection generations: a signal of an older generation is stale, and
   * an offer of a newer one means the other side rebuilt the connection. */
  async #onSignal(from, data) {
    if (!data || from === this.#id || this.#left.has(from)) return;
    let peer = this.#peers.get(from);
    const isOffer = data.description?.type === "offer";
    // Older clients send no generation: theirs is always the current one.
    const gen = Number.isInteger(data.gen) ? data.gen : (peer?.gen ?? 0);
    if (!peer) {
      // Only an offer starts a connection: a candidate or an answer for a
      // connection this client no longer has would start one that never
      // connects.
      if (!isOffer) return;
      this.#members.add(from);
      peer = this.#createPeer(from, gen);
    } else if (gen < peer.gen || (gen > peer.gen && !isOffer)) {
      return;
    } else if (gen > peer.gen) {
      peer = this.#replacePeer(peer, gen);
    }
    if (data.restart) return this.#restartIce(peer, true, data.ufrag);
    const { pc } = peer;
    try {
      if (data.description) await this.#onDescription(peer, data.description);
      else if (data.candidate) {
        try {
          await this.#untilClosed(peer, pc.addIceCandidate(data.candidate));
        } catch (err) {
          if (!peer.ignoreOffer) throw err;
        }
      }
    } catch (err) {
      if (peer.closed) return;
      this.#error("negotiation", String(err), false, from);
      if (data.description) this.#recover(peer);
    }
  }

  async #onDescription(peer, d) {
    const { pc } = peer;
    const isOffer = d.type === "offer";
    // An answer this side is not waiting for (a duplicate, or to an offer
    // rolled back since) is dropped.
    if (d.type === "answer" && pc.signalingState !== "have-local-offer") return;
    const collision = isOffer && (peer.makingOffer || pc.signalingState !== "stable");
    peer.ignoreOffer = !peer.polite && collision;
    if (peer.ignoreOffer) return;
    if (isOffer && pc.currentRemoteDescription && ufrag(d) !== ufrag(pc.currentRemoteDescription)) this.#beginRestart(peer);
    await this.#untilClosed(peer, pc.setRemoteDescription(d));
    if (isOffer && !peer.closed) {
      await this.#untilClosed(peer, pc.setLocalDescription());
      if (!peer.closed) this.#signal(peer, { description: pc.localDescription });
    }
  }

  #drop(id) {
    const peer = this.#peers.get(id);
    if (!peer) return;
    this.#peers.delete(id);
    clearTimeout(peer.restart?.timer);
    this.#closePeer(peer);
    this.#emit("connectionstatechange", { id, state: "closed" });
  }

  /** Closes a peer's connection for good (dropped, or replaced by a
   * rebuilt one). */
  #closePeer(peer) {
    peer.closed = true;
    clearTimeout(peer.restartTimer);
    peer.pc.close();
    peer.ended();
  }

  /** Waits for an operation on a peer's connection, or until that
   * connection is closed, whichever comes first. Closing a connection
   * abandons the operations queued on it: their promises never settle
   * (W3C WebRTC, "chain an operation"), and the frames after the one
   * waiting would wait for good. */
  #untilClosed(peer, op) {
    return Promise.race([op, peer.gone]);
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
 * @typedef {object} Connection one WebSocket or SSE stream and what the client knows of it
 * @property {"websocket"|"sse"} kind
 * @property {boolean} opened the transport opened (else the next one is tried)
 * @property {boolean} ready a welcome came: frames may go out
 * @property {boolean} closed no more frames go out
 * @property {boolean} resuming it asked to resume the client's session
 * @property {(text: string) => void} send
 * @property {() => Promise<void>} leave sends a leave and closes with 1000; resolves once done
 * @property {() => void} drop closes without leaving (the session may resume)
 * @property {() => boolean} isOpen
 * @property {boolean} heard a frame came since the last ping
 * @property {number} lastTick when the ping timer last ran
 * @property {ReturnType<typeof setTimeout>|null} welcomeTimer gives up on a socket that brings no welcome
 * @property {ReturnType<typeof setInterval>|null} pingTimer
 * @property {{code: string, message: string}|null} error the last error frame
 *
 * @typedef {object} Peer the connection to one remote member
 * @property {string} id
 * @property {RTCPeerConnection} pc
 * @property {number} epoch the membership epoch it belongs to
 * @property {number} gen the pair's connection generation (signals carry it)
 * @property {boolean} polite
 * @property {boolean|undefined} offerer this side made the connection's first offer (undefined: not known yet)
 * @property {boolean} makingOffer
 * @property {boolean} negotiating #negotiate is under way
 * @property {boolean} ignoreOffer
 * @property {boolean} forceOffer offer the next ICE restart even if not the offerer
 * @property {boolean} rebuilt a fresh connection that has not converged yet
 * @property {Map<string, RTCDataChannel>} channels
 * @property {ReturnType<typeof setTimeout>|null} restartTimer
 * @property {Restart|null} restart an ICE restart (or rebuild) under way
 * @property {string} shown the state last emitted
 * @property {boolean} closed
 * @property {Promise<void>} gone settles when the connection is closed
 * @property {() => void} ended settles gone
 *
 * @typedef {object} Restart
 * @property {string} from the local ICE ufrag before it
 * @property {string} remoteFrom the remote ICE ufrag before it
 * @property {number} attempts retries so far
 * @property {ReturnType<typeof setTimeout>|null} timer the next retry
 */
