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
	// ID is the TaskManager ID; empty for the JobManager, and empty for a
	// shared TaskManager certificate (spiffe://<cluster-id>/taskmanager),
	// which any TaskManager of the cluster may use, each under its own id.
	ID string
}

// SharedTaskManager reports whether i is the identity of a certificate
// shared by TaskManagers: it names the role but no TaskManager id.
func (i Identity) SharedTaskManager() bool { return i.Role == RoleTaskManager && i.ID == "" }

// MayActAs reports whether a process with identity i may act as
// TaskManager tmID: its own id, or any id with a shared certificate.
func (i Identity) MayActAs(tmID string) bool {
	return i.Role == RoleTaskManager && (i.ID == "" || i.ID == tmID)
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
	case len(segs) == 1 && segs[0] == string(RoleTaskManager):
		// Shared TaskManager certificate (Flink's one certificate for all
		// TaskManagers, with the role still told apart from the JobManager).
		out.Role = RoleTaskManager
	default:
		return Identity{}, false, fmt.Errorf("certificate %q: %s is not a sluice identity (want spiffe://<cluster-id>/jobmanager, spiffe://<cluster-id>/taskmanager or spiffe://<cluster-id>/taskmanager/<id>)", cert.Subject, id)
	}
	return out, true, nil
}
