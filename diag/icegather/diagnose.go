package icegather

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/turn/v5"
	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/internal/untrusted"
	"github.com/rtckit/rtckit/peer"
)

// diagnoseTimeout bounds the direct check made on a failed server.
const diagnoseTimeout = 2 * time.Second

// diagnosis says why a server produced no candidate.
type diagnosis struct {
	kind    string
	code    int
	message string
}

// diagnose contacts a server that produced no candidate directly — a STUN
// Binding, or a TURN Allocate with the same credentials — to tell exactly
// why: an error code, a timeout, DNS, TLS or an unreachable network.
func diagnose(ctx context.Context, s peer.ICEServer, n transport.Net, log *slog.Logger) diagnosis {
	ctx, cancel := context.WithTimeout(ctx, diagnoseTimeout)
	defer cancel()
	if s.URI.IsTURN() {
		return diagnoseTURN(ctx, s, n, log)
	}
	return diagnoseSTUN(ctx, s, n)
}

func diagnoseSTUN(ctx context.Context, s peer.ICEServer, n transport.Net) diagnosis {
	opts := stunprobe.Options{
		Servers: []stunprobe.Server{{URI: s.URI.String(), Host: s.URI.Host, Port: s.URI.Port, TLS: s.URI.Secure()}},
		UDP:     !s.URI.Secure(), TCP: s.URI.Secure(), IPv4: true, IPv6: true, Net: n,
	}
	r, err := stunprobe.Probe(ctx, opts)
	if err != nil {
		return diagnosis{kind: KindError, message: err.Error()}
	}
	var last diagnosis
	for _, b := range r.Servers[0].Bindings {
		switch b.Status {
		case stunprobe.StatusOK:
			return diagnosis{kind: KindNoCandidate, message: fmt.Sprintf("the server answers STUN (mapped %s) but no server-reflexive candidate was gathered: check the network types and interface filters", b.Mapped)}
		case stunprobe.StatusTimeout:
			last = diagnosis{kind: KindTimeout, message: "no reply to STUN Binding requests: " + b.Error}
		case stunprobe.StatusDNS, stunprobe.StatusNoAddress:
			last = diagnosis{kind: KindDNS, message: b.Error}
		case stunprobe.StatusNoRoute:
			last = diagnosis{kind: KindUnreachable, message: b.Error}
		case stunprobe.StatusRefused:
			last = diagnosis{kind: KindRefused, message: b.Error}
		case stunprobe.StatusTLS:
			last = diagnosis{kind: KindTLS, message: b.Error}
		default:
			last = diagnosis{kind: KindError, message: b.Status + ": " + b.Error}
		}
	}
	if last.kind == "" {
		last = diagnosis{kind: KindError, message: "no binding attempt was possible"}
	}
	return last
}

func diagnoseTURN(ctx context.Context, s peer.ICEServer, n transport.Net, log *slog.Logger) diagnosis {
	client, closeClient, d := dialTURN(ctx, s, n, log)
	if d != nil {
		return *d
	}
	defer closeClient()
	relay, err := client.AllocateWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return diagnosis{kind: KindTimeout, message: "no answer to the TURN Allocate request before the deadline"}
		}
		return classifyErr(err)
	}
	_ = relay.Close()
	return diagnosis{kind: KindNoCandidate, message: fmt.Sprintf("a direct allocation succeeded (relay %s) but gathering produced no relay candidate: check the network types and interface filters", relay.LocalAddr())}
}

