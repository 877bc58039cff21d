package transfer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
)

// Receiver saves the files peers send on "file" data channels into Dir.
// Its zero value other than Dir is ready to use; one Receiver serves any
// number of channels at once.
type Receiver struct {
	// Dir is the existing directory files are saved in.
	Dir string
	// MaxSize is the largest file accepted, in bytes; zero means no limit.
	MaxSize int64
	// Progress, if set, is called with the header and the byte count after
	// each chunk, and once with zero bytes when the header arrives. It runs
	// on the channel's read goroutine and must not block.
	Progress func(h Header, received int64)
	// Done, if set, is called once per channel given to Accept when its
	// transfer ends, successfully or not.
	Done func(Received, error)
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Received is the outcome of one incoming transfer.
type Received struct {
	// Name is the sender's display name for the file.
	Name string `json:"name"`
	// Path is where the file was saved; empty unless OK.
	Path string `json:"path,omitempty"`
	// Size is the number of bytes received.
	Size int64 `json:"size"`
	// ExpectedSize and ExpectedSHA256 are what the header announced.
	ExpectedSize   int64  `json:"expected_size"`
	ExpectedSHA256 string `json:"expected_sha256"`
	// SHA256 is the SHA-256 of the received bytes, empty when not computed.
	SHA256 string `json:"sha256,omitempty"`
	// MIME is the media type the sender announced.
	MIME string `json:"mime,omitempty"`
	// OK is true when the file was saved with a matching size and SHA-256.
	OK bool `json:"ok"`
	// Error says why the transfer failed; empty when OK.
	Error string `json:"error,omitempty"`
	// Duration runs from the header to the end of the transfer.
	Duration time.Duration `json:"duration_ns"`
}

// Accept starts receiving the transfer on dc, a channel labelled "file"
// opened by the peer, and returns at once; Done reports the outcome. Call
// it from the PeerConnection's OnDataChannel handler, so that no message
// arrives before its handlers are set. Cancelling ctx aborts the transfer:
// the peer gets a failed file-ack, the channel is closed and nothing is
// left in Dir.
func (r *Receiver) Accept(ctx context.Context, dc *webrtc.DataChannel) {
	x := r.start(dc)
	go func() {
		res, err := x.wait(ctx)
		if r.Done != nil {
			r.Done(res, err)
		}
	}()
}

// Receive is Accept that blocks until the transfer ends and returns its
// outcome; the error wraps ErrBadHeader, ErrTooLarge, ErrProtocol,
// ErrSizeMismatch, ErrHashMismatch, ErrClosed or ctx's error. Done is not
// called.
func (r *Receiver) Receive(ctx context.Context, dc *webrtc.DataChannel) (Received, error) {
	return r.start(dc).wait(ctx)
}

// start sets dc's handlers for a new transfer.
func (r *Receiver) start(dc *webrtc.DataChannel) *reception {
	x := newReception(r, func(a Ack) error {
		b, err := encodeAck(a)
		if err != nil {
			return err
		}
		return dc.SendText(string(b))
	})
	x.closeChannel = func() { _ = dc.Close() }
	dc.OnMessage(func(m webrtc.DataChannelMessage) { x.handle(m.Data, m.IsString) })
	dc.OnClose(func() { x.abort(ErrClosed, false) })
	return x
}

// wait blocks until the transfer ends or ctx is done.
func (x *reception) wait(ctx context.Context) (Received, error) {
	select {
	case <-x.done:
	case <-ctx.Done():
		x.abort(ctx.Err(), true)
		<-x.done
	}
	return x.res, x.err
}

// logger returns r's logger or one that discards.
func (r *Receiver) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// errAck maps a receiver error to the file-ack error string.
func errAck(err error) string {
	switch {
	case errors.Is(err, ErrBadHeader):
		return ackBadHeader
	case errors.Is(err, ErrTooLarge):
		return ackTooLarge
	case errors.Is(err, ErrProtocol):
		return ackBadMessage
	case errors.Is(err, ErrHashMismatch):
		return ackHashMismatch
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return ackCancelled
	default:
		return ackCannotSave
	}
}
