package stunserver

import "sync/atomic"

// Stats is a snapshot of a Server's counters. Every field but TCPOpen only
// grows; the names and json tags are stable so they can be exported as
// metrics.
type Stats struct {
	// Requests counts well-formed STUN requests received over UDP or TCP,
	// including those later dropped by the rate limiter.
	Requests uint64 `json:"requests"`
	// Responses counts success responses sent.
	Responses uint64 `json:"responses"`
	// ErrorResponses counts error responses sent (400 Bad Request,
	// 420 Unknown Attribute).
	ErrorResponses uint64 `json:"error_responses"`
	// ChangeRequests counts success responses sent from another address or
	// port because of CHANGE-REQUEST.
	ChangeRequests uint64 `json:"change_requests"`
	// ResponsePorts counts responses sent to the port named by RESPONSE-PORT.
	ResponsePorts uint64 `json:"response_ports"`
	// RateLimited counts requests dropped because their source exceeded the
	// rate limit.
	RateLimited uint64 `json:"rate_limited"`
	// Malformed counts messages dropped without an answer: non-STUN data,
	// responses, indications, bad lengths or fingerprints.
	Malformed uint64 `json:"malformed"`
	// Errors counts socket read and write failures and internal errors.
	Errors uint64 `json:"errors"`
	// TCPAccepted counts TCP connections accepted and served.
	TCPAccepted uint64 `json:"tcp_accepted"`
	// TCPRejected counts TCP connections closed at once because
	// Config.MaxTCPConns were already open, or MaxTCPConnsPerSource from
	// the same source.
	TCPRejected uint64 `json:"tcp_rejected"`
	// TCPOpen is the number of TCP connections open at the time of the
	// snapshot.
	TCPOpen int64 `json:"tcp_open"`
}

// counters is the live, atomically updated form of Stats.
type counters struct {
	requests, responses, errorResponses, changeRequests, responsePorts atomic.Uint64
	rateLimited, malformed, errors, tcpAccepted, tcpRejected           atomic.Uint64
	tcpOpen                                                            atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Requests:       c.requests.Load(),
		Responses:      c.responses.Load(),
		ErrorResponses: c.errorResponses.Load(),
		ChangeRequests: c.changeRequests.Load(),
		ResponsePorts:  c.responsePorts.Load(),
		RateLimited:    c.rateLimited.Load(),
		Malformed:      c.malformed.Load(),
		Errors:         c.errors.Load(),
		TCPAccepted:    c.tcpAccepted.Load(),
		TCPRejected:    c.tcpRejected.Load(),
		TCPOpen:        c.tcpOpen.Load(),
	}
}