// dialTURN connects a TURN client to s over the URI's transport, the way
// pion does. The client and its connection close when ctx ends (so a
// transaction without a context of its own ends too) or when the returned
// function is called. On failure the diagnosis says why.
func dialTURN(ctx context.Context, s peer.ICEServer, n transport.Net, log *slog.Logger) (*turn.Client, func(), *diagnosis) {
	fail := func(d diagnosis) (*turn.Client, func(), *diagnosis) { return nil, nil, &d }
	if n == nil {
		var err error
		if n, err = stdnet.NewNet(); err != nil {
			return fail(diagnosis{kind: KindError, message: err.Error()})
		}
	}
	addr := s.URI.HostPort()
	server, err := resolve(ctx, n, addr)
	if err != nil {
		return fail(classifyErr(fmt.Errorf("resolve %s: %w", s.URI.Host, err)))
	}
	var conn net.PacketConn
	switch s.URI.Transport {
	case peer.TransportTCP:
		c, err := dial(ctx, n, "tcp", addr)
		if err != nil {
			return fail(classifyErr(err))
		}
		if s.URI.Secure() {
			tc := tls.Client(c, &tls.Config{ServerName: s.URI.Host, MinVersion: tls.VersionTLS12})
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return fail(diagnosis{kind: KindTLS, message: err.Error()})
			}
			c = tc
		}
		conn = turn.NewSTUNConn(c)
	default:
		if s.URI.Secure() {
			return fail(diagnosis{kind: KindError, message: "TURN over DTLS is not diagnosed"})
		}
		// The socket's family is the server's: from the dual-stack
		// wildcard pion asks an IPv4 server for an IPv6 relay, which it
		// refuses (440 or 508), hiding the real failure.
		network, local := "udp4", "0.0.0.0:0"
		if server.IP.To4() == nil {
			network, local = "udp6", "[::]:0"
		}
		c, err := n.ListenPacket(network, local)
		if err != nil {
			return fail(classifyErr(err))
		}
		conn = c
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn, Net: n,
		Username: s.Username, Password: s.Credential, LoggerFactory: peer.SlogLoggerFactory{Logger: log},
	})
	if err != nil {
		_ = conn.Close()
		return fail(classifyErr(err))
	}
	closeAll := func() {
		client.Close()
		_ = conn.Close()
	}
	stop := context.AfterFunc(ctx, closeAll)
	cleanup := func() {
		stop()
		closeAll()
	}
	if err := client.Listen(); err != nil {
		cleanup()
		return fail(classifyErr(err))
	}
	return client, cleanup, nil
}

// classifyErr maps a failure to an error kind.
func classifyErr(err error) diagnosis {
	var te *stun.TurnError
	if errors.As(err, &te) {
		code := int(te.ErrorCodeAttr.Code)
		d := diagnosis{code: code, message: fmt.Sprintf("TURN error %d", code)}
		if reason := untrusted.Text(string(te.ErrorCodeAttr.Reason)); reason != "" {
			d.message += " " + reason
		}
		switch code {
		case 401:
			d.kind = KindUnauthorized
			d.message += ": the server rejected the credentials"
		case 441:
			d.kind = KindWrongCredential
		case 486:
			d.kind = KindQuota
			d.message += ": the user has too many allocations"
		case 508:
			d.kind = KindCapacity
		default:
			d.kind = KindTURNError
		}
		return d
	}
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		return diagnosis{kind: KindDNS, message: err.Error()}
	case errors.Is(err, syscall.ECONNREFUSED):
		return diagnosis{kind: KindRefused, message: err.Error()}
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return diagnosis{kind: KindUnreachable, message: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout(), strings.Contains(err.Error(), "timeout"):
		return diagnosis{kind: KindTimeout, message: err.Error()}
	}
	return diagnosis{kind: KindError, message: err.Error()}
}

// resolve looks addr up through n, bounded by ctx.
func resolve(ctx context.Context, n transport.Net, addr string) (*net.UDPAddr, error) {
	type result struct {
		a   *net.UDPAddr
		err error
	}
	ch := make(chan result, 1)
	go func() {
		a, err := n.ResolveUDPAddr("udp", addr)
		ch <- result{a, err}
	}()
	select {
	case r := <-ch:
		return r.a, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// dial connects through n, bounded by ctx.
func dial(ctx context.Context, n transport.Net, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := n.Dial(network, addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
