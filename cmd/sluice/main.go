// Command sluice is the one binary of sluice: JobManager, TaskManager, local
// mini-cluster and the client commands.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(exitCode(err))
	}
}

// errSilent ends a command with a non-zero exit code after it has said
// everything itself (as `auth can-i` answering "no").
var errSilent = errors.New("")
