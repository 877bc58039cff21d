package icegather

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/golden"

	"github.com/rtckit/rtckit/peer"
)

func goldenReport() *Report {
	first := 8.3
	r := &Report{
		Schema: SchemaVersion, StartedAt: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), DurationMS: 3012.4,
		Candidates: []Candidate{
			{ElapsedMS: 3.4, Type: TypeHost, Foundation: "1", Component: 1, Protocol: "udp", Address: "10.99.1.2", Port: 50000,
				Priority: 2130706431, TypePreference: 126, LocalPreference: 65535, ComponentPreference: 255},
			{ElapsedMS: 8.3, Type: TypeSrflx, Foundation: "2", Component: 1, Protocol: "udp", Address: "203.0.113.101", Port: 61000,
				Priority: 1694498815, TypePreference: 100, LocalPreference: 65535, ComponentPreference: 255,
				RelatedAddress: "0.0.0.0", RelatedPort: 50001, Server: "stun:203.0.113.10:3478"},
			{ElapsedMS: 11.1, Type: TypeRelay, Foundation: "3", Component: 1, Protocol: "udp", Address: "10.0.0.5", Port: 49999,
				Priority: 511, TypePreference: 0, LocalPreference: 1, ComponentPreference: 255,
				RelatedAddress: "203.0.113.101", RelatedPort: 40000, Server: "turn:203.0.113.10:3478?transport=tcp", RelayProtocol: "tcp"},
		},
		Servers: []ServerResult{
			{URI: "stun:203.0.113.10:3478", Kind: "stun", Transport: "udp", Expected: TypeSrflx, Status: StatusOK, Candidates: 1, FirstCandidateMS: &first, DoneMS: 8.7},
			{URI: "turn:203.0.113.10:3478?transport=udp", Kind: "turn", Transport: "udp", Expected: TypeRelay, Status: StatusFailed, DoneMS: 3001,
				ErrorKind: KindTimeout, Error: "no answer to the TURN Allocate request before the deadline", Credentials: "flags"},
		},
		Counts:      map[string]int{TypeHost: 1, TypeSrflx: 1, TypeRelay: 1},
		RelayChecks: []RelayCheck{{Server: "turn:203.0.113.10:3478?transport=tcp", Passed: true, ConnectedMS: 23, LocalCandidate: "relay udp 10.0.0.5:49999", Sent: 50, Received: 49, LossPercent: 2, RTTP50MS: 1.1, RTTP90MS: 1.4, RTTP99MS: 2.4, RTTMaxMS: 2.4}},
		Missing:     []string{"srflx"},
	}
	r.Missing = nil
	r.Findings = findings(r, peer.ICEConfig{})
	return r
}

func TestGoldenOutput(t *testing.T) {
	r := goldenReport()
	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "report.txt"), text.Bytes())
	golden.Check(t, filepath.Join("testdata", "report.json"), append(js, '\n'))
}

func TestFindings(t *testing.T) {
	r := goldenReport()
	codes := map[string]bool{}
	for _, f := range r.Findings {
		codes[f.Code] = true
	}
	for _, want := range []string{"relay-private-address", "no-ipv6", "no-relay"} {
		if !codes[want] {
			t.Errorf("finding %s missing from %+v", want, r.Findings)
		}
	}
	if codes["srflx-equals-host"] {
		t.Errorf("srflx differs from the host address, yet flagged: %+v", r.Findings)
	}
	r.Candidates[1].Address = "10.99.1.2"
	if fs := findings(r, peer.ICEConfig{Networks: []string{"udp4"}}); !hasCode(fs, "srflx-equals-host") || hasCode(fs, "no-ipv6") {
		t.Errorf("findings %+v: want srflx-equals-host and no IPv6 complaint when IPv6 was not asked for", fs)
	}
}

func hasCode(fs []Finding, code string) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

func TestReportErr(t *testing.T) {
	r := goldenReport()
	if err := r.Err(); err != nil {
		t.Errorf("healthy report: %v", err)
	}
	r.RelayChecks[0].Passed = false
	if err := r.Err(); err != ErrRelayCheckFailed {
		t.Errorf("failed relay check: %v", err)
	}
	r.Missing = []string{"relay"}
	if err := r.Err(); err != ErrMissingTypes {
		t.Errorf("missing types: %v", err)
	}
	r.Interrupted = true
	if err := r.Err(); err != ErrInterrupted {
		t.Errorf("interrupted: %v", err)
	}
	var text bytes.Buffer
	if err := WriteSummary(&text, r); err != nil || !strings.Contains(text.String(), "INTERRUPTED") {
		t.Errorf("summary of an interrupted report (%v):\n%s", err, text.String())
	}
}
