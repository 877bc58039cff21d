package firefox

import (
	"bytes"
	"log/slog"
	"regexp"
	"sync"
)

// endpointLine is how Firefox announces its WebDriver BiDi server on
// stderr, for example "WebDriver BiDi listening on ws://127.0.0.1:36519".
var endpointLine = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// output is an io.Writer for Firefox's stdout and stderr: it logs each
// complete line at debug level and sends the first announced WebDriver
// BiDi endpoint on endpoint.
type output struct {
	log      *slog.Logger
	endpoint chan string // buffered; receives at most one value

	mu    sync.Mutex
	buf   []byte
	found bool
}

func newOutput(l *slog.Logger) *output {
	return &output{log: l, endpoint: make(chan string, 1)}
}

// maxLine caps a line that never ends, so a runaway writer cannot grow the
// buffer without bound.
const maxLine = 64 << 10

func (w *output) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *output) line(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	w.log.Debug(string(line))
	if m := endpointLine.FindSubmatch(line); m != nil && !w.found {
		w.found = true
		w.endpoint <- string(m[1])
	}
}
