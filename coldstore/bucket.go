package coldstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A Bucket is where exported months are kept: a local directory or an
// S3-compatible bucket (Tencent COS through its S3 API, AWS S3, MinIO, …).
// Names are slash-separated paths below its root.
type Bucket interface {
	// Put stores the file at local under name, replacing what was there:
	// whole or not at all.
	Put(ctx context.Context, name, local string) error
	// Open reads name; size is its length.
	Open(ctx context.Context, name string) (r io.ReaderAt, size int64, closer io.Closer, err error)
	// String says where it is, without credentials.
	String() string
}

// S3 is how an s3:// destination is reached.
type S3 struct {
	// Endpoint is the S3 API's host[:port], or a URL whose http:// scheme
	// turns TLS off (a local MinIO): e.g. cos.ap-guangzhou.myqcloud.com.
	Endpoint string
	Region   string
	// AccessKeyID and SecretAccessKey sign the requests; empty: the
	// environment's (AWS_ACCESS_KEY_ID, …, or an instance role).
	AccessKeyID, SecretAccessKey string
}

// Open opens a destination: a directory (a path, or file://), or
// s3://bucket/prefix reached as s3 says.
func Open(dest string, s3 S3) (Bucket, error) {
	if dest == "" {
		return nil, errors.New("no destination (archive.destination: a directory or s3://bucket/prefix)")
	}
	u, err := url.Parse(dest)
	if err != nil || u.Scheme == "" || u.Scheme == "file" || len(u.Scheme) == 1 {
		dir := dest
		if err == nil && u.Scheme == "file" {
			dir = u.Path
		}
		return dirBucket(filepath.Clean(dir)), nil
	}
	if u.Scheme != "s3" {
		return nil, fmt.Errorf("destination %q: want a directory or s3://bucket/prefix", redactURL(dest))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("destination %q: no bucket", redactURL(dest))
	}
	if s3.Endpoint == "" {
		return nil, fmt.Errorf("destination %s: no S3 endpoint (archive.s3_endpoint, e.g. cos.ap-guangzhou.myqcloud.com)", redactURL(dest))
	}
	endpoint, secure := s3.Endpoint, true
	if e, err := url.Parse(s3.Endpoint); err == nil && e.Host != "" {
		endpoint, secure = e.Host, e.Scheme != "http"
	}
	creds := credentials.NewChainCredentials([]credentials.Provider{&credentials.EnvAWS{}, &credentials.IAM{}})
	if s3.AccessKeyID != "" {
		creds = credentials.NewStaticV4(s3.AccessKeyID, s3.SecretAccessKey, "")
	}
	client, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: s3.Region})
	if err != nil {
		return nil, fmt.Errorf("S3 endpoint %s: %w", endpoint, err)
	}
	return &s3Bucket{client: client, bucket: u.Host, prefix: strings.Trim(u.Path, "/"), endpoint: endpoint}, nil
}

// redactURL drops user info from a destination written as a URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// dirBucket is a local directory.
type dirBucket string

func (d dirBucket) String() string { return string(d) }

func (d dirBucket) Put(ctx context.Context, name, local string) error {
	dst := filepath.Join(string(d), filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(local)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	if dir, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}

func (d dirBucket) Open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, st.Size(), f, nil
}

// s3Bucket is a bucket of an S3-compatible store.
type s3Bucket struct {
	client                   *minio.Client
	bucket, prefix, endpoint string
}

func (b *s3Bucket) String() string {
	return "s3://" + path.Join(b.bucket, b.prefix) + " at " + b.endpoint
}

func (b *s3Bucket) key(name string) string { return path.Join(b.prefix, name) }

func (b *s3Bucket) Put(ctx context.Context, name, local string) error {
	_, err := b.client.FPutObject(ctx, b.bucket, b.key(name), local, minio.PutObjectOptions{ContentType: contentType(name)})
	if err != nil {
		return fmt.Errorf("put %s: %w", b.key(name), err)
	}
	return nil
}

func (b *s3Bucket) Open(ctx context.Context, name string) (io.ReaderAt, int64, io.Closer, error) {
	obj, err := b.client.GetObject(ctx, b.bucket, b.key(name), minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("get %s: %w", b.key(name), err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, 0, nil, fmt.Errorf("get %s: %w", b.key(name), err)
	}
	return obj, st.Size, obj, nil
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".json") {
		return "application/json"
	}
	return "application/vnd.apache.parquet"
}
