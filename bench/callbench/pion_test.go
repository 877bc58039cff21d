package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary run as a pion peer: pionRun starts the
// running executable with a peer command, as callbench does with itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == pionSendCommand || os.Args[1] == pionReceiveCommand) {
		main()
		return
	}
	os.Exit(m.Run())
}

func TestPionRun(t *testing.T) {
	const size = 3<<20 + 4
	file, err := writeTestFile(t.TempDir(), size)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := pionRun(ctx, 0, file, size, true, 30*time.Second, 2)
	if !r.OK || r.Error != "" {
		t.Fatalf("run: ok %v, error %q", r.OK, r.Error)
	}
	for _, name := range []string{mSendMBps, mRecvMBps, mTransfer, mWall, mCallerCPU, mAnswererCPU, mCPUMBps} {
		if r.Metrics[name] <= 0 {
			t.Errorf("metric %s = %v, want > 0 (%v)", name, r.Metrics[name], r.Metrics)
		}
	}
	if r.Test != testFile || r.Pair != pairPion {
		t.Errorf("run is %s/%s", r.Test, r.Pair)
	}
}

func TestPionRunFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	missing := filepath.Join(t.TempDir(), "missing.bin")
	r := pionRun(ctx, 0, missing, 1024, true, 10*time.Second, 2)
	if r.OK || !strings.Contains(r.Error, "missing.bin") {
		t.Errorf("run with a missing file: ok %v, error %q; want a failure naming the file", r.OK, r.Error)
	}
	if _, ok := r.Metrics[mSendMBps]; ok {
		t.Errorf("a failed run has a rate: %v", r.Metrics)
	}
}
