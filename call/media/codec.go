package media

import (
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// depacketizerFor returns the RTP depacketizer for a codec and a sample
// builder head handler that extracts keyframe hints from it.
func depacketizerFor(mime string) (rtp.Depacketizer, func(any) any, bool) {
	none := func(any) any { return nil }
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return &codecs.VP8Packet{}, none, true
	case strings.ToLower(webrtc.MimeTypeVP9):
		return &codecs.VP9Packet{}, func(d any) any {
			p, ok := d.(*codecs.VP9Packet)
			return ok && !p.P // not inter-picture predicted
		}, true
	case strings.ToLower(webrtc.MimeTypeAV1):
		return &codecs.AV1Depacketizer{}, func(d any) any {
			p, ok := d.(*codecs.AV1Depacketizer)
			return ok && p.N // starts a new coded video sequence
		}, true
	case strings.ToLower(webrtc.MimeTypeH264):
		return &codecs.H264Packet{}, none, true
	case strings.ToLower(webrtc.MimeTypeOpus):
		return &codecs.OpusPacket{}, none, true
	}
	return nil, nil, false
}

// AV1 OBU type of a sequence header (AV1 spec 6.2.2).
const av1OBUSequenceHeader = 1

// isKeyframe reports whether a reassembled video frame is a keyframe; hint
// is the sample builder's head handler result.
func isKeyframe(mime string, frame []byte, hint any) bool {
	if len(frame) == 0 {
		return false
	}
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return frame[0]&1 == 0 // RFC 6386 9.1: P bit clear
	case strings.ToLower(webrtc.MimeTypeVP9):
		key, _ := hint.(bool)
		return key
	case strings.ToLower(webrtc.MimeTypeAV1):
		key, _ := hint.(bool)
		return key || (frame[0]>>3)&0x0f == av1OBUSequenceHeader
	case strings.ToLower(webrtc.MimeTypeH264):
		return h264HasIDR(frame)
	}
	return false
}

// h264HasIDR reports whether an Annex-B access unit holds an IDR slice.
func h264HasIDR(au []byte) bool {
	zeros := 0
	for i, b := range au {
		switch {
		case b == 0:
			zeros++
			continue
		case b == 1 && zeros >= 2 && i+1 < len(au) && au[i+1]&0x1f == nalIDR:
			return true
		}
		zeros = 0
	}
	return false
}

// seqWindow is how many recent sequence numbers seqTracker remembers to
// spot duplicates.
const seqWindow = 1024

// seqTracker follows RTP sequence numbers: it extends them to 64 bits,
// spots duplicates among recent packets and computes the loss.
type seqTracker struct {
	started  bool
	base     int64 // first extended sequence number
	highest  int64 // highest extended sequence number
	received int64
	seen     [seqWindow / 64]uint64 // bit per extended number mod seqWindow
}

// push records a packet and reports whether it is a duplicate (or so old
// that it cannot be told from one).
func (t *seqTracker) push(seq uint16) bool {
	if !t.started {
		t.started, t.base, t.highest = true, int64(seq), int64(seq)
		t.mark(t.highest)
		t.received = 1
		return false
	}
	ext := t.highest + int64(int16(seq-uint16(t.highest))) //nolint:gosec // wraparound is the point
	switch {
	case ext > t.highest:
		for n := t.highest + 1; n < ext && n <= t.highest+seqWindow; n++ {
			t.unmark(n)
		}
		t.highest = ext
	case t.highest-ext >= seqWindow || t.isMarked(ext):
		return true
	}
	t.mark(ext)
	t.received++
	if ext < t.base {
		t.base = ext
	}
	return false
}

// lost returns the packets expected but not received.
func (t *seqTracker) lost() int64 { return t.highest - t.base + 1 - t.received }

func (t *seqTracker) bit(n int64) (int, uint64) {
	i := int(uint64(n) % seqWindow) //nolint:gosec // modulo of a sequence number
	return i / 64, 1 << (i % 64)
}

func (t *seqTracker) mark(n int64)   { w, b := t.bit(n); t.seen[w] |= b }
func (t *seqTracker) unmark(n int64) { w, b := t.bit(n); t.seen[w] &^= b }
func (t *seqTracker) isMarked(n int64) bool {
	w, b := t.bit(n)
	return t.seen[w]&b != 0
}
