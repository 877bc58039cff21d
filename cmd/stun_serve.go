package cmd

import "github.com/spf13/cobra"

func newStunServeCmd(g *GlobalOptions) *cobra.Command {
	return &cobra.Command{Use: "serve", Short: "Run an RFC 5780-capable STUN server"}
}
