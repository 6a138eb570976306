package turnapp

import (
	"errors"
	"net"

	"github.com/pion/stun/v3"
	"go.uber.org/zap"
)

// observe inspects one STUN or ChannelData frame from src before pion
// reads it (through a decoded copy; frame is untouched) and returns the
// answer to send instead of passing the frame on:
//   - 401 Unauthorized to an authenticated request that no configured
//     secret signed, or whose credential expired (pion would answer 400);
//   - 403 Forbidden to a CreatePermission or ChannelBind naming a peer the
//     policy denies, as RFC 8656 (sections 9.2, 11.2) asks and coturn does.
//     pion answers those with 401 (ChannelBind) or an error response with
//     no ERROR-CODE (CreatePermission); its PermissionHandler stays as a
//     second line.
func (s *server) observe(frame []byte, src net.Addr) (reject []byte) {
	m, username, realm, ok := authenticatedRequest(frame)
	if !ok {
		return nil
	}
	p := s.pol.Load()
	key, err := s.secrets.verify(p, m, username, realm)
	if err != nil {
		countAuthFailure(authFailureReason(err))
		s.refusals.info(msgCredentialRefused, src, zapUser(username), zapReason(err, ""))
		return errorResponse(m, stun.CodeUnauthorized, nil)
	}
	if peer := deniedPeer(p.peers, m); peer != nil {
		countPermissionDenied()
		s.refusals.info(msgPeerRefused, src, zapUser(username), zap.String("peer", peer.String()))
		return errorResponse(m, stun.CodeForbidden, key)
	}
	return nil
}

// authenticatedRequest decodes frame if it is a STUN request carrying
// MESSAGE-INTEGRITY, USERNAME and REALM (pion answers 400 to a request
// with integrity but without the other two).
func authenticatedRequest(frame []byte) (m *stun.Message, username, realm string, ok bool) {
	if !stun.IsMessage(frame) {
		return nil, "", "", false
	}
	m = &stun.Message{Raw: append([]byte(nil), frame...)}
	if m.Decode() != nil || !m.Contains(stun.AttrMessageIntegrity) || m.Type.Class != stun.ClassRequest {
		return nil, "", "", false
	}
	var u stun.Username
	var r stun.Realm
	if u.GetFrom(m) != nil || r.GetFrom(m) != nil {
		return nil, "", "", false
	}
	return m, u.String(), r.String(), true
}

// errFound stops a ForEach walk.
var errFound = errors.New("found")

// deniedPeer returns the first XOR-PEER-ADDRESS of a CreatePermission or
// ChannelBind request that peers refuses, or nil. Malformed addresses are
// left to pion, which answers 400.
func deniedPeer(peers peerPolicy, m *stun.Message) net.IP {
	if m.Type.Method != stun.MethodCreatePermission && m.Type.Method != stun.MethodChannelBind {
		return nil
	}
	var denied net.IP
	_ = m.ForEach(stun.AttrXORPeerAddress, func(m *stun.Message) error {
		var peer stun.XORMappedAddress
		if peer.GetFromAs(m, stun.AttrXORPeerAddress) != nil || peers.permits(peer.IP) {
			return nil
		}
		denied = peer.IP
		return errFound
	})
	return denied
}

// errorResponse builds the error response with code to request m. With a
// key (the request's credential verified) it carries MESSAGE-INTEGRITY, as
// RFC 8489 section 9.2.4 asks of errors other than 400 and 401.
func errorResponse(m *stun.Message, code stun.ErrorCode, key []byte) []byte {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		code,
	}
	if key != nil {
		setters = append(setters, stun.MessageIntegrity(key))
	}
	resp, err := stun.Build(setters...)
	if err != nil {
		return nil
	}
	return resp.Raw
}
