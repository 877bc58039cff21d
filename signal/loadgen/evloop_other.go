//go:build !linux

package loadgen

import (
	"context"
	"errors"
)

// loopSupported tells whether this platform has the event-loop engine.
const loopSupported = false

// loopProbe fails: the event loop is Linux's.
func loopProbe() error { return errors.New("the event-loop engine needs Linux") }

// eventLoop stands in for the Linux event loop, which Options never
// select here.
type eventLoop struct{}

// newEventLoop fails: the event loop is Linux's.
func (r *run) newEventLoop([]*pair) (*eventLoop, error) {
	return nil, errors.New("loadgen: the event-loop engine needs Linux")
}

func (el *eventLoop) runLoop(context.Context, func()) {}

func (el *eventLoop) close() {}
