// Package testenv decides what a test does when a prerequisite (root, a
// program, a kernel feature) is missing: under CI=true it fails, elsewhere it
// skips with the reason, so a developer's partial machine still runs the rest.
package testenv

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true), where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops the test when err reports a missing prerequisite: a failure
// in CI, a skip elsewhere.
func Require(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if InCI() {
		t.Fatalf("missing prerequisite (CI=true forbids skipping): %v", err)
	}
	t.Skipf("missing prerequisite: %v (scripts/test.sh installs it)", err)
}

// RequireProgram requires the named programs on PATH.
func RequireProgram(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			Require(t, err)
		}
	}
}

// Serve runs serve in a goroutine until the test ends, then cancels its
// context and waits for it to return, which must be without an error: a
// server started this way never outlives its test.
func Serve(t testing.TB, serve func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serving: %v", err)
		}
	})
}

// Get fetches url and returns its status code and body, failing t when
// the request or the read fails.
func Get(t testing.TB, url string) (status int, body string) {
	t.Helper()
	resp, err := http.Get(url) //nolint:gosec // G107: tests fetch their own servers.
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
