package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func ptr(v float64) *float64 { return &v }

func TestNewRun(t *testing.T) {
	p := pageResult{
		SetLocalDescriptionMS: ptr(1),
		CompleteMS:            ptr(120),
		EndOfCandidatesMS:     ptr(120.5),
		Candidates: []Candidate{
			{ElapsedMS: 9, Type: "host"},
			{ElapsedMS: 6, Type: "host"},
			{ElapsedMS: 70, Type: "relay", RelayProtocol: "tcp"},
			{ElapsedMS: 60, Type: "relay", RelayProtocol: "udp"},
			{ElapsedMS: 14, Type: "srflx"},
			{ElapsedMS: 15, Type: "prflx"},
		},
	}
	r := newRun(gathererChromium, "all", 3, p)
	if r.Record != "run" || r.Schema != schemaVersion || r.Gatherer != gathererChromium || r.Scenario != "all" || r.Index != 3 {
		t.Errorf("identity = %q %d %q %q %d", r.Record, r.Schema, r.Gatherer, r.Scenario, r.Index)
	}
	for name, got := range map[string]*float64{"host": r.FirstHostMS, "srflx": r.FirstSrflxMS, "relay": r.FirstRelayMS} {
		want := map[string]float64{"host": 6, "srflx": 14, "relay": 60}[name]
		if got == nil || *got != want {
			t.Errorf("first %s = %v, want %v", name, got, want)
		}
	}
	if want := (Counts{Host: 2, Srflx: 1, Prflx: 1, Relay: 2}); r.Counts != want {
		t.Errorf("counts = %+v, want %+v", r.Counts, want)
	}

	empty := newRun(gathererChromium, "host", 0, pageResult{TimedOut: true})
	if empty.FirstHostMS != nil || empty.CompleteMS != nil || empty.WallMS != nil || !empty.TimedOut {
		t.Errorf("empty run = %+v", empty)
	}
	if empty.Candidates == nil || empty.Errors == nil {
		t.Error("nil slices would encode as null")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{1, 2, 9}, 2}, {[]float64{1, 2, 3, 10}, 2.5}}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// sampleReport is a fixed report for the renderers.
func sampleReport() Report {
	runs := []Run{
		newRun(gathererChromium, "all", 0, pageResult{CompleteMS: ptr(118), EndOfCandidatesMS: ptr(118),
			Candidates: []Candidate{{ElapsedMS: 4, Type: "host"}, {ElapsedMS: 57, Type: "relay"}}}),
		newRun(gathererChromium, "all", 1, pageResult{CompleteMS: ptr(130), EndOfCandidatesMS: ptr(130),
			Candidates: []Candidate{{ElapsedMS: 6, Type: "host"}, {ElapsedMS: 61, Type: "relay"}, {ElapsedMS: 62, Type: "relay"}}}),
		newRun(gathererChromium, "all", 2, pageResult{TimedOut: true,
			Candidates: []Candidate{{ElapsedMS: 5, Type: "host"}},
			Errors:     []CandidateError{{ElapsedMS: 40, URL: "turn:127.0.0.1:3478?transport=udp", ErrorCode: 701, ErrorText: "TURN allocate request timed out."}}}),
	}
	servers := []string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"}
	return Report{
		Browser: "HeadlessChrome/156.0.0.0", Mode: modeGranted, Loopback: true, Flags: []string{"--headless=new"},
		Scenarios: []Scenario{{Name: "all", Gatherer: gathererChromium, Servers: servers, Runs: runs,
			Summary: summarize(gathererChromium, "all", servers, runs)}},
	}
}

