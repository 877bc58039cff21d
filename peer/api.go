package peer

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// APIConfig configures the pion objects every rtckit PeerConnection is made from.
type APIConfig struct {
	// ICE is the shared ICE configuration (networks, interfaces, mDNS, loopback).
	ICE ICEConfig
	// Net replaces the host network (pion's vnet in tests); nil is the host's.
	Net transport.Net
	// Logger receives pion's logs; nil discards them.
	Logger *slog.Logger
	// STUNGatherTimeout bounds server-reflexive gathering; zero keeps pion's default.
	STUNGatherTimeout time.Duration
	// NoRelayWait nominates relay candidate pairs at once instead of
	// waiting for better pairs, for relay-only connections where no better
	// pair can appear.
	NoRelayWait bool
	// OnStats, when set, receives the RTP statistics getter of each
	// PeerConnection made from the API: per-SSRC counts pion's GetStats
	// does not report (packets sent, loss and round-trip time from the
	// peer's receiver reports).
	OnStats func(stats.Getter)
	// CompactCodecs offers one codec per video format (VP8, VP9 profile 0,
	// H.264 constrained baseline, AV1, each with RTX) and Opus, instead of
	// pion's full default list, for short session descriptions (the
	// serverless call tokens).
	CompactCodecs bool
	// ICEDisconnectedTimeout, ICEFailedTimeout and ICEKeepaliveInterval
	// replace pion's ICE timeouts (5 s, 25 s, 2 s) when positive.
	ICEDisconnectedTimeout, ICEFailedTimeout, ICEKeepaliveInterval time.Duration
	// UDPSocketBuffer, when positive, sets the kernel receive and send
	// buffers of the UDP sockets ICE opens on the host network, in bytes
	// (Linux caps them at net.core.rmem_max and wmem_max). The usual
	// default of about 200 KiB overflows during bulk data-channel
	// transfers, and every dropped datagram costs an SCTP retransmission.
	// Ignored when Net is set.
	UDPSocketBuffer int
	// BatchUDP moves the datagrams of ICE's UDP sockets in batches
	// (recvmmsg and sendmmsg, with UDP GRO and GSO on Linux): a bulk
	// data-channel transfer then costs a few system calls per window
	// instead of one per SCTP packet.
	// Ignored when Net is set.
	BatchUDP bool
	// SCTPReceiveBuffer, when positive, is the SCTP receive window of data
	// channels in bytes (pion's default is 1 MiB).
	SCTPReceiveBuffer uint32
	// KeepOpenOnPeerClose leaves closing a PeerConnection to its owner when
	// the peer's DTLS close alert arrives. pion otherwise closes it then
	// from a goroutine of its own, which races with the owner's GetStats.
	KeepOpenOnPeerClose bool
}

// NewAPI builds the pion API (SettingEngine, MediaEngine with the default
// codecs, default interceptors: NACK, RTCP reports, TWCC) that every rtckit
// command uses.
func NewAPI(cfg APIConfig) (*webrtc.API, error) {
	if err := cfg.ICE.Validate(); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: SlogLoggerFactory{Logger: cfg.Logger}}
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	} else if cfg.BatchUDP || cfg.UDPSocketBuffer > 0 {
		host, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		se.SetNet(hostNet{Net: host, buffer: cfg.UDPSocketBuffer, batch: cfg.BatchUDP})
	}
	if types := cfg.ICE.networkTypeList(); len(types) > 0 {
		se.SetNetworkTypes(types)
	}
	if f := cfg.ICE.interfaceFilter(); f != nil {
		se.SetInterfaceFilter(f)
	}
	switch cfg.ICE.MDNS {
	case MDNSQuery:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryOnly)
	case MDNSGather:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
	default:
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	se.SetIncludeLoopbackCandidate(cfg.ICE.IncludeLoopback)
	if cfg.STUNGatherTimeout > 0 {
		se.SetSTUNGatherTimeout(cfg.STUNGatherTimeout)
	}
	if cfg.ICEDisconnectedTimeout > 0 || cfg.ICEFailedTimeout > 0 || cfg.ICEKeepaliveInterval > 0 {
		se.SetICETimeouts(orDefault(cfg.ICEDisconnectedTimeout, defaultICEDisconnected),
			orDefault(cfg.ICEFailedTimeout, defaultICEFailed), orDefault(cfg.ICEKeepaliveInterval, defaultICEKeepalive))
	}
	// ICE has already proved the peer's address (STUN with the session's
	// credentials), so the DTLS cookie exchange (HelloVerifyRequest), which
	// guards servers against spoofed sources, only adds a round trip to
	// every call set-up.
	se.SetDTLSInsecureSkipHelloVerify(true)
	if cfg.SCTPReceiveBuffer > 0 {
		se.SetSCTPMaxReceiveBufferSize(cfg.SCTPReceiveBuffer)
	}
	if cfg.NoRelayWait {
		se.SetRelayAcceptanceMinWait(0)
	}
	if cfg.KeepOpenOnPeerClose {
		se.DisableCloseByDTLS(true)
	}
	me := &webrtc.MediaEngine{}
	register := me.RegisterDefaultCodecs
	if cfg.CompactCodecs {
		register = func() error { return registerCompactCodecs(me) }
	}
	if err := register(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if cfg.OnStats != nil {
		// Registered first, so that it sees the RTCP the default
		// interceptors write (NACKs, sender reports for the RTT).
		f, err := stats.NewInterceptor()
		if err != nil {
			return nil, err
		}
		f.OnNewPeerConnection(func(_ string, g stats.Getter) { cfg.OnStats(g) })
		ir.Add(f)
	}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}

// registerCompactCodecs registers the codecs of APIConfig.CompactCodecs
// with the payload types pion's defaults give them.
func registerCompactCodecs(me *webrtc.MediaEngine) error {
	fb := []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	video := []struct {
		mime, fmtp string
		pt         webrtc.PayloadType
	}{
		{webrtc.MimeTypeVP8, "", 96},
		{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", 106},
		{webrtc.MimeTypeVP9, "profile-id=0", 98},
		{webrtc.MimeTypeAV1, "", 45},
	}
	for _, v := range video {
		codecs := []webrtc.RTPCodecParameters{
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: v.mime, ClockRate: 90000, SDPFmtpLine: v.fmtp, RTCPFeedback: fb}, PayloadType: v.pt},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", v.pt)}, PayloadType: v.pt + 1},
		}
		for _, c := range codecs {
			if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
				return err
			}
		}
	}
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}
	return me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio)
}

// pion's ICE timeouts, kept where APIConfig sets only some of them.
const (
	defaultICEDisconnected = 5 * time.Second
	defaultICEFailed       = 25 * time.Second
	defaultICEKeepalive    = 2 * time.Second
)

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// hostNet is the host network with larger buffers on UDP sockets and,
// with batch, batching UDP sockets (batchConn).
type hostNet struct {
	*stdnet.Net
	buffer int
	batch  bool
}

// ListenUDP opens a UDP socket, sets its buffers (best effort) and wraps it
// in a batchConn when asked to.
func (n hostNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	uc, ok := c.(*net.UDPConn)
	if err != nil || !ok {
		return c, err
	}
	if n.buffer > 0 {
		_ = uc.SetReadBuffer(n.buffer)
		_ = uc.SetWriteBuffer(n.buffer)
	}
	if n.batch {
		return newBatchConn(uc, network), nil
	}
	return uc, nil
}
