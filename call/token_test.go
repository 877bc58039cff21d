package call

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// lineWriter hands each written line to a channel.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	for l := range strings.SplitSeq(strings.TrimSpace(string(p)), "\n") {
		w.lines <- l
	}
	return len(p), nil
}

// tokenTimeout bounds the wait for a session's token in TestTokenCall.
const tokenTimeout = 10 * time.Second

// TestTokenCall connects two sessions through tokens only.
func TestTokenCall(t *testing.T) { tokenCall(t, func(_, _ *Options) {}) }

// TestTokenCallOfferWithoutAudio: the offer has no audio and the accepting
// side has some; a token call cannot renegotiate, so the accepting side
// sends its video only, and both end the call normally.
func TestTokenCallOfferWithoutAudio(t *testing.T) {
	tokenCall(t, func(caller, _ *Options) { caller.Media.NoAudio = true })
}

// tokenCall runs a verified token call, with change applied to the
// caller's and the accepting side's options, and checks that both sides
// end it cleanly.
func tokenCall(t *testing.T, change func(caller, accepter *Options)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	answerIn, answerOut := io.Pipe()
	offerTokens := lineWriter{make(chan string, 4)}
	offerSig := NewTokenOffer(answerIn, offerTokens, io.Discard)
	type result struct {
		rep *Report
		err error
	}
	// nextToken waits for the token of who's session, failing if its Run
	// ends first or no token comes within tokenTimeout.
	nextToken := func(who string, lines <-chan string, done <-chan result) string {
		t.Helper()
		select {
		case tok := <-lines:
			return tok
		case r := <-done:
			t.Fatalf("%s: Run ended before printing a token: %v", who, r.err)
		case <-time.After(tokenTimeout):
			t.Fatalf("%s: no token within %s", who, tokenTimeout)
		}
		return ""
	}
	offerDone := make(chan result, 1)
	opts := loopbackOptions()
	opts.Verify = true
	caller := opts
	caller.Duration = 1500 * time.Millisecond
	change(&caller, &opts)
	go func() {
		rep, err := Run(ctx, caller, Setup{Mode: "token", Caller: true}, offerSig, IO{})
		_ = answerIn.Close() // writing the answer must not block once Run is over
		offerDone <- result{rep, err}
	}()
	token := nextToken("offer", offerTokens.lines, offerDone)
	t.Logf("offer token: %d characters", len(token))
	answerTokens := lineWriter{make(chan string, 4)}
	acceptSig, err := NewTokenAccept(token, answerTokens, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	acceptDone := make(chan result, 1)
	go func() {
		rep, err := Run(ctx, opts, Setup{Mode: "token", Polite: true}, acceptSig, IO{})
		acceptDone <- result{rep, err}
	}()
	answer := nextToken("accept", answerTokens.lines, acceptDone)
	t.Logf("answer token: %d characters", len(answer))
	if _, err := io.WriteString(answerOut, answer+"\n"); err != nil {
		t.Fatal(err)
	}
	o, a := <-offerDone, <-acceptDone
	for name, r := range map[string]result{"offer": o, "accept": a} {
		if r.rep == nil {
			t.Fatalf("%s: Run returned no report: %v", name, r.err)
		}
		if r.err != nil {
			t.Errorf("%s: %v; tracks %+v", name, r.err, r.rep.Tracks)
		}
	}
	if a.rep.EndReason != EndPeerHungUp {
		t.Errorf("accept ended %q, want %q", a.rep.EndReason, EndPeerHungUp)
	}
}

func TestDecodeTokenErrors(t *testing.T) {
	good, err := EncodeToken(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 00:11\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := DecodeToken(" " + good[:20] + "\n" + good[20:] + " "); err != nil || d.Type != webrtc.SDPTypeOffer {
		t.Fatalf("wrapped token: %v %v", d.Type, err)
	}
	for name, tok := range map[string]string{
		"empty":       "",
		"no prefix":   "hello",
		"not base64":  TokenPrefix + "!!!",
		"cut short":   good[:len(good)-10],
		"not deflate": TokenPrefix + "AAAA",
		"huge":        TokenPrefix + strings.Repeat("A", MaxTokenLen),
	} {
		if _, err := DecodeToken(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: err %v, want ErrBadToken", name, err)
		}
	}
	var r *bufio.Reader
	_ = r
}

// FuzzDecodeToken: no input makes DecodeToken panic, and what it accepts
// encodes back to a token that decodes to the same description.
func FuzzDecodeToken(f *testing.F) {
	good, _ := EncodeToken(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 00:11\r\n"})
	f.Add(good)
	f.Add(TokenPrefix + "AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		d, err := DecodeToken(tok)
		if err != nil {
			return
		}
		again, err := EncodeToken(d)
		if err != nil {
			t.Fatalf("re-encoding an accepted token: %v", err)
		}
		d2, err := DecodeToken(again)
		if err != nil || d2.Type != d.Type || minimizeSDP(d2.SDP) != minimizeSDP(d.SDP) {
			t.Fatalf("round trip changed the description: %v", err)
		}
	})
}

// TestReadToken: the first non-empty line is the token, or the first lines
// while they continue a token a chat program wrapped; what follows stays
// for chat.
func TestReadToken(t *testing.T) {
	good, err := EncodeToken(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-256 00:11\r\n"})
	if err != nil {
		t.Fatal(err)
	}
	reader := func(s string) *bufio.Reader { return bufio.NewReaderSize(strings.NewReader(s), MaxTokenLen+4) }
	for name, in := range map[string]string{
		"one line":    "\n  \n " + good + " \nhello peer\n",
		"wrapped":     good[:30] + "\n" + good[30:60] + "\n" + good[60:] + "\nhello peer\n",
		"no last \\n": good,
	} {
		r := reader(in)
		tok, err := ReadToken(r)
		if err != nil || strings.Join(strings.Fields(tok), "") != good {
			t.Errorf("%s: token %q, %v", name, tok, err)
			continue
		}
		if rest, _ := io.ReadAll(r); name != "no last \\n" && string(rest) != "hello peer\n" {
			t.Errorf("%s: rest %q, want the chat line", name, rest)
		}
	}
	if _, err := ReadToken(reader("\n \n")); !errors.Is(err, io.EOF) {
		t.Errorf("blank input: %v, want EOF", err)
	}
	if _, err := ReadToken(reader(strings.Repeat("A", MaxTokenLen+10) + "\n")); !errors.Is(err, ErrBadToken) {
		t.Errorf("over-long line: %v, want ErrBadToken", err)
	}
	// A damaged token is returned as read, for DecodeToken to explain.
	if tok, err := ReadToken(reader(good[:40] + "\nhello, peer!\n")); err != nil || tok != good[:40] {
		t.Errorf("damaged token: %q, %v", tok, err)
	}
}
