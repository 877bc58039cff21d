package turnserver

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error that Listen returns for a
	// Config it cannot serve, such as a missing listen IP, clashing ports or
	// an unreadable TLS certificate. The CLI maps it to a usage error.
	ErrInvalidConfig = errors.New("turnserver: invalid config")

	// ErrNoCredentials is returned by Listen (wrapped together with
	// ErrInvalidConfig) when the Config has neither users nor a TURN REST
	// secret: such a server would be an open relay, which rtckit never runs.
	ErrNoCredentials = errors.New("turnserver: no credentials (users or an auth secret) configured; refusing to run an open relay")

	// ErrTCPUnsupported is returned by Listen when a TCP or TLS listener is
	// asked for but the configured transport.Net cannot listen on TCP
	// (pion's vnet, for one).
	ErrTCPUnsupported = errors.New("turnserver: TCP is not supported by this network")

	// ErrServerClosed is returned by Serve when the server was already closed.
	ErrServerClosed = errors.New("turnserver: server closed")

	// ErrAlreadyServing is returned by Serve when another Serve call is
	// running or has run on the same Server.
	ErrAlreadyServing = errors.New("turnserver: Serve already called")

	// ErrBadUsers is wrapped by every error of ParseUsers and ParseUser: a
	// line that is not "user:password", an empty or overlong name or
	// password, or a user defined twice.
	ErrBadUsers = errors.New("turnserver: bad user list")
)
