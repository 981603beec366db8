package kerberos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krb5config "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/sluice-dev/sluice/internal/filewatch"
)

// Source says where a login's credential comes from.
type Source string

// Login sources.
const (
	SourceKeytab      Source = "keytab"
	SourceTicketCache Source = "ticket-cache"
)

// ExpiryWarning is how long before a ticket-cache TGT lapses the login
// starts warning: with no keytab, nothing can renew it but kinit.
const ExpiryWarning = time.Hour

// reloginFraction of a TGT's life passes before a keytab login renews it,
// whatever the relogin period, so a short ticket lifetime never lapses.
const reloginFraction = 0.8

// Status is a snapshot of a login, for metrics and /overview.
type Status struct {
	Principal string
	Source    Source
	// Keytab or TicketCache is the file the credential comes from.
	Keytab      string
	TicketCache string
	// AuthTime, Expires and RenewTill are the current TGT's times.
	AuthTime  time.Time
	Expires   time.Time
	RenewTill time.Time
	// LastLogin is when the current TGT was obtained or read.
	LastLogin time.Time
	// Relogins counts logins after the first.
	Relogins int
	// LastError is the error of the last failed relogin, cleared by a
	// success; "" when none.
	LastError string
}

// Login is the process's Kerberos login. It is safe for concurrent use.
type Login struct {
	cfg       Config
	log       *slog.Logger
	krb5      *krb5config.Config
	krb5Path  string
	source    Source
	principal string // name@REALM
	name      string
	realm     string
	ccPath    string
	ccFrom    string

	loginMu sync.Mutex // serializes logins

	mu       sync.RWMutex
	cl       *client.Client
	st       Status
	ccStamp  fileStamp
	lastWarn time.Time
}

