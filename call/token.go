package call

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// TokenPrefix starts every serverless call token; the digit is the format
// version.
const TokenPrefix = "rtc1."

// MaxTokenLen bounds an accepted token (and the SDP it expands to).
const MaxTokenLen = 64 << 10

// EncodeToken packs a session description with all its candidates into a
// token that can be pasted into a chat: the SDP without lines a peer does
// not need, deflated, in unpadded base64url, after TokenPrefix.
func EncodeToken(d webrtc.SessionDescription) (string, error) {
	var kind byte
	switch d.Type {
	case webrtc.SDPTypeOffer:
		kind = 'o'
	case webrtc.SDPTypeAnswer:
		kind = 'a'
	default:
		return "", fmt.Errorf("%w: a token carries an offer or an answer, not %s", ErrBadToken, d.Type)
	}
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return "", err
	}
	_, _ = zw.Write([]byte{kind})
	_, _ = io.WriteString(zw, minimizeSDP(d.SDP))
	if err := zw.Close(); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

// DecodeToken unpacks a token made by EncodeToken. White space anywhere in
// it (a token wrapped by a chat program) is ignored.
func DecodeToken(token string) (webrtc.SessionDescription, error) {
	var d webrtc.SessionDescription
	token = strings.Join(strings.Fields(token), "")
	if len(token) > MaxTokenLen {
		return d, fmt.Errorf("%w: %d characters, longer than %d", ErrBadToken, len(token), MaxTokenLen)
	}
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return d, fmt.Errorf("%w: it must start with %q", ErrBadToken, TokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return d, fmt.Errorf("%w: not base64url: %v", ErrBadToken, err)
	}
	zr := flate.NewReader(bytes.NewReader(raw))
	defer zr.Close()
	data, err := io.ReadAll(io.LimitReader(zr, 4*MaxTokenLen+1))
	if err != nil {
		return d, fmt.Errorf("%w: damaged (cut short or altered): %v", ErrBadToken, err)
	}
	if len(data) > 4*MaxTokenLen {
		return d, fmt.Errorf("%w: expands to more than %d bytes", ErrBadToken, 4*MaxTokenLen)
	}
	if len(data) < 2 {
		return d, fmt.Errorf("%w: empty", ErrBadToken)
	}
	switch data[0] {
	case 'o':
		d.Type = webrtc.SDPTypeOffer
	case 'a':
		d.Type = webrtc.SDPTypeAnswer
	default:
		return d, fmt.Errorf("%w: unknown kind %q", ErrBadToken, data[0])
	}
	// What is checked is what a peer gets and what EncodeToken packs
	// again: the SDP in its minimal form (for the tokens EncodeToken
	// makes, the SDP as it is).
	d.SDP = minimizeSDP(string(data[1:]))
	if _, err := d.Unmarshal(); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("%w: invalid SDP inside: %v", ErrBadToken, err)
	}
	if !strings.Contains(d.SDP, "a=ice-ufrag:") || !strings.Contains(d.SDP, "a=fingerprint:") {
		return webrtc.SessionDescription{}, fmt.Errorf("%w: the SDP inside has no ICE credentials or DTLS fingerprint", ErrBadToken)
	}
	return d, nil
}

// droppedSDPAttrs are attribute lines the serverless peer (another rtckit)
// does without: they only make tokens longer.
var droppedSDPAttrs = []string{
	"a=msid-semantic:", "a=extmap-allow-mixed", "a=end-of-candidates",
}

// minimizeSDP drops droppedSDPAttrs lines, keeping the SDP valid.
func minimizeSDP(sdp string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(sdp, "\r\n") {
		if line == "" {
			continue
		}
		// Of the a=ssrc lines, the cname one declares the SSRC; the others
		// (msid, mslabel, label) repeat what a=msid says.
		drop := strings.HasPrefix(line, "a=ssrc:") && !strings.Contains(line, " cname:")
		for _, p := range droppedSDPAttrs {
			if strings.HasPrefix(line, p) {
				drop = true
				break
			}
		}
		if !drop {
			b.WriteString(line)
			b.WriteString("\r\n")
		}
	}
	return b.String()
}

// TokenSignaler signals without a server: each side's description, with
// all its candidates, travels as a token the user copies to the other side.
// The offering side prints its token and reads the answer token from In;
// the accepting side starts from the offer token and prints its answer.
type TokenSignaler struct {
	// Out receives the tokens to pass on (stdout); Prompt receives the
	// instructions for the user (stderr).
	out, prompt io.Writer
	in          *bufio.Reader
	sigs        chan Signal
	stop        chan struct{}
	once        sync.Once
	stopOnce    sync.Once

	// json prints tokens as TokenEvent objects (SetJSON).
	json bool

	mu  sync.Mutex
	err error
}

// TokenEvent is how a token is printed with SetJSON, so that the output
// of a command with --json stays a stream of JSON values.
type TokenEvent struct {
	Event string `json:"event"` // "token"
	Type  string `json:"type"`  // "offer" or "answer"
	Token string `json:"token"`
}

