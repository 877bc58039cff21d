package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/internal/testenv"
)

// callTimeout bounds one rtckit call process in these tests.
const callTimeout = 60 * time.Second

// callRun is an `rtckit --json call` process.
type callRun struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{}
	code           int
	err            error
}

// lockedBuffer is a bytes.Buffer that a process writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of the contents.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

func (l *lockedBuffer) String() string { return string(l.Bytes()) }

// startCall starts `rtckit --json call ARGS` in the background.
func startCall(t *testing.T, args ...string) *callRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	return startCallCmd(t, rtckit(ctx, append([]string{"--json", "call"}, args...)...), cancel)
}

// startCallCmd starts cmd, an `rtckit --json call` built by the caller (to
// run it in a network namespace, say), in the background; cancel, when not
// nil, is called once it has exited.
func startCallCmd(t *testing.T, cmd *exec.Cmd, cancel context.CancelFunc) *callRun {
	t.Helper()
	if cancel == nil {
		cancel = func() {}
	}
	r := &callRun{cmd: cmd, done: make(chan struct{})}
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		r.err = r.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(r.err, &ee) {
			r.code = ee.ExitCode()
		}
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	return r
}

// wait waits for the process and decodes its report (nil when it printed none).
func (r *callRun) wait(t *testing.T) (int, *call.Report) {
	t.Helper()
	<-r.done
	// With --json stdout is a stream of JSON values: in token mode a token
	// event comes before the report.
	dec := json.NewDecoder(bytes.NewReader(r.stdout.Bytes()))
	var rep *call.Report
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: stdout is not a stream of JSON values %q: %v\nstderr: %s", r.cmd, r.stdout.String(), err, r.stderr.String())
		}
		var ev call.TokenEvent
		if json.Unmarshal(v, &ev) == nil && ev.Event == "token" {
			continue
		}
		rep = new(call.Report)
		if err := json.Unmarshal(v, rep); err != nil {
			t.Fatalf("%s: decode report %s: %v\nstderr: %s", r.cmd, v, err, r.stderr.String())
		}
	}
	return r.code, rep
}

// interrupt sends SIGINT, as a user pressing Ctrl-C.
func (r *callRun) interrupt() { _ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGINT) }

// startHub runs `rtckit signal serve` and returns its WebSocket URL.
func startHub(t *testing.T, extra ...string) string {
	t.Helper()
	var ev signalListening
	args := append([]string{"--json", "signal", "serve", "--listen", "127.0.0.1:0"}, extra...)
	startJSONChild(t, rtckit(t.Context(), args...), &ev)
	if ev.Event != "listening" || ev.Addr == "" {
		t.Fatalf("first event %+v, want listening with addr", ev)
	}
	return "ws://" + ev.Addr + "/ws"
}

// phase returns when a report's phase happened.
func phase(rep *call.Report, name string) (float64, bool) {
	for _, p := range rep.Phases {
		if p.Name == name {
			return p.AtMS, true
		}
	}
	return 0, false
}

// track returns the report's first track of direction and kind.
func track(rep *call.Report, dir, kind string) (call.TrackReport, bool) {
	for _, tr := range rep.Tracks {
		if tr.Direction == dir && tr.Kind == kind {
			return tr, true
		}
	}
	return call.TrackReport{}, false
}

// checkHealthyReport asserts a finished call that verified the clip.
func checkHealthyReport(t *testing.T, who string, code int, rep *call.Report, stderr string) {
	t.Helper()
	if rep == nil {
		t.Fatalf("%s: exit %d, no report; stderr: %s", who, code, stderr)
	}
	if code != 0 || !rep.OK {
		t.Fatalf("%s: exit %d, ok=%v, error %q; stderr: %s", who, code, rep.OK, rep.Error, stderr)
	}
	for _, p := range []string{call.PhaseOffer, call.PhaseAnswer, call.PhaseICEConnected, call.PhaseDTLSConnected, call.PhaseFirstRTP, call.PhaseHangUp} {
		if _, ok := phase(rep, p); !ok {
			t.Errorf("%s: report has no %s phase: %+v", who, p, rep.Phases)
		}
	}
	if rep.Path == nil {
		t.Errorf("%s: report has no selected path", who)
	}
	v, ok := track(rep, "in", "video")
	if !ok || v.Frames == 0 || v.Verified == 0 || v.Mismatched != 0 {
		t.Errorf("%s: received video %+v, want frames all verified", who, v)
	}
	a, ok := track(rep, "in", "audio")
	if !ok || a.Frames == 0 || a.Verified == 0 || a.Mismatched != 0 {
		t.Errorf("%s: received audio %+v, want frames all verified", who, a)
	}
	if o, ok := track(rep, "out", "video"); !ok || o.Frames == 0 || o.Packets == 0 {
		t.Errorf("%s: sent video %+v, want frames and packets", who, o)
	}
}

