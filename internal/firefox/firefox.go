// Package firefox runs headless Firefox (Debian's firefox-esr package) for
// rtckit's integration tests and drives it over WebDriver BiDi, the
// WebSocket protocol Firefox offers for automation: a Browser is one
// Firefox process with its own throwaway profile, a Tab is one page in it,
// and Evaluate runs JavaScript in a tab and decodes the result into a Go
// value. It mirrors package internal/browser, which does the same for
// Chromium over the DevTools protocol.
//
// The profile's user.js gives Firefox fake media devices without a
// permission prompt, lets WebRTC use loopback host candidates, and keeps
// the browser off the network (updates, telemetry, remote settings, safe
// browsing, captive portal checks). Close stops the process group and
// removes the profile directory.
//
// Tests use NewForTest, which skips when Firefox is missing (and fails
// under CI=true) and closes the browser when the test ends.
package firefox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultExecPath is where Debian's firefox-esr package installs the
// browser.
const DefaultExecPath = "/usr/bin/firefox-esr"

const (
	// StartTimeout bounds Start (launching Firefox, waiting for its
	// WebDriver BiDi endpoint and opening a session) when the caller's
	// context has no earlier deadline.
	StartTimeout = 60 * time.Second

	// CloseTimeout bounds the graceful shutdown in Browser.Close; after it
	// the process group is killed.
	CloseTimeout = 10 * time.Second

	// killTimeout bounds the wait for a killed Firefox to be reaped.
	killTimeout = 5 * time.Second
)

// Available reports whether Firefox is installed at DefaultExecPath. The
// error wraps ErrNotInstalled and says how to install it.
func Available() error { return available(DefaultExecPath) }

func available(path string) error {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: no executable %s", ErrNotInstalled, path)
	}
	return nil
}

// Options configure a Browser. The zero value starts headless Firefox from
// DefaultExecPath with fake media devices and discards its logs.
type Options struct {
	// ExecPath is the Firefox binary; empty means DefaultExecPath.
	ExecPath string

	// Prefs are extra preferences for the profile's user.js, by name; a
	// value is a string, bool or int. They override the defaults.
	Prefs map[string]any

	// Logger receives Firefox's output and the pages' console messages.
	// Nil discards them.
	Logger *slog.Logger
}

// Browser is a running headless Firefox with one WebDriver BiDi session.
// Its methods are safe for concurrent use; Close must be called to stop it.
type Browser struct {
	log   *slog.Logger
	dir   string
	prefs []pref
	cmd   *exec.Cmd
	// exited is closed once the Firefox process has been reaped.
	exited chan struct{}
	bidi   *conn

	mu     sync.Mutex
	tabs   map[string]*Tab // by browsing context id
	nextID int
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// Start launches Firefox with a fresh profile and returns once a WebDriver
// BiDi session is open. ctx bounds the start (at most StartTimeout); the
// browser then runs until Close, whatever happens to ctx.
func Start(ctx context.Context, opts Options) (*Browser, error) {
	path := cmp.Or(opts.ExecPath, DefaultExecPath)
	if err := available(path); err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	prefs, err := opts.plan()
	if err != nil {
		return nil, err
	}
	// The profile and a home for everything else Firefox writes (caches,
	// crash reports, dconf) go under one fresh directory.
	dir, err := os.MkdirTemp("", "rtckit-firefox-")
	if err != nil {
		return nil, fmt.Errorf("firefox: temp directory: %w", err)
	}
	b := &Browser{log: logger, dir: dir, prefs: prefs, exited: make(chan struct{}), tabs: make(map[string]*Tab)}
	sctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := b.start(sctx, path); err != nil {
		if sctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", sctx.Err(), err)
		}
		_ = b.Close()
		return nil, fmt.Errorf("firefox: start %s: %w", path, err)
	}
	logger.Debug("firefox started", "pid", b.PID(), "profile", b.ProfileDir())
	return b, nil
}

