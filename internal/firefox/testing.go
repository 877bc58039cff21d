package firefox

import (
	"log/slog"
	"testing"

	"github.com/rtckit/rtckit/internal/testenv"
)

// NewForTest starts a Browser for a test and closes it in t.Cleanup. When
// Firefox is missing the test is skipped, or fails under CI=true. With no
// Logger in opts, Firefox's output and the console go to the test's log.
func NewForTest(t testing.TB, opts Options) *Browser {
	t.Helper()
	if opts.ExecPath == "" {
		testenv.Require(t, Available())
	} else {
		testenv.Require(t, available(opts.ExecPath))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("start firefox: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close firefox: %v", err)
		}
	})
	return b
}
