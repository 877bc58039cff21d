package firefox

import (
	"log/slog"
	"regexp"

	"github.com/rtckit/rtckit/internal/linelog"
)

// endpointLine is how Firefox announces its WebDriver BiDi server on
// stderr, for example "WebDriver BiDi listening on ws://127.0.0.1:36519".
var endpointLine = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// output is an io.Writer for Firefox's stdout and stderr: it logs each
// complete line at debug level and sends the first announced WebDriver
// BiDi endpoint on endpoint.
type output struct {
	*linelog.Writer
	endpoint chan string // buffered; receives at most one value

	// found is only touched by line, which the linelog.Writer never runs
	// twice at once.
	found bool
}

func newOutput(l *slog.Logger) *output {
	w := &output{endpoint: make(chan string, 1)}
	w.Writer = linelog.New(l, w.line)
	return w
}

func (w *output) line(line []byte) {
	if m := endpointLine.FindSubmatch(line); m != nil && !w.found {
		w.found = true
		w.endpoint <- string(m[1])
	}
}
