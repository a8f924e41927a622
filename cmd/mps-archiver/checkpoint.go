package main

import (
	"net/http"

	"github.com/mps-archiver/mps-archiver/storage"
)

// checkpointHandler serves the proof log's latest signed checkpoint at
// /checkpoint (text/plain, a C2SP signed note): a copy outside the
// database for whoever polls it (a witness, an auditor's cron).
func checkpointHandler(st *storage.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := st.LatestProofCheckpoint(r.Context(), true)
		switch {
		case err != nil:
			http.Error(w, "cannot read the checkpoints: "+err.Error(), http.StatusServiceUnavailable)
		case !ok:
			http.Error(w, "no signed checkpoint yet: set MPS_ARCHIVER_SIGNING_KEY_FILE; one is made after each run", http.StatusNotFound)
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(c.Note))
		}
	})
}
