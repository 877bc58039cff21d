package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// IVF layout (https://wiki.multimedia.cx/index.php/IVF): a 32-byte file
// header, then frames, each a 12-byte header (size, 64-bit pts) and data.
// rtckit reads IVF itself rather than with pion's ivfreader because it needs
// the raw pts for exact frame durations and a bound on frame sizes before
// allocating.
const (
	ivfFileHeaderLen  = 32
	ivfFrameHeaderLen = 12
	// maxFrameSize bounds one frame of any file format, so a corrupt size
	// field cannot make rtckit allocate gigabytes.
	maxFrameSize = 16 << 20
	// maxIVFHeaderLen bounds the header length field of an IVF file.
	maxIVFHeaderLen = 1024
	// maxFrameDuration bounds the duration of one frame computed from
	// timestamps; a longer gap is taken as a timestamp jump.
	maxFrameDuration = 10 * time.Second
	// fallbackFrameDuration is used when timestamps give no duration.
	fallbackFrameDuration = time.Second / DefaultFrameRate
)

// ivfSource is a Source reading an IVF file.
type ivfSource struct {
	r      io.Reader
	closer io.Closer
	name   string
	codec  webrtc.RTPCodecCapability
	rate   uint64 // timebase denominator: pts units per `scale` seconds
	scale  uint64 // timebase numerator
	ahead  *ivfFrame
	last   time.Duration // duration of the previous frame
	frames int           // frames read so far
	done   bool
}

// ivfFrame is one frame read ahead.
type ivfFrame struct {
	data []byte
	pts  uint64
}

// newIVFSource reads the IVF file header from r.
func newIVFSource(r io.Reader, closer io.Closer, name string) (*ivfSource, error) {
	var h [ivfFileHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%s: %w: IVF header truncated", name, ErrBadMedia)
	}
	if string(h[0:4]) != "DKIF" {
		return nil, fmt.Errorf("%s: %w: no DKIF signature", name, ErrBadMedia)
	}
	if v := binary.LittleEndian.Uint16(h[4:]); v != 0 {
		return nil, fmt.Errorf("%s: %w: IVF version %d, want 0", name, ErrBadMedia, v)
	}
	hlen := int(binary.LittleEndian.Uint16(h[6:]))
	if hlen < ivfFileHeaderLen || hlen > maxIVFHeaderLen {
		return nil, fmt.Errorf("%s: %w: IVF header length %d", name, ErrBadMedia, hlen)
	}
	if _, err := io.CopyN(io.Discard, r, int64(hlen-ivfFileHeaderLen)); err != nil {
		return nil, fmt.Errorf("%s: %w: IVF header truncated", name, ErrBadMedia)
	}
	s := &ivfSource{
		r: r, closer: closer, name: name,
		rate:  uint64(binary.LittleEndian.Uint32(h[16:])),
		scale: uint64(binary.LittleEndian.Uint32(h[20:])),
	}
	switch fourcc := string(h[8:12]); fourcc {
	case "VP80":
		s.codec = codecVP8
	case "VP90":
		s.codec = codecVP9
	case "AV01":
		s.codec = codecAV1
	default:
		return nil, fmt.Errorf("%s: %w: IVF codec %q (rtckit sends VP80, VP90 and AV01)", name, ErrUnsupported, fourcc)
	}
	if s.rate == 0 || s.scale == 0 {
		return nil, fmt.Errorf("%s: %w: IVF timebase %d/%d", name, ErrBadMedia, s.scale, s.rate)
	}
	return s, nil
}

// Kind returns video.
func (s *ivfSource) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// Codec returns the codec named by the file's fourcc.
func (s *ivfSource) Codec() webrtc.RTPCodecCapability { return s.codec }