// NewLogin logs in: from the keytab when c.Keytab is set, else from the
// ticket cache when c.UseTicketCache. The errors say what to fix. Run
// keeps the login fresh.
func NewLogin(ctx context.Context, c Config, log *slog.Logger) (*Login, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	krb5, krb5Path, warnings, err := LoadKrb5Conf(c.Krb5Conf)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		log.Warn("kerberos: krb5.conf", "warning", w)
	}
	l := &Login{cfg: c, log: log, krb5: krb5, krb5Path: krb5Path}

	switch {
	case c.Keytab != "":
		l.source = SourceKeytab
		if l.name, l.realm, err = canonicalPrincipal(c.Principal, krb5.LibDefaults.DefaultRealm); err != nil {
			return nil, fmt.Errorf("%w (%s)", err, KeyPrincipal)
		}
		l.principal = l.name + "@" + l.realm
	case c.UseTicketCache:
		l.source = SourceTicketCache
		if l.ccPath, l.ccFrom, err = ResolveTicketCache(krb5Path); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("kerberos: no credential: set %s and %s, or %s: true and run kinit", KeyKeytab, KeyPrincipal, KeyUseTicketCache)
	}

	// gokrb5 takes no context: run the first login aside so a caller's
	// deadline still holds when a KDC does not answer.
	done := make(chan error, 1)
	go func() { done <- l.relogin(false) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("kerberos: login as %s: %w", l.describe(), ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	st := l.Status()
	log.Info("kerberos: logged in", "principal", st.Principal, "source", st.Source,
		"path", st.Keytab+st.TicketCache, "expires", st.Expires, "krb5conf", krb5Path)
	if l.source == SourceTicketCache {
		log.Info("kerberos: no keytab: the login stops working when the ticket cache expires, unless kinit renews it",
			"expires", st.Expires)
	}
	return l, nil
}

func (l *Login) describe() string {
	if l.source == SourceKeytab {
		return l.principal + " from keytab " + l.cfg.Keytab
	}
	return "ticket cache " + l.ccPath
}

// Client returns the Kerberos client of a login context named in
// security.kerberos.login.contexts; any other name is refused. The client
// is replaced at each relogin: get it per use (per connection), do not
// keep it, and do not Destroy it.
func (l *Login) Client(context string) (*client.Client, error) {
	if !slices.Contains(l.cfg.Contexts, context) {
		configured := strings.Join(l.cfg.Contexts, ", ")
		if configured == "" {
			configured = "none"
		}
		return nil, fmt.Errorf("kerberos: login context %q may not use the Kerberos login: add it to %s (configured: %s)",
			context, KeyContexts, configured)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cl, nil
}

// Principal returns the logged-in principal, name@REALM.
func (l *Login) Principal() string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.Principal
}

// Expires returns the end time of the current TGT.
func (l *Login) Expires() time.Time {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.Expires
}

// Status returns a snapshot of the login.
func (l *Login) Status() Status {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st
}

// Krb5Conf returns the krb5.conf in use and its path.
func (l *Login) Krb5Conf() (*krb5config.Config, string) { return l.krb5, l.krb5Path }

// Run keeps the login fresh until ctx is done. A keytab login logs in
// again every relogin period and at 80% of the TGT's life, whichever
// comes first. A ticket-cache login is read again when the cache file
// changes (kinit renewed it) and its coming expiry is logged: WARN within
// ExpiryWarning, ERROR once expired.
func (l *Login) Run(ctx context.Context) {
	period := l.cfg.reloginPeriod()
	for {
		wait := l.nextWake(time.Now(), period)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		l.tick(time.Now(), period)
	}
}

// nextWake returns how long Run sleeps before the next tick.
func (l *Login) nextWake(now time.Time, period time.Duration) time.Duration {
	st := l.Status()
	next := st.LastLogin.Add(period)
	if l.source == SourceKeytab {
		if st.LastError != "" {
			// A failed relogin is retried soon: the TGT is running out.
			next = now.Add(min(period, 10*time.Second))
		} else if due := st.AuthTime.Add(time.Duration(float64(st.Expires.Sub(st.AuthTime)) * reloginFraction)); due.Before(next) {
			next = due
		}
	} else {
		next = now.Add(period)
		// Report the expiry when it happens, not up to a period late.
		if exp := st.Expires.Add(time.Second); exp.After(now) && exp.Before(next) {
			next = exp
		}
	}
	return max(next.Sub(now), 10*time.Millisecond)
}

func (l *Login) tick(now time.Time, period time.Duration) {
	st := l.Status()
	switch l.source {
	case SourceKeytab:
		due := st.AuthTime.Add(time.Duration(float64(st.Expires.Sub(st.AuthTime)) * reloginFraction))
		if st.LastError != "" || !now.Before(st.LastLogin.Add(period)) || !now.Before(due) {
			if err := l.relogin(true); err != nil {
				l.log.Error("kerberos: relogin failed; the current TGT stays in use until it expires",
					"principal", l.principal, "keytab", l.cfg.Keytab, "expires", st.Expires, "err", err)
			} else {
				// Debug-level detail would hide it: an operator checking that a long-running
				// process renews its credentials looks for this line.
				l.log.Info("kerberos: logged in again from the keytab", "principal", l.principal, "expires", l.Expires())
			}
		}
	case SourceTicketCache:
		stamp, err := statFile(l.ccPath)
		l.mu.RLock()
		changed := err == nil && stamp != l.ccStamp
		l.mu.RUnlock()
		if changed {
			if err := l.relogin(true); err != nil {
				l.log.Error("kerberos: the ticket cache changed but cannot be read", "cache", l.ccPath, "err", err)
			} else {
				l.log.Info("kerberos: ticket cache renewed", "cache", l.ccPath, "expires", l.Expires())
			}
		}
	}
	l.reportExpiry(now, period)
}

// reportExpiry logs a coming or past expiry of the TGT.
func (l *Login) reportExpiry(now time.Time, period time.Duration) {
	st := l.Status()
	left := st.Expires.Sub(now)
	switch {
	case left <= 0:
		l.log.Error("kerberos: the TGT has expired: Kerberos connections fail until it is renewed",
			"principal", st.Principal, "source", st.Source, "expired", st.Expires, "fix", l.fix())
	case left < ExpiryWarning && l.source == SourceTicketCache:
		l.mu.Lock()
		due := now.Sub(l.lastWarn) >= max(period, 10*time.Minute)
		if due {
			l.lastWarn = now
		}
		l.mu.Unlock()
		if due {
			l.log.Warn("kerberos: the ticket cache expires soon: Kerberos connections will fail then",
				"principal", st.Principal, "expires", st.Expires, "left", left.Round(time.Second), "fix", l.fix())
		}
	}
}

func (l *Login) fix() string {
	if l.source == SourceTicketCache {
		return "run kinit (or kinit -R) for " + l.Principal() + ", or configure " + KeyKeytab
	}
	return "check the KDC and the keytab " + l.cfg.Keytab
}

// relogin obtains a fresh TGT and swaps in a new client.
func (l *Login) relogin(again bool) error {
	l.loginMu.Lock()
	defer l.loginMu.Unlock()
	var (
		cl    *client.Client
		tgt   tgtTimes
		stamp fileStamp
		err   error
	)
	if l.source == SourceKeytab {
		cl, tgt, err = l.loginKeytab()
	} else {
		cl, tgt, stamp, err = l.loginCache()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.st.LastError = err.Error()
		return err
	}
	l.cl = cl
	l.ccStamp = stamp
	if again {
		l.st.Relogins++
	}
	l.st = Status{
		Principal: tgt.principal, Source: l.source, Keytab: l.cfg.Keytab, TicketCache: l.ccPath,
		AuthTime: tgt.auth, Expires: tgt.end, RenewTill: tgt.renewTill,
		LastLogin: time.Now(), Relogins: l.st.Relogins,
	}
	return nil
}

type tgtTimes struct {
	principal            string
	auth, end, renewTill time.Time
}

// loginKeytab does an AS exchange with the keytab's key and returns a
// client holding only the resulting TGT. That client cannot log in by
// itself, so gokrb5 starts no renewal goroutine for it and a replaced
// client just lapses: this Login alone decides when to log in again.
//
// The keytab is read again at every login, so a rotated keytab (new kvno)
// is picked up without a restart, and its permissions are checked again.
func (l *Login) loginKeytab() (*client.Client, tgtTimes, error) {
	if err := CheckKeytabFile(l.cfg.Keytab, l.cfg.AllowInsecureKeytab); err != nil {
		return nil, tgtTimes{}, err
	}
	kt, err := loadKeytab(l.cfg.Keytab, l.principal)
	if err != nil {
		return nil, tgtTimes{}, err
	}
	// PA-FX-FAST off: gokrb5 does not implement FAST, and asking for it
	// only adds padata it cannot check. This client only does the AS
	// exchange and is never handed out.
	loginCl := client.NewWithKeytab(l.name, l.realm, kt, l.krb5, client.DisablePAFXFAST(true))
	cname := types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, l.name)
	req, err := messages.NewASReqForTGT(l.realm, l.krb5, cname)
	if err != nil {
		return nil, tgtTimes{}, fmt.Errorf("kerberos: build AS-REQ for %s: %w", l.principal, err)
	}
	rep, err := loginCl.ASExchange(l.realm, req, 0)
	if err != nil {
		return nil, tgtTimes{}, l.explain(err)
	}
	dep := rep.DecryptedEncPart
	ticket, err := rep.Ticket.Marshal()
	if err != nil {
		return nil, tgtTimes{}, fmt.Errorf("kerberos: encode TGT of %s: %w", l.principal, err)
	}
	cc := &credentials.CCache{Version: 4}
	cc.DefaultPrincipal.Realm = rep.CRealm
	cc.DefaultPrincipal.PrincipalName = rep.CName
	cred := &credentials.Credential{
		Key: dep.Key, AuthTime: dep.AuthTime, StartTime: dep.StartTime, EndTime: dep.EndTime,
		RenewTill: dep.RenewTill, Ticket: ticket,
	}
	cred.Client = cc.DefaultPrincipal
	cred.Server.Realm = rep.Ticket.Realm
	cred.Server.PrincipalName = rep.Ticket.SName
	cc.Credentials = []*credentials.Credential{cred}
	cl, err := client.NewFromCCache(cc, l.krb5, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, tgtTimes{}, fmt.Errorf("kerberos: use TGT of %s: %w", l.principal, err)
	}
	return cl, tgtTimes{principal: l.principal, auth: dep.AuthTime, end: dep.EndTime, renewTill: dep.RenewTill}, nil
}

