package browser

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strconv"
	"sync"

	"github.com/chromedp/chromedp"
)

// Tab is one page of a Browser. Its methods may be called from any
// goroutine, but calls on one tab run one page and should not overlap
// (two Navigates race); use one tab per concurrent actor.
type Tab struct {
	b      *Browser
	id     int
	ctx    context.Context // chromedp context of this page
	cancel context.CancelFunc

	consoleDone chan struct{} // closed when the console logger stops; nil until it starts
	closeOnce   sync.Once
}

// NewTab opens a new blank page in its own window, so that it never runs
// as a hidden background tab. ctx bounds the opening only.
func (b *Browser) NewTab(ctx context.Context) (*Tab, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.nextTab++
	tctx, cancel := chromedp.NewContext(b.ctx)
	t := &Tab{b: b, id: b.nextTab, ctx: tctx, cancel: cancel}
	b.tabs[t] = struct{}{}
	b.mu.Unlock()

	// The first action creates the page and binds it to tctx, so bound it
	// by cancelling tctx when ctx ends.
	stop := context.AfterFunc(ctx, cancel)
	err := chromedp.Do(tctx)
	if !stop() {
		err = cmpErr(ctx.Err(), err)
	}
	if err != nil {
		t.Close()
		if b.ctx.Err() != nil {
			return nil, fmt.Errorf("browser: open tab: %w", ErrClosed)
		}
		return nil, fmt.Errorf("browser: open tab: %w", err)
	}
	t.consoleDone = make(chan struct{})
	go t.logConsole(chromedp.Console(tctx))
	return t, nil
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ID is the tab's number within its browser (1, 2, ...), as used in logs.
func (t *Tab) ID() int { return t.id }

// Close closes the page. It is safe to call more than once.
func (t *Tab) Close() {
	t.close()
	t.b.mu.Lock()
	delete(t.b.tabs, t)
	t.b.mu.Unlock()
}

// close closes the page without touching the browser's tab set.
func (t *Tab) close() {
	t.closeOnce.Do(func() {
		t.cancel() // detaches and closes the target, bounded by chromedp
		if t.consoleDone != nil {
			<-t.consoleDone
		}
	})
}

// Navigate loads url in the tab and waits for its load event.
func (t *Tab) Navigate(ctx context.Context, url string) error {
	_, err := Run(ctx, t, chromedp.Navigate(url))
	if err != nil {
		return fmt.Errorf("browser: navigate to %s: %w", url, err)
	}
	return nil
}

// Evaluate runs the JavaScript expression js in the tab's page and decodes
// its JSON value into a T. A promise is awaited, so js may be an async
// function call such as `(async () => { ... })()`. An exception or a
// rejected promise gives an error wrapping ErrScript; null or undefined for
// a T that cannot be nil gives chromedp.ErrJSNull or ErrJSUndefined.
func Evaluate[T any](ctx context.Context, t *Tab, js string) (T, error) {
	v, err := Run(ctx, t, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if _, ok := errors.AsType[*chromedp.ExceptionError](err); ok {
		err = fmt.Errorf("%w: %w", ErrScript, err)
	}
	return v, err
}

// Run runs any chromedp action in the tab, bounded by ctx. It is the
// escape hatch for what Navigate and Evaluate do not cover (screenshots,
// input events, protocol commands).
func Run[T any](ctx context.Context, t *Tab, a chromedp.Action[T]) (T, error) {
	cctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	v, err := chromedp.Run(cctx, a)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		case t.ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", ErrClosed, err)
		}
	}
	return v, err
}

// logConsole writes the page's console messages and uncaught exceptions to
// the browser's logger until the tab closes.
func (t *Tab) logConsole(msgs iter.Seq2[chromedp.ConsoleMessage, error]) {
	defer close(t.consoleDone)
	for m, err := range msgs {
		if err != nil {
			return
		}
		attrs := []slog.Attr{slog.Int("tab", t.id), slog.String("type", string(m.Type)), slog.String("text", m.Text)}
		if m.URL != "" {
			attrs = append(attrs, slog.String("at", m.URL+":"+strconv.FormatInt(m.Line+1, 10)))
		}
		t.b.log.LogAttrs(context.Background(), consoleLevel(m.Type), "console", attrs...)
	}
}

// consoleLevel maps a console message type to a log level.
func consoleLevel(typ chromedp.ConsoleType) slog.Level {
	switch typ {
	case chromedp.ConsoleDebug:
		return slog.LevelDebug
	case chromedp.ConsoleWarning:
		return slog.LevelWarn
	case chromedp.ConsoleError, chromedp.ConsoleException:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// EvaluateJSON runs js as Evaluate does and returns its value as
// JSON.stringify gives it in the page (so toJSON methods apply, as on
// RTCSessionDescription); undefined gives null. With it a Tab serves
// callers that drive Chromium and Firefox (internal/firefox) alike.
func (t *Tab) EvaluateJSON(ctx context.Context, js string) ([]byte, error) {
	// The newlines keep a trailing line comment in js from swallowing
	// the closing parentheses.
	v, err := Evaluate[*string](ctx, t, "(async () => JSON.stringify(await (\n"+js+"\n)))()")
	if err != nil {
		return nil, err
	}
	if v == nil {
		return []byte("null"), nil
	}
	return []byte(*v), nil
}
