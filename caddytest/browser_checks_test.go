package caddytest

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Page-side checks, evaluated in each tab.
const (
	jsAllConnected = `(() => {
		const tiles = [...document.querySelectorAll(".tile:not(.local)")];
		return tiles.length === %d && tiles.every(t => t.dataset.state === "connected");
	})()`
	jsVideoFlowing = `(async () => {
		const c = window.demo.client;
		if (!c || c.peers.size !== %d) return false;
		for (const p of c.peers.values()) {
			const stats = await p.pc.getStats();
			let frames = 0;
			stats.forEach(r => { if (r.type === "inbound-rtp" && r.kind === "video") frames += r.framesDecoded || 0; });
			if (frames === 0) return false;
		}
		return [...document.querySelectorAll(".tile:not(.local) video")].every(v => v.videoWidth > 0);
	})()`
	jsChannelsOpen = `[...window.demo.client.peers.values()].every(p => p.channels.get("chat")?.readyState === "open")`
	jsSayHello     = `(() => { window.demo.client.send("chat", "hello from " + window.demo.client.id); return true; })()`
	jsHeardAll     = `new Set(window.demo.messages.filter(m => m.text.startsWith("hello from ")).map(m => m.text)).size >= %d`
	// jsOnlyLoopback: the selected pair of every connection is between
	// loopback addresses (host candidates or TURN relays on 127.0.0.1).
	// Chromium hides the address of peer-reflexive remote candidates; the
	// other page checks that end as its local one.
	jsOnlyLoopback = jsEveryPair + `((local, remote) => {
		const addr = (c) => c.address || c.ip;
		if (addr(local) === "127.0.0.1" && (addr(remote) || (remote.candidateType === "prflx" ? "127.0.0.1" : "")) === "127.0.0.1") return true;
		window.demo.lastCheck = JSON.stringify([local, remote]);
		return false;
	})`
	// jsOnlyRelay: the selected pair of every connection is relayed. Every
	// page checks its own end, which it knows for sure; the remote end may
	// show as peer-reflexive when a check arrives before its candidate did
	// (the other page checks it as local).
	jsOnlyRelay = jsEveryPair + `((local, remote) => local.candidateType === "relay" && ["relay", "prflx"].includes(remote.candidateType))`
	// jsEveryPair, followed by a predicate on (local, remote) candidate
	// stats, holds when every connection has a selected pair satisfying it.
	jsEveryPair = `(async (ok) => {
		for (const p of window.demo.client.peers.values()) {
			const stats = await p.pc.getStats();
			let pair = null;
			stats.forEach(r => { if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
			if (!pair || !ok(stats.get(pair.localCandidateId), stats.get(pair.remoteCandidateId))) return false;
		}
		return true;
	})`
)

// fullMesh checks every page sees every other one connected, video frames
// decoded from each, and a data channel message from each.
func fullMesh(t *testing.T, ps []*page) {
	t.Helper()
	others := len(ps) - 1
	start := time.Now()
	for _, p := range ps {
		p.waitFor("clearing the chat log", `(() => { window.demo.messages = []; return true; })()`)
	}
	for _, p := range ps {
		p.waitFor("all peers connected", fmt.Sprintf(jsAllConnected, others))
	}
	t.Logf("%d pages fully connected after %s", len(ps), time.Since(start).Round(time.Millisecond))
	for _, p := range ps {
		p.waitFor("video frames from every peer", fmt.Sprintf(jsVideoFlowing, others))
		p.waitFor("chat channels open", jsChannelsOpen)
	}
	for _, p := range ps {
		p.waitFor("sending hello", jsSayHello)
	}
	for _, p := range ps {
		p.waitFor("a hello from every peer", fmt.Sprintf(jsHeardAll, others))
		p.waitFor("loopback addresses on every selected candidate pair", jsOnlyLoopback)
	}
	t.Logf("media and data flowing between all pairs after %s", time.Since(start).Round(time.Millisecond))
}

func openRoom(t *testing.T, ctx context.Context, room, query string) []*page {
	ps := make([]*page, pages)
	for i := range ps {
		ps[i] = openPage(t, ctx, fmt.Sprintf("page %d", i+1), "https://localhost:9443/?quality=low&room="+room+query)
		ps[i].waitFor("joining", `!!(window.demo && window.demo.client && window.demo.client.id)`)
	}
	return ps
}