// loginCache reads the ticket cache.
func (l *Login) loginCache() (*client.Client, tgtTimes, fileStamp, error) {
	kinit := "kinit"
	if l.cfg.Principal != "" {
		kinit += " " + l.cfg.Principal
	}
	stamp, err := statFile(l.ccPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: no ticket cache at %s (%s): run %s, or log in from a keytab (%s, %s)",
			l.ccPath, l.ccFrom, kinit, KeyKeytab, KeyPrincipal)
	}
	if err != nil {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: ticket cache %s (%s): %w", l.ccPath, l.ccFrom, err)
	}
	cc, err := loadCCache(l.ccPath)
	if err != nil {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: read ticket cache %s (%s): %w; run %s again", l.ccPath, l.ccFrom, err, kinit)
	}
	realm := cc.DefaultPrincipal.Realm
	principal := cc.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + realm
	if l.cfg.Principal != "" {
		name, prealm, err := canonicalPrincipal(l.cfg.Principal, l.krb5.LibDefaults.DefaultRealm)
		if err != nil {
			return nil, tgtTimes{}, stamp, fmt.Errorf("%w (%s)", err, KeyPrincipal)
		}
		if want := name + "@" + prealm; want != principal {
			return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: ticket cache %s holds tickets of %s, not of %s (%s): run kinit %s, or fix %s",
				l.ccPath, principal, want, KeyPrincipal, want, KeyPrincipal)
		}
	}
	entry, ok := cc.GetEntry(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", realm}})
	if !ok {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: ticket cache %s holds no TGT for %s: run %s", l.ccPath, principal, kinit)
	}
	if !entry.EndTime.After(time.Now()) {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: the TGT of %s in ticket cache %s expired at %s: run %s",
			principal, l.ccPath, entry.EndTime.Format(time.RFC3339), kinit)
	}
	cl, err := client.NewFromCCache(cc, l.krb5, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, tgtTimes{}, stamp, fmt.Errorf("kerberos: use ticket cache %s: %w", l.ccPath, err)
	}
	return cl, tgtTimes{principal: principal, auth: entry.AuthTime, end: entry.EndTime, renewTill: entry.RenewTill}, stamp, nil
}

// loadCCache is credentials.LoadCCache without its panic on an empty or
// truncated file (kinit may be writing it right now).
func loadCCache(path string) (cc *credentials.CCache, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(data) < 4 {
		return nil, errors.New("the file is empty or truncated")
	}
	defer func() {
		if r := recover(); r != nil {
			cc, err = nil, fmt.Errorf("malformed cache: %v", r)
		}
	}()
	cc = new(credentials.CCache)
	if err := cc.Unmarshal(data); err != nil {
		return nil, err
	}
	return cc, nil
}

// fileStamp identifies a version of a file: kinit replaces the cache
// (new inode) or rewrites it (new mtime and size).
type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size(), ino: filewatch.Inode(fi)}, nil
}
