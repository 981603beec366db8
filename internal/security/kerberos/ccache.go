package kerberos

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ResolveTicketCache returns the path of the FILE: ticket cache MIT kinit
// uses, as MIT resolves it: $KRB5CCNAME, else default_ccache_name in
// krb5.conf (krb5ConfPath), else /tmp/krb5cc_<uid>. gokrb5 reads only
// FILE: caches; KCM:, KEYRING: and other types get an error that says how
// to get a FILE: cache. from says where the name came from.
//
// The login service, the CLI's --kerberos and `sluice security check` all
// resolve the cache here, so they read the same one.
func ResolveTicketCache(krb5ConfPath string) (path, from string, err error) {
	return ResolveTicketCacheEnv(krb5ConfPath, os.Getenv)
}

// ResolveTicketCacheEnv is ResolveTicketCache with the environment read
// through getenv.
func ResolveTicketCacheEnv(krb5ConfPath string, getenv func(string) string) (path, from string, err error) {
	name, from := getenv("KRB5CCNAME"), "KRB5CCNAME"
	if name == "" {
		if n := defaultCCacheName(krb5ConfPath); n != "" {
			name, from = n, "default_ccache_name in "+krb5ConfPath
		}
	}
	if name == "" {
		return defaultFileCache(), "default", nil
	}
	typ, rest := "FILE", name
	if i := strings.IndexByte(name, ':'); i > 0 && isCacheType(name[:i]) {
		typ, rest = strings.ToUpper(name[:i]), name[i+1:]
	}
	switch typ {
	case "FILE":
		return rest, from, nil
	case "DIR":
		// DIR::/dir/tkt names one file of the collection; DIR:/dir means
		// the primary cache, named in /dir/primary.
		if f, ok := strings.CutPrefix(rest, ":"); ok {
			return f, from, nil
		}
		primary, err := os.ReadFile(filepath.Join(rest, "primary"))
		if err != nil {
			return "", from, fmt.Errorf("kerberos: ticket cache %s (%s): read its primary file: %w", name, from, err)
		}
		return filepath.Join(rest, strings.TrimSpace(string(primary))), from, nil
	default:
		f := defaultFileCache()
		return "", from, fmt.Errorf("kerberos: the ticket cache is %s (%s), which sluice cannot read: only FILE: caches are supported. "+
			"Run kinit -c FILE:%s and export KRB5CCNAME=FILE:%s, or log in from a keytab (%s, %s)",
			name, from, f, f, KeyKeytab, KeyPrincipal)
	}
}

func defaultFileCache() string { return "/tmp/krb5cc_" + strconv.Itoa(os.Getuid()) }

// isCacheType tells a cache type prefix (KCM, FILE...) from a path.
func isCacheType(s string) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// defaultCCacheName reads default_ccache_name from the [libdefaults] of a
// krb5.conf (gokrb5 does not keep it), with MIT's %{uid}-style tokens
// expanded. Distributions set it to KEYRING: or KCM:, which must produce
// the clear error above rather than a missing /tmp/krb5cc_<uid>.
func defaultCCacheName(krb5ConfPath string) string {
	data, err := os.ReadFile(krb5ConfPath)
	if err != nil {
		return ""
	}
	inLibdefaults := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			inLibdefaults = strings.HasPrefix(line, "[libdefaults]")
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if inLibdefaults && ok && strings.TrimSpace(k) == "default_ccache_name" {
			uid := strconv.Itoa(os.Getuid())
			return strings.NewReplacer("%{uid}", uid, "%{euid}", strconv.Itoa(os.Geteuid()),
				"%{USERID}", uid, "%{TEMP}", os.TempDir()).Replace(strings.TrimSpace(v))
		}
	}
	return ""
}
