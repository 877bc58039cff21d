package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

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

func TestSummarize(t *testing.T) {
	var runs []Run
	for i, v := range []float64{30, 10, 20, 40} {
		r := newRun(testSetup, pairCLI, i)
		r.OK = i != 3
		r.Metrics[mICEConnected] = v
		if i < 3 {
			r.Metrics[mFirstFrame] = v * 2
		}
		runs = append(runs, r)
	}
	s := summarize(testSetup, pairCLI, runs)
	if s.Runs != 4 || s.Failed != 1 {
		t.Errorf("runs, failed = %d, %d; want 4, 1", s.Runs, s.Failed)
	}
	if got, want := s.stat(mICEConnected), (Stat{Name: mICEConnected, N: 4, Median: 25, Min: 10, Max: 40}); got != want {
		t.Errorf("ice = %+v, want %+v", got, want)
	}
	if got, want := s.stat(mFirstFrame), (Stat{Name: mFirstFrame, N: 3, Median: 40, Min: 20, Max: 60}); got != want {
		t.Errorf("first frame = %+v, want %+v", got, want)
	}
	if got := s.stat(mWall); got.N != 0 {
		t.Errorf("wall = %+v, want none", got)
	}
	if got := fmtStat(s.stat(mFirstFrame), s.Runs, 1, " ms"); got != "40.0 (20.0–60.0) ms (3/4)" {
		t.Errorf("fmtStat = %q", got)
	}
	if got := fmtStat(s.stat(mWall), s.Runs, 1, " ms"); got != "–" {
		t.Errorf("fmtStat of none = %q", got)
	}
}

// sampleCall is a call as rtckit reports it: phases in ms since each
// process started.
const sampleCaller = `{"schema":"rtckit.call/v1","ok":true,"end_reason":"duration",
 "phases":[{"name":"offer","at_ms":10},{"name":"first-remote-candidate","at_ms":13},{"name":"answer","at_ms":12},
  {"name":"ice-connected","at_ms":17.5},{"name":"dtls-connected","at_ms":21},{"name":"first-rtp","at_ms":25},{"name":"first-keyframe","at_ms":60}],
 "path":{"local":{"type":"host","protocol":"udp","address":"127.0.0.1","port":1},"remote":{"type":"host","protocol":"udp","address":"127.0.0.1","port":2},"relay":false},
 "files":[{"direction":"out","name":"f","size":200000000,"sha256":"ab","ok":true,"mbps":100}]}`

const sampleAnswerer = `{"schema":"rtckit.call/v1","ok":true,"end_reason":"peer-hung-up",
 "phases":[{"name":"offer","at_ms":400},{"name":"answer","at_ms":402.5}],
 "files":[{"direction":"in","name":"f","size":200000000,"sha256":"ab","ok":true,"mbps":99}]}`

func sampleCLICall(t *testing.T) cliCall {
	t.Helper()
	c, err := decodeReport("caller", []byte(sampleCaller))
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeReport("answerer", []byte(sampleAnswerer))
	if err != nil {
		t.Fatal(err)
	}
	return cliCall{caller: c, answerer: a, wall: 1250 * time.Millisecond, callerCPU: time.Second, answererCPU: 3 * time.Second}
}

func TestNewCLISetupRun(t *testing.T) {
	r := newCLISetupRun(2, sampleCLICall(t))
	want := map[string]float64{mAnswer: 2, mRemoteCandidate: 3, mICEConnected: 7.5, mDTLSConnected: 11, mFirstRTP: 15,
		mFirstFrame: 50, mAnswererAnswer: 2.5, mWall: 1250}
	if !r.OK || r.Error != "" || r.Index != 2 || r.Test != testSetup || r.Pair != pairCLI {
		t.Errorf("run = %+v", r)
	}
	for k, v := range want {
		if r.Metrics[k] != v {
			t.Errorf("%s = %v, want %v", k, r.Metrics[k], v)
		}
	}
	if r.Path != "host udp 127.0.0.1 → host udp 127.0.0.1" {
		t.Errorf("path = %q", r.Path)
	}

	failed := sampleCLICall(t)
	failed.err = errors.New("caller: exit status 7")
	failed.caller.Phases = failed.caller.Phases[:4]
	r = newCLISetupRun(0, failed)
	if r.OK || !strings.Contains(r.Error, "exit status 7") {
		t.Errorf("failed run: ok %v, error %q", r.OK, r.Error)
	}
	if _, ok := r.Metrics[mFirstFrame]; ok {
		t.Error("a frame that never came has a time")
	}
}

func TestNewCLIFileRun(t *testing.T) {
	r := newCLIFileRun(0, sampleCLICall(t), 2)
	if !r.OK || r.Metrics[mSendMBps] != 100 || r.Metrics[mRecvMBps] != 99 || r.Metrics[mTransfer] != 2000 || r.Metrics[mOpen] != 11 ||
		r.Metrics[mCallerCPU] != 1000 || r.Metrics[mCPUMBps] != 100 {
		t.Errorf("run = %+v", r)
	}
	mismatch := sampleCLICall(t)
	mismatch.answerer.Files[0].SHA256 = "cd"
	if r := newCLIFileRun(0, mismatch, 2); r.OK {
		t.Error("a transfer with different hashes on both sides is OK")
	}
}

func TestDecodeReportSchema(t *testing.T) {
	if _, err := decodeReport("caller", []byte(`{"schema":"rtckit.call/v9"}`)); err == nil {
		t.Error("a foreign schema decodes")
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "256MiB": 256 << 20, "4KiB": 4096, "1GiB": 1 << 30} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1MB", "x"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeds", in)
		}
	}
}

func TestRenderers(t *testing.T) {
	run := newCLISetupRun(0, sampleCLICall(t))
	rep := Report{
		Header:    Header{Record: "header", Schema: schemaVersion, RTCKit: "rtckit devel", Runs: 1, FileSize: 256 << 20, CPUs: 2, LoadStart: "0.1 0.2 0.3", LoadEnd: "0.4 0.5 0.6"},
		Runs:      []Run{run},
		Summaries: []Summary{summarize(testSetup, pairCLI, []Run{run}), summarize(testFile, pairChromium, nil)},
	}
	var md bytes.Buffer
	if err := writeMarkdown(&md, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| rtckit ↔ rtckit | 1 | 0 | 2.0 (2.0–2.0) | 7.5 (7.5–7.5) |", "| Chromium ↔ Chromium | 0 | 0 | 256 MiB | – |", "load average 0.1 0.2 0.3 before"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	var lines bytes.Buffer
	if err := writeJSONLines(&lines, rep); err != nil {
		t.Fatal(err)
	}
	var records []string
	for line := range strings.Lines(lines.String()) {
		var rec struct {
			Record string `json:"record"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		records = append(records, rec.Record)
	}
	if got := strings.Join(records, ","); got != "header,run,summary,summary" {
		t.Errorf("records = %s", got)
	}
}
