package capture

import "errors"

// Errors returned by Open.
var (
	// ErrNoDevice means the selected source has no device of a wanted
	// kind, such as a machine without a camera or microphone.
	ErrNoDevice = errors.New("no capture device")
	// ErrSource means the source name or the kinds asked for are not
	// valid.
	ErrSource = errors.New("invalid capture source")
)
