package transfer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// SendOn sends one transfer on dc, a channel labelled "file" that this side
// created and that is open or opening: the header h, then the content read
// from r in ChunkSize messages, then "eof"; it waits for the file-ack and
// closes dc. r must yield exactly h.Size bytes. Send is SendOn with a file;
// SendOn is for content that is not a file, and lets tests announce a
// header that does not match the content.
func SendOn(ctx context.Context, dc *webrtc.DataChannel, h Header, r io.Reader, opts SendOptions) (Result, error) {
	defer func() { _ = dc.Close() }()
	res := Result{Name: h.Name, Size: h.Size, SHA256: h.SHA256}
	s := newSender(dc, opts)
	if err := s.waitOpen(ctx); err != nil {
		return res, err
	}
	start := time.Now()
	ack, err := s.send(ctx, h, r)
	res.Duration = time.Since(start)
	if err != nil {
		return res, err
	}
	res.PeerSHA256, res.PeerError = ack.SHA256, ack.Error
	if err := verdict(ack, h.SHA256); err != nil {
		return res, err
	}
	res.OK = true
	if s := res.Duration.Seconds(); s > 0 {
		res.Throughput = float64(res.Size) / s
	}
	return res, nil
}

// verdict maps the peer's file-ack to nil or an error wrapping ErrRejected.
func verdict(ack Ack, sum string) error {
	switch {
	case ack.OK && ack.SHA256 == sum:
		return nil
	case ack.OK:
		return fmt.Errorf("%w: %w: the peer acknowledged sha256 %s, ours is %s", ErrRejected, ErrHashMismatch, ack.SHA256, sum)
	case ack.Error == ackTooLarge:
		return fmt.Errorf("%w: %w", ErrRejected, ErrTooLarge)
	case ack.Error == ackHashMismatch:
		return fmt.Errorf("%w: %w", ErrRejected, ErrHashMismatch)
	default:
		return fmt.Errorf("%w: %q", ErrRejected, ack.Error)
	}
}

// readBlock is how much of the file one read takes: 64 chunks, one system
// call where a chunk at a time took 64.
const readBlock = 64 * ChunkSize

// sender holds the events of one outgoing channel.
type sender struct {
	dc   *webrtc.DataChannel
	opts SendOptions
	log  *slog.Logger

	opened chan struct{} // closed on open
	closed chan struct{} // closed on close
	low    chan struct{} // a token per drain below the low threshold
	acks   chan Ack      // the first file-ack
	once   sync.Once     // lets only the first file-ack into acks
}

func newSender(dc *webrtc.DataChannel, opts SendOptions) *sender {
	if opts.HighWater == 0 {
		opts.HighWater = DefaultHighWater
	}
	if opts.LowWater == 0 || opts.LowWater >= opts.HighWater {
		opts.LowWater = min(DefaultLowWater, opts.HighWater/4)
	}
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &sender{
		dc: dc, opts: opts, log: log,
		opened: make(chan struct{}), closed: make(chan struct{}),
		low: make(chan struct{}, 1), acks: make(chan Ack, 1),
	}
	var openOnce, closeOnce sync.Once
	dc.OnOpen(func() { openOnce.Do(func() { close(s.opened) }) })
	dc.OnClose(func() { closeOnce.Do(func() { close(s.closed) }) })
	dc.SetBufferedAmountLowThreshold(opts.LowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case s.low <- struct{}{}:
		default:
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if !m.IsString {
			return
		}
		// Like the page, ignore what is not a well-formed file-ack.
		if msg, err := parseMessage(m.Data); err == nil && msg.kind == kindAck {
			s.once.Do(func() { s.acks <- msg.ack })
		}
	})
	return s
}

