package linelog

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string // lines logged and passed to onLine, in order
	}{
		{"one line", []string{"hello\n"}, []string{"hello"}},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"crlf and blanks", []string{"a\r\n\r\n\nb\n"}, []string{"a", "b"}},
		{"unfinished line is kept", []string{"a\nb"}, []string{"a"}},
		{"runaway line", []string{strings.Repeat("x", MaxLine+1)}, []string{strings.Repeat("x", MaxLine+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logged bytes.Buffer
			var got []string
			w := New(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})),
				func(line []byte) { got = append(got, string(line)) })
			for _, c := range tt.chunks {
				if n, err := io.WriteString(w, c); n != len(c) || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v", len(c), n, err)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("lines %q, want %q", got, tt.want)
			}
			if n := strings.Count(logged.String(), "level=DEBUG"); n != len(tt.want) {
				t.Errorf("%d records logged, want %d:\n%s", n, len(tt.want), logged.String())
			}
		})
	}
}

func TestWriterNilOnLine(t *testing.T) {
	var logged bytes.Buffer
	w := New(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})), nil)
	if _, err := io.WriteString(w, "process output\n"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logged.String(), "process output") {
		t.Errorf("log lacks the line: %s", logged.String())
	}
}
