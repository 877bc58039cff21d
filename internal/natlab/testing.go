package natlab

import (
	"log/slog"
	"os"
	"testing"
)

// NewForTest builds a lab for t and closes it when t ends. When the lab
// cannot run here (see Available; cfg.Require adds programs) it skips t, or
// fails it when the CI environment variable is "true", since CI must run
// these tests. It first sweeps labs left by crashed runs. A nil cfg.Logger
// becomes one that writes debug records to t's output.
func NewForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	if err := Available(cfg.Require...); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("natlab required under CI: %v", err)
		}
		t.Skipf("natlab: %v", err)
	}
	if err := Sweep(t.Context()); err != nil {
		t.Logf("natlab: sweeping stale labs: %v", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	l, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("natlab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("natlab: close: %v", err)
		}
	})
	return l
}
