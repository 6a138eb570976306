// Package sse is the Server-Sent Events transport of a session, for
// networks that break WebSockets: the session's frames go out as the
// events of one text/event-stream response (Stream), and the peer's frames
// come as POSTs, each answered by the session it names (AnswerPost), here
// or, through the hub, on the server that holds it (ForwardPost,
// AcceptPost). The endpoints themselves are the Caddy face's.
//
// It may import: wire, hub, session, transport/tunnel (a stream can be a
// front). Nothing of Caddy.
package sse