// start writes the profile, runs Firefox and opens the BiDi session.
func (b *Browser) start(ctx context.Context, path string) error {
	profile, home := b.ProfileDir(), filepath.Join(b.dir, "home")
	for _, d := range []string{profile, home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(profile, "user.js"), userJS(b.prefs), 0o600); err != nil {
		return err
	}
	out := newOutput(b.log.With("src", "firefox"))
	// Port 0: Firefox picks a free port and prints the endpoint on stderr.
	cmd := exec.Command(path, "--headless", "--no-remote", "--profile", profile, "--remote-debugging-port=0")
	cmd.Env = environ(home)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	// The content processes inherit stdout and stderr; do not wait for
	// them to close the pipe once Firefox itself has exited.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		close(b.exited)
		return err
	}
	b.cmd = cmd
	go func() {
		err := cmd.Wait()
		b.log.Debug("firefox exited", "pid", cmd.Process.Pid, "err", err)
		close(b.exited)
	}()

	var endpoint string
	select {
	case endpoint = <-out.endpoint:
	case <-b.exited:
		return errors.New("firefox exited before its WebDriver BiDi endpoint was ready")
	case <-ctx.Done():
		return errors.New("no WebDriver BiDi endpoint")
	}
	c, err := dial(ctx, endpoint+"/session", b.log, b.event)
	if err != nil {
		return err
	}
	b.bidi = c
	var session struct {
		SessionID    string `json:"sessionId"`
		Capabilities struct {
			BrowserVersion string `json:"browserVersion"`
		} `json:"capabilities"`
	}
	if err := c.call(ctx, "session.new", map[string]any{"capabilities": map[string]any{}}, &session); err != nil {
		return err
	}
	b.log.Debug("webdriver bidi session", "id", session.SessionID, "version", session.Capabilities.BrowserVersion)
	return c.call(ctx, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil)
}

// environ is the process environment for Firefox: ours, with HOME and the
// XDG directories moved under home and the crash reporter off.
func environ(home string) []string {
	set := map[string]string{
		"HOME":                      home,
		"XDG_CONFIG_HOME":           filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":            filepath.Join(home, ".cache"),
		"XDG_DATA_HOME":             filepath.Join(home, ".local", "share"),
		"MOZ_CRASHREPORTER_DISABLE": "1",
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		_, ok := set[k]
		return ok
	})
	for _, k := range slices.Sorted(maps.Keys(set)) {
		env = append(env, k+"="+set[k])
	}
	return env
}

// PID is the process id of the main Firefox process; 0 if it never started.
func (b *Browser) PID() int {
	if b.cmd == nil || b.cmd.Process == nil {
		return 0
	}
	return b.cmd.Process.Pid
}

// Dir is the temporary directory holding Firefox's profile and home;
// Close removes it.
func (b *Browser) Dir() string { return b.dir }

// ProfileDir is the profile directory, under Dir.
func (b *Browser) ProfileDir() string { return filepath.Join(b.dir, "profile") }

// Close closes every tab, asks Firefox to quit (browser.close), kills its
// process group if it has not exited within CloseTimeout, and removes Dir.
// It is safe to call more than once.
func (b *Browser) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.tabs = nil
		b.mu.Unlock()
		var errs []error
		if b.bidi != nil {
			ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
			// Firefox may drop the connection before it answers.
			if err := b.bidi.call(ctx, "browser.close", map[string]any{}, nil); err != nil && !errors.Is(err, ErrClosed) {
				b.log.Debug("browser.close failed; killing firefox", "err", err)
			}
			if b.cmd != nil {
				select {
				case <-b.exited:
				case <-ctx.Done():
				}
			}
			cancel()
			b.bidi.close()
		}
		if b.cmd != nil {
			// Whatever is left of the group (content processes, a
			// Firefox that did not quit) is killed.
			if err := killGroup(b.cmd.Process, killTimeout); err != nil {
				errs = append(errs, err)
			}
			select {
			case <-b.exited:
			case <-time.After(killTimeout):
				errs = append(errs, fmt.Errorf("firefox: process %d not reaped within %s", b.cmd.Process.Pid, killTimeout))
			}
		}
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("firefox: remove profile: %w", err))
		}
		b.closeErr = errors.Join(errs...)
	})
	return b.closeErr
}
