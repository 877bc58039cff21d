package natlab

import "errors"

var (
	// ErrUnavailable means the lab cannot run here: not root, or a required
	// tool (ip, nft, conntrack, tc, coturn) is missing. Errors wrapping it name
	// what is missing.
	ErrUnavailable = errors.New("natlab: unavailable")

	// ErrUnknownNAT means a NATKind is not one of the kinds this package
	// implements.
	ErrUnknownNAT = errors.New("natlab: unknown NAT kind")

	// ErrTooManySites means a Config asks for more than MaxSites sites.
	ErrTooManySites = errors.New("natlab: too many sites")

	// ErrClosed means the lab was closed: it starts no more processes and
	// changes no more settings.
	ErrClosed = errors.New("natlab: lab closed")

	// ErrNetemUnavailable means an Impairment asks for delay or jitter, which
	// need the kernel's netem queueing discipline, and this kernel has none.
	ErrNetemUnavailable = errors.New("natlab: kernel has no netem qdisc")

	// ErrProcessExited means a Process ended while a caller was waiting for
	// its output.
	ErrProcessExited = errors.New("natlab: process exited")

	// ErrNotReady means a server started in the lab did not answer before
	// its start timeout.
	ErrNotReady = errors.New("natlab: server not ready")
)
