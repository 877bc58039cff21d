package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/internal/coturn"
	"github.com/rtckit/rtckit/peer"
)

//go:embed page
var pageFiles embed.FS

const (
	// runSlack is how much longer than -timeout the benchmark waits for the
	// page to report a run before it gives up on the browser.
	runSlack = 10 * time.Second
	// setupTimeout bounds starting coturn and Chromium and loading the page.
	setupTimeout = time.Minute
	// coturnUser and coturnPass are the credentials of -coturn's server.
	coturnUser, coturnPass = "rtckit", "rtckit"
)

// iceServer is one RTCIceServer of the page's RTCConfiguration.
type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// scenarioSpec is a named set of ICE servers to gather against.
type scenarioSpec struct {
	name    string
	servers []iceServer
}

// urls lists the servers' URIs.
func (s scenarioSpec) urls() []string {
	var out []string
	for _, srv := range s.servers {
		out = append(out, srv.URLs...)
	}
	return out
}

// coturnScenarioNames are the scenarios -coturn knows, in the default order.
var coturnScenarioNames = []string{"host", "stun", "turn-udp", "turn-tcp", "all"}

// coturnScenarios builds the named scenarios against one STUN/TURN server at
// hostport with long-term credentials user:pass.
func coturnScenarios(names []string, hostport, user, pass string) ([]scenarioSpec, error) {
	stun := iceServer{URLs: []string{"stun:" + hostport}}
	turnUDP := iceServer{URLs: []string{"turn:" + hostport + "?transport=udp"}, Username: user, Credential: pass}
	turnTCP := iceServer{URLs: []string{"turn:" + hostport + "?transport=tcp"}, Username: user, Credential: pass}
	if len(names) == 0 {
		return nil, errors.New("no scenarios given")
	}
	var out []scenarioSpec
	for _, n := range names {
		var servers []iceServer
		switch n {
		case "host":
			servers = []iceServer{}
		case "stun":
			servers = []iceServer{stun}
		case "turn-udp":
			servers = []iceServer{turnUDP}
		case "turn-tcp":
			servers = []iceServer{turnTCP}
		case "all":
			servers = []iceServer{stun, turnUDP, turnTCP}
		default:
			return nil, fmt.Errorf("unknown scenario %q (want %s)", n, strings.Join(coturnScenarioNames, ", "))
		}
		out = append(out, scenarioSpec{name: n, servers: servers})
	}
	return out, nil
}

// customScenario builds the "custom" scenario from -stun and -turn URIs,
// checking each against RFC 7064/7065 and its flag.
func customScenario(stuns, turns []string, user, pass string) (scenarioSpec, error) {
	sc := scenarioSpec{name: "custom"}
	for _, raw := range stuns {
		u, err := peer.ParseICEServerURI(raw)
		if err != nil {
			return sc, fmt.Errorf("-stun: %w", err)
		}
		if u.IsTURN() {
			return sc, fmt.Errorf("-stun %s is a TURN URI: use -turn", raw)
		}
		sc.servers = append(sc.servers, iceServer{URLs: []string{raw}})
	}
	for _, raw := range turns {
		u, err := peer.ParseICEServerURI(raw)
		if err != nil {
			return sc, fmt.Errorf("-turn: %w", err)
		}
		if !u.IsTURN() {
			return sc, fmt.Errorf("-turn %s is a STUN URI: use -stun", raw)
		}
		if user == "" || pass == "" {
			return sc, errors.New("-turn needs -user and -pass")
		}
		sc.servers = append(sc.servers, iceServer{URLs: []string{raw}, Username: user, Credential: pass})
	}
	return sc, nil
}

// Page modes (-mode): what a page is allowed to see decides which
// interfaces Chromium gathers on and how it shows host addresses.
const (
	// modeGranted is a page holding camera/microphone permission, as a
	// call page does: Chromium gathers on every interface, with raw host
	// addresses and TCP host candidates.
	modeGranted = "granted"
	// modePlain is a page without media permission, with mDNS
	// obfuscation off: Chromium gathers from one socket bound to the
	// any-address and shows the default route's address as host.
	modePlain = "plain"
	// modeMDNS is a page without media permission as browsers ship it: the
	// host candidate is a random .local name.
	modeMDNS = "mdns"
)