// waitOpen waits until the channel is open.
func (s *sender) waitOpen(ctx context.Context) error {
	t := time.NewTimer(s.opts.OpenTimeout)
	defer t.Stop()
	select {
	case <-s.opened:
		return nil
	case <-s.closed:
		return fmt.Errorf("%w: the peer closed the file channel before it opened (does it receive files, e.g. rtckit call --receive DIR?)", ErrClosed)
	case <-t.C:
		return fmt.Errorf("data channel did not open within %v", s.opts.OpenTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send sends the whole transfer and returns the peer's file-ack.
func (s *sender) send(ctx context.Context, h Header, r io.Reader) (Ack, error) {
	hdr, err := encodeHeader(h)
	if err != nil {
		return Ack{}, err
	}
	if err := s.dc.SendText(string(hdr)); err != nil {
		return Ack{}, s.sendErr(err)
	}
	// The file is read a block at a time and sent a chunk at a time: pion
	// copies what it is given, so the block is reused.
	block := make([]byte, min(int64(readBlock), max(h.Size, 1)))
	var sent int64
	for sent < h.Size {
		n, err := io.ReadFull(r, block[:min(int64(len(block)), h.Size-sent)])
		if err != nil {
			return Ack{}, fmt.Errorf("reading the file after %d bytes: %w", sent, err)
		}
		for off := 0; off < n; off += ChunkSize {
			if ack, done, err := s.drain(ctx); err != nil {
				return Ack{}, err
			} else if done && ack.OK {
				return Ack{}, fmt.Errorf("%w: file-ack with ok before eof", ErrProtocol)
			} else if done {
				return ack, nil // the peer rejected the file early
			}
			chunk := block[off:min(off+ChunkSize, n)]
			if err := s.dc.Send(chunk); err != nil {
				return Ack{}, s.sendErr(err)
			}
			sent += int64(len(chunk))
			if s.opts.Progress != nil {
				s.opts.Progress(sent, h.Size)
			}
		}
	}
	if h.Size == 0 && s.opts.Progress != nil {
		s.opts.Progress(0, 0)
	}
	if err := s.dc.SendText(eofMessage); err != nil {
		return Ack{}, s.sendErr(err)
	}
	return s.waitAck(ctx)
}

// drain waits while more than HighWater bytes are queued. It returns
// done with the ack if the peer answered early (a rejection), and fails
// when the queue does not drain below LowWater within StallTimeout (the
// peer stopped reading while the connection stays up).
func (s *sender) drain(ctx context.Context) (Ack, bool, error) {
	var stall <-chan time.Time
	for s.dc.BufferedAmount() > s.opts.HighWater {
		if stall == nil {
			t := time.NewTimer(s.opts.StallTimeout)
			defer t.Stop()
			stall = t.C
		}
		select {
		case <-s.low:
		case <-stall:
			return Ack{}, true, fmt.Errorf("%w: %d bytes queued and none sent for %v", ErrStalled, s.dc.BufferedAmount(), s.opts.StallTimeout)
		case ack := <-s.acks:
			return ack, true, nil
		case <-s.closed:
			return Ack{}, true, fmt.Errorf("%w: during the transfer", ErrClosed)
		case <-ctx.Done():
			return Ack{}, true, ctx.Err()
		}
	}
	select {
	case ack := <-s.acks:
		return ack, true, nil
	case <-ctx.Done():
		return Ack{}, true, ctx.Err()
	default:
		return Ack{}, false, nil
	}
}

// waitAck waits for the file-ack.
func (s *sender) waitAck(ctx context.Context) (Ack, error) {
	t := time.NewTimer(s.opts.AckTimeout)
	defer t.Stop()
	select {
	case ack := <-s.acks:
		return ack, nil
	case <-s.closed:
		return Ack{}, fmt.Errorf("%w: before the file-ack", ErrClosed)
	case <-t.C:
		return Ack{}, ErrAckTimeout
	case <-ctx.Done():
		return Ack{}, ctx.Err()
	}
}

// sendErr explains a failed send: a closed channel is ErrClosed.
func (s *sender) sendErr(err error) error {
	select {
	case <-s.closed:
		return fmt.Errorf("%w: %v", ErrClosed, err)
	default:
	}
	if s.dc.ReadyState() != webrtc.DataChannelStateOpen {
		return fmt.Errorf("%w: %v", ErrClosed, err)
	}
	return err
}
