package storage_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestEveryRunCounterIsStoredOrLogOnly: each counter of a run is written to
// its sync_runs column by both the progress and the outcome writes, or is
// declared log-only: a counter added to syncer.Progress and forgotten here
// fails this test.
func TestEveryRunCounterIsStoredOrLogOnly(t *testing.T) {
	t.Parallel()
	mapped := map[string]bool{}
	for _, c := range storage.RunCounters {
		mapped[c.Field] = true
	}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			switch {
			case f.Anonymous:
				walk(f.Type)
			case f.Name == "RunID":
			case f.Type.Kind() == reflect.Int || f.Type.Kind() == reflect.Int64:
				if !mapped[f.Name] && storage.LogOnlyCounters[f.Name] == "" {
					t.Errorf("syncer.Progress.%s is neither stored (storage.RunCounters) nor declared log-only (storage.LogOnlyCounters)", f.Name)
				}
			}
		}
	}
	walk(reflect.TypeOf(syncer.Progress{}))

	// Distinct values round-trip through RecordProgress and FinishRun.
	db := pgtest.NewDB(t)
	st, err := storage.Open(context.Background(), db, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := st.StartRun(context.Background(), syncer.StartRunParams{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p := syncer.Progress{RunID: run.RunID}
	v := reflect.ValueOf(&p).Elem()
	for i, c := range storage.RunCounters {
		f := v.FieldByName(c.Field)
		f.SetInt(int64(100 + i))
	}
	check := func(when string) {
		for i, c := range storage.RunCounters {
			if got := pgtest.Scalar[int64](t, db, `SELECT `+c.Column+`::bigint FROM sync_runs WHERE id = $1`, run.RunID); got != int64(100+i) {
				t.Errorf("%s: %s = %d, want %d", when, c.Column, got, 100+i)
			}
		}
	}
	if err := st.RecordProgress(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	check("progress")
	for i, c := range storage.RunCounters {
		v.FieldByName(c.Field).SetInt(int64(100 + i)) // unchanged: FinishRun must write the same
	}
	if _, err := st.FinishRun(context.Background(), syncer.FinishRunParams{RunID: run.RunID, Progress: p, Kind: syncer.KindFull}); err != nil {
		t.Fatal(err)
	}
	check("outcome")
}
