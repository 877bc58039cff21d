package signal

import "errors"

// ErrProtocol matches every *ProtocolError: a client message the server
// answered with an error message.
var ErrProtocol = errors.New("signal: protocol error")

// ErrTooManyConnections is returned by Hub.Connect when MaxConnections
// clients are connected.
var ErrTooManyConnections = errors.New("signal: too many connections")

// ErrClosed is returned by Hub.Connect once the hub is shutting down.
var ErrClosed = errors.New("signal: hub closed")

// ErrInvalidConfig wraps errors about a server configuration.
var ErrInvalidConfig = errors.New("signal: invalid configuration")
