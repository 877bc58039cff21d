package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtckit/rtckit/call"
	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/internal/testenv"
	"github.com/rtckit/rtckit/signal/web/webtest"
)

// browserFileSize is the size of the files crossing between the browser
// page and the CLI: several 16 KiB chunks and a short last one.
const browserFileSize = 300_000 + 123

// receivedFile mirrors an entry of the page's rtckit.receivedFiles().
type receivedFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Done   bool   `json:"done"`
	OK     bool   `json:"ok"`
	SHA256 string `json:"sha256"`
}

// hubURLs starts `rtckit signal serve` and returns its page and WebSocket URLs.
func hubURLs(t *testing.T) (page, ws string) {
	page = startSignalServe(t)
	return page, "ws" + strings.TrimPrefix(strings.TrimSuffix(page, "/"), "http") + "/ws"
}

// writeTestFile writes n pseudo-random bytes and returns the path and SHA-256.
func writeTestFile(t *testing.T, name string, n int) (string, string) {
	t.Helper()
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, hex.EncodeToString(sum[:])
}

// waitReceived waits until the page received a file named name and returns it.
func waitReceived(p *webtest.Page, name string) receivedFile {
	files := webtest.WaitFor(p, "file "+name+" received", "rtckit.receivedFiles()", func(fs []receivedFile) bool {
		for _, f := range fs {
			if f.Name == name && f.Done {
				return true
			}
		}
		return false
	})
	for _, f := range files {
		if f.Name == name {
			return f
		}
	}
	return receivedFile{}
}

// checkBrowserMediaRecorded asserts the CLI received the browser's fake
// camera and microphone, and that ffprobe reads the recordings.
func checkBrowserMediaRecorded(t *testing.T, who string, rep *call.Report) {
	t.Helper()
	for _, kind := range []string{"video", "audio"} {
		tr, ok := track(rep, "in", kind)
		if !ok || tr.Frames == 0 || tr.Packets == 0 {
			t.Errorf("%s: received %s %+v, want frames from the browser", who, kind, tr)
			continue
		}
		if tr.Recording == "" {
			t.Errorf("%s: %s not recorded: %+v", who, kind, tr)
			continue
		}
		t.Logf("%s: %s", filepath.Base(tr.Recording), ffprobeOK(t, tr.Recording))
	}
}

// TestCallBrowserCallsCLI: a Chromium page calls an answering rtckit; the
// page plays the CLI's clip, the CLI records the browser's fake camera and
// microphone, and a file crosses each way with matching SHA-256.
func TestCallBrowserCallsCLI(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe")
	b := browser.NewForTest(t, browser.Options{AllowLoopback: true})
	pageURL, ws := hubURLs(t)
	rec, inbox := t.TempDir(), t.TempDir()
	toBrowser, toBrowserSum := writeTestFile(t, "to-browser.bin", browserFileSize)
	bot := startCall(t, "--hub", ws, "--as", "bot", "--answer", "--wait", "30s", "--include-loopback",
		"--record", rec, "--receive", inbox, "--send", toBrowser, "--duration", "8s", "--min-frames", "30")

	alice := webtest.Open(t, b, pageURL, "alice")
	alice.Register()
	alice.WaitState("bot online", func(s webtest.State) bool { return contains(s.Users, "bot") })
	alice.Do(`rtckit.call("bot")`)
	alice.WaitPlaying()

	got := waitReceived(alice, "to-browser.bin")
	if !got.OK || got.SHA256 != toBrowserSum || got.Size != browserFileSize {
		t.Errorf("browser received %+v, want ok with sha256 %s", got, toBrowserSum)
	}
	res := webtest.EvalWithin[map[string]any](alice, webtest.FileTimeout,
		fmt.Sprintf(`rtckit.sendFile("from-browser.bin", Uint8Array.from({length: %d}, (_, i) => (i * 13) & 255))`, browserFileSize))
	if res["ok"] != true {
		t.Errorf("browser → CLI transfer: %v", res)
	}

	code, rep := bot.wait(t)
	if rep == nil || code != 0 || !rep.OK {
		t.Fatalf("bot: exit %d, report %+v; stderr %s", code, rep, bot.stderr.String())
	}
	checkBrowserMediaRecorded(t, "bot", rep)
	var in, out bool
	for _, f := range rep.Files {
		in = in || (f.Direction == "in" && f.OK && f.Name == "from-browser.bin" && f.Size == browserFileSize)
		out = out || (f.Direction == "out" && f.OK && f.SHA256 == toBrowserSum)
	}
	if !in || !out {
		t.Errorf("bot: files %+v, want one in and one out, both ok", rep.Files)
	}
	if data, err := os.ReadFile(filepath.Join(inbox, "from-browser.bin")); err != nil || len(data) != browserFileSize {
		t.Errorf("received file: %d bytes, %v", len(data), err)
	}
	alice.WaitState("call ended by the CLI", func(s webtest.State) bool { return s.Call == nil })
}

// TestCallCLICallsBrowser: rtckit calls a Chromium page, which answers; the
// page plays the clip and the CLI records the browser's media.
func TestCallCLICallsBrowser(t *testing.T) {
	testenv.RequireProgram(t, "ffprobe")
	b := browser.NewForTest(t, browser.Options{AllowLoopback: true})
	pageURL, ws := hubURLs(t)
	bob := webtest.Open(t, b, pageURL, "bob")
	bob.Register()

	rec := t.TempDir()
	cli := startCall(t, "--hub", ws, "--as", "cli", "--to", "bob", "--wait", "10s", "--include-loopback",
		"--record", rec, "--duration", "6s", "--min-frames", "30", "--max-setup", "10s")
	bob.WaitState("incoming call", func(s webtest.State) bool { return s.Call != nil && s.Call.Phase == "incoming" })
	bob.Do("rtckit.answer()")
	bob.WaitPlaying()

	code, rep := cli.wait(t)
	if rep == nil || code != 0 || !rep.OK {
		t.Fatalf("cli: exit %d, report %+v; stderr %s", code, rep, cli.stderr.String())
	}
	checkBrowserMediaRecorded(t, "cli", rep)
	if rep.Path == nil || rep.SetupMS <= 0 {
		t.Errorf("cli: path %+v setup %.1f ms, want both", rep.Path, rep.SetupMS)
	}
	bob.WaitState("call ended by the CLI", func(s webtest.State) bool { return s.Call == nil })
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
