package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// schemaVersion is the version of the JSON records; it changes when a field
// changes meaning or goes away.
const schemaVersion = 1

// Candidate types as the browser reports them (RTCIceCandidate.type).
const (
	typeHost  = "host"
	typeSrflx = "srflx"
	typePrflx = "prflx"
	typeRelay = "relay"
)

// Candidate is one icecandidate event of the page.
type Candidate struct {
	// ElapsedMS is the time since just before setLocalDescription.
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
	// SDP is the candidate attribute as the browser wrote it.
	SDP string `json:"candidate"`
}

// CandidateError is one icecandidateerror event: a STUN or TURN server that
// failed or did not answer.
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

// Run is one gathering in a fresh RTCPeerConnection. A nil time means the
// event never happened (no candidate of that type, or no completion before
// the timeout).
type Run struct {
	Record   string `json:"record"` // "run"
	Schema   int    `json:"schema"`
	Scenario string `json:"scenario"`
	Index    int    `json:"run"`

	FirstHostMS  *float64 `json:"first_host_ms"`
	FirstSrflxMS *float64 `json:"first_srflx_ms"`
	FirstRelayMS *float64 `json:"first_relay_ms"`
	// CompleteMS is when iceGatheringState became "complete".
	CompleteMS *float64 `json:"complete_ms"`
	// EndOfCandidatesMS is when the null candidate arrived.
	EndOfCandidatesMS *float64 `json:"end_of_candidates_ms"`
	// SetLocalDescriptionMS is when the setLocalDescription promise resolved.
	SetLocalDescriptionMS *float64 `json:"set_local_description_ms"`
	TimedOut              bool     `json:"timed_out"`

	Counts     Counts           `json:"counts"`
	Candidates []Candidate      `json:"candidates"`
	Errors     []CandidateError `json:"errors"`
}

// newRun derives a Run's first-candidate times and counts from the page's
// result.
func newRun(scenario string, index int, p pageResult) Run {
	r := Run{
		Record: "run", Schema: schemaVersion, Scenario: scenario, Index: index,
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

// Summary is the median of a scenario's runs.
type Summary struct {
	Record   string   `json:"record"` // "summary"
	Schema   int      `json:"schema"`
	Scenario string   `json:"scenario"`
	Servers  []string `json:"servers"`
	Runs     int      `json:"runs"`
	TimedOut int      `json:"timed_out"`

	FirstHost  Stat         `json:"first_host"`
	FirstSrflx Stat         `json:"first_srflx"`
	FirstRelay Stat         `json:"first_relay"`
	Complete   Stat         `json:"complete"`
	Counts     MedianCounts `json:"counts"`
	// ErrorURLs are the servers that reported an icecandidateerror in any
	// run, with their error texts.
	ErrorURLs []string `json:"error_urls"`
}

// summarize computes the medians of runs.
func summarize(scenario string, servers []string, runs []Run) Summary {
	s := Summary{Record: "summary", Schema: schemaVersion, Scenario: scenario,
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

// Scenario is one set of ICE servers and its runs.
type Scenario struct {
	Name    string
	Servers []string
	Runs    []Run
	Summary Summary
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
	Flags     []string
	Scenarios []Scenario
}

// writeJSONLines writes a header record, every run and every summary, one
// JSON object a line.
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

// writeMarkdown writes the summaries as a Markdown table.
func writeMarkdown(w io.Writer, rep Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Chromium: %s; page mode %s, loopback candidates %s\n\n", rep.Browser, rep.Mode, onOff(rep.Loopback))
	b.WriteString("| scenario | runs | first host | first srflx | first relay | complete | host/srflx/relay (median) | timed out |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sc := range rep.Scenarios {
		s := sc.Summary
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s/%s/%s | %d |\n", s.Scenario, s.Runs,
			fmtStat(s.FirstHost, s.Runs), fmtStat(s.FirstSrflx, s.Runs), fmtStat(s.FirstRelay, s.Runs),
			fmtStat(s.Complete, s.Runs), fmtCount(s.Counts.Host), fmtCount(s.Counts.Srflx),
			fmtCount(s.Counts.Relay), s.TimedOut)
	}
	b.WriteString("\nTimes are medians in ms from just before setLocalDescription; (k/n) marks a time that only k of n runs had.\n")
	_, err := io.WriteString(w, b.String())
	return err
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