// ffprobeOK runs ffprobe on a recording, fails the test unless it has a
// stream and every stream has packets that decode to frames, and returns one
// "codec,frames" line per stream.
func ffprobeOK(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_packets", "-count_frames",
		"-show_entries", "stream=codec_name,nb_read_packets,nb_read_frames", "-of", "json", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var probe struct {
		Streams []struct {
			Codec   string `json:"codec_name"`
			Packets string `json:"nb_read_packets"`
			Frames  string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatalf("ffprobe %s: decode %q: %v", path, out, err)
	}
	if len(probe.Streams) == 0 {
		t.Fatalf("ffprobe %s: no stream; stderr: %s", path, stderr.String())
	}
	lines := make([]string, 0, len(probe.Streams))
	for _, s := range probe.Streams {
		packets, perr := strconv.Atoi(s.Packets)
		frames, ferr := strconv.Atoi(s.Frames)
		if perr != nil || ferr != nil || packets == 0 || frames == 0 {
			t.Fatalf("ffprobe %s: %s stream with %q packets and %q frames, want some of each; stderr: %s",
				path, s.Codec, s.Packets, s.Frames, stderr.String())
		}
		lines = append(lines, s.Codec+","+s.Frames)
	}
	return strings.Join(lines, "\n")
}

// TestCallCLIToCLI calls one rtckit from another through `signal serve`:
// both send the clip, both verify every frame, the answerer records, and
// ffprobe accepts its recordings.
func TestCallCLIToCLI(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe")
	hub := startHub(t)
	rec := t.TempDir()
	bob := startCall(t, "--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--include-loopback",
		"--verify", "--record", rec)
	alice := startCall(t, "--hub", hub, "--as", "alice", "--to", "bob", "--wait", "10s", "--include-loopback",
		"--duration", "3s", "--verify", "--min-frames", "30", "--max-loss", "1", "--expect-path", "direct")
	code, rep := alice.wait(t)
	checkHealthyReport(t, "alice", code, rep, alice.stderr.String())
	if rep.EndReason != call.EndDuration || rep.Role != "caller" || rep.Peer != "bob" {
		t.Errorf("alice: end %q role %q peer %q", rep.EndReason, rep.Role, rep.Peer)
	}
	if len(rep.Checks) != 4 {
		t.Errorf("alice: checks %+v, want min-frames, max-loss, expect-path and verify", rep.Checks)
	}
	bcode, brep := bob.wait(t)
	checkHealthyReport(t, "bob", bcode, brep, bob.stderr.String())
	if brep.EndReason != call.EndPeerHungUp {
		t.Errorf("bob: end %q, want %q", brep.EndReason, call.EndPeerHungUp)
	}
	for _, kind := range []string{"video", "audio"} {
		tr, _ := track(brep, "in", kind)
		if tr.Recording == "" || filepath.Dir(tr.Recording) != rec {
			t.Errorf("bob: %s recording %q, want a file in %s", kind, tr.Recording, rec)
			continue
		}
		t.Logf("%s: %s", filepath.Base(tr.Recording), ffprobeOK(t, tr.Recording))
	}
}

// tokenWait bounds the wait for a call's token line.
const tokenWait = 15 * time.Second

// tokenLine waits for the first stdout line of r, a call in token mode
// with --json, and returns the token of its token event.
func tokenLine(t *testing.T, r *callRun, who string) string {
	t.Helper()
	var line string
	waitUntil(t, tokenWait, who+"'s token", func() bool {
		l, _, ok := strings.Cut(r.stdout.String(), "\n")
		line = l
		return ok
	})
	var ev call.TokenEvent
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Event != "token" || !strings.HasPrefix(ev.Token, call.TokenPrefix) {
		t.Fatalf("%s: first line %q, want a token event (%v); stderr %s", who, line, err, r.stderr.String())
	}
	return ev.Token
}

// TestCallToken connects two rtckit processes without a server: the
// offer token goes to --accept, the answer token back on stdin.
func TestCallToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	cmd := rtckit(ctx, "--json", "call", "--offer", "--include-loopback", "--duration", "2s", "--verify")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	offer := startCallCmd(t, cmd, cancel)
	token := tokenLine(t, offer, "offer")
	t.Logf("offer token: %d characters", len(token))
	accept := startCall(t, "--accept", token, "--include-loopback", "--verify")
	answer := tokenLine(t, accept, "accept")
	if _, err := stdin.Write([]byte(answer + "\n")); err != nil {
		t.Fatalf("writing the answer token: %v; stderr %s", err, offer.stderr.String())
	}
	code, rep := offer.wait(t)
	checkHealthyReport(t, "offer", code, rep, offer.stderr.String())
	acode, arep := accept.wait(t)
	checkHealthyReport(t, "accept", acode, arep, accept.stderr.String())
	if arep.EndReason != call.EndPeerHungUp || arep.Mode != "token" {
		t.Errorf("accept: end %q mode %q, want peer-hung-up in token mode", arep.EndReason, arep.Mode)
	}
}

