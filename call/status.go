package call

import (
	"context"
	"fmt"
	"time"
)

// statusInterval is how often the live status line is redrawn.
const statusInterval = time.Second

// status redraws the live status line (a TTY only).
func (s *session) status(line string) {
	if s.io.Status == nil {
		return
	}
	fmt.Fprintf(s.io.Status, "\r\033[K%s", line)
}

// runStatus redraws the status line every statusInterval until ctx ends,
// then clears it.
func (s *session) runStatus(ctx context.Context) {
	if s.io.Status == nil {
		return
	}
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprint(s.io.Status, "\r\033[K")
			return
		case <-t.C:
			if s.isConnected() {
				s.status(s.media.statusLine(s.connectedFor()))
			} else {
				s.status(fmt.Sprintf("connecting… ICE %s", s.pc.ICEConnectionState()))
			}
		}
	}
}
