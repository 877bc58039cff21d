package chat

import "errors"

// ErrClosed means the chat channel closed before it opened.
var ErrClosed = errors.New("chat channel closed before it opened")
