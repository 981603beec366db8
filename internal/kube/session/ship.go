package session

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/internal/config"
)

// Where the pods see what the client ships.
const (
	// ConfDir is where the ConfigMap is mounted: ConfDir/config.yaml.
	ConfDir = "/opt/sluice/conf"
	// SecretsDir holds one directory per shipped Secret.
	SecretsDir = "/opt/sluice/secrets"
	// ConfigFile is the effective configuration's key in the ConfigMap.
	ConfigFile = "config.yaml"
	// TaskManagerConfigFile is the TaskManagers' configuration: ConfigFile
	// without the keys of files their pods do not mount.
	TaskManagerConfigFile = "taskmanager-config.yaml"
	// SecretsFile is the key of the configuration layer (passwords,
	// tokens) in the config Secrets.
	SecretsFile = "secrets.yaml"
	// SecretFileMode is the mode of every file mounted from a Secret.
	SecretFileMode int32 = 0o400
)

// Pods says which pods a shipped file is mounted in.
type Pods int

const (
	// JobManagerOnly files serve the JobManager's own endpoints.
	JobManagerOnly Pods = iota
	// AllPods files are needed by TaskManagers too.
	AllPods
	// KeytabPods is the Kerberos keytab: the JobManager only when
	// delegation tokens are on (security.delegation.tokens.enabled), so
	// TaskManagers hold no long-lived credential; every pod otherwise.
	KeytabPods
)

// shippedFile is a configuration key whose value is a path to secret
// material on the client's machine: the file travels in a Secret of its own
// and the key is rewritten to where the Secret is mounted.
type shippedFile struct {
	Key  string
	Name string // Secret name suffix and mount directory
	Pods Pods
}

// shippedFiles is every key that points at secret material. The test
// TestEveryFileKeyIsClassified fails when a new key that looks like a path
// is registered without being listed here or in notShipped.
var shippedFiles = []shippedFile{
	{"security.kerberos.login.keytab", "keytab", KeytabPods},
	{"security.kerberos.krb5-conf.path", "krb5-conf", AllPods},
	{"security.ssl.internal.keystore", "internal-keystore", AllPods},
	{"security.ssl.internal.truststore", "internal-truststore", AllPods},
	{"security.ssl.rest.keystore", "rest-keystore", JobManagerOnly},
	{"security.ssl.rest.truststore", "rest-truststore", JobManagerOnly},
	{"security.rest.authentication.token.file", "rest-token-file", JobManagerOnly},
	{"security.rest.authentication.kerberos.keytab", "rest-keytab", JobManagerOnly},
	{"security.authorization.acl.policy-file", "acl-policy", JobManagerOnly},
	{"security.authorization.webhook.keystore", "webhook-keystore", JobManagerOnly},
	{"security.authorization.webhook.truststore", "webhook-truststore", JobManagerOnly},
	{"security.authorization.opa.truststore", "opa-truststore", JobManagerOnly},
	{"state.checkpoints.encryption.key-file", "checkpoint-key", AllPods},
	{"security.cluster.join-token-file", "join-token-file", AllPods},
}

// notShipped are path-like keys that deliberately are not shipped, and why.
var notShipped = map[string]string{
	"kubernetes.config.file":                     "the client's own kubeconfig; pods use their ServiceAccount",
	"security.ssl.keystore":                      "generic fallback: shipped as the internal and REST keystores it stands for",
	"security.ssl.truststore":                    "generic fallback: shipped as the internal and REST trust stores it stands for",
	"security.ssl.internal.auto.dir":             "the automatic cluster CA lives in the cluster, not on the client",
	"security.audit.log.path":                    "written by the JobManager, not read",
	"security.authorization.opa.path":            "a policy document path on the OPA server, not a file",
	"process.working-dir":                        "a directory of the pod",
	"process.jobmanager.working-dir":             "a directory of the pod",
	"process.taskmanager.working-dir":            "a directory of the pod",
	"security.kerberos.access.hadoopFileSystems": "reserved",
	"rest.base-path":                             "a URL path",
}

// taskManagerSecretKey reports whether a sensitive value (password, token)
// is needed by TaskManagers: those of the internal key and trust stores and
// the join token. Everything else stays in the JobManager's layer.
func taskManagerSecretKey(key string) bool {
	switch key {
	case "security.ssl.keystore-password", "security.ssl.truststore-password", "security.ssl.key-password":
		return true
	}
	return strings.HasPrefix(key, "security.ssl.internal.") || strings.HasPrefix(key, "security.cluster.join-token")
}

// secretFile is one file the session ships.
type secretFile struct {
	shippedFile
	SecretName string
	FileName   string // the client's base name, also the key in the Secret
	Data       []byte
	ClientPath string
}

// MountDir is where the file's Secret is mounted.
func (f secretFile) MountDir() string { return path.Join(SecretsDir, f.Name) }

// MountPath is the file's path in the pods.
func (f secretFile) MountPath() string { return path.Join(f.MountDir(), f.FileName) }

// inTaskManagers reports whether TaskManager pods mount the file.
func (f secretFile) inTaskManagers(delegationTokens bool) bool {
	switch f.Pods {
	case AllPods:
		return true
	case KeytabPods:
		return !delegationTokens
	}
	return false
}

// readShippedFiles reads every file the configuration points at. A key
// that is set to a file the client cannot read is an error naming the key:
// the session would start without the material the user asked for.
func readShippedFiles(cfg *config.Config, clusterID string) ([]secretFile, error) {
	var out []secretFile
	for _, s := range shippedFiles {
		p := cfg.String(s.Key) // with fallbacks (security.ssl.keystore for the internal one)
		if p == "" {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: read %s to ship it to the cluster as a Secret: %w (fix the path or unset the key)", s.Key, p, err)
		}
		if len(data) > maxSecretSize {
			return nil, fmt.Errorf("%s: %s is %d bytes; a Kubernetes Secret holds at most 1 MiB", s.Key, p, len(data))
		}
		out = append(out, secretFile{
			shippedFile: s,
			SecretName:  clusterID + "-" + s.Name,
			FileName:    fileName(p),
			Data:        data,
			ClientPath:  p,
		})
	}
	return out, nil
}

// maxSecretSize is the API server's limit on a Secret's data.
const maxSecretSize = 1 << 20

// fileName is the client file's base name, usable as a Secret key.
func fileName(p string) string {
	n := filepath.Base(p)
	ok := n != "" && n != "." && n != ".."
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			ok = false
		}
	}
	if !ok {
		return "file"
	}
	return n
}
