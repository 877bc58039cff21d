package call

import "errors"

// Errors of a call; every error Run returns wraps one of them, and cmd maps
// them to documented exit codes (docs/exit-codes.md).
var (
	// ErrUsage is an invalid option combination.
	ErrUsage = errors.New("invalid call options")
	// ErrPeerNotFound means the peer to call is not registered on the hub.
	ErrPeerNotFound = errors.New("peer not online")
	// ErrDeclined means the peer hung up before the call connected.
	ErrDeclined = errors.New("call declined")
	// ErrNoAnswer means no answer (or no call, when answering) came in time.
	ErrNoAnswer = errors.New("no answer")
	// ErrSetup means the call was answered but ICE or DTLS did not connect.
	ErrSetup = errors.New("call setup failed")
	// ErrDropped means a connected call ended abnormally: the connection
	// failed and ICE restarts did not bring it back, or signaling was lost.
	ErrDropped = errors.New("call dropped")
	// ErrBadToken is a serverless token that cannot be decoded.
	ErrBadToken = errors.New("bad call token")
	// ErrCheckFailed means the call worked but an assertion (--expect-path,
	// --max-loss, --min-frames, …), frame verification or a file transfer
	// failed.
	ErrCheckFailed = errors.New("call check failed")
)
