package natlab

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// netnsDir is where `ip netns` keeps the named network namespaces.
const netnsDir = "/run/netns"

// setns moves the calling OS thread into the network namespace open as fd.
func setns(fd uintptr) error {
	trap := sysSetns
	if trap < 0 {
		return syscall.ENOSYS
	}
	_, _, errno := syscall.RawSyscall(uintptr(trap), fd, syscall.CLONE_NEWNET, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Do runs fn on an OS thread that has entered the network namespace ns and
// returns fn's error. Sockets fn creates belong to ns for their whole life,
// so a test can listen or dial inside the lab and use the socket from any
// goroutine afterwards. fn must create its sockets itself, not in
// goroutines it starts: those run outside ns.
func (l *Lab) Do(ns string, fn func() error) error {
	return doInNetns(ns, fn)
}

func doInNetns(ns string, fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return fmt.Errorf("natlab: open namespace %s: %w", ns, err)
	}
	defer target.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("natlab: open own namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := setns(target.Fd()); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("natlab: enter namespace %s: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := setns(orig.Fd()); err != nil {
			// The thread stays locked, so the runtime discards it when this
			// goroutine returns instead of reusing it in the wrong namespace.
			errc <- fmt.Errorf("natlab: leave namespace %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// ListenPacket is net.ListenPacket inside the namespace ns.
func (l *Lab) ListenPacket(ns, network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := l.Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// ListenUDP is net.ListenUDP inside the namespace ns.
func (l *Lab) ListenUDP(ns, network string, laddr *net.UDPAddr) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := l.Do(ns, func() error {
		var err error
		c, err = net.ListenUDP(network, laddr)
		return err
	})
	return c, err
}

// Dial is net.Dialer.DialContext from inside the namespace ns. address must
// be a literal IP address and port: name resolution and address racing would
// run outside ns.
func (l *Lab) Dial(ctx context.Context, ns, network, address string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen is net.Listen inside the namespace ns.
func (l *Lab) Listen(ns, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := l.Do(ns, func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}
