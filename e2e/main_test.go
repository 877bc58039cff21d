// Package e2e tests the built rtckit binary against real peers: coturn,
// network-namespace NAT labs and, later, browsers.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtckit/rtckit/diag/stunprobe"
)

// rtckitBin is the binary built once by TestMain.
var rtckitBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtckit-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rtckitBin = filepath.Join(dir, "rtckit")
	build := exec.Command("go", "build", "-o", rtckitBin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build rtckit:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// serveReadyTimeout bounds the wait for a server's "listening" line.
const serveReadyTimeout = 10 * time.Second

// child is an rtckit process running in the background.
type child struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	// done is closed once the process has been reaped; err is its exit error.
	done chan struct{}
	err  error
}

// startJSONChild starts cmd (an rtckit server run with --json) and returns
// once it printed its "listening" event, decoded into event.
func startJSONChild(t *testing.T, cmd *exec.Cmd, event any) *child {
	t.Helper()
	c := &child{cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.stop(t) })
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("%s exited before listening: %s", cmd, c.stderr.String())
		}
		if err := json.Unmarshal([]byte(line), event); err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
	case <-time.After(serveReadyTimeout):
		t.Fatalf("%s did not start within %s", cmd, serveReadyTimeout)
	}
	return c
}

// stop interrupts the child and waits for it, killing it if it lingers.
func (c *child) stop(t *testing.T) {
	if c.cmd.Process == nil {
		return
	}
	// Once reaped, the pid may belong to another process: never signal it.
	select {
	case <-c.done:
		return
	default:
	}
	_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		t.Errorf("%s ignored SIGINT", c.cmd)
	}
}

// probeResult is one run of `rtckit --json stun probe`.
type probeResult struct {
	code   int
	report stunprobe.Report
	stderr string
}

// runProbe runs cmd (an rtckit --json stun probe) and decodes its report.
func runProbe(t *testing.T, cmd *exec.Cmd) probeResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := probeResult{stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		res.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	if err := json.Unmarshal(stdout.Bytes(), &res.report); err != nil {
		t.Fatalf("%s: decode report %q: %v (stderr %s)", cmd, stdout.String(), err, res.stderr)
	}
	return res
}

func rtckit(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, rtckitBin, args...)
}

// summary is what two probes must agree on.
func summary(r stunprobe.Report) string {
	if len(r.Families) == 0 {
		return "outcome=" + r.Outcome
	}
	f := r.Families[0]
	return strings.Join([]string{
		"outcome=" + r.Outcome,
		"mapping=" + string(f.Mapping.Behavior),
		"filtering=" + string(f.Filtering.Behavior),
		"classic=" + f.Verdict.Classic,
	}, " ")
}
