package media

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// maxRecordNameTries bounds the numbered names tried when a recording's
// file name is taken.
const maxRecordNameTries = 100

// recordFormat is the container a codec is recorded in.
type recordFormat struct {
	ext    string
	fourcc string // IVF only
}

// recordFormatFor returns the container for a codec MIME type.
func recordFormatFor(mime string) (recordFormat, bool) {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return recordFormat{ext: ".ivf", fourcc: "VP80"}, true
	case strings.ToLower(webrtc.MimeTypeVP9):
		return recordFormat{ext: ".ivf", fourcc: "VP90"}, true
	case strings.ToLower(webrtc.MimeTypeAV1):
		return recordFormat{ext: ".ivf", fourcc: "AV01"}, true
	case strings.ToLower(webrtc.MimeTypeH264):
		return recordFormat{ext: ".h264"}, true
	case strings.ToLower(webrtc.MimeTypeOpus):
		return recordFormat{ext: ".ogg"}, true
	}
	return recordFormat{}, false
}

// recordBase returns the file name, without extension, of a track's
// recording: kind, track ID (reduced to safe characters) and SSRC.
func recordBase(kind, trackID string, ssrc uint32) string {
	id := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, trackID)
	if len(id) > 64 {
		id = id[:64]
	}
	if id == "" {
		return fmt.Sprintf("%s-%d", kind, ssrc)
	}
	return fmt.Sprintf("%s-%s-%d", kind, id, ssrc)
}

// recorder writes one track's frames to a file as they arrive. The file is
// created lazily, at the first keyframe for video (so it starts decodable)
// and at the first packet for audio. Every frame is one write, so after any
// write the file holds whole frames and stays readable even if the process
// dies; close fixes up the IVF frame count.
type recorder struct {
	dir      string
	base     string
	format   recordFormat
	channels uint16

	path   string
	f      *os.File
	ivf    *ivfWriter
	ogg    *oggwriter.OggWriter
	cw     *countingWriter
	good   int64 // file length up to the last complete frame
	frames uint64
	pts    ptsUnwrapper
	done   bool
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	f *os.File
	n int64
}

// Write writes to the file and counts what was written.
func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.f.Write(p)
	c.n += int64(n)
	return n, err
}

// ptsUnwrapper turns 32-bit RTP timestamps into a 64-bit count from the first.
type ptsUnwrapper struct {
	started bool
	last    uint32
	pts     uint64
}

// next returns the pts of RTP timestamp ts; it never goes backwards.
func (u *ptsUnwrapper) next(ts uint32) uint64 {
	if !u.started {
		u.started, u.last = true, ts
		return 0
	}
	if d := int32(ts - u.last); d > 0 { //nolint:gosec // wraparound is the point
		u.pts += uint64(d)
		u.last = ts
	}
	return u.pts
}

// create opens a fresh file: base.ext, or base-2.ext and so on when taken.
func (r *recorder) create() error {
	var err error
	for i := 1; i <= maxRecordNameTries; i++ {
		name := r.base + r.format.ext
		if i > 1 {
			name = fmt.Sprintf("%s-%d%s", r.base, i, r.format.ext)
		}
		r.path = filepath.Join(r.dir, name)
		r.f, err = os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		r.path = ""
		return err
	}
	r.cw = &countingWriter{f: r.f}
	return nil
}

// start creates the file and writes the container header.
func (r *recorder) start(first []byte) error {
	if err := r.create(); err != nil {
		return err
	}
	var err error
	switch {
	case r.format.ext == ".ogg":
		r.ogg, err = oggwriter.NewWith(r.cw, 48000, r.channels)
	case r.format.fourcc != "":
		w, h, _ := vp8Size(first)
		r.ivf, err = newIVFWriter(r.cw, r.format.fourcc, w, h)
	}
	r.good = r.cw.n
	return err
}

// write records one frame with RTP timestamp ts; key says it is a video
// keyframe. It returns an error wrapping ErrRecord when the recording
// failed; the recording is then stopped (see fail).
func (r *recorder) write(data []byte, ts uint32, key, video bool) error {
	if r.done || len(data) == 0 {
		return nil
	}
	if r.f == nil {
		if video && !key {
			return nil
		}
		if err := r.start(data); err != nil {
			return r.fail(err)
		}
	}
	var err error
	switch {
	case r.ogg != nil:
		err = r.ogg.WriteRTP(&rtp.Packet{Header: rtp.Header{Timestamp: ts}, Payload: data})
	case r.ivf != nil:
		pts := r.pts.next(ts)
		if r.format.fourcc == "AV01" {
			// The depacketizer drops temporal delimiters; IVF frames start with one.
			data = append([]byte{0x12, 0x00}, data...)
		}
		err = r.ivf.writeFrame(data, pts)
	default:
		_, err = r.cw.Write(data)
	}
	if err != nil {
		return r.fail(err)
	}
	r.good = r.cw.n
	r.frames++
	return nil
}

// fail stops the recording after cause: the file is cut back to its last
// complete frame and its header fixed, so what was recorded stays playable;
// when that is impossible, or no frame was recorded, the file is removed.
// The returned error wraps ErrRecord and cause.
func (r *recorder) fail(cause error) error {
	r.done = true
	err := fmt.Errorf("%w: %s: %w", ErrRecord, r.displayPath(), cause)
	if r.f == nil {
		return err
	}
	keep := r.frames > 0
	if keep {
		keep = r.f.Truncate(r.good) == nil && r.fixup() == nil
	}
	cerr := r.f.Close()
	r.f = nil
	if !keep || cerr != nil {
		_ = os.Remove(r.path) // best effort: the write error is what matters
		r.path = ""
	}
	return err
}

// displayPath names the recording in errors.
func (r *recorder) displayPath() string {
	if r.path != "" {
		return r.path
	}
	return filepath.Join(r.dir, r.base+r.format.ext)
}

// fixup rewrites header fields that depend on what was written.
func (r *recorder) fixup() error {
	if r.ivf == nil {
		return nil
	}
	return r.ivf.fixup(r.f)
}

// close finishes the recording. A recording that never started leaves no
// file.
func (r *recorder) close() error {
	if r.done || r.f == nil {
		r.done = true
		return nil
	}
	r.done = true
	err := r.fixup()
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrRecord, r.path, err)
	}
	return nil
}
