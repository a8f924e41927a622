package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeYAML fills c from a YAML document, key by key, so that every
// problem names its key path, its value and what is wanted, and an unknown
// key comes with the nearest known one.
func decodeYAML(b []byte, c *Config, lines map[string]int) error {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("%s", yamlError(err))
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil // empty file
	}
	return decodeNode(root.Content[0], reflect.ValueOf(c).Elem(), "", lines)
}

var durationType = reflect.TypeOf(time.Duration(0))

func decodeNode(n *yaml.Node, v reflect.Value, path string, lines map[string]int) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if v.Kind() == reflect.Struct {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("%s (line %d): want a mapping of keys, got %s", orTop(path), n.Line, describe(n))
		}
		fields := map[string]int{}
		var names []string
		for i := 0; i < v.NumField(); i++ {
			tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = i
				names = append(names, tag)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i].Value, n.Content[i+1]
			idx, ok := fields[key]
			if !ok {
				msg := fmt.Sprintf("%s (line %d): unknown key", join(path, key), n.Content[i].Line)
				if near := nearest(key, names); near != "" {
					msg += fmt.Sprintf("; did you mean %q?", near)
				} else {
					sort.Strings(names)
					msg += " (known: " + strings.Join(names, ", ") + ")"
				}
				return fmt.Errorf("%s", msg)
			}
			lines[join(path, key)] = n.Content[i].Line
			if err := decodeNode(val, v.Field(idx), join(path, key), lines); err != nil {
				return err
			}
		}
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return fmt.Errorf("%s (line %d): %s is not %s", path, n.Line, describe(n), want(v.Type()))
	}
	return nil
}

func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 30s or 2h"
	case t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Int:
		return "a whole number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice:
		return "a list of strings"
	}
	return "a string"
}

// describe quotes a scalar's value (cut short), or names a node's kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "this value"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orTop(path string) string {
	if path == "" {
		return "the file"
	}
	return path
}

// nearest is the known name closest to key, when it is close enough to be
// a typo (an edit distance of at most 2, or a third of its length; 3 at
// the most).
func nearest(key string, names []string) string {
	best, bestD := "", 4
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestD && d <= max(2, len(n)/3) {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
