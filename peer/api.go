package peer

import (
	"log/slog"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/transport/v5"
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
	if cfg.NoRelayWait {
		se.SetRelayAcceptanceMinWait(0)
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	if cfg.OnStats != nil {
		f, err := stats.NewInterceptor()
		if err != nil {
			return nil, err
		}
		f.OnNewPeerConnection(func(_ string, g stats.Getter) { cfg.OnStats(g) })
		ir.Add(f)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir)), nil
}
