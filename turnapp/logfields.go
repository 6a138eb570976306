package turnapp

import (
	"go.uber.org/zap"

	"github.com/caddy-webrtc/caddy-webrtc/turncreds"
)

// Messages of log lines written in more than one place; refusalLog limits
// each per client IP.
const (
	msgCredentialRefused = "TURN credential refused"
	msgPeerRefused       = "TURN peer refused"
)

// zapUser logs the user part of a TURN REST username, the same user the
// quota counts (turncreds.UserOf); the expiry is not secret but adds
// nothing that identifies the user.
func zapUser(username string) zap.Field {
	return zap.String("user", turncreds.UserOf(username))
}

func zapReason(err error, fallback string) zap.Field {
	if err != nil {
		return zap.String("reason", err.Error())
	}
	return zap.String("reason", fallback)
}
