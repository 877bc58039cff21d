package transfer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/peer"
	"github.com/rtckit/rtckit/signal/web"
)

// browserFileSize crosses several flow-control pauses of the page and ends
// with a short chunk.
const browserFileSize = 3<<20 + 5

// browserSetup loads the call page's files.js in a tab, makes the page's
// RTCPeerConnection answer offer, and returns the answer. Every "file"
// channel the page accepts is received with files.js's receiveFile into
// window.received.
const browserSetup = `(async () => {
  window.files = await import("/files.js");
  const pc = new RTCPeerConnection();
  window.pc = pc;
  window.received = [];
  pc.ondatachannel = (e) => {
    if (e.channel.label === files.LABEL) window.received.push(files.receiveFile(e.channel));
  };
  await pc.setRemoteDescription(%s);
  await pc.setLocalDescription(await pc.createAnswer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
  });
  return JSON.stringify(pc.localDescription);
})()`

// TestBrowserInterop sends a file from Go to the call page's files.js in
// Chromium and one back, both checked by SHA-256 on both sides.
func TestBrowserInterop(t *testing.T) {
	b := browser.NewForTest(t, browser.Options{AllowLoopback: true})
	ctx, cancel := context.WithTimeout(t.Context(), 2*testTimeout)
	defer cancel()
	srv := httptest.NewServer(web.Handler())
	defer srv.Close()
	tab, err := b.NewTab(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	if err := tab.Navigate(ctx, srv.URL+"/files.js"); err != nil {
		t.Fatal(err)
	}

	api, err := peer.NewAPI(peer.APIConfig{ICE: peer.ICEConfig{IncludeLoopback: true, Networks: []string{"udp4"}, MDNS: peer.MDNSQuery}})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pc.Close() }()
	dst := t.TempDir()
	out := make(chan outcome, 1)
	rx := &Receiver{Dir: dst, Done: func(r Received, err error) { out <- outcome{r, err} }}
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == Label {
			rx.Accept(ctx, dc)
		}
	})
	if _, err := pc.CreateDataChannel("setup", nil); err != nil {
		t.Fatal(err)
	}
	offer := signal(ctx, t, pc)
	answerJSON, err := browser.Evaluate[string](ctx, tab, fmt.Sprintf(browserSetup, offer))
	if err != nil {
		t.Fatal(err)
	}
	var answer webrtc.SessionDescription
	if err := json.Unmarshal([]byte(answerJSON), &answer); err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(answer); err != nil {
		t.Fatal(err)
	}

	// Go → files.js.
	src := t.TempDir()
	data := writeRandom(t, src, "to-browser.bin", browserFileSize)
	res, err := Send(ctx, pc, filepath.Join(src, "to-browser.bin"), SendOptions{})
	if err != nil || !res.OK {
		t.Fatalf("Send to the page: %+v, %v", res, err)
	}
	type pageResult struct {
		OK     bool   `json:"ok"`
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	got, err := browser.Evaluate[pageResult](ctx, tab, `window.received[0].then((r) => ({ok: r.ok, name: r.name, size: r.size, sha256: r.sha256}))`)
	if err != nil || !got.OK || got.Name != "to-browser.bin" || got.Size != browserFileSize || got.SHA256 != sha(data) {
		t.Errorf("the page received %+v, %v; want ok with sha256 %s", got, err, sha(data))
	}

	// files.js → Go.
	sent, err := browser.Evaluate[pageResult](ctx, tab, fmt.Sprintf(`files.sendFile((label) => pc.createDataChannel(label),
	  {name: "../from-browser.bin", mime: "application/octet-stream", bytes: Uint8Array.from({length: %d}, (_, i) => (i * 13) & 255)})
	  .then((r) => ({ok: r.ok, sha256: r.sha256}))`, browserFileSize))
	if err != nil || !sent.OK {
		t.Fatalf("the page's sendFile: %+v, %v", sent, err)
	}
	want := make([]byte, browserFileSize)
	for i := range want {
		want[i] = byte(i * 13)
	}
	var o outcome
	select {
	case o = <-out:
	case <-ctx.Done():
		t.Fatal("the Go receiver reported nothing")
	}
	if o.err != nil || !o.res.OK || o.res.SHA256 != sha(want) || sent.SHA256 != sha(want) {
		t.Fatalf("Go received %+v, %v; want sha256 %s", o.res, o.err, sha(want))
	}
	if saved, err := os.ReadFile(filepath.Join(dst, "from-browser.bin")); err != nil || sha(saved) != sha(want) {
		t.Errorf("saved file: %d bytes, %v", len(saved), err)
	}
}

// signal returns pc's offer with every candidate gathered, as JSON.
func signal(ctx context.Context, t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("gathering did not complete")
	}
	b, err := json.Marshal(pc.LocalDescription())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
