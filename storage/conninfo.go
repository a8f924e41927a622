package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A connection string is never printed, not even "redacted": libpq's
// key=value syntax (spaces around "=", quoted values with spaces and
// escapes, sslpassword) defeats any rewriting of the text, and the driver's
// own parse errors quote it. A database is named by what the driver parsed
// instead, and every error about a connection passes through scrub, which
// removes any fragment of the passwords the string (or the environment)
// holds.

// parseDSN parses dsn as the pool will use it. On failure the error names
// what is wrong without any of the string.
func parseDSN(dsn string) (*pgxpool.Config, *conninfo, error) {
	if err := checkUserInfo(dsn); err != nil {
		return nil, nil, err
	}
	ci := &conninfo{secrets: dsnSecrets(dsn)}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, errors.New(ci.scrub("database_url: " + parseProblem(err)))
	}
	ci.target = describe(&cfg.ConnConfig.Config)
	if pw := cfg.ConnConfig.Password; pw != "" {
		ci.secrets = append(ci.secrets, pw)
	}
	return cfg, ci, nil
}

// conninfo is what this package may say about a database, and what it must
// never say.
type conninfo struct {
	target  string   // host=… port=… user=… dbname=…, no password
	secrets []string // passwords and sslpasswords, raw and decoded
}

// connectError is an error about a connection, its text scrubbed of the
// passwords. It unwraps to the sentinels the original matched, never to
// the driver's error, whose text nobody has checked.
type connectError struct {
	msg   string
	kinds []error
}

func (e *connectError) Error() string   { return e.msg }
func (e *connectError) Unwrap() []error { return e.kinds }

// wrap describes err (already interpreted) as a failure to reach the
// database: one line, naming the target, without the passwords.
func (ci *conninfo) wrap(action string, err error) error {
	if err == nil {
		return nil
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if action != "" {
		msg = action + " " + ci.target + ": " + msg
	}
	ce := &connectError{msg: ci.scrub(msg)}
	for _, k := range []error{ErrUnavailable, ErrReadOnly, ErrTimeout, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			ce.kinds = append(ce.kinds, k)
		}
	}
	return ce
}

// describe names a database the way libpq's conninfo does (psql accepts
// it), from the driver's parse: every host and port it will try, the user
// and the database.
func describe(cc *pgconn.Config) string {
	var hosts, ports []string
	seen := map[string]bool{}
	add := func(host string, port uint16) {
		if k := net.JoinHostPort(host, strconv.Itoa(int(port))); !seen[k] {
			seen[k] = true
			hosts, ports = append(hosts, host), append(ports, strconv.Itoa(int(port)))
		}
	}
	add(cc.Host, cc.Port)
	for _, f := range cc.Fallbacks {
		add(f.Host, f.Port)
	}
	parts := []string{"host=" + quoteValue(strings.Join(hosts, ",")), "port=" + strings.Join(ports, ",")}
	if cc.User != "" {
		parts = append(parts, "user="+quoteValue(cc.User))
	}
	if cc.Database != "" {
		parts = append(parts, "dbname="+quoteValue(cc.Database))
	}
	return strings.Join(parts, " ")
}

// quoteValue quotes a conninfo value as libpq reads it.
func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// DescribeDSN names the database dsn points at by host, port, user and
// database (a conninfo psql accepts, without the password), or says that it
// does not parse. It is the only form in which a connection string may be
// shown.
func DescribeDSN(dsn string) string {
	if checkUserInfo(dsn) != nil {
		return "(a connection string that does not parse)"
	}
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return "(a connection string that does not parse)"
	}
	ci := &conninfo{secrets: append(dsnSecrets(dsn), cfg.Password)}
	return ci.scrub(describe(cfg))
}

