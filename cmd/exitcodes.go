package cmd

import (
	"errors"
	"strings"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/call/capture"
	"github.com/rtckit/rtckit/call/media"
	"github.com/rtckit/rtckit/diag/icegather"
	"github.com/rtckit/rtckit/diag/stunprobe"
	"github.com/rtckit/rtckit/peer"
	"github.com/rtckit/rtckit/signal/hubclient"
)

// Exit codes of rtckit. This is the one place where errors become exit codes;
// docs/exit-codes.md documents every value.
const (
	// ExitOK means the command did what was asked and every check passed.
	ExitOK = 0
	// ExitFailure is an unexpected error (I/O, internal failure).
	ExitFailure = 1
	// ExitUsage is a bad flag, argument or URI.
	ExitUsage = 2
	// ExitNoUDP means no UDP reply came from any server while another transport worked.
	ExitNoUDP = 3
	// ExitUnreachable means no server answered over any transport.
	ExitUnreachable = 4
	// ExitInconclusive means servers answered but the behaviour could not be classified.
	ExitInconclusive = 5
	// ExitCheckFailed means a requested check failed: a required candidate
	// type is missing or a relay check did not pass.
	ExitCheckFailed = 6
	// ExitNoCall means a call could not be established: the peer is not
	// online, declined, never answered, or ICE/DTLS did not connect in time.
	ExitNoCall = 7
	// ExitDropped means a connected call ended abnormally: the connection
	// failed and ICE restarts did not bring it back.
	ExitDropped = 8
	// ExitInterrupted means `stun probe` or `ice gather` was interrupted
	// (SIGINT or SIGTERM) before it finished: its report is partial. The
	// value is the shell's for a process ended by SIGINT (128+2).
	ExitInterrupted = 130
)

// exitError carries an explicit exit code and whether the message was already shown.
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return "exit status"
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a usage error (exit code 2).
func usageError(err error) error {
	return &exitError{code: ExitUsage, err: err}
}

// ExitCode maps an error returned by a command to rtckit's exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.Is(err, peer.ErrBadURI):
		return ExitUsage
	case errors.Is(err, stunprobe.ErrInterrupted), errors.Is(err, icegather.ErrInterrupted):
		return ExitInterrupted
	case errors.Is(err, stunprobe.ErrNoUDP):
		return ExitNoUDP
	case errors.Is(err, stunprobe.ErrUnreachable):
		return ExitUnreachable
	case errors.Is(err, stunprobe.ErrInconclusive):
		return ExitInconclusive
	case errors.Is(err, icegather.ErrMissingTypes), errors.Is(err, icegather.ErrRelayCheckFailed):
		return ExitCheckFailed
	case errors.Is(err, peer.ErrICEConfig):
		return ExitUsage
	}
	if code, ok := callExitCode(err); ok {
		return code
	}
	// Errors raised by cobra itself for unknown commands and bad arguments.
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires ", "invalid argument"} {
		if strings.HasPrefix(msg, prefix) {
			return ExitUsage
		}
	}
	return ExitFailure
}

func isSilent(err error) bool {
	var ee *exitError
	return errors.As(err, &ee) && ee.silent
}

// callExitCode maps the errors of `rtckit call`.
func callExitCode(err error) (int, bool) {
	switch {
	case errors.Is(err, call.ErrUsage), errors.Is(err, call.ErrBadToken), errors.Is(err, hubclient.ErrBadURL),
		errors.Is(err, media.ErrUnsupported), errors.Is(err, media.ErrBadMedia),
		errors.Is(err, capture.ErrNoDevice), errors.Is(err, capture.ErrSource):
		return ExitUsage, true
	case errors.Is(err, hubclient.ErrConnect):
		return ExitUnreachable, true
	case errors.Is(err, call.ErrCheckFailed):
		return ExitCheckFailed, true
	case errors.Is(err, call.ErrPeerNotFound), errors.Is(err, call.ErrDeclined), errors.Is(err, call.ErrNoAnswer),
		errors.Is(err, call.ErrSetup), errors.Is(err, hubclient.ErrRefused):
		return ExitNoCall, true
	case errors.Is(err, call.ErrDropped):
		return ExitDropped, true
	}
	return 0, false
}
