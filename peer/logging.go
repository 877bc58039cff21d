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
// level with -v, pion's info records with -vv, its debug records with -vvv
// and its trace records with -vvvv.
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

// Levels below slog's debug level that enable pion's own debug and trace
// records (SlogLoggerFactory).
const (
	LevelPionDebug = slog.LevelDebug - 2
	LevelPionTrace = slog.LevelDebug - 4
)

// pion's levels as slog levels (shifted down one step, see SlogLoggerFactory).
const (
	pionTrace = LevelPionTrace
	pionDebug = LevelPionDebug
	pionInfo  = slog.LevelDebug
	pionWarn  = slog.LevelInfo
	pionError = slog.LevelInfo
)

func (s slogLeveled) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, msg)
}

// logf formats and logs only when level is enabled: pion's SCTP, DTLS and
// ICE code calls Tracef and Debugf for every packet, and formatting those
// (with their String methods) cost about a quarter of a bulk transfer's
// CPU in BenchmarkTransfer.
func (s slogLeveled) logf(level slog.Level, format string, args []any) {
	if s.l.Enabled(context.Background(), level) {
		s.log(level, fmt.Sprintf(format, args...))
	}
}

func (s slogLeveled) Trace(msg string)                  { s.log(pionTrace, msg) }
func (s slogLeveled) Tracef(format string, args ...any) { s.logf(pionTrace, format, args) }
func (s slogLeveled) Debug(msg string)                  { s.log(pionDebug, msg) }
func (s slogLeveled) Debugf(format string, args ...any) { s.logf(pionDebug, format, args) }
func (s slogLeveled) Info(msg string)                   { s.log(pionInfo, msg) }
func (s slogLeveled) Infof(format string, args ...any)  { s.logf(pionInfo, format, args) }
func (s slogLeveled) Warn(msg string)                   { s.log(pionWarn, msg) }
func (s slogLeveled) Warnf(format string, args ...any)  { s.logf(pionWarn, format, args) }
func (s slogLeveled) Error(msg string)                  { s.log(pionError, msg) }
func (s slogLeveled) Errorf(format string, args ...any) { s.logf(pionError, format, args) }
