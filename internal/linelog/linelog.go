// Package linelog turns a stream of bytes, such as a child process's stdout
// or stderr, into log records: a Writer logs each complete line at debug
// level.
package linelog

import (
	"bytes"
	"log/slog"
	"sync"
)

// MaxLine caps a line that never ends: once this many bytes are buffered
// without a newline, they are logged as one line, so a runaway writer
// cannot grow the buffer without bound.
const MaxLine = 64 << 10

// Writer is an io.Writer that logs each complete, non-empty line written
// to it at debug level, without its trailing "\r". It is safe for
// concurrent use.
type Writer struct {
	log    *slog.Logger
	onLine func(line []byte)

	mu  sync.Mutex
	buf []byte
}

// New returns a Writer that logs to l. If onLine is not nil, it is called
// with each line after the line is logged; calls never overlap, and line
// is valid only during the call.
func New(l *slog.Logger, onLine func(line []byte)) *Writer {
	return &Writer{log: l, onLine: onLine}
}

// Write logs the lines that p completes and keeps the rest for the next
// call. It never fails.
func (w *Writer) Write(p []byte) (int, error) {
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
	if len(w.buf) > MaxLine {
		w.line(w.buf)
		w.buf = nil
	}
	return len(p), nil
}

func (w *Writer) line(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return
	}
	w.log.Debug(string(line))
	if w.onLine != nil {
		w.onLine(line)
	}
}
