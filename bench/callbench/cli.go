package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// callSchema is the schema of `rtckit --json call` reports this
	// benchmark reads.
	callSchema = "rtckit.call/v1"
	// answererReady is what `rtckit call --answer` writes to stderr once
	// it is registered on the hub.
	answererReady = "waiting for a call"
	// registerTimeout bounds an answerer's registration on the hub.
	registerTimeout = 15 * time.Second
	// answererExitTimeout bounds how long an answerer may take to exit
	// after its caller did (it exits on the caller's hang-up).
	answererExitTimeout = 10 * time.Second
	// waitDelay bounds how long a killed or exited process may keep its
	// output pipes open.
	waitDelay = time.Second
	// hubStopTimeout bounds the hub's graceful stop.
	hubStopTimeout = 5 * time.Second
)

// hub is a running `rtckit signal serve`.
type hub struct {
	cmd  *exec.Cmd
	ws   string
	done chan error
}

// startHub starts `rtckit --json signal serve` on a free loopback port and
// returns once it listens.
func startHub(ctx context.Context, rtckit string) (*hub, error) {
	cmd := exec.Command(rtckit, "--json", "signal", "serve", "--listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = waitDelay
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("rtckit signal serve: %w", err)
	}
	h := &hub{cmd: cmd, done: make(chan error, 1)}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
		h.done <- cmd.Wait()
	}()
	select {
	case line, ok := <-lines:
		var ev struct {
			Event string `json:"event"`
			Addr  string `json:"addr"`
		}
		if !ok || json.Unmarshal([]byte(line), &ev) != nil || ev.Event != "listening" || ev.Addr == "" {
			h.Close()
			return nil, fmt.Errorf("rtckit signal serve: no listening event: %q %s", line, strings.TrimSpace(stderr.String()))
		}
		h.ws = "ws://" + ev.Addr + "/ws"
		return h, nil
	case <-ctx.Done():
		h.Close()
		return nil, ctx.Err()
	}
}

// Close stops the hub: SIGTERM, then SIGKILL after hubStopTimeout.
func (h *hub) Close() {
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(hubStopTimeout):
		_ = h.cmd.Process.Kill()
		<-h.done
	}
}

// lockedBuffer is a bytes.Buffer safe for a writing process and a reader;
// it closes seen once its content contains want.
type lockedBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.seen != nil && b.want != "" && bytes.Contains(b.buf.Bytes(), []byte(b.want)) {
		close(b.seen)
		b.seen = nil
	}
	return n, err
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// callReport is the part of rtckit's call report (schema rtckit.call/v1,
// docs/call.md) the benchmark reads.
type callReport struct {
	Schema    string `json:"schema"`
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	EndReason string `json:"end_reason"`
	Phases    []struct {
		Name string  `json:"name"`
		AtMS float64 `json:"at_ms"`
	} `json:"phases"`
	Path *struct {
		Local, Remote struct {
			Type     string `json:"type"`
			Protocol string `json:"protocol"`
			Address  string `json:"address"`
		}
	} `json:"path"`
	Files []struct {
		Direction string  `json:"direction"`
		Size      int64   `json:"size"`
		SHA256    string  `json:"sha256"`
		OK        bool    `json:"ok"`
		MBps      float64 `json:"mbps"`
		Error     string  `json:"error"`
	} `json:"files"`
}

// phases maps phase names to their times.
func (r *callReport) phases() map[string]float64 {
	m := map[string]float64{}
	for _, p := range r.Phases {
		m[p.Name] = p.AtMS
	}
	return m
}

// decodeReport decodes one rtckit call report.
func decodeReport(who string, out []byte) (*callReport, error) {
	var rep callReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("%s: decode its report: %w", who, err)
	}
	if rep.Schema != callSchema {
		return nil, fmt.Errorf("%s: report schema %q, want %q", who, rep.Schema, callSchema)
	}
	return &rep, nil
}