var modes = []string{modeGranted, modePlain, modeMDNS}

// browserOptions plans Chromium's options for opts.
func browserOptions(opts options, log *slog.Logger) browser.Options {
	bopts := browser.Options{AllowLoopback: opts.loopback, Logger: log, Flags: map[string]any{}}
	if opts.mode != modeGranted {
		// Without the fake permission prompt the page holds no media
		// permission (it never asks for any).
		bopts.Flags["use-fake-ui-for-media-stream"] = false
		bopts.Flags["use-fake-device-for-media-stream"] = false
	}
	if opts.mode != modeMDNS {
		bopts.Flags["disable-features"] = "WebRtcHideLocalIpsWithMdns"
	}
	return bopts
}

// run measures every scenario and writes the report to stdout.
func run(ctx context.Context, opts options, stdout io.Writer, log *slog.Logger) error {
	setup, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()

	var rtckit *RTCKitInfo
	if opts.rtckit != "" {
		// Check the binary before starting anything else.
		version, err := rtckitVersion(setup, opts.rtckit)
		if err != nil {
			return fmt.Errorf("-rtckit %s: %w", opts.rtckit, err)
		}
		args, err := rtckitArgs(nil, opts.loopback, opts.timeout)
		if err != nil {
			return err
		}
		rtckit = &RTCKitInfo{Version: version, Args: args}
	}

	var specs []scenarioSpec
	if opts.coturn {
		srv, hostport, err := startCoturn(setup)
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info("coturn started", "addr", hostport, "user", coturnUser)
		if specs, err = coturnScenarios(opts.scenarios, hostport, coturnUser, coturnPass); err != nil {
			return err
		}
	} else {
		sc, err := customScenario(opts.stun, opts.turn, opts.user, opts.pass)
		if err != nil {
			return err
		}
		specs = []scenarioSpec{sc}
	}

	pageURL, stopPage, err := servePage()
	if err != nil {
		return err
	}
	defer stopPage()

	if opts.mode == modeMDNS {
		log.Warn("mode mdns: Chromium announces its .local names by multicast on every non-loopback interface; run it in a network namespace of its own")
	}
	bopts := browserOptions(opts, log)
	b, err := browser.Start(setup, bopts)
	if err != nil {
		return err
	}
	defer b.Close()
	tab, err := b.NewTab(setup)
	if err != nil {
		return err
	}
	if err := tab.Navigate(setup, pageURL); err != nil {
		return err
	}
	ua, err := browser.Evaluate[string](setup, tab, `navigator.userAgent`)
	if err != nil {
		return err
	}
	// Fail early if the page's module does not load.
	if _, err := browser.Evaluate[bool](setup, tab, `import("/gather.js").then(() => true)`); err != nil {
		return fmt.Errorf("load page module: %w", err)
	}
	rep := Report{Browser: ua, Mode: opts.mode, Loopback: opts.loopback, RTCKit: rtckit}
	for _, a := range b.Args() {
		if !strings.HasPrefix(a, "--user-data-dir=") {
			rep.Flags = append(rep.Flags, a)
		}
	}

	for _, spec := range specs {
		sc, err := measure(ctx, gathererChromium, spec, opts, log, func(ctx context.Context, i int) (Run, error) {
			p, err := gatherOnce(ctx, tab, spec.servers, opts.timeout)
			return newRun(gathererChromium, spec.name, i, p), err
		})
		if err != nil {
			return err
		}
		rep.Scenarios = append(rep.Scenarios, sc)
		if rtckit == nil {
			continue
		}
		args, err := rtckitArgs(spec.servers, opts.loopback, opts.timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", spec.name, err)
		}
		sc, err = measure(ctx, gathererRTCKit, spec, opts, log, func(ctx context.Context, i int) (Run, error) {
			res, err := gatherRTCKit(ctx, opts.rtckit, args, opts.timeout)
			return newRTCKitRun(spec.name, i, res), err
		})
		if err != nil {
			return err
		}
		rep.Scenarios = append(rep.Scenarios, sc)
	}
	if opts.markdown {
		return writeMarkdown(stdout, rep)
	}
	return writeJSONLines(stdout, rep)
}

