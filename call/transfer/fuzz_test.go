package transfer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"file","name":"a.pdf","size":12,"sha256":"` + testSHA + `","mime":"application/pdf"}`,
		`{"type":"file","size":1e3,"sha256":"` + strings.ToUpper(testSHA) + `"}`,
		`{"type":"file","name":"a","size":-1,"sha256":"` + testSHA + `"}`,
		`{"type":"file","name":"a","size":1.5,"sha256":"` + testSHA + `"}`,
		`{"type":"eof"}`,
		`{"type":"file-ack","sha256":null,"ok":false,"error":"too large"}`,
		`{"type":"file-ack","sha256":"` + testSHA + `","ok":true}`,
		`{"type":"x"}`, `{`, `null`, `[]`, `"file"`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseMessage(data)
		if err != nil {
			if !errors.Is(err, ErrBadHeader) && !errors.Is(err, ErrProtocol) {
				t.Fatalf("parseMessage(%q): error %v wraps neither ErrBadHeader nor ErrProtocol", data, err)
			}
			return
		}
		if m.kind != kindHeader {
			return
		}
		h := m.header
		if h.Size < 0 || h.Size > maxSafeInteger || len(h.SHA256) != 64 || strings.ToLower(h.SHA256) != h.SHA256 {
			t.Fatalf("parseMessage(%q) accepted header %+v", data, h)
		}
		b, err := encodeHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := parseMessage(b); err != nil || back.header != h {
			t.Fatalf("header %+v encoded as %s parsed back as %+v, %v", h, b, back.header, err)
		}
	})
}

func FuzzSanitizeName(f *testing.F) {
	for _, seed := range []string{"report.pdf", "../../etc/passwd", `..\x`, "..", ".bashrc", "CON.txt", "a\u202Eb", "bad\xff", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := SanitizeName(name)
		if got == "" || len(got) > maxNameBytes || !utf8.ValidString(got) ||
			strings.ContainsAny(got, "/\\\x00") || strings.HasPrefix(got, ".") ||
			got != filepath.Base(got) || isWindowsDevice(got) {
			t.Fatalf("SanitizeName(%q) = %q", name, got)
		}
		if again := SanitizeName(got); again != got {
			t.Fatalf("SanitizeName is not idempotent: %q -> %q -> %q", name, got, again)
		}
	})
}

// FuzzReception feeds a receiver a header, binary chunks cut from data and
// maybe an "eof", and checks that it answers at most once and that Dir ends
// up with nothing or exactly the announced file.
func FuzzReception(f *testing.F) {
	hdr := func(data string) string {
		s := sha256.Sum256([]byte(data))
		b, _ := encodeHeader(Header{Name: "../x", Size: int64(len(data)), SHA256: hex.EncodeToString(s[:])})
		return string(b)
	}
	f.Add(hdr("hello"), []byte("hello"), uint16(2), true)
	f.Add(hdr("hello"), []byte("hellO"), uint16(5), true)
	f.Add(hdr("hello"), []byte("hello!"), uint16(1), true)
	f.Add(hdr(""), []byte{}, uint16(0), true)
	f.Add(hdr("hello"), []byte("hel"), uint16(3), false)
	f.Add(`{"type":"eof"}`, []byte("x"), uint16(1), true)
	f.Fuzz(func(t *testing.T, header string, data []byte, chunk uint16, eof bool) {
		dir := t.TempDir()
		var acks []Ack
		x := newReception(&Receiver{Dir: dir, MaxSize: 1 << 20}, func(a Ack) error {
			acks = append(acks, a)
			return nil
		})
		x.handle([]byte(header), true)
		step := int(chunk)%ChunkSize + 1
		for off := 0; off < len(data); off += step {
			x.handle(data[off:min(off+step, len(data))], false)
		}
		if eof {
			x.handle([]byte(eofMessage), true)
		}
		x.abort(ErrClosed, false)
		<-x.done
		if len(acks) > 1 {
			t.Fatalf("%d file-acks: %+v", len(acks), acks)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !x.res.OK {
			if len(entries) != 0 {
				t.Fatalf("failed transfer (%v) left %v", x.err, entries)
			}
			return
		}
		if len(acks) != 1 || !acks[0].OK || len(entries) != 1 {
			t.Fatalf("successful transfer with acks %+v and files %v", acks, entries)
		}
		got, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(got)
		if hex.EncodeToString(s[:]) != x.res.ExpectedSHA256 || int64(len(got)) != x.res.ExpectedSize {
			t.Fatalf("saved %d bytes that do not match the header %+v", len(got), x.res)
		}
	})
}
