// Cases of the browser client's own behaviour (signaling/webclient/client.js),
// installed in every test page; the Go side runs one with
// cases.run("name"), which resolves to "ok" or to what went wrong.
//
// Some run against the real server (the /plain, /single and /rtc routes of
// the test Caddy). Others give the client a stand-in WebSocket that the case
// drives frame by frame (fakeServer), to reach states a correct server never
// produces (a signal after peer-left) or that depend on timing (a retry
// still pending) deterministically. Peer connections are always real.
"use strict";
(() => {
  const POLL_MS = 20;
  const CASE_TIMEOUT_MS = 20000;

  /** The client module. Each instance name gives a separate module
   * instance: the same page's storage, but no memory of the other
   * instances' clients, as after a page reload. */
  const load = (route = "/plain", instance = "") => import(`${route}/client.js${instance ? "?instance=" + instance : ""}`);

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  /** Resolves when cond() holds; rejects after ms. */
  async function until(what, cond, ms = CASE_TIMEOUT_MS) {
    const deadline = performance.now() + ms;
    while (!(await cond())) {
      if (performance.now() > deadline) throw new Error("timed out waiting for " + what);
      await sleep(POLL_MS);
    }
  }

  /** Records a client's events, for checks and failure messages. */
  function record(client) {
    const events = [];
    for (const type of ["open", "peerjoined", "peerleft", "error", "close"]) {
      client.addEventListener(type, (e) => events.push({ type, ...e.detail }));
    }
    return events;
  }

  const has = (events, type, pred = () => true) => events.some((e) => e.type === type && pred(e));

  /** Replaces WebSocket for the clients created from now on; make(url, n)
   * may redirect the n-th socket. The sockets are returned for inspection. */
  function spySockets(make = (url) => url) {
    const Real = WebSocket;
    const opened = [];
    globalThis.WebSocket = class extends Real {
      constructor(url, protocols) {
        super(make(String(url), opened.length), protocols);
        opened.push(this);
      }
    };
    cleanups.push(() => (globalThis.WebSocket = Real));
    return opened;
  }

  /** A stand-in for WebSocket driven by the case: deliver() hands the
   * client a frame, drop() closes the socket from the server's side, and
   * what the client sends is kept in sent. Pings are answered. It opens
   * at once, unless FakeSocket.refuse is set: then it fails before
   * opening, as a WebSocket a proxy refuses. */
  class FakeSocket {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSING = 2;
    static CLOSED = 3;
    static all = [];
    static refuse = false;
    constructor(url) {
      this.url = String(url);
      this.readyState = FakeSocket.OPEN;
      this.sent = [];
      this.closedWith = null;
      FakeSocket.all.push(this);
      if (FakeSocket.refuse) setTimeout(() => this.drop());
      else queueMicrotask(() => this.onopen?.({}));
    }
    send(data) {
      if (this.readyState !== FakeSocket.OPEN) throw new DOMException("not open", "InvalidStateError");
      const frame = JSON.parse(data);
      this.sent.push(frame);
      if (frame.type === "ping") setTimeout(() => this.deliver({ type: "pong" }));
    }
    close(code, reason) {
      this.readyState = FakeSocket.CLOSED;
      this.closedWith = { code, reason };
    }
    deliver(frame) {
      if (this.readyState === FakeSocket.OPEN) this.onmessage?.({ data: JSON.stringify(frame) });
    }
    drop(code = 1006, reason = "") {
      this.readyState = FakeSocket.CLOSED;
      this.onclose?.({ code, reason });
    }
    signalsTo(id) {
      return this.sent.filter((f) => f.type === "signal" && f.to === id);
    }
  }

  /** Makes clients created from now on talk to FakeSockets; returns the
   * list of sockets they open. */
  function fakeServer() {
    const Real = WebSocket;
    FakeSocket.all = [];
    FakeSocket.refuse = false;
    globalThis.WebSocket = FakeSocket;
    cleanups.push(() => (globalThis.WebSocket = Real));
    return FakeSocket.all;
  }

  /** A stand-in for EventSource driven by the case: deliver() hands the
   * client a frame, end() ends the stream. */
  class FakeEventSource {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;
    static all = [];
    constructor(url) {
      this.url = String(url);
      this.readyState = FakeEventSource.OPEN;
      FakeEventSource.all.push(this);
      queueMicrotask(() => this.onopen?.({}));
    }
    close() {
      this.readyState = FakeEventSource.CLOSED;
    }
    deliver(frame) {
      if (this.readyState === FakeEventSource.OPEN) this.onmessage?.({ data: JSON.stringify(frame) });
    }
    end() {
      this.readyState = FakeEventSource.CONNECTING; // as EventSource, about to retry
      this.onerror?.({});
    }
  }

  /** The SSE transport against stand-ins: EventSources the case drives,
   * and POSTs recorded (url, parsed body) and answered 204. */
  function fakeSSE() {
    const [RealES, realFetch] = [EventSource, globalThis.fetch];
    FakeEventSource.all = [];
    const posts = [];
    globalThis.EventSource = FakeEventSource;
    globalThis.fetch = async (url, init) => {
      if (init?.method !== "POST") return realFetch(url, init);
      posts.push({ url: String(url), frame: JSON.parse(init.body) });
      await sleep(5); // one at a time: the next waits for this answer
      return new Response(null, { status: 204 });
    };
    cleanups.push(() => ((globalThis.EventSource = RealES), (globalThis.fetch = realFetch)));
    return { streams: FakeEventSource.all, posts };
  }

  /** Wraps RTCPeerConnection so that a case can pretend a path failed
   * (connectionState) and see restartIce calls. */
  function spyPeerConnections() {
    const Real = RTCPeerConnection;
    const made = [];
    globalThis.RTCPeerConnection = class extends Real {
      constructor(config) {
        super(config);
        this.fakeState = null;
        this.restarts = 0;
        made.push(this);
      }
      get connectionState() {
        return this.fakeState ?? super.connectionState;
      }
      restartIce() {
        this.restarts++;
        super.restartIce();
      }
      fail() {
        this.fakeState = "failed";
        this.onconnectionstatechange?.(new Event("connectionstatechange"));
      }
    };
    cleanups.push(() => (globalThis.RTCPeerConnection = Real));
    return made;
  }

  /** Records the URLs fetched from now on. */
  function spyFetches() {
    const real = globalThis.fetch;
    const urls = [];
    globalThis.fetch = (url, init) => (urls.push(String(url)), real(url, init));
    cleanups.push(() => (globalThis.fetch = real));
    return urls;
  }

  /** The delay of the timer that act() sets (the client's retry when a
   * socket closes), which is run at once instead; NaN if none. */
  function retryDelay(act) {
    const real = globalThis.setTimeout;
    let delay = NaN;
    globalThis.setTimeout = (f, ms, ...args) => ((delay = ms), real(f, 0, ...args));
    try {
      act();
    } finally {
      globalThis.setTimeout = real;
    }
    return delay;
  }

  /** A real offer, as another browser would send it. */
  async function realOffer() {
    const pc = new RTCPeerConnection();
    cleanups.push(() => pc.close());
    pc.createDataChannel("x");
    await pc.setLocalDescription();
    return pc.localDescription.toJSON();
  }

  const welcome = (id, extra = {}) => ({ type: "welcome", id, room: "fake", peers: [], ...extra });

  /** Records the RoomClient's resume events too. */
  function recordAll(client) {
    const events = record(client);
    client.addEventListener("resume", (e) => events.push({ type: "resume", ...e.detail }));
    return events;
  }

  /** A client of a stand-in server with a data channel to each peer and
   * fast reconnects, its events recorded, connecting (p). */
  async function resumable() {
    sessionStorage.clear();
    const sockets = fakeServer();
    const { RoomClient } = await load();
    const c = track(new RoomClient({ room: "fake", dataChannels: ["d"], minBackoffMs: 10, maxBackoffMs: 20 }));
    return { sockets, c, events: recordAll(c), p: c.connect() };
  }

  const seqs = (frames) => frames.filter((f) => f.seq !== undefined).map((f) => f.seq);

  /** A TURN REST username that expires at unix time t (seconds). */
  const turnServer = (t) => ({ urls: ["turn:127.0.0.1:9?transport=udp"], username: `${t}:case`, credential: "x" });
  const now = () => Math.floor(Date.now() / 1000);

  let cleanups = [];
  /** Clients made by a case, closed after it. */
  const track = (client) => (cleanups.push(() => client.close()), client);

  const cases = {
    // --- against the real server -------------------------------------------

    /** Without iceServers in the welcome, the client fetches them from
     * credentialsUrl; the URL defaults to "ws" next to client.js. */
    async credentialsFetched() {
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "options", credentialsUrl: "/credentials" }));
      const w = await c.connect();
      const ice = c.iceServers;
      if (w.iceServers) return "the welcome had iceServers";
      if (ice.length !== 2 || !ice[1].username.includes(":")) return "iceServers " + JSON.stringify(ice);
      if (!c.url.startsWith(`wss://${location.host}/plain/ws?room=options`)) return "url " + c.url;
      return "ok";
    },

    /** close() before the welcome rejects connect() with code "closed". */
    async closeDuringConnect() {
      const { RoomClient, RoomError } = await load();
      const c = track(new RoomClient({ room: "closing" }));
      const pending = c.connect();
      c.close();
      const err = await pending.then(() => null, (e) => e);
      if (!(err instanceof RoomError)) return "connect() gave " + (err ? String(err) : "a welcome");
      return err.code === "closed" && err.name === "RoomError" ? "ok" : "code " + err.code;
    },

    /** A server that stops answering pings (here: the pings never reach
     * it) is given up after one ping interval without any frame, and the
     * client rejoins on a new socket. */
    async pingWatchdog() {
      const { RoomClient } = await load();
      const sockets = spySockets();
      const c = track(new RoomClient({ room: "watchdog", pingIntervalMs: 300, minBackoffMs: 50, maxBackoffMs: 100 }));
      const events = recordAll(c);
      const first = (await c.connect()).id;
      sockets[0].send = () => {};
      // Resumed (the same id), or, from a server without resume, joined afresh.
      await until("the rejoin", () => has(events, "resume", (e) => e.resumed) || has(events, "open", (e) => e.id !== first));
      const close = events.find((e) => e.type === "close");
      if (!close.willReconnect || close.reason !== "no answer to ping") return "close " + JSON.stringify(close);
      return sockets.length === 2 ? "ok" : `${sockets.length} sockets`;
    },

    /** A full room refuses with a RoomError, a fatal error event and a
     * close without reconnect. */
    async roomFull() {
      const { RoomClient, RoomError } = await load("/single");
      const a = track(new RoomClient({ room: "single" }));
      await a.connect();
      const b = track(new RoomClient({ room: "single" }));
      const events = record(b);
      const err = await b.connect().then(() => null, (e) => e);
      if (!(err instanceof RoomError) || err.code !== "room_full") return "connect() gave " + String(err);
      if (!has(events, "error", (e) => e.code === "room_full" && e.fatal)) return "no fatal room_full event " + JSON.stringify(events);
      if (!has(events, "close", (e) => e.code === 4409 && !e.willReconnect)) return "no final close " + JSON.stringify(events);
      return b.id === null ? "ok" : "b has an id";
    },

    /** connect() while a reconnect is pending connects at once, returns
     * the same promise, and leaves one socket: no second member (a ghost)
     * appears when the planned retry would have fired. */
    async connectWhileReconnectPending() {
      const { RoomClient } = await load();
      const observer = track(new RoomClient({ room: "ghost", url: "/rtc/ws" }));
      await observer.connect();
      // The first socket reaches nothing (port 1 refuses at once).
      const sockets = spySockets((url, n) => (n === 0 ? url.replace(location.host, "localhost:1") : url));
      const backoff = 400;
      // WebSocket only: no SSE fallback after the refused first socket.
      const c = track(new RoomClient({ room: "ghost", minBackoffMs: backoff, maxBackoffMs: backoff, transports: ["websocket"] }));
      let second = null;
      c.addEventListener("close", (e) => e.detail.willReconnect && !second && (second = c.connect()), { once: true });
      const first = c.connect();
      const w = await first;
      if (second !== first) return "connect() during the backoff returned another promise";
      await until("the observer to see c", () => observer.peers.includes(w.id));
      // Absence can only be seen by waiting: past the moment the retry
      // that connect() replaced was due.
      await sleep(2 * backoff);
      if (sockets.length !== 2) return `${sockets.length} sockets opened, want 2`;
      if (observer.peers.length !== 1) return "the observer sees " + JSON.stringify(observer.peers);
      const again = await c.connect();
      return again === w && sockets.length === 2 ? "ok" : "connect() when joined opened a socket";
    },

    /** A client presents the stored session token when it connects
     * without memory of it (another module instance, as a reloaded page):
     * the server gives it the seat of the session that stored it last and
     * evicts that one with "replaced" (fatal, no reconnect); the others see
     * peer-left, then peer-joined. A second client of the same page and
     * room never presents a live client's token. */
    async takeover() {
      sessionStorage.clear();
      const page = await load("/plain", "page");
      const reloaded = await load("/plain", "reloaded");
      const observer = track(new (await load("/rtc")).RoomClient({ room: "takeover" }));
      const seen = record(observer);
      await observer.connect();
      const a = track(new page.RoomClient({ room: "takeover" }));
      await a.connect();
      const a2 = track(new page.RoomClient({ room: "takeover" }));
      const a2events = record(a2);
      await a2.connect();
      await until("the observer to see a and a2", () => observer.peers.length === 2);
      if (!a.id) return "a2 took a's seat";
      const [aID, a2ID] = [a.id, a2.id];
      const b = track(new reloaded.RoomClient({ room: "takeover" }));
      const w = await b.connect();
      await until("a2's close", () => has(a2events, "close"));
      if (!has(a2events, "error", (e) => e.code === "replaced" && e.fatal)) return "a2: " + JSON.stringify(a2events);
      if (!has(a2events, "close", (e) => e.code === 4410 && !e.willReconnect)) return "a2: " + JSON.stringify(a2events);
      if (!a.id || a2.id !== null) return "a or a2 in the wrong state";
      if (w.peers.map((p) => p.id).includes(a2ID)) return "b's welcome lists a2";
      await until("the observer to see a and b", () => observer.peers.join() === [aID, b.id].join());
      const order = seen.filter((e) => e.id === a2ID || e.id === b.id).map((e) => e.type);
      return order.join() === "peerjoined,peerleft,peerjoined" ? "ok" : "observer saw " + order;
    },

    // --- against a stand-in server -----------------------------------------

    /** Signals from a peer that has left are ignored: no connection, no
     * answer, no membership. */
    async lateSignalIgnored() {
      const sockets = fakeServer();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake" }));
      const p = c.connect();
      const ws = sockets[0];
      ws.deliver(welcome("me"));
      await p;
      const offer = await realOffer();
      ws.deliver({ type: "peer-joined", id: "x" });
      ws.deliver({ type: "peer-left", id: "x" });
      ws.deliver({ type: "signal", from: "x", data: { description: offer } });
      ws.deliver({ type: "signal", from: "x", data: { candidate: { candidate: "", sdpMid: "0" } } });
      ws.deliver({ type: "peer-joined", id: "y" }); // handled after the signals
      await until("peer-joined y", () => c.peers.includes("y"));
      if (c.connection("x")) return "a connection to a peer that left";
      if (c.peers.includes("x")) return "x is still a member";
      return ws.signalsTo("x").length === 0 ? "ok" : "signalled a peer that left";
    },

    /** Only an offer starts a connection: a candidate or an answer from a
     * peer the client has no connection to is dropped without an error. */
    async strayCandidateIgnored() {
      const sockets = fakeServer();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake" }));
      const events = record(c);
      const p = c.connect();
      const ws = sockets[0];
      ws.deliver(welcome("me"));
      await p;
      ws.deliver({ type: "peer-joined", id: "z" });
      ws.deliver({ type: "signal", from: "z", data: { candidate: { candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid: "0" } } });
      ws.deliver({ type: "signal", from: "z", data: { description: { type: "answer", sdp: "v=0\r\n" } } });
      ws.deliver({ type: "peer-joined", id: "marker" });
      await until("the marker", () => c.peers.includes("marker"));
      if (c.connection("z")) return "a stray candidate or answer made a connection";
      if (has(events, "error")) return "errors " + JSON.stringify(events);
      ws.deliver({ type: "signal", from: "z", data: { description: await realOffer() } });
      await until("an answer to z", () => ws.signalsTo("z").some((f) => f.data.description?.type === "answer"));
      return c.connection("z") ? "ok" : "no connection after the offer";
    },

    /** The newcomer calls everyone in its welcome; one of them leaving
     * before answering drops that connection at once. */
    async staleWelcomePeerDropped() {
      const sockets = fakeServer();
      const { RoomClient } = await load();
      // A data channel gives the connections something to offer.
      const c = track(new RoomClient({ room: "fake", dataChannels: ["d"] }));
      const p = c.connect();
      const ws = sockets[0];
      ws.deliver(welcome("me", { peers: [{ id: "s" }, { id: "t" }] }));
      await p;
      await until("offers to s and t", () => ws.signalsTo("s").length > 0 && ws.signalsTo("t").length > 0);
      const stale = c.connection("s");
      ws.deliver({ type: "peer-left", id: "s" });
      await until("s dropped", () => !c.connection("s"));
      if (c.peers.join() !== "t") return "peers " + c.peers;
      return stale.signalingState === "closed" && c.connection("t") ? "ok" : "the stale connection is not closed";
    },

    /** The session token: kept in sessionStorage from each welcome,
     * presented on reconnects (and by a client without memory of it, as
     * after a reload, also with another room token in its URL), removed
     * by close(). "replaced" is fatal. */
    async tokenLifecycle() {
      sessionStorage.clear();
      const sockets = fakeServer();
      const mod = await load();
      const opts = { room: "fake", minBackoffMs: 10, maxBackoffMs: 20 };
      const c = track(new mod.RoomClient(opts));
      const stored = () => Object.values(sessionStorage);
      const p = c.connect();
      if (new URL(sockets[0].url).searchParams.has("resume")) return "a first connect presented a token";
      sockets[0].deliver(welcome("a1", { resume: "tok1" }));
      await p;
      if (stored().join() !== "tok1") return "stored " + stored();
      sockets[0].drop();
      await until("a reconnect", () => sockets.length === 2);
      // A welcome without resume_window: the token takes the seat over,
      // without last_seq, which would ask for a resume.
      const q1 = new URL(sockets[1].url).searchParams;
      if (q1.get("resume") !== "tok1" || q1.has("last_seq")) return "reconnected to " + sockets[1].url;
      sockets[1].deliver(welcome("a2", { resume: "tok2" }));
      await until("the new token", () => stored().join() === "tok2");

      const other = track(new mod.RoomClient(opts));
      other.connect();
      if (new URL(sockets[2].url).searchParams.has("resume")) return "a second client of the page presented the first one's token";
      other.close();
      // The reloaded page minted a new room token: the stored session
      // token is found all the same.
      const reloaded = track(new (await load("/plain", "reloaded")).RoomClient({ ...opts, url: "/plain/ws?token=fresh" }));
      reloaded.connect();
      const q = new URL(sockets[3].url).searchParams;
      if (q.get("resume") !== "tok2" || q.get("token") !== "fresh") return "after a reload: " + sockets[3].url;
      reloaded.close();

      c.close();
      if (stored().length) return "close() left " + stored();

      const d = track(new mod.RoomClient(opts));
      const events = record(d);
      const dp = d.connect();
      sockets[4].deliver(welcome("d1", { resume: "tok4" }));
      await dp;
      sockets[4].deliver({ type: "error", code: "replaced", message: "taken over" });
      sockets[4].drop(4410, "replaced");
      if (!has(events, "error", (e) => e.code === "replaced" && e.fatal)) return "events " + JSON.stringify(events);
      if (!has(events, "close", (e) => !e.willReconnect)) return "replaced is not final " + JSON.stringify(events);
      await sleep(4 * opts.maxBackoffMs); // past any retry's due time
      return sockets.length === 5 ? "ok" : "reconnected after replaced";
    },

    /** The backoff grows to its maximum and never gives up, and a
     * welcome resets it. The delays are read off the timer the client
     * sets while its socket closes (and then run at once), so the case
     * depends on no clock. */
    async backoffNeverGivesUp() {
      const sockets = fakeServer();
      const { RoomClient } = await load();
      const [min, max] = [100, 1000];
      const c = track(new RoomClient({ room: "fake", minBackoffMs: min, maxBackoffMs: max }));
      const p = c.connect();
      const failures = 12;
      const delays = [];
      for (let n = 0; n < failures; n++) {
        await until(`attempt ${n + 1}`, () => sockets.length === n + 1);
        delays.push(retryDelay(() => sockets[n].drop()));
      }
      for (const [n, d] of delays.entries()) {
        const base = Math.min(max, min * 2 ** n);
        if (!(d >= base / 2 && d <= base)) return `retry ${n + 1} after ${d} ms, want ${base / 2}..${base}: ${delays}`;
      }
      await until("one more attempt", () => sockets.length === failures + 1);
      sockets[failures].deliver(welcome("me"));
      await p;
      const after = retryDelay(() => sockets[failures].drop());
      return after <= min ? "ok" : `retry after ${after} ms once joined: the backoff was not reset`;
    },

    /** A socket that brings no welcome is given up too. */
    async welcomeTimeout() {
      const sockets = fakeServer();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake", pingIntervalMs: 100, minBackoffMs: 10, maxBackoffMs: 200 }));
      const events = record(c);
      c.connect();
      await until("a second socket", () => sockets.length === 2, 5000);
      if (!sockets[0].closedWith) return "the silent socket was left open";
      return has(events, "close", (e) => e.reason === "no welcome" && e.willReconnect) ? "ok" : JSON.stringify(events);
    },

    /** Before an ICE restart, expired TURN credentials from the welcome
     * make the client reconnect (a new welcome brings fresh ones) instead
     * of restarting with credentials the TURN server refuses. */
    async expiredCredentialsReconnect() {
      const sockets = fakeServer();
      const pcs = spyPeerConnections();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake", minBackoffMs: 10, maxBackoffMs: 20 }));
      const events = record(c);
      const p = c.connect();
      sockets[0].deliver(welcome("me", { peers: [{ id: "p" }], iceServers: [turnServer(now() - 1)] }));
      await p;
      pcs[0].fail();
      await until("a reconnect", () => sockets.length === 2);
      if (pcs[0].restarts !== 0) return "restarted ICE with expired credentials";
      return has(events, "close", (e) => e.reason === "TURN credentials expired" && e.willReconnect) ? "ok" : JSON.stringify(events);
    },

    /** With credentialsUrl, expired credentials are fetched again and
     * given to the connection before its ICE restart. */
    async expiredCredentialsRefetched() {
      const sockets = fakeServer();
      const pcs = spyPeerConnections();
      const fetches = spyFetches();
      const { RoomClient } = await load();
      // This route's credentials live one second: expired at once, given
      // the margin the client keeps.
      const c = track(new RoomClient({ room: "fake", credentialsUrl: "/shortcredentials" }));
      const p = c.connect();
      sockets[0].deliver(welcome("me", { peers: [{ id: "p" }] }));
      await p;
      const users = (list) => list.map((s) => s.username ?? "").join();
      const before = users(c.iceServers);
      if (fetches.length !== 1 || !before) return `${fetches.length} fetches, iceServers ${before}`;
      pcs[0].fail();
      await until("the ICE restart", () => pcs[0].restarts === 1);
      const after = users(c.iceServers);
      if (fetches.length !== 2 || after === before) return `${fetches.length} fetches, iceServers ${after}`;
      if (users(pcs[0].getConfiguration().iceServers) !== after) return "the connection kept the old credentials";
      return sockets.length === 1 ? "ok" : "reconnected";
    },

    /** A lost connection resumes: the reconnect presents the token and the
     * last seq taken in; the resumed welcome keeps every connection, only
     * real changes of membership are announced (and their replays are
     * not), frames the server did not process are sent again in order,
     * and replayed frames taken in before are ignored. */
    async resumeKeepsConnections() {
      const { sockets, c, events, p } = await resumable();
      const ws = sockets[0];
      ws.deliver(welcome("me", { seq: 1, peers: [{ id: "p" }, { id: "q" }], resume: "t1", resume_window: 30 }));
      await p;
      await until("offers to p and q", () => ws.signalsTo("p").length > 0 && ws.signalsTo("q").length > 0);
      ws.deliver({ seq: 2, type: "peer-joined", id: "r" });
      await until("r", () => c.peers.includes("r"));
      const [pcP, pcQ] = [c.connection("p"), c.connection("q")];
      const sent = seqs(ws.sent);
      if (sent.join() !== sent.map((_, i) => i + 1).join()) return "own frames numbered " + sent;
      ws.drop(1006);
      await until("a reconnect", () => sockets.length === 2);
      const ws2 = sockets[1];
      const q = new URL(ws2.url).searchParams;
      if (q.get("resume") !== "t1" || q.get("last_seq") !== "2") return "reconnected to " + ws2.url;
      if (!c.id || c.connection("p") !== pcP) return "the room was left while away";
      ws2.deliver(welcome("me", { peers: [{ id: "p" }, { id: "r" }, { id: "s", user: "sam" }], resumed: true, ack: 1, resume: "t2", resume_window: 30 }));
      ws2.deliver({ seq: 2, type: "peer-joined", id: "r" }); // taken in before
      ws2.deliver({ seq: 3, type: "peer-joined", id: "s", user: "sam" });
      ws2.deliver({ seq: 4, type: "peer-left", id: "q" });
      ws2.deliver({ seq: 5, type: "peer-joined", id: "marker" });
      await until("the marker", () => c.peers.includes("marker"));
      const resent = seqs(ws2.sent);
      const want = sent.filter((n) => n > 1);
      if (resent.slice(0, want.length).join() !== want.join()) return `resent ${resent}, want ${want} first`;
      if (c.id !== "me" || c.connection("p") !== pcP || pcP.signalingState === "closed") return "the connection to p was not kept";
      if (c.connection("q") || pcQ.signalingState !== "closed") return "q, gone while away, kept its connection";
      const seen = events.filter((e) => e.type !== "close").map((e) => e.type + (e.id ? " " + e.id : "") + (e.type === "resume" ? " " + e.resumed : ""));
      const wantSeen = ["open me", "peerjoined r", "peerleft q", "peerjoined s", "resume me true", "peerjoined marker"];
      if (seen.join() !== wantSeen.join()) return "events " + seen;
      if (Object.values(sessionStorage).join() !== "t2") return "stored " + Object.values(sessionStorage);
      if (c.peers.join() !== "p,r,s,marker") return "peers " + c.peers;
      return "ok";
    },

    /** resume_failed: every member is announced gone, the connections are
     * dropped, and the welcome that follows is a fresh join whose frames
     * are numbered from 1 again. */
    async resumeFailedResets() {
      const { sockets, c, events, p } = await resumable();
      sockets[0].deliver(welcome("me", { seq: 1, peers: [{ id: "p" }], resume: "t1", resume_window: 30 }));
      await p;
      await until("an offer to p", () => sockets[0].signalsTo("p").length > 0);
      const old = c.connection("p");
      sockets[0].drop(1006);
      await until("a reconnect", () => sockets.length === 2);
      const ws2 = sockets[1];
      ws2.deliver({ type: "error", code: "resume_failed", message: "expired" });
      ws2.deliver(welcome("me2", { seq: 1, peers: [{ id: "p" }], resume: "t3", resume_window: 30 }));
      ws2.deliver({ seq: 2, type: "peer-joined", id: "marker" });
      await until("the marker", () => c.peers.includes("marker"));
      const seen = events.filter((e) => e.type !== "close").map((e) => e.type + " " + (e.code ?? e.id) + (e.type === "resume" ? " " + e.resumed : ""));
      const want = ["open me", "error resume_failed", "peerleft p", "resume me2 false", "open me2", "peerjoined marker"];
      if (seen.join() !== want.join()) return "events " + seen;
      if (events.some((e) => e.type === "error" && e.fatal)) return "resume_failed was fatal";
      if (old.signalingState !== "closed" || !c.connection("p") || c.connection("p") === old) return "the old connection to p was kept";
      await until("an offer to p as me2", () => ws2.signalsTo("p").length > 0);
      return seqs(ws2.sent)[0] === 1 ? "ok" : "frames numbered " + seqs(ws2.sent);
    },

    /** close() leaves at once: a leave frame, then close code 1000, and
     * the token is forgotten. pagehide does the same but keeps the stored
     * token (a reloaded page reclaims its seat with it should the leave
     * not have reached the server). */
    async closeLeaves() {
      sessionStorage.clear();
      const sockets = fakeServer();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake" }));
      const p = c.connect();
      sockets[0].deliver(welcome("me", { seq: 1, resume: "t1" }));
      await p;
      c.close();
      const last = sockets[0].sent.at(-1);
      if (last?.type !== "leave" || sockets[0].closedWith?.code !== 1000) return "close(): " + JSON.stringify([last, sockets[0].closedWith]);
      if (Object.values(sessionStorage).length) return "close() kept the token";
      const d = track(new RoomClient({ room: "fake" }));
      const events = record(d);
      const dp = d.connect();
      sockets[1].deliver(welcome("me2", { seq: 1, resume: "t2" }));
      await dp;
      dispatchEvent(new PageTransitionEvent("pagehide", { persisted: false }));
      const last2 = sockets[1].sent.at(-1);
      if (last2?.type !== "leave" || sockets[1].closedWith?.code !== 1000) return "pagehide: " + JSON.stringify([last2, sockets[1].closedWith]);
      if (!has(events, "close", (e) => e.code === 1000 && !e.willReconnect) || d.id !== null) return "pagehide events " + JSON.stringify(events);
      return Object.values(sessionStorage).join() === "t2" ? "ok" : "pagehide stored " + Object.values(sessionStorage);
    },

    /** A WebSocket that cannot be opened gives way to SSE at once: frames
     * from the stream, frames out as POSTs to <url>/send?session=<token>,
     * one at a time, in order. A stream that ends is reopened by the client
     * with resume and last_seq, and the resume resends what the server did
     * not process. */
    async sseFallback() {
      sessionStorage.clear();
      const sockets = fakeServer();
      FakeSocket.refuse = true;
      const { streams, posts } = fakeSSE();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake", dataChannels: ["d"], minBackoffMs: 10, maxBackoffMs: 20 }));
      const events = recordAll(c);
      const p = c.connect();
      await until("an event stream", () => streams.length === 1);
      const es = streams[0];
      const u = new URL(es.url);
      if (u.protocol !== "https:" || u.pathname !== "/plain/ws/events" || u.searchParams.get("room") !== "fake") return "stream at " + es.url;
      if (sockets.length !== 1 || !has(events, "close", (e) => e.willReconnect)) return `${sockets.length} sockets, events ${JSON.stringify(events)}`;
      es.deliver(welcome("me", { seq: 1, peers: [{ id: "p" }], resume: "t1", resume_window: 30 }));
      await p;
      if (c.transport !== "sse") return "transport " + c.transport;
      await until("signals to p", () => posts.length >= 2);
      const post = new URL(posts[0].url);
      if (post.pathname !== "/plain/ws/send" || post.search !== "?session=t1") return "posted to " + posts[0].url;
      const n = seqs(posts.map((x) => x.frame));
      if (n.join() !== n.map((_, i) => i + 1).join()) return "posted in the order " + n;
      const pc = c.connection("p");
      es.end();
      await until("a new stream", () => streams.length === 2);
      const q = new URL(streams[1].url).searchParams;
      if (q.get("resume") !== "t1" || q.get("last_seq") !== "1") return "reopened " + streams[1].url;
      const before = posts.length;
      streams[1].deliver(welcome("me", { peers: [{ id: "p" }], resumed: true, ack: 1, resume: "t2", resume_window: 30 }));
      await until("the resend", () => posts.length > before);
      const again = posts.slice(before);
      if (again[0].frame.seq !== 2 || !again[0].url.endsWith("session=t2")) return "resent " + JSON.stringify(again[0]);
      if (c.connection("p") !== pc || c.transport !== "sse") return "the resume lost the connection or the transport";
      return has(events, "resume", (e) => e.resumed) ? "ok" : "events " + JSON.stringify(events);
    },

    /** Fresh credentials: ICE restarts at once, no fetch, no reconnect. */
    async freshCredentialsRestart() {
      const sockets = fakeServer();
      const pcs = spyPeerConnections();
      const { RoomClient } = await load();
      const c = track(new RoomClient({ room: "fake" }));
      const p = c.connect();
      sockets[0].deliver(welcome("me", { peers: [{ id: "p" }], iceServers: [turnServer(now() + 3600)] }));
      await p;
      pcs[0].fail();
      await until("the ICE restart", () => pcs[0].restarts === 1);
      return sockets.length === 1 ? "ok" : "reconnected";
    },
  };

  /** Checks of the server's TURN relay through the client, run by their
   * own test case. */
  const relayCases = {
    /** Two clients in one page, allowed nothing but the turn app's own
     * turns: listener, with the certificate Caddy manages for localhost. */
    relayOverTURNS: () => relayOnlyOver((u) => u.startsWith("turns:") && u !== siteTURNS()),
    /** The same through the site's own HTTPS port and hostname (the
     * caddy.listeners.turn wrapper), its only TURN URI. */
    relayOverSiteTURNS: () => relayOnlyOver((u) => u === siteTURNS(), `:${location.port}`),
  };

  /** The turns: URI of the page's own host and port. */
  const siteTURNS = () => `turns:${location.hostname}:${location.port}?transport=tcp`;

  /** Connects two clients allowed to use only the credential URIs that
   * pick keeps (iceTransportPolicy "relay"), sends a data channel message
   * and checks it went through a TURN/TLS relay, whose server URL
   * contains urlPart when given. */
  async function relayOnlyOver(pick, urlPart) {
    const { RoomClient } = await load();
    const creds = await (await fetch("/credentials")).json();
    const turn = creds.iceServers.find((s) => s.urls.some(pick));
    if (!turn) return "no such turns: URI in " + JSON.stringify(creds.iceServers);
    const iceServers = [{ ...turn, urls: turn.urls.filter(pick) }];
    const room = "turns" + Math.random().toString(36).slice(2);
    const opts = { room, iceServers, iceTransportPolicy: "relay", dataChannels: ["d"] };
    const a = track(new RoomClient(opts));
    const b = track(new RoomClient(opts));
    const got = new Promise((resolve) => b.addEventListener("message", (e) => resolve(e.detail.data)));
    a.addEventListener("datachannelopen", (e) => e.detail.channel.send("over turns"));
    await a.connect();
    await b.connect();
    const msg = await Promise.race([got, sleep(CASE_TIMEOUT_MS).then(() => "timeout")]);
    const pc = b.connection(a.id);
    const stats = await pc.getStats();
    let local = null;
    stats.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) local = stats.get(stats.get(r.selectedCandidatePairId).localCandidateId);
    });
    const ok = msg === "over turns" && pc.connectionState === "connected" && local?.candidateType === "relay" &&
      local?.relayProtocol === "tls" && (!urlPart || (local?.url ?? "").includes(urlPart));
    return ok ? "ok" : JSON.stringify({ msg, state: pc.connectionState, iceServers: iceServers[0].urls, local });
  }

  /** Runs a case and undoes what it changed in the page. */
  async function run(name) {
    cleanups = [];
    try {
      return await (cases[name] ?? relayCases[name])();
    } catch (err) {
      return `${name}: ${err?.stack ?? err}`;
    } finally {
      for (const undo of cleanups.reverse()) {
        try {
          undo();
        } catch {
          // best effort: the next case starts afresh anyway
        }
      }
    }
  }

  window.cases = { run, names: Object.keys(cases) };
})();
