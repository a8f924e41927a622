package simulator

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"time"
)

// ControlHandler is the introspection surface for tests and demos: ground
// truth, counters, the clock and the faults. It must be served on its own
// listener, never on the API port.
//
//	GET  /truth            every visible task (media and image, with its
//	                       Source) with its status, as JSON
//	GET  /stats            request and error counters (by status, action, code)
//	GET  /clock            the simulated now
//	POST /clock?advance=D  move the clock by a Go duration (e.g. 192h)
//	POST /clock?set=T      put the clock at an RFC 3339 instant
//	PUT  /faults           replace the fault configuration (JSON body)
//	GET  /variant          the API's reading of the open behaviours
//	PUT  /variant          switch it (JSON body, as Variant)
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /truth", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Truth())
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Stats())
	})
	mux.HandleFunc("GET /clock", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"now": s.clock.Now().UTC().Format(time.RFC3339Nano), "speed": s.clock.Speed()})
	})
	mux.HandleFunc("POST /clock", func(w http.ResponseWriter, r *http.Request) {
		if v := r.URL.Query().Get("advance"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				http.Error(w, "advance: "+err.Error(), http.StatusBadRequest)
				return
			}
			s.clock.Advance(d)
		}
		if v := r.URL.Query().Get("set"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				http.Error(w, "set: "+err.Error(), http.StatusBadRequest)
				return
			}
			s.clock.Set(t)
		}
		writeJSON(w, map[string]any{"now": s.clock.Now().UTC().Format(time.RFC3339Nano)})
	})
	mux.HandleFunc("PUT /faults", func(w http.ResponseWriter, r *http.Request) {
		var f Faults
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFaults(f)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /variant", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Variant())
	})
	mux.HandleFunc("PUT /variant", func(w http.ResponseWriter, r *http.Request) {
		var v Variant
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		err := dec.Decode(&v)
		if err == nil {
			err = v.Validate()
		}
		if err != nil {
			http.Error(w, "variant: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.SetVariant(v)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// ServeLoopback serves the API on a free loopback port, for an in-process
// simulator (demo, bench); it returns the endpoint URL and a stop function.
func (s *Server) ServeLoopback() (endpoint string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = hs.Close() }, nil
}

// NewCredentials makes a random SecretId (starting with prefix) and
// SecretKey for an in-process simulator that only this process talks to.
func NewCredentials(prefix string) (id, key string) {
	b := make([]byte, 22)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:6]), hex.EncodeToString(b[6:])
}
