// Package signal is rtckit's WebRTC signaling hub: a WebSocket server that
// relays JSON messages between browsers, compatible with the classic
// chat-server protocol of WebRTC tutorials and extended with versioned,
// ignorable messages (ice-servers, ping/pong, error, session/resume).
//
// The hub (Hub, Client) holds users, routing and limits and knows nothing
// about WebSockets: a transport hands it each received message and gives it
// a Conn whose Send never blocks. Server is the HTTP transport built on
// github.com/coder/websocket. docs/protocol.md describes the wire protocol.
package signal
