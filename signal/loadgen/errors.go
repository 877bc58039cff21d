package loadgen

import "errors"

// ErrInvalidOptions wraps every problem with Options found by Run.
var ErrInvalidOptions = errors.New("loadgen: invalid options")

// ErrNoConnections means not one pair could connect and register, so
// nothing was measured.
var ErrNoConnections = errors.New("loadgen: no pair connected")
