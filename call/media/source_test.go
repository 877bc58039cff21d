package media

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// readAll reads src to io.EOF (at most limit frames) and closes it.
func readAll(t testing.TB, src Source, limit int) ([][]byte, []time.Duration) {
	t.Helper()
	var frames [][]byte
	var durs []time.Duration
	for len(frames) < limit {
		s, err := src.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next after %d frames: %v", len(frames), err)
		}
		frames = append(frames, s.Data)
		durs = append(durs, s.Duration)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	return frames, durs
}

// sum adds durations.
func sum(ds []time.Duration) (total time.Duration) {
	for _, d := range ds {
		total += d
	}
	return total
}

func TestClipLoopsWithContinuousTiming(t *testing.T) {
	video, audio, err := Clip()
	if err != nil {
		t.Fatal(err)
	}
	if video.Kind() != webrtc.RTPCodecTypeVideo || video.Codec().MimeType != webrtc.MimeTypeVP8 {
		t.Errorf("video is %v %s", video.Kind(), video.Codec().MimeType)
	}
	if audio.Kind() != webrtc.RTPCodecTypeAudio || audio.Codec().MimeType != webrtc.MimeTypeOpus {
		t.Errorf("audio is %v %s", audio.Kind(), audio.Codec().MimeType)
	}

	frames, durs := readAll(t, video, 2*ClipFrames+1)
	if len(frames) != 2*ClipFrames+1 {
		t.Fatalf("looped video gave %d frames, want %d", len(frames), 2*ClipFrames+1)
	}
	for i, f := range frames {
		w, h, key := vp8Size(f)
		if wantKey := i%ClipKeyframeInterval == 0; key != wantKey {
			t.Errorf("frame %d: keyframe %v, want %v", i, key, wantKey)
		}
		if key && (w != 320 || h != 240) {
			t.Errorf("frame %d is %dx%d, want 320x240", i, w, h)
		}
		if want := time.Second / 30; durs[i] != want {
			t.Errorf("frame %d lasts %v, want %v", i, durs[i], want)
		}
		if i >= ClipFrames && !bytes.Equal(f, frames[i-ClipFrames]) {
			t.Errorf("frame %d differs from frame %d of the first pass", i, i-ClipFrames)
		}
	}
	if got := sum(durs[:ClipFrames]); got < 3*time.Second-time.Microsecond || got > 3*time.Second {
		t.Errorf("one pass of video lasts %v, want 3s", got)
	}

	packets, adurs := readAll(t, audio, 2*ClipPackets)
	if len(packets) != 2*ClipPackets {
		t.Fatalf("looped audio gave %d packets, want %d", len(packets), 2*ClipPackets)
	}
	for i, d := range adurs {
		if d != 20*time.Millisecond {
			t.Fatalf("packet %d lasts %v, want 20ms", i, d)
		}
	}
	if got := sum(adurs[:ClipPackets]); got != 3*time.Second {
		t.Errorf("one pass of audio lasts %v, want 3s", got)
	}
}

func TestClipVerifierKnowsEveryClipFrame(t *testing.T) {
	v, err := ClipVerifier()
	if err != nil {
		t.Fatal(err)
	}
	video, audio, err := Clip()
	if err != nil {
		t.Fatal(err)
	}
	vf, _ := readAll(t, video, ClipFrames)
	af, _ := readAll(t, audio, ClipPackets)
	for i, f := range append(vf, af...) {
		if !v.Contains(f) {
			t.Errorf("frame %d of the clip is not known", i)
		}
	}
	// Distinct frames only: a steady tone can code to repeated packets.
	if v.Len() < ClipFrames || v.Len() > ClipFrames+ClipPackets {
		t.Errorf("verifier knows %d frames", v.Len())
	}
	changed := bytes.Clone(vf[5])
	changed[len(changed)-1] ^= 1
	if v.Contains(changed) || v.Contains(nil) {
		t.Error("verifier accepts a frame that is not in the clip")
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name  string
		magic string
		ext   string
		want  format
		err   error
	}{
		{"ivf", "DKIF\x00", ".ivf", formatIVF, nil},
		{"ivf named ogg", "DKIF\x00", ".ogg", formatIVF, nil},
		{"ogg", "OggS\x00", ".opus", formatOgg, nil},
		{"h264 3-byte start", "\x00\x00\x01\x67\x42", ".h264", formatH264, nil},
		{"h264 4-byte start", "\x00\x00\x00\x01\x09", "", formatH264, nil},
		{"h265 by extension", "\x00\x00\x00\x01\x40", ".h265", formatUnknown, ErrUnsupported},
		{"h265 by VPS header", "\x00\x00\x00\x01\x40", ".bin", formatUnknown, ErrUnsupported},
		{"forbidden bit", "\x00\x00\x00\x01\x80", ".h264", formatUnknown, ErrBadMedia},
		{"garbage ivf", "hello", ".ivf", formatUnknown, ErrBadMedia},
		{"garbage ogg", "hello", ".ogg", formatUnknown, ErrBadMedia},
		{"garbage h264", "hello", ".264", formatUnknown, ErrBadMedia},
		{"garbage", "hello", ".txt", formatUnknown, ErrUnsupported},
		{"short", "DK", ".ivf", formatUnknown, ErrBadMedia},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := detect([]byte(tt.magic), tt.ext)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("detect(%q, %q) = %v, %v; want %v, %v", tt.magic, tt.ext, got, err, tt.want, tt.err)
			}
		})
	}
}

