package main

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// SASLConfig lists who may connect.
type SASLConfig struct {
	// Superusers bypass ACLs (the tests' admin client).
	Superusers []User `json:"superusers"`
	// Users are subject to ACLs.
	Users []User `json:"users"`
}

// User is a SASL user. Mechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, or GSSAPI (a
// Kerberos principal's short name; gssapi.go authenticates it).
type User struct {
	Mechanism string `json:"mechanism"`
	Name      string `json:"name"`
	Password  string `json:"password,omitempty"`
	ACLs      []ACL  `json:"acls,omitempty"`
}

// ACL allows (or denies) one operation on one resource, in Kafka's words: resource
// "topic", "group", "cluster" or "transactional_id"; name, or a prefix with pattern
// "prefixed"; operation "read", "write", "describe", "all", ....
type ACL struct {
	Resource  string `json:"resource"`
	Name      string `json:"name"`
	Pattern   string `json:"pattern,omitempty"`
	Operation string `json:"operation"`
	Deny      bool   `json:"deny,omitempty"`
}

func init() {
	register(installer{name: "sasl", options: func(cfg *Config) ([]kfake.Opt, error) {
		var opts []kfake.Opt
		if cfg.ACLs {
			opts = append(opts, kfake.EnableACLs())
		}
		if cfg.SASL == nil {
			return opts, nil
		}
		opts = append(opts, kfake.EnableSASL())
		for _, u := range cfg.SASL.Superusers {
			mech, pass := saslIdentity(cfg, u)
			opts = append(opts, kfake.Superuser(mech, u.Name, pass))
		}
		for _, u := range cfg.SASL.Users {
			acls, err := kfakeACLs(u.ACLs)
			if err != nil {
				return nil, fmt.Errorf("user %s: %w", u.Name, err)
			}
			mech, pass := saslIdentity(cfg, u)
			opts = append(opts, kfake.User(mech, u.Name, pass, acls...))
		}
		return opts, nil
	}})
}

// saslIdentity is how kfake knows a user: a GSSAPI user is a PLAIN user whose password
// only the broker knows (gssapi.go completes its login as that user).
func saslIdentity(cfg *Config, u User) (mechanism, password string) {
	if u.Mechanism == "GSSAPI" {
		return "PLAIN", gssapiSecret(u.Name)
	}
	return u.Mechanism, u.Password
}

func kfakeACLs(in []ACL) ([]kfake.ACL, error) {
	var out []kfake.ACL
	for _, a := range in {
		rt, err := kmsg.ParseACLResourceType(strings.ReplaceAll(a.Resource, "_", ""))
		if err != nil {
			return nil, fmt.Errorf("resource %q: %w", a.Resource, err)
		}
		op, err := kmsg.ParseACLOperation(a.Operation)
		if err != nil {
			return nil, fmt.Errorf("operation %q: %w", a.Operation, err)
		}
		pattern := kmsg.ACLResourcePatternTypeLiteral
		if a.Pattern == "prefixed" {
			pattern = kmsg.ACLResourcePatternTypePrefixed
		}
		name := a.Name
		if rt == kmsg.ACLResourceTypeCluster && name == "" {
			name = "kafka-cluster"
		}
		out = append(out, kfake.ACL{Resource: rt, Name: name, Pattern: pattern, Operation: op, Allow: !a.Deny})
	}
	return out, nil
}
