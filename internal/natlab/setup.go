// Building a lab: namespaces, veth pairs, addresses and routes, each step a logged command.

package natlab

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

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
