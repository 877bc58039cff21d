package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// schemaVersion is the version of the JSON records; it changes when a field
// changes meaning or goes away.
const schemaVersion = 1

// Tests and peer pairs, as the records name them.
const (
	testSetup = "setup"
	testFile  = "file"

	pairCLI      = "cli"
	pairChromium = "chromium"
	// pairPion is bare pion ↔ pion (pionpeer.go), file test only.
	pairPion = "pion"
)

// Metric names. Setup times are milliseconds since the caller sent its
// offer; file rates are megabytes (10^6 bytes) per second.
const (
	mAnswer          = "answer_ms"
	mRemoteCandidate = "first_remote_candidate_ms"
	mICEConnected    = "ice_connected_ms"
	mDTLSConnected   = "dtls_connected_ms"
	mFirstRTP        = "first_rtp_ms"
	mFirstFrame      = "first_frame_ms"
	mFirstDecoded    = "first_decoded_ms"
	mAnswererAnswer  = "answerer_answer_ms"
	mWall            = "wall_ms"
	mSendMBps        = "mbps"
	mRecvMBps        = "receiver_mbps"
	mTransfer        = "transfer_ms"
	mOpen            = "open_ms"
	mCallerCPU       = "caller_cpu_ms"
	mAnswererCPU     = "answerer_cpu_ms"
	mCPUMBps         = "cpu_bound_mbps"
	mBrowserCPU      = "browser_cpu_ms"
)

// metricOrder is the order of the metrics in a summary.
var metricOrder = []string{
	mAnswer, mRemoteCandidate, mICEConnected, mDTLSConnected, mFirstRTP, mFirstFrame, mFirstDecoded,
	mAnswererAnswer, mOpen, mSendMBps, mRecvMBps, mTransfer, mWall, mCallerCPU, mAnswererCPU, mBrowserCPU, mCPUMBps,
}

// Run is one measured call of one pair. Metrics holds what the run measured
// (see the m… names); a metric that is absent did not happen or does not
// apply to the pair.
type Run struct {
	Record  string             `json:"record"` // "run"
	Schema  int                `json:"schema"`
	Test    string             `json:"test"`
	Pair    string             `json:"pair"`
	Index   int                `json:"run"`
	OK      bool               `json:"ok"`
	Error   string             `json:"error,omitempty"`
	Metrics map[string]float64 `json:"metrics"`
	// Path is the selected candidate pair as the caller saw it.
	Path string `json:"path"`
	// Phases are the rtckit caller's and answerer's report phases (ms
	// since each process started), for reading where the time went.
	Phases         map[string]float64 `json:"phases,omitempty"`
	AnswererPhases map[string]float64 `json:"answerer_phases,omitempty"`
}

// newRun returns an empty run.
func newRun(test, pair string, index int) Run {
	return Run{Record: "run", Schema: schemaVersion, Test: test, Pair: pair, Index: index, Metrics: map[string]float64{}}
}

// set records metric name, rounded to 0.001, when v is not nil.
func (r *Run) set(name string, v *float64) {
	if v != nil {
		r.Metrics[name] = round(*v)
	}
}

// setProcesses records the caller's (the sender's) wall-clock time and
// both processes' CPU time; a zero is not known.
func (r *Run) setProcesses(wall, callerCPU, answererCPU time.Duration) {
	for name, d := range map[string]time.Duration{mWall: wall, mCallerCPU: callerCPU, mAnswererCPU: answererCPU} {
		if d > 0 {
			ms := float64(d.Microseconds()) / 1000
			r.set(name, &ms)
		}
	}
}

// setCPUBound records the rate at which cpus processors would move size
// bytes if they spent cpu on it and nothing else limited them.
func (r *Run) setCPUBound(size int64, cpu time.Duration, cpus int) {
	if s := cpu.Seconds() / float64(cpus); s > 0 && size > 0 {
		mbps := float64(size) / 1e6 / s
		r.set(mCPUMBps, &mbps)
	}
}

