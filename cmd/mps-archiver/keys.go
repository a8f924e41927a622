package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/proof"
)

// runKeys makes a checkpoint signing key, or prints the public key of the
// configured one.
func runKeys(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "keys", "[flags] generate NAME | public", `Checkpoints of the proof log are signed with an Ed25519 key (a signed note,
golang.org/x/mod/sumdb/note) that is never stored in the database.
  generate NAME  write a new private key to --out (mode 0600; refuses to
                 replace a file) and print its public key. NAME names the
                 signer in every checkpoint (e.g. the archive's host name).
  public         print the public key of MPS_ARCHIVER_SIGNING_KEY(_FILE),
                 for auditors and MPS_ARCHIVER_VERIFIER_KEYS.`)
	var cf commonFlags
	cf.register(fs, env)
	out := fs.String("out", "", "generate: the private key `file` to write")
	pos, stop, err := parseMixed(fs, args, 2)
	if stop {
		return err
	}
	switch {
	case len(pos) == 2 && pos[0] == "generate":
		if *out == "" {
			return usageErrorf("generate needs --out FILE: the private key is written to a file, never printed")
		}
		private, public, err := proof.GenerateKey(pos[1])
		if err != nil {
			return err
		}
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("--out: %w", config.UnwrapPathError(err))
		}
		if _, err := f.WriteString(private + "\n"); err != nil {
			f.Close()
			return fmt.Errorf("--out: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		fmt.Fprintln(env.Stdout, public)
		fmt.Fprintf(env.Stderr, "wrote the private key to %s; give the archiver MPS_ARCHIVER_SIGNING_KEY_FILE=%s, and auditors the public key above\n", *out, *out)
		return nil
	case len(pos) == 1 && pos[0] == "public":
		cfg, err := config.Load(config.ExpandPath(cf.configPath), env.Getenv)
		if err != nil {
			return err
		}
		s, err := cfg.Proof.Signer()
		if err != nil {
			return err
		}
		if s == nil {
			return fmt.Errorf("no signing key: set MPS_ARCHIVER_SIGNING_KEY_FILE (or proof.signing_key)")
		}
		fmt.Fprintln(env.Stdout, s.PublicKey())
		return nil
	}
	return usageErrorf("want `mps-archiver keys generate NAME --out FILE` or `keys public` (see `mps-archiver keys -h`)")
}
