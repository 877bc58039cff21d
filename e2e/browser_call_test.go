package e2e

import (
	"testing"

	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/signal/web/webtest"
)

// signalListening is the part of `rtckit --json signal serve`'s
// "listening" event the browser tests use.
type signalListening struct {
	Event string `json:"event"`
	// Addr is the bound address, here 127.0.0.1:<port>.
	Addr string `json:"addr"`
	// URL is the page's URL (with localhost for a loopback address).
	URL string `json:"url"`
}

// startSignalServe runs `rtckit --json signal serve --listen 127.0.0.1:0`
// and returns the URL of its call page at the bound address.
func startSignalServe(t *testing.T) string {
	t.Helper()
	var ev signalListening
	startJSONChild(t, rtckit(t.Context(), "--json", "signal", "serve", "--listen", "127.0.0.1:0"), &ev)
	if ev.Event != "listening" || ev.Addr == "" || ev.URL == "" {
		t.Fatalf("first event %+v, want listening with addr and url", ev)
	}
	return "http://" + ev.Addr + "/"
}

// TestBrowserCall runs the call page served by `rtckit signal serve` in
// two Chromium tabs: alice and bob register, chat, bob declines and then
// answers a call, both see the other's video play, microphone and camera
// toggle, a file crosses with a matching SHA-256 and a hang-up ends the
// call on both sides.
func TestBrowserCall(t *testing.T) {
	b := browser.NewForTest(t, browser.Options{AllowLoopback: true})
	webtest.RunCall(t, b, startSignalServe(t))
}

// TestBrowserCallResilience runs the recovery scenario against `rtckit
// signal serve`: a unique name for a duplicate, colliding ICE-restart
// offers settled by perfect negotiation, and a dropped hub connection
// resumed by its session token while the call goes on.
func TestBrowserCallResilience(t *testing.T) {
	b := browser.NewForTest(t, browser.Options{AllowLoopback: true})
	webtest.RunResilience(t, b, startSignalServe(t))
}
