// Page-side checks of the browser tests, installed in every test page before
// its own scripts (and again after each reload). They look at the demo
// (window.demo, examples/site/app.js) through the client's public API only.
//
// A check answers "ok" when its condition holds, "" while it may still come,
// or "fail: <why>" when it cannot any more; the Go side polls it.
"use strict";
(() => {
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

    /** Dropped from the room: no members, no tiles. */
    noPeers() {
      const c = client();
      return c && c.peers.length === 0 && tiles().length === 0 ? "ok" : "";
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
