package peer

import (
	"errors"
	"fmt"
)

// ErrBadURI is wrapped by every error that ParseICEServerURI returns. The CLI
// maps it to a usage error.
var ErrBadURI = errors.New("bad ICE server URI")

// Specific kinds of bad ICE server URIs. Each error returned by
// ParseICEServerURI wraps ErrBadURI and exactly one of these.
var (
	// ErrSyntax means the URI is not of the form scheme:host[:port][?query]:
	// it is empty, contains whitespace, control or non-ASCII characters, or
	// has a "//" authority, a path or a fragment.
	ErrSyntax = errors.New("malformed ICE server URI")

	// ErrScheme means the scheme is missing or is not one of stun, stuns,
	// turn or turns.
	ErrScheme = errors.New("bad ICE server URI scheme")

	// ErrHost means the host is empty, is not a valid host name or IP
	// address, has unbalanced brackets, or is an IPv6 address without
	// brackets.
	ErrHost = errors.New("bad ICE server host")

	// ErrPort means the port is empty, not a decimal number, or outside
	// 1-65535.
	ErrPort = errors.New("bad ICE server port")

	// ErrQuery means the query is empty or malformed, repeats a key, names a
	// key other than "transport", or appears on a stun or stuns URI.
	ErrQuery = errors.New("bad ICE server URI query")

	// ErrTransport means the transport is not udp or tcp, or was given on a
	// stun or stuns URI, which take no transport parameter.
	ErrTransport = errors.New("bad ICE server transport")

	// ErrCredentials means the credentials are malformed, or were given on
	// a stun or stuns URI, which take none.
	ErrCredentials = errors.New("bad ICE server credentials")
)

// URIError describes why an ICE server URI was rejected. It wraps ErrBadURI
// and Kind, so errors.Is works with either.
type URIError struct {
	// URI is the rejected input with any password replaced by "***".
	URI string
	// Kind is one of the specific sentinel errors, such as ErrPort.
	Kind error
	// Reason says what is wrong, in words meant for a person.
	Reason string
}

// Error returns a message of the form
//
//	bad ICE server URI "stun:host:99999": port out of range 1-65535
func (e *URIError) Error() string {
	return fmt.Sprintf("%v %q: %s", ErrBadURI, e.URI, e.Reason)
}

// Unwrap returns ErrBadURI and the specific kind.
func (e *URIError) Unwrap() []error {
	return []error{ErrBadURI, e.Kind}
}
