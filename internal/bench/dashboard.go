package bench

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// Dashboard is what the history mode runs of a Grafana dashboard: its
// template variables' queries and its panels' SQL, as the JSON holds them.
type Dashboard struct {
	Path      string
	Variables []DashboardVariable
	Panels    []DashboardPanel
}

// DashboardVariable is a query variable (Grafana runs its query to list
// the values).
type DashboardVariable struct {
	Name, Query string
}

// DashboardPanel is one panel's SQL target.
type DashboardPanel struct {
	Title, SQL string
}

// LoadDashboard reads the SQL panels and query variables of a dashboard
// JSON file. The file is read at run time, not embedded, so that the bench
// measures the dashboard as it is in the checkout.
func LoadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read the dashboard: %s does not exist (run from the repository's root, or point --dashboard at deploy/grafana/mps-task-archive.json)", path)
		}
		return nil, fmt.Errorf("read the dashboard: %w", err)
	}
	var raw struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("read the dashboard %s: %w", path, err)
	}
	d := &Dashboard{Path: path}
	for _, v := range raw.Templating.List {
		// A data source variable's query is a plugin id, not SQL.
		if q, ok := v.Query.(string); ok && v.Type == "query" {
			d.Variables = append(d.Variables, DashboardVariable{Name: v.Name, Query: q})
		}
	}
	for _, p := range raw.Panels {
		for _, t := range p.Targets {
			if t.RawSQL != "" {
				d.Panels = append(d.Panels, DashboardPanel{Title: p.Title, SQL: t.RawSQL})
			}
		}
	}
	if len(d.Panels) == 0 {
		return nil, fmt.Errorf("read the dashboard %s: no panel has an SQL query", path)
	}
	// Expanding with placeholder values finds what the bench cannot expand
	// now, before it spends minutes building archives.
	vars := map[string]string{}
	for _, v := range d.Variables {
		vars[v.Name] = "''"
	}
	for _, p := range d.Panels {
		if _, err := expandMacros(p.SQL, time.Unix(0, 0), time.Unix(1, 0), vars); err != nil {
			return nil, fmt.Errorf("read the dashboard %s: panel %q: %w", path, p.Title, err)
		}
	}
	return d, nil
}

// expandMacros substitutes what Grafana's PostgreSQL data source
// substitutes before a query reaches the database, for the time range
// [from, to], as e2e's TestGrafanaArchiveQueries does:
// $__timeFilter(expr) becomes (expr BETWEEN 'from' AND 'to'), and $name
// or ${name} a variable's value. A macro it does not know is an error
// rather than SQL that measures something else.
func expandMacros(sql string, from, to time.Time, vars map[string]string) (string, error) {
	const timeFilter = "$__timeFilter("
	var sb strings.Builder
	for {
		i := strings.Index(sql, timeFilter)
		if i < 0 {
			sb.WriteString(sql)
			break
		}
		sb.WriteString(sql[:i])
		rest := sql[i+len(timeFilter):]
		// The argument may hold parentheses of its own: find the one that
		// closes the macro.
		depth, end := 1, -1
		for j, c := range rest {
			if c == '(' {
				depth++
			} else if c == ')' {
				if depth--; depth == 0 {
					end = j
					break
				}
			}
		}
		if end < 0 {
			return "", errors.New("$__timeFilter( is not closed")
		}
		fmt.Fprintf(&sb, "(%s BETWEEN '%s' AND '%s')", rest[:end], from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
		sql = rest[end+1:]
	}
	out := sb.String()
	// Longest name first: $task would otherwise eat the front of $task_type.
	names := slices.Collect(maps.Keys(vars))
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	for _, k := range names {
		out = strings.ReplaceAll(out, "${"+k+"}", vars[k])
		out = strings.ReplaceAll(out, "$"+k, vars[k])
	}
	if i := strings.Index(out, "$__"); i >= 0 {
		m := out[i:]
		if j := strings.IndexAny(m, "( \n"); j > 0 {
			m = m[:j]
		}
		return "", fmt.Errorf("the Grafana macro %s is not one the bench expands", m)
	}
	return out, nil
}
