package firefox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Tab is one page of a Browser, a WebDriver BiDi top-level browsing
// context in a window of its own. Its methods may be called from any
// goroutine, but calls on one tab run one page and should not overlap
// (two Navigates race); use one tab per concurrent actor.
type Tab struct {
	b       *Browser
	id      int
	context string // the browsing context id

	closed    atomic.Bool
	closeOnce sync.Once
}

// NewTab opens a new blank page in its own window, so that it never runs
// as a hidden background tab. ctx bounds the opening only.
func (b *Browser) NewTab(ctx context.Context) (*Tab, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.nextID++
	id := b.nextID
	b.mu.Unlock()
	var res struct {
		Context string `json:"context"`
	}
	if err := b.bidi.call(ctx, "browsingContext.create", map[string]any{"type": "window"}, &res); err != nil {
		return nil, fmt.Errorf("firefox: open tab: %w", err)
	}
	t := &Tab{b: b, id: id, context: res.Context}
	b.mu.Lock()
	closed := b.closed
	if !closed {
		b.tabs[t.context] = t
	}
	b.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("firefox: open tab: %w", ErrClosed)
	}
	return t, nil
}

// ID is the tab's number within its browser (1, 2, ...), as used in logs.
func (t *Tab) ID() int { return t.id }

// Close closes the page. It is safe to call more than once, and after the
// browser has been closed.
func (t *Tab) Close() {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		t.b.mu.Lock()
		closed := t.b.closed
		if !closed {
			delete(t.b.tabs, t.context)
		}
		t.b.mu.Unlock()
		if closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
		defer cancel()
		if err := t.b.bidi.call(ctx, "browsingContext.close", map[string]any{"context": t.context}, nil); err != nil {
			t.b.log.Debug("close tab", "tab", t.id, "err", err)
		}
	})
}

// call sends a command about this tab; a tab closed before or during the
// call gives an error wrapping ErrClosed.
func (t *Tab) call(ctx context.Context, method string, params, result any) error {
	if t.closed.Load() {
		return fmt.Errorf("%s: %w", method, ErrClosed)
	}
	err := t.b.bidi.call(ctx, method, params, result)
	if ce, ok := errors.AsType[*CommandError](err); err != nil && (t.closed.Load() || ok && ce.Code == "no such frame") {
		err = fmt.Errorf("%w (%w)", ErrClosed, err)
	}
	return err
}

// Navigate loads url in the tab and waits for its load event.
func (t *Tab) Navigate(ctx context.Context, url string) error {
	params := map[string]any{"context": t.context, "url": url, "wait": "complete"}
	if err := t.call(ctx, "browsingContext.navigate", params, nil); err != nil {
		return fmt.Errorf("firefox: navigate to %s: %w", url, err)
	}
	return nil
}

// evaluateResult is the result of script.evaluate.
type evaluateResult struct {
	Type   string `json:"type"` // success or exception
	Result struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	} `json:"result"`
	ExceptionDetails struct {
		Text       string `json:"text"`
		LineNumber int    `json:"lineNumber"`
	} `json:"exceptionDetails"`
}

// EvaluateJSON runs the JavaScript expression js in the tab's page and
// returns its value as JSON (JSON.stringify in the page; undefined becomes
// null). A promise is awaited, so js may be an async function call such as
// `(async () => { ... })()`. An exception or a rejected promise gives an
// error wrapping ErrScript.
func (t *Tab) EvaluateJSON(ctx context.Context, js string) ([]byte, error) {
	// The newlines keep a trailing line comment in js from swallowing
	// the closing parentheses.
	expr := "(async () => JSON.stringify(await (\n" + js + "\n)))()"
	params := map[string]any{
		"expression":      expr,
		"target":          map[string]any{"context": t.context},
		"awaitPromise":    true,
		"resultOwnership": "none",
	}
	var res evaluateResult
	if err := t.call(ctx, "script.evaluate", params, &res); err != nil {
		return nil, fmt.Errorf("firefox: evaluate: %w", err)
	}
	switch {
	case res.Type == "exception":
		return nil, fmt.Errorf("firefox: evaluate: %w: %s", ErrScript, res.ExceptionDetails.Text)
	case res.Type != "success":
		return nil, fmt.Errorf("firefox: evaluate: %w: result type %q", ErrProtocol, res.Type)
	case res.Result.Type == "undefined":
		return []byte("null"), nil
	}
	s, ok := res.Result.Value.(string)
	if res.Result.Type != "string" || !ok {
		return nil, fmt.Errorf("firefox: evaluate: %w: JSON.stringify gave a %s", ErrProtocol, res.Result.Type)
	}
	return []byte(s), nil
}

// Evaluate runs js as EvaluateJSON does and decodes the value into a T.
func Evaluate[T any](ctx context.Context, t *Tab, js string) (T, error) {
	var v T
	data, err := t.EvaluateJSON(ctx, js)
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("firefox: evaluate: decode %.200s: %w", data, err)
	}
	return v, nil
}

// logEntry is the part of a log.entryAdded event that is logged.
type logEntry struct {
	Type   string `json:"type"` // console or javascript
	Level  string `json:"level"`
	Text   string `json:"text"`
	Source struct {
		Context string `json:"context"`
	} `json:"source"`
	StackTrace struct {
		CallFrames []struct {
			URL        string `json:"url"`
			LineNumber int    `json:"lineNumber"`
		} `json:"callFrames"`
	} `json:"stackTrace"`
}

// event logs the pages' console messages and uncaught exceptions.
func (b *Browser) event(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e logEntry
	if err := json.Unmarshal(params, &e); err != nil {
		return
	}
	b.mu.Lock()
	tab := 0
	if t := b.tabs[e.Source.Context]; t != nil {
		tab = t.id
	}
	b.mu.Unlock()
	attrs := []slog.Attr{slog.Int("tab", tab), slog.String("type", e.Type), slog.String("text", e.Text)}
	if f := e.StackTrace.CallFrames; len(f) > 0 {
		attrs = append(attrs, slog.String("at", fmt.Sprintf("%s:%d", f[0].URL, f[0].LineNumber+1)))
	}
	b.log.LogAttrs(context.Background(), consoleLevel(e.Level), "console", attrs...)
}

// consoleLevel maps a BiDi log level to a slog level.
func consoleLevel(level string) slog.Level {
	switch level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
