package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/mps-archiver/mps-archiver/migrations"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

func runVersion(_ context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "version", "")
	if stop, err := handleParse(parseFlags(fs, args)); stop {
		return err
	}
	fmt.Fprintf(env.Stdout, "mps-archiver %s (schema %d, %s)\n", buildVersion(), migrations.Latest(), runtime.Version())
	return nil
}