// cliCall is what one rtckit caller and answerer pair produced. A report
// is nil when its process printed none.
type cliCall struct {
	caller, answerer *callReport
	// wall is how long the caller process ran, from exec to exit.
	wall time.Duration
	// callerCPU and answererCPU are the processes' CPU time (user and
	// system), zero when unknown.
	callerCPU, answererCPU time.Duration
	err                    error
}

// cpuTime is the user and system CPU time of an exited process.
func cpuTime(cmd *exec.Cmd) time.Duration {
	if cmd.ProcessState == nil {
		return 0
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
}

// runCLICall starts an answerer with answererArgs, waits until it is
// registered on the hub, runs a caller with callerArgs, then waits for the
// answerer to exit. Both processes' failures end up in err, next to
// whatever reports they printed.
func runCLICall(ctx context.Context, rtckit string, answererArgs, callerArgs []string) cliCall {
	var res cliCall
	var aOut bytes.Buffer
	aErr := &lockedBuffer{want: answererReady, seen: make(chan struct{})}
	seen := aErr.seen
	ans := exec.CommandContext(ctx, rtckit, answererArgs...)
	ans.Stdout, ans.Stderr, ans.WaitDelay = &aOut, aErr, waitDelay
	if err := ans.Start(); err != nil {
		res.err = fmt.Errorf("answerer: %w", err)
		return res
	}
	aDone := make(chan error, 1)
	go func() { aDone <- ans.Wait() }()
	var errs []error
	select {
	case <-seen:
		var cOut, cErr bytes.Buffer
		caller := exec.CommandContext(ctx, rtckit, callerArgs...)
		caller.Stdout, caller.Stderr, caller.WaitDelay = &cOut, &cErr, waitDelay
		start := time.Now()
		err := caller.Run()
		res.wall = time.Since(start)
		res.callerCPU = cpuTime(caller)
		if err != nil {
			errs = append(errs, fmt.Errorf("caller: %w: %s", err, lastLine(cErr.String())))
		}
		if cOut.Len() > 0 {
			rep, err := decodeReport("caller", cOut.Bytes())
			res.caller = rep
			errs = append(errs, err)
		}
	case err := <-aDone:
		aDone <- err
	case <-time.After(registerTimeout):
		errs = append(errs, errors.New("answerer: not registered on the hub in time"))
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	select {
	case err := <-aDone:
		if err != nil {
			errs = append(errs, fmt.Errorf("answerer: %w: %s", err, lastLine(aErr.String())))
		}
	case <-time.After(answererExitTimeout):
		_ = ans.Process.Kill()
		<-aDone
		errs = append(errs, errors.New("answerer: did not exit after the call"))
	}
	res.answererCPU = cpuTime(ans)
	if aOut.Len() > 0 {
		rep, err := decodeReport("answerer", aOut.Bytes())
		res.answerer = rep
		errs = append(errs, err)
	}
	res.err = errors.Join(errs...)
	return res
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// cliArgs plans the command lines of one rtckit call: the answerer answers
// as callee, the caller calls it as caller. extra goes to both (the test's
// flags), callerExtra and answererExtra to one.
func cliArgs(hubWS, caller, callee string, loopback bool, timeout time.Duration, extra, callerExtra, answererExtra []string) (ans, call []string) {
	common := []string{"--json", "--timeout", timeout.String(), "call", "--hub", hubWS}
	if loopback {
		common = append(common, "--include-loopback")
	}
	common = append(common, extra...)
	ans = append(append(append([]string{}, common...), "--as", callee, "--answer", "--wait", timeout.String()), answererExtra...)
	call = append(append(append([]string{}, common...), "--as", caller, "--to", callee, "--wait", registerTimeout.String()), callerExtra...)
	return ans, call
}

// since returns phases[name] − phases[from], nil unless both happened.
func since(phases map[string]float64, from, name string) *float64 {
	a, ok1 := phases[from]
	b, ok2 := phases[name]
	if !ok1 || !ok2 {
		return nil
	}
	d := b - a
	return &d
}

// pathString renders a report's selected pair like the page does.
func pathString(r *callReport) string {
	if r == nil || r.Path == nil {
		return ""
	}
	l, rm := r.Path.Local, r.Path.Remote
	return fmt.Sprintf("%s %s %s → %s %s %s", l.Type, l.Protocol, l.Address, rm.Type, rm.Protocol, rm.Address)
}

// newCLISetupRun derives a setup run from a call's reports: the caller's
// phases since its offer, first frame being its first keyframe, and the
// answerer's time from the offer's arrival to its answer.
func newCLISetupRun(index int, c cliCall) Run {
	r := newRun(testSetup, pairCLI, index)
	if c.caller != nil {
		p := c.caller.phases()
		r.Phases, r.Path = p, pathString(c.caller)
		r.set(mAnswer, since(p, "offer", "answer"))
		r.set(mRemoteCandidate, since(p, "offer", "first-remote-candidate"))
		r.set(mICEConnected, since(p, "offer", "ice-connected"))
		r.set(mDTLSConnected, since(p, "offer", "dtls-connected"))
		r.set(mFirstRTP, since(p, "offer", "first-rtp"))
		r.set(mFirstFrame, since(p, "offer", "first-keyframe"))
	}
	if c.answerer != nil {
		r.AnswererPhases = c.answerer.phases()
		r.set(mAnswererAnswer, since(r.AnswererPhases, "offer", "answer"))
	}
	r.setProcesses(c.wall, c.callerCPU, c.answererCPU)
	_, framed := r.Metrics[mFirstFrame]
	r.OK = c.err == nil && c.caller != nil && c.caller.OK && c.answerer != nil && c.answerer.OK && framed
	r.Error = errText(c.err, c.caller, c.answerer)
	if r.Error == "" && !r.OK {
		r.Error = "no first frame"
	}
	return r
}

// newCLIFileRun derives a file run from a call's reports: the sender's and
// the receiver's MB/s, the transfer time at the sender's rate, the
// caller's time from its offer to DTLS connected (when the channel can
// open), and the rate cpus would sustain at the CPU time both processes
// spent: size / ((caller CPU + answerer CPU) / cpus).
func newCLIFileRun(index int, c cliCall, cpus int) Run {
	r := newRun(testFile, pairCLI, index)
	var sent, got string
	var size int64
	if c.caller != nil {
		p := c.caller.phases()
		r.Phases, r.Path = p, pathString(c.caller)
		r.set(mOpen, since(p, "offer", "dtls-connected"))
		for _, f := range c.caller.Files {
			if f.Direction == "out" && f.MBps > 0 {
				mbps, ms := f.MBps, float64(f.Size)/f.MBps/1e3
				r.set(mSendMBps, &mbps)
				r.set(mTransfer, &ms)
				size = f.Size
				if f.OK {
					sent = f.SHA256
				}
			}
		}
	}
	if c.answerer != nil {
		r.AnswererPhases = c.answerer.phases()
		for _, f := range c.answerer.Files {
			if f.Direction == "in" && f.MBps > 0 {
				mbps := f.MBps
				r.set(mRecvMBps, &mbps)
				if f.OK {
					got = f.SHA256
				}
			}
		}
	}
	r.setProcesses(c.wall, c.callerCPU, c.answererCPU)
	r.setCPUBound(size, c.callerCPU+c.answererCPU, cpus)
	r.OK = c.err == nil && sent != "" && sent == got
	r.Error = errText(c.err, c.caller, c.answerer)
	if r.Error == "" && !r.OK {
		r.Error = "no verified transfer"
	}
	return r
}

// errText joins a run's error with the reports' own.
func errText(err error, reps ...*callReport) string {
	var parts []string
	if err != nil {
		parts = append(parts, err.Error())
	}
	for _, rep := range reps {
		if rep != nil && rep.Error != "" {
			parts = append(parts, rep.Error)
		}
	}
	return strings.Join(parts, "; ")
}
