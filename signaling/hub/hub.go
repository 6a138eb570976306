package hub

import (
	"errors"
	"time"

	"github.com/caddy-webrtc/caddy-webrtc/signaling/wire"
)

// Errors a Hub returns.
var (
	// ErrRoomFull means the room already holds its maximum number of peers.
	ErrRoomFull = errors.New("room is full")
	// ErrUnknownPeer means the addressee is not in the room.
	ErrUnknownPeer = errors.New("no such peer in the room")
	// ErrNotMember means the sender is not (or no longer) in the room, so
	// what it sends goes nowhere.
	ErrNotMember = errors.New("sender is not in the room")
	// ErrDuplicateID means another member already uses the peer's id.
	ErrDuplicateID = errors.New("peer id already in use in the room")
	// ErrHubFull means the hub holds its maximum number of rooms or peers.
	ErrHubFull = errors.New("signaling hub is at capacity")
	// ErrHubClosed means the hub has shut down and takes no new peers.
	ErrHubClosed = errors.New("signaling hub is shut down")
)

// Peer is one member of a room as the hub sees it: something frames can be
// queued to. The WebSocket connection implements it; a clustered hub would
// implement it for peers connected to other nodes.
type Peer interface {
	// ID returns the server-assigned id, unique in the room.
	ID() string
	// Send queues a frame. When the peer's queue is full it waits a bounded
	// time for room, which paces a sender to its readers; it returns false
	// when the frame was not queued because the peer is gone or too slow,
	// and the peer then disconnects itself and will be made to Leave. A Hub
	// must not call Send while holding locks other peers need, except on a
	// peer whose queue it knows to be empty.
	Send(frame []byte) bool
	// TrySend queues a frame if the peer's queue has room, without
	// waiting, and reports whether it did; the caller keeps what it could
	// not queue. It is for callers that one peer must not hold up, such
	// as a clustered hub's dispatcher of other servers' frames.
	TrySend(frame []byte) bool
	// Close disconnects the peer with a WebSocket close code.
	Close(code int, reason string)
}

// JoinRequest says how a peer joins a room.
type JoinRequest struct {
	// Info describes the peer to the others; its ID is p's.
	Info wire.PeerInfo
	// MaxPeers is the most members the room may hold; 0 means no limit.
	MaxPeers int
	// MaxRooms and MaxPeersTotal cap the whole hub (ErrHubFull); 0 means
	// no limit.
	MaxRooms, MaxPeersTotal int
	// Replace names a member whose seat the new peer takes: a session that
	// reconnects before its stale connection was noticed (a reloaded page,
	// a dead socket). The seat changes hands atomically, so this works in a
	// full room. Ignored when no such member is in the room.
	Replace string
	// Welcome builds the first frame the peer receives from the members
	// already present; it is queued before anyone can address the peer.
	Welcome func(members []wire.PeerInfo) []byte
}

// Hub holds the rooms. It is the state that outlives a request and a config
// reload, kept behind this interface so that a clustered implementation can
// replace the in-memory one without touching the WebSocket code.
//
// Ordering guarantees every implementation keeps: frames from one peer to
// another arrive in the order sent; a peer's welcome precedes anything else
// it receives; and nothing a peer sent reaches anyone after that peer's
// peer-left (so clients never see a departed peer come back to life).
type Hub interface {
	// Join adds p to room, creating the room if needed, unless it already
	// holds req.MaxPeers peers. The other members are sent peer-joined. When
	// p takes over req.Replace's seat, the others first get peer-left for it
	// and Join returns that peer, no longer a member, for the caller to
	// disconnect.
	Join(room string, p Peer, req JoinRequest) (replaced Peer, err error)
	// Leave removes the peer with id from room, tells the others peer-left
	// and frees the room when it is empty. Leaving twice is harmless.
	Leave(room, id string)
	// Deliver queues frame to the member to of room, or, when to is empty,
	// to every member but from. It fails with ErrNotMember once from has
	// left.
	Deliver(room, from, to string, frame []byte) error
	// Members lists the members of room as the peer id sees them, in join
	// order and without id itself: what the welcome answering that peer's
	// resume lists.
	Members(room, id string) []wire.PeerInfo
	// Stats counts rooms and peers for the admin endpoint and metrics.
	Stats() HubStats
	// Shutdown refuses new peers (ErrHubClosed) and closes this process's
	// peers with 1001. The pool calls it when no loaded config uses the hub.
	Shutdown()
}

// HubStats are a hub's counts. For a clustered hub, Rooms and Peers are
// cluster-wide and LocalPeers are those connected to this process; for the
// memory hub all peers are local.
type HubStats struct {
	Backend    string `json:"backend"`
	LocalPeers int    `json:"local_peers"`
	Rooms      int    `json:"rooms"`
	Peers      int    `json:"peers"`
}

