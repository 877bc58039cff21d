package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// NamePrefix starts the ID of every lab, and so the name of every
	// namespace and temporary directory a lab creates.
	NamePrefix = "rtk"

	// MaxSites is the largest number of sites one lab can have.
	MaxSites = 64

	// CommandTimeout bounds each setup or teardown command (ip, nft, tc,
	// conntrack) the lab runs.
	CommandTimeout = 10 * time.Second

	// closeTimeout bounds the commands Close runs, all together.
	closeTimeout = 30 * time.Second

	// BridgeInterface is the bridge in the internet namespace.
	BridgeInterface = "br0"
	// WANInterface is a router's internet-side interface.
	WANInterface = "wan"
	// LANInterface is a router's client-side interface.
	LANInterface = "lan"
	// ClientInterface is a client's only interface besides lo.
	ClientInterface = "eth0"
)

// The lab's address plan.
var (
	internetPrefix  = netip.MustParsePrefix("203.0.113.0/24")
	internetGateway = netip.MustParseAddr("203.0.113.1")
	serverIPs       = [2]netip.Addr{netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("203.0.113.11")}
)

// siteAddrs returns the addresses of site i (1-based).
func siteAddrs(i int) (wan netip.Addr, lan netip.Prefix, gateway, client netip.Addr) {
	wan = netip.AddrFrom4([4]byte{203, 0, 113, byte(100 + i)})
	lan = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, byte(i), 0}), 24)
	gateway = netip.AddrFrom4([4]byte{10, 99, byte(i), 1})
	client = netip.AddrFrom4([4]byte{10, 99, byte(i), 2})
	return wan, lan, gateway, client
}

// SiteConfig describes one site.
type SiteConfig struct {
	// NAT is the router's initial behaviour; the zero value means
	// NATPortRestricted.
	NAT NATKind
}

// Config describes a lab. Its zero value is a lab with one port-restricted
// site.
type Config struct {
	// Sites lists the sites; nil means one site with the zero SiteConfig.
	Sites []SiteConfig
	// Logger receives a debug record for every command the lab runs; nil
	// discards them.
	Logger *slog.Logger
	// Require names further programs the caller needs (for example
	// TurnServer and NatDiscoveryTool); New and NewForTest treat a missing
	// one like a missing ip.
	Require []string

	// failStep, when set, is called before each setup command with the
	// number of commands run so far; an error aborts New. Tests use it to
	// make setup fail halfway.
	failStep func(l *Lab, step int) error
}

// Lab is a running NAT lab. Its exported fields are set by New and must not
// be changed. Close removes everything the lab created.
type Lab struct {
	// ID is unique to this lab and starts every namespace name.
	ID string
	// Internet is the name of the internet namespace.
	Internet string
	// Gateway is the internet namespace's own address, the routers' default
	// gateway.
	Gateway netip.Addr
	// ServerIPs are two more addresses of the internet namespace, for
	// servers; an RFC 5780 STUN server listens on both.
	ServerIPs [2]netip.Addr
	// Sites are the sites, Sites[i] having Index i+1.
	Sites []*Site
	// Dir is a private temporary directory (for pid files, logs, databases),
	// removed by Close.
	Dir string

	log      *slog.Logger
	failStep func(*Lab, int) error

	mu         sync.Mutex
	closed     bool
	setupDone  bool
	steps      int
	namespaces []string // created, in creation order
	procs      []*Process
	closeOnce  sync.Once
	closeErr   error
}

// Site is a router namespace and the client namespace behind it.
type Site struct {
	// Index numbers the site from 1; it appears in its addresses.
	Index int
	// Router and Client are namespace names.
	Router, Client string
	// WAN is the router's address in the internet namespace.
	WAN netip.Addr
	// LAN is the site's private network.
	LAN netip.Prefix
	// Gateway is the router's address on the LAN.
	Gateway netip.Addr
	// ClientIP is the client's address.
	ClientIP netip.Addr
	// Port is the router's interface in the internet namespace (a bridge
	// port, peer of the router's WANInterface).
	Port string

	lab *Lab

	mu       sync.Mutex // serialises SetNAT and Impair
	nat      NATKind
	impaired bool
}

