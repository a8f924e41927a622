package metrics

import (
	"strings"
	"testing"
	"time"
)

func TestHeadroom(t *testing.T) {
	t.Parallel()
	m := New()
	now := time.Date(2026, 1, 8, 0, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	// A fresh install: the process's start, then the first run, is the
	// basis, so the alerts do not page before a first drain could finish.
	m.created = now.Add(-time.Minute)
	if h := m.Headroom(); h != 168*time.Hour-time.Minute {
		t.Fatalf("fresh install: headroom %s", h)
	}
	m.SetFirstAttempt(now.Add(-5 * time.Hour))
	m.SetFirstAttempt(now.Add(-time.Hour)) // later: ignored
	if h := m.Headroom(); h != 163*time.Hour {
		t.Fatalf("first drain under way for 5h: headroom %s", h)
	}
	m.SetLastSuccess(now.Add(-48 * time.Hour))
	if m.Headroom() != 120*time.Hour {
		t.Fatalf("headroom %s", m.Headroom())
	}
	m.SetLastSuccess(now.Add(-72 * time.Hour)) // older: ignored
	if m.Headroom() != 120*time.Hour {
		t.Fatalf("headroom %s", m.Headroom())
	}
}

func TestCodeLabelIsBounded(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "OK", "InternalError.DbError": "InternalError.DbError", "x<script>": "other",
		strings.Repeat("A", 65): "other", "ClientError.NetworkError": "ClientError.NetworkError",
	} {
		if got := codeLabel(in); got != want {
			t.Errorf("codeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}
