package stunserver

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error that Listen returns for a
	// Config it cannot serve, such as a missing primary IP or clashing ports.
	// The CLI maps it to a usage error.
	ErrInvalidConfig = errors.New("stunserver: invalid config")

	// ErrTCPUnsupported is returned by Listen when Config.TCP is set but the
	// configured transport.Net cannot listen on TCP (pion's vnet, for one).
	ErrTCPUnsupported = errors.New("stunserver: TCP is not supported by this network")

	// ErrServerClosed is returned by Serve when the server was already closed.
	ErrServerClosed = errors.New("stunserver: server closed")

	// ErrAlreadyServing is returned by Serve when another Serve call is running
	// or has run on the same Server.
	ErrAlreadyServing = errors.New("stunserver: Serve already called")
)
