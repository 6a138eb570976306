// Page-side checks of the browser tests, installed in every test page before
// its own scripts (and again after each reload). They look at the demo
// (window.demo, examples/site/app.js) through the client's public API only.
//
// A check answers "ok" when its condition holds, "" while it may still come,
// or "fail: <why>" when it cannot any more; the Go side polls it.
"use strict";
(() => {
  // Counts the RTCPeerConnections the page creates: a resume keeps every
  // one (check.undisturbed).
  let pcCreated = 0;
  if (globalThis.RTCPeerConnection) {
    globalThis.RTCPeerConnection = new Proxy(RTCPeerConnection, {
      construct(target, args, newTarget) {
        pcCreated++;
        return Reflect.construct(target, args, newTarget);
      },
    });
  }

  const demo = () => window.demo;
  const client = () => window.demo?.client ?? null;
  const tiles = () => [...document.querySelectorAll(".tile:not(.local)")];

  /** A fatal error (room_full, replaced, ...) on a page that should be in
   * its room ends any wait at once. */
  const fatal = () => (demo()?.error ? `fail: fatal error ${demo().error}: ${document.getElementById("notice").textContent}` : "");

  /** The candidate pair each connection uses, as [local, remote] stats. */
  async function selectedPairs(c) {
    const pairs = [];
    for (const id of c.peers) {
      const pc = c.connection(id);
      if (!pc) return null;
      const stats = await pc.getStats();
      let pair = null;
      stats.forEach((r) => {
        if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
      });
      // Firefox has no transport stats; it marks the selected pair itself.
      stats.forEach((r) => {
        if (!pair && r.type === "candidate-pair" && r.selected) pair = r;
      });
      if (!pair) return null;
      pairs.push([stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId)]);
    }
    return pairs;
  }

  /** "ok" when every connection's selected pair satisfies ok(local, remote). */
  async function everyPair(ok) {
    const c = client();
    const pairs = c && (await selectedPairs(c));
    if (!pairs) return "";
    for (const [local, remote] of pairs) {
      if (!ok(local, remote)) {
        demo().lastCheck = JSON.stringify([local, remote]);
        return "";
      }
    }
    return "ok";
  }

  /** What arrives from each peer: decoded video frames, audio packets. */
  async function inbound(pc) {
    const got = { video: 0, audio: 0 };
    (await pc.getStats()).forEach((r) => {
      if (r.type !== "inbound-rtp") return;
      if (r.kind === "video") got.video += r.framesDecoded || 0;
      if (r.kind === "audio") got.audio += r.packetsReceived || 0;
    });
    return got;
  }

  const hellos = () => new Set(demo().messages.filter((m) => m.text.startsWith("hello from ")).map((m) => m.text.slice(11)));

  window.check = {
    id: () => client()?.id ?? "",

    /** In the room, with an id other than before (a rejoin gets a new one). */
    joined(notId = "") {
      const id = client()?.id;
      return fatal() || (id && id !== notId ? "ok" : "");
    },

    /** Exactly n other members, each connected, and the tiles agree. */
    allConnected(n) {
      const c = client();
      if (fatal() || !c?.id) return fatal();
      const ids = c.peers;
      if (ids.length !== n || !ids.every((id) => c.connection(id)?.connectionState === "connected")) return "";
      const ts = tiles();
      return ts.length === n && ts.every((t) => t.dataset.state === "connected") ? "ok" : "";
    },

    /** Media arrives from each of n peers: decoded frames for each kind the
     * page sends itself (every page of a room sends the same kinds), and
     * the video elements show them. */
    async mediaFlowing(n) {
      const c = client();
      if (!c || c.peers.length !== n) return "";
      const kinds = (demo().stream?.getTracks() ?? []).map((t) => t.kind);
      for (const id of c.peers) {
        const pc = c.connection(id);
        const got = pc && (await inbound(pc));
        if (!got || kinds.some((k) => got[k] === 0)) return "";
      }
      if (kinds.includes("video") && !tiles().every((t) => t.querySelector("video").videoWidth > 0)) return "";
      return "ok";
    },

    clearMessages() {
      if (!demo()) return "";
      demo().messages = [];
      demo().helloSent = new Set();
      return "ok";
    },

    /** Says hello over the chat channel to every member it has not said
     * hello to under its current id (a page that rejoins says it again);
     * "ok" once it has, and has heard a hello from every member. */
    helloRound() {
      const c = client();
      if (fatal() || !c?.id) return fatal();
      const sent = (demo().helloSent ??= new Set());
      for (const id of c.peers) {
        const key = c.id + ">" + id;
        if (!sent.has(key) && c.sendTo(id, "chat", "hello from " + c.id)) sent.add(key);
      }
      const got = hellos();
      return c.peers.every((id) => sent.has(c.id + ">" + id) && got.has(id)) ? "ok" : "";
    },

    /** Every selected candidate pair is between loopback addresses (host
     * candidates or TURN relays on 127.0.0.1). Chromium hides the address
     * of peer-reflexive remote candidates; the other page checks that end
     * as its local one. */
    onlyLoopback() {
      const addr = (c) => c.address || c.ip;
      return everyPair((local, remote) => addr(local) === "127.0.0.1" && (addr(remote) || (remote.candidateType === "prflx" ? "127.0.0.1" : "")) === "127.0.0.1");
    },

    /** Every selected pair is relayed. Each page checks its own end, which
     * it knows for sure; the remote end may show as peer-reflexive when a
     * check arrives before its candidate did (the other page checks it as
     * local). */
    onlyRelay() {
      return everyPair((local, remote) => local.candidateType === "relay" && ["relay", "prflx"].includes(remote.candidateType));
    },

    /** The broken relay shows on some connection. */
    someNotConnected() {
      const c = client();
      return c && c.peers.some((id) => c.connection(id)?.connectionState !== "connected") ? "ok" : "";
    },

    /** The signaling connection is lost (the client is reconnecting). */
    offline() {
      return demo()?.client && !demo().connected ? "ok" : "";
    },

    /** How often the page joined or resumed. */
    joins: () => demo()?.joins ?? 0,

    /** Joined or resumed more than n times, and connected. */
    rejoined(n) {
      return fatal() || (demo()?.connected && demo().joins > n && client()?.id ? "ok" : "");
    },

    /** The client's transport is want ("websocket" or "sse"). */
    transport(want) {
      const t = client()?.transport;
      return fatal() || (t === want ? "ok" : `fail: transport ${t}`);
    },

    /** Starts watching for what a resume must not do: create a peer
     * connection, announce a member joining or leaving, change the id. */
    watch() {
      const c = client();
      if (!c?.id) return "";
      const w = (demo().watch = { id: c.id, created: pcCreated, events: [] });
      for (const type of ["open", "peerjoined", "peerleft", "resume"]) c.addEventListener(type, (e) => w.events.push({ type, ...e.detail }));
      return "ok";
    },

    /** Since watch(), nothing happened but successful resumes. */
    undisturbed() {
      const w = demo()?.watch;
      if (!w) return "fail: not watching";
      const bad = w.events.filter((e) => e.type !== "resume" || !e.resumed);
      if (bad.length) return "fail: " + JSON.stringify(bad);
      if (client()?.id !== w.id) return `fail: id ${client()?.id}, was ${w.id}`;
      return pcCreated === w.created ? "ok" : `fail: ${pcCreated - w.created} peer connections created`;
    },

    /** The page resumed since watch(), and is connected. */
    resumed() {
      const rs = (demo()?.watch?.events ?? []).filter((e) => e.type === "resume");
      if (rs.some((e) => !e.resumed)) return "fail: the resume failed: " + JSON.stringify(rs);
      return rs.length && demo().connected ? "ok" : "";
    },

    /** Notes what has arrived from each peer so far, for mediaRose. */
    async markMedia() {
      const c = client();
      if (!c?.peers.length) return "";
      const mark = {};
      for (const id of c.peers) {
        const pc = c.connection(id);
        if (!pc) return "";
        mark[id] = await inbound(pc);
      }
      demo().mediaMark = mark;
      return "ok";
    },

    /** More of every kind the page sends has arrived from each peer of
     * markMedia() since: decoded video frames, audio packets. */
    async mediaRose() {
      const c = client();
      const mark = demo()?.mediaMark;
      if (!c || !mark) return "";
      const kinds = (demo().stream?.getTracks() ?? []).map((t) => t.kind);
      for (const [id, before] of Object.entries(mark)) {
        const pc = c.connection(id);
        if (!pc) return `fail: no connection to ${id}`;
        const got = await inbound(pc);
        if (kinds.some((k) => got[k] <= before[k])) return "";
      }
      return "ok";
    },

    /** A page that must be refused: the fatal error it expects, shown. */
    refused(code) {
      return demo()?.error === code && document.getElementById("notice").textContent !== "" ? "ok" : "";
    },

    /** The tiles fit a screen this wide. */
    fits(width) {
      return document.getElementById("tiles").getBoundingClientRect().width <= width ? "ok" : "";
    },

    /** Why the page's signaling socket closed, each time. */
    closeReasons() {
      return JSON.stringify((demo()?.closes ?? []).map((c) => c.reason || String(c.code)));
    },

    /** Records every text each peer's badge shows from now on: a
     * restart converges within a fraction of a second here, too fast for
     * polling to see. */
    watchBadges() {
      if (!tiles().length) return "";
      const shown = (demo().badges = {});
      for (const t of tiles()) {
        const seen = (shown[t.dataset.peer] = []);
        const badge = t.querySelector(".badge");
        new MutationObserver(() => seen.push(badge.textContent)).observe(badge, { childList: true, characterData: true, subtree: true });
      }
      return "ok";
    },

    /** Restarts ICE on every connection of the page, as a page may. */
    restartAll() {
      const c = client();
      if (!c?.peers.length) return "";
      for (const id of c.peers) c.connection(id).restartIce();
      return "ok";
    },

    /** Since watchBadges(), every peer's badge has said "restarting", and
     * now says "connected". */
    badgesRestarted() {
      const shown = demo()?.badges;
      if (!shown) return "fail: watchBadges() first";
      const ok = tiles().every((t) => shown[t.dataset.peer]?.includes("restarting") && t.dataset.state === "connected");
      return ok ? "ok" : "";
    },

    /** Everything a failure message needs. */
    state() {
      const c = client();
      const short = (id) => id.slice(0, 6);
      return JSON.stringify({
        id: c?.id && short(c.id),
        tiles: tiles().map((t) => short(t.dataset.peer) + ":" + t.dataset.state),
        notice: document.getElementById("notice")?.textContent,
        peers: c ? c.peers.map((id) => {
          const pc = c.connection(id);
          return [short(id), pc?.signalingState, pc?.iceConnectionState, pc?.connectionState, c.channel(id, "chat")?.readyState];
        }) : [],
        heardFrom: demo() ? [...hellos()].map(short) : [],
        helloSentTo: [...(demo()?.helloSent ?? [])].filter((k) => k.startsWith(c?.id + ">")).map((k) => short(k.split(">")[1])),
        errors: demo()?.errors.slice(-10),
        closes: demo()?.closes?.slice(-10),
        lastCheck: demo()?.lastCheck,
      });
    },
  };
})();
