package proof

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// GenerateKey makes an Ed25519 signing key named name, as the note
// package writes them: the private key ("PRIVATE+KEY+name+hash+…", kept
// in a file the database never sees) and its public verifier key
// ("name+hash+…", given to auditors).
func GenerateKey(name string) (private, public string, err error) {
	if err := checkKeyName(name); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, name)
}

func checkKeyName(name string) error {
	if name == "" || strings.ContainsAny(name, "+ \t\n") || !isPrint(name) {
		return fmt.Errorf("key name %q: use a non-empty name without '+', spaces or control characters (e.g. the archive's host name)", name)
	}
	return nil
}

func isPrint(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// Signer signs checkpoints with a private key.
type Signer struct {
	note.Signer
	public string
}

// NewSigner reads a private key as GenerateKey writes it. Its errors never
// quote the key.
func NewSigner(private string) (*Signer, error) {
	private = strings.TrimSpace(private)
	s, err := note.NewSigner(private)
	if err != nil {
		return nil, errors.New("not a signing key (expected PRIVATE+KEY+name+hash+key, as `mps-archiver keys generate` writes)")
	}
	// PRIVATE+KEY+name+hash+base64(alg || seed): the public key is the
	// seed's.
	parts := strings.SplitN(private, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[len(parts)-1])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 signing key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	public, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, err
	}
	return &Signer{Signer: s, public: public}, nil
}

// PublicKey is the verifier key of the signer's key.
func (s *Signer) PublicKey() string { return s.public }

// Verifiers is the set of public keys a checkpoint may be signed by
// (several, for rotation: an old key verifies the checkpoints it signed).
type Verifiers struct {
	list  []note.Verifier
	names []string
}

// NewVerifiers reads verifier keys ("name+hash+key"). Empty entries are
// skipped.
func NewVerifiers(keys ...string) (*Verifiers, error) {
	v := &Verifiers{}
	for _, k := range keys {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if strings.HasPrefix(k, "PRIVATE+") {
			// Never quoted: it is a secret given where a public key goes.
			return nil, errors.New("a private key was given as a public key: give `mps-archiver keys public`'s output")
		}
		nv, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: not a public key (expected name+hash+key, as `mps-archiver keys public` prints)", short(k))
		}
		v.list = append(v.list, nv)
		v.names = append(v.names, nv.Name())
	}
	return v, nil
}

// Len is how many keys there are.
func (v *Verifiers) Len() int { return len(v.list) }

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// Checkpoint is a log's size and root hash, under its origin.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// Sign writes a checkpoint as a signed note (C2SP tlog-checkpoint).
func Sign(c Checkpoint, s *Signer) ([]byte, error) {
	body := log.Checkpoint{Origin: c.Origin, Size: c.Size, Hash: c.Root}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, s)
}

// Open checks a signed checkpoint against the trusted keys and reads it;
// it names the key that signed it. A note signed only by unknown keys is
// an error that names them.
func Open(signed []byte, v *Verifiers) (Checkpoint, string, error) {
	if v == nil || len(v.list) == 0 {
		return Checkpoint{}, "", errors.New("no public key to check its signature with (MPS_ARCHIVER_VERIFIER_KEYS, --key, or a signing key)")
	}
	n, err := note.Open(signed, note.VerifierList(v.list...))
	if err != nil {
		var unknown *note.UnverifiedNoteError
		if errors.As(err, &unknown) {
			var names []string
			for _, s := range unknown.Note.UnverifiedSigs {
				names = append(names, s.Name)
			}
			return Checkpoint{}, "", fmt.Errorf("signed only by keys not trusted here (%s); trusted: %s", strings.Join(names, ", "), strings.Join(v.names, ", "))
		}
		return Checkpoint{}, "", fmt.Errorf("signature does not verify: %v", err)
	}
	// A signature is read leniently by the note package: a changed
	// padding bit of its base64 would still verify. Only its one
	// encoding is taken.
	for _, sig := range n.Sigs {
		if _, err := base64.StdEncoding.Strict().DecodeString(sig.Base64); err != nil {
			return Checkpoint{}, "", fmt.Errorf("signature of %s is not in its canonical encoding", sig.Name)
		}
	}
	var c log.Checkpoint
	rest, err := c.Unmarshal([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, "", err
	}
	if len(rest) > 0 {
		return Checkpoint{}, "", errors.New("checkpoint has extension lines this archive never writes")
	}
	return Checkpoint{Origin: c.Origin, Size: c.Size, Root: c.Hash}, n.Sigs[0].Name, nil
}
