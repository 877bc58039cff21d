package chat

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/pcpair"
	"github.com/rtckit/rtckit/peer"
	"go.uber.org/goleak"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 20 * time.Second

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// lines is an io.Writer that hands every line written to a channel.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	for _, s := range strings.SplitAfter(string(p), "\n") {
		if s != "" {
			l <- s
		}
	}
	return len(p), nil
}

// next returns the next line.
func (l lines) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-l:
		return s
	case <-time.After(testTimeout):
		t.Fatal("no chat line arrived")
		return ""
	}
}

// side is one end of a test chat: what it types and what it prints.
type side struct {
	in   *io.PipeWriter
	out  lines
	done chan error
}

// typeText writes text to the side's input.
func (s *side) typeText(t *testing.T, text string) {
	t.Helper()
	if _, err := io.WriteString(s.in, text); err != nil {
		t.Fatal(err)
	}
}

// result waits for the side's Run to return.
func (s *side) result(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(testTimeout):
		t.Fatal("Run did not return")
		return nil
	}
}

// newChat connects a chat between a (named alice) and b (named bob).
func newChat(ctx context.Context, t *testing.T) (a, b *side) {
	t.Helper()
	p := pcpair.New(t, peer.APIConfig{})
	mk := func() (*side, *io.PipeReader) {
		r, w := io.Pipe()
		t.Cleanup(func() { _ = w.Close() })
		return &side{in: w, out: make(lines, 64), done: make(chan error, 1)}, r
	}
	a, aIn := mk()
	b, bIn := mk()
	p.Handle(func(dc *webrtc.DataChannel) {
		if dc.Label() != Label {
			return
		}
		c := Attach(dc, b.out, Options{PeerName: "alice"})
		go func() { b.done <- c.Run(ctx, bIn) }()
	})
	dc, err := p.A.CreateDataChannel(Label, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- Run(ctx, dc, aIn, a.out, Options{PeerName: "bob"}) }()
	return a, b
}

func TestChatRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	a, b := newChat(ctx, t)
	a.typeText(t, "hello\n\nwörld\r\n")
	if got := b.out.next(t); got != "alice: hello\n" {
		t.Errorf("bob printed %q", got)
	}
	if got := b.out.next(t); got != "alice: wörld\n" {
		t.Errorf("bob printed %q", got)
	}
	b.typeText(t, "hi \x1b[31mred\u202e\tok\n")
	if got := a.out.next(t); got != "bob: hi \uFFFD[31mred\uFFFD\tok\n" {
		t.Errorf("alice printed %q", got)
	}
	long := strings.Repeat("ü", MaxMessageBytes) // twice the limit in bytes
	a.typeText(t, long+"\n")
	first, second := b.out.next(t), b.out.next(t)
	if first != "alice: "+long[:MaxMessageBytes]+"\n" || second != "alice: "+long[MaxMessageBytes:]+"\n" {
		t.Errorf("a long line arrived as %d and %d bytes", len(first), len(second))
	}
	// Alice's input ends: her Run closes the channel, Bob's Run returns.
	_ = a.in.Close()
	if err := a.result(t); err != nil {
		t.Errorf("alice's Run = %v, want nil", err)
	}
	if err := b.result(t); err != nil {
		t.Errorf("bob's Run = %v, want nil", err)
	}
}

func TestChatCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, b := newChat(ctx, t)
	a.typeText(t, "one\n")
	if got := b.out.next(t); got != "alice: one\n" {
		t.Errorf("bob printed %q", got)
	}
	cancel()
	for _, s := range []*side{a, b} {
		if err := s.result(t); !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v, want context.Canceled", err)
		}
	}
}

func TestSplitLines(t *testing.T) {
	full := strings.Repeat("a", MaxMessageBytes)
	tests := []struct {
		in   string
		want []string
	}{
		{"a\nb\r\n\nc", []string{"a", "b", "", "c"}},
		{"last\r", []string{"last"}},
		{full + "\n", []string{full}},
		{full + "b\n", []string{full, "b"}},
		{full[1:] + "é", []string{full[1:], "é"}},
		{"", nil},
	}
	for _, tt := range tests {
		sc := bufio.NewScanner(strings.NewReader(tt.in))
		sc.Split(splitLines)
		var got []string
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("splitLines(%.20q...) = %d tokens %.40q, want %d", tt.in, len(got), got, len(tt.want))
		}
	}
}

func FuzzSanitize(f *testing.F) {
	for _, seed := range []string{"hello", "\x1b[2J", "a\u202eb", "bad\xff", "tab\there"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := sanitize(s)
		if !utf8.ValidString(got) {
			t.Fatalf("sanitize(%q) = %q is not UTF-8", s, got)
		}
		for _, r := range got {
			if r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("sanitize(%q) = %q keeps %U", s, got, r)
			}
		}
	})
}
