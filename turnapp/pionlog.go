package turnapp

import (
	"fmt"

	"github.com/pion/logging"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// pionLoggerFactory gives pion/turn loggers that write into the app's zap
// logger. Without one, pion builds its default logger, which prints
// straight to stderr, past Caddy's logging config.
//
// pion's Error and Warn lines are about single connections and packets
// ("Failed to close conn" when a client vanished, "Failed to send
// DataIndication" to a client that left): routine on a public server and
// nothing an operator acts on, so they go to debug level. pion's Info,
// Debug and Trace lines (one per request or relayed packet) are dropped,
// as pion's own default does; the app logs allocations and refusals
// itself.
type pionLoggerFactory struct {
	logger func() *zap.Logger // the current config's logger
}

// NewLogger implements logging.LoggerFactory.
func (f pionLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{logger: f.logger, scope: scope}
}

// pionLogger is one pion scope's logging.LeveledLogger.
type pionLogger struct {
	logger func() *zap.Logger
	scope  string
}

func (pionLogger) Trace(string)          {}
func (pionLogger) Tracef(string, ...any) {}
func (pionLogger) Debug(string)          {}
func (pionLogger) Debugf(string, ...any) {}
func (pionLogger) Info(string)           {}
func (pionLogger) Infof(string, ...any)  {}

func (l pionLogger) Warn(msg string)                { l.write("warn", msg) }
func (l pionLogger) Warnf(format string, a ...any)  { l.writef("warn", format, a) }
func (l pionLogger) Error(msg string)               { l.write("error", msg) }
func (l pionLogger) Errorf(format string, a ...any) { l.writef("error", format, a) }

// writef formats only when debug logging is on: these lines come per
// connection and per packet.
func (l pionLogger) writef(level, format string, args []any) {
	if l.logger().Core().Enabled(zapcore.DebugLevel) {
		l.write(level, fmt.Sprintf(format, args...))
	}
}

func (l pionLogger) write(level, msg string) {
	l.logger().Debug(msg, zap.String("pion_scope", l.scope), zap.String("pion_level", level))
}
