package main

import "github.com/spf13/cobra"

func (a *app) tailCommand() *cobra.Command          { return &cobra.Command{Use: "tail"} }
func (a *app) subscriptionsCommand() *cobra.Command { return &cobra.Command{Use: "subscriptions"} }
