package transfer

import "errors"

// Errors of Send and of a Receiver. Returned errors wrap one or more of
// these, so callers test for them with errors.Is.
var (
	// ErrRejected means the receiver answered the transfer with ok: false,
	// or acknowledged a SHA-256 other than the sender's.
	ErrRejected = errors.New("transfer rejected by the peer")

	// ErrHashMismatch means the SHA-256 of the received bytes differs from
	// the one the header announced.
	ErrHashMismatch = errors.New("sha256 mismatch")

	// ErrSizeMismatch means the number of received bytes differs from the
	// size the header announced.
	ErrSizeMismatch = errors.New("size mismatch")

	// ErrTooLarge means the file is larger than the receiver accepts.
	ErrTooLarge = errors.New("file too large")

	// ErrBadHeader means the first message of a transfer is not a valid
	// header.
	ErrBadHeader = errors.New("bad header")

	// ErrProtocol means the peer sent a message the format does not allow
	// at that point, such as data before the header or a malformed message.
	ErrProtocol = errors.New("file transfer protocol violation")

	// ErrClosed means the data channel closed before the transfer finished.
	ErrClosed = errors.New("data channel closed before the transfer finished")

	// ErrAckTimeout means the receiver did not acknowledge the file within
	// SendOptions.AckTimeout after the last message.
	ErrAckTimeout = errors.New("no file-ack from the peer in time")

	// ErrStalled means the queued data did not drain for
	// SendOptions.StallTimeout during the transfer.
	ErrStalled = errors.New("transfer stalled")

	// ErrNotRegular means the path given to Send is not a regular file.
	ErrNotRegular = errors.New("not a regular file")
)
