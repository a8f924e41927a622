// Command grafana writes mps-archiver's Grafana dashboards, generated with
// the Grafana Foundation SDK, as importable JSON beside itself:
//
//	cd deploy/grafana && go run .
//
// The tests keep the committed files equal to what this produces.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	out := flag.String("out", ".", "directory to write the dashboards to")
	flag.Parse()
	files, err := render()
	if err != nil {
		fmt.Fprintln(os.Stderr, "grafana:", err)
		os.Exit(1)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "grafana:", err)
			os.Exit(1)
		}
	}
}

// render builds every dashboard, by file name.
func render() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, build := range map[string]func() (any, error){
		"mps-archiver-operations.json": operations,
		"mps-task-archive.json":        archive,
	} {
		d, err := build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = append(b, '\n')
	}
	return out, nil
}
