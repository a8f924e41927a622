package main

import (
	"bytes"
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// The SDK has no type for the core PostgreSQL data source's queries: this is
// that query, as Grafana stores a code-mode SQL target.

// postgresType is the PostgreSQL data source's plugin id (Grafana 10.3+;
// older versions call it "postgres" and migrate it on import).
const postgresType = "grafana-postgresql-datasource"

// SQLQuery is a raw SQL target.
type SQLQuery struct {
	RefId      string                `json:"refId"`
	Hide       *bool                 `json:"hide,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	EditorMode string                `json:"editorMode"`
	RawQuery   bool                  `json:"rawQuery"`
	RawSQL     string                `json:"rawSql"`
	// Format is "time_series" (a time column, a metric column naming the
	// series, values) or "table".
	Format string `json:"format"`
}

// ImplementsDataqueryVariant marks SQLQuery as a query.
func (q SQLQuery) ImplementsDataqueryVariant() {}

// DataqueryType is the data source's plugin id.
func (q SQLQuery) DataqueryType() string { return postgresType }

// Validate accepts every SQLQuery: the tests run its SQL.
func (q SQLQuery) Validate() error { return nil }

// Equals compares two queries field by field.
func (q SQLQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(SQLQuery)
	if !ok {
		return false
	}
	a, _ := json.Marshal(q)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// sqlVariant tells the SDK how to read SQLQuery back from JSON.
func sqlVariant() variants.DataqueryConfig {
	decode := func(strict bool) func(raw []byte) (variants.Dataquery, error) {
		return func(raw []byte) (variants.Dataquery, error) {
			var q SQLQuery
			dec := json.NewDecoder(bytes.NewReader(raw))
			if strict {
				dec.DisallowUnknownFields()
			}
			if err := dec.Decode(&q); err != nil {
				return nil, err
			}
			return q, nil
		}
	}
	return variants.DataqueryConfig{Identifier: postgresType, DataqueryUnmarshaler: decode(false), StrictDataqueryUnmarshaler: decode(true)}
}

var _ cog.Builder[variants.Dataquery] = (*sqlBuilder)(nil)

type sqlBuilder struct{ q SQLQuery }

// sql is a time-series SQL target on the archive's data source.
func sql(refID, rawSQL string) *sqlBuilder {
	return &sqlBuilder{SQLQuery{RefId: refID, Datasource: &archiveDS, EditorMode: "code", RawQuery: true, RawSQL: rawSQL, Format: "time_series"}}
}

// table makes the target a table.
func (b *sqlBuilder) table() *sqlBuilder { b.q.Format = "table"; return b }

func (b *sqlBuilder) Build() (variants.Dataquery, error) { return b.q, nil }
