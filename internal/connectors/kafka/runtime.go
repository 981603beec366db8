package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/dataflow"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// kafkaClientOptions are a kafka operator's client options where it runs: the files its
// properties name are read through the job's grants (JobFiles), credentials come from the
// TaskManager (login contexts, delegation tokens).
func kafkaClientOptions(ctx context.Context, rc *dataflow.RuntimeContext, k *Options) ([]kgo.Opt, error) {
	env := Env{Logger: rc.Logger}
	if rc.Files != nil {
		env.ReadFile = func(path string) ([]byte, error) { return rc.Files.ReadFile(rc.Operator, path) }
	}
	if rc.Credentials != nil {
		env.Credentials = credentials.Func(rc.Credentials.Credentials)
	}
	opts, err := k.settings.ClientOptions(ctx, k.Properties, env)
	if err != nil {
		return nil, kafkaFailure(rc, err)
	}
	return opts, nil
}

// kafkaFailure names the operator in err, and marks as unrecoverable what restarting cannot
// cure (a refused login or ACL, an untrusted certificate, a missing file).
func kafkaFailure(rc *dataflow.RuntimeContext, err error) error {
	if err == nil {
		return nil
	}
	var pe *PermanentError
	if errors.As(err, &pe) || dataflow.IsUnrecoverable(err) {
		return dataflow.Unrecoverable(dataflow.OperatorError(rc.Operator, err))
	}
	return dataflow.OperatorError(rc.Operator, err)
}

// kafkaExplain is kafka.Explain for an error about what.
func kafkaExplain(k *Options, err error, what string, args ...any) error {
	return Explain(err, k.settings, fmt.Sprintf(what, args...))
}
