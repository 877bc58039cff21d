// Package webtest drives rtckit's browser call page (package signal/web)
// in headless Chromium through the page's window.rtckit test hook. Both
// the page's own tests (against a minimal hub) and the end-to-end tests
// (against `rtckit signal serve`) run the same scenario from here.
package webtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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
	t    testing.TB
	Tab  *browser.Tab
	Name string // the name it registers
}

// Open opens url in a new tab of b and waits for the page's hook and its
// hub connection.
func Open(t testing.TB, b *browser.Browser, url, name string) *Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), StepTimeout)
	defer cancel()
	tab, err := b.NewTab(ctx)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(tab.Close)
	if err := tab.Navigate(ctx, url); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	p := &Page{t: t, Tab: tab, Name: name}
	p.WaitState("hub connection", func(s State) bool { return s.Signaling == "open" })
	return p
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
	v, err := browser.Evaluate[T](ctx, p.Tab, js)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.Name, js, err)
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
	for {
		v, err := browser.Evaluate[T](ctx, p.Tab, js)
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
			st, _ := browser.Evaluate[State](context.WithoutCancel(p.t.Context()), p.Tab, "rtckit.state()")
			sb, _ := json.Marshal(st)
			p.t.Fatalf("%s: %s not reached within %s; last value %s (err %v); state %s", p.Name, what, StepTimeout, b, lastErr, sb)
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

// RunCall runs the call scenario against the page served at url: alice
// and bob register, chat, bob declines a first call and answers a second,
// both see the other's video playing, alice toggles her microphone and
// camera, alice sends bob a file that arrives with a matching SHA-256, and
// bob hangs up, which ends the call on both sides.
func RunCall(t *testing.T, b *browser.Browser, url string) {
	alice := Open(t, b, url, "alice")
	bob := Open(t, b, url, "bob")
	alice.Register()
	bob.Register()
	for _, p := range []*Page{alice, bob} {
		p.WaitState("both online", func(s State) bool {
			return slices.Contains(s.Users, "alice") && slices.Contains(s.Users, "bob")
		})
	}

	// chat
	t.Log("step: chat")
	{
		const text = `hi <b>bob</b> & "co"`
		if !Eval[bool](alice, fmt.Sprintf("rtckit.sendChat(%q)", text)) {
			t.Fatal("alice could not send a chat message")
		}
		for _, p := range []*Page{alice, bob} {
			p.WaitState("chat message", func(s State) bool {
				return slices.Contains(s.Messages, Message{Name: "alice", Text: text})
			})
		}
	}

	// decline
	t.Log("step: decline")
	{
		// Through the page's controls this time, as a person would.
		alice.Do(`document.querySelector('#users button[aria-label="Call bob"]').click()`)
		bob.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" && s.Call.Peer == "alice" })
		WaitFor(bob, "incoming call shown", `(() => { const d = document.getElementById("incoming"); return !d.hidden && d.textContent.includes("alice") })()`,
			func(shown bool) bool { return shown })
		bob.Do(`document.getElementById("decline").click()`)
		alice.WaitState("call declined", func(s State) bool { return s.Call == nil && strings.Contains(s.LastHangup, "bob") })
		bob.WaitState("call gone", func(s State) bool { return s.Call == nil })
	}

	// call
	t.Log("step: call")
	{
		alice.Do(`rtckit.call("bob")`)
		bob.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" })
		bob.Do("rtckit.answer()")
		for _, p := range []*Page{alice, bob} {
			st := p.WaitState("call connected", func(s State) bool {
				return s.Call != nil && s.Call.ConnectionState == "connected" && s.Call.LocalCandidateType != ""
			})
			switch st.Call.LocalCandidateType {
			case "host", "srflx", "prflx", "relay":
			default:
				t.Errorf("%s: local candidate type %q", p.Name, st.Call.LocalCandidateType)
			}
			if want := p.Name < st.Call.Peer; st.Call.Polite == nil || *st.Call.Polite != want {
				t.Errorf("%s: polite = %v, want %v", p.Name, st.Call.Polite, want)
			}
		}
		alice.WaitPlaying()
		bob.WaitPlaying()

		type track struct {
			Kind    string `json:"kind"`
			Enabled bool   `json:"enabled"`
		}
		for _, off := range []bool{true, false} {
			alice.Do(fmt.Sprintf("rtckit.setMuted(%t)", off))
			alice.Do(`document.getElementById("camera").click()`)
			tracks := Eval[[]track](alice, "rtckit.localTracks()")
			if len(tracks) != 2 {
				t.Fatalf("alice's local tracks %+v, want audio and video", tracks)
			}
			for _, tr := range tracks {
				if tr.Enabled == off {
					t.Errorf("muted/camera off %t: %s track enabled %t", off, tr.Kind, tr.Enabled)
				}
			}
			pressed := Eval[[]string](alice, `["mute", "camera"].map((id) => document.getElementById(id).getAttribute("aria-pressed"))`)
			if want := fmt.Sprint(off); pressed[0] != want || pressed[1] != want {
				t.Errorf("aria-pressed %q, want %s", pressed, want)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// file
	t.Log("step: file")
	{
		sum := sha256.Sum256(fileBytes(FileSize))
		want := hex.EncodeToString(sum[:])
		type result struct {
			OK     bool   `json:"ok"`
			SHA256 string `json:"sha256"`
			Error  string `json:"error"`
			Pauses int    `json:"pauses"`
		}
		start := time.Now()
		res := EvalWithin[result](alice, FileTimeout, fmt.Sprintf(`rtckit.sendFile("data.bin", `+fileJS+`)`, FileSize))
		if !res.OK || res.SHA256 != want {
			t.Fatalf("send: %+v, want ok with sha256 %s", res, want)
		}
		t.Logf("%d bytes sent in %s; alice paused %d times for the channel's buffer to drain",
			FileSize, time.Since(start).Round(time.Millisecond), res.Pauses)
		files := WaitFor(bob, "file received", "rtckit.receivedFiles()", func(fs []File) bool {
			return len(fs) == 1 && fs[0].Done
		})
		f := files[0]
		if f.OK == nil || !*f.OK || f.SHA256 != want || f.Expected != want || f.Size != FileSize || f.Name != "data.bin" {
			t.Fatalf("received %+v, want data.bin, %d bytes, sha256 %s", f, FileSize, want)
		}
	}

	// hangup
	t.Log("step: hangup")
	{
		bob.Do("rtckit.hangup()")
		bob.WaitState("call ended", func(s State) bool { return s.Call == nil })
		alice.WaitState("peer hung up", func(s State) bool { return s.Call == nil && strings.Contains(s.LastHangup, "bob hung up") })
	}
}

// RunResilience runs the recovery scenario against the page served at
// url: a duplicate name is made unique by the hub, both sides of a call
// restart ICE at once (colliding offers that perfect negotiation settles)
// and the call recovers, and a dropped hub connection is resumed under the
// same name while the call goes on.
func RunResilience(t *testing.T, b *browser.Browser, url string) {
	carol := Open(t, b, url, "carol")
	dave := Open(t, b, url, "dave")
	carol.Register()
	dave.Register()

	t.Log("step: duplicate name")
	{
		twin := Open(t, b, url, "carol")
		twin.Do(`rtckit.register("carol")`)
		st := twin.WaitState("unique name", func(s State) bool { return s.Name != "" })
		if st.Name == "carol" {
			t.Fatalf("second carol was accepted as %q", st.Name)
		}
		carol.WaitState("twin online", func(s State) bool { return slices.Contains(s.Users, st.Name) })
		twin.Tab.Close()
	}

	t.Log("step: call")
	carol.Do(`rtckit.call("dave")`)
	dave.WaitState("incoming call", func(s State) bool { return s.Call != nil && s.Call.Phase == "incoming" })
	dave.Do("rtckit.answer()")
	for _, p := range []*Page{carol, dave} {
		p.WaitState("call connected", func(s State) bool { return s.Call != nil && s.Call.ConnectionState == "connected" })
	}

	t.Log("step: simultaneous ICE restarts")
	{
		type restarts struct {
			Restarts       int    `json:"restarts"`
			Collisions     int    `json:"collisions"`
			IgnoredOffers  int    `json:"ignoredOffers"`
			SignalingState string `json:"signalingState"`
			Connection     string `json:"connectionState"`
		}
		// Both offers are sent before either arrives: a collision.
		carol.Do("rtckit.restartIce()")
		dave.Do("rtckit.restartIce()")
		for _, p := range []*Page{carol, dave} {
			s := WaitFor(p, "ICE restarted and settled", "rtckit.stats()", func(s restarts) bool {
				return s.Restarts >= 1 && s.SignalingState == "stable" && s.Connection == "connected"
			})
			t.Logf("%s: %d offer collisions, %d ignored", p.Name, s.Collisions, s.IgnoredOffers)
		}
		for _, p := range []*Page{carol, dave} {
			p.WaitPlaying()
			if errs := p.State().Errors; len(errs) > 0 {
				t.Errorf("%s: errors after the ICE restart: %q", p.Name, errs)
			}
		}
	}

	t.Log("step: hub connection dropped and resumed")
	{
		dave.WaitState("session token", func(s State) bool { return s.HasSession })
		dave.Do("rtckit.dropSignaling()")
		dave.WaitState("reconnected", func(s State) bool {
			return s.Reconnects >= 1 && s.Signaling == "open" && s.Name == "dave" && s.HasSession
		})
		const text = "back again"
		if !Eval[bool](dave, fmt.Sprintf("rtckit.sendChat(%q)", text)) {
			t.Fatal("dave could not chat after the reconnect")
		}
		carol.WaitState("message from the resumed dave", func(s State) bool {
			return slices.Contains(s.Messages, Message{Name: "dave", Text: text})
		})
		if st := carol.State(); st.Call == nil || st.Call.ConnectionState != "connected" {
			t.Errorf("carol's call after dave's reconnect: %+v", st.Call)
		}
	}

	t.Log("step: hangup")
	carol.Do("rtckit.hangup()")
	dave.WaitState("peer hung up", func(s State) bool { return s.Call == nil })
}