// quoted matches what pgconn's parse errors quote: input, which may be a
// piece of a password.
var quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`|'[^']*'")

// parseProblem says why pgconn refused a connection string, keeping its
// reason and dropping the string and every quoted piece of it but the
// syntax it expected (a quoted "=" or "]").
func parseProblem(err error) string {
	msg := err.Error()
	var pce *pgconn.ParseConfigError
	if errors.As(err, &pce) {
		// The copy holds the reason and the cause, without the input.
		bare := *pce
		bare.ConnString = ""
		msg = strings.TrimPrefix(bare.Error(), "cannot parse ``: ")
	}
	msg = quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q) == 3 && strings.IndexByte("=]:/@", q[1]) >= 0 {
			return q
		}
		return "(…)"
	})
	return "cannot parse the connection string: " + strings.Join(strings.Fields(msg), " ")
}

// scrub replaces every fragment of three bytes or more of a secret with a
// mask, longest first, until none is left. The mask is chosen to share no
// such fragment with a secret, so every replacement removes secret bytes
// and the loop ends.
func (ci *conninfo) scrub(msg string) string {
	var secrets []string
	for _, s := range ci.secrets {
		if len(s) >= 3 {
			secrets = append(secrets, s)
		}
	}
	if len(secrets) == 0 {
		return msg
	}
	mask := ""
	for _, m := range []string{"xxxxx", "*****", "#####", "~~~~~"} {
		clean := true
		for _, s := range secrets {
			if strings.Contains(s, m[:3]) {
				clean = false
			}
		}
		if clean {
			mask = m
			break
		}
	}
	for changed := true; changed; {
		changed = false
		for _, s := range secrets {
			for n := len(s); n >= 3; n-- {
				for i := 0; i+n <= len(s); i++ {
					if f := s[i : i+n]; strings.Contains(msg, f) {
						msg = strings.ReplaceAll(msg, f, mask)
						changed = true
					}
				}
			}
		}
	}
	return msg
}

// dsnSecrets finds the passwords in a connection string without trusting
// it to parse: the URL's user information and password and sslpassword
// query values, or the key=value string's password and sslpassword values
// (quoted or not, with spaces around "="), each raw and decoded; and
// PGSSLPASSWORD, which the driver reads but does not keep.
func dsnSecrets(dsn string) []string {
	var out []string
	add := func(raw string, decode func(string) (string, error)) {
		out = append(out, raw)
		if d, err := decode(raw); err == nil && d != raw {
			out = append(out, d)
		}
	}
	if v := os.Getenv("PGSSLPASSWORD"); v != "" {
		out = append(out, v)
	}
	if scheme, rest, ok := strings.Cut(dsn, "://"); ok && (scheme == "postgres" || scheme == "postgresql") {
		hier, query, _ := strings.Cut(rest, "?")
		// An unescaped "?" in the password ends hier early: then the
		// user information runs to the string's last "@".
		userinfo := hier
		if !strings.Contains(hier, "@") {
			userinfo = rest
		}
		if i := strings.LastIndex(userinfo, "@"); i >= 0 {
			if _, pw, ok := strings.Cut(userinfo[:i], ":"); ok {
				add(pw, url.PathUnescape)
			}
		}
		for _, kv := range strings.Split(query, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if isPasswordKey(k, url.QueryUnescape) && v != "" {
				add(v, url.QueryUnescape)
			}
		}
		return out
	}
	s := dsn
	for {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return out
		}
		key := strings.TrimSpace(s[:eq])
		if i := strings.LastIndexAny(key, " \t\n\r\v\f"); i >= 0 {
			key = key[i+1:]
		}
		s = strings.TrimLeft(s[eq+1:], " \t\n\r\v\f")
		end, value := kvValue(s)
		if isPasswordKey(key, nil) && value != "" {
			out = append(out, value, s[:end])
		}
		s = s[end:]
	}
}

// kvValue reads a key=value value at the start of s as libpq does (a
// quoted string, or up to the next space, with backslash escapes); an
// unterminated quote runs to the end.
func kvValue(s string) (end int, value string) {
	var b strings.Builder
	quote := len(s) > 0 && s[0] == '\''
	i := 0
	if quote {
		i = 1
	}
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case quote && c == '\'':
			return i + 1, b.String()
		case !quote && strings.IndexByte(" \t\n\r\v\f", c) >= 0:
			return i, b.String()
		case c == '\\' && i+1 < len(s):
			i++
			c = s[i]
		}
		b.WriteByte(c)
	}
	return len(s), b.String()
}

func isPasswordKey(k string, decode func(string) (string, error)) bool {
	if decode != nil {
		if d, err := decode(k); err == nil {
			k = d
		}
	}
	k = strings.ToLower(strings.TrimSpace(k))
	return k == "password" || k == "sslpassword"
}

// checkUserInfo refuses a postgres:// URL whose password holds an
// unescaped "@" or "/": the driver would take part of the password for the
// host and the database, and print them in its errors.
func checkUserInfo(dsn string) error {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok || scheme != "postgres" && scheme != "postgresql" {
		return nil
	}
	i := strings.LastIndex(rest, "@")
	if i < 0 || !strings.ContainsAny(rest[:i], "@/") {
		return nil
	}
	return fmt.Errorf("database_url: the user or password holds an unescaped \"@\" or \"/\"; percent-encode them (@ as %%40, / as %%2F, : as %%3A, # as %%23, ? as %%3F)")
}
