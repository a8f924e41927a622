package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestNoSecretsInTheRepository scans every tracked (and untracked, not
// ignored) file outside tests for credentials: Tencent Cloud SecretIds,
// private keys, and passwords in connection URLs other than placeholders.
func TestNoSecretsInTheRepository(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("git", "-C", "..", "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	secretID := regexp.MustCompile(`AKID[0-9A-Za-z]{32}`)
	privateKey := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`)
	urlPassword := regexp.MustCompile(`postgres(?:ql)?://[^:/@\s]+:([^@\s]+)@`)
	placeholders := map[string]bool{"CHANGE-ME": true, "archiver": true, "xxxxx": true, "...": true}
	files := strings.Fields(string(out))
	if len(files) < 20 {
		t.Fatalf("only %d files listed", len(files))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.Contains(f, "/testdata/") || strings.HasSuffix(f, "go.sum") {
			continue
		}
		b, err := os.ReadFile("../" + f)
		if err != nil {
			continue // deleted in the work tree
		}
		text := string(b)
		if m := secretID.FindString(text); m != "" {
			t.Errorf("%s: a Tencent Cloud SecretId %s…", f, m[:8])
		}
		if privateKey.MatchString(text) {
			t.Errorf("%s: a private key", f)
		}
		for _, m := range urlPassword.FindAllStringSubmatch(text, -1) {
			if !placeholders[m[1]] {
				t.Errorf("%s: a password in a database URL", f)
			}
		}
	}
}
