package coldstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Format names the manifest's version.
const Format = "mps-archiver/month-export/1"

// Manifest describes one month's export: written last, so that a month
// whose manifest is there is whole.
type Manifest struct {
	Format string `json:"format"`
	// Month is YYYY-MM (UTC): tasks created in it, with their status
	// changes, outcomes, sub-task results and media facts, and the billed
	// usage of its days.
	Month      string    `json:"month"`
	ExportedAt time.Time `json:"exported_at"`
	// Origin is the proof log's; ProofSize its size when the month was
	// read: every fact exported is a leaf below it.
	Origin    string `json:"origin,omitempty"`
	ProofSize int64  `json:"proof_size"`
	Files     []File `json:"files"`
}

// File is one table's file.
type File struct {
	Table  string `json:"table"`
	Name   string `json:"name"` // below the month's directory
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Rows are the files' row counts by table.
func (m Manifest) Rows() map[string]int64 {
	out := map[string]int64{}
	for _, f := range m.Files {
		out[f.Table] = f.Rows
	}
	return out
}

// MonthDir is where a month's files are below a destination: hive-style,
// so that engines read month as a column.
func MonthDir(month time.Time) string { return "month=" + month.Format("2006-01") }

// ManifestName is the manifest's name below a destination.
func ManifestName(month time.Time) string { return MonthDir(month) + "/manifest.json" }

// Export writes month's tables, read from db (one snapshot), as Parquet
// files to b, then the manifest. It returns the manifest and its
// SHA-256. Files go through a temporary directory (tmp, "" for the
// system's): one table's file at a time.
func Export(ctx context.Context, db DB, b Bucket, month time.Time, origin string, proofSize int64, tmp string) (Manifest, string, error) {
	m := Manifest{Format: Format, Month: month.Format("2006-01"), ExportedAt: time.Now().UTC().Truncate(time.Second),
		Origin: origin, ProofSize: proofSize}
	for _, t := range Tables {
		f, err := exportTable(ctx, db, b, t, month, tmp)
		if err != nil {
			return m, "", err
		}
		m.Files = append(m.Files, f)
	}
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, "", err
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	if err := putBytes(ctx, b, ManifestName(month), body, tmp); err != nil {
		return m, "", fmt.Errorf("write the manifest: %w", err)
	}
	return m, hex.EncodeToString(sum[:]), nil
}

func exportTable(ctx context.Context, db DB, b Bucket, t tableIO, month time.Time, tmp string) (File, error) {
	f, err := os.CreateTemp(tmp, "mps-archiver-"+t.Name()+"-*.parquet")
	if err != nil {
		return File{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	rows, err := t.write(ctx, db, month, cw)
	if err != nil {
		return File{}, err
	}
	if err := f.Close(); err != nil {
		return File{}, err
	}
	name := t.Name() + ".parquet"
	if err := b.Put(ctx, MonthDir(month)+"/"+name, f.Name()); err != nil {
		return File{}, fmt.Errorf("store %s: %w", name, err)
	}
	return File{Table: t.Name(), Name: name, Rows: rows, Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func putBytes(ctx context.Context, b Bucket, name string, body []byte, tmp string) error {
	f, err := os.CreateTemp(tmp, "mps-archiver-manifest-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(body); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return b.Put(ctx, name, f.Name())
}

// ReadManifest reads month's manifest from b and checks it is the one
// whose SHA-256 is want ("": any).
func ReadManifest(ctx context.Context, b Bucket, month time.Time, want string) (Manifest, error) {
	var m Manifest
	r, size, c, err := b.Open(ctx, ManifestName(month))
	if err != nil {
		return m, fmt.Errorf("read the manifest of %s: %w", month.Format("2006-01"), err)
	}
	defer c.Close()
	body, err := io.ReadAll(io.NewSectionReader(r, 0, size))
	if err != nil {
		return m, fmt.Errorf("read the manifest of %s: %w", month.Format("2006-01"), err)
	}
	if sum := sha256.Sum256(body); want != "" && hex.EncodeToString(sum[:]) != want {
		return m, fmt.Errorf("the manifest of %s in %s is not the one exported (SHA-256 %x, want %s)", month.Format("2006-01"), b, sum, want)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("the manifest of %s: %w", month.Format("2006-01"), err)
	}
	if m.Format != Format || m.Month != month.Format("2006-01") {
		return m, fmt.Errorf("the manifest of %s says format %q, month %q", month.Format("2006-01"), m.Format, m.Month)
	}
	return m, nil
}

// Verify reads month's export back from b, the manifest first (it must be
// the one whose SHA-256 is manifestSHA), then every file, whose SHA-256
// must be the manifest's, and compares each row with db's, in order: the
// export is the database's month, exactly.
func Verify(ctx context.Context, db DB, b Bucket, month time.Time, manifestSHA string) (Manifest, error) {
	m, err := ReadManifest(ctx, b, month, manifestSHA)
	if err != nil {
		return m, err
	}
	files := map[string]File{}
	for _, f := range m.Files {
		files[f.Table] = f
	}
	for _, t := range Tables {
		f, ok := files[t.Name()]
		if !ok {
			return m, fmt.Errorf("the export of %s has no %s", m.Month, t.Name())
		}
		err := withFile(ctx, b, month, f, func(pf *parquet.File) error {
			n, err := t.compare(ctx, db, month, pf)
			if err == nil && n != f.Rows {
				err = fmt.Errorf("%s: the manifest says %d rows, the database has %d", t.Name(), f.Rows, n)
			}
			return err
		})
		if err != nil {
			return m, fmt.Errorf("the export of %s: %w", m.Month, err)
		}
	}
	return m, nil
}

// withFile opens one file of the export, checks its size and SHA-256
// against the manifest, and hands it to fn as Parquet.
func withFile(ctx context.Context, b Bucket, month time.Time, f File, fn func(*parquet.File) error) error {
	r, size, c, err := b.Open(ctx, MonthDir(month)+"/"+f.Name)
	if err != nil {
		return err
	}
	defer c.Close()
	if size != f.Bytes {
		return fmt.Errorf("%s is %d bytes, the manifest says %d", f.Name, size, f.Bytes)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return fmt.Errorf("read %s: %w", f.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s has SHA-256 %s, the manifest says %s", f.Name, got, f.SHA256)
	}
	pf, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("open %s: %w", f.Name, err)
	}
	return fn(pf)
}

// Import copies month's partitioned tables from b into the tables into
// names (table → the partition being imported), checking every file
// against the manifest whose SHA-256 is manifestSHA. It returns the rows
// copied by table.
func Import(ctx context.Context, db DB, b Bucket, month time.Time, manifestSHA string, into map[string]string) (map[string]int64, error) {
	m, err := ReadManifest(ctx, b, month, manifestSHA)
	if err != nil {
		return nil, err
	}
	files := map[string]File{}
	for _, f := range m.Files {
		files[f.Table] = f
	}
	out := map[string]int64{}
	for _, t := range Tables {
		if !t.Partitioned() {
			continue
		}
		f, ok := files[t.Name()]
		part, okPart := into[t.Name()]
		if !ok || !okPart {
			return out, fmt.Errorf("import %s: no %s in the export or no partition for it", m.Month, t.Name())
		}
		err := withFile(ctx, b, month, f, func(pf *parquet.File) error {
			n, err := t.copyIn(ctx, db, part, pf)
			if err == nil && n != f.Rows {
				err = fmt.Errorf("%s: copied %d rows, the manifest says %d", t.Name(), n, f.Rows)
			}
			out[t.Name()] = n
			return err
		})
		if err != nil {
			return out, fmt.Errorf("import %s: %w", m.Month, err)
		}
	}
	return out, nil
}
