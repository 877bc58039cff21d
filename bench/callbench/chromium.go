package main

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/rtckit/rtckit/internal/browser"
)

//go:embed page
var pageFiles embed.FS

const (
	// runSlack is how much longer than the page's own timeout the
	// benchmark waits for a tab to answer.
	runSlack = 10 * time.Second
	// pollInterval is how often the caller tab polls getStats for the
	// first decoded video frame.
	pollInterval = 5 * time.Millisecond
	// Names of the two tabs on the hub.
	chromiumCaller, chromiumCallee = "chromium-caller", "chromium-callee"
)

// chromiumPair is headless Chromium with two tabs registered on the hub:
// the callee answers every call, the caller places them.
type chromiumPair struct {
	b              *browser.Browser
	caller, callee *browser.Tab
	calleeName     string
	ua             string
	stopPage       func()
}

// startChromium serves the page, starts Chromium and registers both tabs
// on hubWS. The tabs load the page from two sites (127.0.0.1 and
// localhost), so that Chromium runs them in two renderer processes, as two
// users' browsers would.
func startChromium(ctx context.Context, hubWS string, loopback bool, log *slog.Logger) (*chromiumPair, error) {
	port, stopPage, err := servePage()
	if err != nil {
		return nil, err
	}
	c := &chromiumPair{stopPage: stopPage}
	c.b, err = browser.Start(ctx, browser.Options{
		AllowLoopback: loopback, Logger: log,
		// Raw host addresses, as a call page holding media permission has.
		Flags: map[string]any{"disable-features": "WebRtcHideLocalIpsWithMdns"},
	})
	if err != nil {
		stopPage()
		return nil, err
	}
	open := func(host, name string) (*browser.Tab, string, error) {
		tab, err := c.b.NewTab(ctx)
		if err != nil {
			return nil, "", err
		}
		if err := tab.Navigate(ctx, fmt.Sprintf("http://%s:%d/", host, port)); err != nil {
			return nil, "", err
		}
		res, err := browser.Evaluate[struct {
			Name string `json:"name"`
		}](ctx, tab, call("connect", hubWS, name))
		if err != nil {
			return nil, "", fmt.Errorf("tab %s: %w", name, err)
		}
		return tab, res.Name, nil
	}
	if c.callee, c.calleeName, err = open("localhost", chromiumCallee); err == nil {
		c.caller, _, err = open("127.0.0.1", chromiumCaller)
	}
	if err == nil {
		c.ua, err = browser.Evaluate[string](ctx, c.caller, `navigator.userAgent`)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close stops Chromium and the page server.
func (c *chromiumPair) Close() {
	_ = c.b.Close()
	c.stopPage()
}

// call is the JavaScript expression that calls fn of bench.js with args.
func call(fn string, args ...any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		b, _ := json.Marshal(a)
		parts[i] = string(b)
	}
	return fmt.Sprintf(`import("/bench.js").then(m => m.%s(%s))`, fn, strings.Join(parts, ","))
}

// pageSetup is what setupRun in page/bench.js resolves to: ms since just
// before the offer was sent; nil for what did not happen.
type pageSetup struct {
	Answer          *float64 `json:"answer"`
	RemoteCandidate *float64 `json:"first_remote_candidate"`
	ICEConnected    *float64 `json:"ice_connected"`
	DTLSConnected   *float64 `json:"dtls_connected"`
	FirstRTP        *float64 `json:"first_rtp"`
	FirstFrame      *float64 `json:"first_frame"`
	FirstDecoded    *float64 `json:"first_decoded"`
	TimedOut        bool     `json:"timed_out"`
	Path            string   `json:"path"`
}

// setupRun times one call from the caller tab to the callee tab, both
// sending the fake camera and microphone, which are opened before and
// closed after the run.
func (c *chromiumPair) setupRun(ctx context.Context, index int, timeout time.Duration) Run {
	r := newRun(testSetup, pairChromium, index)
	ctx, cancel := context.WithTimeout(ctx, timeout+runSlack)
	defer cancel()
	var res pageSetup
	err := c.bothTabs(ctx, "prepareMedia")
	if err == nil {
		res, err = browser.Evaluate[pageSetup](ctx, c.caller, call("setupRun", map[string]any{
			"target": c.calleeName, "timeoutMs": timeout.Milliseconds(), "pollMs": pollInterval.Milliseconds(),
		}))
	}
	if rerr := c.bothTabs(ctx, "releaseMedia"); err == nil {
		err = rerr
	}
	r.set(mAnswer, res.Answer)
	r.set(mRemoteCandidate, res.RemoteCandidate)
	r.set(mICEConnected, res.ICEConnected)
	r.set(mDTLSConnected, res.DTLSConnected)
	r.set(mFirstRTP, res.FirstRTP)
	r.set(mFirstFrame, res.FirstFrame)
	r.set(mFirstDecoded, res.FirstDecoded)
	r.Path = res.Path
	switch {
	case err != nil:
		r.Error = err.Error()
	case res.TimedOut:
		r.Error = "timed out before every event happened"
	default:
		r.OK = true
	}
	return r
}

// bothTabs calls fn of bench.js without arguments in the callee tab, then
// in the caller tab.
func (c *chromiumPair) bothTabs(ctx context.Context, fn string) error {
	for _, t := range []*browser.Tab{c.callee, c.caller} {
		if _, err := browser.Evaluate[any](ctx, t, call(fn)); err != nil {
			return fmt.Errorf("%s: %w", fn, err)
		}
	}
	return nil
}

// pageFile is what fileRun in page/bench.js resolves to.
type pageFile struct {
	OK         bool    `json:"ok"`
	Error      string  `json:"error"`
	OpenMS     float64 `json:"open_ms"`
	TransferMS float64 `json:"transfer_ms"`
	MBps       float64 `json:"mbps"`
	Path       string  `json:"path"`
}

// pageReceive is what takeReceive in page/bench.js resolves to.
type pageReceive struct {
	OK   bool    `json:"ok"`
	MBps float64 `json:"mbps"`
}

// fileRun sends a file of size bytes, generated and hashed in the caller
// tab (once, outside the timing), to the callee tab on a call with only a
// data channel. It also records the CPU time all of Chromium's processes
// spent meanwhile, and the rate cpus would sustain at that cost.
func (c *chromiumPair) fileRun(ctx context.Context, index int, size int64, timeout time.Duration, cpus int) Run {
	r := newRun(testFile, pairChromium, index)
	ctx, cancel := context.WithTimeout(ctx, timeout+runSlack)
	defer cancel()
	cpu0 := treeCPU(c.b.PID())
	res, err := browser.Evaluate[pageFile](ctx, c.caller, call("fileRun", map[string]any{
		"target": c.calleeName, "size": size, "timeoutMs": timeout.Milliseconds(),
	}))
	if cpu := treeCPU(c.b.PID()) - cpu0; cpu > 0 {
		ms := float64(cpu.Microseconds()) / 1000
		r.set(mBrowserCPU, &ms)
		r.setCPUBound(size, cpu, cpus)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Path = res.Path
	r.set(mOpen, &res.OpenMS)
	r.set(mTransfer, &res.TransferMS)
	r.set(mSendMBps, &res.MBps)
	rec, err := browser.Evaluate[*pageReceive](ctx, c.callee, call("takeReceive"))
	if err == nil && rec != nil {
		r.set(mRecvMBps, &rec.MBps)
	}
	switch {
	case err != nil:
		r.Error = err.Error()
	case !res.OK:
		r.Error = "not acknowledged: " + res.Error
	case rec == nil || !rec.OK:
		r.Error = "the callee did not report a verified file"
	default:
		r.OK = true
	}
	return r
}

// servePage serves the embedded page on 127.0.0.1 (reachable as
// localhost too); both are secure contexts for WebRTC without any flag.
func servePage() (port int, stop func(), err error) {
	sub, err := fs.Sub(pageFiles, "page")
	if err != nil {
		return 0, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, fmt.Errorf("page server: %w", err)
	}
	srv := &http.Server{Handler: http.FileServerFS(sub), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return ln.Addr().(*net.TCPAddr).Port, func() {
		_ = srv.Close()
		<-done
	}, nil
}