// ivfFile builds an IVF file with the given fourcc and timebase and frames
// at the given pts.
func ivfFile(fourcc string, rate, scale uint32, pts []uint64, frames ...[]byte) []byte {
	var b bytes.Buffer
	h := make([]byte, ivfFileHeaderLen)
	copy(h, "DKIF")
	binary.LittleEndian.PutUint16(h[6:], ivfFileHeaderLen)
	copy(h[8:], fourcc)
	binary.LittleEndian.PutUint32(h[16:], rate)
	binary.LittleEndian.PutUint32(h[20:], scale)
	b.Write(h)
	for i, f := range frames {
		fh := make([]byte, ivfFrameHeaderLen)
		binary.LittleEndian.PutUint32(fh, uint32(len(f))) //nolint:gosec // test frames are small
		binary.LittleEndian.PutUint64(fh[4:], pts[i])
		b.Write(fh)
		b.Write(f)
	}
	return b.Bytes()
}

func TestIVFDurationsFromTimestamps(t *testing.T) {
	tests := []struct {
		name        string
		rate, scale uint32
		pts         []uint64
		frames      [][]byte
		want        []time.Duration
	}{
		{"ms timebase", 1000, 1, []uint64{0, 40, 80}, [][]byte{{1}, {2}, {3}},
			[]time.Duration{40 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}},
		{"90 kHz, uneven", 90000, 1, []uint64{0, 3000, 9000}, [][]byte{{1}, {2}, {3}},
			[]time.Duration{time.Second / 30, time.Second / 15, time.Second / 15}},
		{"empty frame lengthens the one before", 30, 1, []uint64{0, 1, 2, 3}, [][]byte{{1}, {}, {3}, {4}},
			[]time.Duration{2 * time.Second / 30, time.Second / 30, time.Second / 30}},
		{"single frame takes one tick", 25, 1, []uint64{7}, [][]byte{{1}}, []time.Duration{40 * time.Millisecond}},
		{"backwards pts keeps the rate", 30, 1, []uint64{0, 1, 0}, [][]byte{{1}, {2}, {3}},
			[]time.Duration{time.Second / 30, time.Second / 30, time.Second / 30}},
		{"tiny tick falls back", 90000, 1, []uint64{5}, [][]byte{{1}}, []time.Duration{fallbackFrameDuration}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := openReader(bytes.NewReader(ivfFile("VP80", tt.rate, tt.scale, tt.pts, tt.frames...)), nil, "t.ivf", OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, durs := readAll(t, src, 100)
			if len(durs) != len(tt.want) {
				t.Fatalf("got %d frames (%v), want %d", len(durs), durs, len(tt.want))
			}
			for i := range durs {
				if d := durs[i] - tt.want[i]; d < -time.Microsecond || d > time.Microsecond {
					t.Errorf("frame %d lasts %v, want %v", i, durs[i], tt.want[i])
				}
			}
		})
	}
}

