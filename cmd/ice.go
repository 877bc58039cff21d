package cmd

import "github.com/spf13/cobra"

func newICECmd(g *GlobalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "ice",
		Short: "ICE: gather candidates through STUN and TURN servers",
	}
	c.AddCommand(newICEGatherCmd(g))
	return c
}
