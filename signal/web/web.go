// Package web is rtckit's browser call page: an embedded index.html and
// small JavaScript and CSS modules that register a name with an rtckit
// signaling hub, chat, place audio and video calls and share files over an
// RTCDataChannel. Handler serves them; nothing is fetched from elsewhere.
//
// The page speaks the hub's JSON protocol over a WebSocket at /ws on the
// host it was loaded from. The file transfer format used on the data
// channel is documented in docs/file-transfer.md.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded files to their media
// types. It does not depend on the system's MIME tables, which may differ.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".ico":  "image/x-icon",
}

// ContentSecurityPolicy is sent with every response. The page loads only
// its own files and opens WebSockets only to the host that served it.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded assets by path.
type handler struct {
	assets map[string]asset
}

// Handler returns an http.Handler serving the call page: GET / (and
// /index.html) gives index.html, GET /<name> each module and stylesheet.
// Mount it at "/" for requests that are not WebSocket upgrades. Responses
// carry an ETag and "Cache-Control: no-cache", so browsers revalidate and
// always run the page matching the server.
func Handler() http.Handler {
	h := &handler{assets: make(map[string]asset)}
	// The embedded tree is fixed at build time; a walk error cannot happen.
	_ = fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // documentation and other files are not served
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets["/"+strings.TrimPrefix(p, "static/")] = asset{
			body:        body,
			contentType: ct,
			etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
		}
		return nil
	})
	h.assets["/"] = h.assets["/index.html"]
	return h
}

// ServeHTTP serves one asset.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a, ok := h.assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", a.etag)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// Files lists the paths Handler serves, "/" excluded, sorted.
func Files() []string {
	assets := Handler().(*handler).assets
	return slices.Sorted(func(yield func(string) bool) {
		for p := range assets {
			if p != "/" && !yield(p) {
				return
			}
		}
	})
}
