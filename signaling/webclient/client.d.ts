// Types for client.js, the caddy-webrtc browser client.

export interface RoomClientOptions {
  /** Room to join (sent as ?room=). Required. */
  room: string;
  /** Signaling WebSocket URL. Default: "ws" next to client.js (wss on https pages). */
  url?: string;
  /** Media to send to every peer. */
  stream?: MediaStream | null;
  /** Data channel labels; each pair of peers gets them all (negotiated, fixed ids). */
  dataChannels?: string[];
  /** ICE servers to use instead of those in the welcome frame. */
  iceServers?: RTCIceServer[];
  /** A turn_credentials route to fetch iceServers from when the welcome has none. */
  credentialsUrl?: string;
  /** "relay" forces every connection through TURN. Default "all". */
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Reconnect the WebSocket after it drops (not after fatal errors). Default true. */
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
}

/** The client's state for one remote peer. */
export interface PeerState {
  readonly id: string;
  readonly pc: RTCPeerConnection;
  /** Perfect negotiation role: the polite peer yields on offer collisions. */
  readonly polite: boolean;
  /** The data channels, by label. */
  readonly channels: ReadonlyMap<string, RTCDataChannel>;
}

/** The welcome frame of signaling protocol v1. */
export interface Welcome {
  type: "welcome";
  id: string;
  room: string;
  peers: { id: string }[];
  iceServers?: RTCIceServer[];
}

export interface RoomClientEventMap {
  /** Joined; peers are the ids already in the room. */
  open: CustomEvent<{ id: string; room: string; peers: string[] }>;
  peerjoined: CustomEvent<{ id: string }>;
  peerleft: CustomEvent<{ id: string }>;
  /** A remote track arrived from peer id. */
  track: CustomEvent<{ id: string; track: MediaStreamTrack; streams: readonly MediaStream[] }>;
  datachannelopen: CustomEvent<{ id: string; label: string; channel: RTCDataChannel }>;
  message: CustomEvent<{ id: string; label: string; data: any }>;
  /** RTCPeerConnection.connectionState of the connection to peer id ("closed" when dropped). */
  connectionstatechange: CustomEvent<{ id: string; state: RTCPeerConnectionState }>;
  /** A server error frame (code: room_full, forbidden_origin, ...) or a local negotiation error. */
  error: CustomEvent<{ code: string; message: string; fatal: boolean; id?: string }>;
  /** The WebSocket closed; willReconnect tells whether the client retries. */
  close: CustomEvent<{ code: number; reason: string; willReconnect: boolean }>;
}

export declare class RoomClient extends EventTarget {
  constructor(options: RoomClientOptions);
  readonly options: Required<RoomClientOptions>;
  /** This peer's id, once joined. */
  id: string | null;
  /** The remote peers, by id. */
  readonly peers: ReadonlyMap<string, PeerState>;
  /** The signaling WebSocket (replaced on reconnects). */
  readonly ws: WebSocket | null;
  /** ICE servers in use. */
  iceServers: RTCIceServer[];
  /** Resolves with the welcome frame (after reconnects, if the first
   * attempts fail); rejects with an Error whose code is the server's error
   * code (room_full, ...), or "closed" when close() came first. */
  connect(): Promise<Welcome>;
  /** Leaves the room and closes every peer connection. */
  close(): void;
  /** Sends on the named data channel to every peer whose channel is open. */
  send(label: string, data: string | Blob | ArrayBuffer | ArrayBufferView): void;
  /** Sends on the named data channel to one peer; false if it is not open. */
  sendTo(id: string, label: string, data: string | Blob | ArrayBuffer | ArrayBufferView): boolean;
  /** The RTCPeerConnection to a peer, for getStats() and the like. */
  connection(id: string): RTCPeerConnection | null;
  addEventListener<K extends keyof RoomClientEventMap>(type: K, listener: (ev: RoomClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof RoomClientEventMap>(type: K, listener: (ev: RoomClientEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Fetches the iceServers list from a turn_credentials route. */
export declare function fetchICEServers(url: string): Promise<RTCIceServer[]>;
