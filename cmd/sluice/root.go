package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/config"
	"github.com/sluice-dev/sluice/internal/processlog"
)

// globals are the flags every command has.
type globals struct {
	configFile string
	defines    []string
	logFormat  string
	logLevel   string
	log        *slog.Logger
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "sluice",
		Short:         "sluice: a distributed stream processor, secured",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			log, err := newLogger(os.Stderr, g.logFormat, g.logLevel)
			if err != nil {
				return err
			}
			g.log = log
			slog.SetDefault(log)
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.configFile, "config", "", "configuration file (default: $SLUICE_CONF_DIR/config.yaml or conf/config.yaml when present)")
	pf.StringArrayVarP(&g.defines, "define", "D", nil, "set a configuration key: -D key=value (repeatable)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	addRootClientFlags(root)
	root.AddCommand(newJobManagerCmd(g), newTaskManagerCmd(g), newLocalCmd(g), newRunCmd(g),
		newListCmd(g), newStatusCmd(g), newCancelCmd(g), newSavepointCmd(g), newStopCmd(g), newBenchCmd(g), newSecurityCmd(g), newAuthCmd(g), newWhoamiCmd(g), newTokenCmd(g), newNexmarkCmd(g))
	return root
}

// loadConfig reads the configuration file and -D overrides, logging every
// warning (unknown keys and the like).
func (g *globals) loadConfig() (*config.Config, error) {
	path := g.configFile
	if path == "" {
		path = config.DefaultPath()
	}
	cfg, err := config.Load(path, g.defines)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		g.log.Warn(w)
	}
	return cfg, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "info", "":
		lv = slog.LevelInfo
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// parseParams turns --param k=v flags into a map.
func parseParams(kv []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range kv {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want name=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// teeLog writes the process's log to its log file in env.log.dir as well as
// to stderr, from here on; the returned func closes the file.
func (g *globals) teeLog(files processlog.Files) (func(), error) {
	f, err := files.Open()
	if err != nil || f == nil {
		return func() {}, err
	}
	log, err := newLogger(io.MultiWriter(os.Stderr, f), g.logFormat, g.logLevel)
	if err != nil {
		f.Close()
		return nil, err
	}
	g.log = log
	slog.SetDefault(log)
	return func() { f.Close() }, nil
}
