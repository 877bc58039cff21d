package firefox

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func testGetUserMediaFakeCamera(t *testing.T, b *Browser) {
	tab := openPage(t, b, serve(t).URL)
	type track struct {
		Kind       string `json:"kind"`
		ReadyState string `json:"readyState"`
		Width      int    `json:"width"`
	}
	tracks, err := Evaluate[[]track](ctxFor(t), tab, `(async () => {
		const s = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
		const out = s.getTracks().map(t => ({kind: t.kind, readyState: t.readyState, width: t.getSettings().width || 0}));
		s.getTracks().forEach(t => t.stop());
		return out;
	})()`)
	if err != nil {
		t.Fatalf("getUserMedia: %v", err)
	}
	kinds := map[string]bool{}
	for _, tr := range tracks {
		kinds[tr.Kind] = tr.ReadyState == "live" && (tr.Kind == "audio" || tr.Width > 0)
	}
	if !kinds["audio"] || !kinds["video"] {
		t.Fatalf("tracks = %+v, want live audio and video (with a size)", tracks)
	}
}

// testLocalCall connects two peer connections in one page over host
// candidates and reads what Firefox's getStats reports: the prefs must give
// candidates with plain IP addresses (no mDNS names) and decoded video.
func testLocalCall(t *testing.T, b *Browser) {
	tab := openPage(t, b, serve(t).URL)
	type result struct {
		Candidates    []string `json:"candidates"`
		Local         string   `json:"local"`
		LocalType     string   `json:"localType"`
		FramesDecoded int      `json:"framesDecoded"`
		Types         []string `json:"types"`
	}
	res, err := Evaluate[result](ctxFor(t), tab, `(async () => {
		const stream = await navigator.mediaDevices.getUserMedia({video: true});
		const a = new RTCPeerConnection(), b = new RTCPeerConnection();
		const candidates = [];
		a.onicecandidate = (e) => { if (e.candidate) { candidates.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
		b.onicecandidate = (e) => { if (e.candidate) a.addIceCandidate(e.candidate); };
		stream.getTracks().forEach((t) => a.addTrack(t, stream));
		await a.setLocalDescription();
		await b.setRemoteDescription(a.localDescription);
		await b.setLocalDescription();
		await a.setRemoteDescription(b.localDescription);
		const stats = async () => {
			let pair = null, frames = 0;
			const r = await b.getStats();
			for (const s of r.values()) {
				if (s.type === "candidate-pair" && (s.selected || (s.nominated && s.state === "succeeded"))) pair = s;
				if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
			}
			const local = pair && r.get(pair.localCandidateId);
			const types = [...new Set([...r.values()].map((s) => s.type))].sort();
			return {local: local?.address ?? "", localType: local?.candidateType ?? "", framesDecoded: frames, types};
		};
		for (;;) {
			const s = await stats();
			if (s.local && s.framesDecoded > 5) {
				a.close(); b.close(); stream.getTracks().forEach((t) => t.stop());
				return {candidates, ...s};
			}
			await new Promise((r) => setTimeout(r, 100));
		}
	})()`)
	if err != nil {
		t.Fatalf("loopback call: %v", err)
	}
	t.Logf("candidates %q; selected local %s (%s); %d frames decoded; stats types %q",
		res.Candidates, res.Local, res.LocalType, res.FramesDecoded, res.Types)
	for _, c := range res.Candidates {
		if strings.Contains(c, ".local ") {
			t.Errorf("obfuscated host candidate %q", c)
		}
	}
	if res.LocalType != "host" || net.ParseIP(res.Local) == nil {
		t.Errorf("selected local candidate %q (%s), want a host candidate with an IP address", res.Local, res.LocalType)
	}
}

func testTwoTabs(t *testing.T, b *Browser) {
	srv := serve(t)
	tabs := []*Tab{openPage(t, b, srv.URL+"/alice"), openPage(t, b, srv.URL+"/bob")}
	if tabs[0].ID() == tabs[1].ID() {
		t.Fatalf("both tabs have id %d", tabs[0].ID())
	}
	// Both pages run timers at once: neither is throttled in the background.
	var wg sync.WaitGroup
	got := make([]string, len(tabs))
	errs := make([]error, len(tabs))
	for i, tab := range tabs {
		wg.Go(func() {
			got[i], errs[i] = Evaluate[string](ctxFor(t), tab, `new Promise(r => {
				let n = 0;
				const id = setInterval(() => { if (++n === 20) { clearInterval(id); r(location.pathname + " " + document.visibilityState); } }, 5);
			})`)
		})
	}
	wg.Wait()
	for i, want := range []string{"/alice visible", "/bob visible"} {
		if errs[i] != nil || got[i] != want {
			t.Errorf("tab %d: %q, %v; want %q", i, got[i], errs[i], want)
		}
	}
	// Closing one tab leaves the other working.
	tabs[0].Close()
	if _, err := Evaluate[int](ctxFor(t), tabs[0], `1`); !errors.Is(err, ErrClosed) {
		t.Errorf("closed tab: %v, want ErrClosed", err)
	}
	if s, err := Evaluate[string](ctxFor(t), tabs[1], `location.pathname`); err != nil || s != "/bob" {
		t.Errorf("other tab: %q, %v", s, err)
	}
}

// TestBrowser runs the tests that need a running Firefox in one browser,
// since every start takes seconds.
func TestBrowser(t *testing.T) {
	console := make(chan string, 16)
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	b := NewForTest(t, Options{Logger: slog.New(recordHandler{console, slog.NewTextHandler(t.Output(), debug)})})
	for _, tt := range []struct {
		name string
		test func(*testing.T, *Browser)
	}{
		{"Evaluate", testEvaluate},
		{"EvaluateHonoursContext", testEvaluateHonoursContext},
		{"CommandError", testCommandError},
		{"GetUserMediaFakeCamera", testGetUserMediaFakeCamera},
		{"LocalCall", testLocalCall},
		{"TwoTabs", testTwoTabs},
		{"ConsoleToLogger", func(t *testing.T, b *Browser) { testConsoleToLogger(t, b, console) }},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, b) })
	}
}

// recordHandler is a slog.Handler that hands the text of console records
// starting with "marker" to a channel and passes every record on to next.
type recordHandler struct {
	console chan<- string
	next    slog.Handler
}

func (recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "console" {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "text" && strings.HasPrefix(a.Value.String(), "marker") {
				select {
				case h.console <- a.Value.String():
				default: // never block the browser
				}
			}
			return true
		})
	}
	return h.next.Handle(ctx, r)
}
func (h recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recordHandler{h.console, h.next.WithAttrs(as)}
}
func (h recordHandler) WithGroup(g string) slog.Handler {
	return recordHandler{h.console, h.next.WithGroup(g)}
}

func testConsoleToLogger(t *testing.T, b *Browser, console <-chan string) {
	tab := openPage(t, b, serve(t).URL+"/console")
	if _, err := tab.EvaluateJSON(ctxFor(t), `console.warn("marker", 7)`); err != nil {
		t.Fatal(err)
	}
	select {
	case text := <-console:
		if text != "marker 7" {
			t.Fatalf("console text %q, want marker 7", text)
		}
	case <-time.After(testTimeout):
		t.Fatal("console message not logged")
	}
}
