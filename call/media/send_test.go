package media

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// fakeClock is a clock whose sleeps oversleep by a fixed amount, to show
// that pace does not let such errors add up.
type fakeClock struct {
	now       time.Time
	oversleep time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.now = c.now.Add(d + c.oversleep)
	return ctx.Err()
}

// sliceSource is a Source over fixed samples.
type sliceSource struct {
	samples []media.Sample
	err     error // returned after the samples instead of io.EOF, if set
}

func (s *sliceSource) Kind() webrtc.RTPCodecType        { return webrtc.RTPCodecTypeAudio }
func (s *sliceSource) Codec() webrtc.RTPCodecCapability { return codecOpus }
func (s *sliceSource) Close() error                     { return nil }
func (s *sliceSource) Next() (media.Sample, error) {
	if len(s.samples) == 0 {
		if s.err != nil {
			return media.Sample{}, s.err
		}
		return media.Sample{}, io.EOF
	}
	next := s.samples[0]
	s.samples = s.samples[1:]
	return next, nil
}

// samples returns n samples of duration d each.
func samples(n int, d time.Duration) []media.Sample {
	out := make([]media.Sample, n)
	for i := range out {
		out[i] = media.Sample{Data: []byte{byte(i), 1, 2}, Duration: d}
	}
	return out
}

func TestPaceIsDriftFree(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := &fakeClock{now: start, oversleep: 3 * time.Millisecond}
	const writeCost = 2 * time.Millisecond
	var sent []time.Duration
	write := func(media.Sample) error {
		sent = append(sent, clk.now.Sub(start))
		clk.now = clk.now.Add(writeCost)
		return nil
	}
	var stats SendStats
	if err := pace(context.Background(), &sliceSource{samples: samples(500, 20*time.Millisecond)}, write, &stats, clk); err != nil {
		t.Fatal(err)
	}
	if len(sent) != 500 {
		t.Fatalf("sent %d samples", len(sent))
	}
	for i, at := range sent {
		due := time.Duration(i) * 20 * time.Millisecond
		// Sleeping for 10 s of frames, each 5 ms late, would be 2.5 s
		// behind if errors added up; pace stays within one error.
		if late := at - due; late < 0 || late > 3*time.Millisecond {
			t.Fatalf("sample %d sent at %v, due at %v", i, at, due)
		}
	}
	if got := stats.Snapshot(); got != (SendSnapshot{Frames: 500, Bytes: 1500}) {
		t.Errorf("stats %+v", got)
	}
}

func TestPaceResyncsAfterAStall(t *testing.T) {
	start := time.Unix(1000, 0)
	clk := &fakeClock{now: start}
	var sent []time.Duration
	write := func(s media.Sample) error {
		sent = append(sent, clk.now.Sub(start))
		if s.Data[0] == 2 {
			clk.now = clk.now.Add(2 * time.Second) // the process was stopped
		}
		return nil
	}
	var stats SendStats
	if err := pace(context.Background(), &sliceSource{samples: samples(6, 100*time.Millisecond)}, write, &stats, clk); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{0, 100, 200, 2200, 2300, 2400}
	for i := range want {
		if sent[i] != want[i]*time.Millisecond {
			t.Errorf("sample %d sent at %v, want %vms (no burst after the stall)", i, sent[i], want[i])
		}
	}
	if got := stats.Snapshot().Resyncs; got != 1 {
		t.Errorf("resyncs %d, want 1", got)
	}
}

func TestPaceErrors(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	boom := errors.New("boom")
	ok := func(media.Sample) error { return nil }
	if err := pace(context.Background(), &sliceSource{samples: samples(2, time.Millisecond), err: boom}, ok, nil, clk); !errors.Is(err, boom) {
		t.Errorf("source error: got %v", err)
	}
	failing := func(media.Sample) error { return io.ErrClosedPipe }
	if err := pace(context.Background(), &sliceSource{samples: samples(2, time.Millisecond)}, failing, nil, clk); !errors.Is(err, io.ErrClosedPipe) {
		t.Errorf("write error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pace(ctx, &sliceSource{samples: samples(2, time.Millisecond)}, ok, nil, clk); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestSendRealTime(t *testing.T) {
	track, err := webrtc.NewTrackLocalStaticSample(codecOpus, "audio", "rtckit")
	if err != nil {
		t.Fatal(err)
	}
	var stats SendStats
	start := time.Now()
	// An unbound track drops samples, which is all this test needs: Send
	// must take the samples' total duration less the last one.
	if err := Send(context.Background(), &sliceSource{samples: samples(11, 20*time.Millisecond)}, track, &stats); err != nil {
		t.Fatal(err)
	}
	// Paced: never faster than the media's own time. The upper bound only
	// catches a pacing far off (a busy machine may add some).
	if elapsed := time.Since(start); elapsed < 200*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("sending 11 × 20 ms took %v, want about 200ms", elapsed)
	}
	if got := stats.Snapshot().Frames; got != 11 {
		t.Errorf("sent %d frames", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	err = Send(ctx, &sliceSource{samples: samples(100, 100*time.Millisecond)}, track, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Send returned %v", err)
	}
	// 10 s of samples: returning well before shows the cancellation.
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("cancelled Send took %v to return", elapsed)
	}
}
