package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// schemaVersion is the version of the JSON records; it changes when a field
// changes meaning or goes away. Version 2 added the gatherer of runs and
// summaries (a scenario has one summary per gatherer), the rtckit header
// record and the process wall-clock time.
const schemaVersion = 2

// Candidate types as the browser (RTCIceCandidate.type) and rtckit report them.
const (
	typeHost  = "host"
	typeSrflx = "srflx"
	typePrflx = "prflx"
	typeRelay = "relay"
)

// Candidate is one icecandidate event of the page, or one candidate of an
// rtckit report.
type Candidate struct {
	// ElapsedMS is the time since just before setLocalDescription
	// (Chromium) or since rtckit started gathering.
	ElapsedMS      float64 `json:"elapsed_ms"`
	Type           string  `json:"type"`
	Protocol       string  `json:"protocol"`
	Address        string  `json:"address"`
	Port           int     `json:"port"`
	RelayProtocol  string  `json:"relay_protocol,omitempty"`
	TCPType        string  `json:"tcp_type,omitempty"`
	RelatedAddress string  `json:"related_address,omitempty"`
	RelatedPort    int     `json:"related_port,omitempty"`
	Foundation     string  `json:"foundation"`
	Priority       uint32  `json:"priority"`
	// URL is the STUN or TURN server the candidate came from, empty for host.
	URL string `json:"url,omitempty"`
	// SDP is the candidate attribute as the browser wrote it, or as the
	// benchmark writes rtckit's candidate.
	SDP string `json:"candidate"`
}

// CandidateError is one icecandidateerror event, or a server that rtckit
// reports as failed: a STUN or TURN server that failed or did not answer.
type CandidateError struct {
	ElapsedMS float64 `json:"elapsed_ms"`
	URL       string  `json:"url"`
	Address   string  `json:"address,omitempty"`
	Port      int     `json:"port,omitempty"`
	ErrorCode int     `json:"error_code"`
	ErrorText string  `json:"error_text"`
}

// pageResult is what gather() in page/gather.js resolves to.
type pageResult struct {
	SetLocalDescriptionMS *float64         `json:"set_local_description_ms"`
	CompleteMS            *float64         `json:"complete_ms"`
	EndOfCandidatesMS     *float64         `json:"end_of_candidates_ms"`
	TimedOut              bool             `json:"timed_out"`
	Candidates            []Candidate      `json:"candidates"`
	Errors                []CandidateError `json:"errors"`
}

// Counts are candidates by type.
type Counts struct {
	Host  int `json:"host"`
	Srflx int `json:"srflx"`
	Prflx int `json:"prflx"`
	Relay int `json:"relay"`
}

// Run is one gathering: in a fresh RTCPeerConnection in Chromium, or by one
// `rtckit ice gather` process. A nil time means the event never happened (no
// candidate of that type, or no completion before the timeout) or does not
// apply to the gatherer.
type Run struct {
	Record   string `json:"record"` // "run"
	Schema   int    `json:"schema"`
	Gatherer string `json:"gatherer"` // "chromium" or "rtckit"
	Scenario string `json:"scenario"`
	Index    int    `json:"run"`

	FirstHostMS  *float64 `json:"first_host_ms"`
	FirstSrflxMS *float64 `json:"first_srflx_ms"`
	FirstRelayMS *float64 `json:"first_relay_ms"`
	// CompleteMS is when iceGatheringState became "complete" (Chromium),
	// or rtckit's duration_ms: every server answered or failed.
	CompleteMS *float64 `json:"complete_ms"`
	// EndOfCandidatesMS is when the null candidate arrived (Chromium only).
	EndOfCandidatesMS *float64 `json:"end_of_candidates_ms"`
	// SetLocalDescriptionMS is when the setLocalDescription promise
	// resolved (Chromium only).
	SetLocalDescriptionMS *float64 `json:"set_local_description_ms"`
	// WallMS is how long the rtckit process ran, from exec to exit, so
	// process start-up included (rtckit only).
	WallMS *float64 `json:"wall_ms"`
	// TimedOut is, for Chromium, no completion within -timeout; for
	// rtckit, a server that failed with a timeout.
	TimedOut bool `json:"timed_out"`

	Counts     Counts           `json:"counts"`
	Candidates []Candidate      `json:"candidates"`
	Errors     []CandidateError `json:"errors"`
}

// newRun derives a Run's first-candidate times and counts from the page's
// result, or from rtckit's in the same form.
func newRun(gatherer, scenario string, index int, p pageResult) Run {
	r := Run{
		Record: "run", Schema: schemaVersion, Gatherer: gatherer, Scenario: scenario, Index: index,
		CompleteMS: p.CompleteMS, EndOfCandidatesMS: p.EndOfCandidatesMS,
		SetLocalDescriptionMS: p.SetLocalDescriptionMS, TimedOut: p.TimedOut,
		Candidates: nonNil(p.Candidates), Errors: nonNil(p.Errors),
	}
	first := func(dst **float64, ms float64) {
		if *dst == nil || ms < **dst {
			*dst = &ms
		}
	}
	for _, c := range p.Candidates {
		switch c.Type {
		case typeHost:
			r.Counts.Host++
			first(&r.FirstHostMS, c.ElapsedMS)
		case typeSrflx:
			r.Counts.Srflx++
			first(&r.FirstSrflxMS, c.ElapsedMS)
		case typePrflx:
			r.Counts.Prflx++
		case typeRelay:
			r.Counts.Relay++
			first(&r.FirstRelayMS, c.ElapsedMS)
		}
	}
	return r
}

