package simulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// node is a JSON value that remembers key order, for "same structure"
// comparisons.
type node struct {
	Keys  []string
	Vals  []*node
	Items []*node
	Leaf  any
}

func (n *node) get(k string) *node {
	for i, key := range n.Keys {
		if key == k {
			return n.Vals[i]
		}
	}
	return nil
}

func (n *node) set(k string, v any) {
	for i, key := range n.Keys {
		if key == k {
			n.Vals[i] = &node{Leaf: v}
		}
	}
}

func (n *node) String() string {
	switch {
	case n.Keys != nil:
		parts := make([]string, len(n.Keys))
		for i, k := range n.Keys {
			parts[i] = fmt.Sprintf("%s:%s", k, n.Vals[i])
		}
		return "{" + strings.Join(parts, ",") + "}"
	case n.Items != nil:
		parts := make([]string, len(n.Items))
		for i, it := range n.Items {
			parts[i] = it.String()
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	return fmt.Sprint(n.Leaf)
}

func ordered(t *testing.T, b []byte) *node {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseNode(dec)
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return n
}

func parseNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		n := &node{Keys: []string{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := parseNode(dec)
			if err != nil {
				return nil, err
			}
			n.Keys = append(n.Keys, k.(string))
			n.Vals = append(n.Vals, v)
		}
		_, err = dec.Token()
		return n, err
	case json.Delim('['):
		n := &node{Items: []*node{}}
		for dec.More() {
			v, err := parseNode(dec)
			if err != nil {
				return nil, err
			}
			n.Items = append(n.Items, v)
		}
		_, err = dec.Token()
		return n, err
	}
	if num, ok := tok.(json.Number); ok {
		return &node{Leaf: num.String()}, nil
	}
	return &node{Leaf: tok}, nil
}
