// Types for client.js, the caddy-webrtc browser client. These declarations
// are its whole API: everything else in client.js is private.

export interface RoomClientOptions {
  /** Room to join (sent as ?room=). Required. */
  room: string;
  /** Signaling WebSocket URL, absolute or relative to the page (an http:
   * URL becomes ws:, https: wss:). Default: "ws" next to client.js. */
  url?: string;
  /** Media to send to every peer. */
  stream?: MediaStream | null;
  /** Data channel labels; each pair of peers gets them all (negotiated, fixed ids). */
  dataChannels?: string[];
  /** ICE servers to use instead of those in the welcome frame. */
  iceServers?: RTCIceServer[];
  /** A turn_credentials route to fetch iceServers from when the welcome has
   * none; fetched again before an ICE restart once they have expired. */
  credentialsUrl?: string;
  /** The room token (a JWT from your app) for a route with token_secret,
   * sent as ?token=. A function is called again before every connection
   * and reconnection, so expiring tokens can be refreshed. */
  token?: string | (() => string | Promise<string>);
  /** "relay" forces every connection through TURN. Default "all". */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Reconnect after the connection drops (not after fatal errors),
   * resuming the session: same id, peer connections kept. Default true. */
  reconnect?: boolean;
  /** Backoff between reconnects, doubling from min to max. Defaults 500 and 10000. */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Application-level ping period; a connection that brings no frame at
   * all between two pings is given up and reconnected. Default 20000. */
  pingIntervalMs?: number;
  /** Restart ICE on a connection that stays "disconnected" this long
   * (0: only once it is "failed"). Default 3000. */
  iceRestartDelayMs?: number;
  /** An ICE restart (or rebuilt connection) that is not stable and
   * connected with new ICE credentials after this long is tried again:
   * first with a fresh offer from the side that made the pair's first
   * offer, then from either side, then by rebuilding the connection.
   * Default 15000. */
  restartRetryMs?: number;
  /** Transports to try, in order: "websocket", and "sse" (Server-Sent
   * Events from <url>/events, frames sent as POSTs to <url>/send) for
   * networks that break WebSockets. A transport that cannot be opened
   * gives way to the next one at once; reconnects start with the one that
   * last brought a welcome. Default ["websocket", "sse"]. */
  transports?: Transport[];
}

/** What connectionstatechange reports for a peer. */
export type PeerState = RTCPeerConnectionState | "restarting";

/** How the client talks to the server. */
export type Transport = "websocket" | "sse";

/** The welcome frame of signaling protocol v1. */
export interface Welcome {
  type: "welcome";
  id: string;
  room: string;
  /** The members already there; user and name come from room tokens. */
  peers: { id: string; user?: string; name?: string }[];
  iceServers?: RTCIceServer[];
  /** The session token; the client presents it again (?resume=, with
   * ?last_seq=) when it reconnects, to resume its session. A reloaded page
   * presents the stored one alone (no last_seq), which joins afresh in the
   * seat its old connection may still hold (a leave that never arrived). */
  resume?: string;
  /** Seconds the server keeps a lost session for a resume (absent: no resume). */
  resume_window?: number;
  /** The number of this server frame (1 for a fresh join); absent on a
   * resumed welcome. */
  seq?: number;
  /** A resumed session (the same id): the server replays what was missed. */
  resumed?: boolean;
  /** On a resumed welcome: the last frame of the client the server processed. */
  ack?: number;
}

/** Error codes of the server's error frames (protocol v1). */
export type ServerErrorCode =
  | "room_full"
  | "forbidden_origin"
  | "missing_room"
  | "invalid_room"
  | "too_large"
  | "bad_message"
  | "unknown_peer"
  | "unavailable"
  | "replaced"
  | "unauthorized"
  | "rate_limited"
  | "resume_failed"
  | "unknown_session"
  | "undeliverable"
  | "room_closed"
  | "removed";

/** Error codes of the client itself: "closed" (close() came first, or the
 * socket closed with reconnect off), "client" (a bug: an exception while
 * handling a frame), "negotiation" (SDP or ICE candidate refused),
 * "credentials" (credentialsUrl failed), "token" (the token function
 * threw or rejected; the client retries with backoff). */
export type ClientErrorCode = "closed" | "client" | "negotiation" | "credentials" | "token";

/** Any error code; codes a later server adds are plain strings. */
export type RoomErrorCode = ServerErrorCode | ClientErrorCode | (string & {});

