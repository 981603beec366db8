package jobmanager

import (
	"fmt"
	"net/http"

	"github.com/sluice-dev/sluice/internal/blob"
	"github.com/sluice-dev/sluice/internal/security/tlsconf"
)

// blobAccess is the blob server's authorizer, after Kubernetes' Node
// authorizer: a TaskManager may fetch a blob only while a task of a job
// that uses the blob is deployed on it and has not ended. A TaskManager
// that is broken into cannot read the artifacts (specs, attached files) of
// jobs it does not run.
//
// The TaskManager is known by the identity in its certificate
// (spiffe://<cluster>/taskmanager/<id>), so the check is only as strong as
// internal TLS with per-process certificates. Without identities
// (plaintext, Flink's shared certificate, or a TaskManager certificate
// shared by all TaskManagers) the id the request claims is checked the
// same way, which keeps well-behaved processes apart but stops
// no one who lies.
type blobAccess struct{ jm *JobManager }

var _ blob.Authorizer = blobAccess{}

// AuthorizeFetch implements blob.Authorizer.
func (a blobAccess) AuthorizeFetch(r *http.Request, key string) error {
	jm := a.jm
	tmID, err := jm.blobRequester(r)
	if err != nil {
		return err
	}
	jm.mu.Lock()
	defer jm.mu.Unlock()
	if _, ok := jm.tms[tmID]; !ok {
		return fmt.Errorf("taskmanager %q is not registered with this jobmanager", tmID)
	}
	for _, j := range jm.jobs {
		if !j.blobKeys()[key] {
			continue
		}
		for _, t := range j.tasks {
			if t.tm == tmID && !taskTerminal(t.state) {
				return nil
			}
		}
	}
	return fmt.Errorf("taskmanager %s runs no task of a job that uses blob %s: a taskmanager may fetch only the artifacts of jobs with tasks deployed on it", tmID, key)
}

// blobRequester returns the id of the TaskManager that sent r: the id in
// its certificate's identity when it has one (the claimed id must then
// agree), else the claimed id.
func (jm *JobManager) blobRequester(r *http.Request) (string, error) {
	claimed := r.Header.Get(blob.RequesterHeader)
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, ok, err := tlsconf.IdentityOf(r.TLS.PeerCertificates[0])
		if err != nil {
			return "", err
		}
		if ok {
			if id.Role != tlsconf.RoleTaskManager || (jm.clusterID != "" && id.ClusterID != jm.clusterID) {
				return "", fmt.Errorf("%s is not a taskmanager of cluster %s", id, jm.clusterID)
			}
			if id.SharedTaskManager() {
				// A certificate every TaskManager shares proves the role,
				// not the id: the claimed id is checked as without TLS.
				if claimed == "" {
					return "", fmt.Errorf("the request names no taskmanager (%s header) and its certificate, shared by the cluster's taskmanagers, names none", blob.RequesterHeader)
				}
				return claimed, nil
			}
			if claimed != "" && claimed != id.ID {
				return "", fmt.Errorf("the request names taskmanager %q but its certificate is %s", claimed, id)
			}
			return id.ID, nil
		}
	}
	if claimed == "" {
		return "", fmt.Errorf("the request names no taskmanager (%s header) and its certificate carries no identity", blob.RequesterHeader)
	}
	return claimed, nil
}
