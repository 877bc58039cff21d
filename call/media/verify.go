package media

import (
	"crypto/sha256"
	"errors"
	"io"
)

// Verifier checks received frames against the frames that were sent: it
// holds the SHA-256 of each known frame and looks received frames up. A
// frame verifies when its bytes equal a known frame's, which holds for
// codecs whose RTP depacketizer gives back the sender's frame exactly:
// VP8, VP9, Opus and H.264 (without access unit delimiters). Build it with
// Add and AddSource before use; after that Contains is safe for concurrent
// use.
type Verifier struct {
	known map[[sha256.Size]byte]struct{}
}

// NewVerifier returns a Verifier that knows the given frames.
func NewVerifier(frames ...[]byte) *Verifier {
	v := &Verifier{known: make(map[[sha256.Size]byte]struct{}, len(frames))}
	for _, f := range frames {
		v.Add(f)
	}
	return v
}

// Add makes frame known.
func (v *Verifier) Add(frame []byte) { v.known[sha256.Sum256(frame)] = struct{}{} }

// AddSource adds every frame of src up to io.EOF, closes src and returns how
// many frames it read. src must end: a looping source never does.
func (v *Verifier) AddSource(src Source) (int, error) {
	n := 0
	for {
		s, err := src.Next()
		if errors.Is(err, io.EOF) {
			return n, src.Close()
		}
		if err != nil {
			return n, errors.Join(err, src.Close())
		}
		v.Add(s.Data)
		n++
	}
}

// Contains reports whether frame is known.
func (v *Verifier) Contains(frame []byte) bool {
	_, ok := v.known[sha256.Sum256(frame)]
	return ok
}

// Len returns the number of distinct known frames.
func (v *Verifier) Len() int { return len(v.known) }