/** What connect() rejects with. */
export declare class RoomError extends Error {
  constructor(code: RoomErrorCode, message: string);
  readonly name: "RoomError";
  readonly code: RoomErrorCode;
}

export interface RoomClientEventMap {
  /** Joined afresh (a new id); peers are the ids already in the room. */
  open: CustomEvent<{ id: string; room: string; peers: string[] }>;
  /** A reconnect tried to resume the session. resumed: the same id, peer
   * connections and data channels kept, and only real changes of
   * membership announced. Otherwise (the server no longer had it, or
   * does not resume) every member was announced gone (peerleft), and an
   * open with a new id follows. */
  resume: CustomEvent<{ resumed: boolean; id: string }>;
  /** A newcomer; user and name come from its room token, if any. */
  peerjoined: CustomEvent<{ id: string; user?: string; name?: string }>;
  peerleft: CustomEvent<{ id: string }>;
  /** A server-message: data the site's backend sent through the rooms
   * API (webrtc_rooms), to the room or to this client. */
  servermessage: CustomEvent<{ data: any }>;
  /** A remote track arrived from peer id. */
  track: CustomEvent<{ id: string; track: MediaStreamTrack; streams: readonly MediaStream[] }>;
  datachannelopen: CustomEvent<{ id: string; label: string; channel: RTCDataChannel }>;
  message: CustomEvent<{ id: string; label: string; data: any }>;
  /** The state of the connection to peer id: its
   * RTCPeerConnection.connectionState, "restarting" while an ICE restart
   * (or a rebuild of the connection) is under way, until it is stable and
   * connected with new ICE credentials, and "closed" when dropped. Sent
   * when it changes. */
  connectionstatechange: CustomEvent<{ id: string; state: PeerState }>;
  /** A server error frame or a client-side error. fatal: the client will
   * not reconnect (room_full, replaced, ...). */
  error: CustomEvent<{ code: RoomErrorCode; message: string; fatal: boolean; id?: string }>;
  /** The connection closed; willReconnect tells whether the client
   * retries (the room, its members and peer connections stay meanwhile).
   * An SSE stream has no close codes: 1006, reason the error code that
   * ended it, if any. */
  close: CustomEvent<{ code: number; reason: string; willReconnect: boolean }>;
}

export declare class RoomClient extends EventTarget {
  /** Throws a TypeError without options.room. */
  constructor(options: RoomClientOptions);
  /** This peer's id while in the room (the same after a resume, a new
   * one after a fresh join), else null. */
  readonly id: string | null;
  /** The room name. */
  readonly room: string;
  /** The signaling WebSocket URL, absolute, with ?room=. */
  readonly url: string;
  /** The transport of the current connection (while reconnecting, of the
   * last one); null before the first. */
  readonly transport: Transport | null;
  /** The ICE servers in use (a copy). */
  readonly iceServers: RTCIceServer[];
  /** The ids of the other members of the room, in join order. */
  readonly peers: string[];
  /** Resolves with the welcome frame (after reconnects, if the first
   * attempts fail; at once when already joined); rejects with a RoomError
   * whose code is the server's fatal error code (room_full, replaced, ...),
   * or "closed" when close() came first. While connecting or waiting to
   * reconnect it connects at once and returns the same promise. */
  connect(): Promise<Welcome>;
  /** Leaves the room at once ({"type":"leave"}, close code 1000), closes
   * every peer connection and forgets the session. The page's pagehide
   * leaves the same way, so that a closed tab leaves at once, but keeps
   * the stored token for a reloaded page. */
  close(): void;
  /** Sends on the named data channel to every peer whose channel is open. */
  send(label: string, data: string | Blob | ArrayBuffer | ArrayBufferView): void;
  /** Sends on the named data channel to one peer; false if it is not open. */
  sendTo(id: string, label: string, data: string | Blob | ArrayBuffer | ArrayBufferView): boolean;
  /** The RTCPeerConnection to a peer, for getStats() and the like; null if none. */
  connection(id: string): RTCPeerConnection | null;
  /** The data channel with this label to a peer; null if none. */
  channel(id: string, label: string): RTCDataChannel | null;
  addEventListener<K extends keyof RoomClientEventMap>(type: K, listener: (ev: RoomClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof RoomClientEventMap>(type: K, listener: (ev: RoomClientEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Fetches the iceServers list from a turn_credentials route. */
export declare function fetchICEServers(url: string): Promise<RTCIceServer[]>;
