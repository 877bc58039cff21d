package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// MaxSendLag is how far Send may fall behind its schedule (the process was
// stopped, the machine was busy) before it gives up on catching up: it then
// moves the schedule forward instead of sending the missed frames in a burst.
const MaxSendLag = 500 * time.Millisecond

// SendStats counts what Send has sent. Its methods are safe for concurrent
// use, so a status line can read it while Send runs; the zero value is ready.
type SendStats struct {
	frames atomic.Uint64
	bytes  atomic.Uint64
	late   atomic.Uint64
}

// SendSnapshot is a copy of SendStats at one moment.
type SendSnapshot struct {
	// Frames is the number of frames (video pictures, Opus packets) sent.
	Frames uint64 `json:"frames"`
	// Bytes is the number of frame bytes sent, without RTP overhead.
	Bytes uint64 `json:"bytes"`
	// Resyncs counts the times Send fell more than MaxSendLag behind and
	// moved its schedule forward.
	Resyncs uint64 `json:"resyncs"`
}

// Snapshot returns the current counts.
func (s *SendStats) Snapshot() SendSnapshot {
	return SendSnapshot{Frames: s.frames.Load(), Bytes: s.bytes.Load(), Resyncs: s.late.Load()}
}

// Send writes the frames of src to track in real time: frame n goes out when
// the durations of frames 0..n-1 have passed since the first, measured from
// the start, so waiting errors do not add up. It returns nil when src ends,
// ctx.Err() when ctx is cancelled, and otherwise the first error of src or
// of the track. stats may be nil. Send does not close src.
func Send(ctx context.Context, src Source, track *webrtc.TrackLocalStaticSample, stats *SendStats) error {
	err := pace(ctx, src, track.WriteSample, stats, realClock{})
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrBadMedia) && !errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("sending track %s: %w", track.ID(), err)
	}
	return err
}

// clock is the time source of pace; tests replace it.
type clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx is done, and then returns ctx.Err().
	Sleep(ctx context.Context, d time.Duration) error
}

// realClock is the system clock.
type realClock struct{}

// Now returns the current time.
func (realClock) Now() time.Time { return time.Now() }

// Sleep waits for d or for ctx.
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pace is Send with the sample writer and the clock injected.
func pace(ctx context.Context, src Source, write func(media.Sample) error, stats *SendStats, clk clock) error {
	if stats == nil {
		stats = &SendStats{}
	}
	start := clk.Now()
	var offset time.Duration // when the next frame is due, from start
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, err := src.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		due := start.Add(offset)
		switch wait := due.Sub(clk.Now()); {
		case wait > 0:
			if err := clk.Sleep(ctx, wait); err != nil {
				return err
			}
		case -wait > MaxSendLag:
			start = start.Add(-wait)
			stats.late.Add(1)
		}
		if err := write(s); err != nil {
			return err
		}
		stats.frames.Add(1)
		stats.bytes.Add(uint64(len(s.Data)))
		offset += s.Duration
	}
}
