// Room tokens in the browser: clients of the client.js served by the
// /secure route, which requires tokens (token_secret). The Go side mints
// the tokens with `caddy webrtc-token` and calls tokenCase(alice, bob).
"use strict";
(() => {
  const WAIT_MS = 20000;
  const within = (p, what) =>
    Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error("timed out: " + what)), WAIT_MS))]);

  /** Alice joins with a token string, Bob with a token function; each sees
   * the other's user and name from the tokens. A client without a token is
   * refused with the fatal error unauthorized. */
  window.tokenCase = async (aliceToken, bobToken) => {
    const { RoomClient, RoomError } = await import("/secure/client.js");
    const alice = new RoomClient({ room: "tokens", token: aliceToken });
    let calls = 0;
    const bob = new RoomClient({ room: "tokens", token: async () => (calls++, bobToken) });
    const stranger = new RoomClient({ room: "tokens" });
    try {
      const joined = new Promise((resolve) => alice.addEventListener("peerjoined", (e) => resolve(e.detail)));
      await within(alice.connect(), "alice's welcome");
      const w = await within(bob.connect(), "bob's welcome");
      const j = await within(joined, "alice hearing of bob");
      if (calls !== 1) return `the token function was called ${calls} times`;
      if (w.peers.length !== 1 || w.peers[0].user !== "alice" || w.peers[0].name !== "Alice") return "bob's welcome: " + JSON.stringify(w.peers);
      if (j.id !== w.id || j.user !== "bob" || j.name !== "Bob") return "peerjoined: " + JSON.stringify(j);
      const err = await within(stranger.connect().then(() => null, (e) => e), "the stranger's refusal");
      if (!(err instanceof RoomError) || err.code !== "unauthorized") return "without a token: " + (err ? err.code : "joined");
      return "ok";
    } finally {
      alice.close();
      bob.close();
      stranger.close();
    }
  };
})();
