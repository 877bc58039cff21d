package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Ogg layout (RFC 3533): pages of a 27-byte header, a segment table and
// data; packets are split into 255-byte lacing values and may span pages.
// rtckit reads Ogg itself because pion's oggreader returns whole pages, and
// ffmpeg puts many Opus packets on one page.
const (
	oggPageHeaderLen = 27
	// maxOpusPacket bounds one Opus packet (RFC 6716 allows 120 ms of 1275
	// bytes per 20 ms frame, far below this).
	maxOpusPacket = 64 << 10
	// opusHeadLen is the length of an OpusHead packet without a channel
	// mapping table (RFC 7845 5.1).
	opusHeadLen = 19
)

// oggCRCTable is the table of the Ogg CRC-32 (polynomial 0x04c11db7, not
// reflected).
var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24 //nolint:gosec // i < 256
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

// oggCRC returns the Ogg checksum of the given byte slices.
func oggCRC(parts ...[]byte) uint32 {
	var crc uint32
	for _, p := range parts {
		for _, b := range p {
			crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^b]
		}
	}
	return crc
}

// oggSource is a Source reading the first Opus stream of an Ogg file.
type oggSource struct {
	r       io.Reader
	closer  io.Closer
	name    string
	serial  uint32
	pages   int
	partial []byte   // packet continued on the next page
	queue   [][]byte // complete packets of the current page
	packets int      // audio packets returned
	eos     bool
}

// newOggSource reads the OpusHead and OpusTags packets from r.
func newOggSource(r io.Reader, closer io.Closer, name string) (*oggSource, error) {
	s := &oggSource{r: r, closer: closer, name: name}
	head, err := s.packet(true)
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w: no Ogg packet", name, ErrBadMedia)
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(head, []byte("OpusHead")) {
		return nil, fmt.Errorf("%s: %w: Ogg stream is not Opus", name, ErrUnsupported)
	}
	if len(head) < opusHeadLen || head[8]>>4 != 0 || head[9] == 0 {
		return nil, fmt.Errorf("%s: %w: bad OpusHead", name, ErrBadMedia)
	}
	if head[18] != 0 && (len(head) < opusHeadLen+2 || head[19] != 1) {
		return nil, fmt.Errorf("%s: %w: multistream Opus (%d channels)", name, ErrUnsupported, head[9])
	}
	tags, err := s.packet(false)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err == nil && !bytes.HasPrefix(tags, []byte("OpusTags")) {
		return nil, fmt.Errorf("%s: %w: OpusTags missing", name, ErrBadMedia)
	}
	return s, nil
}

// Kind returns audio.
func (s *oggSource) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }

// Codec returns Opus.
func (s *oggSource) Codec() webrtc.RTPCodecCapability { return codecOpus }

// Next returns the next Opus packet, lasting as long as the audio it codes.
func (s *oggSource) Next() (media.Sample, error) {
	for {
		p, err := s.packet(false)
		if err != nil {
			return media.Sample{}, err
		}
		if len(p) == 0 {
			continue
		}
		d, ok := opusDuration(p)
		if !ok {
			return media.Sample{}, fmt.Errorf("%s: %w: Opus packet %d is malformed", s.name, ErrBadMedia, s.packets)
		}
		s.packets++
		return media.Sample{Data: p, Duration: d}, nil
	}
}

// Close closes the file.
func (s *oggSource) Close() error { return closeIf(s.closer) }

// packet returns the next complete packet of the stream; first means the
// packet must start the stream (a BOS page), whose serial is then followed.
func (s *oggSource) packet(first bool) ([]byte, error) {
	for len(s.queue) == 0 {
		if s.eos {
			return nil, io.EOF
		}
		if err := s.page(first); err != nil {
			return nil, err
		}
	}
	p := s.queue[0]
	s.queue = s.queue[1:]
	return p, nil
}

// page reads the next page of the followed stream and queues its complete
// packets. Pages of other streams are skipped.
func (s *oggSource) page(first bool) error {
	var h [oggPageHeaderLen]byte
	n, err := io.ReadFull(s.r, h[:])
	if errors.Is(err, io.EOF) {
		if len(s.partial) > 0 {
			return fmt.Errorf("%s: %w: last packet truncated", s.name, ErrBadMedia)
		}
		return io.EOF
	}
	if err != nil {
		if n > 0 {
			return fmt.Errorf("%s: %w: Ogg page %d truncated", s.name, ErrBadMedia, s.pages)
		}
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if string(h[0:4]) != "OggS" || h[4] != 0 {
		return fmt.Errorf("%s: %w: Ogg page %d has no OggS signature", s.name, ErrBadMedia, s.pages)
	}
	lacing := make([]byte, h[26])
	if _, err := io.ReadFull(s.r, lacing); err != nil {
		return fmt.Errorf("%s: %w: Ogg page %d truncated", s.name, ErrBadMedia, s.pages)
	}
	size := 0
	for _, l := range lacing {
		size += int(l)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(s.r, data); err != nil {
		return fmt.Errorf("%s: %w: Ogg page %d truncated", s.name, ErrBadMedia, s.pages)
	}
	want := binary.LittleEndian.Uint32(h[22:])
	binary.LittleEndian.PutUint32(h[22:], 0)
	if oggCRC(h[:], lacing, data) != want {
		return fmt.Errorf("%s: %w: Ogg page %d checksum mismatch", s.name, ErrBadMedia, s.pages)
	}
	s.pages++
	flags, serial := h[5], binary.LittleEndian.Uint32(h[14:])
	if first {
		if flags&0x02 == 0 {
			return fmt.Errorf("%s: %w: Ogg stream does not begin with a BOS page", s.name, ErrBadMedia)
		}
		s.serial = serial
	} else if serial != s.serial {
		return nil
	}
	if flags&0x01 == 0 && len(s.partial) > 0 {
		return fmt.Errorf("%s: %w: Ogg page %d drops a continued packet", s.name, ErrBadMedia, s.pages-1)
	}
	pkt, off := s.partial, 0
	s.partial = nil
	for _, l := range lacing {
		pkt = append(pkt, data[off:off+int(l)]...)
		off += int(l)
		if len(pkt) > maxOpusPacket {
			return fmt.Errorf("%s: %w: Ogg packet over %d bytes", s.name, ErrBadMedia, maxOpusPacket)
		}
		if l < 255 {
			s.queue = append(s.queue, pkt)
			pkt = nil
		}
	}
	if len(lacing) > 0 && lacing[len(lacing)-1] == 255 {
		s.partial = pkt
	}
	if flags&0x04 != 0 {
		s.eos = true
	}
	return nil
}

// opusDuration returns how much audio an Opus packet codes (RFC 6716 3.1,
// 3.2), and false for a malformed packet.
func opusDuration(p []byte) (time.Duration, bool) {
	if len(p) == 0 {
		return 0, false
	}
	toc := p[0]
	var frameLen time.Duration // of one frame, in units of 100 µs
	switch cfg := toc >> 3; {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frameLen = [4]time.Duration{100, 200, 400, 600}[cfg&3]
	case cfg < 16: // Hybrid: 10, 20 ms
		frameLen = [2]time.Duration{100, 200}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frameLen = [4]time.Duration{25, 50, 100, 200}[cfg&3]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 || p[1]&0x3f == 0 {
			return 0, false
		}
		frames = int(p[1] & 0x3f)
	}
	d := frameLen * time.Duration(frames) * 100 * time.Microsecond
	if d > 120*time.Millisecond {
		return 0, false
	}
	return d, true
}
