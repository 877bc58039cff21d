package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/peer"
)

// Gatherers, as the JSON records name them.
const (
	gathererChromium = "chromium"
	gathererRTCKit   = "rtckit"
)

// rtckitWaitDelay bounds how long an rtckit process that was killed, or
// that exited, may keep its output pipes open.
const rtckitWaitDelay = time.Second

// rtckitArgs plans the command line of `rtckit --json ice gather` for one
// scenario: servers as --stun and --turn, their credentials as --turn-user
// and --turn-pass, --include-loopback when loopback candidates are on, and
// --timeout bounding the run like -timeout bounds Chromium's. It asks for no
// relay check, so the report's duration ends with gathering.
func rtckitArgs(servers []iceServer, loopback bool, timeout time.Duration) ([]string, error) {
	args := []string{"--json", "--timeout", timeout.String(), "ice", "gather"}
	if loopback {
		args = append(args, "--include-loopback")
	}
	var user, pass string
	haveCreds := false
	for _, srv := range servers {
		for _, raw := range srv.URLs {
			u, err := peer.ParseICEServerURI(raw)
			if err != nil {
				return nil, err
			}
			if !u.IsTURN() {
				args = append(args, "--stun", raw)
				continue
			}
			if haveCreds && (srv.Username != user || srv.Credential != pass) {
				return nil, errors.New("rtckit takes one TURN username and password for all its TURN servers")
			}
			user, pass, haveCreds = srv.Username, srv.Credential, true
			args = append(args, "--turn", raw)
		}
	}
	if haveCreds {
		args = append(args, "--turn-user", user, "--turn-pass", pass)
	}
	return args, nil
}

// rtckitResult is what one `rtckit --json ice gather` process produced.
type rtckitResult struct {
	report icegather.Report
	// wall is how long the process ran, from exec to exit.
	wall time.Duration
}

// gatherRTCKit runs the rtckit binary at path with args once and decodes its
// report. A process that fails or prints no report is an error: without
// --require and --relay-check, rtckit reports failed servers in its report
// and exits 0.
func gatherRTCKit(ctx context.Context, path string, args []string, timeout time.Duration) (rtckitResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout+runSlack)
	defer cancel()
	out, wall, err := runRTCKit(ctx, "ice gather", path, args...)
	if err != nil {
		return rtckitResult{}, err
	}
	var rep icegather.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return rtckitResult{}, fmt.Errorf("rtckit ice gather: decode its report: %w", err)
	}
	if rep.Schema != icegather.SchemaVersion {
		return rtckitResult{}, fmt.Errorf("rtckit ice gather: report schema %q, want %q", rep.Schema, icegather.SchemaVersion)
	}
	return rtckitResult{report: rep, wall: wall}, nil
}

// rtckitVersion returns the first line of `rtckit version`, which also
// checks early that path runs.
func rtckitVersion(ctx context.Context, path string) (string, error) {
	out, _, err := runRTCKit(ctx, "version", path, "version")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

// runRTCKit runs path with args and returns its standard output and how long
// it ran, from just before exec to exit. Errors name the command as name
// and carry rtckit's standard error, but never the arguments, which hold the
// TURN password.
func runRTCKit(ctx context.Context, name, path string, args ...string) ([]byte, time.Duration, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = rtckitWaitDelay
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		msg := fmt.Errorf("rtckit %s: %w", name, err)
		if s := strings.TrimSpace(stderr.String()); s != "" {
			msg = fmt.Errorf("%w: %s", msg, s)
		}
		return nil, wall, msg
	}
	return stdout.Bytes(), wall, nil
}

// newRTCKitRun turns one rtckit report into a Run: the first candidate of
// each type from the candidates' elapsed_ms, complete from duration_ms,
// every failed server as an error, and the process's wall-clock time. A run
// counts as timed out when a server failed with a timeout.
func newRTCKitRun(scenario string, index int, res rtckitResult) Run {
	rep := res.report
	complete := rep.DurationMS
	p := pageResult{CompleteMS: &complete}
	for _, c := range rep.Candidates {
		p.Candidates = append(p.Candidates, Candidate{
			ElapsedMS: c.ElapsedMS, Type: c.Type, Protocol: c.Protocol, Address: c.Address, Port: int(c.Port),
			RelayProtocol: c.RelayProtocol, TCPType: c.TCPType, RelatedAddress: c.RelatedAddress,
			RelatedPort: int(c.RelatedPort), Foundation: c.Foundation, Priority: c.Priority,
			URL: c.Server, SDP: candidateAttribute(c),
		})
	}
	for _, s := range rep.Servers {
		if s.Status != icegather.StatusFailed {
			continue
		}
		if s.ErrorKind == icegather.KindTimeout {
			p.TimedOut = true
		}
		p.Errors = append(p.Errors, CandidateError{ElapsedMS: s.DoneMS, URL: s.URI, ErrorCode: s.ErrorCode,
			ErrorText: strings.TrimSuffix(s.ErrorKind+": "+s.Error, ": ")})
	}
	r := newRun(gathererRTCKit, scenario, index, p)
	wall := float64(res.wall.Microseconds()) / 1000
	r.WallMS = &wall
	return r
}

// candidateAttribute writes c as an SDP candidate attribute (RFC 8839), the
// form Chromium's records carry.
func candidateAttribute(c icegather.Candidate) string {
	s := fmt.Sprintf("candidate:%s %d %s %d %s %d typ %s", c.Foundation, c.Component, c.Protocol,
		c.Priority, c.Address, c.Port, c.Type)
	if c.RelatedAddress != "" {
		s += " raddr " + c.RelatedAddress + " rport " + strconv.Itoa(int(c.RelatedPort))
	}
	if c.TCPType != "" {
		s += " tcptype " + c.TCPType
	}
	return s
}
