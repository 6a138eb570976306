// Package link is the reliable link between the nodes of a natshub cluster:
// the protocol that makes core NATS, which delivers at most once, deliver
// every message one node sends another exactly once and in order.
//
// A message written to a NATS server that then died is lost, and a
// message published twice (after a reconnect) arrives twice. So every
// message one node sends another (frames, room snapshots, tunnel messages)
// goes on a link: the Sender numbers it and keeps it until the destination
// acknowledges it; the destination's Receiver hands each source's messages
// on strictly in sequence, drops duplicates, holds early ones until the
// gap is filled and acknowledges cumulatively.
//
// The guarantee, per link (one sending node, one destination, one link
// number): every message a Sender accepted is handed on by the Receiver
// exactly once, in the order it was sent, as long as both nodes live and
// the sender keeps publishing what Unsent and Stale return. The sender
// publishes everything unacknowledged again after every reconnect (its
// own, once the destination can hear it, or the destination's, on its
// hello: Rewind), and when acknowledgements stop coming for rtxTimeout
// (Stale, with a wait that doubles up to maxRtxWait). What is sent is
// bounded (MaxPending messages, MaxPendingBytes): beyond it Add refuses.
//
// A link is identified by the sending node and a link number the sender
// raises each time it starts a new link to a node (after it gave the
// destination up as dead): a destination that sees a higher number starts
// over from the sender's acknowledged sequence number, carried by every
// message, and ignores messages of older links. Across links there is no
// guarantee: what the old link held is gone with the node it was for.
//
// The package does no I/O and knows no subjects: its owner publishes what
// it returns, sends the acknowledgements (SetAck) to the source's subject
// every Tick and tells acknowledgements from other messages. Only natshub
// imports it; it imports nothing of this module, so that its tests need no
// hub, no cluster and no NATS server.
package link