// Stat summarises one time over the runs that have it.
type Stat struct {
	// N is how many runs had the event.
	N        int      `json:"n"`
	MedianMS *float64 `json:"median_ms"`
	MinMS    *float64 `json:"min_ms"`
	MaxMS    *float64 `json:"max_ms"`
}

// MedianCounts are the median candidate counts by type.
type MedianCounts struct {
	Host  float64 `json:"host"`
	Srflx float64 `json:"srflx"`
	Prflx float64 `json:"prflx"`
	Relay float64 `json:"relay"`
}

// Summary is the median of one gatherer's runs of a scenario.
type Summary struct {
	Record   string   `json:"record"` // "summary"
	Schema   int      `json:"schema"`
	Gatherer string   `json:"gatherer"`
	Scenario string   `json:"scenario"`
	Servers  []string `json:"servers"`
	Runs     int      `json:"runs"`
	TimedOut int      `json:"timed_out"`

	FirstHost  Stat `json:"first_host"`
	FirstSrflx Stat `json:"first_srflx"`
	FirstRelay Stat `json:"first_relay"`
	Complete   Stat `json:"complete"`
	// Wall is the rtckit process's wall-clock time (N is 0 for Chromium).
	Wall   Stat         `json:"wall"`
	Counts MedianCounts `json:"counts"`
	// ErrorURLs are the servers that reported an icecandidateerror in any
	// run, with their error texts.
	ErrorURLs []string `json:"error_urls"`
}

// summarize computes the medians of one gatherer's runs.
func summarize(gatherer, scenario string, servers []string, runs []Run) Summary {
	s := Summary{Record: "summary", Schema: schemaVersion, Gatherer: gatherer, Scenario: scenario,
		Servers: nonNil(servers), Runs: len(runs), ErrorURLs: []string{}}
	stat := func(get func(Run) *float64) Stat {
		var v []float64
		for _, r := range runs {
			if p := get(r); p != nil {
				v = append(v, *p)
			}
		}
		if len(v) == 0 {
			return Stat{}
		}
		slices.Sort(v)
		med, lo, hi := median(v), v[0], v[len(v)-1]
		return Stat{N: len(v), MedianMS: &med, MinMS: &lo, MaxMS: &hi}
	}
	s.FirstHost = stat(func(r Run) *float64 { return r.FirstHostMS })
	s.FirstSrflx = stat(func(r Run) *float64 { return r.FirstSrflxMS })
	s.FirstRelay = stat(func(r Run) *float64 { return r.FirstRelayMS })
	s.Complete = stat(func(r Run) *float64 { return r.CompleteMS })
	s.Wall = stat(func(r Run) *float64 { return r.WallMS })
	count := func(get func(Counts) int) float64 {
		v := make([]float64, 0, len(runs))
		for _, r := range runs {
			v = append(v, float64(get(r.Counts)))
		}
		slices.Sort(v)
		return median(v)
	}
	s.Counts = MedianCounts{
		Host:  count(func(c Counts) int { return c.Host }),
		Srflx: count(func(c Counts) int { return c.Srflx }),
		Prflx: count(func(c Counts) int { return c.Prflx }),
		Relay: count(func(c Counts) int { return c.Relay }),
	}
	for _, r := range runs {
		if r.TimedOut {
			s.TimedOut++
		}
		for _, e := range r.Errors {
			msg := fmt.Sprintf("%s: %d %s", e.URL, e.ErrorCode, e.ErrorText)
			if e.ErrorCode == 0 { // rtckit's failures without a STUN error code
				msg = fmt.Sprintf("%s: %s", e.URL, e.ErrorText)
			}
			if !slices.Contains(s.ErrorURLs, msg) {
				s.ErrorURLs = append(s.ErrorURLs, msg)
			}
		}
	}
	slices.Sort(s.ErrorURLs)
	return s
}

// nonNil returns s, or an empty slice for nil, so JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
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

// Scenario is one set of ICE servers and one gatherer's runs against it.
type Scenario struct {
	Name     string
	Gatherer string
	Servers  []string
	Runs     []Run
	Summary  Summary
}

// RTCKitInfo describes the rtckit binary of -rtckit.
type RTCKitInfo struct {
	// Version is the first line of `rtckit version`.
	Version string
	// Args are the arguments every run passes, before the scenario's
	// --stun, --turn, --turn-user and --turn-pass.
	Args []string
}

