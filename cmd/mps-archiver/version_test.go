package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReleaseIsTheChangelogs: the version an unstamped build reports leads
// to the newest release CHANGELOG.md describes.
func TestReleaseIsTheChangelogs(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## (v\d+\.\d+\.\d+)\b`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("CHANGELOG.md has no \"## vX.Y.Z\" heading")
	}
	if m[1] != release {
		t.Fatalf("CHANGELOG.md's newest release is %s, the binary's is %s: bump one", m[1], release)
	}
	if v := buildVersion(); !strings.HasPrefix(v, release) {
		t.Fatalf("an unstamped build reports %q, not a build of %s", v, release)
	}
}

// TestPseudoVersionsAreNotReleases: the version Go stamps into a build of
// a checkout is recognised, a release is not.
func TestPseudoVersionsAreNotReleases(t *testing.T) {
	for v, pseudo := range map[string]bool{
		"v0.0.0-20261201232937-dda4ec20d151":       true,
		"v0.5.1-0.20261201232937-dda4ec20d151":     true,
		"v0.5.0-pre.0.20261201232937-dda4ec20d151": true,
		"v0.5.0":      false,
		"v1.2.3-rc.1": false,
	} {
		if got := pseudoVersion.MatchString(v); got != pseudo {
			t.Errorf("%s: pseudo %v, want %v", v, got, pseudo)
		}
	}
}
