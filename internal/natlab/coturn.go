package natlab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Programs from coturn that the helpers below run; list them in
// Config.Require.
const (
	TurnServer       = "turnserver"
	NatDiscoveryTool = "turnutils_natdiscovery"
)

// The coturn server StartCoturn runs listens on both Lab.ServerIPs, on
// CoturnPort and CoturnAltPort, and accepts these long-term credentials.
const (
	CoturnPort     = 3478
	CoturnAltPort  = 3479
	CoturnUser     = "rtckit"
	CoturnPassword = "rtckit"
	CoturnRealm    = "natlab"
)

const (
	// CoturnStartTimeout bounds how long StartCoturn waits for coturn to
	// answer Binding requests on all four of its addresses.
	CoturnStartTimeout = 10 * time.Second
	// coturnPollInterval is how long each readiness probe waits for its
	// answer before sending again.
	coturnPollInterval = 100 * time.Millisecond

	// NatDiscoveryTimeout bounds one run of turnutils_natdiscovery. It waits
	// about 3 s for each missing reply, and a full run has at most four.
	NatDiscoveryTimeout = 30 * time.Second
)

// StartCoturn runs coturn in the internet namespace as an RFC 5780
// STUN/TURN server (see CoturnPort and CoturnUser) and returns once it
// answers STUN Binding requests on every listening address, or fails after
// CoturnStartTimeout. ctx bounds the server's life, like Lab.Start, and
// Close kills it. A lab has room for one coturn, since the ports are fixed.
// Its log is the process's stdout; its pid file and user database live in
// Lab.Dir.
func StartCoturn(ctx context.Context, l *Lab) (*Process, error) {
	if err := Available(TurnServer); err != nil {
		return nil, err
	}
	args := []string{
		"-n", // no configuration file
		"--listening-ip", l.ServerIPs[0].String(),
		"--listening-ip", l.ServerIPs[1].String(),
		"--listening-port", strconv.Itoa(CoturnPort),
		"--alt-listening-port", strconv.Itoa(CoturnAltPort),
		"--lt-cred-mech",
		"--user", CoturnUser + ":" + CoturnPassword,
		"--realm", CoturnRealm,
		"--no-tls", "--no-dtls", "--no-cli",
		"--fingerprint",
		"--log-file", "stdout", "--simple-log",
		"--pidfile", filepath.Join(l.Dir, "turnserver.pid"),
		"--userdb", filepath.Join(l.Dir, "turndb"),
	}
	p, err := l.Start(ctx, l.Internet, TurnServer, args...)
	if err != nil {
		return nil, err
	}
	var targets []netip.AddrPort
	for _, ip := range l.ServerIPs {
		targets = append(targets, netip.AddrPortFrom(ip, CoturnPort), netip.AddrPortFrom(ip, CoturnAltPort))
	}
	waitCtx, cancel := context.WithTimeout(ctx, CoturnStartTimeout)
	defer cancel()
	start := time.Now()
	if err := waitSTUN(waitCtx, l, l.Internet, p, targets); err != nil {
		stdout, stderr := p.Output()
		return nil, errors.Join(
			fmt.Errorf("%w: coturn: %w; output: %s %s", ErrNotReady, err, lastLines(stdout, 10), lastLines(stderr, 10)),
			p.kill())
	}
	l.log.Debug("natlab: coturn ready", "took", time.Since(start))
	return p, nil
}

// waitSTUN sends Binding requests from namespace ns to every target until
// each has answered, p exits or ctx ends.
func waitSTUN(ctx context.Context, l *Lab, ns string, p *Process, targets []netip.AddrPort) error {
	pc, err := l.ListenPacket(ns, "udp4", ":0")
	if err != nil {
		return err
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Now()) })
	defer stop()

	pending := make(map[netip.AddrPort][]byte, len(targets)) // target → transaction ID
	for _, t := range targets {
		pending[t] = nil
	}
	buf := make([]byte, 1500)
	for len(pending) > 0 {
		select {
		case <-p.Done():
			return p.exitedError()
		default:
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%d of %d addresses silent: %w", len(pending), len(targets), err)
		}
		for t := range pending {
			req, txid := bindingRequest()
			pending[t] = txid
			if _, err := pc.WriteTo(req, net.UDPAddrFromAddrPort(t)); err != nil {
				return err
			}
		}
		_ = pc.SetReadDeadline(time.Now().Add(coturnPollInterval))
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				break // the poll interval is over (or ctx ended): send again
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok {
				continue
			}
			src := netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())
			if txid, ok := pending[src]; ok && isBindingSuccess(buf[:n], txid) {
				delete(pending, src)
			}
			if len(pending) == 0 {
				break
			}
		}
	}
	return nil
}

