package tlsconf

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Role of a sluice process in its certificate's SPIFFE-form URI SAN.
type Role string

// The roles a sluice process can have.
const (
	RoleJobManager  Role = "jobmanager"
	RoleTaskManager Role = "taskmanager"
)

// Identity is the identity of a sluice process as carried in a URI SAN:
// spiffe://<cluster-id>/jobmanager or spiffe://<cluster-id>/taskmanager/<tm-id>.
// It lets a TaskManager be told from a JobManager, so a stolen TaskManager
// certificate cannot act as the JobManager.
type Identity struct {
	ClusterID string
	Role      Role
	ID        string // TaskManager ID; empty for the JobManager
}

// URI returns the identity in its URI SAN form.
func (i Identity) URI() *url.URL {
	path := "/" + string(i.Role)
	if i.ID != "" {
		path += "/" + i.ID
	}
	return &url.URL{Scheme: "spiffe", Host: i.ClusterID, Path: path}
}

// String returns the identity as a spiffe:// URI.
func (i Identity) String() string { return i.URI().String() }

// IdentityOf returns the sluice identity in cert's URI SANs. ok is false
// when cert has no spiffe:// URI SAN (Flink's shared certificates have
// none); the error reports a spiffe:// URI that is not a sluice identity,
// which must not be mistaken for "no identity".
func IdentityOf(cert *x509.Certificate) (Identity, bool, error) {
	var found *url.URL
	for _, u := range cert.URIs {
		if !strings.EqualFold(u.Scheme, "spiffe") {
			continue
		}
		if found != nil {
			// Two identities would let one certificate act as both.
			return Identity{}, false, fmt.Errorf("certificate %q has more than one spiffe:// URI SAN", cert.Subject)
		}
		found = u
	}
	if found == nil {
		return Identity{}, false, nil
	}
	id, err := spiffeid.FromURI(found)
	if err != nil {
		return Identity{}, false, fmt.Errorf("certificate %q: malformed identity %q: %w", cert.Subject, found, err)
	}
	segs := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	out := Identity{ClusterID: id.TrustDomain().Name()}
	switch {
	case len(segs) == 1 && segs[0] == string(RoleJobManager):
		out.Role = RoleJobManager
	case len(segs) == 2 && segs[0] == string(RoleTaskManager) && segs[1] != "":
		out.Role, out.ID = RoleTaskManager, segs[1]
	default:
		return Identity{}, false, fmt.Errorf("certificate %q: %s is not a sluice identity (want spiffe://<cluster-id>/jobmanager or spiffe://<cluster-id>/taskmanager/<id>)", cert.Subject, id)
	}
	return out, true, nil
}
