package peer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// SlogLoggerFactory makes pion's loggers write to a slog.Logger, one
// "scope" attribute per pion subsystem (ice, dtls, sctp, …). pion's levels
// are shifted down one step: its warnings and errors are mostly transient
// (rtckit reports the failures that matter itself), so they appear at info
// level with -v, and pion's info and debug records with -vv.
type SlogLoggerFactory struct {
	Logger *slog.Logger
}

// NewLogger returns a pion logger for scope.
func (f SlogLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	l := f.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return slogLeveled{l: l.With("scope", "pion/"+scope)}
}

type slogLeveled struct{ l *slog.Logger }

func (s slogLeveled) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, msg)
}

func (s slogLeveled) Trace(msg string) { s.log(slog.LevelDebug-4, msg) }
func (s slogLeveled) Tracef(format string, args ...any) {
	s.log(slog.LevelDebug-4, fmt.Sprintf(format, args...))
}
func (s slogLeveled) Debug(msg string) { s.log(slog.LevelDebug-2, msg) }
func (s slogLeveled) Debugf(format string, args ...any) {
	s.log(slog.LevelDebug-2, fmt.Sprintf(format, args...))
}
func (s slogLeveled) Info(msg string) { s.log(slog.LevelDebug, msg) }
func (s slogLeveled) Infof(format string, args ...any) {
	s.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (s slogLeveled) Warn(msg string) { s.log(slog.LevelInfo, msg) }
func (s slogLeveled) Warnf(format string, args ...any) {
	s.log(slog.LevelInfo, fmt.Sprintf(format, args...))
}
func (s slogLeveled) Error(msg string) { s.log(slog.LevelInfo, msg) }
func (s slogLeveled) Errorf(format string, args ...any) {
	s.log(slog.LevelInfo, fmt.Sprintf(format, args...))
}
