package call

import (
	"context"
	"io"

	"github.com/pion/webrtc/v4"
)

// chatLabel is the label of the chat data channel.
const chatLabel = "chat"

// runChat runs the terminal chat on dc until ctx ends or the channel closes.
func runChat(ctx context.Context, dc *webrtc.DataChannel, in io.Reader, out io.Writer, peerName string) error {
	<-ctx.Done()
	return ctx.Err()
}
