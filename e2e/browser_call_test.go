package e2e

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/internal/firefox"
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
	// Cluster is set with --cluster.
	Cluster *struct {
		Name string `json:"name"`
		Node string `json:"node"`
	} `json:"cluster"`
}

// startSignalServe runs `rtckit --json signal serve --listen 127.0.0.1:0`
// with args added and returns the URL of its call page at the bound
// address.
func startSignalServe(t *testing.T, args ...string) string {
	t.Helper()
	_, url := startSignalServeEvent(t, args...)
	return url
}

// startSignalServeEvent is startSignalServe that also returns the
// listening event.
func startSignalServeEvent(t *testing.T, args ...string) (signalListening, string) {
	t.Helper()
	var ev signalListening
	argv := append([]string{"--json", "signal", "serve", "--listen", "127.0.0.1:0"}, args...)
	startJSONChild(t, rtckit(t.Context(), argv...), &ev)
	if ev.Event != "listening" || ev.Addr == "" || ev.URL == "" {
		t.Fatalf("first event %+v, want listening with addr and url", ev)
	}
	return ev, "http://" + ev.Addr + "/"
}

// natsReadyTimeout bounds the embedded NATS server's start.
const natsReadyTimeout = 10 * time.Second

// startNATS runs an embedded NATS server on a random loopback port for the
// test and returns its client URL.
func startNATS(t *testing.T) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(natsReadyTimeout) {
		t.Fatalf("NATS server not ready within %s", natsReadyTimeout)
	}
	return ns.ClientURL()
}

// chromium starts headless Chromium for the test, with loopback ICE.
func chromium(t *testing.T) webtest.Browser {
	return webtest.Chromium(browser.NewForTest(t, browser.Options{AllowLoopback: true}))
}

// firefoxBrowser starts headless Firefox for the test.
func firefoxBrowser(t *testing.T) webtest.Browser {
	return webtest.Firefox(firefox.NewForTest(t, firefox.Options{}))
}

// TestBrowserCall runs the call page served by `rtckit signal serve` in
// two Chromium tabs: alice and bob register, chat, bob declines and then
// answers a call, both see the other's video play, microphone and camera
// toggle, a file crosses with a matching SHA-256 and a hang-up ends the
// call on both sides.
func TestBrowserCall(t *testing.T) {
	b := chromium(t)
	url := startSignalServe(t)
	webtest.RunCall(t, webtest.Peer{Browser: b, URL: url}, webtest.Peer{Browser: b, URL: url})
}

// TestBrowserCallResilience runs the recovery scenario against `rtckit
// signal serve`: a unique name for a duplicate, colliding ICE-restart
// offers settled by perfect negotiation, and a dropped hub connection
// resumed by its session token while the call goes on.
func TestBrowserCallResilience(t *testing.T) {
	b := chromium(t)
	url := startSignalServe(t)
	webtest.RunResilience(t, webtest.Peer{Browser: b, URL: url}, webtest.Peer{Browser: b, URL: url})
}

// TestBrowserCallChromiumFirefox runs the call scenario with alice in
// Chromium and bob in Firefox: Chromium calls, Firefox declines and then
// answers, video plays both ways, and Chromium sends Firefox the file.
func TestBrowserCallChromiumFirefox(t *testing.T) {
	url := startSignalServe(t)
	webtest.RunCall(t, webtest.Peer{Browser: chromium(t), URL: url}, webtest.Peer{Browser: firefoxBrowser(t), URL: url})
}

// TestBrowserCallResilienceChromiumFirefox runs the recovery scenario
// with carol in Chromium and dave in Firefox: a duplicate name, both
// restart ICE at once (Firefox's offer wins, Chromium rolls its own back),
// and Firefox's hub connection is dropped and resumed during the call.
func TestBrowserCallResilienceChromiumFirefox(t *testing.T) {
	url := startSignalServe(t)
	webtest.RunResilience(t, webtest.Peer{Browser: chromium(t), URL: url}, webtest.Peer{Browser: firefoxBrowser(t), URL: url})
}

// TestBrowserCallTwoHubs joins two `rtckit signal serve` hubs through an
// embedded NATS server and runs the call scenario across them: alice in
// Firefox on the first hub, bob in Chromium on the second. They see each
// other online, chat, and complete a call with video both ways and a
// file from Firefox to Chromium, all signaled from hub to hub.
func TestBrowserCallTwoHubs(t *testing.T) {
	natsURL := startNATS(t)
	cluster := []string{"--cluster", natsURL, "--cluster-name", "e2e"}
	evA, urlA := startSignalServeEvent(t, cluster...)
	evB, urlB := startSignalServeEvent(t, cluster...)
	if evA.Cluster == nil || evB.Cluster == nil || evA.Cluster.Node == evB.Cluster.Node {
		t.Fatalf("cluster of the hubs: %+v and %+v, want two nodes", evA.Cluster, evB.Cluster)
	}
	if urlA == urlB {
		t.Fatalf("both hubs serve %s", urlA)
	}
	webtest.RunCall(t, webtest.Peer{Browser: firefoxBrowser(t), URL: urlA}, webtest.Peer{Browser: chromium(t), URL: urlB})
}
