package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TLSConfig is the listener's certificate and, optionally, the CA its clients' certificates
// must chain to.
type TLSConfig struct {
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	ClientCA string `json:"client_ca,omitempty"` // set: client certificates are required
}

func init() {
	register(installer{name: "tls", options: func(cfg *Config) ([]kfake.Opt, error) {
		if cfg.TLS == nil {
			return nil, nil
		}
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", cfg.TLS.Cert, err)
		}
		tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		if cfg.TLS.ClientCA != "" {
			pem, err := os.ReadFile(cfg.TLS.ClientCA)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no certificate", cfg.TLS.ClientCA)
			}
			tc.ClientCAs = pool
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return []kfake.Opt{kfake.TLS(tc)}, nil
	}})
}
