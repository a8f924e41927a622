package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
)

// privateCA makes a CA and a server certificate for 127.0.0.1 signed by it,
// as a company's own PKI would for its database.
func privateCA(t *testing.T, name string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "db.internal"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"db.internal"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestPrivateCADatabase: a database whose certificate a private CA signed
// (which no image's system roots know) is reached with sslmode=verify-full
// and sslrootcert naming the CA file, as docs/operations.md says; without
// it, or with another CA, the binary refuses in one line that names the
// certificate problem, and no password is printed.
func TestPrivateCADatabase(t *testing.T) {
	t.Parallel()
	caPEM, certPEM, keyPEM := privateCA(t, "Example Corp Internal CA")
	otherCA, _, _ := privateCA(t, "Another CA")
	srv, err := pgtemp.Start(context.Background(), pgtemp.Options{TLSCert: certPEM, TLSKey: keyPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(true)
	dir := t.TempDir()
	ca, other := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "other.crt")
	must(t, os.WriteFile(ca, caPEM, 0o644))
	must(t, os.WriteFile(other, otherCA, 0o644))
	base := strings.TrimSuffix(srv.URL("postgres"), "?sslmode=disable")
	base = strings.Replace(base, "postgres@", "postgres:Pw-9xK7@", 1)

	if r := run(t, map[string]string{"DATABASE_URL": base + "?sslmode=verify-full&sslrootcert=" + ca}, "migrate", "up"); r.code != 0 {
		t.Fatalf("verify-full with the private CA: exit %d: %s", r.code, r.stderr)
	}
	for _, tc := range []struct{ name, url string }{
		{"no sslrootcert", base + "?sslmode=verify-full"},
		{"another CA", base + "?sslmode=verify-full&sslrootcert=" + other},
	} {
		r := run(t, map[string]string{"DATABASE_URL": tc.url}, "migrate", "version")
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 1 || len(lines) != 1 || !strings.Contains(r.stderr, "sslrootcert=/path/to/ca.crt") || strings.Contains(r.stderr, "Pw-9xK7") {
			t.Errorf("%s: exit %d: %s", tc.name, r.code, r.stderr)
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(r.stderr))
	}
}
