package browser

import "errors"

var (
	// ErrNotInstalled means the Chromium binary is missing; Available and
	// Start return it wrapped with the path they looked at.
	ErrNotInstalled = errors.New("chromium is not installed (apt-get install chromium)")

	// ErrClosed means the Browser or Tab was closed before or during the call.
	ErrClosed = errors.New("browser closed")

	// ErrScript means the page's JavaScript threw or rejected while
	// Evaluate ran it; the wrapped error carries the exception text.
	ErrScript = errors.New("script failed")
)
