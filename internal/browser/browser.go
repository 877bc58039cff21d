// Package browser runs headless Chromium (Debian's chromium package) for
// rtckit's integration tests and benchmarks: a Browser is one Chromium
// process with its own throwaway profile, a Tab is one page in it, and
// Evaluate runs JavaScript in a tab and decodes the result into a Go value.
//
// The browser starts with a fake camera and microphone and grants media
// permissions without asking, so getUserMedia works unattended. Close stops
// the process tree and removes the profile directory.
//
// Tests use NewForTest, which skips when Chromium is missing (and fails under
// CI=true) and closes the browser when the test ends.
package browser

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rtckit/rtckit/internal/linelog"
)

// DefaultExecPath is where Debian's chromium package installs the browser
// binary. The /usr/bin/chromium wrapper script is not used, so that the
// process Start runs is Chromium itself and its flags are exactly Options'.
const DefaultExecPath = "/usr/lib/chromium/chromium"

const (
	// StartTimeout bounds Start (launching Chromium and attaching to its
	// first page) when the caller's context has no earlier deadline.
	StartTimeout = 30 * time.Second

	// CloseTimeout bounds the graceful shutdown in Browser.Close; after it
	// the process tree is killed.
	CloseTimeout = 10 * time.Second

	// leftoverTimeout bounds how long Close waits for a killed leftover
	// Chromium process to exit.
	leftoverTimeout = 2 * time.Second
)

// Available reports whether Chromium is installed at DefaultExecPath. The
// error wraps ErrNotInstalled and says how to install it.
func Available() error { return available(DefaultExecPath) }

func available(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: no executable %s", ErrNotInstalled, path)
	}
	return nil
}

// Options configure a Browser. The zero value starts headless Chromium from
// DefaultExecPath with the fake media devices and discards its logs.
type Options struct {
	// ExecPath is the Chromium binary; empty means DefaultExecPath.
	ExecPath string

	// Flags are extra command-line switches, by name without the leading
	// dashes. A string value is passed as --name=value, true as --name, and
	// false removes a default switch of the same name (for example
	// "use-fake-ui-for-media-stream": false). Flags override the defaults.
	Flags map[string]any

	// InsecureOrigins are http origins (scheme://host:port) that Chromium
	// treats as secure contexts, so WebRTC and getUserMedia work there.
	// Pages served from 127.0.0.1 or localhost need no entry.
	InsecureOrigins []string

	// AllowLoopback lets WebRTC gather and use candidates on loopback
	// addresses (--allow-loopback-in-peer-connection); without it Chromium
	// ignores the loopback interface for ICE.
	AllowLoopback bool

	// Logger receives Chromium's output and the pages' console messages.
	// Nil discards them.
	Logger *slog.Logger
}

// flag is one Chromium command-line switch; value is a string or a bool.
type flag struct {
	name  string
	value any
}

// defaultFlags are the switches every Browser starts with. They keep
// Chromium from reaching out to the network on its own (updates, sync,
// field trials, QUIC probing), from throttling background tabs, and give it
// fake media devices that need no permission prompt.
var defaultFlags = []flag{
	{"headless", "new"},
	// Debian's Chromium cannot use its sandbox as root or inside most
	// containers; the pages are our own test pages.
	{"no-sandbox", true},
	{"disable-gpu", true},
	{"disable-quic", true},
	{"no-first-run", true},
	{"no-default-browser-check", true},
	{"disable-background-networking", true},
	{"disable-component-update", true},
	{"disable-sync", true},
	{"disable-default-apps", true},
	{"disable-extensions", true},
	{"disable-breakpad", true},
	{"disable-domain-reliability", true},
	{"metrics-recording-only", true},
	{"password-store", "basic"},
	{"use-mock-keychain", true},
	{"mute-audio", true},
	{"hide-scrollbars", true},
	// Several tabs run at once (two peers of a call); none may be slowed
	// down for being in the background.
	{"disable-background-timer-throttling", true},
	{"disable-backgrounding-occluded-windows", true},
	{"disable-renderer-backgrounding", true},
	{"use-fake-device-for-media-stream", true},
	{"use-fake-ui-for-media-stream", true},
}

// chromeFlags plans Chromium's switches for opts with the profile in
// userDataDir: the defaults, then the options, then opts.Flags in name order.
func (o Options) chromeFlags(userDataDir string) ([]flag, error) {
	flags := slices.Clone(defaultFlags)
	set := func(name string, value any) {
		i := slices.IndexFunc(flags, func(f flag) bool { return f.name == name })
		switch {
		case value == false && i >= 0:
			flags = slices.Delete(flags, i, i+1)
		case value == false:
		case i >= 0:
			flags[i].value = value
		default:
			flags = append(flags, flag{name, value})
		}
	}
	set("user-data-dir", userDataDir)
	if o.AllowLoopback {
		set("allow-loopback-in-peer-connection", true)
	}
	if len(o.InsecureOrigins) > 0 {
		set("unsafely-treat-insecure-origin-as-secure", strings.Join(o.InsecureOrigins, ","))
	}
	for _, name := range slices.Sorted(maps.Keys(o.Flags)) {
		value := o.Flags[name]
		switch value.(type) {
		case string, bool:
		default:
			return nil, fmt.Errorf("browser: flag %q: value %v is %T, want string or bool", name, value, value)
		}
		if name == "" || strings.HasPrefix(name, "-") {
			return nil, fmt.Errorf("browser: flag %q: give the name without leading dashes", name)
		}
		if name == "user-data-dir" || name == "remote-debugging-pipe" || name == "remote-debugging-port" {
			return nil, fmt.Errorf("browser: flag %q is managed by the browser package", name)
		}
		set(name, value)
	}
	return flags, nil
}

