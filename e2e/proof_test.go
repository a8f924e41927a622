package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestProofLog: an archive synced twice (tasks moving between the runs,
// outcomes captured), with its checkpoints signed and published,
// verifies; each way of tampering with it is found and named by verify;
// a task's bundle and a range's verify offline with the public key alone;
// and an archive that joins the log by migration verifies too.
func TestProofLog(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	clock := simulator.NewClock(now, 0)
	a := newAPI(t, generate(600, now, func(c *simulator.GenConfig) { c.FailureShare = 0.2 }), clock, simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_MODE"] = "all"
	env["MPS_DETAILS_RATE_LIMIT"] = "1000"
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "signing.key")
	r := run(t, env, "keys", "generate", "e2e-archive", "--out", keyFile)
	public := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(public, "e2e-archive+") {
		t.Fatalf("keys generate: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(keyFile); strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(b))) {
		t.Fatal("keys generate printed the private key")
	}
	published := filepath.Join(dir, "published")
	if err := os.Mkdir(published, 0o755); err != nil {
		t.Fatal(err)
	}
	env["MPS_ARCHIVER_SIGNING_KEY_FILE"] = keyFile
	env["MPS_ARCHIVER_CHECKPOINT_DIR"] = published
	if r := run(t, env, "keys", "public"); r.code != 0 || strings.TrimSpace(r.stdout) != public {
		t.Fatalf("keys public: exit %d: %q, generated %q", r.code, r.stdout, public)
	}

	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("first sync: exit %d: %s", r.code, r.stderr)
	}
	older := pgtest.Clone(t, db) // the archive as the first checkpoint saw it
	clock.Advance(3 * time.Hour)
	if r := run(t, env, "sync", "--full"); r.code != 0 {
		t.Fatalf("second sync: exit %d: %s", r.code, r.stderr)
	}
	if n := scalar(t, db, `SELECT count(*) FROM task_status_changes`); n == 0 {
		t.Fatal("no task moved between the syncs")
	}
	files, _ := filepath.Glob(filepath.Join(published, "checkpoint.*"))
	if len(files) != 2 {
		t.Fatalf("published %d checkpoints, want one a run: %v", len(files), files)
	}
	leaves := scalar(t, db, `SELECT size FROM proof_log_head`)
	facts := scalar(t, db, `SELECT (SELECT count(*) FROM tasks) + (SELECT count(*) FROM task_status_changes) + (SELECT count(*) FROM task_details) + (SELECT count(*) FROM sync_runs)`)
	if leaves < facts {
		t.Fatalf("%d leaves for %d facts", leaves, facts)
	}

	// Untouched, it verifies, with the published checkpoints and with the
	// public key alone (an auditor's environment has no signing key).
	auditor := map[string]string{"DATABASE_URL": db, "MPS_ARCHIVER_VERIFIER_KEYS": public, "HOME": os.TempDir()}
	if r := run(t, auditor, "verify", "--checkpoint", published); r.code != 0 || !strings.HasPrefix(r.stdout, "OK: ") {
		t.Fatalf("untouched archive: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}

	pick := func(sql string) string {
		t.Helper()
		rows := pgtest.Query(t, db, sql)
		if len(rows) == 0 {
			t.Fatalf("nothing for %s", sql)
		}
		return rows[0][0].(string)
	}
	finished := pick(`SELECT task_id FROM tasks WHERE status = 'FINISH' AND finish_time IS NOT NULL ORDER BY task_id LIMIT 1`)
	failed := pick(`SELECT task_id FROM task_details WHERE outcome = 'failed' ORDER BY task_id LIMIT 1`)
	moved := pick(`SELECT task_id FROM task_status_changes ORDER BY id LIMIT 1`)
	head := scalar(t, db, `SELECT size FROM proof_log_head`)
	cp := pgtest.Query(t, db, `SELECT size, root FROM proof_checkpoints ORDER BY size DESC LIMIT 1`)[0]
	otherPriv, _, _ := proof.GenerateKey("e2e-archive")
	otherSigner, _ := proof.NewSigner(otherPriv)
	origin := pick(`SELECT origin FROM proof_log_head`)
	forged, err := proof.Sign(proof.Checkpoint{Origin: origin, Size: uint64(cp[0].(int64)), Root: cp[1].([]byte)}, otherSigner)
	if err != nil {
		t.Fatal(err)
	}

	outcomeKey := pick(`SELECT mps_proof_key(task_id, create_time) FROM task_details WHERE task_id = '` + failed + `'`)
	finishedKey := pick(`SELECT mps_proof_key(task_id, create_time) FROM tasks WHERE task_id = '` + finished + `'`)
	for _, c := range []struct {
		name string
		sql  []string
		want []string
	}{
		{"a task's times updated", []string{`UPDATE tasks SET finish_time = finish_time + interval '1 hour' WHERE task_id = '` + finished + `'`},
			[]string{"task " + finished + "@", ": row_sha256 is", "(leaf"}},
		{"a task deleted", []string{`DELETE FROM tasks WHERE task_id = '` + finished + `'`},
			[]string{"task " + finished + "@", ": in the proof log (leaf", "not in the archive: deleted"}},
		{"an outcome changed from failed to succeeded", []string{`UPDATE task_details SET outcome = 'succeeded', err_code = NULL WHERE task_id = '` + failed + `'`},
			[]string{"outcome " + outcomeKey + `: err_code is null, the log has`}},
		{"a status change inserted", []string{`INSERT INTO task_status_changes (task_id, create_time, run_id, from_status, to_status)
SELECT task_id, create_time, 1, 'PROCESSING', 'FINISH' FROM tasks WHERE task_id = '` + finished + `'`},
			[]string{"status_change " + finished + "#", ": in the archive, not in the proof log"}},
		{"a status change reordered", []string{`UPDATE task_status_changes SET observed_at = observed_at - interval '2 days' WHERE task_id = '` + moved + `'`},
			[]string{"status_change " + moved + "#", "observed_at is"}},
		{"a status change removed", []string{`DELETE FROM task_status_changes WHERE task_id = '` + moved + `'`},
			[]string{"status_change " + moved + "#", "deleted"}},
		{"a run's row edited", []string{`UPDATE sync_runs SET tasks_seen = tasks_seen + 1 WHERE id = 1`},
			[]string{"run 1: tasks_seen is"}},
		{"a run invented", []string{`INSERT INTO sync_runs (id, status) VALUES (0, 'running')`},
			[]string{"run 0: running in the archive, older than runs the log holds"}},
		{"a leaf edited with its task", []string{
			`UPDATE tasks SET finish_time = finish_time + interval '1 hour' WHERE task_id = '` + finished + `'`,
			`ALTER TABLE proof_log DISABLE TRIGGER proof_log_append_only`,
			`UPDATE proof_log l SET data = mps_proof_task(t), hash = mps_proof_leaf_hash(mps_proof_task(t)) FROM tasks t WHERE l.kind = 'task' AND l.key = mps_proof_key(t.task_id, t.create_time) AND t.task_id = '` + finished + `'`},
			[]string{"the log's first"}},
		{"a leaf's kind changed to hide a deleted run", []string{
			`ALTER TABLE proof_log DISABLE TRIGGER proof_log_append_only`,
			`UPDATE proof_log SET kind = 'x' WHERE kind = 'run' AND key = '1'`,
			`DELETE FROM sync_runs WHERE id = 1`},
			[]string{"its columns say x 1, its data run 1"}},
		{"an outcome deleted, its leaf relabelled as a task's earlier version", []string{
			`ALTER TABLE proof_log DISABLE TRIGGER proof_log_append_only`,
			`UPDATE proof_log SET kind = 'task', key = '` + finishedKey + `' WHERE kind = 'outcome' AND key = '` + outcomeKey + `'`,
			`DELETE FROM task_subtask_results WHERE task_id = '` + failed + `'`,
			`DELETE FROM task_details WHERE task_id = '` + failed + `'`},
			[]string{"its columns say task " + finishedKey + ", its data outcome " + outcomeKey}},
		{"an outcome replaced through the log's own function", []string{
			`UPDATE task_details SET outcome = 'succeeded', err_code = NULL WHERE task_id = '` + failed + `'`,
			`SELECT mps_proof_append(ARRAY['outcome'], ARRAY[mps_proof_key(d.task_id, d.create_time)], ARRAY[mps_proof_outcome(d)]) FROM task_details d WHERE d.task_id = '` + failed + `'`},
			[]string{"outcome " + outcomeKey + ": a final outcome (failed) was replaced by succeeded"}},
		{"a leaf added past the head", []string{
			`INSERT INTO proof_log SELECT idx + 5, kind, key, hash, data FROM proof_log WHERE idx = ` + itoa(head-1)},
			[]string{"missing from proof_log"}},
		{"a checkpoint re-signed with another key", []string{`UPDATE proof_checkpoints SET note = '` + string(forged) + `' WHERE size = ` + itoa(cp[0].(int64))},
			[]string{"signed only by keys not trusted here"}},
		{"the last leaves and checkpoint removed", []string{
			`ALTER TABLE proof_log DISABLE TRIGGER proof_log_append_only`,
			`DELETE FROM proof_checkpoints WHERE size = ` + itoa(head),
			`DELETE FROM proof_log WHERE idx >= ` + itoa(head-3),
			`UPDATE proof_log_head SET size = ` + itoa(head-3)},
			[]string{"restored to a state older than the checkpoint"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tampered := pgtest.Clone(t, db)
			for _, q := range c.sql {
				pgtest.Exec(t, tampered, q)
			}
			env := map[string]string{"DATABASE_URL": tampered, "MPS_ARCHIVER_VERIFIER_KEYS": public, "HOME": os.TempDir()}
			r := run(t, env, "verify", "--checkpoint", published)
			if r.code != 1 || !strings.Contains(r.stdout, "FAILED: ") || !hasLine(r.stdout, c.want...) {
				t.Fatalf("exit %d, want 1 and a line with %q:\n%s%s", r.code, c.want, r.stdout, r.stderr)
			}
		})
	}

	// Rolled back: the database as it was before the second run, held to
	// the checkpoints published since.
	r = run(t, map[string]string{"DATABASE_URL": older, "MPS_ARCHIVER_VERIFIER_KEYS": public, "HOME": os.TempDir()}, "verify", "--checkpoint", published)
	if r.code != 1 || !strings.Contains(r.stdout, "restored to a state older than the checkpoint") {
		t.Fatalf("rolled back: exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A task's bundle verifies offline; one changed byte fails it.
	bundle := filepath.Join(dir, "task.json")
	if r := run(t, env, "prove", moved, "--out", bundle); r.code != 0 {
		t.Fatalf("prove: exit %d: %s", r.code, r.stderr)
	}
	offline := map[string]string{"HOME": os.TempDir()}
	r = run(t, offline, "verify", "--bundle", bundle, "--key", public)
	if r.code != 0 || !strings.Contains(r.stdout, "OK: ") || !strings.Contains(r.stdout, "1 status_change") {
		t.Fatalf("bundle: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	data, _ := os.ReadFile(bundle)
	i := strings.Index(string(data), `\"from_status\":\"`)
	if i < 0 {
		t.Fatalf("no status change in the bundle: %s", data)
	}
	i += len(`\"from_status\":\"`)
	data[i] ^= 0x01
	_ = os.WriteFile(bundle, data, 0o644)
	if r := run(t, offline, "verify", "--bundle", bundle, "--key", public); r.code != 1 || !strings.Contains(r.stdout, "not in the checkpoint's log") {
		t.Fatalf("changed bundle: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}

	// A range's export: every task created in it, with its facts.
	export := filepath.Join(dir, "range.json")
	since := now.Add(-48 * time.Hour).Format(time.RFC3339)
	if r := run(t, env, "export", "--since", since, "--until", now.Add(time.Hour).Format(time.RFC3339), "--out", export); r.code != 0 {
		t.Fatalf("export: exit %d: %s", r.code, r.stderr)
	}
	r = run(t, offline, "verify", "--bundle", export, "--key", public)
	inRange := scalar(t, db, `SELECT count(*) FROM tasks WHERE create_time >= '`+since+`'`)
	if r.code != 0 || !strings.Contains(r.stdout, "of "+itoa(inRange)+" tasks") {
		t.Fatalf("export of %d tasks: exit %d: %s%s", inRange, r.code, r.stdout, r.stderr)
	}

	// An archive joins the log by migration: its facts become the first
	// leaves, and it verifies.
	joined := pgtest.Clone(t, db)
	jenv := map[string]string{"DATABASE_URL": joined, "HOME": os.TempDir()}
	// Down past migration 19 (the proof log), then up again.
	below19 := itoa(scalar(t, joined, `SELECT version FROM schema_migrations`) - 18)
	if r := run(t, jenv, "migrate", "down", below19, "--yes"); r.code != 0 {
		t.Fatalf("migrate down: %s", r.stderr)
	}
	if r := run(t, jenv, "migrate", "up"); r.code != 0 {
		t.Fatalf("migrate up: %s", r.stderr)
	}
	if r := run(t, jenv, "verify"); r.code != 0 || !strings.HasPrefix(r.stdout, "OK: ") {
		t.Fatalf("migrated archive: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if got := scalar(t, joined, `SELECT size FROM proof_log_head`); got != scalar(t, joined, `SELECT count(DISTINCT (kind, key)) FROM proof_log`) {
		t.Fatalf("the migration logged %d leaves for %d facts", got, scalar(t, joined, `SELECT count(DISTINCT (kind, key)) FROM proof_log`))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// hasLine reports whether one line of out holds every part.
func hasLine(out string, parts ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
