// Package signaling implements WebRTC signaling rooms over WebSocket: peers
// join a room, learn who is there, and relay SDP offers, answers and trickle
// ICE candidates to one another. The wire protocol (v1) is JSON text frames,
// declared in signaling/wire; see the README for the full description.
package signaling
