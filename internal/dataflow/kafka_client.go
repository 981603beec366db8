package dataflow

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/connectors/kafka"
	"github.com/sluice-dev/sluice/internal/security/credentials"
)

// kafkaClientOptions are a kafka operator's client options where it runs: the files its
// properties name are read through the job's grants (JobFiles), credentials come from the
// TaskManager (login contexts, delegation tokens).
func kafkaClientOptions(ctx context.Context, rc *RuntimeContext, k *KafkaOptions) ([]kgo.Opt, error) {
	env := kafka.Env{Logger: rc.Logger}
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
func kafkaFailure(rc *RuntimeContext, err error) error {
	if err == nil {
		return nil
	}
	var pe *kafka.PermanentError
	if errors.As(err, &pe) || IsUnrecoverable(err) {
		return Unrecoverable(opErr(rc.Operator, err))
	}
	return opErr(rc.Operator, err)
}

// kafkaExplain is kafka.Explain for an error about what.
func kafkaExplain(k *KafkaOptions, err error, what string, args ...any) error {
	return kafka.Explain(err, k.settings, fmt.Sprintf(what, args...))
}