// round rounds v to 0.001 (a microsecond for times).
func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// Stat summarises one metric over the runs that have it.
type Stat struct {
	Name   string  `json:"name"`
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Summary is the medians of one pair's runs of one test.
type Summary struct {
	Record string `json:"record"` // "summary"
	Schema int    `json:"schema"`
	Test   string `json:"test"`
	Pair   string `json:"pair"`
	Runs   int    `json:"runs"`
	Failed int    `json:"failed"`
	Stats  []Stat `json:"stats"`
}

// stat returns the named metric's Stat, N 0 when no run had it.
func (s Summary) stat(name string) Stat {
	for _, st := range s.Stats {
		if st.Name == name {
			return st
		}
	}
	return Stat{Name: name}
}

// summarize computes the median, minimum and maximum of every metric over
// the runs (failed runs included: a time they measured happened).
func summarize(test, pair string, runs []Run) Summary {
	s := Summary{Record: "summary", Schema: schemaVersion, Test: test, Pair: pair, Runs: len(runs), Stats: []Stat{}}
	for _, r := range runs {
		if !r.OK {
			s.Failed++
		}
	}
	for _, name := range metricOrder {
		var v []float64
		for _, r := range runs {
			if x, ok := r.Metrics[name]; ok {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		s.Stats = append(s.Stats, Stat{Name: name, N: len(v), Median: round(median(v)), Min: v[0], Max: v[len(v)-1]})
	}
	return s
}

// median of sorted v; 0 for none.
func median(v []float64) float64 {
	switch n := len(v); {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	default:
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// Header describes the benchmark's setting: what ran, where, under which
// load.
type Header struct {
	Record string `json:"record"` // "header"
	Schema int    `json:"schema"`
	// RTCKit is the first line of `rtckit version`; Browser is Chromium's
	// user agent, empty when Chromium did not run.
	RTCKit  string `json:"rtckit"`
	Browser string `json:"browser"`
	// Loopback tells whether rtckit gathered loopback candidates
	// (--include-loopback) and Chromium was allowed them.
	Loopback bool `json:"loopback"`
	// DurationMS is the caller's --duration in the setup test.
	DurationMS float64 `json:"duration_ms"`
	FileSize   int64   `json:"file_size"`
	Runs       int     `json:"runs"`
	Warmup     int     `json:"warmup"`
	CPUs       int     `json:"cpus"`
	// LoadStart and LoadEnd are /proc/loadavg before and after.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

// Report is everything one invocation measured.
type Report struct {
	Header    Header
	Runs      []Run
	Summaries []Summary
}

// writeJSONLines writes the header, every run and every summary, one JSON
// object a line.
func writeJSONLines(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep.Header); err != nil {
		return err
	}
	for _, r := range rep.Runs {
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	for _, s := range rep.Summaries {
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	return nil
}

// pairLabel is the name of a pair in the tables.
func pairLabel(p string) string {
	switch p {
	case pairCLI:
		return "rtckit ↔ rtckit"
	case pairChromium:
		return "Chromium ↔ Chromium"
	case pairPion:
		return "pion ↔ pion (defaults, 64 KiB messages)"
	}
	return p
}

// fmtStat renders a stat as "median (min–max)" with the given precision
// and unit, marking a metric that only k of n runs had with (k/n); "–"
// when none.
func fmtStat(st Stat, runs, prec int, unit string) string {
	if st.N == 0 {
		return "–"
	}
	f := func(v float64) string { return fmt.Sprintf("%.*f", prec, v) }
	out := f(st.Median) + " (" + f(st.Min) + "–" + f(st.Max) + ")" + unit
	if st.N != runs {
		out += fmt.Sprintf(" (%d/%d)", st.N, runs)
	}
	return out
}

// writeMarkdown writes the summaries as two Markdown tables, setup and file
// transfer, with a line on the setting.
func writeMarkdown(w io.Writer, rep Report) error {
	var b strings.Builder
	h := rep.Header
	fmt.Fprintf(&b, "rtckit: %s; Chromium: %s; loopback candidates %s; %d runs after %d warm-up; %d CPUs, load average %s before, %s after\n\n",
		or(h.RTCKit, "–"), or(h.Browser, "–"), onOff(h.Loopback), h.Runs, h.Warmup, h.CPUs, h.LoadStart, h.LoadEnd)
	row := func(cells ...string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	var setup, file []Summary
	for _, s := range rep.Summaries {
		switch s.Test {
		case testSetup:
			setup = append(setup, s)
		case testFile:
			file = append(file, s)
		}
	}
	if len(setup) > 0 {
		row("call setup", "runs", "failed", "answer", "ICE connected", "DTLS connected", "first RTP", "first frame", "first decoded", "caller process wall")
		row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
		for _, s := range setup {
			st := func(name string) string { return fmtStat(s.stat(name), s.Runs, 1, "") }
			row(pairLabel(s.Pair), fmt.Sprint(s.Runs), fmt.Sprint(s.Failed), st(mAnswer), st(mICEConnected), st(mDTLSConnected),
				st(mFirstRTP), st(mFirstFrame), st(mFirstDecoded), st(mWall))
		}
		b.WriteString("\nms since the caller sent its offer: median (min–max).\n\n")
	}
	if len(file) > 0 {
		row("file transfer", "runs", "failed", "size", "MB/s (sender)", "MB/s (receiver)", "transfer", "caller process wall",
			"CPU time", "CPU-bound MB/s")
		row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
		for _, s := range file {
			row(pairLabel(s.Pair), fmt.Sprint(s.Runs), fmt.Sprint(s.Failed), fmt.Sprintf("%d MiB", h.FileSize>>20),
				fmtStat(s.stat(mSendMBps), s.Runs, 1, ""), fmtStat(s.stat(mRecvMBps), s.Runs, 1, ""),
				fmtStat(s.stat(mTransfer), s.Runs, 0, " ms"), fmtStat(s.stat(mWall), s.Runs, 0, " ms"),
				cpuText(s), fmtStat(s.stat(mCPUMBps), s.Runs, 1, ""))
		}
		b.WriteString("\nMB/s is 10^6 bytes per second: median (min–max). CPU time is user + system time, median: " +
			"the sender's + receiver's process, or all of Chromium's processes during the transfer; CPU-bound MB/s is " +
			"size / (CPU time / CPUs), the rate the machine would sustain for the pair alone if CPU were the only limit.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cpuText renders the median CPU seconds of the rtckit caller and answerer,
// or of all of Chromium's processes.
func cpuText(s Summary) string {
	c, a, b := s.stat(mCallerCPU), s.stat(mAnswererCPU), s.stat(mBrowserCPU)
	switch {
	case c.N > 0 && a.N > 0:
		return fmt.Sprintf("%.1f s + %.1f s", c.Median/1000, a.Median/1000)
	case b.N > 0:
		return fmt.Sprintf("%.1f s (all processes)", b.Median/1000)
	}
	return "–"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}
