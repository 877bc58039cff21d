package stunprobe

import "errors"

var (
	// ErrNoServers is returned by Probe when Options lists no server.
	ErrNoServers = errors.New("no STUN server given")
	// ErrNoTransport is returned by Probe when neither UDP nor TCP is enabled.
	ErrNoTransport = errors.New("no transport enabled (UDP and TCP are both off)")
	// ErrNoFamily is returned by Probe when neither IPv4 nor IPv6 is enabled.
	ErrNoFamily = errors.New("no address family enabled (IPv4 and IPv6 are both off)")

	// ErrNoUDP is the outcome of a report in which no server answered over
	// UDP while one answered over TCP: UDP is blocked on this network.
	ErrNoUDP = errors.New("no UDP connectivity: no server answered over UDP")
	// ErrUnreachable is the outcome of a report in which no server answered
	// over any transport.
	ErrUnreachable = errors.New("every STUN server is unreachable")
	// ErrInconclusive is the outcome of a report in which servers answered
	// but the NAT behaviour could not be classified.
	ErrInconclusive = errors.New("NAT behaviour inconclusive")
	// ErrInterrupted is the outcome of a report whose probe was cancelled
	// before it finished: its results are partial.
	ErrInterrupted = errors.New("interrupted before the probe finished")
)
