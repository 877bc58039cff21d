package media

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Source is one track's frames, in order: each Next returns one frame (a
// video picture or an Opus packet) whose Duration says how long it lasts.
// Next returns io.EOF after the last frame. A Source is not safe for
// concurrent use.
type Source interface {
	// Kind is video or audio.
	Kind() webrtc.RTPCodecType
	// Codec is the codec to announce for the track that carries the frames.
	Codec() webrtc.RTPCodecCapability
	// Next returns the next frame, or io.EOF at the end.
	Next() (media.Sample, error)
	// Close releases the file behind the source.
	Close() error
}

// DefaultFrameRate is the frame rate of an H.264 file when OpenOptions does
// not give one: Annex-B streams carry no timing rtckit reads.
const DefaultFrameRate = 30

// MaxFrameRate bounds OpenOptions.FrameRate.
const MaxFrameRate = 240

// OpenOptions configures Open.
type OpenOptions struct {
	// FrameRate is the frame rate of H.264 Annex-B files, in frames per
	// second; zero means DefaultFrameRate. Other formats carry their timing.
	FrameRate float64
}

// frameRate returns FrameRate or its default, checked.
func (o OpenOptions) frameRate() (float64, error) {
	fps := o.FrameRate
	if fps == 0 {
		fps = DefaultFrameRate
	}
	if !(fps > 0 && fps <= MaxFrameRate) {
		return 0, fmt.Errorf("frame rate %v out of range (0, %d]", o.FrameRate, MaxFrameRate)
	}
	return fps, nil
}

// Codec capabilities announced for the tracks of each format. They match
// pion's default codecs, so a MediaEngine with RegisterDefaultCodecs
// negotiates them with browsers.
var (
	codecVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	codecVP9  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}
	codecAV1  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000}
	codecH264 = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	codecOpus = webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
)

// format is a media file format rtckit reads.
type format int

const (
	formatUnknown format = iota
	formatIVF
	formatOgg
	formatH264
)

// magicLen is how many bytes detect looks at.
const magicLen = 5

// detect decides a file's format from its first bytes (magic), using the
// lower-case extension ext (".ivf") only to explain what is wrong when the
// content matches no format. The content wins when it disagrees with the
// extension.
func detect(magic []byte, ext string) (format, error) {
	switch {
	case bytes.HasPrefix(magic, []byte("DKIF")):
		return formatIVF, nil
	case bytes.HasPrefix(magic, []byte("OggS")):
		return formatOgg, nil
	}
	if hdr, ok := annexBFirstNAL(magic); ok {
		if ext == ".h265" || ext == ".265" || ext == ".hevc" || hdr&0x1f == 0 {
			return formatUnknown, fmt.Errorf("%w: H.265 streams are not supported", ErrUnsupported)
		}
		return formatH264, nil
	}
	switch ext {
	case ".ivf":
		return formatUnknown, fmt.Errorf("%w: not an IVF file (no DKIF signature)", ErrBadMedia)
	case ".ogg", ".opus", ".oga":
		return formatUnknown, fmt.Errorf("%w: not an Ogg file (no OggS signature)", ErrBadMedia)
	case ".h264", ".264", ".avc":
		return formatUnknown, fmt.Errorf("%w: not an H.264 Annex-B stream (no start code)", ErrBadMedia)
	}
	return formatUnknown, fmt.Errorf("%w: unknown format; rtckit sends IVF (VP8, VP9, AV1), H.264 Annex-B (.h264) and Ogg Opus (.ogg, .opus)", ErrUnsupported)
}

// annexBFirstNAL reports whether magic starts with an Annex-B start code
// followed by a NAL header byte, and returns that byte.
func annexBFirstNAL(magic []byte) (byte, bool) {
	for _, sc := range [][]byte{{0, 0, 1}, {0, 0, 0, 1}} {
		if bytes.HasPrefix(magic, sc) && len(magic) > len(sc) {
			return magic[len(sc)], magic[len(sc)]&0x80 == 0
		}
	}
	return 0, false
}

// Open opens a media file as a Source: IVF with VP8, VP9 or AV1 (by the
// file's fourcc), H.264 Annex-B (.h264, .264; timed by opts.FrameRate), or
// Ogg Opus (.ogg, .opus). The format is decided by the content; the
// extension only sharpens the error when the content is not recognised.
// Errors name the file and wrap ErrUnsupported or ErrBadMedia (or the
// os error when the file cannot be read).
func Open(path string, opts OpenOptions) (Source, error) {
	if _, err := opts.frameRate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	src, err := openReader(f, f, path, opts)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return src, nil
}

// openReader reads a Source from r, named name in errors; closer (may be
// nil) is closed by the Source's Close.
func openReader(r io.Reader, closer io.Closer, name string, opts OpenOptions) (Source, error) {
	fps, err := opts.frameRate()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(magicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(magic) == 0 {
		return nil, fmt.Errorf("%s: %w: empty file", name, ErrBadMedia)
	}
	f, err := detect(magic, strings.ToLower(filepath.Ext(name)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch f {
	case formatIVF:
		return newIVFSource(br, closer, name)
	case formatOgg:
		return newOggSource(br, closer, name)
	default:
		return newH264Source(br, closer, name, fps)
	}
}

// closeIf closes c when it is not nil.
func closeIf(c io.Closer) error {
	if c == nil {
		return nil
	}
	return c.Close()
}

// Loop returns a Source that plays the sources made by open one after the
// other, forever: when one ends it is closed and open is called again.
// Durations carry over, so the timing is continuous across the seam. open is
// called right away, to fail early and learn the kind and codec; a source
// that ends without a frame makes Next fail with ErrBadMedia instead of
// spinning.
func Loop(open func() (Source, error)) (Source, error) {
	first, err := open()
	if err != nil {
		return nil, err
	}
	return &loopSource{open: open, cur: first, kind: first.Kind(), codec: first.Codec()}, nil
}

// loopSource is the Source that Loop returns.
type loopSource struct {
	open   func() (Source, error)
	cur    Source
	kind   webrtc.RTPCodecType
	codec  webrtc.RTPCodecCapability
	frames int // frames of cur so far
}

// Kind returns the kind of the first source.
func (l *loopSource) Kind() webrtc.RTPCodecType { return l.kind }

// Codec returns the codec of the first source.
func (l *loopSource) Codec() webrtc.RTPCodecCapability { return l.codec }

// Next returns the next frame, reopening the source at its end.
func (l *loopSource) Next() (media.Sample, error) {
	for {
		if l.cur == nil {
			src, err := l.open()
			if err != nil {
				return media.Sample{}, err
			}
			if src.Kind() != l.kind || src.Codec().MimeType != l.codec.MimeType {
				return media.Sample{}, errors.Join(
					fmt.Errorf("%w: looped source changed from %s to %s", ErrBadMedia, l.codec.MimeType, src.Codec().MimeType),
					src.Close())
			}
			l.cur, l.frames = src, 0
		}
		s, err := l.cur.Next()
		if err == nil {
			l.frames++
			return s, nil
		}
		if !errors.Is(err, io.EOF) {
			return media.Sample{}, err
		}
		empty := l.frames == 0
		cerr := l.cur.Close()
		l.cur = nil
		if cerr != nil {
			return media.Sample{}, cerr
		}
		if empty {
			return media.Sample{}, fmt.Errorf("%w: looped source has no frames", ErrBadMedia)
		}
	}
}

// Close closes the current source.
func (l *loopSource) Close() error {
	if l.cur == nil {
		return nil
	}
	err := l.cur.Close()
	l.cur = nil
	return err
}
