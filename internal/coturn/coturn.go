// Package coturn starts coturn's turnserver as a reference STUN/TURN peer for
// tests and benchmarks, on loopback or in a network namespace.
package coturn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
)

// StartTimeout bounds how long Start waits for coturn to answer STUN.
const StartTimeout = 10 * time.Second

// ErrNotInstalled means the turnserver program is not on PATH.
var ErrNotInstalled = errors.New("coturn's turnserver is not installed (apt-get install coturn)")

// Config describes one coturn instance.
type Config struct {
	// ListenIPs are the addresses coturn listens on; two of them enable its
	// RFC 5780 support (OTHER-ADDRESS, CHANGE-REQUEST).
	ListenIPs []netip.Addr
	// Port and AltPort are the primary and RFC 5780 alternate ports.
	Port, AltPort int
	// Users are long-term credentials as "user:password".
	Users []string
	// Realm is the authentication realm; default "rtckit".
	Realm string
	// AuthSecret enables TURN REST ephemeral credentials (use-auth-secret).
	AuthSecret string
	// AllowLoopbackPeers lets coturn relay to loopback addresses.
	AllowLoopbackPeers bool
	// Extra holds further turnserver arguments.
	Extra []string
}

// Args returns the turnserver arguments for cfg, writing its pid file under dir.
func (c Config) Args(dir string) []string {
	realm := c.Realm
	if realm == "" {
		realm = "rtckit"
	}
	args := []string{"-n", "--no-tls", "--no-dtls", "--no-cli", "--fingerprint", "--realm", realm,
		"--listening-port", strconv.Itoa(c.Port), "--pidfile", filepath.Join(dir, "turnserver.pid"),
		"--log-file", "stdout", "--simple-log"}
	if c.AltPort != 0 {
		args = append(args, "--alt-listening-port", strconv.Itoa(c.AltPort))
	}
	for _, ip := range c.ListenIPs {
		args = append(args, "--listening-ip", ip.String(), "--relay-ip", ip.String())
	}
	if c.AuthSecret != "" {
		args = append(args, "--use-auth-secret", "--static-auth-secret", c.AuthSecret)
	} else {
		args = append(args, "--lt-cred-mech")
	}
	for _, u := range c.Users {
		args = append(args, "--user", u)
	}
	if c.AllowLoopbackPeers {
		args = append(args, "--allow-loopback-peers")
	}
	return append(args, c.Extra...)
}

// Server is a running coturn.
type Server struct {
	addr netip.AddrPort
	cmd  *exec.Cmd
	dir  string
	log  *syncBuffer
	done chan struct{}
	err  error
	once sync.Once
}

// Start runs turnserver with cfg and returns when it answers a STUN Binding
// on the first listening IP, or an error with the end of its log.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	path, err := exec.LookPath("turnserver")
	if err != nil {
		return nil, ErrNotInstalled
	}
	if len(cfg.ListenIPs) == 0 || cfg.Port == 0 {
		return nil, errors.New("coturn: ListenIPs and Port are required")
	}
	dir, err := os.MkdirTemp("", "rtckit-coturn-")
	if err != nil {
		return nil, err
	}
	s := &Server{addr: netip.AddrPortFrom(cfg.ListenIPs[0], uint16(cfg.Port)), dir: dir, log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(path, cfg.Args(dir)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start turnserver: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := waitBinding(ctx, netip.AddrPortFrom(cfg.ListenIPs[0], uint16(cfg.Port)), s.done); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("coturn did not start: %w; log:\n%s", err, s.Log())
	}
	return s, nil
}

// waitBinding polls addr with STUN Binding requests until one is answered.
func waitBinding(ctx context.Context, addr netip.AddrPort, exited <-chan struct{}) error {
	conn, err := net.ListenUDP("udp", nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1500)
	for {
		req, err := stun.Build(stun.TransactionID, stun.BindingRequest)
		if err != nil {
			return err
		}
		if _, err := conn.WriteToUDPAddrPort(req.Raw, addr); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil {
			m := &stun.Message{Raw: buf[:n]}
			if m.Decode() == nil && m.TransactionID == req.TransactionID {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			return errors.New("turnserver exited")
		default:
		}
	}
}

// Log returns what coturn has printed so far.
func (s *Server) Log() string { return s.log.String() }

// Close stops coturn and removes its files. It is safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		defer os.RemoveAll(s.dir)
		// Signal the process group only while the process has not been
		// reaped: afterwards its pid may belong to someone else.
		select {
		case <-s.done:
			return
		default:
		}
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.done
		}
	})
	return nil
}

// Test servers take their ports from this range, below Linux's ephemeral
// range (32768-60999) and coturn's relay range (49152-65535), so that
// ports the kernel hands out to other sockets meanwhile cannot collide.
const (
	testPortMin = 20000
	testPortMax = 32000
)

// FreePortPair returns a port p such that p and p+1 are free for UDP and
// TCP on every ip, for an RFC 5780 server's primary and alternate ports.
func FreePortPair(ips ...netip.Addr) (int, error) {
	for range 100 {
		p := testPortMin + rand.IntN(testPortMax-testPortMin-1)
		if portsFree(ips, p, p+1) {
			return p, nil
		}
	}
	return 0, errors.New("no free port pair found")
}

func portsFree(ips []netip.Addr, ports ...int) bool {
	var closers []func() error
	defer func() {
		for _, c := range closers {
			_ = c()
		}
	}()
	for _, ip := range ips {
		for _, p := range ports {
			u, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip.AsSlice(), Port: p})
			if err != nil {
				return false
			}
			closers = append(closers, u.Close)
			t, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip.AsSlice(), Port: p})
			if err != nil {
				return false
			}
			closers = append(closers, t.Close)
		}
	}
	return true
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartOnFreePorts picks a free port pair on cfg.ListenIPs (Port, and
// AltPort = Port+1 when two IPs make coturn an RFC 5780 server) and starts
// coturn there, trying a new pair when one was taken in the meantime.
func StartOnFreePorts(ctx context.Context, cfg Config) (*Server, error) {
	const attempts = 3
	var errs []error
	for range attempts {
		port, err := FreePortPair(cfg.ListenIPs...)
		if err != nil {
			return nil, err
		}
		cfg.Port, cfg.AltPort = port, 0
		if len(cfg.ListenIPs) > 1 {
			cfg.AltPort = port + 1
		}
		s, err := Start(ctx, cfg)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// Addr returns the server's primary address.
func (s *Server) Addr() netip.AddrPort { return s.addr }
