package webtest

import (
	"context"

	"github.com/rtckit/rtckit/internal/browser"
	"github.com/rtckit/rtckit/internal/firefox"
)

// Tab is one page of a browser as the scenarios drive it. Both
// internal/browser's *Tab (Chromium) and internal/firefox's *Tab satisfy it.
type Tab interface {
	// Navigate loads url and waits for its load event.
	Navigate(ctx context.Context, url string) error
	// EvaluateJSON runs a JavaScript expression, awaiting a promise, and
	// returns its value as JSON.
	EvaluateJSON(ctx context.Context, js string) ([]byte, error)
	// Close closes the page.
	Close()
}

// Browser opens tabs in a running browser.
type Browser interface {
	// Name names the browser in test messages: "chromium" or "firefox".
	Name() string
	// NewTab opens a blank page; ctx bounds the opening.
	NewTab(ctx context.Context) (Tab, error)
}

// Chromium adapts a headless Chromium to Browser.
func Chromium(b *browser.Browser) Browser { return chromium{b} }

type chromium struct{ b *browser.Browser }

func (chromium) Name() string { return "chromium" }

func (c chromium) NewTab(ctx context.Context) (Tab, error) {
	t, err := c.b.NewTab(ctx)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Firefox adapts a headless Firefox to Browser.
func Firefox(b *firefox.Browser) Browser { return firefoxBrowser{b} }

type firefoxBrowser struct{ b *firefox.Browser }

func (firefoxBrowser) Name() string { return "firefox" }

func (f firefoxBrowser) NewTab(ctx context.Context) (Tab, error) {
	t, err := f.b.NewTab(ctx)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Peer is where one side of a scenario runs: a browser and the URL of
// the call page it opens (two peers may use different hubs).
type Peer struct {
	Browser Browser
	URL     string
}
