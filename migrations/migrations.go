// Package migrations embeds the archive's schema as numbered golang-migrate
// files, one concern per file.
package migrations

import (
	"embed"
	"io/fs"
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
	entries, _ := fs.ReadDir(FS, ".")
	versions := make([]uint, 0, len(entries))
	for _, e := range entries {
		head, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			continue
		}
		if v, err := strconv.ParseUint(head, 10, 32); err == nil {
			versions = append(versions, uint(v))
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
	if len(versions) == 0 {
		return 0
	}
	return versions[len(versions)-1]
}
