package browser

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds each browser interaction in these tests.
const testTimeout = 20 * time.Second

const testPage = `<!doctype html>
<title>rtckit browser test</title>
<script>
window.answer = 42;
window.greet = (name) => "hello " + name;
console.log("page loaded", location.pathname);
</script>
<p id="p">page</p>`

// serve starts an HTTP server on 127.0.0.1 serving testPage at every path.
func serve(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, testPage)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// openPage opens a new tab on url.
func openPage(t *testing.T, b *Browser, url string) *Tab {
	t.Helper()
	ctx := ctxFor(t)
	tab, err := b.NewTab(ctx)
	if err != nil {
		t.Fatalf("NewTab: %v", err)
	}
	t.Cleanup(tab.Close)
	if err := tab.Navigate(ctx, url); err != nil {
		t.Fatalf("Navigate: %v", err)
	}
	return tab
}

func TestChromeFlags(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		want    []string // must be present
		notWant []string // must be absent
		wantErr string
	}{
		{
			name: "defaults",
			want: []string{"--headless=new", "--no-sandbox", "--disable-background-networking",
				"--disable-component-update", "--disable-quic", "--user-data-dir=/tmp/p",
				"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"},
			notWant: []string{"--allow-loopback-in-peer-connection"},
		},
		{
			name: "loopback and insecure origins",
			opts: Options{AllowLoopback: true, InsecureOrigins: []string{"http://10.0.0.1:8080", "http://a.test"}},
			want: []string{"--allow-loopback-in-peer-connection",
				"--unsafely-treat-insecure-origin-as-secure=http://10.0.0.1:8080,http://a.test"},
		},
		{
			name:    "extra flags override and remove defaults",
			opts:    Options{Flags: map[string]any{"headless": "old", "use-fake-ui-for-media-stream": false, "disable-features": "WebRtcHideLocalIpsWithMdns", "nope": false}},
			want:    []string{"--headless=old", "--disable-features=WebRtcHideLocalIpsWithMdns"},
			notWant: []string{"--headless=new", "--use-fake-ui-for-media-stream", "--nope"},
		},
		{name: "bad value type", opts: Options{Flags: map[string]any{"window-size": 3}}, wantErr: "want string or bool"},
		{name: "leading dashes", opts: Options{Flags: map[string]any{"--foo": true}}, wantErr: "without leading dashes"},
		{name: "managed flag", opts: Options{Flags: map[string]any{"user-data-dir": "/x"}}, wantErr: "managed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, err := tt.opts.chromeFlags("/tmp/p")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := args(flags)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("args lack %s: %q", w, got)
				}
			}
			for _, nw := range tt.notWant {
				if slices.Contains(got, nw) {
					t.Errorf("args have %s: %q", nw, got)
				}
			}
			seen := map[string]bool{}
			for _, f := range flags {
				if seen[f.name] {
					t.Errorf("flag %s twice", f.name)
				}
				seen[f.name] = true
			}
		})
	}
}

func TestAvailableMissing(t *testing.T) {
	err := available("/nonexistent/chromium")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install chromium") {
		t.Fatalf("available = %v, want ErrNotInstalled naming apt-get install chromium", err)
	}
	if _, err := Start(t.Context(), Options{ExecPath: "/nonexistent/chromium"}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start = %v, want ErrNotInstalled", err)
	}
}

func TestEvaluate(t *testing.T) {
	b := NewForTest(t, Options{})
	tab := openPage(t, b, serve(t).URL+"/eval")
	ctx := ctxFor(t)

	n, err := Evaluate[int](ctx, tab, `answer + 1`)
	if err != nil || n != 43 {
		t.Errorf("number: %v, %v; want 43", n, err)
	}
	s, err := Evaluate[string](ctx, tab, `greet("rtckit")`)
	if err != nil || s != "hello rtckit" {
		t.Errorf("string: %q, %v", s, err)
	}
	type info struct {
		Path   string  `json:"path"`
		Secure bool    `json:"secure"`
		Items  []int   `json:"items"`
		Ratio  float64 `json:"ratio"`
	}
	got, err := Evaluate[info](ctx, tab, `({path: location.pathname, secure: window.isSecureContext, items: [1, 2, 3], ratio: 0.5})`)
	want := info{Path: "/eval", Secure: true, Items: []int{1, 2, 3}, Ratio: 0.5}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("struct: %+v, %v; want %+v", got, err, want)
	}
	p, err := Evaluate[string](ctx, tab, `new Promise(resolve => setTimeout(() => resolve("later"), 50))`)
	if err != nil || p != "later" {
		t.Errorf("promise: %q, %v", p, err)
	}
	a, err := Evaluate[[]string](ctx, tab, `(async () => { await null; return ["a", "b"]; })()`)
	if err != nil || !slices.Equal(a, []string{"a", "b"}) {
		t.Errorf("async function: %q, %v", a, err)
	}

	if _, err := Evaluate[int](ctx, tab, `(() => { throw new Error("boom"); })()`); !errors.Is(err, ErrScript) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("exception: %v, want ErrScript with boom", err)
	}
	if _, err := Evaluate[int](ctx, tab, `Promise.reject(new Error("nope"))`); !errors.Is(err, ErrScript) {
		t.Errorf("rejection: %v, want ErrScript", err)
	}
	if _, err := Evaluate[int](ctx, tab, `null`); !errors.Is(err, chromedp.ErrJSNull) {
		t.Errorf("null into int: %v, want ErrJSNull", err)
	}
	if raw, err := tab.EvaluateJSON(ctx, `({a: [1, "x"], b: null})`); err != nil || string(raw) != `{"a":[1,"x"],"b":null}` {
		t.Errorf("EvaluateJSON: %s, %v", raw, err)
	}
	if raw, err := tab.EvaluateJSON(ctx, `new RTCSessionDescription({type: "offer", sdp: ""}) // toJSON`); err != nil || string(raw) != `{"type":"offer","sdp":""}` {
		t.Errorf("EvaluateJSON with toJSON: %s, %v", raw, err)
	}
	if raw, err := tab.EvaluateJSON(ctx, `undefined`); err != nil || string(raw) != "null" {
		t.Errorf("EvaluateJSON undefined: %s, %v; want null", raw, err)
	}
}

