// Package webtest drives rtckit's browser call page (package signal/web)
// in headless Chromium and Firefox through the page's window.rtckit test
// hook. The end-to-end tests (against `rtckit signal serve`, one hub or
// two joined in a cluster) run the scenarios from here, with both ends of a
// call in one browser or one end in each.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rtckit/rtckit/internal/browser"
)

const (
	// StepTimeout bounds each waited-for step of a scenario (a name
	// accepted, a message delivered, a call connected, a file received).
	StepTimeout = 20 * time.Second

	// PollInterval is how often a waited-for condition is re-evaluated.
	PollInterval = 100 * time.Millisecond

	// pollTimeout bounds one evaluation while a condition is polled.
	pollTimeout = 5 * time.Second

	// stateTimeout bounds reading the page's state for a failure message.
	stateTimeout = 5 * time.Second

	// FileSize is the size of the file the scenario transfers: several
	// full 16 KiB chunks and a short last one, enough to fill the sender's
	// 1 MiB buffer and exercise its flow control.
	FileSize = 2<<20 + 12_345

	// FileTimeout bounds the file transfer. A first large transfer on a
	// fresh connection can take several seconds in headless Chromium while
	// the SCTP association ramps up next to the video streams.
	FileTimeout = 60 * time.Second
)

// State mirrors window.rtckit.state().
type State struct {
	Signaling  string    `json:"signaling"`
	ID         any       `json:"id"`
	Name       string    `json:"name"`
	HasSession bool      `json:"hasSession"`
	Reconnects int       `json:"reconnects"`
	Users      []string  `json:"users"`
	Messages   []Message `json:"messages"`
	Call       *Call     `json:"call"`
	LastHangup string    `json:"lastHangup"`
	Errors     []string  `json:"errors"`
}

// Message is one chat message as the page shows it.
type Message struct {
	Name string `json:"name"`
	Text string `json:"text"`
}

// Call is the page's current call.
type Call struct {
	Peer               string `json:"peer"`
	Phase              string `json:"phase"`
	Polite             *bool  `json:"polite"`
	ConnectionState    string `json:"connectionState"`
	IceConnectionState string `json:"iceConnectionState"`
	SignalingState     string `json:"signalingState"`
	LocalCandidateType string `json:"localCandidateType"`
}

// Stats mirrors window.rtckit.stats().
type Stats struct {
	ConnectionState     string `json:"connectionState"`
	LocalCandidateType  string `json:"localCandidateType"`
	RemoteCandidateType string `json:"remoteCandidateType"`
	Protocol            string `json:"protocol"`
	FramesDecoded       int    `json:"framesDecoded"`
}

// File is one entry of window.rtckit.receivedFiles() or sentFiles().
type File struct {
	Name     string `json:"name"`
	Size     int    `json:"size"`
	Received int    `json:"received"`
	Done     bool   `json:"done"`
	OK       *bool  `json:"ok"`
	SHA256   string `json:"sha256"`
	Expected string `json:"expected"`
	Error    string `json:"error"`
}

