package natlab_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rtckit/rtckit/internal/natlab"
)

// A lab with a symmetric NAT, coturn on the internet side, and coturn's
// verdict on the NAT. Tests use NewForTest instead of New and Close.
func Example() {
	ctx := context.Background()
	lab, err := natlab.New(ctx, natlab.Config{
		Sites:   []natlab.SiteConfig{{NAT: natlab.NATSymmetric}},
		Require: []string{natlab.TurnServer, natlab.NatDiscoveryTool},
	})
	if err != nil {
		log.Print(err)
		return
	}
	defer lab.Close()

	if _, err := natlab.StartCoturn(ctx, lab); err != nil {
		log.Print(err)
		return
	}
	site := lab.Sites[0]
	v, err := site.NatDiscovery(ctx, lab.ServerIPs[0])
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("mapping %s, filtering %s (want %+v)\n", v.Mapping, v.Filtering, site.NAT().Behavior())

	// An rtckit binary run behind the NAT should tell the same story.
	out, err := lab.Command(ctx, site.Client, "rtckit", "stun", "probe", "-4",
		"--server", fmt.Sprintf("stun:%s:%d", lab.ServerIPs[0], natlab.CoturnPort)).CombinedOutput()
	fmt.Printf("%s%v\n", out, err)
}
