package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runSync drains every status once. It exits 0 only when every status was
// drained and committed; 3 when another process holds the run lock.
func runSync(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "sync", "[flags]")
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	cfg, err := cf.loadValid(env, true)
	if err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.Log)
	client, err := newClient(cfg, nil, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := newSyncer(cfg, client, st, log, nil)
	if err != nil {
		return err
	}
	res, err := s.Run(ctx, "sync")
	daemon.LogResult(log, res, err)
	switch {
	case errors.Is(err, syncer.ErrLocked):
		return &exitError{code: exitLocked, err: err}
	case err != nil:
		if res.RunID != 0 {
			return fmt.Errorf("run %d failed: %w", res.RunID, err)
		}
		return err
	}
	return nil
}
