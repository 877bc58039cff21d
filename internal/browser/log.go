package browser

import (
	"bytes"
	"log/slog"
	"sync"
)

// lineLogger is an io.Writer that logs each complete line written to it at
// debug level; Chromium's stdout and stderr go through it.
type lineLogger struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func newLineLogger(l *slog.Logger) *lineLogger { return &lineLogger{log: l} }

// maxLine caps a line that never ends, so a runaway writer cannot grow the
// buffer without bound.
const maxLine = 64 << 10

func (w *lineLogger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
	if len(w.buf) > maxLine {
		w.emit(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *lineLogger) emit(line []byte) {
	if line = bytes.TrimRight(line, "\r"); len(line) > 0 {
		w.log.Debug(string(line))
	}
}
