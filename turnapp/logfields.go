package turnapp

import (
	"strings"

	"go.uber.org/zap"
)

// zapUser logs the user part of a TURN REST username; the expiry and the
// user are not secret, but keep logs to what identifies the user.
func zapUser(username string) zap.Field {
	if _, user, ok := strings.Cut(username, ":"); ok {
		return zap.String("user", user)
	}
	return zap.String("user", "")
}

func zapReason(err error, fallback string) zap.Field {
	if err != nil {
		return zap.String("reason", err.Error())
	}
	return zap.String("reason", fallback)
}