// Available returns nil when this process can build labs: it runs as root and
// finds ip, nft, conntrack, tc and every program in extra. Otherwise the
// error wraps ErrUnavailable and names everything missing.
func Available(extra ...string) error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root privileges")
	}
	for _, tool := range append([]string{"ip", "nft", "conntrack", "tc"}, extra...) {
		if _, err := lookTool(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if _, err := os.Stat("/proc/thread-self/ns/net"); err != nil {
		missing = append(missing, "network namespaces")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrUnavailable, strings.Join(missing, ", "))
	}
	return nil
}

// lookTool finds a program in PATH or, since PATH may lack them, in the
// system binary directories.
func lookTool(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil || strings.ContainsRune(name, '/') {
		return p, err
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, statErr := os.Stat(p); statErr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", err
}

// toolPath is lookTool's result, or name itself so that exec reports the
// missing program.
func toolPath(name string) string {
	if p, err := lookTool(name); err == nil {
		return p
	}
	return name
}

// New builds a lab. On any failure it removes whatever it had created and
// returns the error.
func New(ctx context.Context, cfg Config) (*Lab, error) {
	sites := cfg.Sites
	if len(sites) == 0 {
		sites = []SiteConfig{{}}
	}
	if len(sites) > MaxSites {
		return nil, fmt.Errorf("%w: %d > %d", ErrTooManySites, len(sites), MaxSites)
	}
	for _, sc := range sites {
		if !sc.NAT.Valid() {
			return nil, fmt.Errorf("%w: %q", ErrUnknownNAT, sc.NAT)
		}
	}
	if err := Available(cfg.Require...); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	id := fmt.Sprintf("%s%dx%06x", NamePrefix, os.Getpid(), rand.Uint32()&0xffffff)
	l := &Lab{
		ID:        id,
		Internet:  id + "-inet",
		Gateway:   internetGateway,
		ServerIPs: serverIPs,
		log:       log.With("lab", id),
		failStep:  cfg.failStep,
	}
	for i := range sites {
		n := i + 1
		wan, lan, gw, client := siteAddrs(n)
		l.Sites = append(l.Sites, &Site{
			Index:    n,
			Router:   fmt.Sprintf("%s-r%d", id, n),
			Client:   fmt.Sprintf("%s-c%d", id, n),
			WAN:      wan,
			LAN:      lan,
			Gateway:  gw,
			ClientIP: client,
			Port:     fmt.Sprintf("site%d", n),
			lab:      l,
		})
	}

	start := time.Now()
	if err := l.setup(ctx, sites); err != nil {
		return nil, errors.Join(fmt.Errorf("natlab: build lab %s: %w", id, err), l.Close())
	}
	l.mu.Lock()
	l.setupDone = true
	l.mu.Unlock()
	l.log.Debug("natlab: lab ready", "sites", len(sites), "took", time.Since(start))
	return l, nil
}

func (l *Lab) setup(ctx context.Context, sites []SiteConfig) error {
	dir, err := os.MkdirTemp("", l.ID+"-")
	if err != nil {
		return err
	}
	l.Dir = dir

	inet := l.Internet
	if err := l.addNamespace(ctx, inet); err != nil {
		return err
	}
	for _, s := range l.Sites {
		if err := l.addNamespace(ctx, s.Router); err != nil {
			return err
		}
		if err := l.addNamespace(ctx, s.Client); err != nil {
			return err
		}
	}

	// The internet namespace routes between "none" sites and must not
	// answer that with redirects; new interfaces take the default setting.
	if err := l.sysctls(inet, map[string]string{
		"net/ipv4/ip_forward":                  "1",
		"net/ipv4/conf/all/send_redirects":     "0",
		"net/ipv4/conf/default/send_redirects": "0",
	}); err != nil {
		return err
	}
	cmds := [][]string{
		{"-n", inet, "link", "set", "lo", "up"},
		{"-n", inet, "link", "add", BridgeInterface, "type", "bridge"},
		{"-n", inet, "addr", "add", prefixOf(l.Gateway), "dev", BridgeInterface},
		{"-n", inet, "addr", "add", prefixOf(l.ServerIPs[0]), "dev", BridgeInterface},
		{"-n", inet, "addr", "add", prefixOf(l.ServerIPs[1]), "dev", BridgeInterface},
		{"-n", inet, "link", "set", BridgeInterface, "up"},
	}
	for _, args := range cmds {
		if _, err := l.run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	for i, s := range l.Sites {
		if err := l.setupSite(ctx, s); err != nil {
			return fmt.Errorf("site %d: %w", s.Index, err)
		}
		if err := s.SetNAT(ctx, sites[i].NAT); err != nil {
			return fmt.Errorf("site %d: %w", s.Index, err)
		}
	}
	return nil
}

func (l *Lab) setupSite(ctx context.Context, s *Site) error {
	r, c, inet := s.Router, s.Client, l.Internet
	if err := l.sysctls(r, map[string]string{"net/ipv4/ip_forward": "1"}); err != nil {
		return err
	}
	cmds := [][]string{
		{"link", "add", "name", WANInterface, "netns", r, "type", "veth", "peer", "name", s.Port, "netns", inet},
		{"link", "add", "name", LANInterface, "netns", r, "type", "veth", "peer", "name", ClientInterface, "netns", c},
		{"-n", inet, "link", "set", s.Port, "master", BridgeInterface, "up"},
		{"-n", r, "link", "set", "lo", "up"},
		{"-n", r, "addr", "add", netip.PrefixFrom(s.WAN, internetPrefix.Bits()).String(), "dev", WANInterface},
		{"-n", r, "link", "set", WANInterface, "up"},
		{"-n", r, "addr", "add", netip.PrefixFrom(s.Gateway, s.LAN.Bits()).String(), "dev", LANInterface},
		{"-n", r, "link", "set", LANInterface, "up"},
		{"-n", r, "route", "add", "default", "via", l.Gateway.String()},
		{"-n", c, "link", "set", "lo", "up"},
		{"-n", c, "addr", "add", netip.PrefixFrom(s.ClientIP, s.LAN.Bits()).String(), "dev", ClientInterface},
		{"-n", c, "link", "set", ClientInterface, "up"},
		{"-n", c, "route", "add", "default", "via", s.Gateway.String()},
	}
	for _, args := range cmds {
		if _, err := l.run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// prefixOf returns a with the internet segment's prefix length.
func prefixOf(a netip.Addr) string {
	return netip.PrefixFrom(a, internetPrefix.Bits()).String()
}

// addNamespace creates ns and records it for Close, even when creation
// fails halfway.
func (l *Lab) addNamespace(ctx context.Context, ns string) error {
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	_, err := l.run(ctx, "ip", "netns", "add", ns)
	return err
}

// sysctls sets /proc/sys values inside namespace ns. /proc/sys/net shows
// the namespace of the thread that opens it.
func (l *Lab) sysctls(ns string, values map[string]string) error {
	if err := l.step(); err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(values))
	return l.Do(ns, func() error {
		for _, k := range keys {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(values[k]), 0o644); err != nil {
				return fmt.Errorf("natlab: sysctl %s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}

// step counts a setup step and gives the test hook a chance to fail it.
func (l *Lab) step() error {
	l.mu.Lock()
	hook, done, n := l.failStep, l.setupDone, l.steps
	l.steps++
	l.mu.Unlock()
	if hook == nil || done {
		return nil
	}
	return hook(l, n)
}

// run runs a command in the host namespace (tools take the namespace as an
// argument), bounded by CommandTimeout.
func (l *Lab) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	if err := l.step(); err != nil {
		return nil, err
	}
	return runLogged(ctx, l.log, nil, name, args...)
}

// runStdin is run with data on the command's standard input.
func (l *Lab) runStdin(ctx context.Context, stdin string, name string, args ...string) ([]byte, error) {
	if err := l.step(); err != nil {
		return nil, err
	}
	return runLogged(ctx, l.log, strings.NewReader(stdin), name, args...)
}

func runLogged(ctx context.Context, log *slog.Logger, stdin *strings.Reader, name string, args ...string) ([]byte, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, toolPath(name), args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.WaitDelay = processWaitDelay
	start := time.Now()
	out, err := cmd.CombinedOutput()
	line := name + " " + strings.Join(args, " ")
	log.Debug("natlab: run", "cmd", line, "took", time.Since(start), "err", err)
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", line, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Command returns a command that runs name with args inside namespace ns
// (through `ip netns exec`), bound to ctx like exec.CommandContext. The
// caller runs it and owns its lifetime; Start runs background programs
// that Close cleans up.
func (l *Lab) Command(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, toolPath("ip"), append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.WaitDelay = processWaitDelay
	return cmd
}

// Start starts name with args in namespace ns, in a new process group, and
// captures its stdout and stderr. The process (its whole group) is killed
// when ctx ends, when Stop is called or when the lab closes; it is also
// killed if this process dies.
func (l *Lab) Start(ctx context.Context, ns, name string, args ...string) (*Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	cmd := l.Command(ctx, ns, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	p := &Process{
		NS:      ns,
		Args:    append([]string{name}, args...),
		cmd:     cmd,
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	stdout := &lineWriter{p: p, buf: &p.stdout}
	stderr := &lineWriter{p: p, buf: &p.stderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("natlab: start %s in %s: %w", name, ns, err)
	}
	l.procs = append(l.procs, p)
	l.log.Debug("natlab: started", "ns", ns, "cmd", strings.Join(p.Args, " "), "pid", cmd.Process.Pid)
	go p.reap(stdout, stderr)
	return p, nil
}

// Namespaces returns the names of the lab's namespaces.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.namespaces)
}

// Close kills the lab's processes, deletes its namespaces (and with them
// every interface and rule) and its directory. It is safe to call more than
// once, concurrently, and on a lab whose setup failed; later calls return the
// first call's result.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		procs := slices.Clone(l.procs)
		namespaces := slices.Clone(l.namespaces)
		l.mu.Unlock()

		var errs []error
		for _, p := range procs {
			if err := p.kill(); err != nil {
				errs = append(errs, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		for _, ns := range slices.Backward(namespaces) {
			if err := deleteNamespace(ctx, l.log, ns); err != nil {
				errs = append(errs, err)
			}
		}
		if l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
		l.log.Debug("natlab: lab closed", "err", l.closeErr)
	})
	return l.closeErr
}

// deleteNamespace kills whatever still runs in ns and deletes it. A
// namespace that does not exist is not an error.
func deleteNamespace(ctx context.Context, log *slog.Logger, ns string) error {
	if !namespaceExists(ns) {
		return nil
	}
	out, err := runLogged(ctx, log, nil, "ip", "netns", "pids", ns)
	if err == nil {
		self := os.Getpid()
		for _, f := range strings.Fields(string(out)) {
			// A thread of this process may be inside ns during Do; the
			// process itself must survive.
			if pid, convErr := strconv.Atoi(f); convErr == nil && pid > 1 && pid != self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if _, err := runLogged(ctx, log, nil, "ip", "netns", "delete", ns); err != nil && namespaceExists(ns) {
		return err
	}
	return nil
}

func namespaceExists(ns string) bool {
	_, err := os.Stat(filepath.Join(netnsDir, ns))
	return err == nil
}

// parseID extracts the owner pid from a name that starts with a lab ID
// ("rtk<pid>x<6 hex digits>", then "-..." for namespaces and directories).
func parseID(name string) (pid int, ok bool) {
	rest, found := strings.CutPrefix(name, NamePrefix)
	if !found {
		return 0, false
	}
	digits, rest, found := strings.Cut(rest, "x")
	if !found || len(rest) < 7 || rest[6] != '-' {
		return 0, false
	}
	if _, err := strconv.ParseUint(rest[:6], 16, 32); err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != digits {
		return 0, false
	}
	return pid, true
}

// processAlive reports whether pid names a live process.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Sweep removes the namespaces and temporary directories of labs whose
// process has died (a crashed or killed test run), killing whatever still
// runs in those namespaces. Labs of live processes are left alone.
func Sweep(ctx context.Context) error {
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, e := range entries {
		pid, ok := parseID(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := deleteNamespace(ctx, nil, e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	dirs, err := os.ReadDir(os.TempDir())
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range dirs {
		pid, ok := parseID(e.Name())
		if !ok || !e.IsDir() || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(os.TempDir(), e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