// Video mirrors window.rtckit.remoteVideo().
type Video struct {
	CurrentTime float64 `json:"currentTime"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Paused      bool    `json:"paused"`
}

// Page is one call page in a browser tab.
type Page struct {
	t       testing.TB
	Tab     Tab
	Name    string // the name it registers
	Browser string // the browser's name, for messages
}

// Open opens url in a new tab of Chromium b and waits for the page's hook
// and its hub connection.
func Open(t testing.TB, b *browser.Browser, url, name string) *Page {
	t.Helper()
	return OpenIn(t, Chromium(b), url, name)
}

// OpenIn opens url in a new tab of b and waits for the page's hook and
// its hub connection.
func OpenIn(t testing.TB, b Browser, url, name string) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), StepTimeout)
	defer cancel()
	tab, err := b.NewTab(ctx)
	if err != nil {
		t.Fatalf("%s (%s): %v", name, b.Name(), err)
	}
	t.Cleanup(tab.Close)
	if err := tab.Navigate(ctx, url); err != nil {
		t.Fatalf("%s (%s): %v", name, b.Name(), err)
	}
	p := &Page{t: t, Tab: tab, Name: name, Browser: b.Name()}
	p.WaitState("hub connection", func(s State) bool { return s.Signaling == "open" })
	return p
}

// label names the page in messages: its name and browser.
func (p *Page) label() string { return p.Name + " (" + p.Browser + ")" }

// evaluate runs js in tab and decodes its JSON value into a T.
func evaluate[T any](ctx context.Context, tab Tab, js string) (T, error) {
	var v T
	data, err := tab.EvaluateJSON(ctx, js)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode %.200s: %w", data, err)
	}
	return v, nil
}

// Eval evaluates js in the page (awaiting a promise) within StepTimeout
// and decodes the result.
func Eval[T any](p *Page, js string) T {
	p.t.Helper()
	return EvalWithin[T](p, StepTimeout, js)
}

// EvalWithin is Eval with its own timeout.
func EvalWithin[T any](p *Page, timeout time.Duration, js string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), timeout)
	defer cancel()
	v, err := evaluate[T](ctx, p.Tab, js)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.label(), js, err)
	}
	return v
}

// Do evaluates js for its effect; a returned promise is awaited.
func (p *Page) Do(js string) {
	p.t.Helper()
	Eval[bool](p, "Promise.resolve("+js+").then(() => true)")
}

// State reads the page's state.
func (p *Page) State() State {
	p.t.Helper()
	return Eval[State](p, "rtckit.state()")
}

// WaitFor polls js until ok accepts its value, failing the test after
// StepTimeout with the last value seen.
func WaitFor[T any](p *Page, what, js string, ok func(T) bool) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.t.Context(), StepTimeout)
	defer cancel()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	var last T
	var lastErr error
	var seen, failed int
	for {
		// A single slow evaluation (a getStats call that does not
		// settle) must not use up the whole step.
		pctx, cancelPoll := context.WithTimeout(ctx, pollTimeout)
		v, err := evaluate[T](pctx, p.Tab, js)
		cancelPoll()
		if err == nil {
			seen++
		} else {
			failed++
		}
		if err == nil && ok(v) {
			return v
		}
		if err == nil {
			last = v
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			b, _ := json.Marshal(last)
			sctx, cancel := context.WithTimeout(context.WithoutCancel(p.t.Context()), stateTimeout)
			st, _ := p.Tab.EvaluateJSON(sctx, "rtckit.state()")
			cancel()
			p.t.Fatalf("%s: %s not reached within %s; last value %s (%d evaluations succeeded, %d failed, the last failure: %v); state %s",
				p.label(), what, StepTimeout, b, seen, failed, lastErr, st)
		case <-tick.C:
		}
	}
}

// WaitState polls the page's state until ok accepts it.
func (p *Page) WaitState(what string, ok func(State) bool) State {
	p.t.Helper()
	return WaitFor(p, what, "rtckit.state()", ok)
}

// Register registers the page's name and waits until the hub accepted it.
func (p *Page) Register() {
	p.t.Helper()
	p.Do(fmt.Sprintf("rtckit.register(%q)", p.Name))
	p.WaitState("name accepted", func(s State) bool { return s.Name == p.Name })
}

// fileJS is a JavaScript expression for the scenario's file contents.
const fileJS = "Uint8Array.from({length: %d}, (_, i) => (i * 31 + (i >> 9)) & 255)"

// fileBytes returns the same bytes as fileJS in Go.
func fileBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*31 + (i >> 9)) & 255)
	}
	return b
}

// WaitPlaying waits until the page decodes remote video frames and its
// remote <video> element advances.
func (p *Page) WaitPlaying() {
	p.t.Helper()
	first := WaitFor(p, "remote video frames", "rtckit.framesDecoded()", func(n int) bool { return n > 0 })
	WaitFor(p, "more remote video frames", "rtckit.framesDecoded()", func(n int) bool { return n > first+5 })
	t0 := WaitFor(p, "remote video playing", "rtckit.remoteVideo()", func(v Video) bool { return v.CurrentTime > 0 && v.Width > 0 })
	WaitFor(p, "remote video advancing", "rtckit.remoteVideo()", func(v Video) bool { return v.CurrentTime > t0.CurrentTime+0.2 })
}