// TestCallInterruptedRecorder interrupts the recording side mid-call, as
// Ctrl-C would: it hangs up cleanly (exit 0), its recordings are complete
// files ffprobe reads, and the other side sees a hang-up.
func TestCallInterruptedRecorder(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe")
	hub := startHub(t)
	rec := t.TempDir()
	bob := startCall(t, "--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--include-loopback", "--record", rec)
	alice := startCall(t, "--hub", hub, "--as", "alice", "--to", "bob", "--wait", "10s", "--include-loopback")
	// About a second of video (the clip is ~26 KB/s) before the interrupt.
	waitUntil(t, 20*time.Second, "a second of recorded video", func() bool {
		files, _ := filepath.Glob(filepath.Join(rec, "video-*"))
		if len(files) == 0 {
			return false
		}
		st, err := os.Stat(files[0])
		return err == nil && st.Size() > 30_000
	})
	bob.interrupt()
	bcode, brep := bob.wait(t)
	if bcode != 0 || brep == nil || !brep.OK || brep.EndReason != call.EndInterrupted {
		t.Fatalf("bob: exit %d, report %+v; stderr %s", bcode, brep, bob.stderr.String())
	}
	for _, kind := range []string{"video", "audio"} {
		tr, _ := track(brep, "in", kind)
		if tr.Recording == "" || tr.Frames == 0 {
			t.Errorf("bob: %s %+v, want a recording", kind, tr)
			continue
		}
		t.Logf("%s: %s", filepath.Base(tr.Recording), ffprobeOK(t, tr.Recording))
	}
	acode, arep := alice.wait(t)
	if acode != 0 || arep == nil || arep.EndReason != call.EndPeerHungUp {
		t.Errorf("alice: exit %d, report %+v; stderr %s", acode, arep, alice.stderr.String())
	}
}

// TestCallRecordDiskFull records onto a tiny file system: the call fails
// with exit 1 and a clear message, and what is left in the directory are
// recordings cut back to whole frames that ffprobe reads, or nothing.
func TestCallRecordDiskFull(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe", "mount", "umount")
	if os.Geteuid() != 0 {
		testenv.Require(t, errors.New("mounting a tmpfs needs root"))
	}
	rec := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", rec).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", rec).Run() })
	hub := startHub(t)
	bob := startCall(t, "--hub", hub, "--as", "bob", "--answer", "--wait", "20s", "--include-loopback", "--record", rec)
	alice := startCall(t, "--hub", hub, "--as", "alice", "--to", "bob", "--wait", "10s", "--include-loopback", "--duration", "10s")
	bcode, brep := bob.wait(t)
	if bcode != 1 || !strings.Contains(bob.stderr.String(), "recording failed") {
		t.Fatalf("bob: exit %d, want 1 with a recording error; stderr %s", bcode, bob.stderr.String())
	}
	if brep == nil || brep.OK {
		t.Errorf("bob: report %+v, want not ok", brep)
	}
	files, _ := filepath.Glob(filepath.Join(rec, "*"))
	for _, f := range files {
		t.Logf("%s: %s", filepath.Base(f), ffprobeOK(t, f))
	}
	alice.interrupt()
	_, _ = alice.wait(t)
}

// waitUntil polls cond every 20 ms until it holds, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("%s did not happen within %s", what, timeout)
		case <-tick.C:
		}
	}
}