// Tunnels is implemented by a hub whose rooms span several servers: a
// client may resume its session on another server than the one holding
// it (load balancers do not send it back). The server the client reaches
// (the front) then carries the connection's frames to the server holding
// the session (the home), which goes on running it, and back.
type Tunnels interface {
	// OpenTunnel sends a resume request, opaque to the hub, to the server
	// holding peer id of room, whose answers reach front. It fails with
	// ErrUnknownPeer when no other server holds that peer.
	OpenTunnel(room, id string, request []byte, front TunnelEnd) (Tunnel, error)
	// AcceptTunnels sets what serves the tunnels other servers open to this
	// one's sessions: accept answers through back, and returns what
	// receives the front's frames, or nil after closing back.
	AcceptTunnels(accept func(request []byte, back Tunnel) TunnelEnd)
}

// Tunnel carries frames to the far end of a tunnel, in order.
type Tunnel interface {
	Send(frame []byte)
	// Close ends the tunnel; the far end's Closed gets code and reason.
	Close(code int, reason string)
}

// TunnelEnd receives what the far end of a tunnel sends.
type TunnelEnd interface {
	Frame(frame []byte)
	// Closed says the far end closed the tunnel, or the tunnel failed
	// (code 1006): its far server is gone or silent, or it could not
	// carry a frame. It comes once, after the frames received, and not
	// for the receiver's own side's Close.
	Closed(code int, reason string)
}

// Posts is implemented by a hub whose rooms span servers: a frame POSTed
// (the SSE transport) to a server that does not hold its session, which
// load balancers without sticky sessions do, is carried to the one that
// does, and its answer back.
type Posts interface {
	// ForwardPost asks the other servers of the hub for the session a post
	// names, and returns the answer of the one holding it; it fails when
	// none answers.
	ForwardPost(post []byte) (answer []byte, err error)
	// AcceptPosts sets what answers posts for this server's sessions;
	// answer reports false for a session it does not hold.
	AcceptPosts(answer func(post []byte) (answer []byte, ok bool))
}

// Rooms is implemented by a hub that can describe its rooms to the site's
// backend (the rooms API, webrtc_rooms). The API acts on the members
// through the Peer each MemberInfo holds (and its Describer and Ender
// parts): a hub whose members may be held by other servers must hand it
// peers that act there.
type Rooms interface {
	// ListRooms lists the rooms that have members, in no set order. It
	// fails when a clustered hub cannot read its rooms.
	ListRooms() ([]RoomInfo, error)
	// RoomMembers lists room's members in join order; none for a room
	// without members.
	RoomMembers(room string) ([]MemberInfo, error)
}

// RoomInfo describes a room to the rooms API.
type RoomInfo struct {
	Room      string
	Peers     int
	StartedAt time.Time // when its first present member joined
}

// MemberInfo describes a member of a room to the rooms API.
type MemberInfo struct {
	wire.PeerInfo
	JoinedAt time.Time
	// Node names the server holding the member; the memory hub's is
	// LocalNode.
	Node string
	Peer Peer
}

// LocalNode is the server name the memory hub gives its members.
const LocalNode = "local"

// Sweeps is implemented by a hub whose servers may stop without a word
// (a clustered hub): another server then removes the stopped one's members
// from their rooms, and the one whose compare-and-set removed them from a
// room calls watch, once for the whole cluster, with the members gone and
// whether the room is now empty, since the server that held them cannot
// tell anyone. It is also called, with no members, when a server that was
// cut off from the others empties a room on its return, removing members
// that left meanwhile (they said so then; the room's end is its to tell).
// A nil watch stops the calls. It must not block.
type Sweeps interface {
	WatchSweeps(watch func(room string, gone []wire.PeerInfo, finished bool))
}

// Describer is implemented by a Peer that says how it is connected, for
// the rooms API: its transport ("websocket", "sse") and whether it is away
// (between connections, resumable).
type Describer interface {
	TransportKind() string
	Away() bool
}

// Ender is implemented by a Peer the rooms API can end: Fatal tells it a
// fatal error and closes its connection for good (no resume); Leave then
// takes it out of its room. The API ends every peer it ousts before any
// leaves, so that none hears of the others leaving after its error.
type Ender interface {
	Fatal(code, msg string, closeCode int)
	Leave()
}

// Watcher is implemented by a Peer that wants to hear about its own
// membership, for the webhooks: Joined once it is a member, started saying
// its join created the room (the first member in); Left once it is no
// longer one through Leave, finished saying its leave emptied the room
// (the last member out). A hub calls them under its room's lock, in the
// order the room changed, so they must not block or call the hub. A
// clustered hub calls started and finished only on the server whose
// compare-and-set created or emptied the room, so that each happens once
// for the whole cluster. A peer that loses its seat otherwise (Replace)
// hears no Left.
type Watcher interface {
	Joined(started bool)
	Left(finished bool)
}
