//go:build !linux

package signal

import "net/http"

// pollSupported tells whether this platform has the event-loop transport.
const pollSupported = false

// poller is the event loop, which this platform does not have.
type poller struct{}

// servePoll is never called where pollSupported is false.
func (s *Server) servePoll(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "no event-loop transport on this platform", http.StatusInternalServerError)
}

// cutPoll has no connection to close.
func (s *Server) cutPoll() {}
