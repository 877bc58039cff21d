package stunprobe

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/rtckit/rtckit/internal/netaddr"

	"github.com/pion/stun/v4"
)

// stunHeaderSize is the fixed STUN header length; over TCP the header's
// length field frames each message (RFC 8489 section 6.2.2).
const stunHeaderSize = 20

// maxTCPMessage bounds a STUN message read over TCP.
const maxTCPMessage = 4096

// tcpBinding makes one Binding transaction over TCP (or TLS for stuns:).
func (p *prober) tcpBinding(ctx context.Context, si int, f family) Binding {
	s := p.opts.Servers[si]
	b := Binding{Transport: "tcp", Family: f.name}
	if s.TLS {
		b.Transport = "tls"
	}
	ip, status, err := p.resolve(ctx, s, f)
	if status != StatusOK {
		b.Status, b.Error = status, errString(err)
		return b
	}
	dst := netip.AddrPortFrom(ip, uint16(s.Port))
	b.Server = dst.String()
	ctx, cancel := context.WithTimeout(ctx, DefaultTCPTimeout)
	defer cancel()
	start := time.Now()
	conn, err := p.dialTCP(ctx, f.tcp, dst)
	if err != nil {
		b.Status, b.Error = tcpStatus(err), err.Error()
		return b
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if local, ok := netaddr.AddrPortOf(conn.LocalAddr()); ok {
		b.Local = local.String()
	}
	if s.TLS {
		tc := tls.Client(conn, &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			b.Status, b.Error = StatusTLS, err.Error()
			return b
		}
		conn = tc
	}
	req, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	if err != nil {
		b.Status, b.Error = StatusError, err.Error()
		return b
	}
	sent := time.Now()
	if _, err := conn.Write(req.Raw); err != nil {
		b.Status, b.Error = tcpStatus(err), err.Error()
		return b
	}
	b.Sent = 1
	for {
		msg, err := readTCPMessage(conn)
		if err != nil {
			b.Status, b.Error = tcpStatus(err), err.Error()
			if ctx.Err() != nil {
				b.Status, b.Error = StatusTimeout, fmt.Sprintf("no reply within %s", time.Since(start).Round(time.Millisecond))
			}
			return b
		}
		if msg.TransactionID != req.TransactionID {
			continue
		}
		o := parseReply(msg, observation{outcome: OutcomeNoReply})
		if o.outcome != OutcomeReply {
			b.Status, b.Error = StatusBadReply, o.note
			if o.outcome == OutcomeRejectedReq {
				b.Status = StatusRejected
			}
			return b
		}
		b.Status = StatusOK
		b.RTTMS = ms(time.Since(sent))
		b.Mapped, b.MappedPlain = addrString(o.mapped), addrString(o.plain)
		b.OtherAddress, b.ResponseOrigin = addrString(o.other), addrString(o.origin)
		return b
	}
}

// readTCPMessage reads one framed STUN message.
func readTCPMessage(r io.Reader) (*stun.Message, error) {
	header := make([]byte, stunHeaderSize)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(header[2:4]))
	if n > maxTCPMessage {
		return nil, fmt.Errorf("STUN message of %d bytes is too long", n)
	}
	buf := make([]byte, stunHeaderSize+n)
	copy(buf, header)
	if _, err := io.ReadFull(r, buf[stunHeaderSize:]); err != nil {
		return nil, err
	}
	return decodeMessage(buf)
}

func (p *prober) dialTCP(ctx context.Context, network string, dst netip.AddrPort) (net.Conn, error) {
	if p.stdnet {
		var d net.Dialer
		return d.DialContext(ctx, network, dst.String())
	}
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := p.net.Dial(network, net.JoinHostPort(dst.Addr().String(), strconv.Itoa(int(dst.Port()))))
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		return r.conn, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.conn != nil {
				_ = r.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

func tcpStatus(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return StatusRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return StatusNoRoute
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return StatusTimeout
	}
	return StatusError
}