// sampleRTCKitReport is sampleReport with two rtckit runs of the fixture
// report next to Chromium's.
func sampleRTCKitReport(t *testing.T) Report {
	rep := sampleReport()
	fixture := fixtureReport(t)
	runs := []Run{
		newRTCKitRun("all", 0, rtckitResult{report: fixture, wall: 61500 * time.Microsecond}),
		newRTCKitRun("all", 1, rtckitResult{report: fixture, wall: 80 * time.Millisecond}),
	}
	servers := rep.Scenarios[0].Servers
	rep.RTCKit = &RTCKitInfo{Version: "rtckit devel (go1.26.8, linux/amd64)",
		Args: []string{"--json", "--timeout", "30s", "ice", "gather", "--include-loopback"}}
	rep.Scenarios = append(rep.Scenarios, Scenario{Name: "all", Gatherer: gathererRTCKit, Servers: servers, Runs: runs,
		Summary: summarize(gathererRTCKit, "all", servers, runs)})
	return rep
}

func TestSummarize(t *testing.T) {
	s := sampleReport().Scenarios[0].Summary
	if s.Gatherer != gathererChromium || s.Runs != 3 || s.TimedOut != 1 {
		t.Errorf("runs %d timed out %d", s.Runs, s.TimedOut)
	}
	if s.FirstHost.N != 3 || *s.FirstHost.MedianMS != 5 || *s.FirstHost.MinMS != 4 || *s.FirstHost.MaxMS != 6 {
		t.Errorf("first host = %+v", s.FirstHost)
	}
	if s.FirstRelay.N != 2 || *s.FirstRelay.MedianMS != 59 {
		t.Errorf("first relay = %+v", s.FirstRelay)
	}
	if s.FirstSrflx.N != 0 || s.FirstSrflx.MedianMS != nil {
		t.Errorf("first srflx = %+v, want none", s.FirstSrflx)
	}
	if s.Complete.N != 2 || *s.Complete.MedianMS != 124 {
		t.Errorf("complete = %+v", s.Complete)
	}
	if s.Wall.N != 0 || s.Wall.MedianMS != nil {
		t.Errorf("wall = %+v, want none for Chromium", s.Wall)
	}
	if s.Counts.Host != 1 || s.Counts.Relay != 1 {
		t.Errorf("counts = %+v", s.Counts)
	}
	if want := []string{"turn:127.0.0.1:3478?transport=udp: 701 TURN allocate request timed out."}; !slices.Equal(s.ErrorURLs, want) {
		t.Errorf("errors = %q", s.ErrorURLs)
	}
}

func TestSummarizeRTCKit(t *testing.T) {
	s := sampleRTCKitReport(t).Scenarios[1].Summary
	if s.Gatherer != gathererRTCKit || s.Runs != 2 || s.TimedOut != 2 {
		t.Errorf("gatherer %q runs %d timed out %d", s.Gatherer, s.Runs, s.TimedOut)
	}
	if s.Wall.N != 2 || *s.Wall.MedianMS != 70.75 || *s.Wall.MinMS != 61.5 || *s.Wall.MaxMS != 80 {
		t.Errorf("wall = %+v", s.Wall)
	}
	if s.Complete.N != 2 || *s.Complete.MedianMS != 3012.5 {
		t.Errorf("complete = %+v", s.Complete)
	}
	if len(s.ErrorURLs) != 1 || !strings.HasPrefix(s.ErrorURLs[0], "turn:127.0.0.1:3478?transport=tcp: timeout: ") {
		t.Errorf("errors = %q", s.ErrorURLs)
	}
}

func TestRenderGolden(t *testing.T) {
	writeJSON := func(b *bytes.Buffer, r Report) error { return writeJSONLines(b, r) }
	writeMD := func(b *bytes.Buffer, r Report) error { return writeMarkdown(b, r) }
	for _, tt := range []struct {
		name   string
		report Report
		render func(*bytes.Buffer, Report) error
	}{
		{"report.jsonl", sampleReport(), writeJSON},
		{"report.md", sampleReport(), writeMD},
		{"report-rtckit.jsonl", sampleRTCKitReport(t), writeJSON},
		{"report-rtckit.md", sampleRTCKitReport(t), writeMD},
	} {
		name := tt.name
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.render(&buf, tt.report); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, buf.String())
			}
		})
	}
}
