package natlab

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// NAT returns the router's current NAT kind.
func (s *Site) NAT() NATKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nat
}

// SetNAT switches the router to kind (the zero value means
// NATPortRestricted), replacing its NAT rules atomically and flushing its
// connection tracking table, so that no mapping made under the old rules
// survives. For NATNone the internet namespace gets a route to the LAN.
func (s *Site) SetNAT(ctx context.Context, kind NATKind) error {
	kind = kind.orDefault()
	script, err := natRuleset(kind, natParams{
		WANIf:  WANInterface,
		WAN:    s.WAN,
		LAN:    s.LAN,
		Client: s.ClientIP,
		Seed:   0x726b0000 | uint32(s.Index),
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lab
	if l.isClosed() {
		return ErrClosed
	}
	if _, err := l.runStdin(ctx, script, "ip", "netns", "exec", s.Router, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("natlab: set NAT %s on %s: %w", kind, s.Router, err)
	}
	switch {
	case kind == NATNone:
		if _, err := l.run(ctx, "ip", "-n", l.Internet, "route", "replace", s.LAN.String(), "via", s.WAN.String()); err != nil {
			return err
		}
	case s.nat == NATNone:
		if _, err := l.run(ctx, "ip", "-n", l.Internet, "route", "del", s.LAN.String(), "via", s.WAN.String()); err != nil {
			return err
		}
	}
	if _, err := l.run(ctx, "ip", "netns", "exec", s.Router, "conntrack", "-F"); err != nil {
		return err
	}
	s.nat = kind
	l.log.Debug("natlab: NAT set", "site", s.Index, "kind", kind)
	return nil
}

func (l *Lab) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Impairment degrades a site's WAN link. Each value applies to each
// direction separately, so Delay adds twice its value to a round trip. The
// zero value means an unimpaired link.
type Impairment struct {
	// Loss is the percentage (0 to 100) of packets dropped at random. It
	// uses nftables and works on every kernel.
	Loss float64
	// Delay is added to every packet; Jitter varies it by up to its value.
	// Both need the kernel's netem queueing discipline (ErrNetemUnavailable
	// otherwise).
	Delay, Jitter time.Duration
	// Rate limits the link to this many bits per second: with netem when
	// Delay or Jitter is set, else with a token bucket filter (tbf).
	Rate uint64
}

const (
	// tbfLatency bounds how long a packet may wait in a Rate-limited queue
	// before the token bucket filter drops it.
	tbfLatency = 100 * time.Millisecond
	// tbfMinBurst is the smallest bucket size, two full-size frames.
	tbfMinBurst = 2 * 1514
)

func (imp Impairment) validate() error {
	if imp.Loss < 0 || imp.Loss > 100 {
		return fmt.Errorf("natlab: impairment loss %v%% outside 0–100", imp.Loss)
	}
	if imp.Delay < 0 || imp.Jitter < 0 {
		return fmt.Errorf("natlab: negative impairment delay %v or jitter %v", imp.Delay, imp.Jitter)
	}
	return nil
}

// qdiscArgs returns the tc arguments after "root" for imp, or nil when imp
// needs no queueing discipline.
func (imp Impairment) qdiscArgs() []string {
	us := func(d time.Duration) string { return fmt.Sprintf("%dus", d.Microseconds()) }
	switch {
	case imp.Delay > 0 || imp.Jitter > 0:
		args := []string{"netem", "delay", us(imp.Delay)}
		if imp.Jitter > 0 {
			args = append(args, us(imp.Jitter))
		}
		if imp.Rate > 0 {
			args = append(args, "rate", fmt.Sprintf("%dbit", imp.Rate))
		}
		return args
	case imp.Rate > 0:
		// A bucket of 20 ms worth of traffic, at least two frames.
		burst := max(imp.Rate/8/50, tbfMinBurst)
		return []string{"tbf", "rate", fmt.Sprintf("%dbit", imp.Rate),
			"burst", fmt.Sprintf("%d", burst), "latency", us(tbfLatency)}
	default:
		return nil
	}
}

// Impair replaces the impairment of the site's WAN link (the router's
// WANInterface and its bridge port, one per direction) with imp. An
// Impairment{} clears it. On failure the link is left unimpaired.
func (s *Site) Impair(ctx context.Context, imp Impairment) error {
	if err := imp.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.lab
	if l.isClosed() {
		return ErrClosed
	}
	if err := s.clearImpairmentLocked(ctx); err != nil {
		return err
	}
	err := s.applyImpairmentLocked(ctx, imp)
	if err != nil {
		err = errors.Join(err, s.clearImpairmentLocked(ctx))
	}
	return err
}

// ClearImpairment removes any impairment from the site's WAN link.
func (s *Site) ClearImpairment(ctx context.Context) error {
	return s.Impair(ctx, Impairment{})
}

func (s *Site) applyImpairmentLocked(ctx context.Context, imp Impairment) error {
	l := s.lab
	s.impaired = true
	if imp.Loss > 0 {
		if _, err := l.runStdin(ctx, lossRuleset(WANInterface, imp.Loss), "ip", "netns", "exec", s.Router, "nft", "-f", "-"); err != nil {
			return err
		}
	}
	args := imp.qdiscArgs()
	if args == nil {
		return nil
	}
	for _, dev := range [][2]string{{s.Router, WANInterface}, {l.Internet, s.Port}} {
		out, err := l.run(ctx, "tc", append([]string{"-n", dev[0], "qdisc", "replace", "dev", dev[1], "root"}, args...)...)
		if err != nil {
			if args[0] == "netem" && strings.Contains(string(out), "qdisc kind is unknown") {
				return fmt.Errorf("%w: %v", ErrNetemUnavailable, err)
			}
			return err
		}
	}
	return nil
}

// clearImpairmentLocked removes the loss rules and queueing disciplines an
// earlier Impair installed.
func (s *Site) clearImpairmentLocked(ctx context.Context) error {
	if !s.impaired {
		return nil
	}
	l := s.lab
	var errs []error
	if _, err := l.runStdin(ctx, lossRuleset(WANInterface, 0), "ip", "netns", "exec", s.Router, "nft", "-f", "-"); err != nil {
		errs = append(errs, err)
	}
	for _, dev := range [][2]string{{s.Router, WANInterface}, {l.Internet, s.Port}} {
		// Deleting the root qdisc restores the default; with none installed
		// tc complains, which is fine.
		out, err := l.run(ctx, "tc", "-n", dev[0], "qdisc", "del", "dev", dev[1], "root")
		if err != nil && !isNoQdisc(string(out)) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.impaired = false
	return nil
}

// isNoQdisc recognises tc's complaint about deleting a root qdisc that is
// not there.
func isNoQdisc(out string) bool {
	return strings.Contains(out, "handle of zero") || strings.Contains(out, "No such file or directory") ||
		strings.Contains(out, "Invalid handle")
}