// Report is everything one benchmark invocation measured.
type Report struct {
	// Browser is Chromium's user agent string.
	Browser string
	// Mode is the page mode (-mode) and Loopback whether loopback
	// candidates were allowed (-loopback).
	Mode     string
	Loopback bool
	// Flags are Chromium's command-line switches.
	Flags []string
	// RTCKit is nil unless -rtckit ran rtckit too.
	RTCKit *RTCKitInfo
	// Scenarios are in the order measured: per scenario Chromium's, then
	// rtckit's.
	Scenarios []Scenario
}

// writeJSONLines writes a header record (two with rtckit), every run and
// every summary, one JSON object a line.
func writeJSONLines(w io.Writer, rep Report) error {
	enc := json.NewEncoder(w)
	header := struct {
		Record   string   `json:"record"`
		Schema   int      `json:"schema"`
		Browser  string   `json:"browser"`
		Mode     string   `json:"mode"`
		Loopback bool     `json:"loopback"`
		Flags    []string `json:"flags"`
	}{"browser", schemaVersion, rep.Browser, rep.Mode, rep.Loopback, nonNil(rep.Flags)}
	if err := enc.Encode(header); err != nil {
		return err
	}
	if rep.RTCKit != nil {
		header := struct {
			Record  string   `json:"record"`
			Schema  int      `json:"schema"`
			Version string   `json:"version"`
			Args    []string `json:"args"`
		}{"rtckit", schemaVersion, rep.RTCKit.Version, nonNil(rep.RTCKit.Args)}
		if err := enc.Encode(header); err != nil {
			return err
		}
	}
	for _, sc := range rep.Scenarios {
		for _, r := range sc.Runs {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	}
	for _, sc := range rep.Scenarios {
		if err := enc.Encode(sc.Summary); err != nil {
			return err
		}
	}
	return nil
}

// writeMarkdown writes the summaries as a Markdown table. With rtckit it
// adds a gatherer column, so that each scenario has a Chromium row and an
// rtckit row, and a column for the rtckit process's wall-clock time.
func writeMarkdown(w io.Writer, rep Report) error {
	both := rep.RTCKit != nil
	var b strings.Builder
	fmt.Fprintf(&b, "Chromium: %s; page mode %s, loopback candidates %s\n\n", rep.Browser, rep.Mode, onOff(rep.Loopback))
	if both {
		fmt.Fprintf(&b, "rtckit: %s; `rtckit %s` plus each scenario's servers\n\n", rep.RTCKit.Version, strings.Join(rep.RTCKit.Args, " "))
	}
	// row writes one table row; gatherer and wall are left out without rtckit.
	row := func(scenario, gatherer, runs, host, srflx, relay, complete, wall, counts, timedOut string) {
		cells := []string{scenario}
		if both {
			cells = append(cells, gatherer)
		}
		cells = append(cells, runs, host, srflx, relay, complete)
		if both {
			cells = append(cells, wall)
		}
		cells = append(cells, counts, timedOut)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	row("scenario", "gatherer", "runs", "first host", "first srflx", "first relay", "complete", "process wall",
		"host/srflx/relay (median)", "timed out")
	row("---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
	for _, sc := range rep.Scenarios {
		s := sc.Summary
		row(s.Scenario, gathererLabel(s.Gatherer), fmt.Sprint(s.Runs),
			fmtStat(s.FirstHost, s.Runs), fmtStat(s.FirstSrflx, s.Runs), fmtStat(s.FirstRelay, s.Runs),
			fmtStat(s.Complete, s.Runs), fmtStat(s.Wall, s.Runs),
			fmtCount(s.Counts.Host)+"/"+fmtCount(s.Counts.Srflx)+"/"+fmtCount(s.Counts.Relay), fmt.Sprint(s.TimedOut))
	}
	if !both {
		b.WriteString("\nTimes are medians in ms from just before setLocalDescription; (k/n) marks a time that only k of n runs had.\n")
	} else {
		b.WriteString("\nTimes are medians in ms; (k/n) marks a time that only k of n runs had.\n\n" +
			"- Chromium: times from just before setLocalDescription; complete is iceGatheringState \"complete\"; " +
			"timed out counts runs without completion within -timeout.\n" +
			"- rtckit: times from the start of gathering inside the process; complete is the report's duration_ms " +
			"(every server answered or failed; no relay check); process wall is from exec to exit, process start-up included; " +
			"timed out counts runs in which a server failed with a timeout.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// gathererLabel is the name of a gatherer in the table.
func gathererLabel(g string) string {
	if g == gathererChromium {
		return "Chromium"
	}
	return g
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func fmtStat(s Stat, runs int) string {
	if s.MedianMS == nil {
		return "–"
	}
	out := fmt.Sprintf("%.1f ms", *s.MedianMS)
	if s.N != runs {
		out += fmt.Sprintf(" (%d/%d)", s.N, runs)
	}
	return out
}

func fmtCount(v float64) string {
	if v == float64(int(v)) {
		return fmt.Sprint(int(v))
	}
	return fmt.Sprintf("%.1f", v)
}