const stunMagicCookie = 0x2112A442

// bindingRequest returns a STUN Binding request without attributes and its
// transaction ID.
func bindingRequest() (msg, txid []byte) {
	msg = make([]byte, 20)
	binary.BigEndian.PutUint16(msg[0:], 0x0001) // Binding request
	binary.BigEndian.PutUint16(msg[2:], 0)      // no attributes
	binary.BigEndian.PutUint32(msg[4:], stunMagicCookie)
	_, _ = rand.Read(msg[8:20])
	return msg, msg[8:20]
}

// isBindingSuccess reports whether msg is a Binding success response to the
// transaction txid.
func isBindingSuccess(msg, txid []byte) bool {
	return len(msg) >= 20 &&
		binary.BigEndian.Uint16(msg[0:]) == 0x0101 &&
		binary.BigEndian.Uint32(msg[4:]) == stunMagicCookie &&
		bytes.Equal(msg[8:20], txid)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Verdict is what coturn's turnutils_natdiscovery concluded about a site.
type Verdict struct {
	// NATBehavior holds the conclusions. UDP is false when no Binding
	// response came back; NAT is false when every mapped address was the
	// client's own.
	NATBehavior
	// Mapped lists the reflexive addresses the server reported, in order.
	Mapped []netip.AddrPort `json:"mapped"`
	// Took is how long the run lasted.
	Took time.Duration `json:"took"`
	// Raw is the tool's complete output.
	Raw string `json:"raw"`
}

// NatDiscovery runs coturn's turnutils_natdiscovery (mapping and filtering
// tests, RFC 5780) in the site's client namespace against server, which
// must be a coturn started by StartCoturn, and parses its verdict. The run
// is bounded by NatDiscoveryTimeout. Blocked UDP is a verdict (UDP false),
// not an error.
func (s *Site) NatDiscovery(ctx context.Context, server netip.Addr) (Verdict, error) {
	if err := Available(NatDiscoveryTool); err != nil {
		return Verdict{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, NatDiscoveryTimeout)
	defer cancel()
	cmd := s.lab.Command(ctx, s.Client, NatDiscoveryTool,
		"-m", "-f", "-p", strconv.Itoa(CoturnPort), server.String())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	s.lab.log.Debug("natlab: natdiscovery", "site", s.Index, "took", took, "err", err)
	if err != nil {
		return Verdict{Raw: string(out), Took: took}, fmt.Errorf("natlab: %s in %s: %w: %s",
			NatDiscoveryTool, s.Client, errors.Join(err, ctx.Err()), lastLines(string(out), 10))
	}
	v := parseNatDiscovery(string(out), s.ClientIP)
	v.Took = took
	return v, nil
}

// parseNatDiscovery reads turnutils_natdiscovery's output. local is the
// client's address: mapped addresses equal to it mean there is no NAT.
func parseNatDiscovery(out string, local netip.Addr) Verdict {
	v := Verdict{Raw: out}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "UDP reflexive addr:"); ok {
			if ap, err := netip.ParseAddrPort(strings.TrimSpace(after)); err == nil {
				v.Mapped = append(v.Mapped, ap)
			}
			continue
		}
		var b Behavior
		switch {
		case strings.Contains(line, "Address and Port Dependent"):
			b = AddressPortDependent
		case strings.Contains(line, "Address Dependent"):
			b = AddressDependent
		case strings.Contains(line, "Endpoint Independent"):
			b = EndpointIndependent
		default:
			continue
		}
		switch {
		case strings.HasPrefix(line, "No NAT!"):
			// "No NAT! (Endpoint Independent Mapping)" is printed only when
			// the tool was bound to a specific local address; Mapped
			// decides NAT below.
		case strings.HasSuffix(line, "Mapping!"):
			v.Mapping = b
		case strings.HasSuffix(line, "Filtering!"):
			v.Filtering = b
		}
	}
	v.UDP = len(v.Mapped) > 0
	for _, m := range v.Mapped {
		if m.Addr() != local {
			v.NAT = true
		}
	}
	return v
}
