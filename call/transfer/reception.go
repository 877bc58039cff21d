package transfer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"
	"time"
)

// writeBufferSize is the buffer between received chunks and the file.
const writeBufferSize = 256 * 1024

// reception is the state of one incoming transfer. handle runs on the data
// channel's read loop; abort on close or cancellation; mu orders them.
type reception struct {
	r            *Receiver
	sendAck      func(Ack) error
	closeChannel func()

	mu       sync.Mutex
	finished bool
	hdr      *Header
	started  time.Time
	tmp      *os.File
	w        *bufio.Writer
	sum      hash.Hash
	received int64

	done chan struct{} // closed when res and err are final
	res  Received
	err  error
}

func newReception(r *Receiver, sendAck func(Ack) error) *reception {
	return &reception{r: r, sendAck: sendAck, closeChannel: func() {}, done: make(chan struct{})}
}

// handle processes one message from the peer.
func (x *reception) handle(data []byte, isString bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.finished {
		return // the format says: ignore everything after the ack
	}
	if !isString {
		x.chunk(data)
		return
	}
	m, err := parseMessage(data)
	switch {
	case err != nil && x.hdr == nil && !errors.Is(err, ErrBadHeader):
		x.fail(fmt.Errorf("%w: %w", ErrBadHeader, err), "")
	case err != nil && x.hdr == nil:
		x.fail(err, "")
	case err != nil:
		x.fail(err, "")
	case x.hdr == nil && m.kind != kindHeader:
		x.fail(fmt.Errorf("%w: first message is not a file header", ErrBadHeader), "")
	case x.hdr == nil:
		x.header(m.header)
	case m.kind == kindEOF:
		x.eof()
	case m.kind == kindHeader:
		x.fail(fmt.Errorf("%w: second header", ErrProtocol), "")
	}
	// Other messages after the header are ignored, as the page does.
}

// header starts a transfer announced by h.
func (x *reception) header(h Header) {
	x.hdr = &h
	x.started = time.Now()
	x.res = Received{Name: h.Name, ExpectedSize: h.Size, ExpectedSHA256: h.SHA256, MIME: h.MIME}
	if x.r.MaxSize > 0 && h.Size > x.r.MaxSize {
		x.fail(fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, h.Size, x.r.MaxSize), "")
		return
	}
	f, err := os.CreateTemp(x.r.Dir, ".rtckit-receive-*.part")
	if err != nil {
		x.fail(err, "")
		return
	}
	x.tmp, x.w, x.sum = f, bufio.NewWriterSize(f, writeBufferSize), sha256.New()
	x.r.logger().Debug("transfer: receiving", "name", h.Name, "size", h.Size, "temp", f.Name())
	x.progress()
}

// chunk appends one binary message to the file.
func (x *reception) chunk(data []byte) {
	if x.hdr == nil {
		x.failWith(fmt.Errorf("%w: %s", ErrProtocol, ackDataFirst), ackDataFirst, "")
		return
	}
	x.received += int64(len(data))
	if x.received > x.hdr.Size {
		x.failWith(fmt.Errorf("%w: more than %d bytes", ErrSizeMismatch, x.hdr.Size),
			fmt.Sprintf("size: more than %d bytes", x.hdr.Size), "")
		return
	}
	x.sum.Write(data)
	if _, err := x.w.Write(data); err != nil {
		x.fail(err, "")
		return
	}
	x.progress()
}

// eof checks the file against the header and saves it.
func (x *reception) eof() {
	sum := hex.EncodeToString(x.sum.Sum(nil))
	if x.received != x.hdr.Size {
		x.failWith(fmt.Errorf("%w: got %d bytes, want %d", ErrSizeMismatch, x.received, x.hdr.Size),
			fmt.Sprintf("size: got %d bytes, want %d", x.received, x.hdr.Size), sum)
		return
	}
	if sum != x.hdr.SHA256 {
		x.fail(ErrHashMismatch, sum)
		return
	}
	if err := x.closeTemp(); err != nil {
		x.fail(err, sum)
		return
	}
	if err := os.Chmod(x.tmp.Name(), 0o644); err != nil { //nolint:gosec // G302: a received file is readable like a download.
		x.fail(err, sum)
		return
	}
	path, err := placeFile(x.tmp.Name(), x.r.Dir, SanitizeName(x.hdr.Name))
	if err != nil {
		x.fail(err, sum)
		return
	}
	x.res.Path = path
	x.finish(nil, &Ack{SHA256: sum, OK: true})
}

// closeTemp flushes, syncs and closes the temporary file.
func (x *reception) closeTemp() error {
	err := x.w.Flush()
	if err == nil {
		err = x.tmp.Sync()
	}
	return errors.Join(err, x.tmp.Close())
}

// fail ends the transfer with err, answering a failed file-ack carrying
// sum (empty: null).
func (x *reception) fail(err error, sum string) {
	x.failWith(err, errAck(err), sum)
}

// failWith is fail with the file-ack error text given.
func (x *reception) failWith(err error, text, sum string) {
	x.finish(err, &Ack{SHA256: sum, Error: text})
}

// abort ends the transfer from outside the read loop: on channel close
// (no ack possible) or cancellation (ack, then close the channel).
func (x *reception) abort(err error, ack bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.finished {
		return
	}
	if !ack {
		x.finish(err, nil)
		return
	}
	x.fail(err, "")
	x.closeChannel()
}

// finish removes the temporary file unless it was placed, records the
// outcome, sends ack unless it is nil and releases wait.
func (x *reception) finish(err error, ack *Ack) {
	x.finished = true
	if x.tmp != nil && x.res.Path == "" {
		_ = x.tmp.Close()
		_ = os.Remove(x.tmp.Name())
	}
	x.res.Size = x.received
	x.res.OK = err == nil
	if !x.started.IsZero() {
		x.res.Duration = time.Since(x.started)
	}
	if err != nil {
		x.res.Error = err.Error()
	}
	x.err = err
	x.r.logger().Debug("transfer: received", "name", x.res.Name, "ok", x.res.OK, "err", err)
	if ack != nil {
		x.res.SHA256 = ack.SHA256
		if sendErr := x.sendAck(*ack); sendErr != nil {
			x.r.logger().Debug("transfer: sending file-ack", "err", sendErr)
		}
	}
	close(x.done)
}

// progress reports the byte count to the Receiver's callback.
func (x *reception) progress() {
	if x.r.Progress != nil {
		x.r.Progress(*x.hdr, x.received)
	}
}
