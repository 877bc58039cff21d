package firefox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtckit/rtckit/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds each browser interaction in these tests.
const testTimeout = 30 * time.Second

const testPage = `<!doctype html>
<title>rtckit firefox test</title>
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

func TestPlan(t *testing.T) {
	value := func(prefs []pref, name string) any {
		i := slices.IndexFunc(prefs, func(p pref) bool { return p.name == name })
		if i < 0 {
			return nil
		}
		return prefs[i].value
	}
	tests := []struct {
		name    string
		prefs   map[string]any
		want    map[string]any
		wantErr string
	}{
		{
			name: "defaults",
			want: map[string]any{
				"media.navigator.streams.fake":                      true,
				"media.navigator.permission.disabled":               true,
				"media.peerconnection.ice.loopback":                 true,
				"media.peerconnection.ice.obfuscate_host_addresses": false,
				"app.update.disabledForTesting":                     true,
				"network.captive-portal-service.enabled":            false,
				"app.normandy.enabled":                              false,
				"browser.safebrowsing.malware.enabled":              false,
				"datareporting.healthreport.uploadEnabled":          false,
			},
		},
		{
			name:  "override and add",
			prefs: map[string]any{"media.peerconnection.ice.loopback": false, "x.count": 3, "x.name": "v"},
			want:  map[string]any{"media.peerconnection.ice.loopback": false, "x.count": 3, "x.name": "v"},
		},
		{name: "bad type", prefs: map[string]any{"x": 1.5}, wantErr: "want string, bool or int"},
		{name: "empty name", prefs: map[string]any{"": true}, wantErr: "invalid pref name"},
		{name: "quote in name", prefs: map[string]any{`a"b`: true}, wantErr: "invalid pref name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefs, err := Options{Prefs: tt.prefs}.plan()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				if got := value(prefs, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
			seen := map[string]bool{}
			for _, p := range prefs {
				if seen[p.name] {
					t.Errorf("%s set twice", p.name)
				}
				seen[p.name] = true
			}
		})
	}
}

func TestUserJS(t *testing.T) {
	got := string(userJS([]pref{{"a.b", true}, {"c", 0}, {"d", `x"y`}}))
	want := "user_pref(\"a.b\", true);\nuser_pref(\"c\", 0);\nuser_pref(\"d\", \"x\\\"y\");\n"
	if got != want {
		t.Errorf("user.js:\n%s\nwant:\n%s", got, want)
	}
}

func TestOutputEndpoint(t *testing.T) {
	var logged bytes.Buffer
	w := newOutput(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for _, chunk := range []string{"*** You are running in headless mode.\nWebDriver Bi", "Di listening on ws://127.0.0.1:36519\r\n",
		"WebDriver BiDi listening on ws://127.0.0.1:1\n"} {
		if _, err := io.WriteString(w, chunk); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-w.endpoint:
		if got != "ws://127.0.0.1:36519" {
			t.Errorf("endpoint %q", got)
		}
	default:
		t.Fatal("no endpoint announced")
	}
	select {
	case got := <-w.endpoint:
		t.Errorf("second endpoint %q", got)
	default:
	}
	if !strings.Contains(logged.String(), "headless mode") {
		t.Errorf("log lacks Firefox's output: %s", logged.String())
	}
}

func TestAvailableMissing(t *testing.T) {
	err := available("/nonexistent/firefox")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install firefox-esr") {
		t.Fatalf("available = %v, want ErrNotInstalled naming apt-get install firefox-esr", err)
	}
	if _, err := Start(t.Context(), Options{ExecPath: "/nonexistent/firefox"}); !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("Start = %v, want ErrNotInstalled", err)
	}
}

func testEvaluate(t *testing.T, b *Browser) {
	tab := openPage(t, b, serve(t).URL+"/eval")
	ctx := ctxFor(t)

	n, err := Evaluate[int](ctx, tab, `answer + 1`)
	if err != nil || n != 43 {
		t.Errorf("number: %v, %v; want 43", n, err)
	}
	s, err := Evaluate[string](ctx, tab, `greet("rtckit") // a trailing comment`)
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
	big, err := Evaluate[string](ctx, tab, `"x".repeat(1 << 20)`)
	if err != nil || len(big) != 1<<20 {
		t.Errorf("1 MiB string: %d bytes, %v", len(big), err)
	}
	if raw, err := tab.EvaluateJSON(ctx, `undefined`); err != nil || string(raw) != "null" {
		t.Errorf("undefined: %s, %v; want null", raw, err)
	}

	if _, err := Evaluate[int](ctx, tab, `(() => { throw new Error("boom"); })()`); !errors.Is(err, ErrScript) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("exception: %v, want ErrScript with boom", err)
	}
	if _, err := Evaluate[int](ctx, tab, `Promise.reject(new Error("nope"))`); !errors.Is(err, ErrScript) {
		t.Errorf("rejection: %v, want ErrScript", err)
	}
	if _, err := Evaluate[int](ctx, tab, `"text"`); err == nil {
		t.Error("a string decoded into an int")
	}
}

func testEvaluateHonoursContext(t *testing.T, b *Browser) {
	tab := openPage(t, b, serve(t).URL)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := Evaluate[int](ctx, tab, `new Promise(() => {})`) // never settles
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// The session and the tab are still usable after an abandoned call.
	if n, err := Evaluate[int](ctxFor(t), tab, `1 + 1`); err != nil || n != 2 {
		t.Fatalf("after timeout: %v, %v", n, err)
	}
}

func TestStartHonoursContext(t *testing.T) {
	testenv.Require(t, Available())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	b, err := Start(ctx, Options{})
	if err == nil {
		_ = b.Close()
		t.Fatal("Start with a cancelled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
}

func testCommandError(t *testing.T, b *Browser) {
	err := b.bidi.call(ctxFor(t), "browsingContext.navigate", map[string]any{"context": "nope", "url": "about:blank"}, nil)
	ce, ok := errors.AsType[*CommandError](err)
	if !ok || !errors.Is(err, ErrProtocol) || ce.Code != "no such frame" || ce.Method != "browsingContext.navigate" {
		t.Fatalf("err = %#v, want a CommandError no such frame", err)
	}
}
