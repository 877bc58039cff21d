package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Flow-control defaults of Send: the sender pauses when more than
// DefaultHighWater bytes are queued on the channel and resumes when the
// queue drains below DefaultLowWater. The browser page uses 1 MiB and
// 256 KiB; a larger queue keeps pion's SCTP busy while the sending
// goroutine waits to be scheduled (BenchmarkTransfer).
const (
	DefaultHighWater = 4 * 1024 * 1024
	DefaultLowWater  = 1024 * 1024
)

// Timeouts of Send.
const (
	// DefaultOpenTimeout bounds the wait for the new channel to open,
	// which may include a renegotiation of the call.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultAckTimeout bounds the wait for the file-ack after the last
	// message was queued, including the time to drain the queue.
	DefaultAckTimeout = 30 * time.Second
	// DefaultStallTimeout bounds a wait for the queue to drain during the
	// transfer: the peer's SCTP stack stopped taking data while the
	// connection stays up.
	DefaultStallTimeout = 30 * time.Second
)

// SendOptions tunes Send. The zero value is ready to use.
type SendOptions struct {
	// Name is the display name sent to the peer; empty means the path's
	// base name.
	Name string
	// MIME is the media type sent to the peer; empty means the one the
	// name's extension suggests, if any.
	MIME string
	// HighWater and LowWater are the flow-control thresholds in bytes;
	// zero means DefaultHighWater and DefaultLowWater. A LowWater not below
	// HighWater is replaced by the smaller of DefaultLowWater and a quarter
	// of HighWater.
	HighWater, LowWater uint64
	// OpenTimeout, AckTimeout and StallTimeout replace
	// DefaultOpenTimeout, DefaultAckTimeout and DefaultStallTimeout when
	// positive.
	OpenTimeout, AckTimeout, StallTimeout time.Duration
	// Progress, if set, is called after each chunk is queued with the bytes
	// queued so far and the file's size, and once with (0, 0) for an
	// empty file.
	Progress func(sent, size int64)
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Result is the outcome of Send.
type Result struct {
	// Name is the display name sent in the header.
	Name string `json:"name"`
	// Size is the file's size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the file's SHA-256 in lowercase hex.
	SHA256 string `json:"sha256"`
	// OK is true when the peer acknowledged the file with ok and the same
	// SHA-256.
	OK bool `json:"ok"`
	// PeerSHA256 is the SHA-256 the peer computed; empty if none.
	PeerSHA256 string `json:"peer_sha256,omitempty"`
	// PeerError is the peer's reason for a failed transfer.
	PeerError string `json:"peer_error,omitempty"`
	// Duration runs from sending the header to the file-ack.
	Duration time.Duration `json:"duration_ns"`
	// Throughput is Size divided by Duration, in bytes per second.
	Throughput float64 `json:"bytes_per_second"`
}

// Send sends the file at path to the peer of pc on a new data channel
// labelled "file", in the format of docs/file-transfer.md, and waits for
// the peer's acknowledgement. The file is read twice, once for its SHA-256
// (the header carries it) and once while sending, never held in memory. If
// pc has no SCTP transport yet, the caller must renegotiate when pc asks
// (OnNegotiationNeeded). The error wraps ErrRejected (with ErrTooLarge or
// ErrHashMismatch when the peer said so), ErrClosed, ErrAckTimeout, ErrStalled,
// ErrNotRegular or ctx's error; Result is filled as far as the transfer got.
func Send(ctx context.Context, pc *webrtc.PeerConnection, path string, opts SendOptions) (Result, error) {
	f, err := os.Open(path) //nolint:gosec // G304: sending a file the user named is the point.
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return Result{}, err
	}
	if !st.Mode().IsRegular() {
		return Result{}, fmt.Errorf("%s: %w", path, ErrNotRegular)
	}
	name := opts.Name
	if name == "" {
		name = filepath.Base(path)
	}
	typ := opts.MIME
	if typ == "" {
		typ, _, _ = strings.Cut(mime.TypeByExtension(filepath.Ext(name)), ";")
	}
	h := Header{Name: name, MIME: typ}
	h.Size, h.SHA256, err = hashFile(ctx, f)
	if err != nil {
		return Result{Name: name}, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return Result{Name: name}, err
	}
	dc, err := pc.CreateDataChannel(Label, nil)
	if err != nil {
		return Result{Name: name, Size: h.Size, SHA256: h.SHA256}, err
	}
	return SendOn(ctx, dc, h, io.LimitReader(f, h.Size), opts)
}

// hashFile returns the size and SHA-256 of r's content, stopping early
// when ctx is done.
func hashFile(ctx context.Context, r io.Reader) (int64, string, error) {
	sum := sha256.New()
	n, err := io.Copy(sum, ctxReader{ctx, r})
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(sum.Sum(nil)), nil
}

// ctxReader is a Reader that fails once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