// SetJSON prints tokens as one TokenEvent object per line instead of bare
// lines. Call it before the signaler is used.
func (s *TokenSignaler) SetJSON(on bool) { s.json = on }

// NewTokenOffer makes the signaler of the offering side: it reads the
// answer token from in after printing its own token to out.
func NewTokenOffer(in io.Reader, out, prompt io.Writer) *TokenSignaler {
	return &TokenSignaler{out: out, prompt: prompt, in: bufio.NewReaderSize(in, MaxTokenLen), sigs: make(chan Signal, 1), stop: make(chan struct{})}
}

// NewTokenAccept makes the signaler of the accepting side from the offer
// token; the offer is its first signal.
func NewTokenAccept(offerToken string, out, prompt io.Writer) (*TokenSignaler, error) {
	d, err := DecodeToken(offerToken)
	if err != nil {
		return nil, err
	}
	if d.Type != webrtc.SDPTypeOffer {
		return nil, fmt.Errorf("%w: this is an answer token; --accept takes the offer token printed by --offer", ErrBadToken)
	}
	s := &TokenSignaler{out: out, prompt: prompt, sigs: make(chan Signal, 1), stop: make(chan struct{})}
	s.sigs <- Signal{Description: &d}
	return s, nil
}

// Send implements Signaler: a description is printed as a token; the
// offering side then waits for the answer token on its input.
func (s *TokenSignaler) Send(ctx context.Context, sig Signal) error {
	if sig.Description == nil {
		return nil // candidates are inside the description; hang-up goes over the data channel
	}
	token, err := EncodeToken(*sig.Description)
	if err != nil {
		return err
	}
	if sig.Description.Type == webrtc.SDPTypeOffer {
		fmt.Fprintln(s.prompt, "Send this token to the other side, who runs: rtckit call --accept TOKEN")
		fmt.Fprintln(s.prompt, "Then paste the answer token here and press Enter:")
	} else {
		fmt.Fprintln(s.prompt, "Send this answer token back to the side that ran --offer:")
	}
	if s.json {
		ev := TokenEvent{Event: "token", Type: sig.Description.Type.String(), Token: token}
		if err := json.NewEncoder(s.out).Encode(ev); err != nil {
			return err
		}
	} else if _, err := fmt.Fprintln(s.out, token); err != nil {
		return err
	}
	if sig.Description.Type == webrtc.SDPTypeOffer {
		go s.readAnswer()
	}
	return nil
}

// readAnswer reads the answer token (ReadToken).
func (s *TokenSignaler) readAnswer() {
	token, err := ReadToken(s.in)
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: input ended before an answer token", ErrNoAnswer)
	}
	if err != nil {
		s.fail(err)
		return
	}
	d, err := DecodeToken(token)
	if err == nil && d.Type != webrtc.SDPTypeAnswer {
		err = fmt.Errorf("%w: this is an offer token; paste the answer printed by --accept", ErrBadToken)
	}
	if err != nil {
		s.fail(err)
		return
	}
	select {
	case s.sigs <- Signal{Description: &d}:
	case <-s.stop:
	}
}

// ReadToken reads a token from r: its first non-empty line, and then,
// while the token does not decode yet, the lines that follow as long as
// they hold only token characters (a token a chat program wrapped). What
// follows the token stays in r, for chat. r's buffer must hold a whole
// line (MaxTokenLen); io.EOF means r ended before any token.
func ReadToken(r *bufio.Reader) (string, error) {
	var token string
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return "", fmt.Errorf("%w: a line longer than a token (%d characters)", ErrBadToken, MaxTokenLen)
		}
		text := strings.TrimSpace(string(line))
		switch {
		case text == "":
		case token == "":
			token = text
		case isTokenText(text) && len(token)+len(text) <= MaxTokenLen:
			token += text
		default:
			return token, nil // not a continuation: DecodeToken says what is wrong
		}
		if token != "" {
			if _, derr := DecodeToken(token); derr == nil {
				return token, nil
			}
		}
		if err != nil {
			if token != "" && errors.Is(err, io.EOF) {
				return token, nil
			}
			return "", err
		}
	}
}

// isTokenText reports whether s holds only characters of a token's body
// (base64url).
func isTokenText(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *TokenSignaler) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.once.Do(func() { close(s.sigs) })
}

// Rest is the offering side's input after the answer token (for chat).
func (s *TokenSignaler) Rest() io.Reader { return s.in }

// Signals implements Signaler.
func (s *TokenSignaler) Signals() <-chan Signal { return s.sigs }

// Err implements Signaler.
func (s *TokenSignaler) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Trickle implements Signaler: tokens carry every candidate at once.
func (s *TokenSignaler) Trickle() bool { return false }

// Close implements Signaler.
func (s *TokenSignaler) Close() { s.stopOnce.Do(func() { close(s.stop) }) }