func TestIVFCodecByFourCC(t *testing.T) {
	for fourcc, mime := range map[string]string{"VP80": webrtc.MimeTypeVP8, "VP90": webrtc.MimeTypeVP9, "AV01": webrtc.MimeTypeAV1} {
		src, err := openReader(bytes.NewReader(ivfFile(fourcc, 30, 1, nil)), nil, "x.ivf", OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := src.Codec().MimeType; got != mime {
			t.Errorf("%s: codec %s, want %s", fourcc, got, mime)
		}
		if _, err := src.Next(); !errors.Is(err, io.EOF) {
			t.Errorf("%s: empty file gave %v, want io.EOF", fourcc, err)
		}
	}
}

func TestOpenRejectsBadFiles(t *testing.T) {
	ok := ivfFile("VP80", 30, 1, []uint64{0, 1}, []byte{1, 2, 3}, []byte{4, 5, 6})
	huge := bytes.Clone(ok)
	binary.LittleEndian.PutUint32(huge[ivfFileHeaderLen:], maxFrameSize+1)
	version := bytes.Clone(ok)
	version[4] = 1
	zeroRate := ivfFile("VP80", 0, 1, nil)
	oggOK := clipOgg[:4096]
	badCRC := bytes.Clone(oggOK)
	badCRC[30] ^= 0xff
	vorbis := oggPage(2, 1, 0, []byte("\x01vorbis\x00\x00\x00\x00\x02"))
	multi := oggPage(2, 1, 0, append([]byte("OpusHead\x01\x06\x38\x01\x80\xbb\x00\x00\x00\x00\x01"), 4, 2, 0, 4, 1, 2, 3, 5))
	tests := []struct {
		name, file string
		data       []byte
		err        error
		msg        string
	}{
		{"empty", "a.ivf", nil, ErrBadMedia, "empty file"},
		{"text as ivf", "a.ivf", []byte("hello world"), ErrBadMedia, "no DKIF"},
		{"unknown", "a.mp4", []byte("\x00\x00\x00\x20ftypisom"), ErrUnsupported, "unknown format"},
		{"short ivf header", "a.ivf", ok[:20], ErrBadMedia, "IVF header truncated"},
		{"ivf version", "a.ivf", version, ErrBadMedia, "version 1"},
		{"ivf h264 fourcc", "a.ivf", ivfFile("H264", 30, 1, nil), ErrUnsupported, `"H264"`},
		{"ivf zero timebase", "a.ivf", zeroRate, ErrBadMedia, "timebase"},
		{"ivf truncated frame", "a.ivf", ok[:len(ok)-1], ErrBadMedia, "frame 1 truncated"},
		{"ivf truncated frame header", "a.ivf", ok[:ivfFileHeaderLen+5], ErrBadMedia, "frame 0 header truncated"},
		{"ivf huge frame", "a.ivf", huge, ErrBadMedia, "limit"},
		{"ogg checksum", "a.ogg", badCRC, ErrBadMedia, "checksum"},
		{"ogg truncated", "a.ogg", clipOgg[:100], ErrBadMedia, "truncated"},
		{"ogg vorbis", "a.ogg", vorbis, ErrUnsupported, "not Opus"},
		{"ogg multistream", "a.opus", multi, ErrUnsupported, "multistream"},
		{"h264 parameter sets only", "a.h264", []byte("\x00\x00\x00\x01\x67\x42\x00\x1f\x00\x00\x00\x01\x68\xce"), ErrBadMedia, "no coded picture"},
		{"h264 forbidden bit later", "a.h264", []byte("\x00\x00\x00\x01\x67\x42\x00\x00\x01\xe5\x88"), ErrBadMedia, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := Open(path, OpenOptions{})
			if err == nil {
				// Some problems show only when reading.
				for range 10 {
					if _, err = src.Next(); err != nil {
						break
					}
				}
				if cerr := src.Close(); cerr != nil {
					t.Fatal(cerr)
				}
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), path) {
				t.Errorf("got %v; want an error wrapping %v naming %s and saying %q", err, tt.err, path, tt.msg)
			}
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "none.ivf"), OpenOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want os.ErrNotExist", err)
	}
	_, err = Open("x.h264", OpenOptions{FrameRate: -1})
	if err == nil || !strings.Contains(err.Error(), "frame rate") {
		t.Errorf("negative frame rate: got %v", err)
	}
}

func TestLoopStopsOnAnEmptySource(t *testing.T) {
	empty := func() (Source, error) {
		return openReader(bytes.NewReader(ivfFile("VP80", 30, 1, nil)), nil, "empty.ivf", OpenOptions{})
	}
	src, err := Loop(empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(); !errors.Is(err, ErrBadMedia) {
		t.Errorf("got %v, want ErrBadMedia", err)
	}
	opens := 0
	failing := func() (Source, error) {
		opens++
		if opens > 1 {
			return nil, os.ErrNotExist
		}
		return openReader(bytes.NewReader(ivfFile("VP80", 30, 1, []uint64{0}, []byte{1})), nil, "one.ivf", OpenOptions{})
	}
	src, err = Loop(failing)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reopen failure: got %v", err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
}
