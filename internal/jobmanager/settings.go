package jobmanager

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/authz"
	"github.com/sluice-dev/sluice/internal/security/sealed"
)

// Settings are the JobManager's own configuration keys, read and checked
// once by SettingsFromConfig; the rest of the package reads these fields,
// never the keys. (The security packages read theirs through their own
// FromConfig functions: tlsconf, authn, audit, webhook, opa, kerberos.)
type Settings struct {
	BindHost   string // jobmanager.bind-host
	RPCPort    int    // jobmanager.rpc.port
	RPCAddress string // jobmanager.rpc.address: what TaskManagers dial
	BlobPort   int    // blob.server.port

	HeartbeatInterval  time.Duration // heartbeat.interval
	HeartbeatTimeout   time.Duration // heartbeat.timeout
	SlotRequestTimeout time.Duration // slot.request.timeout
	MaxExpressionCost  uint64        // pipeline.expression.max-cost

	Listeners      []Listener     // rest.listeners, or rest.bind-address/rest.port
	BasePath       string         // rest.base-path, without a trailing slash
	TrustedProxies []netip.Prefix // rest.trusted-proxies
	MaxUploadSize  int64          // rest.max-upload-size
	MaxSpecSize    int64          // rest.server.max-spec-size

	AuthorizationModes []string // security.authorization.mode; allow-all when empty
	ACLPolicyFile      string   // security.authorization.acl.policy-file
	SuperUsers         []string // security.authorization.super-users

	JobExpiration time.Duration // jobstore.expiration-time
	JobCapacity   int           // jobstore.max-capacity

	OutputMaxLines      int // jobmanager.job-output.max-lines
	OutputMaxBytes      int // jobmanager.job-output.max-bytes
	OutputMaxTotalBytes int // jobmanager.job-output.max-total-bytes

	ShutdownTimeout    time.Duration // jobmanager.shutdown.timeout
	ShutdownCancelJobs bool          // jobmanager.shutdown.cancel-jobs
	WorkingDir         string        // process.jobmanager.working-dir (falls back to process.working-dir)

	CheckpointsDir string // state.checkpoints.dir as an absolute path; "" when unset
	SavepointsDir  string // state.savepoints.dir as an absolute path; "" when unset
	// CheckpointKey seals checkpoint and savepoint files
	// (state.checkpoints.encryption.key-file); nil when unset. Loaded at
	// start-up, so a missing, short or readable key stops the JobManager
	// before it takes any job.
	CheckpointKey *sealed.Key
}

// SettingsFromConfig reads the JobManager's keys from cfg. Errors name the
// key to fix.
func SettingsFromConfig(cfg *config.Config) (Settings, error) {
	s := Settings{
		BindHost:            cfg.String("jobmanager.bind-host"),
		RPCPort:             cfg.Int("jobmanager.rpc.port"),
		RPCAddress:          cfg.String("jobmanager.rpc.address"),
		BlobPort:            cfg.Int("blob.server.port"),
		HeartbeatInterval:   cfg.Duration("heartbeat.interval"),
		HeartbeatTimeout:    cfg.Duration("heartbeat.timeout"),
		SlotRequestTimeout:  cfg.Duration("slot.request.timeout"),
		MaxExpressionCost:   uint64(cfg.Int(dataflow.MaxExpressionCostKey)),
		BasePath:            strings.TrimRight(cfg.String("rest.base-path"), "/"),
		MaxUploadSize:       cfg.Bytes("rest.max-upload-size"),
		MaxSpecSize:         cfg.Bytes(maxSpecSizeKey),
		AuthorizationModes:  cfg.StringList(authz.ModeKey),
		ACLPolicyFile:       cfg.String("security.authorization.acl.policy-file"),
		SuperUsers:          cfg.StringList("security.authorization.super-users"),
		JobCapacity:         cfg.Int("jobstore.max-capacity"),
		OutputMaxLines:      cfg.Int(outputMaxLinesKey),
		OutputMaxBytes:      int(cfg.Bytes(outputMaxBytesKey)),
		OutputMaxTotalBytes: int(cfg.Bytes(outputMaxTotalBytesKey)),
		ShutdownTimeout:     cfg.Duration("jobmanager.shutdown.timeout"),
		ShutdownCancelJobs:  cfg.Bool("jobmanager.shutdown.cancel-jobs"),
		WorkingDir:          cfg.String("process.jobmanager.working-dir"),
	}
	var err error
	if s.JobExpiration, err = parseJobStoreExpiration(cfg.String("jobstore.expiration-time")); err != nil {
		return s, err
	}
	if s.TrustedProxies, err = parseTrustedProxies(cfg.StringList("rest.trusted-proxies")); err != nil {
		return s, err
	}
	if s.Listeners, err = listenersFromConfig(cfg); err != nil {
		return s, err
	}
	if s.CheckpointsDir, err = localDirSetting(cfg, config.CheckpointsDirKey); err != nil {
		return s, err
	}
	if s.SavepointsDir, err = localDirSetting(cfg, config.SavepointsDirKey); err != nil {
		return s, err
	}
	// An interval in the cluster's configuration applies to every job: without a directory
	// every submission would be refused, so the JobManager does not start.
	if cfg.IsSet(config.CheckpointIntervalKey) && s.CheckpointsDir == "" {
		return s, fmt.Errorf("%s is set in the cluster's configuration but %s is not: set that directory (file:///path or /path, one the JobManager and every TaskManager can write, shared over NFS between hosts), or remove the interval from the cluster's configuration and let jobs set it (sluice run -D)",
			config.CheckpointIntervalKey, config.CheckpointsDirKey)
	}
	if path := cfg.String(sealed.KeyFileKey); path != "" {
		if s.CheckpointKey, err = sealed.LoadKey(path); err != nil {
			return s, err
		}
	}
	return s, nil
}

// parseJobStoreExpiration reads jobstore.expiration-time: a bare number is
// seconds, as in Flink 1.x where the key is a number of seconds; a value
// with a unit ("2 s", "1 h") is a duration, as Flink 2 writes it.
func parseJobStoreExpiration(raw string) (time.Duration, error) {
	raw = strings.TrimSpace(raw)
	var d time.Duration
	if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
		if n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("jobstore.expiration-time: %q seconds is out of range", raw)
		}
		d = time.Duration(n) * time.Second
	} else if d, err = config.ParseDuration(raw); err != nil {
		return 0, fmt.Errorf("jobstore.expiration-time: %q is neither a number of seconds nor a duration such as \"1 h\" or \"30 s\"", raw)
	}
	if d <= 0 {
		return 0, fmt.Errorf("jobstore.expiration-time: %q: want a positive number of seconds or duration", raw)
	}
	return d, nil
}

// parseTrustedProxies reads rest.trusted-proxies: addresses or CIDR ranges.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, p := range list {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("rest.trusted-proxies: %q is neither an address nor a CIDR range", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		out = append(out, pfx)
	}
	return out, nil
}
