// Package migrations embeds the archive's schema as numbered golang-migrate
// files, one concern per file.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// FS holds the *.up.sql and *.down.sql files.
//
//go:embed *.sql
var FS embed.FS

// Latest is the highest migration version embedded: the schema version this
// binary needs.
func Latest() uint {
	versions := Versions()
	if len(versions) == 0 {
		return 0
	}
	return versions[len(versions)-1].Version
}

// Migration is one embedded migration: its version and name
// ("000002_tasks" is version 2, "tasks").
type Migration struct {
	Version uint
	Name    string
}

// Versions lists the embedded migrations, oldest first.
func Versions() []Migration {
	entries, _ := fs.ReadDir(FS, ".")
	seen := map[uint]bool{}
	var out []Migration
	for _, e := range entries {
		head, rest, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(head, 10, 32)
		if err != nil || seen[uint(v)] {
			continue
		}
		seen[uint(v)] = true
		name, _, _ := strings.Cut(rest, ".")
		out = append(out, Migration{Version: uint(v), Name: name})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// dropTable finds the tables a down migration drops.
var dropTable = regexp.MustCompile(`(?i)DROP TABLE (?:IF EXISTS )?([a-z_][a-z0-9_]*)`)

// DroppedTables lists the tables m's down migration drops, in its order.
func (m Migration) DroppedTables() []string {
	b, err := fs.ReadFile(FS, fmt.Sprintf("%06d_%s.down.sql", m.Version, m.Name))
	if err != nil {
		return nil
	}
	var out []string
	for _, g := range dropTable.FindAllStringSubmatch(string(b), -1) {
		out = append(out, g[1])
	}
	return out
}