// args renders flags as Chromium's command-line arguments.
func args(flags []flag) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		switch v := f.value.(type) {
		case string:
			out = append(out, "--"+f.name+"="+v)
		case bool:
			if v {
				out = append(out, "--"+f.name)
			}
		}
	}
	return out
}

// Browser is a running headless Chromium. Its methods are safe for
// concurrent use; Close must be called to stop it.
type Browser struct {
	log  *slog.Logger
	dir  string
	args []string

	// ctx is the chromedp context of the browser (and its first,
	// unused page); tabs are its children.
	ctx         context.Context
	cancel      context.CancelFunc
	cancelAlloc context.CancelFunc
	pid         int

	mu      sync.Mutex
	tabs    map[*Tab]struct{}
	nextTab int
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// Start launches Chromium with a fresh profile directory and returns once
// it answers the DevTools protocol. ctx bounds the start (at most
// StartTimeout); the browser then runs until Close, whatever happens to ctx.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	path := cmp.Or(opts.ExecPath, DefaultExecPath)
	if err := available(path); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	// Everything Chromium writes (profile, crash database, caches, its
	// dconf and pulse client files) goes under one fresh directory: the
	// profile and a home for it.
	dir, err := os.MkdirTemp("", "rtckit-chromium-")
	if err != nil {
		return nil, fmt.Errorf("browser: temp directory: %w", err)
	}
	flags, err := opts.chromeFlags(filepath.Join(dir, "profile"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	home := filepath.Join(dir, "home")
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Env("HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
			"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share")),
		chromedp.CombinedOutput(linelog.New(logger.With("src", "chromium"), nil)),
	}
	for _, f := range flags {
		allocOpts = append(allocOpts, chromedp.Flag(f.name, f.value))
	}
	// The browser outlives ctx: only Close stops it.
	life := context.WithoutCancel(ctx)
	actx, cancelAlloc := chromedp.NewExecAllocator(life, allocOpts...)
	bctx, cancel := chromedp.NewContext(actx,
		chromedp.WithErrorf(func(format string, a ...any) { logger.Warn("chromedp: " + fmt.Sprintf(format, a...)) }),
		chromedp.WithLogf(func(format string, a ...any) { logger.Debug("chromedp: " + fmt.Sprintf(format, a...)) }),
	)
	b := &Browser{
		log:         logger,
		dir:         dir,
		args:        args(flags),
		ctx:         bctx,
		cancel:      cancel,
		cancelAlloc: cancelAlloc,
		tabs:        make(map[*Tab]struct{}),
	}

	sctx, cancelStart := context.WithTimeout(ctx, StartTimeout)
	defer cancelStart()
	// The first action launches the process and binds it to bctx, so the
	// start is bounded by cancelling bctx itself.
	stop := context.AfterFunc(sctx, cancel)
	err = chromedp.Do(bctx)
	if !stop() && err == nil {
		err = sctx.Err()
	}
	if err != nil {
		if sctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", sctx.Err(), err)
		}
		_ = b.Close()
		return nil, fmt.Errorf("browser: start %s: %w", path, err)
	}
	if p := chromedp.FromContext(bctx).Browser.Process(); p != nil {
		b.pid = p.Pid
	}
	logger.Debug("chromium started", "pid", b.pid, "args", b.args)
	return b, nil
}

// PID is the process id of the main Chromium process.
func (b *Browser) PID() int { return b.pid }

// Dir is the temporary directory holding Chromium's profile and home;
// Close removes it.
func (b *Browser) Dir() string { return b.dir }

// Args are the command-line switches Chromium was started with.
func (b *Browser) Args() []string { return slices.Clone(b.args) }

// Close closes every tab, shuts Chromium down (gracefully, then by force
// after CloseTimeout), kills any Chromium process still using Dir and
// removes Dir. It is safe to call more than once.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		tabs := slices.Collect(maps.Keys(b.tabs))
		b.mu.Unlock()
		var errs []error
		for _, t := range tabs {
			t.close()
		}
		if b.pid != 0 {
			ctx, cancel := context.WithTimeout(b.ctx, CloseTimeout)
			if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
				b.log.Debug("graceful close failed; killing chromium", "err", err)
			}
			cancel()
		}
		// Cancelling the browser context kills the process if it is
		// still there and waits until it has been reaped.
		b.cancel()
		b.cancelAlloc()
		if err := killLeftovers(b.dir, leftoverTimeout); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("browser: remove profile: %w", err))
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