func TestEvaluateHonoursContext(t *testing.T) {
	b := NewForTest(t, Options{})
	tab := openPage(t, b, serve(t).URL)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := Evaluate[int](ctx, tab, `new Promise(() => {})`) // never settles
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The tab is still usable after an abandoned call.
	if n, err := Evaluate[int](ctxFor(t), tab, `1 + 1`); err != nil || n != 2 {
		t.Fatalf("after timeout: %v, %v", n, err)
	}
}

func TestGetUserMediaFakeCamera(t *testing.T) {
	b := NewForTest(t, Options{})
	tab := openPage(t, b, serve(t).URL)
	type track struct {
		Kind       string `json:"kind"`
		ReadyState string `json:"readyState"`
		Label      string `json:"label"`
		Width      int    `json:"width"`
	}
	tracks, err := Evaluate[[]track](ctxFor(t), tab, `(async () => {
		const s = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
		const out = s.getTracks().map(t => ({kind: t.kind, readyState: t.readyState, label: t.label,
			width: t.getSettings().width || 0}));
		s.getTracks().forEach(t => t.stop());
		return out;
	})()`)
	if err != nil {
		t.Fatalf("getUserMedia: %v", err)
	}
	var video *track
	for i := range tracks {
		if tracks[i].Kind == "video" {
			video = &tracks[i]
		}
	}
	if video == nil || video.ReadyState != "live" || video.Width == 0 {
		t.Fatalf("tracks = %+v, want a live video track with a size", tracks)
	}
	t.Logf("tracks: %+v", tracks)
}

func TestTwoTabs(t *testing.T) {
	b := NewForTest(t, Options{})
	srv := serve(t)
	tabs := []*Tab{openPage(t, b, srv.URL+"/alice"), openPage(t, b, srv.URL+"/bob")}
	if tabs[0].ID() == tabs[1].ID() {
		t.Fatalf("both tabs have id %d", tabs[0].ID())
	}
	// Both pages run timers at once: neither is throttled as a background tab.
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

// recordHandler is a slog.Handler that hands console records to a channel.
type recordHandler struct {
	console chan<- string
}

func (recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "console" {
		return nil
	}
	var text string
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "text" {
			text = a.Value.String()
		}
		return true
	})
	select {
	case h.console <- text:
	default: // the test only waits for a few; never block the browser
	}
	return nil
}
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h recordHandler) WithGroup(string) slog.Handler      { return h }

func TestConsoleToLogger(t *testing.T) {
	console := make(chan string, 16)
	b := NewForTest(t, Options{Logger: slog.New(recordHandler{console})})
	tab := openPage(t, b, serve(t).URL+"/console")
	if _, err := Evaluate[chromedp.Void](ctxFor(t), tab, `console.warn("marker", 7)`); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(testTimeout)
	var seen []string
	for {
		select {
		case text := <-console:
			seen = append(seen, text)
			if text == "marker 7" {
				return
			}
		case <-timeout:
			t.Fatalf("console message not logged; saw %q", seen)
		}
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	testenv.Require(t, Available())
	b, err := Start(ctxFor(t), Options{AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// Have a renderer and the network service running when the browser
	// closes.
	openPage(t, b, serve(t).URL)
	dir, pid := b.Dir(), b.PID()
	if pid == 0 || len(processesUsing(dir)) < 2 {
		t.Fatalf("pid %d, processes using the profile %v: want a running browser", pid, processesUsing(dir))
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if left := processesUsing(dir); len(left) > 0 {
		t.Errorf("processes still use the profile: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("profile %s still there (stat: %v)", dir, err)
	}
	if _, err := b.NewTab(ctxFor(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("NewTab after Close: %v, want ErrClosed", err)
	}
}

func TestCloseAfterKill(t *testing.T) {
	testenv.Require(t, Available())
	b, err := Start(ctxFor(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	openPage(t, b, serve(t).URL)
	dir := b.Dir()
	// Kill only the main process: its helpers become leftovers.
	p, err := os.FindProcess(b.PID())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if left := processesUsing(dir); len(left) > 0 {
		t.Errorf("processes still use the profile: %v", left)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("profile %s still there (stat: %v)", dir, err)
	}
}
