package natlab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
