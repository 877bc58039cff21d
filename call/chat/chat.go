package chat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
)

// Label is the label of the chat data channel.
const Label = "chat"

// MaxMessageBytes is the longest message in bytes: longer input lines are
// sent as several messages, longer received messages are cut.
const MaxMessageBytes = 4096

// DefaultOpenTimeout bounds the wait for the channel to open.
const DefaultOpenTimeout = 30 * time.Second

// Options tunes a chat. The zero value is ready to use.
type Options struct {
	// PeerName prefixes the peer's messages; empty means "peer".
	PeerName string
	// OpenTimeout replaces DefaultOpenTimeout when positive.
	OpenTimeout time.Duration
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Chat is one side of a chat on a data channel.
type Chat struct {
	dc     *webrtc.DataChannel
	opts   Options
	log    *slog.Logger
	prefix string

	mu  sync.Mutex // serialises writes to out
	out io.Writer

	opened chan struct{}
	closed chan struct{}
}

// Attach sets dc's handlers so that the peer's messages are written to out
// as "name: text" lines, and returns the chat; Run then sends lines. Call
// it from the PeerConnection's OnDataChannel handler for a channel the peer
// opened, so that no message arrives before the handlers are set.
func Attach(dc *webrtc.DataChannel, out io.Writer, opts Options) *Chat {
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = DefaultOpenTimeout
	}
	name := sanitize(opts.PeerName)
	if name == "" {
		name = "peer"
	}
	c := &Chat{
		dc: dc, opts: opts, log: opts.Logger, prefix: name + ": ", out: out,
		opened: make(chan struct{}), closed: make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	var openOnce, closeOnce sync.Once
	dc.OnOpen(func() { openOnce.Do(func() { close(c.opened) }) })
	dc.OnClose(func() { closeOnce.Do(func() { close(c.closed) }) })
	dc.OnMessage(c.receive)
	return c
}

// Run is Attach followed by Chat.Run, for a channel this side created.
func Run(ctx context.Context, dc *webrtc.DataChannel, in io.Reader, out io.Writer, opts Options) error {
	return Attach(dc, out, opts).Run(ctx, in)
}

// Run sends every line read from in to the peer until in ends, the channel
// closes or ctx is done. When in ends it closes the channel and returns
// nil; when the peer closes the channel it returns nil; when ctx is done it
// returns ctx's error. A goroutine blocked reading in may outlive Run until
// in returns (a terminal cannot be interrupted).
func (c *Chat) Run(ctx context.Context, in io.Reader) error {
	t := time.NewTimer(c.opts.OpenTimeout)
	defer t.Stop()
	select {
	case <-c.opened:
	case <-c.closed:
		return ErrClosed
	case <-t.C:
		return fmt.Errorf("chat channel did not open within %v", c.opts.OpenTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		readErr <- readLines(in, lines, stop)
	}()
	for {
		select {
		case line := <-lines:
			if err := c.dc.SendText(line); err != nil {
				select {
				case <-c.closed:
					return nil
				default:
					return fmt.Errorf("sending a chat message: %w", err)
				}
			}
		case err := <-readErr:
			_ = c.dc.Close()
			return err
		case <-c.closed:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// receive prints one message from the peer.
func (c *Chat) receive(m webrtc.DataChannelMessage) {
	if !m.IsString {
		return
	}
	data := m.Data
	if len(data) > MaxMessageBytes {
		data = data[:MaxMessageBytes]
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.out, c.prefix+sanitize(string(data))+"\n"); err != nil {
		c.log.Debug("chat: writing a message", "err", err)
	}
}

// readLines sends the lines of in, split by splitLines, until in ends
// (nil) or fails, or stop closes.
func readLines(in io.Reader, lines chan<- string, stop <-chan struct{}) error {
	sc := bufio.NewScanner(in)
	sc.Split(splitLines)
	for sc.Scan() {
		line := strings.ToValidUTF8(sc.Text(), "\uFFFD")
		if line == "" {
			continue
		}
		select {
		case lines <- line:
		case <-stop:
			return nil
		}
	}
	return sc.Err()
}

// splitLines is a bufio.SplitFunc for lines without their "\n" or "\r\n",
// cutting lines longer than MaxMessageBytes at a rune boundary.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data[:min(len(data), MaxMessageBytes+1)], '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte("\r")), nil
	}
	if len(data) > MaxMessageBytes {
		n := MaxMessageBytes
		for n > 0 && !utf8.RuneStart(data[n]) {
			n--
		}
		if n == 0 {
			n = MaxMessageBytes
		}
		return n, data[:n], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), bytes.TrimSuffix(data, []byte("\r")), nil
	}
	return 0, nil, nil
}

// sanitize makes peer text safe for a terminal: valid UTF-8, control and
// format characters (escape sequences, bidirectional overrides) replaced by
// U+FFFD, tabs kept.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' {
			return r
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
