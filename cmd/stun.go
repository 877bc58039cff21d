package cmd

import "github.com/spf13/cobra"

func newStunCmd(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "stun",
		Short: "STUN: discover your public address and NAT behaviour, or run a STUN server",
	}
	c.AddCommand(newStunProbeCmd(g), newStunServeCmd(g))
	return c
}
