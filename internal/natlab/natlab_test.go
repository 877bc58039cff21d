package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain fails the run when tests leave goroutines or namespaces behind.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		if err := checkNoLeaks(before); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakTimeout bounds how long TestMain waits for goroutines to wind down.
const leakTimeout = 5 * time.Second

func checkNoLeaks(baseline int) error {
	deadline := time.Now().Add(leakTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return fmt.Errorf("leaked goroutines: %d > %d\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		<-tick.C
	}
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if pid, ok := parseID(e.Name()); ok && pid == os.Getpid() {
			return fmt.Errorf("leaked namespace %s", e.Name())
		}
	}
	return nil
}

// Timeouts of the tests' own network exchanges.
const (
	// replyTimeout is how long a test waits for one UDP reply that should come.
	replyTimeout = 2 * time.Second
	// silenceTimeout is how long a test waits before it takes a missing reply
	// as dropped.
	silenceTimeout = 300 * time.Millisecond
	// windowTimeout is how long echoSuccess waits for a window's replies.
	windowTimeout = 150 * time.Millisecond
)

// startEcho serves UDP echo on addr in namespace ns until the test ends;
// replies are tag, "|", then the request.
func startEcho(t *testing.T, l *Lab, ns string, addr netip.AddrPort, tag string) {
	t.Helper()
	pc, err := l.ListenPacket(ns, "udp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(tag+"|"), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
}

// clientConn is a UDP socket in the site's client namespace.
func clientConn(t *testing.T, l *Lab, s *Site, port int) *net.UDPConn {
	t.Helper()
	c, err := l.ListenUDP(s.Client, "udp4", &net.UDPAddr{IP: s.ClientIP.AsSlice(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg to to and returns the first reply, or an error after
// timeout.
func roundTrip(c *net.UDPConn, to netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	if _, err := c.WriteToUDPAddrPort([]byte(msg), to); err != nil {
		return "", err
	}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestNATKinds builds one site per NAT kind, runs coturn's RFC 5780 client
// from every site at once and checks each verdict against NATKind.Behavior.
func TestNATKinds(t *testing.T) {
	t.Parallel()
	kinds := NATKinds()
	cfg := Config{Require: []string{TurnServer, NatDiscoveryTool}}
	for _, k := range kinds {
		cfg.Sites = append(cfg.Sites, SiteConfig{NAT: k})
	}
	l := NewForTest(t, cfg)
	if _, err := StartCoturn(t.Context(), l); err != nil {
		t.Fatal(err)
	}

	verdicts := make([]Verdict, len(kinds))
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, s := range l.Sites {
		wg.Go(func() { verdicts[i], errs[i] = s.NatDiscovery(t.Context(), l.ServerIPs[0]) })
	}
	wg.Wait()

	for i, kind := range kinds {
		t.Run(string(kind), func(t *testing.T) {
			site, v := l.Sites[i], verdicts[i]
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			t.Logf("%+v in %v; mapped %v", v.NATBehavior, v.Took.Round(time.Millisecond), v.Mapped)
			if *update {
				if err := os.WriteFile(natDiscoveryGolden(kind), []byte(v.Raw), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if want := kind.Behavior(); v.NATBehavior != want {
				t.Errorf("natdiscovery verdict %+v, want %+v\n%s", v.NATBehavior, want, v.Raw)
			}
			want := site.WAN
			if kind == NATNone {
				want = site.ClientIP
			}
			for _, m := range v.Mapped {
				if m.Addr() != want {
					t.Errorf("mapped address %v, want %v", m, want)
				}
				if kind == NATAddressDependent && (m.Port() < ADMPortBase || m.Port() >= ADMPortBase+ADMPortCount) {
					t.Errorf("mapped port %d outside %d+%d", m.Port(), ADMPortBase, ADMPortCount)
				}
			}
		})
	}
}

// TestCoturnRelay relays through coturn from behind a symmetric NAT, the
// case TURN exists for: coturn's own client makes two allocations and sends
// between them.
func TestCoturnRelay(t *testing.T) {
	t.Parallel()
	const uclient = "turnutils_uclient"
	l := NewForTest(t, Config{
		Sites:   []SiteConfig{{NAT: NATSymmetric}},
		Require: []string{TurnServer, uclient},
	})
	if _, err := StartCoturn(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), NatDiscoveryTimeout)
	defer cancel()
	out, err := l.Command(ctx, l.Sites[0].Client, uclient,
		"-y", "-c", "-n", "20", "-u", CoturnUser, "-w", CoturnPassword, l.ServerIPs[0].String()).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", uclient, err, out)
	}
	if !strings.Contains(string(out), "tot_send_msgs=40, tot_recv_msgs=40") ||
		!strings.Contains(string(out), "Total lost packets 0 (") {
		t.Errorf("relayed traffic incomplete:\n%s", out)
	}
}

// TestSetNAT switches one router between kinds and checks that each switch
// takes effect, including the route that makes a NATNone client reachable.
func TestSetNAT(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Config{Require: []string{TurnServer, NatDiscoveryTool}})
	if _, err := StartCoturn(t.Context(), l); err != nil {
		t.Fatal(err)
	}
	s := l.Sites[0]
	if got := s.NAT(); got != NATPortRestricted {
		t.Fatalf("initial NAT %q, want the default %q", got, NATPortRestricted)
	}
	// Kinds without filtering, so that natdiscovery waits for nothing.
	for _, kind := range []NATKind{NATFullCone, NATNone, NATFullCone} {
		if err := s.SetNAT(t.Context(), kind); err != nil {
			t.Fatal(err)
		}
		v, err := s.NatDiscovery(t.Context(), l.ServerIPs[1])
		if err != nil {
			t.Fatal(err)
		}
		if want := kind.Behavior(); v.NATBehavior != want {
			t.Errorf("after SetNAT(%s): verdict %+v, want %+v\n%s", kind, v.NATBehavior, want, v.Raw)
		}
		out, err := l.Command(t.Context(), l.Internet, "ip", "route", "show", s.LAN.String()).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if routed := len(bytes.TrimSpace(out)) > 0; routed != (kind == NATNone) {
			t.Errorf("after SetNAT(%s): internet route to %s: %q", kind, s.LAN, out)
		}
	}
	if err := s.SetNAT(t.Context(), "carrier-grade"); !errors.Is(err, ErrUnknownNAT) {
		t.Errorf("SetNAT(unknown) = %v, want ErrUnknownNAT", err)
	}
}

// TestUDPBlockedAllowsTCP checks that a udp-blocked site still reaches the
// internet over TCP, through the NAT.
func TestUDPBlockedAllowsTCP(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Config{Sites: []SiteConfig{{NAT: NATUDPBlocked}}})
	s := l.Sites[0]
	server := netip.AddrPortFrom(l.ServerIPs[0], 8080)
	ln, err := l.Listen(l.Internet, "tcp4", server.String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(t.Context(), replyTimeout)
	defer cancel()
	c, err := l.Dial(ctx, s.Client, "tcp4", server.String())
	if err != nil {
		t.Fatalf("TCP through udp-blocked NAT: %v", err)
	}
	c.Close()
	select {
	case from := <-accepted:
		if ap, err := netip.ParseAddrPort(fmt.Sprint(from)); err != nil || ap.Addr() != s.WAN {
			t.Errorf("server saw %v, want an address of %v", from, s.WAN)
		}
	case <-ctx.Done():
		t.Fatal("server accepted nothing")
	}

	startEcho(t, l, l.Internet, netip.AddrPortFrom(l.ServerIPs[0], 7), "echo")
	cc := clientConn(t, l, s, 0)
	if reply, err := roundTrip(cc, netip.AddrPortFrom(l.ServerIPs[0], 7), "x", silenceTimeout); err == nil {
		t.Errorf("UDP passed a udp-blocked NAT: %q", reply)
	}
}

// TestTwoLabs runs two labs at once: same addresses, separate namespaces.
func TestTwoLabs(t *testing.T) {
	t.Parallel()
	a := NewForTest(t, Config{})
	b := NewForTest(t, Config{Sites: []SiteConfig{{NAT: NATSymmetric}, {NAT: NATNone}}})
	if a.ID == b.ID {
		t.Fatalf("two labs share ID %s", a.ID)
	}
	for _, ns := range a.Namespaces() {
		if !strings.HasPrefix(ns, a.ID+"-") || !namespaceExists(ns) {
			t.Errorf("namespace %s: not named after lab %s or missing", ns, a.ID)
		}
	}
	server := netip.AddrPortFrom(a.ServerIPs[0], 7)
	startEcho(t, a, a.Internet, server, a.ID)
	startEcho(t, b, b.Internet, server, b.ID)
	for _, l := range []*Lab{a, b} {
		for _, s := range l.Sites {
			reply, err := roundTrip(clientConn(t, l, s, 0), server, "hi", replyTimeout)
			if err != nil {
				t.Fatalf("lab %s site %d: %v", l.ID, s.Index, err)
			}
			if want := l.ID + "|hi"; reply != want {
				t.Errorf("lab %s site %d: reply %q, want %q", l.ID, s.Index, reply, want)
			}
		}
	}
}

// TestLayout checks the documented address plan and settings, and that the
// host's own namespace is left alone.
func TestLayout(t *testing.T) {
	t.Parallel()
	hostForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	l := NewForTest(t, Config{Sites: []SiteConfig{{}, {NAT: NATNone}}})
	ctx := t.Context()
	run := func(ns string, args ...string) string {
		t.Helper()
		out, err := l.Command(ctx, ns, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s in %s: %v: %s", args, ns, err, out)
		}
		return string(out)
	}
	checks := []struct {
		ns   string
		args []string
		want []string
	}{
		{l.Internet, []string{"ip", "-4", "-br", "addr", "show", "dev", BridgeInterface},
			[]string{"203.0.113.1/24", "203.0.113.10/24", "203.0.113.11/24"}},
		{l.Internet, []string{"ip", "-br", "link", "show", "master", BridgeInterface}, []string{"site1", "site2"}},
		{l.Internet, []string{"ip", "route", "show", "10.99.2.0/24"}, []string{"via 203.0.113.102"}},
		{l.Internet, []string{"cat", "/proc/sys/net/ipv4/conf/all/send_redirects"}, []string{"0"}},
		{l.Sites[0].Router, []string{"ip", "-4", "-br", "addr"}, []string{"203.0.113.101/24", "10.99.1.1/24"}},
		{l.Sites[0].Router, []string{"ip", "route", "show", "default"}, []string{"via 203.0.113.1 dev " + WANInterface}},
		{l.Sites[0].Router, []string{"cat", "/proc/sys/net/ipv4/ip_forward"}, []string{"1"}},
		{l.Sites[1].Router, []string{"ip", "-4", "-br", "addr"}, []string{"203.0.113.102/24", "10.99.2.1/24"}},
		{l.Sites[1].Client, []string{"ip", "-4", "-br", "addr", "show", "dev", ClientInterface}, []string{"10.99.2.2/24"}},
		{l.Sites[1].Client, []string{"ip", "route", "show", "default"}, []string{"via 10.99.2.1"}},
	}
	for _, c := range checks {
		out := run(c.ns, c.args...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s in %s: %q lacks %q", c.args, c.ns, out, w)
			}
		}
	}
	if after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || !bytes.Equal(after, hostForward) {
		t.Errorf("host ip_forward changed from %q to %q (%v)", hostForward, after, err)
	}
}

// TestHolePunching connects the clients of two port-restricted sites
// directly: each sends to the other's public address until packets pass
// both NATs, as ICE does.
func TestHolePunching(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Config{Sites: []SiteConfig{{NAT: NATPortRestricted}, {NAT: NATPortRestricted}}})
	const port = 40000 // a port-restricted router preserves it
	conns := []*net.UDPConn{clientConn(t, l, l.Sites[0], port), clientConn(t, l, l.Sites[1], port)}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			peer := netip.AddrPortFrom(l.Sites[1-i].WAN, port)
			deadline := time.Now().Add(replyTimeout)
			for time.Now().Before(deadline) {
				reply, err := roundTrip(conns[i], peer, fmt.Sprintf("from %d", i), 50*time.Millisecond)
				if err == nil {
					if want := fmt.Sprintf("from %d", 1-i); reply != want {
						errs[i] = fmt.Errorf("client %d got %q, want %q", i, reply, want)
					}
					// Answer once more, in case the peer is still waiting.
					_, _ = conns[i].WriteToUDPAddrPort([]byte(fmt.Sprintf("from %d", i)), peer)
					return
				}
			}
			errs[i] = fmt.Errorf("client %d: no packet from %v within %v", i, peer, replyTimeout)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// TestImpair checks packet loss, rate limiting and delay on a WAN link.
func TestImpair(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Config{})
	s := l.Sites[0]
	server := netip.AddrPortFrom(l.ServerIPs[0], 7)
	startEcho(t, l, l.Internet, server, "echo")
	c := clientConn(t, l, s, 0)
	ctx := t.Context()

	if err := s.Impair(ctx, Impairment{Loss: 100}); err != nil {
		t.Fatal(err)
	}
	if reply, err := roundTrip(c, server, "lost", silenceTimeout); err == nil {
		t.Fatalf("reply %q through a link with 100%% loss", reply)
	}

	// 30% loss in each direction lets about 49% of round trips through.
	if err := s.Impair(ctx, Impairment{Loss: 30}); err != nil {
		t.Fatal(err)
	}
	got := echoSuccess(t, c, server, 8, 25)
	if got < 0.30 || got > 0.68 {
		t.Errorf("%.0f%% of round trips passed 30%% loss each way, want about 49%%", got*100)
	}

	if err := s.ClearImpairment(ctx); err != nil {
		t.Fatal(err)
	}
	if got := echoSuccess(t, c, server, 1, 25); got != 1 {
		t.Errorf("%.0f%% of round trips passed a cleared link, want 100%%", got*100)
	}

	if err := s.Impair(ctx, Impairment{Rate: 1_000_000}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range [][2]string{{s.Router, WANInterface}, {l.Internet, s.Port}} {
		out, err := l.Command(ctx, dev[0], "tc", "qdisc", "show", "dev", dev[1]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "tbf") || !strings.Contains(string(out), "1Mbit") {
			t.Errorf("%s %s: qdisc %q (%v), want tbf at 1Mbit", dev[0], dev[1], out, err)
		}
	}
	if _, err := roundTrip(c, server, "slow", replyTimeout); err != nil {
		t.Errorf("round trip through a rate-limited link: %v", err)
	}

	const delay = 20 * time.Millisecond
	err := s.Impair(ctx, Impairment{Delay: delay})
	switch {
	case errors.Is(err, ErrNetemUnavailable):
		t.Logf("this kernel has no netem: %v", err)
	case err != nil:
		t.Fatal(err)
	default:
		start := time.Now()
		if _, err := roundTrip(c, server, "late", replyTimeout); err != nil {
			t.Fatal(err)
		}
		if rtt := time.Since(start); rtt < 2*delay {
			t.Errorf("round trip took %v through %v of delay each way", rtt, delay)
		}
	}
	// A failed Impair leaves the link clear; so does ClearImpairment.
	if err := s.ClearImpairment(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(c, server, "clear", replyTimeout); err != nil {
		t.Errorf("round trip after clearing: %v", err)
	}
	if err := s.Impair(ctx, Impairment{Loss: 101}); err == nil {
		t.Error("Impair accepted 101% loss")
	}
}

// echoSuccess sends windows×size echo requests, size at a time, and returns
// the fraction answered.
func echoSuccess(t *testing.T, c *net.UDPConn, server netip.AddrPort, windows, size int) float64 {
	t.Helper()
	buf := make([]byte, 2048)
	answered := 0
	for w := range windows {
		want := make(map[string]bool, size)
		for i := range size {
			msg := fmt.Sprintf("%d.%d", w, i)
			want["echo|"+msg] = true
			if _, err := c.WriteToUDPAddrPort([]byte(msg), server); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(windowTimeout))
		for len(want) > 0 {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if want[string(buf[:n])] {
				delete(want, string(buf[:n]))
				answered++
			}
		}
	}
	return float64(answered) / float64(windows*size)
}

// TestProcess checks output capture, Stop, and that Close kills what runs.
func TestProcess(t *testing.T) {
	t.Parallel()
	l := NewForTest(t, Config{})
	ctx := t.Context()
	ns := l.Sites[0].Client

	p, err := l.Start(ctx, ns, "sh", "-c", "echo one; echo ready >&2; exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, replyTimeout)
	defer cancel()
	line, err := p.WaitLine(wctx, func(s string) bool { return strings.HasPrefix(s, "ready") })
	if err != nil || line != "ready" {
		t.Fatalf("WaitLine = %q, %v", line, err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process ended")
	}
	// Once Done, the output is complete (stdout and stderr arrive through
	// separate pipes, so "one" could still be in flight before).
	if stdout, stderr := p.Output(); stdout != "one\n" || stderr != "ready\n" {
		t.Errorf("Output() = %q, %q", stdout, stderr)
	}

	p2, err := l.Start(ctx, ns, "sh", "-c", "echo bye; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.WaitLine(wctx, func(s string) bool { return s == "never" }); !errors.Is(err, ErrProcessExited) {
		t.Errorf("WaitLine on an exiting process = %v, want ErrProcessExited", err)
	}
	var exitErr *exec.ExitError
	if err := p2.Wait(wctx); !errors.As(err, &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Wait = %v, want exit status 3", err)
	}

	long, err := l.Start(ctx, ns, "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-long.Done():
	default:
		t.Error("Close left a process running")
	}
	if _, err := l.Start(ctx, ns, "true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	for _, ns := range l.Namespaces() {
		if namespaceExists(ns) {
			t.Errorf("namespace %s survived Close", ns)
		}
	}
	if _, err := os.Stat(l.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab directory %s survived Close: %v", l.Dir, err)
	}
}

// errInjected is the failure TestFailedSetup injects.
var errInjected = errors.New("injected failure")

// TestFailedSetup makes New fail at many points of its setup and checks
// that it leaves nothing behind.
func TestFailedSetup(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		NewForTest(t, Config{}) // skips, or fails under CI
	}
	sites := []SiteConfig{{NAT: NATNone}, {NAT: NATRestrictedCone}}
	var total int
	l, err := New(t.Context(), Config{Sites: sites, failStep: func(_ *Lab, step int) error {
		total = step + 1
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("setup takes %d steps", total)

	for step := 0; step < total; step += max(1, total/12) {
		var id, dir string
		l, err := New(t.Context(), Config{Sites: sites, failStep: func(l *Lab, n int) error {
			id, dir = l.ID, l.Dir
			if n == step {
				return errInjected
			}
			return nil
		}})
		if !errors.Is(err, errInjected) || l != nil {
			t.Fatalf("step %d: New = %v, %v; want the injected error", step, l, err)
		}
		matches, _ := filepath.Glob(filepath.Join(netnsDir, id+"-*"))
		if len(matches) > 0 {
			t.Errorf("step %d: namespaces left behind: %v", step, matches)
		}
		if dir != "" {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("step %d: directory %s left behind", step, dir)
			}
		}
	}
}

// TestSweep checks that Sweep removes namespaces of dead processes, and
// kills what runs in them, but leaves those of live ones alone.
func TestSweep(t *testing.T) {
	t.Parallel()
	if err := Available(); err != nil {
		NewForTest(t, Config{}) // skips, or fails under CI
	}
	ctx := t.Context()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%dx%06x-inet", NamePrefix, dead.Process.Pid, 0xdead)
	live := fmt.Sprintf("%s%dx%06x-inet", NamePrefix, os.Getpid(), 0x5eeb)
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { _ = deleteNamespace(context.Background(), nil, ns) })
	}
	orphan := exec.Command("ip", "netns", "exec", stale, "sleep", "600")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = orphan.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = killGroup(orphan.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// Sweep finds processes by their namespace: wait until `ip netns exec`
	// has entered it.
	waitInNamespace(t, orphan.Process.Pid, stale)

	if err := Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if namespaceExists(stale) {
		t.Errorf("Sweep left stale namespace %s", stale)
	}
	if !namespaceExists(live) {
		t.Errorf("Sweep removed %s, which belongs to this live process", live)
	}
	select {
	case <-exited:
	case <-time.After(killWait):
		t.Error("Sweep left a process running in a stale namespace")
	}
}

// waitInNamespace waits until process pid has entered namespace ns.
func waitInNamespace(t *testing.T, pid int, ns string) {
	t.Helper()
	var want syscall.Stat_t
	if err := syscall.Stat(filepath.Join(netnsDir, ns), &want); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(replyTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var got syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &got); err == nil && got.Ino == want.Ino && got.Dev == want.Dev {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d not in namespace %s after %v", pid, ns, replyTimeout)
		}
		<-tick.C
	}
}
