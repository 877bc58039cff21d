package call

import (
	"context"
	"sync"
)

// pipeSignaler is one end of an in-memory signaling pair.
type pipeSignaler struct {
	in, out chan Signal
	trickle bool
	once    sync.Once
	stop    chan struct{}
}

// newPipe returns two connected signalers.
func newPipe(trickle bool) (*pipeSignaler, *pipeSignaler) {
	ab, ba := make(chan Signal, 256), make(chan Signal, 256)
	return &pipeSignaler{in: ba, out: ab, trickle: trickle, stop: make(chan struct{})},
		&pipeSignaler{in: ab, out: ba, trickle: trickle, stop: make(chan struct{})}
}

func (p *pipeSignaler) Send(ctx context.Context, s Signal) error {
	select {
	case p.out <- s:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (p *pipeSignaler) Signals() <-chan Signal { return p.in }
func (p *pipeSignaler) Err() error             { return nil }
func (p *pipeSignaler) Trickle() bool          { return p.trickle }
func (p *pipeSignaler) Close()                 { p.once.Do(func() { close(p.stop) }) }
