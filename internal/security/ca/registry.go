package ca

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RegistryFile, in the CA directory of automatic mode, records which join
// token issued which TaskManager id and certificate, and which
// certificates were revoked, so that both survive a JobManager restart.
// It holds no secret.
const RegistryFile = "registry.json"

// Registry is the content of RegistryFile.
type Registry struct {
	Tokens  []TokenInfo  `json:"join-tokens"`
	Revoked []Revocation `json:"revoked"`
	// Active are the tokens that still admit joins, with a digest of their
	// secret: kept only where every JobManager replica of a
	// high-availability cluster reads them (a Kubernetes Secret), so that
	// a TaskManager holding a token of the previous leader still joins.
	Active []ActiveToken `json:"active-join-tokens,omitempty"`
	// Renewed are unexpired certificates issued by renewal, so that a
	// successor revokes them with their TaskManager id.
	Renewed []Issued `json:"renewed,omitempty"`
}

// ActiveToken is a usable join token without its secret.
type ActiveToken struct {
	TokenInfo
	// SecretSHA256 is the hex SHA-256 of the token's secret.
	SecretSHA256 string `json:"secret-sha256"`
}

// Marshal encodes r as RegistryFile holds it.
func (r Registry) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", RegistryFile, err)
	}
	return append(b, '\n'), nil
}

// UnmarshalRegistry decodes what Marshal encoded; where names the copy
// for errors.
func UnmarshalRegistry(b []byte, where string) (Registry, error) {
	var r Registry
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s is corrupt (%v): repair or remove it (it lists join-token uses and revoked certificates)", where, err)
	}
	return r, nil
}

// Revocation is one revoked TaskManager certificate.
type Revocation struct {
	TaskManager string    `json:"taskmanager"`
	Serial      string    `json:"serial"`
	At          time.Time `json:"at"`
	// NotAfter of the certificate: after it the entry can be dropped, the
	// certificate being refused as expired anyway.
	NotAfter time.Time `json:"not-after"`
}

// LoadRegistry reads dir/registry.json; a missing file is an empty
// registry.
func LoadRegistry(dir string) (Registry, error) {
	var r Registry
	p := filepath.Join(dir, RegistryFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read %s: %w", p, err)
	}
	return UnmarshalRegistry(b, p)
}

// SaveRegistry writes dir/registry.json atomically, mode 0600.
func SaveRegistry(dir string, r Registry) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, RegistryFile), b, 0o600)
}