// read reads the next non-empty frame; it returns nil at the end.
func (s *ivfSource) read() (*ivfFrame, error) {
	for {
		var h [ivfFrameHeaderLen]byte
		n, err := io.ReadFull(s.r, h[:])
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if err != nil {
			if n > 0 {
				return nil, fmt.Errorf("%s: %w: frame %d header truncated", s.name, ErrBadMedia, s.frames)
			}
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		size := binary.LittleEndian.Uint32(h[0:])
		if size > maxFrameSize {
			return nil, fmt.Errorf("%s: %w: frame %d is %d bytes (limit %d)", s.name, ErrBadMedia, s.frames, size, maxFrameSize)
		}
		// Read rather than allocate size bytes up front: a corrupt size
		// in a short file costs only what the file holds.
		data, err := io.ReadAll(io.LimitReader(s.r, int64(size)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		if len(data) < int(size) {
			return nil, fmt.Errorf("%s: %w: frame %d truncated", s.name, ErrBadMedia, s.frames)
		}
		s.frames++
		if size == 0 {
			continue // a dropped frame: its time goes to the previous one
		}
		return &ivfFrame{data: data, pts: binary.LittleEndian.Uint64(h[4:])}, nil
	}
}

// duration converts a pts difference to a duration, falling back to the
// previous duration when it is out of range.
func (s *ivfSource) duration(from, to uint64) time.Duration {
	if to > from {
		secs := float64(to-from) * float64(s.scale) / float64(s.rate)
		if d := time.Duration(secs * float64(time.Second)); d > 0 && d <= maxFrameDuration {
			return d
		}
	}
	if s.last > 0 {
		return s.last
	}
	// No previous frame: take one timebase tick when it is a plausible frame
	// duration (ffmpeg writes 1/fps), else the default.
	if d := time.Duration(float64(s.scale) / float64(s.rate) * float64(time.Second)); d >= time.Millisecond && d <= time.Second {
		return d
	}
	return fallbackFrameDuration
}

// Next returns the next frame; its duration runs to the following frame's
// pts, and the last frame lasts as long as the one before it.
func (s *ivfSource) Next() (media.Sample, error) {
	if s.done {
		return media.Sample{}, io.EOF
	}
	cur := s.ahead
	if cur == nil {
		f, err := s.read()
		if err != nil {
			return media.Sample{}, err
		}
		if f == nil {
			s.done = true
			return media.Sample{}, io.EOF
		}
		cur = f
	}
	next, err := s.read()
	if err != nil {
		return media.Sample{}, err
	}
	s.ahead = next
	var d time.Duration
	if next != nil {
		d = s.duration(cur.pts, next.pts)
	} else {
		d = s.duration(0, 0)
		s.done = true
	}
	s.last = d
	return media.Sample{Data: cur.data, Duration: d}, nil
}

// Close closes the file.
func (s *ivfSource) Close() error { return closeIf(s.closer) }

// ivfWriter writes video frames to an IVF file with a 1/90000 timebase, so
// RTP timestamps are the pts. Each frame is written as it comes; Close
// fixes up the frame count. pion's ivfwriter takes RTP packets, not frames.
type ivfWriter struct {
	w      io.Writer
	frames uint32
}

// newIVFWriter writes the file header for fourcc and the picture size.
func newIVFWriter(w io.Writer, fourcc string, width, height uint16) (*ivfWriter, error) {
	var h [ivfFileHeaderLen]byte
	copy(h[0:], "DKIF")
	binary.LittleEndian.PutUint16(h[6:], ivfFileHeaderLen)
	copy(h[8:], fourcc)
	binary.LittleEndian.PutUint16(h[12:], width)
	binary.LittleEndian.PutUint16(h[14:], height)
	binary.LittleEndian.PutUint32(h[16:], 90000)
	binary.LittleEndian.PutUint32(h[20:], 1)
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &ivfWriter{w: w}, nil
}

// writeFrame writes one frame with its pts in 1/90000 s.
func (i *ivfWriter) writeFrame(data []byte, pts uint64) error {
	buf := make([]byte, ivfFrameHeaderLen+len(data))
	binary.LittleEndian.PutUint32(buf[0:], uint32(len(data))) //nolint:gosec // frames are far below 4 GiB
	binary.LittleEndian.PutUint64(buf[4:], pts)
	copy(buf[ivfFrameHeaderLen:], data)
	if _, err := i.w.Write(buf); err != nil {
		return err
	}
	i.frames++
	return nil
}

// fixup writes the frame count into the header of the file at w.
func (i *ivfWriter) fixup(w io.WriterAt) error {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], i.frames)
	_, err := w.WriteAt(n[:], 24)
	return err
}

// vp8Size returns the picture size in a VP8 keyframe (RFC 6386 9.1).
func vp8Size(frame []byte) (width, height uint16, ok bool) {
	if len(frame) < 10 || frame[0]&1 != 0 || frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint16(frame[6:]) & 0x3fff, binary.LittleEndian.Uint16(frame[8:]) & 0x3fff, true
}
