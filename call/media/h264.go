package media

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// H.264 NAL unit types (ITU-T H.264 table 7-1) that shape access units.
const (
	nalSlice     = 1
	nalIDR       = 5
	nalSEI       = 6
	nalSPS       = 7
	nalPPS       = 8
	nalAUD       = 9
	nalFiller    = 12
	nalPrefixMin = 14 // 14-18: prefix NAL, subset SPS and reserved types start a new access unit
	nalPrefixMax = 18
)

// annexBStartCode prefixes each NAL unit of a frame.
var annexBStartCode = []byte{0, 0, 0, 1}

// h264Source is a Source reading an H.264 Annex-B stream, one access unit
// (all NAL units of one picture, with any SPS and PPS before it) per frame.
// Access unit delimiters and filler data are dropped, as pion's H.264
// payloader would drop them; SEI is dropped by pion's reader.
type h264Source struct {
	r       *h264reader.H264Reader
	closer  io.Closer
	name    string
	frame   time.Duration
	pending *h264reader.NAL
	frames  int
	done    bool
}

// newH264Source reads frames from the Annex-B stream in r at fps frames per second.
func newH264Source(r io.Reader, closer io.Closer, name string, fps float64) (*h264Source, error) {
	hr, err := h264reader.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &h264Source{r: hr, closer: closer, name: name, frame: time.Duration(float64(time.Second) / fps)}, nil
}

// Kind returns video.
func (s *h264Source) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// Codec returns H.264 (constrained baseline, packetization mode 1, as
// offered by pion and browsers; decoders take higher profiles in practice).
func (s *h264Source) Codec() webrtc.RTPCodecCapability { return codecH264 }

// vcl reports whether a NAL unit type is a coded slice.
func vcl(t h264reader.NalUnitType) bool { return t >= nalSlice && t <= nalIDR }

// startsAccessUnit reports whether nal begins a new access unit after one
// that already has a coded slice (H.264 7.4.1.2.3, simplified: a slice with
// first_mb_in_slice = 0 starts a new picture).
func startsAccessUnit(nal *h264reader.NAL) bool {
	t := nal.UnitType
	switch {
	case t == nalSEI || t == nalSPS || t == nalPPS || t == nalAUD:
		return true
	case t >= nalPrefixMin && t <= nalPrefixMax:
		return true
	case vcl(t):
		// first_mb_in_slice is ue(v); it is 0 exactly when its first bit is 1.
		return len(nal.Data) > 1 && nal.Data[1]&0x80 != 0
	}
	return false
}

// Next returns the next access unit as Annex-B bytes (four-byte start codes).
func (s *h264Source) Next() (media.Sample, error) {
	var data []byte
	hasSlice := false
	for !s.done {
		nal := s.pending
		s.pending = nil
		if nal == nil {
			var err error
			nal, err = s.r.NextNAL()
			if errors.Is(err, io.EOF) {
				s.done = true
				break
			}
			if err != nil {
				return media.Sample{}, fmt.Errorf("%s: %w: %v (frame %d)", s.name, ErrBadMedia, err, s.frames)
			}
		}
		if nal.ForbiddenZeroBit {
			return media.Sample{}, fmt.Errorf("%s: %w: NAL unit with the forbidden bit set (frame %d)", s.name, ErrBadMedia, s.frames)
		}
		if hasSlice && startsAccessUnit(nal) {
			s.pending = nal
			break
		}
		if nal.UnitType == nalAUD || nal.UnitType == nalFiller {
			continue
		}
		if len(data)+len(annexBStartCode)+len(nal.Data) > maxFrameSize {
			return media.Sample{}, fmt.Errorf("%s: %w: frame %d over %d bytes", s.name, ErrBadMedia, s.frames, maxFrameSize)
		}
		data = append(data, annexBStartCode...)
		data = append(data, nal.Data...)
		hasSlice = hasSlice || vcl(nal.UnitType)
	}
	if !hasSlice {
		// Parameter sets with no picture after them are dropped.
		if s.frames == 0 {
			return media.Sample{}, fmt.Errorf("%s: %w: no coded picture", s.name, ErrBadMedia)
		}
		return media.Sample{}, io.EOF
	}
	s.frames++
	return media.Sample{Data: data, Duration: s.frame}, nil
}

// Close closes the file.
func (s *h264Source) Close() error { return closeIf(s.closer) }
