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
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s is corrupt (%v): repair or remove it (it lists join-token uses and revoked certificates)", p, err)
	}
	return r, nil
}

// SaveRegistry writes dir/registry.json atomically, mode 0600.
func SaveRegistry(dir string, r Registry) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", RegistryFile, err)
	}
	return writeFileAtomic(filepath.Join(dir, RegistryFile), append(b, '\n'), 0o600)
}
