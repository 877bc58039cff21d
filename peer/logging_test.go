package peer

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// counted counts how often it is formatted.
type counted struct{ n *int }

func (c counted) String() string { *c.n++; return "formatted" }

// TestSlogLoggerLevels: pion's levels land one step down in slog, with
// the scope, and a record below the handler's level is never formatted.
func TestSlogLoggerLevels(t *testing.T) {
	var out bytes.Buffer
	h := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})
	l := SlogLoggerFactory{Logger: slog.New(h)}.NewLogger("sctp")
	formats := 0
	l.Tracef("trace %v", counted{&formats})
	l.Debugf("debug %v", counted{&formats})
	l.Infof("info %v", counted{&formats})
	if formats != 0 || out.Len() != 0 {
		t.Errorf("records below the level: formatted %d times, wrote %q", formats, out.String())
	}
	l.Warnf("warn %v", counted{&formats})
	l.Error("error")
	got := out.String()
	if formats != 1 || !strings.Contains(got, "msg=\"warn formatted\"") || !strings.Contains(got, "msg=error") ||
		!strings.Contains(got, "scope=pion/sctp") || strings.Count(got, "level=INFO") != 2 {
		t.Errorf("formatted %d times, wrote %q; want warn and error at INFO with the scope", formats, got)
	}
	// A nil logger discards everything.
	SlogLoggerFactory{}.NewLogger("ice").Errorf("x %v", counted{&formats})
	if formats != 1 {
		t.Errorf("a discarding logger formatted its record")
	}
}