// measure gathers -warmup unreported times, then -runs times, with once,
// and summarises the runs.
func measure(ctx context.Context, gatherer string, spec scenarioSpec, opts options, log *slog.Logger,
	once func(ctx context.Context, index int) (Run, error),
) (Scenario, error) {
	sc := Scenario{Name: spec.name, Gatherer: gatherer, Servers: spec.urls()}
	for i := -opts.warmup; i < opts.runs; i++ {
		r, err := once(ctx, i)
		if err != nil {
			return sc, fmt.Errorf("%s %s run %d: %w", gatherer, spec.name, i, err)
		}
		if i < 0 {
			continue
		}
		logRun(log, r)
		sc.Runs = append(sc.Runs, r)
	}
	sc.Summary = summarize(gatherer, sc.Name, sc.Servers, sc.Runs)
	return sc, nil
}

// gatherOnce runs gather() in the page once.
func gatherOnce(ctx context.Context, tab *browser.Tab, servers []iceServer, timeout time.Duration) (pageResult, error) {
	cfg, err := json.Marshal(struct {
		IceServers []iceServer `json:"iceServers"`
		TimeoutMs  int64       `json:"timeoutMs"`
	}{servers, timeout.Milliseconds()})
	if err != nil {
		return pageResult{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout+runSlack)
	defer cancel()
	return browser.Evaluate[pageResult](ctx, tab, `import("/gather.js").then(m => m.gather(`+string(cfg)+`))`)
}

func logRun(log *slog.Logger, r Run) {
	ms := func(p *float64) any {
		if p == nil {
			return "-"
		}
		return strconv.FormatFloat(*p, 'f', 1, 64)
	}
	log.Info("run", "gatherer", r.Gatherer, "scenario", r.Scenario, "run", r.Index, "host", ms(r.FirstHostMS), "srflx", ms(r.FirstSrflxMS),
		"relay", ms(r.FirstRelayMS), "complete", ms(r.CompleteMS), "wall", ms(r.WallMS),
		"counts", fmt.Sprintf("%d/%d/%d", r.Counts.Host, r.Counts.Srflx, r.Counts.Relay), "errors", len(r.Errors), "timed_out", r.TimedOut)
	for _, c := range r.Candidates {
		log.Debug("candidate", "gatherer", r.Gatherer, "scenario", r.Scenario, "run", r.Index, "ms", c.ElapsedMS, "sdp", c.SDP, "url", c.URL)
	}
	for _, e := range r.Errors {
		log.Debug("candidate error", "gatherer", r.Gatherer, "scenario", r.Scenario, "run", r.Index, "ms", e.ElapsedMS, "url", e.URL,
			"code", e.ErrorCode, "text", e.ErrorText)
	}
}

// servePage serves the embedded page on 127.0.0.1, a secure context for
// WebRTC without any flag.
func servePage() (url string, stop func(), err error) {
	sub, err := fs.Sub(pageFiles, "page")
	if err != nil {
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("page server: %w", err)
	}
	srv := &http.Server{Handler: http.FileServerFS(sub), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return "http://" + ln.Addr().String() + "/", func() {
		_ = srv.Close()
		<-done
	}, nil
}

// startCoturn starts coturn on 127.0.0.1 with the benchmark's credentials
// and returns it with its host:port.
func startCoturn(ctx context.Context) (*coturn.Server, string, error) {
	srv, err := coturn.StartOnFreePorts(ctx, coturn.Config{
		ListenIPs:          []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Users:              []string{coturnUser + ":" + coturnPass},
		AllowLoopbackPeers: true,
	})
	if err != nil {
		return nil, "", err
	}
	return srv, srv.Addr().String(), nil
}
