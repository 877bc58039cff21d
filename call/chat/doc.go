// Package chat is a line-based text chat over a WebRTC data channel
// labelled "chat", in the format of docs/chat.md: each line typed on one
// side becomes one UTF-8 text message, printed on the other side after the
// peer's name.
package chat
