package media

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzOpen reads data as a file called name and checks that every failure
// is a clear media error and every frame is usable.
func fuzzOpen(f *testing.F, name string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(err error) {
			if !errors.Is(err, ErrBadMedia) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error wraps neither ErrBadMedia nor ErrUnsupported: %v", err)
			}
		}
		src, err := openReader(bytes.NewReader(data), nil, name, OpenOptions{})
		if err != nil {
			check(err)
			return
		}
		for range 10000 {
			s, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				check(err)
				break
			}
			if len(s.Data) == 0 || s.Duration <= 0 || s.Duration > maxFrameDuration {
				t.Fatalf("frame of %d bytes lasting %v", len(s.Data), s.Duration)
			}
		}
		if err := src.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzOpenIVF(f *testing.F) {
	fuzzOpen(f, "fuzz.ivf",
		clipIVF[:300],
		ivfFile("VP90", 1000, 1, []uint64{0, 40, 20}, []byte{1}, []byte{}, []byte{3, 4}),
		ivfFile("AV01", 90000, 1, []uint64{5}, []byte{0x12, 0}),
	)
}

func FuzzOpenOgg(f *testing.F) {
	fuzzOpen(f, "fuzz.ogg",
		clipOgg[:600],
		append(append(oggPage(2, 7, 0, opusHead), oggPage(0, 7, 1, opusTags)...),
			rawOggPage(0, 7, 2, []byte{3, 255}, append([]byte{0xfc, 1, 2}, bytes.Repeat([]byte{9}, 255)...))...),
	)
}

func FuzzOpenH264(f *testing.F) {
	fuzzOpen(f, "fuzz.h264",
		annexB([]byte{0x09, 0xf0}, []byte{0x67, 0x42, 0xc0, 0x1f}, []byte{0x68, 0xce}, []byte{0x65, 0x88, 0x84}, []byte{0x41, 0x9a}),
		annexB([]byte{0x41, 0x40, 0x12}, []byte{0x0c, 0xff}, []byte{0x01, 0x80}),
		[]byte{0, 0, 1},
	)
}
