package main

// The connectors register their operator types (dataflow.Register) when imported: every
// process of the binary (JobManager, TaskManager, local) knows them.
import (
	_ "github.com/sluice-dev/sluice/internal/connectors/kafka"
	_ "github.com/sluice-dev/sluice/internal/connectors/postgres"
)
