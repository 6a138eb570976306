// ICE restart cases of the browser client (signaling/webclient/client.js):
// two clients in one page, in a room of the real server, restart their
// connection in the ways a case names, and must converge to a stable,
// connected pair with new ICE credentials on both sides in time. The Go
// side (browser_restart_test.go) runs restarts.run({...}) for each row of
// its table; it resolves to a JSON report or to what went wrong.
"use strict";
(() => {
  const POLL_MS = 20;
  /** How long a restart may take to converge (the bound). */
  const CONVERGE_MS = 10000;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const ufrag = (desc) => /a=ice-ufrag:(\S+)/.exec(desc?.sdp ?? "")?.[1] ?? "";

  /** Resolves with the time cond() took to hold; rejects after ms. */
  async function until(what, cond, ms) {
    const start = performance.now();
    while (!(await cond())) {
      if (performance.now() - start > ms) throw new Error("timed out waiting for " + what);
      await sleep(POLL_MS);
    }
    return performance.now() - start;
  }

  let cleanups = [];
  const undo = (f) => cleanups.push(f);

  /** Makes every answer that restarts ICE claim DTLS role active, as
   * Firefox answers them (whatever role the answerer held): applied by
   * the offerer, it is refused when the answerer held passive, that is,
   * when the pair's first offerer answers a restart. */
  function firefoxAnswers() {
    const proto = RTCPeerConnection.prototype;
    const real = proto.setRemoteDescription;
    proto.setRemoteDescription = function (desc) {
      const current = this.currentRemoteDescription;
      if (desc?.type === "answer" && current && ufrag(desc) !== ufrag(current)) {
        desc = { type: "answer", sdp: desc.sdp.replace(/a=setup:\w+/g, "a=setup:active") };
      }
      return real.call(this, desc);
    };
    undo(() => (proto.setRemoteDescription = real));
  }

  /** Makes the next remote description of this type that restarts ICE
   * fail to apply, once, as a browser refuses one it cannot apply (the
   * connection keeps its state). */
  function refuseOnce(type) {
    const proto = RTCPeerConnection.prototype;
    const real = proto.setRemoteDescription;
    let armed = true;
    proto.setRemoteDescription = function (desc) {
      const current = this.currentRemoteDescription;
      if (armed && desc?.type === type && current && ufrag(desc) !== ufrag(current)) {
        armed = false;
        return Promise.reject(new DOMException(`test: the ${type} is refused`, "InvalidAccessError"));
      }
      return real.call(this, desc);
    };
    undo(() => (proto.setRemoteDescription = real));
  }

  /** Makes the sockets opened from now on lose the next signal that
   * carries an offer, once: a restart that never reaches the other side. */
  function loseOfferOnce() {
    const Real = WebSocket;
    let armed = false;
    globalThis.WebSocket = class extends Real {
      set onmessage(f) {
        super.onmessage = f && ((ev) => {
          const m = JSON.parse(ev.data);
          if (armed && m.type === "signal" && m.data?.description?.type === "offer") {
            armed = false;
            return;
          }
          f(ev);
        });
      }
      get onmessage() {
        return super.onmessage;
      }
    };
    undo(() => (globalThis.WebSocket = Real));
    return () => (armed = true);
  }

  /** Records the signals every socket opened from now on sends and
   * receives (its own number, generation, what it carries), for the
   * report of a case that does not converge. */
  function traceSignals(log) {
    const Real = WebSocket;
    let sockets = 0;
    const t0 = performance.now();
    const note = (n, dir, text) => {
      try {
        const m = JSON.parse(text);
        if (m.type !== "signal") return;
        const d = m.data ?? {};
        const what = d.restart ? "restart" : d.description ? d.description.type + ":" + ufrag(d.description) : "cand";
        if (what !== "cand") log.push(`${Math.round(performance.now() - t0)} ${n}${dir} g${d.gen ?? "-"} ${what}`);
      } catch {
        // not JSON: not a signal
      }
    };
    const proto = RTCPeerConnection.prototype;
    const ids = new WeakMap();
    let pcs = 0;
    const id = (pc) => ids.get(pc) ?? (ids.set(pc, ++pcs), pcs);
    for (const name of ["setLocalDescription", "setRemoteDescription"]) {
      const real = proto[name];
      proto[name] = function (desc) {
        const tag = `pc${id(this)} ${name.slice(3, 9)} ${desc?.type ?? "-"}`;
        log.push(`${Math.round(performance.now() - t0)} ${tag} from ${this.signalingState}`);
        const p = real.apply(this, arguments);
        p.then(
          () => log.push(`${Math.round(performance.now() - t0)} ${tag} ok: ${this.signalingState}`),
          (e) => log.push(`${Math.round(performance.now() - t0)} ${tag} err ${e}`),
        );
        return p;
      };
      undo(() => (proto[name] = real));
    }
    globalThis.WebSocket = class extends Real {
      constructor(...args) {
        super(...args);
        const n = ++sockets;
        this.addEventListener("message", (ev) => note(n, "<", ev.data));
        const send = this.send.bind(this);
        this.send = (text) => {
          note(n, ">", text);
          send(text);
        };
      }
    };
    undo(() => (globalThis.WebSocket = Real));
  }

  /** Records the states a client reports for its peer. */
  function states(client) {
    const seen = [];
    client.addEventListener("connectionstatechange", (e) => seen.push(e.detail.state));
    return seen;
  }

  /** The pair, seen from one side: stable, connected, and the client
   * reports it connected. */
  const settled = (side) => {
    const pc = side.c.connection(side.other());
    return pc?.signalingState === "stable" && pc.connectionState === "connected" && side.seen.at(-1) === "connected";
  };

  const creds = (pc) => [ufrag(pc?.currentLocalDescription), ufrag(pc?.currentRemoteDescription)];

  /**
   * One case. opts: first ("a" or "b": whose connection makes the pair's
   * first offer; the other joins first), by ("offerer", "answerer" or
   * "both": who restarts ICE), firefox (answers of restarts claim role
   * active), refuse ("answer" or "offer": the next restart description of
   * that type is refused once), lose (the next offer is lost), retryMs
   * (the clients' restartRetryMs).
   */
  async function pair(opts) {
    const tag = Math.random().toString(36).slice(2, 8);
    const { RoomClient } = await import(`/plain/client.js?restart=${tag}`);
    if (opts.firefox) firefoxAnswers();
    if (opts.refuse) refuseOnce(opts.refuse);
    const log = [];
    traceSignals(log);
    const lose = opts.lose ? loseOfferOnce() : () => {};
    const make = () => {
      const c = new RoomClient({ room: "restart-" + tag, dataChannels: ["d"], restartRetryMs: opts.retryMs });
      undo(() => c.close());
      c.addEventListener("error", (e) => log.push(`${e.detail.code}: ${e.detail.message}`));
      return { c, seen: states(c), other: () => c.peers[0] };
    };
    // The second to join makes the first offer.
    const joinsFirst = make();
    await joinsFirst.c.connect();
    const offerer = make();
    await offerer.c.connect();
    const sides = { offerer, answerer: joinsFirst };
    await until("the first connection", () => settled(offerer) && settled(joinsFirst), CONVERGE_MS);

    const pcs = [offerer, joinsFirst].map((s) => s.c.connection(s.other()));
    const before = pcs.map(creds);
    const marks = [offerer, joinsFirst].map((s) => s.seen.length);
    lose();
    const restarting = opts.by === "both" ? [offerer, joinsFirst] : [sides[opts.by]];
    restarting.forEach((s) => s.c.connection(s.other()).restartIce());
    const took = await until(
      "stable, connected, new ICE credentials on both sides",
      () =>
        [offerer, joinsFirst].every((s, i) => {
          const now = creds(s.c.connection(s.other()));
          return settled(s) && s.seen.length > marks[i] && now[0] !== before[i][0] && now[1] !== before[i][1];
        }),
      CONVERGE_MS + (opts.lose ? opts.retryMs : 0),
    ).catch((err) => {
      const pc = (s) => s.c.connection(s.other());
      const show = (s) => [pc(s)?.signalingState, pc(s)?.connectionState, creds(pc(s)), s.seen];
      throw new Error(`${err.message}: offerer ${JSON.stringify(show(offerer))}, answerer ${JSON.stringify(show(joinsFirst))}, before ${JSON.stringify(before)}; signals (1: answerer, 2: offerer): ${log.join("; ")}`);
    });
    const shown = [offerer, joinsFirst].map((s, i) => s.seen.slice(marks[i]));
    if (!shown.every((seq) => seq.includes("restarting"))) return "no restarting state shown: " + JSON.stringify(shown);
    const rebuilt = [offerer, joinsFirst].map((s, i) => s.c.connection(s.other()) !== pcs[i]);
    return JSON.stringify({ ms: Math.round(took), rebuilt, shown });
  }

  /** Runs a case and undoes what it changed in the page. */
  async function run(opts) {
    cleanups = [];
    try {
      return await pair(opts);
    } catch (err) {
      return `fail: ${err?.message ?? err}`;
    } finally {
      for (const f of cleanups.reverse()) {
        try {
          f();
        } catch {
          // best effort: the next case starts afresh anyway
        }
      }
    }
  }

  window.restarts = { run };

  /** One side of a pair across two browsers (Firefox and Chromium): each
   * page has one client, and the Go side drives both pages. */
  let side = null;
  let stream = null;
  window.restartSide = {
    /** Joins room (after leaving any earlier client), sending audio
     * from the fake microphone (Firefox offers its loopback candidates
     * only to a page granted one); resolves to the id. */
    async join(room, retryMs) {
      side?.c.close();
      const { RoomClient } = await import("/plain/client.js");
      stream ??= await navigator.mediaDevices.getUserMedia({ audio: true });
      const c = new RoomClient({ room, stream, dataChannels: ["d"], restartRetryMs: retryMs || undefined });
      side = { c, seen: states(c), other: () => c.peers[0] };
      return (await c.connect()).id;
    },

    leave() {
      side?.c.close();
      side = null;
      return "ok";
    },

    /** Once the pair is settled, notes its ICE credentials and what the
     * client has reported so far. */
    mark() {
      if (!side || !settled(side)) return "";
      side.before = creds(side.c.connection(side.other()));
      side.marked = side.seen.length;
      return "ok";
    },

    /** Restarts ICE on the connection, as a page may. */
    restart() {
      side.c.connection(side.other()).restartIce();
      return "ok";
    },

    /** Since mark(): stable, connected and reported so, with new ICE
     * credentials on both ends, and "restarting" reported meanwhile. */
    converged() {
      const now = creds(side.c.connection(side.other()));
      const shown = side.seen.slice(side.marked);
      if (!settled(side) || now[0] === side.before[0] || now[1] === side.before[1]) return "";
      return shown.includes("restarting") ? "ok" : "fail: no restarting state shown: " + JSON.stringify(shown);
    },

    /** For failure messages. */
    state() {
      const pc = side?.c.connection(side.other());
      const cands = (d) => (d?.sdp.match(/a=candidate:.*/g) ?? []).map((l) => l.split(" ").slice(4, 8).join(" "));
      return JSON.stringify([pc?.signalingState, pc?.connectionState, creds(pc), side?.before, side?.seen, side?.c.id, cands(pc?.localDescription), cands(pc?.remoteDescription)]);
    },
  };
})();
