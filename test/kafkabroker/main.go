// Command kafkabroker is the Kafka broker of the integration tests: franz-go's kfake
// cluster in a process of its own, with the security a real broker has (TLS with client
// certificates, SASL PLAIN/SCRAM users, ACLs, a GSSAPI acceptor). No Kafka broker can be
// installed on the test machines; kfake speaks the real protocol, so the connector under
// test talks to it exactly as it would to Kafka.
//
// It reads a JSON Config (-config), starts one broker and prints
//
//	kafkabroker listening on 127.0.0.1:PORT
//
// on stdout when it accepts connections. SIGINT or SIGTERM stop it.
//
// Each security concern lives in a file of its own and adds itself to installers: an
// installer turns its part of the Config into kfake options and, once the cluster runs,
// control hooks. A new concern (delegation tokens, say) is one more file.
//
//	tls.go     TLS listener, client certificates required when client_ca is set
//	users.go   SASL users (PLAIN, SCRAM-SHA-256/512, GSSAPI short names), superusers, ACLs
//	scram.go   answers a wrong SCRAM password with SASL_AUTHENTICATION_FAILED, as Kafka does
//	           (logins with the tokenauth=true extension are left to other hooks)
//	gssapi.go  GSSAPI acceptor: verifies the AP-REQ with the broker's keytab, then completes
//	           the login as the principal's short name
//
// Hooks for one request key run in the order installed (installers run in file-name
// order); the first that handles a request answers it, and one that returns "not handled"
// (possibly after rewriting the request) passes it on to the next and finally to kfake.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Config describes the broker a test wants.
type Config struct {
	// Port to listen on, on 127.0.0.1; 0 picks a free one.
	Port int `json:"port"`
	// Topics to create at start, name -> partitions.
	Topics map[string]int32 `json:"topics"`
	// TLS, when set, makes the listener TLS-only.
	TLS *TLSConfig `json:"tls,omitempty"`
	// SASL, when set, makes every connection authenticate.
	SASL *SASLConfig `json:"sasl,omitempty"`
	// ACLs, when true, enforces the users' ACLs (superusers bypass them).
	ACLs bool `json:"acls"`
	// GSSAPI, when set, accepts Kerberos (needs SASL).
	GSSAPI *GSSAPIConfig `json:"gssapi,omitempty"`
	// Delegation, when set, answers the delegation-token requests and accepts token logins
	// (delegation.go).
	Delegation *DelegationConfig `json:"delegation,omitempty"`
}

// installer is one security concern: options before the cluster starts, hooks after.
type installer struct {
	name    string
	options func(cfg *Config) ([]kfake.Opt, error)
	hooks   func(cfg *Config, c *kfake.Cluster) error // may be nil
}

var installers []installer

func register(i installer) { installers = append(installers, i) }

func main() {
	path := flag.String("config", "", "path of the JSON broker configuration")
	flag.Parse()
	if err := run(*path); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabroker:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	cfg := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, cfg); err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
	}
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(cfg.Port), kfake.DefaultNumPartitions(1)}
	for name, parts := range cfg.Topics {
		opts = append(opts, kfake.SeedTopics(parts, name))
	}
	for _, in := range installers {
		o, err := in.options(cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		opts = append(opts, o...)
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, in := range installers {
		if in.hooks == nil {
			continue
		}
		if err := in.hooks(cfg, c); err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
	}
	fmt.Printf("kafkabroker listening on %s\n", c.ListenAddrs()[0])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}
