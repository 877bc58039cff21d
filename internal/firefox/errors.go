package firefox

import "errors"

var (
	// ErrNotInstalled means the Firefox binary is missing; Available and
	// Start return it wrapped with the path they looked at.
	ErrNotInstalled = errors.New("firefox is not installed (apt-get install firefox-esr)")

	// ErrClosed means the Browser or Tab was closed before or during the call.
	ErrClosed = errors.New("firefox closed")

	// ErrScript means the page's JavaScript threw or rejected while
	// Evaluate ran it; the error carries the exception text.
	ErrScript = errors.New("script failed")

	// ErrProtocol means Firefox answered a WebDriver BiDi command with an
	// error, or with a message that could not be decoded.
	ErrProtocol = errors.New("webdriver bidi error")
)
